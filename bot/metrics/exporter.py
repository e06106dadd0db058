"""The metrics of one ``dbops serve`` process, in a registry of its own (several bots in one
process, as in the tests, never share counts), served as Prometheus text by ``wsgi``.

``Metrics`` is the domain's ``Observer`` (``commands.observe``): the executor tells it every
operation, the migration lock every wait, the dirty watcher every state it read, the watchers
every tick. What the control database and the snapshot stores hold (approvals pending, the
newest snapshot, the last drill that passed) is read at scrape time, at most once per
``facts_seconds`` (``bot.metrics.facts``).

Every label value is bounded and safe to show to anyone who can reach the port: a configured
environment's name (any other: "other"), a command's grammar name, an outcome, a watcher's
name, a Slack method and error code (``bot.metrics.slack_errors``). Never a user, a snapshot
name or free text.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, make_wsgi_app
from prometheus_client import GCCollector, PlatformCollector, ProcessCollector

from bot.metrics.facts import FACTS_SECONDS, Facts, FactsCollector
from bot.metrics.slack_errors import SlackErrorCounter
from commands.config import Settings
from commands.migrations import Approvals, Databases
from commands.observe import LOCKS

OTHER = "other"
# Operations last from milliseconds (a status) to an hour (a restore of a large database).
OPERATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600)
# Lock waits are cut off by lock_wait_seconds (15 s by default) or a statement's lock_timeout.
LOCK_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 15, 30, 60, 120)
DECISIONS = {"executing": "approved", "denied": "denied", "cancelled": "cancelled", "expired": "expired"}


class Metrics:
    def __init__(self, settings: Settings, databases: Databases, approvals: Approvals | None, *,
                 facts_seconds: float = FACTS_SECONDS, clock: Callable[[], float] = time.monotonic) -> None:
        """``approvals``: the control database's store (None: no control database), read at
        scrape time for the pending requests, as the environments' snapshot stores are, at most
        once per ``facts_seconds`` by ``clock``."""
        self.environments = frozenset(settings.environments)
        # Each series' _created twin doubles the page and nothing here reads it (a process-wide
        # switch: this is the only exporter in dbops).
        disable_created_metrics()
        self.registry = registry = CollectorRegistry()
        for collector in (ProcessCollector, PlatformCollector, GCCollector):
            collector(registry=registry)
        self.operations = Counter("dbops_operations", "Commands run through the executor, by outcome "
                                  "(done, no_change, refused, failed, awaiting_approval; error: a fault).",
                                  ("command", "environment", "outcome"), registry=registry)
        self.operation_seconds = Histogram("dbops_operation_duration_seconds", "How long each command took, "
                                           "from the policy check to the audit record.", ("command", "environment"),
                                           buckets=OPERATION_BUCKETS, registry=registry)
        self.lock_waits = Counter("dbops_lock_waits", "Waits for a lock, by whether it was had (acquired) "
                                  "or the wait gave up (timed_out).", ("environment", "lock", "outcome"),
                                  registry=registry)
        self.lock_seconds = Histogram("dbops_lock_wait_duration_seconds", "How long each wait for a lock took.",
                                      ("environment", "lock"), buckets=LOCK_BUCKETS, registry=registry)
        self.lock_retries = Counter("dbops_lock_retries", "Waits for a lock tried again after giving up.",
                                    ("environment", "lock"), registry=registry)
        self.decisions = Counter("dbops_approvals_decided", "Approval requests decided: approved, denied, "
                                 "cancelled, expired.", ("environment", "decision"), registry=registry)
        self.dirty = Gauge("dbops_migration_dirty", "1 while the dirty watcher last found schema_migrations "
                           "dirty, 0 when clean.", ("environment",), registry=registry)
        self.version = Gauge("dbops_migration_version", "The migration version the dirty watcher last read "
                             "(-1: none applied).", ("environment",), registry=registry)
        self.ticks = Counter("dbops_watcher_ticks", "Scheduled watcher looks.", ("watcher", "environment"),
                             registry=registry)
        self.tick_failures = Counter("dbops_watcher_failures", "Scheduled watcher looks that could not be made.",
                                     ("watcher", "environment"), registry=registry)
        self.slack_errors = SlackErrorCounter(Counter(
            "dbops_slack_api_errors", "Slack Web API calls answered with an error (each attempt), by method and "
            "Slack's error code (http_NNN: no code; unreachable: no answer).", ("method", "error"),
            registry=registry))
        self.facts = Facts(settings, databases, approvals, ttl=facts_seconds, clock=clock)
        self.facts_collector = FactsCollector(self.facts, self.environment)
        registry.register(self.facts_collector)

    def environment(self, name: str | None) -> str:
        """The label of ``name``: itself when configured, "" for none, "other" for any other."""
        if name is None:
            return ""
        return name if name in self.environments else OTHER

    # --- commands.observe.Observer ------------------------------------------------------
    def operation(self, *, command: str, environment: str | None, outcome: str, seconds: float) -> None:
        env = self.environment(environment)
        self.operations.labels(command, env, outcome).inc()
        self.operation_seconds.labels(command, env).observe(seconds)

    def lock_wait(self, *, environment: str, lock: str, seconds: float, acquired: bool) -> None:
        env, lock = self.environment(environment), lock if lock in LOCKS else OTHER
        self.lock_waits.labels(env, lock, "acquired" if acquired else "timed_out").inc()
        self.lock_seconds.labels(env, lock).observe(seconds)

    def lock_retry(self, *, environment: str, lock: str) -> None:
        self.lock_retries.labels(self.environment(environment), lock if lock in LOCKS else OTHER).inc()

    def state_seen(self, *, environment: str, version: int, dirty: bool) -> None:
        env = self.environment(environment)
        self.dirty.labels(env).set(1 if dirty else 0)
        self.version.labels(env).set(version)

    def watcher_tick(self, *, watcher: str, environment: str | None, failed: bool) -> None:
        env = self.environment(environment)
        self.ticks.labels(watcher, env).inc()
        if failed:
            self.tick_failures.labels(watcher, env).inc()

    # --- the bot's own ------------------------------------------------------------------
    def approval_decided(self, *, environment: str, to_state: str) -> None:
        """A request moved to ``to_state``; counted when that is a decision."""
        decision = DECISIONS.get(to_state)
        if decision is not None:
            self.decisions.labels(self.environment(environment), decision).inc()

    def wsgi(self) -> Callable[[dict, Callable], Iterable[bytes]]:
        """The WSGI app answering ``GET /metrics`` (text format; OpenMetrics when asked, gzip when accepted)."""
        return make_wsgi_app(self.registry)
