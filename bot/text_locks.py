"""Plain-text wording of the lock commands (/dbops lock status|release); the Slack cards
(``bot.slack.blocks.locks``) use the same reasons."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot import text
from commands.results import LockDirInfo, LockHolder
from commands.lock.results import LockReleaseResult, LockStatusResult

KEPT = {
    "holder_active": "its session is running a statement (a migration may be in progress); an active holder is "
                     "never ended: wait for it, or find out who it is",
    "holder_idle_briefly": "its session has been idle for less than stale_lock_minutes; it may be between two "
                           "steps of a deploy",
    "dir_fresh": "its locked_at is newer than lock_dir_timeout_minutes; a deploy may be running",
    "dir_owner_alive": "the process that took it is still running on this host",
    "dir_unknown_owner_lock_held": "it records no pid, and the migration lock is held: something may be migrating",
    "dir_not_a_directory": "it is not a plain directory, so dbops leaves it alone",
}
# {command}: ``dbops lock release ENV``, as each surface types it.
RELEASE_HINT = ("To release a stale lock: {command} (it needs approval, and refuses while the "
                "holder is alive).")


def held_for(holder: LockHolder, now: datetime) -> str:
    if holder.hidden:
        return "held since a time hidden from dbops' role"
    return f"held for {text.span_text(now - holder.since)}" if holder.since else "held since an unknown time"


def idle_text(holder: LockHolder, now: datetime) -> str:
    if holder.hidden:
        return ("its state is hidden: it is another role's session, and PostgreSQL shows that only to members of "
                "pg_read_all_stats (GRANT pg_read_all_stats TO dbops' role to see it)")
    if not holder.state:
        return "its session's state is unknown"
    since = f" for {text.span_text(now - holder.state_since)}" if holder.state_since else ""
    return f"its session is {holder.state}{since}"


def owner_text(info: LockDirInfo) -> str:
    if info.pid is None:
        return "no pid recorded"
    return f"pid {info.pid} {'is running' if info.pid_alive else 'is not running'} on this host"


def dir_line(info: LockDirInfo, now: datetime) -> str:
    if not info.exists:
        return f"{info.path}: not there (free)"
    if info.locked_at is None:
        return f"{info.path}: {KEPT['dir_not_a_directory']}"
    source = "locked_at" if info.locked_at_source == "file" else "made"
    state = "STALE" if info.stale else "held"
    at = f"{info.locked_at:%Y-%m-%d %H:%M:%S %Z} ({text.age_text(now - info.locked_at)})"
    return f"{info.path}: {state}, {source} {at}; {owner_text(info)}"


def lock_status(r: LockStatusResult, now: datetime) -> list[str]:
    lines = [f"{r.env}: migration lock"]
    if r.holder is None:
        lines.append("  advisory lock: free")
    else:
        stale = r.holder.since is not None and now - r.holder.since >= timedelta(minutes=r.stale_after_minutes)
        lines.append(f"  advisory lock: {'STALE, ' if stale else ''}held by {text.holder_text(r.holder)}, "
                     f"{held_for(r.holder, now)}; {idle_text(r.holder, now)}")
    if not r.lock_dirs:
        lines.append("  lock directories: none configured (lock_dirs)")
    lines += [f"  lock directory {dir_line(info, now)}" for info in r.lock_dirs]
    if (r.holder is not None) or any(info.exists for info in r.lock_dirs):
        lines.append(RELEASE_HINT.format(command=f"dbops lock release {r.env}"))
    return lines


def lock_release(r: LockReleaseResult) -> list[str]:
    if r.terminated is None and not r.removed and not r.kept:
        return [f"{r.env}: nothing to release: the migration lock is free and no lock directory is there."]
    head = f"{r.env}: lock release " + ("done" if r.terminated is not None or r.removed else "refused; nothing changed")
    lines = [head]
    if r.terminated is not None and r.holder is not None:
        lines.append(f"  ended the idle session holding the migration lock: {text.holder_text(r.holder)}")
    lines += [f"  removed the stale lock directory {info.path}" for info in r.removed]
    for what, why in r.kept:
        label = "the migration lock" if what == "advisory lock" else f"lock directory {what}"
        holder = f" (held by {text.holder_text(r.holder)})" if what == "advisory lock" and r.holder else ""
        lines.append(f"  kept {label}{holder}: {KEPT.get(why, why)}")
    return lines
