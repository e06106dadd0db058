"""Slack Web API errors, counted by method and Slack's error code.

slack_sdk hands every answer (a 200 included, with its parsed body) and every failure to
reach Slack to the client's retry handlers, and bolt copies the app client's handlers into
each request's client. So one handler that never retries, placed first, sees every call the
bot makes: the listeners', the progress messages', the watchers' and the approval sweeper's.

The labels are bounded whatever the server answers: a method or code that does not look like
Slack's, or any past the first ``MOST`` distinct ones, is counted as "other".
"""

from __future__ import annotations

import json
import re
import threading
from typing import Optional
from urllib.parse import urlsplit

from prometheus_client import Counter
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState

MOST = 64
_METHOD = re.compile(r"^[a-z][A-Za-z]*(\.[a-z][A-Za-z]*)+$")  # chat.postMessage, usergroups.users.list
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")                 # channel_not_found, ratelimited


class Bounded:
    """Label values admitted as they are while they look right and are among the first ``most``."""

    def __init__(self, pattern: re.Pattern, most: int = MOST) -> None:
        self.pattern, self.most = pattern, most
        self._seen: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, value: str) -> str:
        if not self.pattern.match(value):
            return "other"
        with self._lock:
            if value not in self._seen and len(self._seen) >= self.most:
                return "other"
            self._seen.add(value)
        return value


def _code(response: Optional[HttpResponse], error: Optional[Exception]) -> str | None:
    """Slack's error code of an answer, "http_NNN" when an error status carries none,
    "unreachable" when there was no answer; None for a successful call."""
    if response is None:
        return "unreachable" if error is not None else None
    body = response.body
    if body is None and response.data:
        try:
            body = json.loads(response.data)
        except ValueError:  # an HTML error page from a load balancer
            body = None
    if response.status_code == 200:
        return None if not isinstance(body, dict) or body.get("ok", True) else str(body.get("error") or "http_200")
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        return body["error"]
    return f"http_{response.status_code}"


class SlackErrorCounter(RetryHandler):
    """A retry handler that counts what fails and never retries (the next handlers decide that)."""

    def __init__(self, counter: Counter) -> None:
        super().__init__(max_retry_count=0)
        self.counter = counter
        self.methods, self.codes = Bounded(_METHOD), Bounded(_CODE)

    def can_retry(self, *, state: RetryState, request: HttpRequest, response: Optional[HttpResponse] = None,
                  error: Optional[Exception] = None) -> bool:
        code = _code(response, error)
        if code is not None:
            method = urlsplit(request.url).path.rsplit("/", 1)[-1]
            self.counter.labels(self.methods(method), self.codes(code)).inc()
        return False

    def _can_retry(self, **_: object) -> bool:
        return False

    def __deepcopy__(self, memo: dict) -> "SlackErrorCounter":
        # bolt deep-copies each request's context, client and handlers included, for its lazy
        # listeners: every copy must count into the one counter (which holds locks, uncopyable).
        return self
