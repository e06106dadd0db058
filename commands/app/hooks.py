"""Coordination with the application around a restore or a rollback: its pause and resume hooks.

The guide stops the application before a restore ("stop application to prevent new writes")
and starts it again after, then checks its health. An environment may name two HTTP hooks that
a deployment system answers (scale to zero, maintenance mode, and back): ``app_pause_url`` and
``app_resume_url``, called with ``app_hook_method``, the headers of ``app_hook_headers`` (from
the environment; never logged, never shown) and a timeout. The order around the change is:

    lock → state check → pause hook → safety snapshot → change → resume hook → health_url awaited

The pause comes after the lock and the checks, so an operation refused for a held lock or a
dirty state never stops the application; and before the safety snapshot, so that snapshot holds
the application's last write. The runner marks the moment: ``commands.snapshot.safety`` calls
``Context.app.pause()`` first, whatever the change (a restore, a down, a force, a recovery).

A pause that does not answer 2xx (an error status, a timeout, nothing listening) stops the
operation before anything changes: a Refusal (APP_NOT_PAUSED) with what came back, the lock
released, no snapshot taken. Once the pause hook was called, the resume hook is called
whatever happens next (a failed pause may have half-stopped the application; a failed change
must not leave it stopped), and the result or the fault says what it answered. Requests go
through ``commands.app.health.call``: http(s) only, redirects followed on the same host only,
no shell.
"""

from __future__ import annotations

import dataclasses
import json
import time
from typing import Callable, TypeVar
from urllib.parse import urlsplit, urlunsplit

import structlog

from commands.app.results import AppHealthCheck, AppHooks, HookCall, HookPlan
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import CommandError
from commands.redact import mask_url, redact
from commands.results import Reason, Refusal

log = structlog.get_logger("dbops.app_hooks")

HEALTH_INTERVAL_SECONDS = 1.0  # between reads of health_url while waiting for the application
BODY_SHOWN = 200               # characters of a failing hook's answer quoted back
T = TypeVar("T")


def configured(env: EnvironmentSettings) -> bool:
    return bool(env.app_pause_url or env.app_resume_url)


def shown_url(url: str) -> str:
    """A hook's URL as people see it: the password masked and the query (often a token) cut."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return mask_url(url)
    return mask_url(urlunsplit(parts._replace(query="", fragment=""))) + ("?…" if parts.query else "")


def plan(env: EnvironmentSettings) -> HookPlan | None:
    """What a restore or rollback of ``env`` will call (None: no hooks configured)."""
    if not configured(env):
        return None
    method = env.app_hook_method

    def said(url: str | None) -> str | None:
        return f"{method} {shown_url(url)}" if url else None
    return HookPlan(pause=said(env.app_pause_url), resume=said(env.app_resume_url),
                    health_url=mask_url(env.health_url) if env.health_url else None,
                    health_wait_seconds=env.app_health_wait_seconds)


class PauseFailed(CommandError):
    """The pause hook did not answer 2xx; raised at the change's threshold, caught by ``coordinated``."""


