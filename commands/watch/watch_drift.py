"""The drift watcher: on each occurrence of ``drift_check_schedule``, the live schema of an
environment against the expected schema of its recorded version (``/migrate drift``, whose
expected schema comes from the control database's cache: a check costs one catalog read).

Each occurrence is claimed in the control database first (``JobRuns``), so of several
replicas exactly one checks. A drift raises one alert; the same set of differences at the
next check is the same alert (reminded every ``dirty_reminder_minutes``, like the dirty
alert), a different set resolves it and raises a new one, and no drift resolves it. A dirty
database, or one at a version no file has, is not measured and changes nothing here: the
dirty watcher owns that.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.errors import CommandError
from commands.executor import Executor
from commands.migrations import Alerts
from commands.schema.results import DriftResult
from commands.watch.results import Alert, AlertEvent, DriftWatchInfo
from commands.watch.schedule import SCHEDULER, JobRuns, default_owner

log = structlog.get_logger("dbops.watch")
DRIFT = "drift"
SHOWN = 30  # differences kept on an alert; /migrate drift lists them all


def drift_info(result: DriftResult) -> DriftWatchInfo:
    """The alert's view of a drift: a digest of every difference (in their fixed order), the first few."""
    digest = hashlib.sha256(json.dumps([d.to_json() for d in result.differences], sort_keys=True).encode())
    return DriftWatchInfo(version=result.state.version, digest=digest.hexdigest(), total=len(result.differences),
                          differences=result.differences[:SHOWN])


class DriftJob:
    def __init__(self, executor: Executor, runs: JobRuns, alerts: Alerts, *, owner: str | None = None) -> None:
        self.executor, self.runs, self.alerts, self.owner = executor, runs, alerts, owner or default_owner()

    def tick(self, env: EnvironmentSettings, *, occurrence: datetime, now: datetime) -> list[AlertEvent]:
        """Check ``env`` for ``occurrence`` unless a replica already did; what is new to say."""
        if not self.runs.claim(DRIFT, env.name, occurrence, "run", owner=self.owner, now=now):
            return []
        try:
            result = self.executor.run_scheduled(g.MigrateDrift(env=env.name), SCHEDULER)
        except CommandError as err:  # no scratch database, a file that fails: said in the log, tried next time
            self.runs.finish(DRIFT, env.name, occurrence, "run", now=now, outcome="failed")
            log.error("drift.check_failed", env=env.name, error=err.message)
            return []
        measured = isinstance(result, DriftResult) and result.unmeasured is None
        self.runs.finish(DRIFT, env.name, occurrence, "run", now=now, outcome="done" if measured else "no_change")
        if not measured:
            return []
        return self._settle(env, result, now)

    def _settle(self, env: EnvironmentSettings, result: DriftResult, now: datetime) -> list[AlertEvent]:
        found = drift_info(result) if result.drifted else None
        current = self.alerts.open_alert(env.name, DRIFT)
        events: list[AlertEvent] = []
        if current is not None and (found is None or current.drift is None or current.drift.digest != found.digest):
            resolved = self.alerts.resolve(current.id, now=now, resolved_by=None, resolved_with=None)
            if resolved is not None:
                log.info("alert.resolved", env=env.name, subject=DRIFT, superseded=found is not None)
                events.append(AlertEvent(kind="resolved", alert=resolved, state=result.state,
                                         superseded=found is not None))
            current = None
        if found is None:
            return events
        if current is None:
            raised = self.alerts.raise_alert(Alert(id=0, env=env.name, subject=DRIFT, version=result.state.version,
                                                   opened_at=now, notified_at=now, reminders=0, failed_file=None,
                                                   latest_file_version=result.latest_file_version, snapshot=None,
                                                   drift=found))
            if raised is not None:
                log.warning("alert.opened", env=env.name, subject=DRIFT, differences=found.total)
                events.append(AlertEvent(kind="opened", alert=raised, state=result.state))
        elif now - current.notified_at >= timedelta(minutes=env.dirty_reminder_minutes):
            reminded = self.alerts.remind(current.id, last_notified=current.notified_at, now=now)
            if reminded is not None:
                events.append(AlertEvent(kind="reminder", alert=reminded, state=result.state))
        return events
