"""This process's running operations, kept alive in the control database by a heartbeat.

Every ``heartbeat_seconds`` the tracker refreshes the heartbeat of its own operations and
reaps those of processes that stopped beating (three missed beats): each is marked
interrupted and reported in its channel, in the thread of its progress message, exactly once
across replicas. An interrupted operation is never retried: a person decides what next.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import Callable

import structlog

from commands.errors import CommandError
from commands.migrations import Operations
from commands.results import OperationRecord

log = structlog.get_logger("dbops.operations")
MISSED_BEATS = 3


def process_owner() -> str:
    """host, pid and a per-start id: a restarted process never passes for its predecessor."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class OperationTracker:
    def __init__(self, operations: Operations, *, heartbeat_seconds: float,
                 report: Callable[[OperationRecord], None], owner: str | None = None) -> None:
        self.operations = operations
        self.heartbeat_seconds = heartbeat_seconds
        self.report = report
        self.owner = owner or process_owner()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self, *, environment: str | None, command: str, actor: str, channel: str | None,
              message_ts: str | None) -> int | None:
        try:
            return self.operations.start(environment=environment, command=command, actor=actor, channel=channel,
                                         message_ts=message_ts, owner=self.owner)
        except CommandError as err:
            log.error("operation.record_failed", error=err.message)
            return None

    def record_step(self, operation_id: int, step: str) -> None:
        self._quietly(self.operations.record_step, operation_id, step)

    def finish(self, operation_id: int, outcome: str) -> None:
        self._quietly(self.operations.finish, operation_id, outcome)

    def beat_and_reap(self) -> list[OperationRecord]:
        """One heartbeat: refresh ours, then report every operation whose process died."""
        self._quietly(self.operations.beat, self.owner)
        try:
            reaped = self.operations.reap(self.heartbeat_seconds * MISSED_BEATS)
        except CommandError as err:
            log.error("operation.reap_failed", error=err.message)
            return []
        for record in reaped:
            log.warning("operation.interrupted", operation=record.id, command=record.command, owner=record.owner)
            try:
                self.report(record)
            except Exception:  # noqa: BLE001 - a failed report must not stop the heartbeat
                log.exception("operation.report_failed", operation=record.id)
        return reaped

    def run_in_background(self) -> None:
        self.beat_and_reap()  # at start: what a dead predecessor left running is reported now
        self._thread = threading.Thread(target=self._loop, name="operation-heartbeat", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _loop(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            self.beat_and_reap()

    @staticmethod
    def _quietly(call: Callable[..., None], *args: object) -> None:
        # The control database being away must not stop an operation that is already running.
        try:
            call(*args)
        except CommandError as err:
            log.error("operation.record_failed", error=err.message)
