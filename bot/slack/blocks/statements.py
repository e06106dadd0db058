"""Wording for what PostgreSQL says of a migration's statements: the progress of a long one while it
runs (a line of the progress message), and the INVALID indexes a failed CREATE INDEX CONCURRENTLY
left behind (in the failure's card and the dirty alert), with the fix."""

from __future__ import annotations

from bot.slack.blocks.kit import clock_text, code, esc
from commands.sessions import InvalidIndex, StatementProgress
from commands.units import human_size

_SINCE = {"COPY": 14}  # the server version that added the view, where it is not in every supported one


def percent(done: int, total: int) -> int:
    """Rounded down and kept under 100 until done: "100%" of a build still running would mislead."""
    if not total:
        return 0
    return max(0, min(done * 100 // total, 100 if done >= total else 99))


def _amount(s: StatementProgress) -> str:
    if s.done is None:
        return ""
    size = human_size if s.unit == "bytes" else (lambda n: f"{n:,}")
    if s.total:
        return f"{size(s.done)} of {size(s.total)}{'' if s.unit == 'bytes' else ' ' + esc(s.unit)} " \
               f"({percent(s.done, s.total)}%)"
    return f"{size(s.done)}{'' if s.unit == 'bytes' else ' ' + esc(s.unit)}"


def statement_progress_text(s: StatementProgress) -> str:
    """One line: what runs, where in the file, and what the server says of it."""
    where = f" (line {s.line})" if s.line is not None else ""
    # A file sent whole or a restore: the view's own name says which of its statements runs.
    doing = f" ({esc(s.command)})" if s.line is None and s.command else ""
    what = f"{esc(s.statement)}{where}{doing}"
    running = f"running for {clock_text(s.seconds)}"
    if s.seen == "no_view" and s.line is None:  # a file sent whole: which statement runs is not known
        return f"{what}: {running}; no progress view reports the statement it runs now."
    if s.seen == "no_view":
        since = _SINCE.get(s.statement)
        server = s.server_version // 10000 if s.server_version else None
        if since and server and server < since:
            return (f"{what}: {running}. PostgreSQL {server} has no progress view for {esc(s.statement)} "
                    f"({since} and later have one).")
        return f"{what}: {running}. PostgreSQL has no progress view for {esc(s.statement)}: only its time is known."
    if s.seen == "hidden":
        return (f"{what}: {running}. Its progress is hidden from dbops' role: the progress views show another "
                "role's sessions only to members of pg_read_all_stats.")
    if s.seen == "waiting":
        return f"{what}: {running}; no progress reported yet."
    on = f" on {code(s.relation)}" if s.relation else ""
    # COPY has no phases: its view's phase is its command, already said.
    said = [esc(s.phase)] if s.phase and s.phase != s.command else []
    said += [amount] if (amount := _amount(s)) else []
    waits = f"; waiting for pid {s.waiting_for}" if s.waiting_for else ""
    return f"{what}{on}: {', '.join(said) or 'under way'}{waits}, {running}"


# --- a failed CREATE INDEX CONCURRENTLY ---------------------------------------------------------------

def index_name(index: InvalidIndex) -> str:
    return f"{index.schema}.{index.name}"


def drop_statement(index: InvalidIndex) -> str:
    """Both names quoted: right for any name, a reserved word or mixed case included."""
    def quoted(name: str) -> str:
        return '"' + name.replace('"', '""') + '"'
    return f"DROP INDEX CONCURRENTLY IF EXISTS {quoted(index.schema)}.{quoted(index.name)};"


def invalid_indexes_text(indexes: tuple[InvalidIndex, ...], *, env: str, version: int,
                         previous: int | None) -> str:
    """What a failed concurrent build left, and the fix: dbops' recovery (``/rollback --recover``,
    which drops such leftovers, checks the schema and forces the previous version), or the
    guide's Option 2 for a dirty database by hand (fix the schema, force, run up again).
    ``previous``: the version the database was at before the file ran (None: not known)."""
    names = ", ".join(f"{code(index_name(i))} on {code(i.table)}" for i in indexes)
    one = len(indexes) == 1
    it = "it" if one else "them"
    drops = esc("\n".join(drop_statement(i) for i in indexes))
    at = f"version {previous}" if previous is not None and previous >= 0 else "the version before it"
    force = code(f"/migrate force {previous} {env}") if previous is not None else "`/migrate force` to that version"
    recover = code(f'/rollback {env} --recover --reason "index build failed"')
    return (f"*INVALID {'index' if one else 'indexes'} left behind:* {names}. The failed "
            f"`CREATE INDEX CONCURRENTLY` of migration {version} left {it} in the catalog: no query uses {it}, "
            f"yet every write to the table still maintains {it}; a retry fails on the name (or, with "
            "`IF NOT EXISTS`, keeps the invalid index and records the migration as done).\n"
            f"*To fix:* {recover} drops {it}, checks the schema is then exactly {at} and forces it "
            f"(a snapshot first; approved as a force). By hand: run on its own (not in a transaction)\n"
            f"```{drops}```\nthen {force}. Either way, fix what made the build fail (for a unique index: the "
            f"duplicate rows) before running {code(f'/migrate up {env}')} again.")
