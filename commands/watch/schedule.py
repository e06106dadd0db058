"""The scheduled snapshot cleanup: a notice before each occurrence of ``cleanup_schedule``,
then the cleanup itself, then a report (or an alert when it failed).

The scheduler (in ``bot``) computes the occurrences from the cron expression and the
``[schedule] timezone``; a tick is given one occurrence and the time, and says what is due.
Every phase of an occurrence is claimed in the control database first (``JobRuns``), so of
several replicas ticking at once exactly one posts the notice and one runs the cleanup.
An occurrence that every replica missed is run once, late, and says so; older missed ones
are not: one cleanup brings the directory to the same state as a backlog of them would.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.identity import Actor
from commands.errors import CommandError
from commands.executor import Executor
from commands.snapshot.results import CleanupResult, SnapshotInfo
from commands.results import Outcome, Refusal
from commands.snapshot.snapshot_ops import cleanup_plan

log = structlog.get_logger("dbops.schedule")
CLEANUP = "cleanup"
SCHEDULER = Actor(user="dbops", surface="scheduler")
# A run this long after its occurrence was missed by every replica (the ticks come every minute).
LATE_AFTER = timedelta(minutes=5)


@dataclass(frozen=True, kw_only=True)
class ScheduleEvent:
    """What a scheduled job's tick has to say: a ``notice`` of what the cleanup will delete,
    the ``report`` of a cleanup that ran, or that it ``failed``."""

    kind: str
    env: str
    occurrence: datetime               # in the schedule's time zone
    timezone: str                      # that zone's IANA name
    caught_up: bool = False            # run late: no replica was running at the occurrence
    delete: tuple[SnapshotInfo, ...] = ()  # notice: what the cleanup will delete
    result: CleanupResult | None = None    # report
    message: str | None = None             # failed: why
    job: str = CLEANUP
    outcome: Outcome = Outcome.DONE
    operation: str = "scheduled cleanup"


class JobRuns(Protocol):
    """Scheduled jobs' runs in the control database, one record per job, environment,
    occurrence and phase ("notice" or "run")."""

    def claim(self, job: str, env: str, occurrence: datetime, phase: str, *, owner: str, now: datetime,
              caught_up: bool = False) -> bool:
        """Record that ``owner`` does this phase of this occurrence. True for exactly one
        caller, however many ask at once; False when it is already claimed (unless that claim
        was abandoned: claimed long ago by a replica that never finished it)."""

    def finish(self, job: str, env: str, occurrence: datetime, phase: str, *, now: datetime, outcome: str) -> None:
        """Record how the claimed phase ended ("done", "no_change", "failed")."""

    def has_history(self, job: str, env: str, *, through: datetime) -> bool:
        """Whether any phase of an occurrence at or before ``through`` was ever claimed: the
        job ran here before, so a missed occurrence is caught up (not on a first start)."""


def default_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class CleanupJob:
    def __init__(self, executor: Executor, runs: JobRuns, *, owner: str | None = None) -> None:
        self.executor, self.runs, self.owner = executor, runs, owner or default_owner()
        self.zone = executor.settings.schedule_timezone

    def tick(self, env: EnvironmentSettings, *, occurrence: datetime, now: datetime) -> list[ScheduleEvent]:
        """What is due for ``occurrence`` at ``now``: its notice (before it), its run (after)."""
        if not env.snapshots_on:
            return []
        occurrence = occurrence.astimezone(ZoneInfo(self.zone))
        if now < occurrence:
            return self._notice(env, occurrence, now)
        return self._run(env, occurrence, now)

    def _notice(self, env: EnvironmentSettings, occurrence: datetime, now: datetime) -> list[ScheduleEvent]:
        notice = timedelta(minutes=env.cleanup_notice_minutes)
        if not notice or now < occurrence - notice:
            return []
        if not self.runs.claim(CLEANUP, env.name, occurrence, "notice", owner=self.owner, now=now):
            return []
        try:
            # As the run will plan it: its clock will read the occurrence (give or take a tick).
            _, plan = cleanup_plan(self.executor.databases, self.executor.settings, env,
                                   now=occurrence.astimezone(timezone.utc), retention_days=env.retention_days)
        except CommandError as err:
            self.runs.finish(CLEANUP, env.name, occurrence, "notice", now=now, outcome="failed")
            log.error("schedule.notice_failed", env=env.name, error=err.message)
            return [self._event("failed", env, occurrence, message=f"The notice could not be prepared: {err.message}")]
        self.runs.finish(CLEANUP, env.name, occurrence, "notice", now=now, outcome="done")
        log.info("schedule.notice", env=env.name, occurrence=occurrence.isoformat(), delete=len(plan.delete))
        return [self._event("notice", env, occurrence, delete=tuple(s.info() for s in plan.delete))]

    def _run(self, env: EnvironmentSettings, occurrence: datetime, now: datetime) -> list[ScheduleEvent]:
        late = now - occurrence > LATE_AFTER
        if late and not self.runs.has_history(CLEANUP, env.name, through=occurrence):
            return []  # dbops was not set up here yet: nothing was missed
        if not self.runs.claim(CLEANUP, env.name, occurrence, "run", owner=self.owner, now=now, caught_up=late):
            return []
        try:
            result = self.executor.run_scheduled(g.SnapshotCleanup(env=env.name), SCHEDULER)
        except CommandError as err:
            self.runs.finish(CLEANUP, env.name, occurrence, "run", now=now, outcome="failed")
            log.error("schedule.cleanup_failed", env=env.name, error=err.message)
            return [self._event("failed", env, occurrence, caught_up=late, message=err.message)]
        if not isinstance(result, CleanupResult):
            reason = result.reason.value if isinstance(result, Refusal) else result.outcome.value
            self.runs.finish(CLEANUP, env.name, occurrence, "run", now=now, outcome="failed")
            return [self._event("failed", env, occurrence, caught_up=late,
                                message=f"The cleanup was refused ({reason}).")]
        self.runs.finish(CLEANUP, env.name, occurrence, "run", now=now, outcome=result.outcome.value)
        log.info("schedule.cleanup", env=env.name, occurrence=occurrence.isoformat(), caught_up=late,
                 deleted=len(result.deleted), freed=result.freed_bytes)
        return [self._event("report", env, occurrence, caught_up=late, result=result)]

    def _event(self, kind: str, env: EnvironmentSettings, occurrence: datetime, **fields) -> ScheduleEvent:
        outcome = Outcome.FAILED if kind == "failed" else Outcome.DONE
        return ScheduleEvent(kind=kind, env=env.name, occurrence=occurrence, timezone=self.zone, outcome=outcome,
                             **fields)
