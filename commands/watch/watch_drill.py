"""Scheduled restore drills: on each occurrence of ``drill_schedule``, ``/snapshot drill`` of
the environment's newest snapshot, and a reminder when no drill has passed lately.

Each occurrence is claimed in the control database first (``JobRuns``), so of several
replicas exactly one drills. A passed drill is reported in the channel (and resolves a drill
alert that is open); a failed one raises an alert (one at a time: a failure while one is open
is said in its thread). Independently, when no drill has passed within ``drill_max_age_days``,
once the schedule has run for that long, an overdue alert is raised and reminded once a day
until one passes; the control database's
one-open-alert-per-subject rule makes that once across replicas too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.errors import CommandError
from commands.executor import Executor
from commands.migrations import Alerts
from commands.results import Outcome
from commands.snapshot.results import DrillRecord, DrillResult
from commands.watch.results import Alert
from commands.watch.schedule import SCHEDULER, JobRuns, default_owner

log = structlog.get_logger("dbops.watch")
DRILL = "drill"
OVERDUE = "drill_overdue"
OVERDUE_REMINDER = timedelta(days=1)


@dataclass(frozen=True, kw_only=True)
class DrillEvent:
    """What a drill tick has to say.

    ``report``: a drill ran (``result``; in the open alert's thread when ``alert`` is set);
    ``failed``: a drill failed and opened ``alert``; ``fault``: it could not run (``message``),
    also opening ``alert``; ``resolved``: a passed drill closed ``alert``; ``overdue``: no drill
    passed within the limit (``last``: the newest that did), ``alert`` opened or reminded.
    """

    kind: str
    env: str
    result: DrillResult | None = None
    alert: Alert | None = None
    message: str | None = None
    last: DrillRecord | None = None


class DrillJob:
    def __init__(self, executor: Executor, runs: JobRuns, alerts: Alerts, *, owner: str | None = None) -> None:
        self.executor, self.runs, self.alerts, self.owner = executor, runs, alerts, owner or default_owner()

    def tick(self, env: EnvironmentSettings, *, occurrence: datetime | None, now: datetime) -> list[DrillEvent]:
        """Drill ``env`` for ``occurrence`` unless a replica already did; then the overdue check."""
        events: list[DrillEvent] = []
        if occurrence is not None and self.runs.claim(DRILL, env.name, occurrence, "run", owner=self.owner, now=now):
            events += self._drill(env, occurrence, now)
        return events + self._overdue(env, now)

    def _drill(self, env: EnvironmentSettings, occurrence: datetime, now: datetime) -> list[DrillEvent]:
        try:
            result = self.executor.run_scheduled(g.SnapshotDrill(env=env.name), SCHEDULER)
        except CommandError as err:  # no scratch database, the store unreachable: an alert, as a failure is
            self.runs.finish(DRILL, env.name, occurrence, "run", now=now, outcome="failed")
            log.error("drill.failed_to_run", env=env.name, error=err.message)
            return self._failed(env, now, None, err.message)
        if not isinstance(result, DrillResult):  # refused (no snapshot_dir): said like a fault
            self.runs.finish(DRILL, env.name, occurrence, "run", now=now, outcome="failed")
            return self._failed(env, now, None, f"the drill was refused ({getattr(result, 'reason', result)})")
        passed = result.outcome is not Outcome.FAILED
        self.runs.finish(DRILL, env.name, occurrence, "run", now=now, outcome="done" if passed else "failed")
        if not passed:
            return self._failed(env, now, result, None)
        events = [DrillEvent(kind="report", env=env.name, result=result)]
        current = self.alerts.open_alert(env.name, DRILL)
        if current is not None and result.outcome is Outcome.DONE:
            resolved = self.alerts.resolve(current.id, now=now, resolved_by=None, resolved_with="snapshot drill")
            if resolved is not None:
                events.append(DrillEvent(kind="resolved", env=env.name, result=result, alert=resolved))
        return events

    def _failed(self, env: EnvironmentSettings, now: datetime, result: DrillResult | None,
                message: str | None) -> list[DrillEvent]:
        kind = "failed" if result is not None else "fault"
        current = self.alerts.open_alert(env.name, DRILL)
        if current is not None:  # already alerting: this failure goes in its thread
            return [DrillEvent(kind="report" if result else "fault", env=env.name, result=result, alert=current,
                               message=message)]
        raised = self.alerts.raise_alert(Alert(id=0, env=env.name, subject=DRILL, version=-1, opened_at=now,
                                               notified_at=now, reminders=0, failed_file=result.name if result else None,
                                               latest_file_version=None, snapshot=None))
        if raised is None:
            return []
        log.warning("alert.opened", env=env.name, subject=DRILL, snapshot=result.name if result else None)
        return [DrillEvent(kind=kind, env=env.name, result=result, alert=raised, message=message)]

    def _overdue(self, env: EnvironmentSettings, now: datetime) -> list[DrillEvent]:
        if not env.drill_max_age_days or self.executor.settings.control_database_url is None:
            return []
        limit = timedelta(days=env.drill_max_age_days)
        last = self.executor.databases.drills(self.executor.settings.control_database_url).last(env.name, passed=True)
        current = self.alerts.open_alert(env.name, OVERDUE)
        # Overdue only once the schedule has been drilling for longer than the limit: a schedule
        # just configured is not yet late.
        recent = last is not None and now - last.drilled_at <= limit
        if recent or not self.runs.has_history(DRILL, env.name, through=now - limit):
            if current is not None:
                self.alerts.resolve(current.id, now=now, resolved_by=None, resolved_with="snapshot drill")
            return []
        if current is None:
            alert = self.alerts.raise_alert(Alert(id=0, env=env.name, subject=OVERDUE, version=-1, opened_at=now,
                                                  notified_at=now, reminders=0, failed_file=None,
                                                  latest_file_version=None, snapshot=None))
        elif now - current.notified_at >= OVERDUE_REMINDER:
            alert = self.alerts.remind(current.id, last_notified=current.notified_at, now=now)
        else:
            return []
        return [DrillEvent(kind="overdue", env=env.name, alert=alert, last=last)] if alert is not None else []
