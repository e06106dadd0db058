"""HTTP transport: ``POST /slack/events`` (bolt, signatures checked) and ``GET /health``, on
one port, served by waitress (a production WSGI server, not bolt's development server).

In Socket Mode the same server answers ``/health`` only, for liveness and readiness probes.

``GET /health`` answers 200 when every check passes and 503 otherwise:

    {"status": "pass",
     "environments": {"production": {"checks": {"migrations": {"status": "pass", "message": …,
                                                               "latency_ms": 12,
                                                               "details": {"version": 5, "dirty": false,
                                                                           "pending": 0}}}}}}

so ``jq '.environments.production.checks.migrations'`` prints the guide's shape.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import create_server

from commands.config import Settings
from commands.health import check_migrations
from commands.migrations import Databases

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/health"
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def health_report(settings: Settings, databases: Databases) -> tuple[bool, dict]:
    """Every environment checked at once: one slow database does not add up with the others."""
    envs = list(settings.environments.values())
    if not envs:
        return True, {"status": "pass", "environments": {}}
    with ThreadPoolExecutor(max_workers=min(8, len(envs)), thread_name_prefix="health") as pool:
        checks = list(pool.map(lambda env: check_migrations(env, databases), envs))
    healthy = all(c.passed for c in checks)
    return healthy, {"status": "pass" if healthy else "fail",
                     "environments": {c.env: {"checks": {"migrations": c.as_json()}} for c in checks}}


def _respond(start_response, status: str, body: bytes, content_type: str) -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


class ReplayGuard:
    """Refuses a signed request seen before. Slack's signature covers the timestamp, and bolt
    refuses timestamps older than five minutes; within those five minutes a captured request
    would verify again, so each signature is accepted once (per process: replicas behind a
    load balancer each keep their own window)."""

    WINDOW_SECONDS = 5 * 60 + 30

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._seen: dict[str, float] = {}
        self._prune_at = 10_000
        self._lock = threading.Lock()

    def first_time(self, signature: str) -> bool:
        now = self.clock()
        with self._lock:
            if len(self._seen) >= self._prune_at:  # forget what the window no longer needs
                self._seen = {s: t for s, t in self._seen.items() if now - t < self.WINDOW_SECONDS}
                self._prune_at = max(10_000, 2 * len(self._seen))
            if signature in self._seen and now - self._seen[signature] < self.WINDOW_SECONDS:
                return False
            self._seen[signature] = now
            return True


def wsgi_app(settings: Settings, databases: Databases, app: App | None) -> WSGIApp:
    """Route the two paths; ``app`` None serves health only (Socket Mode)."""
    slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None
    replays = ReplayGuard()

    def application(environ: dict, start_response) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == EVENTS_PATH and slack is not None:
            if method != "POST":
                return _respond(start_response, "405 Method Not Allowed", b"POST only\n", "text/plain")
            signature = environ.get("HTTP_X_SLACK_SIGNATURE", "")
            if signature and not replays.first_time(signature):
                return _respond(start_response, "401 Unauthorized", b"replayed request\n", "text/plain")
            return slack(environ, start_response)
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            healthy, report = health_report(settings, databases)
            body = json.dumps(report, indent=2).encode() + b"\n"
            return _respond(start_response, "200 OK" if healthy else "503 Service Unavailable", body,
                            "application/json")
        return _respond(start_response, "404 Not Found", b"Not Found\n", "text/plain")

    return application


def make_server(application: WSGIApp, *, host: str, port: int, threads: int = 8):
    """A waitress server bound now (port 0 picks a free one: ``server.effective_port``);
    ``server.run()`` serves until ``server.close()``."""
    # Queue depth is reported per request under load, in plain text beside the JSON log: the
    # bench measures it instead.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    return create_server(application, host=host, port=port, threads=threads, ident="dbops",
                         clear_untrusted_proxy_headers=True)
