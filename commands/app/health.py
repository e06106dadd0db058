"""The application's own health check, read the way the guide's ``curl ... | jq`` does.

The application (not dbops) answers ``GET health_url`` with

    {"status": "pass", "checks": {"migrations": {"status": "pass",
     "message": "Migrations applied successfully (version 5)", "latency_ms": 12,
     "details": {"version": 5, "dirty": false}}}}

This is what the guide waits for after rolling an application back and before rolling its
migrations back. Whatever comes back (nothing, a 503, HTML, another shape) is a result that
says what was seen; checking never raises.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import ssl
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

from commands.redact import mask_url, redact

_SCHEMES = ("http", "https")
_MAX_BODY = 1 << 20  # a health answer is small; a larger body is not one


@dataclass(frozen=True, kw_only=True)
class AppHealth:
    """What ``GET url`` answered. ``url`` is masked; ``latency_ms`` is the round trip as
    dbops measured it; ``message`` is one line for a person, the app's own migrations
    message included when it gave one. A field the answer did not have is None."""

    url: str
    reachable: bool
    http_status: int | None
    status: str | None
    migrations_status: str | None
    migrations_version: int | None
    migrations_dirty: bool | None
    message: str
    latency_ms: float

    @property
    def passed(self) -> bool:
        """Whether the application answered and says its migrations check passes."""
        return self.reachable and self.migrations_status == "pass"


class _Refused(Exception):
    pass


class _SameSchemesOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another http(s) URL (urllib alone would follow ftp://)."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = urljoin(req.full_url, headers.get("Location") or headers.get("URI") or "")
        refusal = self.refusal(req.full_url, target)
        if refusal is not None:
            fp.close()
            raise _Refused(refusal)
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    def refusal(self, source: str, target: str) -> str | None:
        if urlsplit(target).scheme.lower() not in _SCHEMES:
            return f"it redirected to {mask_url(target)}; only http and https are followed"
        return None


class _SameHostOnly(_SameSchemesOnly):
    """Follows a redirect only on the same host and port, never from https to http: the
    request carries the headers it was given (a deploy token), and urllib sends them on."""

    def refusal(self, source: str, target: str) -> str | None:
        refusal = super().refusal(source, target)
        if refusal is not None:
            return refusal
        before, after = urlsplit(source), urlsplit(target)
        if (before.hostname, before.port) != (after.hostname, after.port) or (
                before.scheme.lower() == "https" and after.scheme.lower() != "https"):
            return (f"it redirected to {mask_url(urlunsplit(after._replace(query='')))}; only a redirect to the same "
                    "host (and never from https to http) is followed")
        return None


class _ErrorsAreAnswers(urllib.request.HTTPErrorProcessor):
    """Returns 4xx and 5xx responses instead of raising: 503 is how a failing check answers."""

    def http_response(self, request, response):
        if response.status >= 400:
            return response
        return super().http_response(request, response)

    https_response = http_response


def _request(url: str, method: str, headers: dict[str, str], data: bytes | None) -> urllib.request.Request:
    """urllib does not take credentials from the URL; send them as Basic auth instead."""
    parts = urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url, data=data, headers=headers, method=method)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    basic = {"Authorization": "Basic " + base64.b64encode(pair).decode()}
    return urllib.request.Request(bare, data=data, headers=basic | headers, method=method)


@dataclass(frozen=True, kw_only=True)
class Answer:
    """What one HTTP request got: ``status`` and the start of ``body``, or (``status`` None)
    ``failure``, one masked line saying why nothing came back."""

    status: int | None
    body: bytes = b""
    failure: str | None = None
    latency_ms: float = 0.0


def call(url: str, *, method: str = "GET", headers: dict[str, str] | None = None, data: bytes | None = None,
         timeout: float = 5.0, same_host: bool = False, shown: str | None = None,
         max_body: int = _MAX_BODY) -> Answer:
    """One request over http(s), never raising: redirects are followed to http(s) only (and,
    with ``same_host``, only on the same host); 4xx and 5xx are answers. ``shown``: the URL as
    messages name it (default: ``url`` with its password masked). At most ``max_body + 1``
    bytes of the body are read."""
    shown = shown or mask_url(url)
    started = time.perf_counter()

    def answer(status: int | None, body: bytes = b"", failure: str | None = None) -> Answer:
        return Answer(status=status, body=body, failure=failure, latency_ms=(time.perf_counter() - started) * 1000)

    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in _SCHEMES:
        return answer(None, failure=f"{shown} is not an http or https URL")
    try:
        opener = urllib.request.build_opener(_SameHostOnly if same_host else _SameSchemesOnly, _ErrorsAreAnswers)
        with opener.open(_request(url, method, headers or {}, data), timeout=timeout) as response:
            return answer(response.status, response.read(max_body + 1))
    except _Refused as refusal:
        return answer(None, failure=f"Did not follow {shown}: {refusal}")
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        return answer(None, failure=redact(f"Could not reach {shown}: {reason}"))


def connects(url: str, *, timeout: float) -> str | None:
    """Whether ``url``'s server accepts a connection, without sending it any request: a TCP
    connect (to the proxy urllib would use, if one is set for it) and, for https, the TLS
    handshake verified as a request's would be. None when it does, else one masked line saying
    why not. No HTTP is spoken, so no endpoint is called: this is how a pause hook is checked."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port or (443 if parts.scheme.lower() == "https" else 80)
    except ValueError:
        return f"{mask_url(url)} is not an http or https URL"
    if parts.scheme.lower() not in _SCHEMES or not host:
        return f"{mask_url(url)} is not an http or https URL"
    proxy = urllib.request.getproxies().get(parts.scheme.lower())
    if proxy and not urllib.request.proxy_bypass(host):
        via = urlsplit(proxy if "://" in proxy else "http://" + proxy)
        try:
            target, where = (via.hostname or "", via.port or 80), f"the proxy {mask_url(proxy)}"
        except ValueError:
            return f"the proxy {mask_url(proxy)} for {parts.scheme} is not a URL"
        tls = None  # through a proxy the TLS handshake needs a CONNECT request: not made
    else:
        target, where, tls = (host, port), f"{host}:{port}", host if parts.scheme.lower() == "https" else None
    try:
        with socket.create_connection(target, timeout=timeout) as sock:
            if tls is not None:
                with ssl.create_default_context().wrap_socket(sock, server_hostname=tls):
                    pass
    except ssl.SSLError as err:
        why = getattr(err, "verify_message", None) or err.reason or str(err)
        return redact(f"the TLS handshake with {where} failed: {why}")
    except OSError as err:
        return redact(f"could not connect to {where}: {err.strerror or err or type(err).__name__}")
    return None


