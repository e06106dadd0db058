"""``dbops console``: a terminal that behaves like a Slack channel, running the real bot.

    dbops console [--config PATH] [--user NAME] [--verbose]

Who types: in the built-in demo (no configuration), any demo user, switched with ``--user``
and ``:as``. With a real configuration the console is a shell like any other: you are your
operating-system account's Slack id from ``[cli] users`` (or ``os:NAME``), and ``--user`` and
``:as`` are refused, since otherwise anyone at a terminal could approve as anyone.
Where: a channel the configuration maps to an environment (``console_channels``), said at start.
At a terminal, lines are edited with readline and kept in a history; the bot's log lines go to
a file, not into the conversation, unless ``--verbose`` (``console_terminal``).

The bolt App is the one ``dbops serve`` runs (``build_bot``: same listeners, renderers,
executor and approvals). Lines typed here become the requests Slack would send
(``console_payloads``) and go through ``App.dispatch`` in-process; the bot's Web API client
talks over HTTP to a local stand-in for Slack (``console_slack``), which prints every message
it receives as text (``terminal``), progress updates as they arrive. A button that
Slack would confirm first shows its dialog; at a terminal it asks, in a script the press confirms.

Before the next line is read, the console waits until the bot's work pool is idle, so a
script's output comes in a fixed order. The exit code of a script is 1 when any command
failed: the console hears every outcome from the listeners' one execute path (``observe``),
and counts "failed" and "error" (a fault), a usage error answered in the ack, a modal whose
input was refused, and a console line it does not understand. A line after ``:expect failed``
must fail instead (the tour's failing migration), and then counts as a success.
"""

from __future__ import annotations

import json
import re
import sys
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import TextIO

from slack_bolt.request import BoltRequest

from bot.slack.app import Bot, SlackSettings, build_bot
from bot.console.channels import CONSOLE_CHANNEL, Room, find, rooms, with_console_channel
from bot.console.payloads import (
    FORM,
    block_actions,
    buttons,
    slash_command,
    view_submission,
)
from bot.terminal import Names, Style, render_blocks
from bot.console.local_slack import LocalSlack, Shown
from bot.console.tty import console_log, interactive, log_to
from bot.cli.user import os_account
from commands import grammar as g
from commands.config import Settings
from commands.identity import Actor
from commands.errors import UsageError
from commands.identity import shell_user

FAILED_OUTCOMES = ("failed", "error")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,30}")
HELP = """Type a slash command as in Slack (/migrate status, /snapshot list, /rollback, /dbops help).
  N              press button N of the latest message with buttons
  :press MSG N   press button N of message MSG (m3)
  :as NAME       act as another user (the built-in demo only)
  :channel [ENV] move to the channel of environment ENV (or a channel's name or id); alone, list them
  :tick          run the bot's watchers once (dirty database, stale lock, disk)
  :expect failed the next line must fail (a script's exit code then counts that as success)
  :help          this list            :quit   leave
A line starting with # is a comment."""


class IdlePool(ThreadPoolExecutor):
    """A work pool that can be waited on until nothing submitted to it is running."""

    def __init__(self, workers: int) -> None:
        super().__init__(max_workers=workers, thread_name_prefix="dbops-console")
        self._pending = 0
        self._idle = threading.Condition()

    def submit(self, fn, /, *args, **kwargs):
        with self._idle:
            self._pending += 1
        future = super().submit(fn, *args, **kwargs)
        future.add_done_callback(self._done)
        return future

    def _done(self, _future) -> None:
        with self._idle:
            self._pending -= 1
            self._idle.notify_all()

    def wait_idle(self) -> None:
        with self._idle:
            self._idle.wait_for(lambda: self._pending == 0)


def user_id_for(name: str) -> str:
    """A user's id: a Slack id as given (``U0XYZ``), else ``U0`` and the name in capitals."""
    return name if _USER_ID.fullmatch(name) else "U0" + re.sub(r"[^A-Z0-9]", "", name.upper())


