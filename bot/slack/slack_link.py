"""Whether ``dbops serve`` has reached Slack, and getting there through an outage.

Slack's API unreachable, slow or answering 5xx does not stop ``dbops serve``: each attempt
that fails is logged as one line (``slack.unreachable``: the attempt, why, when the next is),
the next comes after a backoff (1 s doubling to 60 s, each wait between half and all of that,
so replicas do not retry in step), and ``/health``'s ``slack`` check fails until one
succeeds (``slack.connected``). A token Slack refuses at the very first attempt is a
configuration error: no retry fixes it.

An attempt is ``auth.test`` with the bot token (HTTP mode), then, for Socket Mode,
``apps.connections.open`` with the app token and the WebSocket it names. Once connected,
slack_sdk's Socket Mode client reconnects by itself; the check then follows its connection.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from typing import Callable, Sequence
from urllib.error import URLError

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.handler import RetryHandler

from commands.errors import ConfigError

DEFAULT_API_URL = "https://slack.com/api/"

log = structlog.get_logger("dbops.slack")
PROBE_TIMEOUT_SECONDS = 10
FIRST_DELAY_SECONDS, LONGEST_DELAY_SECONDS = 1.0, 60.0
REFUSED_TOKEN = ("invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                 "not_allowed_token_type")


@dataclass(frozen=True, kw_only=True)
class SlackCheck:
    """The ``slack`` check of ``/health``: unauthenticated, so no address, token or error text."""

    passed: bool
    message: str
    attempts: int

    def as_json(self) -> dict:
        return {"status": "pass" if self.passed else "fail", "message": self.message,
                "details": {"attempts": self.attempts}}


def failure_kind(err: BaseException) -> str:
    """What went wrong, in words fit for /health: no host, URL or token."""
    if isinstance(err, SlackApiError):
        status = err.response.status_code
        if status == 200 and err.response.get("error") in REFUSED_TOKEN:
            return f"token refused ({err.response.get('error')})"
        return f"HTTP {status}" if status != 200 else f"Slack answered {err.response.get('error')}"
    if isinstance(err, TimeoutError) or "timed out" in str(err):
        return "no answer in time"
    if isinstance(err, (URLError, OSError)):
        return "unreachable"
    return "connection failed"


def _describe(err: BaseException) -> str:
    """For the log: what the attempt met (a non-JSON answer is cut short)."""
    if isinstance(err, SlackApiError):
        return f"Slack answered HTTP {err.response.status_code}: {str(err.response.get('error'))[:200]}"
    return f"{type(err).__name__}: {err}"


def _refused_token(err: BaseException) -> str | None:
    if isinstance(err, SlackApiError) and err.response.status_code == 200:
        code = err.response.get("error")
        return code if code in REFUSED_TOKEN else None
    return None


class SlackLink:
    """Attempts to reach Slack until one succeeds; ``check`` says where that stands.

    ``connect`` is one attempt: it returns once connected and raises otherwise.
    ``connected`` says whether the connection still holds afterwards (Socket Mode's
    WebSocket); ``pause`` is the random factor of each wait (tests fix it)."""

    def __init__(self, connect: Callable[[], None], *, connected: Callable[[], bool] = lambda: True,
                 first_delay: float = FIRST_DELAY_SECONDS, longest_delay: float = LONGEST_DELAY_SECONDS,
                 pause: Callable[[], float] = random.random) -> None:
        self._connect, self._connected = connect, connected
        self.first_delay, self.longest_delay, self._pause = first_delay, longest_delay, pause
        self._delay = self._wait = 0.0
        self._lock = threading.Lock()
        self._up = False
        self._attempts = 0
        self._failure = "not tried yet"

    @property
    def up(self) -> bool:
        with self._lock:
            return self._up

    def attempt(self) -> bool:
        """One attempt; True once connected. A failure is logged with the wait before the next.
        Raises ConfigError when Slack refuses a token at the first attempt."""
        with self._lock:
            self._attempts += 1
            attempt = self._attempts
        try:
            self._connect()
        except Exception as err:  # noqa: BLE001 - whatever stops this attempt, the next may work
            refused = _refused_token(err)
            if refused and attempt == 1:
                raise ConfigError(f"Slack refused the token ({refused}): check SLACK_BOT_TOKEN and, for Socket "
                                  "Mode, SLACK_APP_TOKEN (an app-level token with connections:write).") from None
            self._delay = min(self.longest_delay, self._delay * 2) if self._delay else self.first_delay
            wait = self._delay * (0.5 + self._pause() / 2)
            with self._lock:
                self._failure = failure_kind(err)
            log.error("slack.unreachable", attempt=attempt, failure=self._failure,
                      error=_describe(err), retry_in_s=round(wait, 2))
            self._wait = wait
            return False
        with self._lock:
            self._up = True
        log.warning("slack.connected", attempts=attempt)
        return True

    def run(self, stop: threading.Event) -> bool:
        """Attempt, after each failure's wait, until connected (True) or ``stop`` is set (False)."""
        while not self.up:
            if stop.wait(self._wait):
                return False
            self.attempt()
        return True

    def check(self) -> SlackCheck:
        with self._lock:
            up, attempts, failure = self._up, self._attempts, self._failure
        if not up:
            return SlackCheck(passed=False, message=f"Slack's API not reached yet: {failure}; retrying",
                              attempts=attempts)
        if not self._connected():
            return SlackCheck(passed=False, message="Socket Mode connection lost; reconnecting", attempts=attempts)
        return SlackCheck(passed=True, message="connected", attempts=attempts)


def probe_client(token: str, api_url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS,
                 retry_handlers: Sequence[RetryHandler] = ()) -> WebClient:
    """A Web API client for attempts: no retries of its own (each attempt is one call, logged
    once by the link; ``retry_handlers`` may only observe, as the metrics' error counter does)
    and quiet (slack_sdk would log each failure again, unstructured)."""
    quiet = logging.getLogger("dbops.slack.probe")
    quiet.addHandler(logging.NullHandler())
    quiet.propagate = False
    return WebClient(token=token, base_url=api_url, timeout=timeout, retry_handlers=list(retry_handlers),
                     logger=quiet)


def http_link(bot_token: str, api_url: str, *, timeout: float = PROBE_TIMEOUT_SECONDS,
              retry_handlers: Sequence[RetryHandler] = (), **options) -> SlackLink:
    """HTTP mode: Slack is reached when ``auth.test`` accepts the bot token."""
    probe = probe_client(bot_token, api_url, timeout=timeout, retry_handlers=retry_handlers)
    return SlackLink(lambda: probe.auth_test(), **options)


def socket_mode_link(bot_token: str, app_token: str, api_url: str, handler, *,
                     timeout: float = PROBE_TIMEOUT_SECONDS, retry_handlers: Sequence[RetryHandler] = (),
                     **options) -> SlackLink:
    """Socket Mode: the bot token is accepted, and ``handler`` (bolt's SocketModeHandler) is
    connected to a WebSocket URL that ``apps.connections.open`` issued for this attempt (one
    URL admits one connection, so a failed attempt never reuses it)."""
    probe = probe_client(bot_token, api_url, timeout=timeout, retry_handlers=retry_handlers)

    def connect() -> None:
        probe.auth_test()
        handler.client.wss_uri = probe.apps_connections_open(app_token=app_token)["url"]
        handler.client.connect()

    return SlackLink(connect, connected=lambda: handler.client.is_connected(), **options)
