"""``dbops serve``: Socket Mode (``SLACK_APP_TOKEN``), or ``--http`` for the Events API.

    dbops serve [--config PATH] [--host H] [--port P]     Socket Mode; /health on P if given
    dbops serve --http [--host H] [--port P] [--config PATH]

The port is bound to 127.0.0.1 unless ``--host`` says otherwise (``--host 0.0.0.0`` in a
container, where probes and the ingress arrive on the pod's address): /health is
unauthenticated, and Slack's requests arrive through a TLS proxy in any case.

SIGTERM and SIGINT stop it: the HTTP server stops taking requests first.
"""

from __future__ import annotations

import os
import signal
import threading

import structlog

from bot.app import SlackSettings, build_bot
from bot.http import make_server, wsgi_app
from commands.config import Settings
from commands.errors import UsageError

log = structlog.get_logger("dbops.serve")
DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"


def _port(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(f"--port must be a port number (1-65535), not {value!r}.")
    return int(value)


def serve(settings: Settings, *, http: bool, host: str | None, port: str | None) -> int:
    chosen = _port(port)
    slack = SlackSettings.from_environ(os.environ, socket_mode=not http)
    bot = build_bot(settings, slack, socket_mode=not http)
    databases = bot.executor.databases
    stop = threading.Event()
    server = None
    if http or chosen is not None:
        application = wsgi_app(settings, databases, bot.app if http else None, signing_secret=slack.signing_secret)
        server = make_server(application, host=host or DEFAULT_HOST, port=chosen or DEFAULT_PORT)
        log.warning("serve.listening", host=host or DEFAULT_HOST, port=server.effective_port,
                    mode="http" if http else "socket-mode health only")

    def shut_down(signum, _frame) -> None:
        log.warning("serve.stopping", signal=signal.Signals(signum).name)
        stop.set()
        if http:
            raise SystemExit(0)  # waitress's run() stops its workers on SystemExit

    signal.signal(signal.SIGTERM, shut_down)
    signal.signal(signal.SIGINT, shut_down)
    if bot.watchers is not None:
        bot.watchers.start()
    try:
        if http:
            server.run()
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            if server is not None:
                threading.Thread(target=server.run, name="health", daemon=True).start()
            handler = SocketModeHandler(bot.app, slack.app_token)
            handler.connect()
            log.warning("serve.connected", mode="socket-mode")
            stop.wait()
            handler.close()
    finally:
        bot.stop()
    return 0
