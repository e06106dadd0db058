"""A real local HTTP server playing the application's side: a deployment system's pause and
resume hooks and the application's health check. It records every request (method, path,
headers, JSON body) in order, answers what a test set for each path, and runs a test's
callback when a path is called (to look at the database at that moment)."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

HEALTHY = {"status": "pass", "checks": {"migrations": {"status": "pass", "message": "Migrations applied",
                                                        "details": {"version": 1, "dirty": False}}}}
STARTING = {"status": "fail", "checks": {"migrations": {"status": "fail", "message": "starting up"}}}


@dataclass
class Call:
    method: str
    path: str
    headers: dict[str, str]
    body: Any
    seen: Any = None  # what the path's callback returned when it was called


@dataclass
class Answer:
    status: int = 200
    body: bytes | str | dict = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a hook that outlives dbops' timeout)


class AppServer:
    """``answers[path]``: an Answer, or a list of them used in turn (the last one repeats)."""

    def __init__(self) -> None:
        self.calls: list[Call] = []
        self.answers: dict[str, Answer | list[Answer]] = {}
        self.callbacks: dict[str, Callable[[], Any]] = {}
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path
                callback = server.callbacks.get(path.split("?", 1)[0])
                seen = callback() if callback else None
                with server._lock:
                    server.calls.append(Call(method=self.command, path=path, headers=dict(self.headers.items()),
                                             body=json.loads(raw) if raw else None, seen=seen))
                    answer = server._next(path.split("?", 1)[0])
                if answer.delay:
                    server._stopping.wait(answer.delay)
                body = answer.body if isinstance(answer.body, bytes) else (
                    json.dumps(answer.body).encode() if isinstance(answer.body, dict) else answer.body.encode())
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = do_POST = do_PUT = do_PATCH = _any

            def log_message(self, *args) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def _next(self, path: str) -> Answer:
        answer = self.answers.get(path, Answer(status=404, body="not found"))
        if isinstance(answer, list):
            return answer.pop(0) if len(answer) > 1 else answer[0]
        return answer

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def paths(self) -> list[str]:
        with self._lock:
            return [c.path.split("?", 1)[0] for c in self.calls]

    def called(self, path: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.path.split("?", 1)[0] == path]

    def __enter__(self) -> AppServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stopping.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()
