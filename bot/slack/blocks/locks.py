"""Slack cards for the lock commands (/dbops lock status|release) and for the stale-lock and
disk watchers' alerts; the console and the CLI show the same cards (``bot.terminal``)."""

from __future__ import annotations

from datetime import datetime, timedelta

from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain, user_ref, when
from bot.slack.blocks.migrate import holder_line
from bot.slack.blocks.wording import age_text, span_text
from commands.watch.results import AlertEvent
from commands.results import LockDirInfo, LockHolder
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.snapshot.results import SnapshotInfo
from commands.units import human_size

SUBJECTS = ("stale_lock", "stale_lock_dir", "disk")
KEPT = {  # why a lock release left a lock where it was, by the reason ``commands.lock.lock_ops`` gives
    "holder_active": "its session is running a statement (a migration may be in progress); an active holder is "
                     "never ended: wait for it, or find out who it is",
    "holder_idle_briefly": "its session has been idle for less than stale_lock_minutes; it may be between two "
                           "steps of a deploy",
    "dir_fresh": "its locked_at is newer than lock_dir_timeout_minutes; a deploy may be running",
    "dir_owner_alive": "the process that took it is still running on this host",
    "dir_unknown_owner_lock_held": "it records no pid, and the migration lock is held: something may be migrating",
    "dir_not_a_directory": "it is not a plain directory, so dbops leaves it alone",
}


def idle_text(holder: LockHolder, now: datetime) -> str:
    if holder.hidden:
        return ("its state is hidden: it is another role's session, and PostgreSQL shows that only to members of "
                "pg_read_all_stats (GRANT pg_read_all_stats TO dbops' role to see it)")
    if not holder.state:
        return "its session's state is unknown"
    since = f" for {span_text(now - holder.state_since)}" if holder.state_since else ""
    return f"its session is {holder.state}{since}"


def owner_text(info: LockDirInfo) -> str:
    if info.pid is None:
        return "no pid recorded"
    return f"pid {info.pid} {'is running' if info.pid_alive else 'is not running'} on this host"


def _hint(env: str) -> str:
    return (f"To release a stale lock: {code(f'/dbops lock release {env}')} (it needs approval, and refuses while "
            "the holder is alive).")


def _dir_row(info: LockDirInfo, now: datetime) -> str:
    if not info.exists:
        return f"{code(info.path)}: not there (free)"
    if info.locked_at is None:
        return f"{code(info.path)}: {esc(KEPT['dir_not_a_directory'])}"
    source = "locked_at" if info.locked_at_source == "file" else "made"
    state = bold("stale") if info.stale else "held"
    return (f"{code(info.path)}: {state}, {source} {when(info.locked_at)} ({age_text(now - info.locked_at)}); "
            f"{esc(owner_text(info))}")


def lock_status(r: LockStatusResult, now: datetime) -> Message:
    held = r.holder is not None or any(info.exists for info in r.lock_dirs)
    headline = f"{bold(esc(r.env))}: the migration lock is {'held' if held else 'free'}"
    card = Card(plain(headline)).section(headline)
    if r.holder is None:
        card.fields([("Advisory lock (golang-migrate's)", "free")])
    else:
        h = r.holder
        stale = h.since is not None and now - h.since >= timedelta(minutes=r.stale_after_minutes)
        held_for = (span_text(now - h.since) if h.since
                    else "a time hidden from dbops' role" if h.hidden else "an unknown time")
        stale_note = f" (stale: over {count(r.stale_after_minutes, 'minute')})" if stale else ""
        card.fields([("Advisory lock (golang-migrate's)", holder_line(h, now)), ("Held for", held_for + stale_note),
                     ("Session", esc(idle_text(h, now)))])
    if r.lock_dirs:
        card.lines([_dir_row(info, now) for info in r.lock_dirs], title="*Lock directories*")
    else:
        card.context("No lock directories configured (`lock_dirs`).")
    if held:
        card.context(_hint(r.env))
    return card.message()


