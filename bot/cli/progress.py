"""A long command's progress in a terminal: the shell's counterpart of the channel's progress message.

Written to stderr, and only when stderr is a terminal (as git shows its progress), so stdout
holds the result alone for scripts and ``--format json``. A line each time the step changes and,
while it stays (a long statement's progress is sampled every second), at most one every
``interval`` seconds. A command that only reads (a status) has no step after "start": it prints
nothing.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Callable, TextIO

if TYPE_CHECKING:
    from bot.terminal import Names
    from commands.results import Progress

INTERVAL = 2.0


class ProgressLines:
    def __init__(self, *, command: str, user: str, stream: TextIO, names: Names, ansi: bool,
                 interval: float = INTERVAL, clock: Callable[[], float] = time.monotonic) -> None:
        self.command, self.user, self.stream, self.names, self.ansi = command, user, stream, names, ansi
        self.interval, self.clock = interval, clock
        self.started = clock()
        self._lock = threading.Lock()
        self._step: str | None = None
        self._printed = 0.0

    def __call__(self, progress: Progress) -> None:
        """The executor's progress callback (called from the operation's and the sampler's threads)."""
        if progress.step == "start":
            return
        with self._lock:
            now = self.clock()
            if progress.step == self._step and now - self._printed < self.interval:
                return
            self._step, self._printed = progress.step, now
            from bot.cli.shell import message_text  # the renderer: loaded by a command that has progress
            from bot.slack.blocks.render import render_progress
            message = render_progress(command=self.command, user=self.user, progress=progress,
                                      elapsed_s=now - self.started)
            print(message_text(message, names=self.names, ansi=self.ansi), file=self.stream, flush=True)