def check_app_health(url: str, *, timeout: float = 5.0) -> AppHealth:
    """GET ``url`` once (``timeout`` seconds per connect and read) and read its migrations check."""
    shown = mask_url(url)
    got = call(url, timeout=timeout)

    def result(message: str, *, reachable: bool = True, http_status: int | None = None, **fields: Any) -> AppHealth:
        facts = {"status": None, "migrations_status": None, "migrations_version": None, "migrations_dirty": None}
        facts |= fields
        return AppHealth(url=shown, reachable=reachable, http_status=http_status, message=message,
                         latency_ms=got.latency_ms, **facts)

    if got.status is None:
        scheme_only = got.failure == f"{shown} is not an http or https URL"
        return result(got.failure + ("; the health check is only fetched over HTTP" if scheme_only else ""),
                      reachable=False)
    return _read(got.body, got.status, result)


def _read(body: bytes, code: int, result) -> AppHealth:
    said = f"HTTP {code}"
    if len(body) > _MAX_BODY:
        return result(f"{said}, but the body is over {_MAX_BODY} bytes, so not a health answer", http_status=code)
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        start = body[:60].decode("utf-8", "replace").strip().replace("\n", " ")
        return result(redact(f"{said}, but the body is not JSON: {start!r}"), http_status=code)
    status = _text(document.get("status")) if isinstance(document, dict) else None
    checks = document.get("checks") if isinstance(document, dict) else None
    migrations = checks.get("migrations") if isinstance(checks, dict) else None
    if not isinstance(migrations, dict):
        return result(f"{said}, but the body has no checks.migrations object", http_status=code, status=status)
    details = migrations.get("details") if isinstance(migrations.get("details"), dict) else {}
    version, dirty, migrations_status = details.get("version"), details.get("dirty"), _text(migrations.get("status"))
    fields = {"status": status, "migrations_status": migrations_status,
              "migrations_version": version if isinstance(version, int) and not isinstance(version, bool) else None,
              "migrations_dirty": dirty if isinstance(dirty, bool) else None}
    summary = f"{said}; migrations {migrations_status or 'status missing'}"
    app_says = _text(migrations.get("message"))
    return result(redact(f"{summary}: {app_says}" if app_says else summary), http_status=code, **fields)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
