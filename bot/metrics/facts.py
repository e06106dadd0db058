"""What ``/metrics`` reads from shared state at scrape time: approvals pending (the control
database), each environment's snapshots (its directory or bucket) and its last drill that passed.

``/metrics`` needs no credentials and a scraper may come every few seconds, from several
Prometheus servers: the reads are made at most once per ``ttl`` seconds (as /health's are,
``bot.slack.health_reports``), one read at a time; while one runs, scrapes get the previous
facts rather than wait. Ages are computed at each scrape from the facts read, so they keep
growing between reads. With several replicas each one reads the same shared state and exports
it: aggregate these with ``max``, never ``sum``.

A source that cannot be read is said by its ``*_up`` gauge (0), and its other gauges are left
out until it can be read again: a stale figure would look current. Why it failed goes to the log.
"""

from __future__ import annotations

import math
import threading
import time
from collections import Counter as Tally
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Callable, Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from commands.config import EnvironmentSettings, Settings
from commands.errors import CommandError
from commands.migrations import Approvals, Databases
from commands.snapshot.snapshot_scope import scope_of

log = structlog.get_logger("dbops.metrics")
FACTS_SECONDS = 30.0


@dataclass(frozen=True, kw_only=True)
class SnapshotFacts:
    count: int
    size_bytes: int
    newest_at: datetime | None
    newest_bytes: int | None


@dataclass(frozen=True, kw_only=True)
class Read:
    """One read of the shared state; None where a source could not be read."""

    pending: dict[str, tuple[int, datetime]] | None = None  # environment: (count, oldest created_at)
    snapshots: dict[str, SnapshotFacts | None] = field(default_factory=dict)
    drills: dict[str, datetime] = field(default_factory=dict)  # environment: the last drill that passed
    control: bool = False  # there is a control database to read


def _pending(approvals: Approvals) -> dict[str, tuple[int, datetime]]:
    counts, oldest = Tally(), {}
    for request in approvals.pending(None):  # oldest first
        counts[request.env] += 1
        oldest.setdefault(request.env, request.created_at)
    return {env: (n, oldest[env]) for env, n in counts.items()}


def _snapshots(settings: Settings, env: EnvironmentSettings) -> SnapshotFacts:
    own = scope_of(settings, env).list().snapshots  # newest first
    return SnapshotFacts(count=len(own), size_bytes=sum(s.size for s in own),
                         newest_at=own[0].created_at if own else None, newest_bytes=own[0].size if own else None)


def read(settings: Settings, databases: Databases, approvals: Approvals | None) -> Read:
    pending = drills = None
    control = settings.control_database_url is not None and approvals is not None
    if control:
        try:
            pending = _pending(approvals)
            drill_log = databases.drills(settings.control_database_url)
            drills = {env: last.drilled_at for env in settings.environments
                      if (last := drill_log.last(env, passed=True)) is not None}
        except CommandError as err:
            log.warning("metrics.control_unread", error=err.message)
            pending = None
    snapshots: dict[str, SnapshotFacts | None] = {}
    for env in settings.environments.values():
        if not env.snapshots_on:
            continue
        try:
            snapshots[env.name] = _snapshots(settings, env)
        except (CommandError, OSError) as err:
            log.warning("metrics.snapshots_unread", env=env.name, error=getattr(err, "message", str(err)))
            snapshots[env.name] = None
    return Read(pending=pending, snapshots=snapshots, drills=drills or {}, control=control)


