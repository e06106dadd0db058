"""A tiny Slack Web API on 127.0.0.1 for the console: the bot's client talks to it over HTTP
(``SLACK_API_URL``), and each message it receives is handed to ``show`` to be printed.

Methods: auth.test, chat.postMessage, chat.update, chat.postEphemeral, views.open,
usergroups.users.list; and ``/respond/<id>`` for response URLs. Messages are kept (with a
short id, ``m1``, ``m2``…) so their buttons can be pressed; a modal from views.open waits in
``modals`` until the console asks for its input. Anything else answers ``unknown_method``.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from bot.console.payloads import BOT_ID, BOT_USER_ID, TEAM_ID


@dataclass
class Posted:
    """One message as the channel shows it. ``ephemeral_to``: the one user who sees it."""

    key: str
    channel: str
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    ephemeral_to: str | None = None


@dataclass(frozen=True)
class Shown:
    """What happened to a message: "posted", "updated" or "ephemeral"."""

    kind: str
    message: Posted


def _blocks(value: Any) -> list[dict[str, Any]]:
    return json.loads(value) if isinstance(value, str) else list(value or [])


class LocalSlack:
    def __init__(self, show: Callable[[Shown], None]) -> None:
        self.show = show
        self.messages: dict[str, Posted] = {}
        self.modals: list[dict[str, Any]] = []
        self._urls: dict[str, dict[str, Any]] = {}
        self._counter = itertools.count(1)
        self._numbers = itertools.count(1)  # message keys: m1, m2, … in the order shown
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._methods = {"auth.test": self._auth_test, "chat.postMessage": self._post_message,
                         "chat.update": self._update, "chat.postEphemeral": self._post_ephemeral,
                         "views.open": self._views_open, "usergroups.users.list": self._usergroup}

    # --- lifecycle ----------------------------------------------------------------------
    def start(self) -> LocalSlack:
        handler = type("Handler", (_Handler,), {"slack": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="console-slack", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def base_url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def api_url(self) -> str:
        return self.base_url + "/api/"

    def response_url(self, *, channel: str, user: str, message_ts: str | None = None) -> str:
        """A response URL for an interaction by ``user`` in ``channel`` (on message ``message_ts``)."""
        with self._lock:
            url_id = f"r{next(self._counter)}"
            self._urls[url_id] = {"channel": channel, "user": user, "message_ts": message_ts}
        return f"{self.base_url}/respond/{url_id}"

    def trigger_id(self) -> str:
        return f"{next(self._counter)}.console-trigger"

    # --- the store ----------------------------------------------------------------------
    def _new(self, channel: str, params: dict, ephemeral_to: str | None = None) -> Posted:
        with self._lock:
            n = next(self._numbers)
            message = Posted(key=f"m{n}", channel=channel, ts=f"1700000000.{n:06d}", text=params.get("text") or "",
                             blocks=_blocks(params.get("blocks")), ephemeral_to=ephemeral_to)
            self.messages[message.key] = message
        self.show(Shown("ephemeral" if ephemeral_to else "posted", message))
        return message

    def find(self, channel: str, ts: str) -> Posted | None:
        with self._lock:
            return next((m for m in self.messages.values() if m.channel == channel and m.ts == ts), None)

    def _replace(self, message: Posted, params: dict) -> None:
        with self._lock:
            message.text, message.blocks = params.get("text") or "", _blocks(params.get("blocks"))
        self.show(Shown("updated", message))

    # --- Web API methods ----------------------------------------------------------------
    def call(self, method: str, params: dict) -> dict:
        handler = self._methods.get(method)
        return handler(params) if handler else {"ok": False, "error": "unknown_method"}

    def _auth_test(self, params: dict) -> dict:
        return {"ok": True, "url": "https://dbops-console.slack.com/", "team": "console", "user": "dbops",
                "team_id": TEAM_ID, "user_id": BOT_USER_ID, "bot_id": BOT_ID, "is_enterprise_install": False}

    def _post_message(self, params: dict) -> dict:
        message = self._new(params["channel"], params)
        return {"ok": True, "channel": message.channel, "ts": message.ts,
                "message": {"text": message.text, "blocks": message.blocks, "ts": message.ts}}

    def _post_ephemeral(self, params: dict) -> dict:
        message = self._new(params["channel"], params, ephemeral_to=params.get("user") or "?")
        return {"ok": True, "message_ts": message.ts}

    def _update(self, params: dict) -> dict:
        message = self.find(params["channel"], params["ts"])
        if message is None:
            return {"ok": False, "error": "message_not_found"}
        self._replace(message, params)
        return {"ok": True, "channel": message.channel, "ts": message.ts, "text": message.text}

    def _views_open(self, params: dict) -> dict:
        view = params["view"]
        view = json.loads(view) if isinstance(view, str) else view
        with self._lock:
            self.modals.append(view)
        return {"ok": True, "view": {**view, "id": "V0CONSOLE"}}

    def _usergroup(self, params: dict) -> dict:
        return {"ok": True, "users": []}  # the console has no user groups

    def ephemeral(self, channel: str, user: str, body: dict) -> None:
        """Show ``body`` (an ack's answer) to ``user`` alone."""
        self._new(channel, body, ephemeral_to=user)

    def respond(self, url_id: str, body: dict) -> int:
        with self._lock:
            target = self._urls.get(url_id)
        if target is None:
            return 404
        original = self.find(target["channel"], target["message_ts"]) if target["message_ts"] else None
        if original is not None and str(body.get("replace_original")).lower() == "true":
            self._replace(original, body)
        elif body.get("response_type") == "in_channel":
            self._new(target["channel"], body)
        else:
            self._new(target["channel"], body, ephemeral_to=target["user"])
        return 200


class _Handler(BaseHTTPRequestHandler):
    """HTTP only: parse the request, hand it to the LocalSlack, write its answer."""

    slack: LocalSlack

    def do_POST(self) -> None:
        url = urlsplit(self.path)
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("utf-8")
        if (self.headers.get("Content-Type") or "").startswith("application/json"):
            params = json.loads(raw or "{}")
        else:
            params = dict(parse_qsl(raw))
        if url.path.startswith("/respond/"):
            self._answer(self.slack.respond(url.path.removeprefix("/respond/"), params), "ok", "text/plain")
        elif url.path.startswith("/api/"):
            self._answer(200, json.dumps(self.slack.call(url.path.removeprefix("/api/"), params)), "application/json")
        else:
            self._answer(404, "not found", "text/plain")

    def _answer(self, status: int, body: str, content_type: str) -> None:
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the console prints messages, not requests
