"""The channel message that shows a long operation while it runs.

It is posted at the operation's first step, updated whenever the step changes and at least
every ``interval`` seconds with the step and the time elapsed (and, for a snapshot, the bytes
written against the database's size), and replaced by the result at the end. While the
message exists the operation is recorded in the control database with a heartbeat.
"""

from __future__ import annotations

import threading
import time
from typing import Callable

import structlog
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.blocks.render import Message, render_progress
from bot.slack.operations import OperationTracker
from commands.results import Progress

log = structlog.get_logger("dbops.progress")


class ProgressMessage:
    def __init__(self, client: WebClient, *, channel: str, user: str, command: str, environment: str | None,
                 interval: float, tracker: OperationTracker | None = None, ts: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``ts``: show the progress in that existing message (an approval's card) instead of a new one."""
        self.client = client
        self.channel, self.user, self.command, self.environment = channel, user, command, environment
        self.interval = interval
        self.tracker = tracker
        self.clock = clock
        self.started = clock()
        self.ts = ts
        self.operation_id: int | None = None
        self._latest: Progress | None = None
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def began(self) -> bool:
        """Whether the operation started (the policy let it through)."""
        with self._lock:
            return self._latest is not None

    def __call__(self, progress: Progress) -> None:
        """The executor's progress callback: called from the operation's thread."""
        with self._lock:
            previous, self._latest = self._latest, progress
        if previous is None:  # the first step: show the message, then keep it fresh
            self._begin()
        elif self.ts is not None and (previous.step != progress.step or progress.lock_wait != previous.lock_wait):
            self._update(self._progress_message())
            if self.tracker is not None and self.operation_id is not None and previous.step != progress.step:
                self.tracker.record_step(self.operation_id, progress.step)

    def stop(self, outcome: str) -> None:
        """Stop updating, and record the operation finished."""
        self._done.set()
        if self._ticker is not None:
            self._ticker.join()
        if self.tracker is not None and self.operation_id is not None:
            self.tracker.finish(self.operation_id, outcome)

    def finish(self, message: Message, outcome: str) -> bool:
        """Stop, and replace the progress message with the result; False if there was none."""
        self.stop(outcome)
        if self.ts is None:
            return False
        return self._update(message)

    def _progress_message(self) -> Message:
        with self._lock:
            latest = self._latest
        return render_progress(command=self.command, user=self.user, progress=latest,
                               elapsed_s=self.clock() - self.started)

    def _begin(self) -> None:
        message = self._progress_message()
        if self.ts is not None:
            self._update(message)
        else:
            try:
                response = self.client.chat_postMessage(channel=self.channel, text=message.text, blocks=message.blocks)
            except (SlackApiError, OSError) as err:
                # The operation must not fail for want of a progress message; its result will
                # be delivered through the command's response URL instead. Tried once only: a
                # channel the bot cannot post in stays that way.
                log.warning("progress.post_failed", error=_why(err))
                return
            self.ts = response["ts"]
        if self.tracker is not None:
            self.operation_id = self.tracker.start(environment=self.environment, command=self.command,
                                                   actor=self.user, channel=self.channel, message_ts=self.ts)
        self._ticker = threading.Thread(target=self._tick, name=f"progress-{self.ts}", daemon=True)
        self._ticker.start()

    def _tick(self) -> None:
        while not self._done.wait(self.interval):
            self._update(self._progress_message())

    def _update(self, message: Message) -> bool:
        try:
            self.client.chat_update(channel=self.channel, ts=self.ts, text=message.text, blocks=message.blocks)
            return True
        except (SlackApiError, OSError) as err:
            # Progress is a courtesy (Slack may be rate-limiting or unreachable): the operation
            # goes on, and a result that cannot replace the message is delivered another way.
            log.warning("progress.update_failed", error=_why(err))
            return False


def _why(err: Exception) -> str:
    return err.response.get("error", "?") if isinstance(err, SlackApiError) else f"{type(err).__name__}: {err}"
