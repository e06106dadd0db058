"""Slack's side of Socket Mode, for tests: the WebSocket that ``apps.connections.open`` names.

An app calls ``apps.connections.open`` with its app token (``xapp-...``) on ``FakeSlack``,
which answers with ``SocketModePeer.new_url()``: a ``ws://127.0.0.1`` URL carrying a
one-time ticket, as Slack's ``wss://wss-primary.slack.com/link/?ticket=...`` does. On
connecting, the app gets Slack's ``hello``; the test then sends envelopes with
``send_envelope`` and waits for the app's acknowledgements with ``wait_for_ack``.

slack_sdk's built-in client chooses TLS by port, not by scheme (443 means TLS, any other
port plain TCP), so a plain ``ws://`` URL on a free port is what it connects to as-is.
"""

from __future__ import annotations

import itertools
import json
import threading
import uuid
from typing import Any, Self
from urllib.parse import parse_qs, urlsplit

from slack_sdk.socket_mode.client import BaseSocketModeClient
from websockets.exceptions import ConnectionClosed
from websockets.sync.server import Server, ServerConnection, serve

from tests.slack_fake_requests import APP_ID


class SocketModePeer:
    """A WebSocket server speaking Slack's Socket Mode protocol to the app under test.

    Contract: each URL from ``new_url`` admits one connection (a reused or unknown ticket
    is closed with code 1008, policy violation); each connection is greeted with ``hello``;
    every JSON message the app sends back is recorded in ``acks``.
    """

    def __init__(self) -> None:
        self.acks: list[dict[str, Any]] = []
        self.connections: list[ServerConnection] = []
        self._tickets: set[str] = set()
        self._envelope_ids = itertools.count(1)
        self._cond = threading.Condition()
        self._server: Server | None = None

    def start(self) -> Self:
        self._server = serve(self._session, "127.0.0.1", 0)
        threading.Thread(target=self._server.serve_forever, name="fake-slack-socket", daemon=True).start()
        return self

    def stop(self) -> None:
        """Close the listening socket and every open connection (code 1001, going away)."""
        if self._server is not None:
            self._server.shutdown()

    def new_url(self) -> str:
        """A fresh one-connection URL, as ``apps.connections.open`` returns."""
        assert self._server is not None, "SocketModePeer is not started"
        ticket = uuid.uuid4().hex
        with self._cond:
            self._tickets.add(ticket)
        port = self._server.socket.getsockname()[1]
        return f"ws://127.0.0.1:{port}/link/?ticket={ticket}&app_id={APP_ID}"

    def wait_for_connection(self, timeout: float = 10) -> ServerConnection:
        """The newest open connection, waiting up to ``timeout`` s for the app to connect."""
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections, timeout):
                raise AssertionError(f"the app did not connect over Socket Mode within {timeout} s")
            return self.connections[-1]

    def send_envelope(self, type: str, payload: dict[str, Any], *, accepts_response_payload: bool | None = None) -> str:
        """Send one envelope (``slash_commands``, ``interactive``, ``events_api``) to the app.

        Waits for a connection first. Returns the envelope id the app must acknowledge.
        Slack lets slash commands (only, among these) answer within the ack's payload.
        """
        envelope_id = f"fake-envelope-{next(self._envelope_ids)}"
        accepts = type == "slash_commands" if accepts_response_payload is None else accepts_response_payload
        envelope = {"envelope_id": envelope_id, "payload": payload, "type": type, "accepts_response_payload": accepts}
        if type == "events_api":
            envelope |= {"retry_attempt": 0, "retry_reason": ""}
        self.wait_for_connection().send(json.dumps(envelope))
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 10) -> dict[str, Any]:
        """The app's acknowledgement of ``envelope_id`` (``{"envelope_id", "payload"?}``)."""
        with self._cond:
            ack = self._cond.wait_for(
                lambda: next((a for a in self.acks if a.get("envelope_id") == envelope_id), None), timeout
            )
            if ack is None:
                raise AssertionError(f"no ack for {envelope_id} within {timeout} s; acks seen: {self.acks!r}")
            return ack

    def _session(self, connection: ServerConnection) -> None:
        ticket = parse_qs(urlsplit(connection.request.path).query).get("ticket", [""])[0]
        with self._cond:
            admitted = ticket in self._tickets
            self._tickets.discard(ticket)
            if admitted:
                self.connections.append(connection)
                self._cond.notify_all()
        if not admitted:
            connection.close(code=1008, reason="invalid ticket")
            return
        try:
            connection.send(json.dumps(self._hello()))
            for message in connection:
                with self._cond:
                    self.acks.append(json.loads(message))
                    self._cond.notify_all()
        except ConnectionClosed:
            pass  # the app went away without a close frame; it reconnects with a new URL
        finally:
            with self._cond:
                self.connections.remove(connection)

    def _hello(self) -> dict[str, Any]:
        return {
            "type": "hello",
            "num_connections": len(self.connections),
            "debug_info": {"host": "applink-fake", "build_number": 1, "approximate_connection_time": 18060},
            "connection_info": {"app_id": APP_ID},
        }


def end_session(peer: SocketModePeer, client: BaseSocketModeClient) -> None:
    """Close the app's Socket Mode client quickly, Slack going away first.

    Left to itself, slack_sdk's built-in client takes 1 to 4 s to close: its receiver holds
    a lock through a 3 s socket timeout and its message processor waits 1 s on a queue.
    The peer's close frame ends the first at once; a ``None`` message (which the processor
    skips) ends the second. Reconnection is turned off so the close frame is not answered
    with a new ``apps.connections.open``.
    """
    client.auto_reconnect_enabled = False
    peer.stop()
    client.closed = True
    client.message_queue.put(None)
    client.close()
