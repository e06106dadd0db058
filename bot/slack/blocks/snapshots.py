"""Slack wording for snapshots: the list, create, verify, restore, pin/unpin and cleanup."""

from __future__ import annotations

import re
from datetime import datetime

from bot.slack.blocks.kit import (REFRESH_ACTION, Card, Message, bold, code, count, duration_text, either, esc, plain,
                                  pre, shorten, when)
from bot.slack.blocks.migrate import json_hint, snapshot_version
from bot.slack.blocks.wording import TICKS, age_text, at_version, disk_text, version_text
from commands.privileges import ident
from commands.results import Check, Outcome, Reason, Refusal
from commands.snapshot.results import (CleanupResult, DrillRecord, PinResult, RestoreResult, SnapshotCreated, SnapshotInfo,
                                       SnapshotListResult, SnapshotVerifyResult)
from commands.units import human_size

SNAPSHOTS_SHOWN = 30
REASON_CHARS = 120


def drill_mark(d: DrillRecord | None) -> str:
    """A snapshot's last drill, as its row in ``/snapshot list`` says it."""
    if d is None:
        return ""
    return f" · drill {'passed' if d.passed else '*FAILED*'} {when(d.drilled_at)}"


def _row(s: SnapshotInfo, now: datetime, drill: DrillRecord | None = None) -> str:
    flags = "".join(f" · *{flag}*" for flag, on in (("pinned", s.pinned), ("legacy", s.kind == "legacy")) if on)
    reason = f" · “{esc(shorten(s.reason, REASON_CHARS))}”" if s.reason.strip() else ""
    return (f"{code(s.name)} · {age_text(now - s.created_at)} ({when(s.created_at)}) · {human_size(s.size)} · "
            f"{snapshot_version(s)}{flags}{drill_mark(drill)}{reason}")


def _list_title(r: SnapshotListResult) -> str:
    older = " older" if r.before else ""  # than the one named on the card (too long for a header)
    if not r.snapshots:
        return f"{r.env}: no{older} snapshots" + ("" if r.before else " yet")
    if r.complete and len(r.snapshots) >= r.counted:
        return f"{r.env}: {count(len(r.snapshots), f'{older} snapshot'.strip())}"
    return f"{r.env}: newest {len(r.snapshots)} of {'' if r.complete else 'at least '}{r.counted:,}{older} snapshots"


def snapshot_list(r: SnapshotListResult, now: datetime) -> Message:
    """A page of the newest (``commands.snapshot.paging``), and where the next one is."""
    title = _list_title(r)
    card = Card(esc(title)).header(title)
    heading = f"*Older than {code(r.before)}, newest first:*" if r.before else "*Newest first:*"
    if r.snapshots:
        card.lines([_row(s, now, r.drills.get(s.name)) for s in r.snapshots], title=heading)
        card.context(f"Restore one with {code(f'/snapshot restore NAME {r.env}')}; "
                     f"{code(f'/snapshot pin NAME {r.env}')} keeps it from cleanup.")
    elif r.before:
        card.section(f"None older than {code(r.before)}: that was the oldest.")
    else:
        card.section(f"Take one with {code(f'/snapshot create {r.env} --reason TEXT')}.")
    if r.more:
        older = f"/snapshot list {r.env} --before {r.more}"
        card.context(f"Older ones: {code(older)}.")
        card.button("More", action_id=REFRESH_ACTION, value=older)
    notes = [f"Disk: {disk_text(r.disk)}" if r.complete else
             "Counted from the newest only, so no total size: "
             f"{code(f'/snapshot list {r.env} --all')} reads every snapshot."]
    if r.orphans:
        names = ", ".join(code(o) for o in r.orphans[:5]) + (" …" if len(r.orphans) > 5 else "")
        notes.append(f"{count(len(r.orphans), 'sidecar file')} without {'its' if len(r.orphans) == 1 else 'their'} "
                     f"snapshot (not listed): {names}")
    if r.incomplete:
        notes.append(f"{count(len(r.incomplete), 'unfinished snapshot file')} from an interrupted run "
                     "(removed at the next create)")
    return card.context(*notes).message()


