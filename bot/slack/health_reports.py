"""The ``GET /health`` report: every environment's migrations check, at most once per window,
and (in ``dbops serve``) whether Slack has been reached, as it is now."""

from __future__ import annotations

import math
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable

import structlog

from bot.slack.slack_link import SlackCheck
from commands.config import Settings
from commands.watch.health import check_migrations
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
    session per database per window. One check runs at a time; while it runs, callers get
    the previous report rather than wait (an unreachable database holds a check for the
    connect timeout, and waiting callers would hold the server threads Slack's requests need).
    Only before the first report do they wait for it. A state change shows within ``ttl``
    seconds plus one check.
    """

    def __init__(self, settings: Settings, databases: Databases, *, ttl: float = CACHE_SECONDS,
                 clock: Callable[[], float] = time.monotonic, slack: Callable[[], SlackCheck] | None = None) -> None:
        """``slack``: the Slack check, added to every report as ``checks.slack`` (it costs nothing:
        it says what the attempts to reach Slack found)."""
        self.settings, self.databases, self.slack = settings, databases, slack
        self.ttl, self.clock = ttl, clock
        self._changed = threading.Condition()
        self._report: tuple[bool, dict] | None = None
        self._checked_at = -math.inf
        self._checking = False

    def current(self) -> tuple[bool, dict]:
        environments = self._environments()
        if self.slack is None:
            return environments
        (healthy, report), slack = environments, self.slack()
        healthy = healthy and slack.passed
        return healthy, {**report, "status": "pass" if healthy else "fail", "checks": {"slack": slack.as_json()}}

    def _environments(self) -> tuple[bool, dict]:
        with self._changed:
            while self._checking and self._report is None:
                self._changed.wait()
            if self._checking or self.clock() - self._checked_at < self.ttl:
                return self._report
            self._checking = True
        report = None
        try:
            report = health_report(self.settings, self.databases)
            return report
        finally:
            with self._changed:
                if report is not None:
                    self._report, self._checked_at = report, self.clock()
                self._checking = False
                self._changed.notify_all()
