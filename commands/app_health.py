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


class _Refused(Exception):
    pass


class _SameSchemesOnly(urllib.request.HTTPRedirectHandler):
    """Follows a redirect only to another http(s) URL (urllib alone would follow ftp://)."""

    def http_error_302(self, req, fp, code, msg, headers):
        target = urljoin(req.full_url, headers.get("Location") or headers.get("URI") or "")
        if urlsplit(target).scheme.lower() not in _SCHEMES:
            fp.close()
            raise _Refused(f"it redirected to {mask_url(target)}; only http and https are followed")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class _ErrorsAreAnswers(urllib.request.HTTPErrorProcessor):
    """Returns 4xx and 5xx responses instead of raising: 503 is how a failing check answers."""

    def http_response(self, request, response):
        if response.status >= 400:
            return response
        return super().http_response(request, response)

    https_response = http_response


def _request(url: str) -> urllib.request.Request:
    """urllib does not take credentials from the URL; send them as Basic auth instead."""
    parts = urlsplit(url)
    if parts.username is None:
        return urllib.request.Request(url)
    bare = urlunsplit(parts._replace(netloc=parts.netloc.rsplit("@", 1)[1]))
    pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
    return urllib.request.Request(bare, headers={"Authorization": "Basic " + base64.b64encode(pair).decode()})


def check_app_health(url: str, *, timeout: float = 5.0) -> AppHealth:
    """GET ``url`` once (``timeout`` seconds per connect and read) and read its migrations check."""
    shown = mask_url(url)
    started = time.perf_counter()

    def result(message: str, *, reachable: bool = True, http_status: int | None = None, **fields: Any) -> AppHealth:
        facts = {"status": None, "migrations_status": None, "migrations_version": None, "migrations_dirty": None}
        facts |= fields
        return AppHealth(url=shown, reachable=reachable, http_status=http_status, message=message,
                         latency_ms=(time.perf_counter() - started) * 1000, **facts)

    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        scheme = ""
    if scheme not in _SCHEMES:
        return result(f"{shown} is not an http or https URL; the health check is only fetched over HTTP",
                      reachable=False)
    try:
        opener = urllib.request.build_opener(_SameSchemesOnly, _ErrorsAreAnswers)
        with opener.open(_request(url), timeout=timeout) as response:
            code, body = response.status, response.read(_MAX_BODY + 1)
    except _Refused as refusal:
        return result(f"Did not follow {shown}: {refusal}", reachable=False)
    except (urllib.error.URLError, http.client.HTTPException, OSError, ValueError) as err:
        reason = err.reason if isinstance(err, urllib.error.URLError) else err
        return result(redact(f"Could not reach {shown}: {reason}"), reachable=False)
    return _read(body, code, result)


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