def created(r: SnapshotCreated) -> Message:
    s = r.snapshot
    headline = f"{bold(r.env)}: snapshot {code(s.name)} created ({human_size(s.size)})"
    card = Card(plain(headline)).section(headline)
    card.fields([("Size", f"{human_size(s.size)} (database {human_size(r.database_size)})"),
                 ("Took", duration_text(r.duration_ms)),
                 ("sha256", code(r.sha256[:16] + "…")),
                 ("Taken at", snapshot_version(s)),
                 ("Reason", esc(shorten(s.reason, 500)))])
    return card.context(f"Restore it with {code(f'/snapshot restore {s.name} {r.env}')}.").message()


_QUOTED = re.compile(r"`([^`\n]+)`")


def _quoting(detail: str) -> str:
    """``esc`` for a check's detail whose `quoted` text (a file's failing line) stays a code span,
    so the line reads as it is in the file."""
    parts, at = [], 0
    for quoted in _QUOTED.finditer(detail):
        parts += [esc(detail[at:quoted.start()]), code(quoted[1])]
        at = quoted.end()
    return "".join(parts + [esc(detail[at:])])


def _check_row(c: Check) -> str:
    return f"{':white_check_mark:' if c.passed else ':x:'} *{esc(c.name)}*: {_quoting(shorten(c.detail, 600))}"


def not_own(r: Refusal) -> str:
    """Why ``r.env`` may not act on snapshot ``r.snapshot``, and what would allow it."""
    env, owner, key = bold(r.env), bold(r.owner or "?"), code(f"[environments.{r.env}]")
    quoted = code('"' + (r.owner or "") + '"')
    match r.reason:
        case Reason.OTHER_ENVIRONMENT if r.operation in ("snapshot restore", "snapshot verify"):
            return (f"It is a snapshot of {owner}, and {env} acts only on its own. To allow restoring snapshots of "
                    f"{owner} into {env}, add {quoted} to `restore_from` under {key} in the dbops "
                    f"configuration; each such restore then needs the approval of an approver of {env}.")
        case Reason.OTHER_ENVIRONMENT:
            return (f"It is a snapshot of {owner}, and {env} acts only on its own. Run it for {owner} instead: "
                    f"{code(f'/{r.operation} {r.snapshot} {r.owner}')}.")
        case Reason.UNCLAIMED_SNAPSHOT if r.claimants:
            claimants = either([bold(c) for c in r.claimants], "and")
            return (f"It is a legacy snapshot whose name answers to {claimants} (by "
                    "environment or database name), so dbops acts on it for none of them. Rename it "
                    f"{code('togather_<environment>_…')} to give it to one.")
        case Reason.UNCLAIMED_SNAPSHOT:
            return ("It is a legacy snapshot whose name answers to no configured environment (by environment or "
                    f"database name), so dbops acts on it for none. Rename it {code('togather_<environment>_…')} to "
                    "give it to one.")
    says = f"names {bold(r.claimants[0])}" if r.claimants else "names no environment (or cannot be read)"
    return (f"Its name says it belongs to {owner}, but its manifest {says}: it was renamed, copied or edited by "
            "hand, and dbops acts on such a snapshot for no environment.")


def check_rows(checks: tuple[Check, ...]) -> list[str]:
    return [_check_row(c) for c in checks]


def verified(r: SnapshotVerifyResult) -> Message:
    ok = r.outcome == Outcome.DONE
    headline = (f"{bold(r.env)}: snapshot {code(r.name)} verified" if ok else
                f"{bold(r.env)}: snapshot {code(r.name)} FAILED verification: do not restore it")
    card = Card(plain(headline)).section(headline).lines(check_rows(r.checks))
    if not ok:
        card.context(f"Pick another one: {code(f'/snapshot list {r.env}')}.")
    return card.message()