class Console:
    def __init__(self, settings: Settings, *, users: dict[str, str], user: str, channel: str,
                 channel_name: str | None = None, out: TextIO = sys.stdout, ansi: bool = False,
                 progress_interval: float = 2.0, can_switch_user: bool = False) -> None:
        """``can_switch_user``: ``:as`` works (demo users); otherwise ``user`` is who types, throughout.
        ``channel_name``: what to call ``channel`` (else the names of its environments)."""
        self.settings = settings
        self.users = dict(users)  # name -> id
        self.user = user
        self.can_switch_user = can_switch_user
        self.rooms = rooms(settings, {channel: channel_name} if channel_name else None)
        self.room = next((r for r in self.rooms if r.id == channel), None) or Room(channel, channel_name or channel, ())
        # Slack's "are you sure?" on a button: None in a script (pressing means it), else asks the person.
        self.confirm: Callable[[str], bool] | None = None
        self.out = out
        self.style = Style(ansi=ansi)
        self.progress_interval = progress_interval
        self.failures = 0
        self.expect_failure = False
        self.latest_with_buttons: str | None = None
        self._print = threading.Lock()
        self.slack = LocalSlack(self.show)
        self.pool = IdlePool(workers=8)
        self.bot: Bot | None = None

    # --- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> Console:
        self.slack.start()
        slack = SlackSettings(bot_token="xoxb-console", signing_secret="console", app_token=None,
                              api_url=self.slack.api_url)
        self.bot = build_bot(self.settings, slack, progress_interval=self.progress_interval,
                             application_name="dbops-console", verify_requests=False, work=self.pool,
                             observe=self._observed)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bot is not None:
            self.bot.stop()
        self.slack.stop()

    # --- output -------------------------------------------------------------------------
    @property
    def channel(self) -> str:
        return self.room.id

    @property
    def channel_name(self) -> str:
        return self.room.name

    @property
    def names(self) -> Names:
        return Names(users={uid: name for name, uid in self.users.items()},
                     channels={r.id: r.name for r in (*self.rooms, self.room)})

    def greeting(self, log: str | None) -> None:
        """Who, where, and where the log lines go: the first thing the console says."""
        where = self.room.describe() if self.room.environments else f"#{self.channel_name} ({self.channel})"
        logs = f" Log lines go to {log} (--verbose shows them here)." if log else ""
        self.say(f"dbops console: you are @{self.user} ({self.users[self.user]}) in {where}.{logs} Type :help.", "")

    def say(self, *lines: str) -> None:
        with self._print:
            for line in lines:
                print(line, file=self.out, flush=True)

    def show(self, shown: Shown) -> None:
        """Print a message the bot posted, replaced or showed privately (called from its threads)."""
        message = shown.message
        lines = render_blocks(message.blocks, message.text, self.names, self.style)
        if shown.kind == "updated" and message.text.startswith("⏳"):  # progress: a line per update
            first, *more = lines or [message.text]  # more: what the server says of a long statement
            self.say(*(self.style.dim(line) for line in (f"  {message.key} … {first}", *(f"    {m}" for m in more))))
            return
        if buttons(message.blocks):
            self.latest_with_buttons = message.key
        if shown.kind == "ephemeral":
            where = f"only visible to @{self.names.users.get(message.ephemeral_to or '', message.ephemeral_to)}"
        else:
            where = f"#{self.names.channels.get(message.channel, message.channel)}" + (
                " (updated)" if shown.kind == "updated" else "")
        self.say(f"── {message.key} · dbops · {where}", *(f"  {line}" for line in lines), "")

    def _observed(self, command: g.Command, actor: Actor, outcome: str) -> None:
        if outcome in FAILED_OUTCOMES:  # called from the work pool's threads
            with self._print:
                self.failures += 1

    # --- input --------------------------------------------------------------------------
    def run(self, line: str, ask: Callable[[str], str | None]) -> bool:
        """Run one line; ``ask`` reads a modal's input. False when the user wants to leave."""
        line = line.strip()
        if not line or line.startswith("#"):
            return True
        if line in (":quit", ":q", ":exit"):
            return False
        if line == ":expect failed":
            self.expect_failure = True
            return True
        expected, self.expect_failure, before = self.expect_failure, False, self.failures
        if line.startswith("/"):
            self._slash(line)
        elif line.isdigit():
            self._press(self.latest_with_buttons, int(line))
        elif line.startswith(":"):
            self._console_command(line)
        else:
            self._usage(f"Not a command: {line!r}. Type :help for the list.")
        self.pool.wait_idle()
        while self.slack.modals:
            self._modal(self.slack.modals.pop(0), ask)
            self.pool.wait_idle()
        if expected and self.failures > before:
            self.failures = before
            self.say("(failed, as expected)", "")
        elif expected:
            self._usage("expected that to fail, and it did not.")
        return True

    def _usage(self, text: str) -> None:
        self.failures += 1
        self.say(f"console: {text}", "")

    def _console_command(self, line: str) -> None:
        verb, *args = line.split()
        if verb == ":help":
            who = ", ".join(f"{name} ({uid})" + (" ← you" if name == self.user else "") for name, uid in self.users.items())
            others = [f"#{r.name} ({', '.join(r.environments)})" for r in self.rooms if r != self.room]
            self.say(HELP, f"Users: {who}. Channel: {self.room.describe()}."
                     + (f" Also: {'; '.join(others)}." if others else ""), "")
        elif verb == ":as" and not self.can_switch_user:
            self._usage(f":as is for the built-in demo. With a configuration you are who the operating system says: "
                        f"the account {self.user}, acting as {self.users[self.user]} ([cli] users).")
        elif verb == ":as" and len(args) == 1:
            self.user = args[0]
            self.users.setdefault(self.user, user_id_for(self.user))
            self.say(f"(now acting as @{self.user}, {self.users[self.user]})", "")
        elif verb == ":press" and len(args) == 2 and args[1].isdigit():
            self._press(args[0], int(args[1]))
        elif verb == ":tick":
            self._tick()
        elif verb == ":channel" and len(args) <= 1:
            self._channel(args[0] if args else None)
        else:
            self._usage(f"Unknown console command {line!r}. Type :help for the list.")

    def _channel(self, wanted: str | None) -> None:
        if wanted is None:
            self.say(*(("→ " if r == self.room else "  ") + r.describe() for r in self.rooms), "")
            return
        room = find(self.rooms, wanted)
        if room is None:
            known = ", ".join(f"#{r.name}" for r in self.rooms) or "none"
            self._usage(f"no channel {wanted!r} here. Channels: {known}.")
            return
        self.room = room
        self.say(f"(now in {room.describe()})", "")

    def _dispatch(self, body: str) -> dict | None:
        """Send ``body`` to the bot as Slack would; return the ack's JSON body, if any."""
        assert self.bot is not None
        response = self.bot.app.dispatch(BoltRequest(body=body, headers=FORM))
        if response.status != 200:
            self._usage(f"the bot answered HTTP {response.status}: {response.body}")
            return None
        return json.loads(response.body) if response.body else None

    def _slash(self, line: str) -> None:
        command, _, text = line.partition(" ")
        uid = self.users[self.user]
        body = slash_command(command, text.strip(), user_id=uid, user_name=self.user, channel_id=self.channel,
                             channel_name=self.channel_name, trigger_id=self.slack.trigger_id(),
                             response_url=self.slack.response_url(channel=self.channel, user=uid))
        ack = self._dispatch(body)
        if ack:  # the ack answers only a usage error, privately
            self.failures += 1
            self.slack.ephemeral(self.channel, uid, ack)

    def _press(self, key: str | None, number: int) -> None:
        message = self.slack.messages.get(key or "")
        choices = buttons(message.blocks) if message else []
        if message is None or not 1 <= number <= len(choices):
            self._usage(f"no button {number} to press" + (f" on {key}" if key else "") + ".")
            return
        block, element = choices[number - 1]
        if not self._confirmed(element.get("confirm")):
            self.say("(not pressed)", "")
            return
        uid, channel_name = self.users[self.user], self.names.channels.get(message.channel, message.channel)
        self.say(f"(@{self.user} pressed {element['text'].get('text', '')} on {message.key})", "")
        self._dispatch(block_actions(
            block=block, element=element, user_id=uid, user_name=self.user, channel_id=message.channel,
            channel_name=channel_name, message_ts=message.ts, trigger_id=self.slack.trigger_id(),
            response_url=self.slack.response_url(channel=message.channel, user=uid, message_ts=message.ts),
            message=None if message.ephemeral_to else {"text": message.text, "blocks": message.blocks}))

    def _confirmed(self, dialog: dict | None) -> bool:
        """Slack's confirmation dialog, if the button has one: shown, and answered."""
        if not dialog:
            return True
        self.say(f"  ⚠️ {dialog['title']['text']}", f"  {dialog['text']['text']}")
        if self.confirm is None:
            return True
        return self.confirm(f"  {dialog['confirm']['text']} or {dialog['deny']['text']}? "
                            f"[y = {dialog['confirm']['text']}] ")

    def _modal(self, view: dict, ask: Callable[[str], str | None]) -> None:
        self.say(*(f"  {line}" for line in render_blocks(view.get("blocks", []), "", self.names, self.style)))
        values: dict[str, dict[str, str]] = {}
        for block in view.get("blocks", []):
            if block.get("type") == "input":
                label = f"{view.get('title', {}).get('text', 'Modal')} · {block['label']['text']}"
                typed = ask(label)
                if typed is None:
                    self.say("(modal closed)", "")
                    return
                values[block["block_id"]] = {block["element"]["action_id"]: typed}
        uid = self.users[self.user]
        ack = self._dispatch(view_submission(view, values, user_id=uid, user_name=self.user,
                                             trigger_id=self.slack.trigger_id()))
        if ack and ack.get("response_action") == "errors":
            self._usage("the modal refused that: " + "; ".join(ack.get("errors", {}).values()))

    def _tick(self) -> None:
        assert self.bot is not None
        if self.bot.watchers is None:
            self._usage("the watchers need a control database ([control] database_url).")
            return
        for env in self.settings.environments.values():
            for watcher in (None, *self.bot.watchers.also):
                self.bot.watchers.tick(env, watcher)
        self.say("(watchers ticked)", "")


