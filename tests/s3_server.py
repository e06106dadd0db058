"""A real S3-compatible server for the tests: moto's standalone server, started as its own
process on a free local port and spoken to over HTTP, plus a tiny proxy in front of it that
answers the first N requests with 503 SlowDown (what a throttling store says)."""

from __future__ import annotations

import http.client
import socket
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config

from tests.conftest import wait_for

ACCESS_KEY = "AKIADBOPSTESTKEY0001"
SECRET_KEY = "dbops-test-secret-do-not-print-0123456789"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def start_moto() -> Iterator[str]:
    """moto_server on a free port; yields its endpoint URL, stops it afterwards."""
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: _answers(port), timeout=30, what="moto's server to listen")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)


def client(endpoint: str):
    return boto3.session.Session().client("s3", endpoint_url=endpoint, region_name="us-east-1",
                                          aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY,
                                          config=Config(s3={"addressing_style": "path"}))


class StoreProxy:
    """Forwards every request to ``upstream`` and records it (method, path with query); a
    subclass's ``answer`` may answer one itself instead (an error code and its HTTP status)."""

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream.removeprefix("http://")
        self.requests: list[tuple[str, str]] = []
        self.forwarded = 0
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with proxy.lock:
                    proxy.requests.append((self.command, self.path))
                said = proxy.answer(self.command, self.path)
                if said is not None:
                    status, code = said
                    error = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>{code}</Code>"
                             f"<Message>{code}</Message></Error>").encode()
                    self.send_response(status)
                    self.send_header("Content-Type", "application/xml")
                    self.send_header("Content-Length", str(len(error)))
                    self.end_headers()
                    self.wfile.write(error)
                    return
                with proxy.lock:
                    proxy.forwarded += 1
                upstream = http.client.HTTPConnection(proxy.upstream, timeout=60)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection",)}
                upstream.request(self.command, self.path, body=body, headers=headers)
                answer = upstream.getresponse()
                data = answer.read()
                proxy.answered(self.command, self.path)
                self.send_response(answer.status)
                for key, value in answer.getheaders():
                    if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(data)
                upstream.close()

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _any

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def answer(self, method: str, path: str) -> tuple[int, str] | None:
        return None

    def answered(self, method: str, path: str) -> None:
        """Called once the upstream has answered a forwarded request."""

    def __enter__(self) -> "StoreProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


class ThrottlingProxy(StoreProxy):
    """Answers the first ``refuse`` requests with 503 SlowDown (what a throttling store says)."""

    def __init__(self, upstream: str, refuse: int) -> None:
        super().__init__(upstream)
        self.remaining, self.refused = refuse, 0

    def answer(self, method: str, path: str) -> tuple[int, str] | None:
        with self.lock:
            if self.remaining <= 0:
                return None
            self.remaining -= 1
            self.refused += 1
        return 503, "SlowDown"


def part_number(method: str, path: str) -> int | None:
    """The part an UploadPart request sends (PUT …?partNumber=N&uploadId=…); None for any other request."""
    query = parse_qs(urlsplit(path).query)
    return int(query["partNumber"][0]) if method == "PUT" and "partNumber" in query else None


class PartsProxy(StoreProxy):
    """Watches an upload's parts: how many were on their way at once (``most_at_once``). With
    ``hold_first``, part 1's answer waits until part 2 has arrived (or 30 s): a writer that
    waits for each part before sending the next never gets past part 1 in time.
    With ``fail_part``, that part is answered 400 ExpiredToken (not retried)."""

    def __init__(self, upstream: str, *, hold_first: bool = False, fail_part: int | None = None) -> None:
        super().__init__(upstream)
        self.hold_first, self.fail_part = hold_first, fail_part
        self.second_arrived = threading.Event()
        self.at_once = self.most_at_once = 0

    def answer(self, method: str, path: str) -> tuple[int, str] | None:
        number = part_number(method, path)
        if number is None:
            return None
        if number == 2:
            self.second_arrived.set()
        if number == self.fail_part:
            return 400, "ExpiredToken"
        with self.lock:
            self.at_once += 1
            self.most_at_once = max(self.most_at_once, self.at_once)
        if number == 1 and self.hold_first:
            self.second_arrived.wait(timeout=30)
        return None

    def answered(self, method: str, path: str) -> None:
        if part_number(method, path) is not None:
            with self.lock:
                self.at_once -= 1


class DenyingProxy(StoreProxy):
    """Answers every request whose method is in ``methods`` with 403 AccessDenied: a bucket
    policy without, say, s3:DeleteObject and s3:AbortMultipartUpload ({"DELETE"})."""

    def __init__(self, upstream: str, methods: set[str]) -> None:
        super().__init__(upstream)
        self.methods = methods

    def answer(self, method: str, path: str) -> tuple[int, str] | None:
        return (403, "AccessDenied") if method in self.methods else None