def restored(r: RestoreResult) -> Message:
    headline = (f"{bold(r.env)}: restored {code(r.name)}; {version_text(r.before)} → "
                f"{version_text(r.after)}")
    card = Card(plain(headline)).section(headline)
    card.fields([("Mode", _mode_text(r)), ("Took", duration_text(r.duration_ms)),
                 ("Before", version_text(r.before)), ("After", version_text(r.after)),
                 ("Safety snapshot", code(r.safety_snapshot) if r.safety_snapshot else "none (off for this environment)"),
                 ("Replaced database", f"kept as {code(r.kept_database)}" if r.kept_database else "not kept")])
    if r.largest_tables:
        card.lines([f"{code(t.table)} {count(t.rows, 'row')}" for t in r.largest_tables], title="*Largest tables now:*")
    if r.app_hooks is not None:
        from bot.slack.blocks.app_hooks import checklist, health_item
        items = checklist(r.app_hooks) + ([health_item(r.app_hooks.health)] if r.app_hooks.health else [])
        card.section("*The application*\n" + "\n".join(f"{TICKS[done]} {item}" for done, item in items))
    if r.preserved is not None:
        from bot.slack.blocks.preserve import add_report  # only a restore that kept rows
        add_report(card, r.preserved, r.env)
    undo = []
    if r.safety_snapshot and not r.kept_database:
        undo.append(f"To undo: {code(f'/snapshot restore {r.safety_snapshot} {r.env}')}.")
    if r.after.dirty:
        undo.append(f"The snapshot itself was taken while the database was dirty at {at_version(r.after.version)}: "
                    f"{code(f'/migrate status {r.env}')} shows the recovery options.")
    if r.kept_database:
        _kept(card, r)
    card.section("\n".join(undo))
    if r.abandoned_dropped:
        left = ", ".join(code(name) for name in r.abandoned_dropped)
        card.context(f"Dropped first: {left}, half-loaded by a restore of {bold(r.env)} that was killed part-way "
                     "(the database it was loading; never a kept one).")
    return card.message()


def _kept(card: Card, r: RestoreResult) -> None:
    """What the database a new-database restore replaced is for, and the ways back to it: the
    safety snapshot (the same data, through the lock and approval) or, at once, a rename by hand."""
    kept, database = r.kept_database, r.database or r.kept_database.rsplit("_before_restore_", 1)[0]
    space = (f"it still takes {human_size(r.kept_size)} on the database server" if r.kept_size is not None
             else "it still takes as much space on the database server as the database did")
    card.section(f"*The database it replaced* is kept as {code(kept)}: {bold(database)} exactly as it was before "
                 "this restore, to go back to. It is closed to connections (ALLOW_CONNECTIONS false) so that nothing "
                 f"writes to it by mistake, and {space} until it is dropped.")
    ways = []
    if r.safety_snapshot:
        ways.append("• Restore the safety snapshot, taken just before this restore, through the lock and any approval: "
                    + code(f"/snapshot restore {r.safety_snapshot} {r.env}"))
    aside = f"{database}_restored_{kept.rsplit('_before_restore_', 1)[-1]}"[:63]
    ways.append("• Or rename it back by hand, at once: stop the application, connect to another database on the "
                f"server (postgres), and run the SQL below. This restore's database is set aside as {code(aside)}, "
                "with what was written to it since.")
    heading = "*Two ways back to it:*" if len(ways) == 2 else "*The way back to it:*"
    card.section(heading + "\n" + "\n".join(ways))
    card.section(pre(swap_back_sql(database, kept, aside)))
    card.context(f"When it is no longer needed: {code(f'DROP DATABASE {ident(kept)};')}")