def script(console: Console, lines: Iterator[str]) -> int:
    """Run a script: each line echoed with who typed it; 1 if any command failed, else 0."""
    def ask(label: str) -> str | None:
        typed = next(lines, None)
        if typed is not None:
            console.say(f"> [{console.user}] {label}: {typed.rstrip()}")
        return None if typed is None else typed.rstrip("\n")

    for line in lines:
        if line.strip() and not line.startswith("#"):
            console.say(f"> [{console.user}] {line.rstrip()}")
        elif line.startswith("#"):
            console.say(line.rstrip())
        if not console.run(line, ask):
            break
    return 1 if console.failures else 0


def console(settings: Settings | None, *, user: str | None, stdin: TextIO = sys.stdin, out: TextIO = sys.stdout,
            verbose: bool = True) -> int:
    """``dbops console``: ``settings`` None runs the demo (an embedded PostgreSQL, alice and bob);
    with settings, the user is this process's operating-system account (``[cli] users``), in a
    channel of the configuration (``console_channels``). Unless ``verbose``, this process's log
    lines go to the console's log file instead of the terminal."""
    log = None if verbose else console_log()
    if log is not None:
        log_to(log)
    demo = settings is None
    channel_name = None
    if settings is None:
        from bot.console.demo import CONSOLE_USERS, demo_settings
        settings, users, channel, channel_name = (demo_settings(console=True), dict(CONSOLE_USERS), CONSOLE_CHANNEL,
                                                  "incident")
        user = user or next(iter(users))
        users.setdefault(user, user_id_for(user))
    else:
        account = os_account()
        users = {account: shell_user(account, settings.cli_users)}
        if user is not None:
            raise UsageError(f"dbops console --user is for the built-in demo. With --config you are who the operating "
                             f"system says: the account {account}, acting as {users[account]} ([cli] users).")
        user = account
        settings = with_console_channel(settings)
        channel = next((c for env in settings.environments.values() for c in env.channels), CONSOLE_CHANNEL)
    with Console(settings, users=users, user=user, channel=channel, channel_name=channel_name, out=out,
                 ansi=out.isatty(), can_switch_user=demo) as running:
        running.greeting(str(log) if log else None)
        return interactive(running) if stdin.isatty() else script(running, iter(stdin))