class AppCoordinator:
    """The hooks of one restore or rollback. ``pause`` is called where the change is about to
    begin (once, however many steps the change has); ``finish`` after it, whatever happened."""

    def __init__(self, ctx: Context, env: EnvironmentSettings, operation: str) -> None:
        self.env, self.operation, self.actor = env, operation, ctx.actor.user
        self.plan = plan(env)
        self.reached = False
        self.paused: HookCall | None = None
        self.resumed: HookCall | None = None

    def pause(self) -> None:
        """Stop the application before the change; PauseFailed when its hook did not answer 2xx."""
        if self.reached:
            return
        self.reached = True
        if self.env.app_pause_url:
            self.paused = self._call("pause", self.env.app_pause_url)
            if not self.paused.done:
                raise PauseFailed(self.paused.message)

    def resume(self) -> None:
        if self.reached and self.env.app_resume_url and self.resumed is None:
            self.resumed = self._call("resume", self.env.app_resume_url)

    def _call(self, hook: str, url: str) -> HookCall:
        from commands.app.health import call  # urllib and TLS: loaded by the operations that call hooks
        env = self.env
        data = None
        headers = dict(env.app_hook_headers)
        if env.app_hook_method != "GET":
            data = json.dumps({"hook": hook, "environment": env.name, "operation": self.operation,
                               "requested_by": self.actor}).encode()
            headers.setdefault("Content-Type", "application/json")
        shown = shown_url(url)
        got = call(url, method=env.app_hook_method, headers=headers, data=data, timeout=env.app_hook_timeout_seconds,
                   same_host=True, shown=shown, max_body=BODY_SHOWN)
        done = got.status is not None and 200 <= got.status < 300
        if got.status is None:
            message = got.failure or f"No answer from {shown}"
        else:
            start = got.body[:BODY_SHOWN].decode("utf-8", "replace").strip().replace("\n", " ")
            message = redact(f"HTTP {got.status}" + (f": {start!r}" if start and not done else ""))
        log.info("app_hook.called", hook=hook, url=shown, method=env.app_hook_method, status=got.status, done=done,
                 latency_ms=round(got.latency_ms, 1))
        return HookCall(hook=hook, method=env.app_hook_method, url=shown, done=done, http_status=got.status,
                        message=message, latency_ms=got.latency_ms)

    def health(self) -> AppHealthCheck | None:
        """health_url read until it passes or ``app_health_wait_seconds`` pass (once, when the
        resume hook did not answer 2xx: the application is not coming back by itself)."""
        if not self.env.health_url or not self.reached:
            return None
        from commands.app.health import check_app_health
        started = time.monotonic()
        deadline = started + (self.env.app_health_wait_seconds if self.resumed is None or self.resumed.done else 0)
        while True:
            seen = check_app_health(self.env.health_url)
            if seen.passed or time.monotonic() + HEALTH_INTERVAL_SECONDS > deadline:
                break
            time.sleep(HEALTH_INTERVAL_SECONDS)  # the application's own pace: nothing to wait on but time
        return AppHealthCheck(url=seen.url, passed=seen.passed, message=seen.message, version=seen.migrations_version,
                              dirty=seen.migrations_dirty, waited_ms=(time.monotonic() - started) * 1000)

    def report(self, *, change_failed: bool = False, health: AppHealthCheck | None = None) -> AppHooks:
        return AppHooks(plan=self.plan, paused=self.paused, resumed=self.resumed,
                        change_failed=change_failed and self.reached, health=health)

    def after_fault(self) -> str:
        """What the resume hook answered, as a sentence for the fault's message."""
        if self.resumed is None:
            return ""
        r = self.resumed
        if r.done:
            return f" The application's resume hook ({r.method} {r.url}) was called afterwards: {r.message}."
        return (f" The application's resume hook ({r.method} {r.url}) was called afterwards and did not succeed: "
                f"{r.message}. Start the application by hand.")


def said(h: AppHooks) -> str | None:
    """What each hook called answered, as one line for the audit log's detail (URLs as shown,
    never headers); None when none was called."""
    calls = [c for c in (h.paused, h.resumed) if c is not None]
    return "; ".join(f"the {c.hook} hook {c.method} {c.url} answered {c.message}" for c in calls) or None


def coordinated(ctx: Context, env: EnvironmentSettings, operation: str, change: Callable[[Context], T], *,
                failed: Callable[[T], bool] = lambda _: False) -> tuple[T | Refusal, AppHooks | None]:
    """Run ``change`` with the application's hooks around it: (its result or the pause's
    Refusal, what the hooks did). Without hooks, or inside an operation that already
    coordinates (a rollback that restores), ``change`` runs as it is and the report is None.
    ``failed`` tells a result whose change failed (the resume was called all the same)."""
    if ctx.app is not None or not configured(env):
        return change(ctx), None
    coordinator = AppCoordinator(ctx, env, operation)
    try:
        result = change(dataclasses.replace(ctx, app=coordinator))
    except PauseFailed:
        coordinator.resume()  # a pause that failed may have half-stopped the application
        log.warning("app_hook.pause_failed", operation=operation)
        return Refusal(env=env.name, operation=operation, reason=Reason.APP_NOT_PAUSED,
                       app_hooks=coordinator.report()), None
    except CommandError as err:
        coordinator.resume()
        err.message += coordinator.after_fault()
        err.args = (err.message,)
        raise
    except BaseException:
        coordinator.resume()
        raise
    coordinator.resume()
    change_failed = isinstance(result, Refusal) or failed(result)
    return result, coordinator.report(change_failed=change_failed, health=coordinator.health())
