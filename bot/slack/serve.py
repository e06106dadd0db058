"""``dbops serve``: Socket Mode (``SLACK_APP_TOKEN``), or ``--http`` for the Events API.

    dbops serve [--config PATH] [--host H] [--port P]     Socket Mode; /health and /metrics on P if given
    dbops serve --http [--host H] [--port P] [--config PATH]

The port is bound to 127.0.0.1 unless ``--host`` says otherwise (``--host 0.0.0.0`` in a
container, where probes, scrapers and the ingress arrive on the pod's address): /health and
/metrics are unauthenticated, and Slack's requests arrive through a TLS proxy in any case.

Outages do not stop it. Slack unreachable, slow or failing at start: the first attempt is
made before /health is served, then ``bot.slack.slack_link`` keeps trying with backoff while
/health says so, and the bot answers as soon as Slack is reached. The control database
unreachable at start: read-only commands answer (saying their audit record was not
written), state-changing ones are refused, and its schema is brought up to date as soon as
it can be reached (tried here with backoff, and before any command's audit record).

SIGTERM and SIGINT stop it: the HTTP server stops taking requests first.
"""

from __future__ import annotations

import os
import signal
import threading

import structlog

from bot.slack.app import SlackSettings, build_bot
from bot.slack.http import make_server, wsgi_app
from bot.slack.slack_link import FIRST_DELAY_SECONDS, LONGEST_DELAY_SECONDS, SlackLink, http_link, socket_mode_link
from commands.config import Settings
from commands.errors import CommandError, DatabaseUnreachable, UsageError
from commands.pg.control import ensure_control_schema

log = structlog.get_logger("dbops.serve")
DEFAULT_PORT = 3000
DEFAULT_HOST = "127.0.0.1"


def _port(value: str | None) -> int | None:
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise UsageError(f"--port must be a port number (1-65535), not {value!r}.")
    return int(value)


def _in_background(name: str, target, *args) -> None:
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def keep_preparing_control(url: str, stop: threading.Event) -> None:
    """Bring the control database's schema up to date once it can be reached: one log line
    per failed attempt, backing off as the Slack attempts do, until done or ``stop``."""
    delay = FIRST_DELAY_SECONDS
    while not stop.wait(delay):
        try:
            ensure_control_schema(url)
        except DatabaseUnreachable as err:
            delay = min(delay * 2, LONGEST_DELAY_SECONDS)
            log.error("control.unreachable", error=err.message, retry_in_s=delay)
            continue
        except CommandError as err:  # reached, but it cannot be migrated: a person must look
            log.error("control.migration_failed", error=err.message)
            return
        log.warning("control.reachable")
        return


def serve(settings: Settings, *, http: bool, host: str | None, port: str | None) -> int:
    chosen = _port(port)
    slack = SlackSettings.from_environ(os.environ, socket_mode=not http)
    bot = build_bot(settings, slack, socket_mode=not http)
    stop = threading.Event()

    def shut_down(signum, _frame) -> None:
        log.warning("serve.stopping", signal=signal.Signals(signum).name)
        stop.set()
        if http:
            raise SystemExit(0)  # waitress's run() stops its workers on SystemExit

    handler = None
    try:
        # Before the first attempt to reach Slack, which may take PROBE_TIMEOUT_SECONDS.
        signal.signal(signal.SIGTERM, shut_down)
        signal.signal(signal.SIGINT, shut_down)
        link: SlackLink
        counted = [bot.metrics.slack_errors]  # the attempts' failures count as Slack API errors too
        if http:
            link = http_link(slack.bot_token, slack.api_url, retry_handlers=counted)
        else:
            from slack_bolt.adapter.socket_mode import SocketModeHandler
            handler = SocketModeHandler(bot.app, slack.app_token)
            link = socket_mode_link(slack.bot_token, slack.app_token, slack.api_url, handler, retry_handlers=counted)
        link.attempt()  # a token Slack refuses stops here; a start that reaches Slack is healthy at once
        server = None
        if http or chosen is not None:
            application = wsgi_app(settings, bot.executor.databases, bot.app if http else None,
                                   signing_secret=slack.signing_secret, slack=link.check, metrics=bot.metrics)
            server = make_server(application, host=host or DEFAULT_HOST, port=chosen or DEFAULT_PORT)
            log.warning("serve.listening", host=host or DEFAULT_HOST, port=server.effective_port,
                        mode="http" if http else "socket-mode health and metrics only")
        if not link.up:
            _in_background("slack-link", link.run, stop)
        if not bot.control_ready:
            _in_background("control-schema", keep_preparing_control, settings.control_database_url, stop)
        if bot.watchers is not None:
            bot.watchers.start()
        if http:
            server.run()
        else:
            if server is not None:
                _in_background("health", server.run)
            stop.wait()
    finally:
        stop.set()
        if handler is not None:
            handler.close()
        bot.stop()
    return 0