def lock_release(r: LockReleaseResult) -> Message:
    if r.terminated is None and not r.removed and not r.kept:
        headline = f"{bold(esc(r.env))}: nothing to release: the migration lock is free and no lock directory is there"
        return Card(plain(headline)).section(headline).message()
    done = r.terminated is not None or bool(r.removed)
    headline = f"{bold(esc(r.env))}: " + ("released the stale migration lock" if done else
                                          "lock release refused; nothing was changed")
    card = Card(plain(headline)).section(headline)
    rows = []
    if r.terminated is not None and r.holder is not None:
        rows.append(f":white_check_mark: ended the idle session that held the migration lock: pid {r.terminated} "
                    f"({esc(r.holder.application_name or 'unknown application')}, from {esc(r.holder.client)})")
    rows += [f":white_check_mark: removed the stale lock directory {code(info.path)}" for info in r.removed]
    for what, why in r.kept:
        label = "the migration lock" if what == "advisory lock" else f"lock directory {code(what)}"
        holder = (f" (pid {r.holder.pid}, {esc(r.holder.application_name or 'unknown application')})"
                  if what == "advisory lock" and r.holder else "")
        rows.append(f":no_entry: kept {label}{holder}: {esc(KEPT.get(why, why))}")
    return card.lines(rows).message()


# --- the watchers' alerts ---------------------------------------------------------------------

def _snapshot_row(s: SnapshotInfo, now: datetime) -> str:
    return f"{code(s.name)} {human_size(s.size)}, {age_text(now - s.created_at)}{' (pinned)' if s.pinned else ''}"


def alert(event: AlertEvent, *, now: datetime) -> Message:
    a = event.alert
    if a.subject == "stale_lock" and a.holder is not None:
        headline = (f"{a.env}: the migration lock has been held for "
                    f"{span_text(now - a.holder.since) if a.holder.since else 'a long time'}")
        card = Card(headline).section(f":lock: {bold(esc(headline))}")
        card.fields([("Holder", holder_line(a.holder, now)), ("Session", esc(idle_text(a.holder, now)))])
        return card.context(_hint(a.env)).message()
    if a.subject == "stale_lock_dir" and a.lock_dir is not None:
        d = a.lock_dir
        headline = f"{a.env}: a deploy lock directory has been there for {span_text(now - d.locked_at)}"
        card = Card(headline).section(f":lock: {bold(esc(headline))}")
        card.fields([("Lock directory", code(d.path)),
                     ("Locked at", f"{when(d.locked_at)} ({age_text(now - d.locked_at)})"), ("Owner", esc(owner_text(d)))])
        card.context("Deploys refuse to migrate while it is there. " + _hint(a.env))
        return card.message()
    d = a.disk
    headline = (f"{a.env}: the snapshot disk is {d.percent:.0f}% full (alert at {d.threshold}%)" if d is not None
                else f"{a.env}: the snapshot disk is nearly full")
    card = Card(headline).section(f":floppy_disk: {bold(esc(headline))}")
    if d is not None:
        card.fields([("Directory", code(d.directory)),
                     ("Used", f"{human_size(d.used)} of {human_size(d.total)}"
                      + (f", {human_size(d.free)} free" if d.free is not None else ""))])
        if d.biggest:
            card.lines([_snapshot_row(s, now) for s in d.biggest], title="*Biggest snapshots*")
            card.lines([_snapshot_row(s, now) for s in d.oldest], title="*Oldest snapshots*")
        else:
            card.context("No snapshots in it: something else is filling the disk.")
    card.context("Free space: `/snapshot cleanup` (pinned snapshots are kept), or `/snapshot unpin NAME` first.")
    return card.message()


def resolved(event: AlertEvent, *, now: datetime) -> Message:
    a = event.alert
    what = {"stale_lock": "the migration lock was released", "stale_lock_dir": "the lock directory is gone",
            "disk": "the snapshot disk is below its alert threshold again"}.get(a.subject, "resolved")
    how = f" by {user_ref(a.resolved_by)} with {code(a.resolved_with)}" if a.resolved_by and a.resolved_with else ""
    text = f"Resolved: {bold(esc(a.env))}: {what}{how} after {esc(span_text((a.resolved_at or now) - a.opened_at))}."
    return Card(plain(text)).section(f":white_check_mark: {text}").message()
