"""What dbops saw of the application around a change: its hooks' answers and its health.

Plain data, as every result is (``commands.app.hooks`` makes them; each surface words them).
URLs here are as shown to people: passwords masked, a query string cut to ``?…``; headers never
appear at all.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, kw_only=True)
class AppHealthCheck:
    """The application's ``health_url`` as last read: ``passed`` when it answered and its
    migrations check passed. ``waited_ms``: after a resume, how long dbops waited for it (None:
    read once)."""

    url: str
    passed: bool
    message: str
    version: int | None = None
    dirty: bool | None = None
    waited_ms: float | None = None


@dataclass(frozen=True, kw_only=True)
class HookCall:
    """One call of a hook (``hook`` "pause" or "resume"): ``done`` when it answered 2xx;
    ``message`` says what came back otherwise (the status and the start of the body, or why
    nothing came back)."""

    hook: str
    method: str
    url: str
    done: bool
    http_status: int | None
    message: str
    latency_ms: float


@dataclass(frozen=True, kw_only=True)
class HookPlan:
    """The hooks a restore or rollback of an environment will call, for its approval card:
    ``pause`` and ``resume`` as "METHOD URL" (None: not configured); ``health_url`` awaited
    for up to ``health_wait_seconds`` after the resume."""

    pause: str | None
    resume: str | None
    health_url: str | None = None
    health_wait_seconds: int = 0


@dataclass(frozen=True, kw_only=True)
class AppHooks:
    """What happened to the application around one restore or rollback.

    ``paused``/``resumed``: the calls made, None when not made (the hook is not configured, or
    nothing was about to change). ``change_failed``: the change itself failed or was refused
    after the pause, and the resume was called all the same. ``health``: read after the resume."""

    plan: HookPlan
    paused: HookCall | None = None
    resumed: HookCall | None = None
    change_failed: bool = False
    health: AppHealthCheck | None = None