class Facts:
    """The last read, read again only when it is ``ttl`` seconds old (see the module's docstring)."""

    def __init__(self, settings: Settings, databases: Databases, approvals: Approvals | None, *,
                 ttl: float = FACTS_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.databases, self.approvals = settings, databases, approvals
        self.ttl, self.clock = ttl, clock
        self._changed = threading.Condition()
        self._read: Read | None = None
        self._read_at = -math.inf
        self._reading = False

    def current(self) -> Read:
        with self._changed:
            while self._reading and self._read is None:
                self._changed.wait()
            if self._reading or self.clock() - self._read_at < self.ttl:
                return self._read
            self._reading = True
        fresh = None
        try:
            fresh = read(self.settings, self.databases, self.approvals)
            return fresh
        finally:
            with self._changed:
                if fresh is not None:
                    self._read, self._read_at = fresh, self.clock()
                self._reading = False
                self._changed.notify_all()


# name: (help, labels): the scrape-time gauges.
GAUGES = {
    "dbops_control_database_up": ("1 when the last read of the control database worked.", ()),
    "dbops_approvals_pending": ("Approval requests waiting for a decision.", ("environment",)),
    "dbops_approvals_pending_oldest_age_seconds": ("How long the oldest pending approval request has waited.",
                                                   ("environment",)),
    "dbops_snapshot_store_up": ("1 when the last listing of the environment's snapshots worked.", ("environment",)),
    "dbops_snapshots": ("The environment's snapshots (its own, in its directory or bucket).", ("environment",)),
    "dbops_snapshots_size_bytes": ("The bytes its snapshots take, together.", ("environment",)),
    "dbops_snapshot_newest_size_bytes": ("The size of its newest snapshot.", ("environment",)),
    "dbops_snapshot_newest_timestamp_seconds": ("When its newest snapshot was taken (Unix time).", ("environment",)),
    "dbops_snapshot_newest_age_seconds": ("How old its newest snapshot is.", ("environment",)),
    "dbops_drill_last_success_timestamp_seconds": ("When its last restore drill that passed was made (Unix time).",
                                                   ("environment",)),
}


def _gauge(name: str) -> GaugeMetricFamily:
    documentation, labels = GAUGES[name]
    return GaugeMetricFamily(name, documentation, labels=list(labels))


class FactsCollector(Collector):
    """The scrape-time gauges; ``label`` turns an environment name into its label value."""

    def __init__(self, facts: Facts, label: Callable[[str], str],
                 now: Callable[[], datetime] = lambda: datetime.now(timezone.utc)) -> None:
        self.facts, self.label, self.now = facts, label, now

    def describe(self) -> Iterator[GaugeMetricFamily]:
        """The families, without reading anything (the registry asks once, at registration)."""
        return (_gauge(name) for name in GAUGES)

    def collect(self) -> Iterator[GaugeMetricFamily]:
        facts, now = self.facts.current(), self.now()
        yield from self._approvals(facts, now)
        yield from self._snapshots(facts, now)
        drills = _gauge("dbops_drill_last_success_timestamp_seconds")
        for env, at in sorted(facts.drills.items()):
            drills.add_metric([self.label(env)], at.timestamp())
        yield drills

    def _approvals(self, facts: Read, now: datetime) -> Iterator[GaugeMetricFamily]:
        if not facts.control:
            return
        up = _gauge("dbops_control_database_up")
        up.add_metric([], 0 if facts.pending is None else 1)
        yield up
        if facts.pending is None:
            return
        pending, oldest = _gauge("dbops_approvals_pending"), _gauge("dbops_approvals_pending_oldest_age_seconds")
        for env in self.facts.settings.environments:  # 0 for each, so a rule sees the series
            count, since = facts.pending.get(env, (0, None))
            pending.add_metric([self.label(env)], count)
            if since is not None:
                oldest.add_metric([self.label(env)], max(0.0, (now - since).total_seconds()))
        yield pending
        yield oldest

    def _snapshots(self, facts: Read, now: datetime) -> Iterator[GaugeMetricFamily]:
        up, count, size = (_gauge(n) for n in ("dbops_snapshot_store_up", "dbops_snapshots",
                                               "dbops_snapshots_size_bytes"))
        newest_size, newest_at, newest_age = (_gauge(n) for n in (
            "dbops_snapshot_newest_size_bytes", "dbops_snapshot_newest_timestamp_seconds",
            "dbops_snapshot_newest_age_seconds"))
        for env, found in sorted(facts.snapshots.items()):
            label = [self.label(env)]
            up.add_metric(label, 0 if found is None else 1)
            if found is None:
                continue
            count.add_metric(label, found.count)
            size.add_metric(label, found.size_bytes)
            if found.newest_at is not None:
                newest_size.add_metric(label, found.newest_bytes)
                newest_at.add_metric(label, found.newest_at.timestamp())
                newest_age.add_metric(label, max(0.0, (now - found.newest_at).total_seconds()))
        yield from (up, count, size, newest_size, newest_at, newest_age)
