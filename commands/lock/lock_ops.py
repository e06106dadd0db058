"""``/dbops lock status`` and ``/dbops lock release``: the migration lock and deploy.sh's lock
directories, and the safe way out of a stale one.

Release never takes a lock away from work in progress: the advisory lock's holder is ended
only while its session is idle (or idle in a transaction) for ``stale_lock_minutes``, never
while it runs a statement (a migration); a lock directory is removed only when its
``locked_at`` is older than ``lock_dir_timeout_minutes`` and the process it records is not
alive on this host. Another role's session is ended only by a role in pg_signal_backend and
pg_read_all_stats; without them the release is refused, naming them. Whatever stays is said, with why. It needs approval as "lock-release".
"""

from __future__ import annotations

from datetime import timedelta

import structlog

from commands import grammar as g, privileges
from commands.lock import lock_dirs
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.results import LockDirInfo, LockHolder, Outcome
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.kinds import Result

log = structlog.get_logger("dbops.locks")
IDLE_STATES = ("idle", "idle in transaction")
ADVISORY = "advisory lock"


def _dirs(ctx: Context, env: EnvironmentSettings) -> tuple[LockDirInfo, ...]:
    timeout = timedelta(minutes=env.lock_dir_timeout_minutes)
    return tuple(lock_dirs.inspect(path, now=ctx.clock(), timeout=timeout) for path in env.lock_dirs)


def status(ctx: Context, command: g.DbopsLockStatus, env: EnvironmentSettings) -> Result:
    with ctx.databases.open(env) as db:
        holder = db.lock.holder()
    return LockStatusResult(env=env.name, holder=holder, stale_after_minutes=env.stale_lock_minutes,
                            lock_dirs=_dirs(ctx, env), lock_dir_timeout_minutes=env.lock_dir_timeout_minutes)


def _holder_kept(ctx: Context, holder: LockHolder, env: EnvironmentSettings) -> str | None:
    """Why the holder's session must not be ended, or None."""
    if holder.state not in IDLE_STATES:
        return "holder_active"
    idle_for = ctx.clock() - holder.state_since if holder.state_since else timedelta(0)
    if idle_for < timedelta(minutes=env.stale_lock_minutes):
        return "holder_idle_briefly"
    return None


def release(ctx: Context, command: g.DbopsLockRelease, env: EnvironmentSettings) -> Result:
    kept: list[tuple[str, str]] = []
    removed: list[LockDirInfo] = []
    terminated = None
    with ctx.databases.open(env) as db:
        holder = db.lock.holder()
        # Another role's session can be ended (and seen to be idle) only with the predefined
        # roles for it: refused by name rather than kept as if it were busy.
        missing = privileges.refusal(ctx, env, privileges.LOCK_RELEASE, holder=holder)
        if missing is not None:
            return missing
        if holder is not None:
            why = _holder_kept(ctx, holder, env)
            if why is None and db.lock.terminate_idle(holder.pid, env.stale_lock_minutes * 60):
                terminated = holder.pid
                log.warning("lock.holder_terminated", env=env.name, pid=holder.pid,
                            application=holder.application_name, client=holder.client)
            else:
                kept.append((ADVISORY, why or "holder_active"))
    advisory_held = holder is not None and terminated is None
    for info in _dirs(ctx, env):
        if not info.exists:
            continue
        why = lock_dirs.why_kept(info, advisory_lock_held=advisory_held)
        if why is None and lock_dirs.remove(info):
            removed.append(info)
            log.warning("lock.dir_removed", env=env.name, path=info.path, locked_at=str(info.locked_at))
        elif why is not None:
            kept.append((info.path, why))
    released = terminated is not None or bool(removed)
    outcome = Outcome.DONE if released else (Outcome.REFUSED if kept else Outcome.NO_CHANGE)
    return LockReleaseResult(env=env.name, holder=holder, terminated=terminated, removed=tuple(removed),
                             kept=tuple(kept), outcome=outcome)
