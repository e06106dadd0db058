"""A real local HTTP server standing in for Slack, for tests.

``FakeSlack`` serves the Web API at ``api_url`` (what dbops reads from ``SLACK_API_URL``)
and one-off ``response_url`` endpoints. It answers as Slack does, rejects what Slack
rejects with Slack's error codes (rules in ``slack_fake_messages``), and records every call
so a test can assert on what a user would see. Waiting is on a condition variable.

The request builders (``sign``, ``slash_command_body``, ``block_actions_body``,
``press_button``) live in ``slack_fake_requests`` and are re-exported here. Socket Mode
(the WebSocket behind ``apps.connections.open``) lives in ``slack_fake_socket``.
"""

from __future__ import annotations

import copy
import itertools
import json
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qsl, urlsplit

from slack_sdk.errors import SlackObjectFormationError
from slack_sdk.models.views import View

from tests.slack_fake_messages import Message, SlackError, as_slack_message, block_errors, check_message
from tests.slack_fake_requests import (
    BOT_ID,
    BOT_USER_ID,
    TEAM_DOMAIN,
    TEAM_ID,
    block_actions_body,
    press_button,
    sign,
    slash_command_body,
    slash_command_fields,
)

__all__ = [
    "Call",
    "FakeSlack",
    "Message",
    "Response",
    "SlackError",
    "block_actions_body",
    "press_button",
    "sign",
    "slash_command_body",
    "slash_command_fields",
]

RESPONSE_URL_USES = 5  # Slack accepts five posts to one response_url


@dataclass(frozen=True)
class Call:
    """One Web API call as the fake received it (``params`` never holds the token).

    ``response`` is the JSON body the fake answered, e.g. ``response["ts"]`` of a post.
    """

    method: str
    params: dict[str, Any]
    ok: bool
    error: str | None = None
    status: int = 200
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Response:
    """One POST to a ``response_url``; ``ok`` is whether Slack would have accepted it."""

    url_id: str
    body: dict[str, Any]
    ok: bool = True
    error: str | None = None