def swap_back_sql(database: str, kept: str, aside: str) -> str:
    """The statements that put ``kept`` back in ``database``'s place, as dbops' swap does it."""
    db, literal = ident(database), "'" + database.replace("'", "''") + "'"
    return "\n".join((f"ALTER DATABASE {db} ALLOW_CONNECTIONS false;",
                      f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = {literal};",
                      f"ALTER DATABASE {db} RENAME TO {ident(aside)};",
                      f"ALTER DATABASE {ident(kept)} RENAME TO {db};",
                      f"ALTER DATABASE {db} ALLOW_CONNECTIONS true;"))


def _mode_text(r: RestoreResult) -> str:
    """How it restored: a new-database restore says whether pg_restore loaded it in parallel."""
    if r.mode != "new-database":
        return esc(r.mode)
    return f"new-database, {count(r.jobs, 'parallel job')}" if r.jobs > 1 else "new-database, one transaction"


def pinned(r: PinResult) -> Message:
    changed = r.outcome != Outcome.NO_CHANGE
    if r.pinned:
        state = "is now pinned: cleanup will never delete it" if changed else "was already pinned"
    else:
        state = ("is now unpinned: cleanup may delete it once it is past retention" if changed
                 else "was not pinned; nothing changed")
    headline = f"{bold(r.env)}: {code(r.name)} {state}"
    return Card(plain(headline)).section(headline).message()


def cleanup(r: CleanupResult, now: datetime) -> Message:
    n, freed = count(len(r.deleted), "snapshot"), human_size(r.freed_bytes)
    if r.dry_run:
        headline = (f"{bold(r.env)}: cleanup dry run: would delete {n} and free {freed}. Nothing was deleted"
                    if r.deleted else f"{bold(r.env)}: cleanup dry run: nothing would be deleted")
    else:
        headline = (f"{bold(r.env)}: cleanup deleted {n} and freed {freed}" if r.deleted
                    else f"{bold(r.env)}: cleanup found nothing to delete")
    card = Card(plain(headline)).section(headline)
    if r.bundles_deleted:
        card.context(f"Also {'would delete' if r.dry_run else 'deleted'} {count(len(r.bundles_deleted), 'bundle')} of "
                     f"rows kept by restores, past retention: {', '.join(code(b) for b in r.bundles_deleted[:5])}"
                     + (f" and {len(r.bundles_deleted) - 5:,} more" if len(r.bundles_deleted) > 5 else "") + ".")
    if r.export_leftovers:
        shown = ", ".join(code(f) for f in r.export_leftovers[:5])
        more = f" and {len(r.export_leftovers) - 5:,} more" if len(r.export_leftovers) > 5 else ""
        card.context(f"Also {'would remove' if r.dry_run else 'removed'} {count(len(r.export_leftovers), 'file')} that "
                     f"exports of rows (--preserve) killed part-way had left, their writer gone: {shown}{more}.")
    card.context(f"Retention {count(r.retention_days, 'day')}; the newest {r.keep_last:,} and pinned snapshots "
                 "are always kept.")
    if r.deleted:
        # After a real run the deleted ones are gone from every listing; the log names each one.
        hint = json_hint("snapshot cleanup --dry-run", r.env) if r.dry_run else "the log names every one"
        card.lines([f"{code(s.name)} · {human_size(s.size)} · {age_text(now - s.created_at)}"
                    for s in r.deleted[:SNAPSHOTS_SHOWN]], total=len(r.deleted),
                   title=f"*{'Would delete' if r.dry_run else 'Deleted'}:*", more=hint, max_blocks=3)
    if r.kept:
        card.lines([f"{code(s.name)} · {esc(why)}" for s, why in r.kept[:SNAPSHOTS_SHOWN]], total=len(r.kept),
                   title="*Kept:*", more=json_hint("snapshot list", f"{r.env} --all"), max_blocks=3)
    disk = [f"Disk before: {disk_text(r.disk_before)}"]
    if not r.dry_run:
        disk.append(f"Disk after: {disk_text(r.disk_after)}")
    return card.context(*disk).message()
