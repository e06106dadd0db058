"""The ``GET /health`` report: every environment's migrations check, at most once per window."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import structlog

from commands.config import Settings
from commands.health import check_migrations
from commands.migrations import Databases

log = structlog.get_logger("dbops.health")
CACHE_SECONDS = 3.0


def health_report(settings: Settings, databases: Databases) -> tuple[bool, dict]:
    """Every environment checked at once: one slow database does not add up with the others.
    A failed check's reason (masked, but naming the database) is logged, never reported."""
    envs = list(settings.environments.values())
    if not envs:
        return True, {"status": "pass", "environments": {}}
    with ThreadPoolExecutor(max_workers=min(8, len(envs)), thread_name_prefix="health") as pool:
        checks = list(pool.map(lambda env: check_migrations(env, databases), envs))
    for check in checks:
        if check.reason is not None:
            log.warning("health.check_failed", env=check.env, reason=check.reason)
    healthy = all(c.passed for c in checks)
    return healthy, {"status": "pass" if healthy else "fail",
                     "environments": {c.env: {"checks": {"migrations": c.as_json()}} for c in checks}}


class HealthReports:
    """The report, checked again only when the last one is ``ttl`` seconds old.

    /health needs no credentials and each check opens a session on every managed database:
    probes, load balancers and anyone who can reach the port together open at most one
    session per database per window. Callers that arrive while a check runs wait for it
    rather than start their own. A state change shows within ``ttl`` seconds.
    """

    def __init__(self, settings: Settings, databases: Databases, *, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings, self.databases = settings, databases
        self.ttl, self.clock = ttl, clock
        self._lock = threading.Lock()
        self._report: tuple[bool, dict] | None = None
        self._checked_at = -math.inf

    def current(self) -> tuple[bool, dict]:
        with self._lock:
            if self._report is None or self.clock() - self._checked_at >= self.ttl:
                self._report = health_report(self.settings, self.databases)
                self._checked_at = self.clock()
            return self._report