class FakeSlack:
    """Slack's Web API and response URLs on ``127.0.0.1``; use as a context manager.

    Tokens: ``bot_token`` works for every method but ``apps.connections.open``, which
    needs ``app_token``; a missing token is ``not_authed``, an unknown one ``invalid_auth``.
    ``users`` maps user id to name, ``channels`` channel id to name, ``usergroups``
    group id to member ids (tests may change it while running).
    """

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        *,
        app_token: str = "xapp-test",
        users: dict[str, str] | None = None,
        channels: dict[str, str] | None = None,
        usergroups: dict[str, list[str]] | None = None,
        port: int = 0,
    ):
        """``port``: where to listen (0: a free one); a test may reserve one, point dbops at it
        while nothing listens there, and start the fake later."""
        self.bot_token, self.app_token = bot_token, app_token
        self.port = port
        self._outage: str | None = None
        self.users = users if users is not None else {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol"}
        self.channels = channels if channels is not None else {"C0INCIDENT": "incident", "C0ALERTS": "alerts"}
        self.usergroups = usergroups if usergroups is not None else {"S0DBAS": ["U0ALICE"]}
        self.usergroup_lookups: Counter[str] = Counter()
        self.calls: list[Call] = []
        self.responses: list[Response] = []
        self._messages: dict[tuple[str, str], Message] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._faults: dict[str, list[tuple[int, int]]] = {}
        self._ts = itertools.count(1)
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._server: ThreadingHTTPServer | None = None
        self._socket: Any = None
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "apps.connections.open": self._apps_connections_open,
            "views.open": self._views_open,
        }
        self.views: list[dict[str, Any]] = []  # modals opened, as sent

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> Self:
        """Listen on a free port of 127.0.0.1 in a daemon thread; return self."""
        handler = type("Handler", (_Handler,), {"fake": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        # A short poll interval only bounds how long stop() takes (shutdown waits for one poll).
        serve = lambda: self._server.serve_forever(poll_interval=0.01)
        threading.Thread(target=serve, name="fake-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop serving (and the Socket Mode peer, if one was started)."""
        self.outage(None)  # no request is left hanging
        if self._socket is not None:
            self._socket.stop()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        assert self._server is not None, "FakeSlack is not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        """Base URL for ``WebClient(base_url=...)``; the trailing slash matters (urljoin)."""
        return f"{self.base_url}/api/"

    @property
    def socket(self) -> Any:
        """The Socket Mode peer (``slack_fake_socket.SocketModePeer``), started on first use."""
        with self._cond:
            if self._socket is None:
                from tests.slack_fake_socket import SocketModePeer

                self._socket = SocketModePeer().start()
            return self._socket

    # ---- test controls -----------------------------------------------------------------

    def fail_next(self, method: str, status: int = 429, retry_after: int = 1, count: int = 1) -> None:
        """Answer the next ``count`` calls to ``method`` with HTTP ``status``.

        429 comes with ``Retry-After: retry_after`` and ``{"ok":false,"error":"ratelimited"}``,
        as Slack rate-limits; any other status with ``{"ok":false,"error":"internal_error"}``.
        """
        with self._cond:
            self._faults.setdefault(method, []).extend([(status, retry_after)] * count)

    def outage(self, how: str | None) -> None:
        """Until called again with None, answer every Web API call as a Slack outage would:
        "503" (HTTP 503 with an HTML page, as a load balancer answers), "hang" (hold the
        request open, unanswered, until the outage ends, then close it) or "drop" (close the
        connection without answering). Each such call is recorded with ``error="outage"``."""
        if how not in (None, "503", "hang", "drop"):
            raise ValueError(f"unknown outage {how!r}")
        with self._cond:
            self._outage = how
            self._cond.notify_all()

    def outage_now(self, method: str) -> str | None:
        """The outage a Web API call meets now (recording the call if there is one); a
        "hang" returns only when the outage ends, as "drop": its caller has given up by then."""
        with self._cond:
            how = self._outage
            if how is not None:
                self.calls.append(Call(method, {}, False, "outage", 503 if how == "503" else 0))
                self._cond.notify_all()
            if how == "hang":
                self._cond.wait_for(lambda: self._outage != "hang")
                return "drop"
            return how

    def response_url(self, channel: str = "C0INCIDENT", user: str = "U0ALICE", message_ts: str | None = None) -> str:
        """A new ``response_url`` for an interaction by ``user`` in ``channel``.

        Posts to it are validated like ``chat.postMessage`` and shown as Slack shows them:
        ``response_type: in_channel`` posts to the channel, otherwise an ephemeral message
        to ``user``; ``replace_original``/``delete_original`` act on the message at
        ``message_ts`` (the message whose button was pressed). After five accepted posts,
        ``used_url``; refusals are answered with HTTP 404 and the error code as plain text.
        """
        url_id = str(next(self._ids))
        with self._cond:
            self._response_urls[url_id] = {"channel": channel, "user": user, "message_ts": message_ts, "uses": 0}
        return f"{self.base_url}/respond/{url_id}"

    # ---- observations ------------------------------------------------------------------

    def calls_to(self, method: str) -> list[Call]:
        with self._cond:
            return [c for c in self.calls if c.method == method]

    def messages(self, channel: str) -> list[Message]:
        """Every message posted to ``channel`` (threads, ephemerals, deleted ones too), oldest first."""
        with self._cond:
            return [m for (ch, _), m in self._messages.items() if ch == channel]

    def wait_for(self, predicate: Callable[[Call], bool], timeout: float = 10) -> Call:
        """The first recorded call matching ``predicate``, waiting up to ``timeout`` s for it."""
        found = lambda: next((c for c in self.calls if predicate(c)), None)
        return self._wait(found, timeout, "call", lambda: self.calls)

    def wait_for_message(self, channel: str, predicate: Callable[[Message], bool], timeout: float = 10) -> Message:
        """The first message in ``channel`` whose current state matches ``predicate``."""
        found = lambda: next((m for m in self.messages(channel) if predicate(m)), None)
        return self._wait(found, timeout, f"message in {channel}", lambda: self.messages(channel))

    def wait_for_response(self, predicate: Callable[[Response], bool], timeout: float = 10) -> Response:
        """The first ``response_url`` post matching ``predicate``."""
        found = lambda: next((r for r in self.responses if predicate(r)), None)
        return self._wait(found, timeout, "response", lambda: self.responses)

    def _wait(self, find: Callable[[], Any], timeout: float, what: str, seen: Callable[[], list]) -> Any:
        with self._cond:
            result = self._cond.wait_for(find, timeout)
            if result is None:
                raise AssertionError(f"no matching {what} within {timeout} s; seen: {seen()!r}")
            return result

    # ---- the Web API -------------------------------------------------------------------

    def handle_api(self, method: str, params: dict[str, Any], token: str | None) -> tuple[int, dict, dict]:
        """Answer one Web API call: (HTTP status, extra headers, JSON body). Records it."""
        status, headers = 200, {}
        with self._cond:
            fault = self._faults.get(method, []).pop(0) if self._faults.get(method) else None
        try:
            if fault:
                status, retry_after = fault
                headers = {"Retry-After": str(retry_after)} if status == 429 else {}
                raise SlackError("ratelimited" if status == 429 else "internal_error")
            if method not in self._methods:
                raise SlackError("unknown_method")
            if not token:
                raise SlackError("not_authed")
            if token not in (self.bot_token, self.app_token):
                raise SlackError("invalid_auth")
            if (token == self.app_token) != (method == "apps.connections.open"):
                raise SlackError("not_allowed_token_type")
            body = {"ok": True, **self._methods[method](params)}
        except SlackError as refusal:
            body = {"ok": False, "error": refusal.code, **refusal.extra}
        self._record(self.calls, Call(method, params, body["ok"], body.get("error"), status, body))
        return status, headers, body

    def _auth_test(self, params: dict) -> dict:
        return {
            "url": f"https://{TEAM_DOMAIN}.slack.com/",
            "team": TEAM_DOMAIN,
            "user": "dbops",
            "team_id": TEAM_ID,
            "user_id": BOT_USER_ID,
            "bot_id": BOT_ID,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict) -> dict:
        channel = _required(params, "channel")
        text, blocks = check_message(params)
        message = self._post(channel, text, blocks, thread_ts=params.get("thread_ts"))
        return {"channel": channel, "ts": message.ts, "message": as_slack_message(message)}

    def _chat_post_ephemeral(self, params: dict) -> dict:
        channel, user = _required(params, "channel"), _required(params, "user")
        if user not in self.users:
            raise SlackError("user_not_in_channel")
        text, blocks = check_message(params)
        return {"message_ts": self._post(channel, text, blocks, params.get("thread_ts"), ephemeral_to=user).ts}

    def _chat_update(self, params: dict) -> dict:
        channel, ts = _required(params, "channel"), _required(params, "ts")
        text, blocks = check_message(params)
        message = self._update(channel, ts, params, text, blocks)
        return {"channel": channel, "ts": ts, "text": message.text or "", "message": as_slack_message(message)}

    def _views_open(self, params: dict) -> dict:
        """A modal: a known trigger, and a view slack_sdk's View model accepts unchanged."""
        _required(params, "trigger_id")
        raw = params.get("view")
        view = json.loads(raw) if isinstance(raw, str) else raw
        if not isinstance(view, dict) or view.get("type") != "modal":
            raise SlackError("invalid_arguments")
        errors = block_errors(view.get("blocks") or [])
        try:
            rendered = View(**copy.deepcopy(view)).to_dict()
        except (SlackObjectFormationError, TypeError) as invalid:
            errors.append(str(invalid))
            rendered = view
        if errors or rendered != view:
            raise SlackError("invalid_arguments", errors=errors or ["view has unknown or invalid fields"])
        with self._cond:
            self.views.append(view)
            self._cond.notify_all()
        return {"view": {"id": f"V{len(self.views):08d}", **view}}

    def _usergroups_users_list(self, params: dict) -> dict:
        group = _required(params, "usergroup")
        with self._cond:
            self.usergroup_lookups[group] += 1
            if group not in self.usergroups:
                raise SlackError("no_such_subteam")
            return {"users": list(self.usergroups[group])}

    def _conversations_info(self, params: dict) -> dict:
        channel = _required(params, "channel")
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        return {
            "channel": {
                "id": channel,
                "name": self.channels[channel],
                "is_channel": True,
                "is_private": False,
                "is_archived": False,
                "is_member": True,
            }
        }

    def _apps_connections_open(self, params: dict) -> dict:
        return {"url": self.socket.new_url()}

    # ---- message state -----------------------------------------------------------------

    def _post(
        self,
        channel: str,
        text: str | None,
        blocks: list | None,
        thread_ts: str | None = None,
        ephemeral_to: str | None = None,
    ) -> Message:
        n = next(self._ts) * 100
        ts = f"{1_700_000_000 + n // 1_000_000}.{n % 1_000_000:06d}"
        message = Message(channel, ts, text, blocks, thread_ts, ephemeral_to)
        with self._cond:
            self._messages[(channel, ts)] = message
            self._cond.notify_all()
        return message

    def _update(self, channel: str, ts: str, params: dict, text: str | None, blocks: list | None) -> Message:
        """Apply an edit: a field left out keeps its old value, as chat.update does."""
        with self._cond:
            old = self._messages.get((channel, ts))
            if old is None or old.deleted:
                raise SlackError("message_not_found")
            new = replace(
                old,
                text=old.text if text is None else text,
                blocks=old.blocks if blocks is None else (blocks or None),
                updates=(*old.updates, params),
            )
            self._messages[(channel, ts)] = new
            self._cond.notify_all()
            return new

    def _record(self, log: list, entry: Any) -> None:
        with self._cond:
            log.append(entry)
            self._cond.notify_all()

    # ---- response_url ------------------------------------------------------------------

    def handle_response(self, url_id: str, body: dict[str, Any]) -> tuple[int, str]:
        """Answer one ``response_url`` post: (HTTP status, plain-text body) as Slack does."""
        try:
            with self._cond:
                target = self._response_urls.get(url_id)
                if target is None:
                    raise SlackError("expired_url")
                if target["uses"] >= RESPONSE_URL_USES:
                    raise SlackError("used_url")
                self._respond(target, body)
                target["uses"] += 1
        except SlackError as refusal:
            self._record(self.responses, Response(url_id, body, False, refusal.code))
            return 404, refusal.code
        self._record(self.responses, Response(url_id, body))
        return 200, "ok"

    def _respond(self, target: dict, body: dict) -> None:
        channel, ts = target["channel"], target["message_ts"]
        if _flag(body.get("delete_original")):
            with self._cond:
                if (channel, ts) in self._messages:
                    self._messages[(channel, ts)] = replace(self._messages[(channel, ts)], deleted=True)
                    self._cond.notify_all()
            return
        text, blocks = check_message(body)
        if _flag(body.get("replace_original")) and ts is not None:
            self._update(channel, ts, body, text, blocks or [])  # a replacement replaces the whole message
        elif body.get("response_type") == "in_channel":
            self._post(channel, text, blocks, body.get("thread_ts"))
        else:
            self._post(channel, text, blocks, body.get("thread_ts"), ephemeral_to=target["user"])


class _Handler(BaseHTTPRequestHandler):
    """HTTP transport only: parse the request, hand it to the fake, write its answer."""

    fake: FakeSlack

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        is_json = (self.headers.get("Content-Type") or "").startswith("application/json")
        try:
            params = {**dict(parse_qsl(url.query)), **(json.loads(raw or "{}") if is_json else dict(parse_qsl(raw)))}
        except json.JSONDecodeError:
            return self._answer(200, {}, json.dumps({"ok": False, "error": "invalid_json"}), "application/json")
        if url.path.startswith("/api/"):
            outage = self.fake.outage_now(url.path.removeprefix("/api/"))
            if outage == "503":
                return self._answer(503, {}, "<html><body><h1>503 Service Unavailable</h1></body></html>",
                                    "text/html")
            if outage == "drop":
                self.close_connection = True
                return None
            auth = self.headers.get("Authorization") or ""
            form_token = params.pop("token", None)
            token = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else form_token
            status, headers, body = self.fake.handle_api(url.path.removeprefix("/api/"), params, token)
            self._answer(status, headers, json.dumps(body), "application/json; charset=utf-8")
        elif url.path.startswith("/respond/"):
            status, text = self.fake.handle_response(url.path.removeprefix("/respond/"), params)
            self._answer(status, {}, text, "text/plain; charset=utf-8")
        else:
            self._answer(404, {}, "not found", "text/plain")

    do_GET = do_POST

    def _answer(self, status: int, headers: dict, body: str, content_type: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        for name, value in {"Content-Type": content_type, "Content-Length": str(len(data)), **headers}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the fake's record is ``calls``, not stderr."""


def _required(params: dict, name: str) -> str:
    if not params.get(name):
        raise SlackError({"channel": "channel_not_found", "ts": "message_not_found"}.get(name, "invalid_arguments"))
    return params[name]


def _flag(value: Any) -> bool:
    return value in (True, 1, "1", "true", "True")
