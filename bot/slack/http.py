"""HTTP transport: ``POST /slack/events`` (bolt, signatures checked), ``GET /health`` and
``GET /metrics`` (Prometheus, ``bot.metrics``), on one port, served by waitress (a production
WSGI server, not bolt's development server).

In Socket Mode the same server answers ``/health`` and ``/metrics`` only, for probes and scrapers.

Nothing a stranger sends is kept, and what is read is bounded: waitress answers 431 to a
request whose headers reach ``MAX_HEADER_BYTES`` and 413 to a body over ``MAX_BODY_BYTES``
as soon as its declared length (or, chunked, its running length) passes the cap, without
reading the rest. A Slack request's v0 signature is checked here, before bolt sees the
request and before the replay guard records anything, so only requests signed with the
signing secret ever take memory beyond their own.

``GET /health`` answers 200 when every check passes and 503 otherwise:

    {"status": "pass",
     "environments": {"production": {"checks": {"migrations": {"status": "pass", "message": …,
                                                               "latency_ms": 12,
                                                               "details": {"version": 5, "dirty": false,
                                                                           "pending": 0}}}}}}

so ``jq '.environments.production.checks.migrations'`` prints the guide's shape. It needs no
credentials, so it says pass or fail and the migration facts only: why a database could not
be read (which names its user, host, port and database) goes to the log. ``dbops serve`` adds
``"checks": {"slack": {"status": …, "message": …, "details": {"attempts": N}}}``: failing
(and the whole report 503) until Slack has been reached.
"""

from __future__ import annotations

import io
import json
import logging
from typing import Callable, Iterable

from slack_bolt import App
from slack_bolt.adapter.wsgi import SlackRequestHandler
from slack_sdk.signature import SignatureVerifier
from waitress.server import create_server

from bot.metrics.exporter import Metrics
from bot.slack.health_reports import HealthReports
from bot.slack.replay import ReplayGuard
from bot.slack.slack_link import SlackCheck
from commands.config import Settings
from commands.migrations import Databases

EVENTS_PATH = "/slack/events"
HEALTH_PATH = "/health"
METRICS_PATH = "/metrics"
# Slack's requests are a few KB; an interactive payload carrying a whole message or modal
# stays well under this.
MAX_BODY_BYTES = 1024 * 1024
MAX_HEADER_BYTES = 16 * 1024
WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


def _respond(start_response, status: str, body: bytes, content_type: str = "text/plain") -> list[bytes]:
    start_response(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def _declared_length(environ: dict) -> int:
    value = environ.get("CONTENT_LENGTH") or "0"
    return int(value) if value.isdigit() else 0


def verified_signature(verifier: SignatureVerifier, environ: dict, body: bytes) -> str | None:
    """The request's ``X-Slack-Signature`` when it is Slack's v0 signature of ``body`` under
    the signing secret, with a timestamp within five minutes of now; otherwise None."""
    signature = environ.get("HTTP_X_SLACK_SIGNATURE")
    try:
        valid = verifier.is_valid(body, environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP"), signature)
    except (ValueError, TypeError):  # a timestamp that is not a number, a body or signature not text
        return None
    return signature if valid else None


class HttpApp:
    """The WSGI application. ``app`` None serves health and metrics only (Socket Mode);
    ``metrics`` None: /metrics is not found."""

    def __init__(self, settings: Settings, databases: Databases, app: App | None, *,
                 signing_secret: str | None = None, slack: Callable[[], SlackCheck] | None = None,
                 metrics: Metrics | None = None) -> None:
        if app is not None and not signing_secret:
            raise ValueError("serving Slack's events over HTTP needs the signing secret")
        self.slack = SlackRequestHandler(app, path=EVENTS_PATH) if app is not None else None
        self.verifier = SignatureVerifier(signing_secret) if app is not None else None
        self.replays = ReplayGuard()
        self.health = HealthReports(settings, databases, slack=slack)
        self.metrics = metrics.wsgi() if metrics is not None else None

    def __call__(self, environ: dict, start_response) -> Iterable[bytes]:
        path, method = environ.get("PATH_INFO", ""), environ.get("REQUEST_METHOD", "")
        if path == EVENTS_PATH and self.slack is not None:
            if method != "POST":
                return _respond(start_response, "405 Method Not Allowed", b"POST only\n")
            return self._slack_event(environ, start_response)
        if path == HEALTH_PATH and method in ("GET", "HEAD"):
            healthy, report = self.health.current()
            body = json.dumps(report, indent=2).encode() + b"\n"
            return _respond(start_response, "200 OK" if healthy else "503 Service Unavailable", body,
                            "application/json")
        if path == METRICS_PATH and self.metrics is not None:
            return self.metrics(environ, start_response)
        return _respond(start_response, "404 Not Found", b"Not Found\n")

    def _slack_event(self, environ: dict, start_response) -> Iterable[bytes]:
        length = _declared_length(environ)
        if length > MAX_BODY_BYTES:  # waitress refuses it first; another WSGI server may not
            return _respond(start_response, "413 Payload Too Large", b"request body too large\n")
        body = environ["wsgi.input"].read(length) if length else b""
        signature = verified_signature(self.verifier, environ, body)
        if signature is None:
            return _respond(start_response, "401 Unauthorized", b"invalid signature\n")
        if not self.replays.first_time(signature):
            return _respond(start_response, "401 Unauthorized", b"replayed request\n")
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.slack(environ, start_response)


def wsgi_app(settings: Settings, databases: Databases, app: App | None, *,
             signing_secret: str | None = None, slack: Callable[[], SlackCheck] | None = None,
             metrics: Metrics | None = None) -> HttpApp:
    """Route the three paths; ``app`` None serves health and metrics only (Socket Mode), otherwise
    ``signing_secret`` is the Slack app's, to check each request's signature with. ``slack``
    is the Slack check for /health (``SlackLink.check``); ``metrics`` what /metrics serves."""
    return HttpApp(settings, databases, app, signing_secret=signing_secret, slack=slack, metrics=metrics)


def make_server(application: WSGIApp, *, host: str, port: int, threads: int = 8):
    """A waitress server bound now (port 0 picks a free one: ``server.effective_port``);
    ``server.run()`` serves until ``server.close()``."""
    # Queue depth is reported per request under load, in plain text beside the JSON log: the
    # bench measures it instead.
    logging.getLogger("waitress.queue").setLevel(logging.ERROR)
    # waitress refuses a body whose length is >= its limit; ours is the largest accepted.
    return create_server(application, host=host, port=port, threads=threads, ident="dbops",
                         clear_untrusted_proxy_headers=True, max_request_body_size=MAX_BODY_BYTES + 1,
                         max_request_header_size=MAX_HEADER_BYTES)
