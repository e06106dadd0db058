"""The progress of the statement a migration runs, read from PostgreSQL's ``pg_stat_progress_*`` views.

A second session samples the runner's backend (by pid) every ``SAMPLE_SECONDS`` once a statement
has run ``AFTER_SECONDS``, and hands each sample to the caller. It connects with the runner's own
URL, so as the same role: a role that is neither superuser nor in pg_read_all_stats sees only its
own role's rows in these views (another role's row has every column but the pid NULL), and a row
it cannot read is reported as hidden, never taken for "no progress".

Which views exist depends on the server: create_index, cluster and vacuum on every supported one
(13 up), analyze from 13, copy from 14. Their columns used here are the same on 13–18 (17 renamed
vacuum's dead-tuple counters and 18 added delay times; neither is read). No view covers ALTER TABLE
(its table rewrites included; only an index it builds is reported), CREATE TABLE AS, REFRESH MATERIALIZED VIEW, UPDATE, DELETE …: of
those, only how long they have run is known, and the sample says so.

Sampling is a courtesy: it never fails, blocks or slows the migration. Its queries take no lock
and have a short statement_timeout; if its session cannot be had, the migration runs unwatched.
"""

from __future__ import annotations

import re
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterator

import psycopg
import structlog
from psycopg.rows import dict_row

from commands.redact import redact
from commands.sessions import StatementProgress

if TYPE_CHECKING:
    from commands.sql.sqlfile import SqlFile, Statement

log = structlog.get_logger("dbops.progress")

SAMPLE_SECONDS = 1.0
AFTER_SECONDS = 1.0   # a statement that ends sooner is never sampled: most do
QUERY_TIMEOUT = "5s"  # of each sample's query
SINCE = {"analyze": 130000, "copy": 140000}  # server_version_num that added the view; others: every supported one

Report = Callable[[StatementProgress | None], None]
WHOLE_FILE = "The whole file"  # what a file sent whole runs, when it has more than one statement


@dataclass(frozen=True, kw_only=True)
class Watched:
    """A statement as the sampler knows it: what to call it, where it is, which views may show it."""

    statement: str
    line: int | None
    views: tuple[str, ...]
    # What no row in ``views`` means: "waiting" (the statement has not begun what they show) or
    # "no_view" (they show only a part of it, such as the index an ALTER TABLE builds).
    otherwise: str = "waiting"


def _words(kind: str) -> str:
    """A statement kind as SQL says it: AlterTableStmt -> ALTER TABLE."""
    return " ".join(re.findall(r"[A-Z][a-z]*", kind.removesuffix("Stmt"))).upper() or kind


_LABELS = {"CreateTableAsStmt": "CREATE TABLE AS", "RefreshMatViewStmt": "REFRESH MATERIALIZED VIEW",
           "DoStmt": "DO block", "CopyStmt": "COPY", "ClusterStmt": "CLUSTER"}


def _options(node) -> set[str]:
    return {getattr(o, "defname", "") for o in (getattr(node, "options", None) or getattr(node, "params", None) or ())}


def watched(statement: Statement) -> Watched:
    """What ``statement`` is called and which progress views may report it."""
    node, kind = statement.node, statement.kind
    views: tuple[str, ...] = ()
    label = _LABELS.get(kind, _words(kind))
    if kind == "IndexStmt":
        label = "CREATE " + ("UNIQUE " if getattr(node, "unique", False) else "") + "INDEX" + (
            " CONCURRENTLY" if getattr(node, "concurrent", False) else "")
        views = ("create_index",)
    elif kind == "ReindexStmt":
        label = "REINDEX" + (" CONCURRENTLY" if "concurrently" in _options(node) else "")
        views = ("create_index",)
    elif kind == "ClusterStmt":
        views = ("cluster",)
    elif kind == "VacuumStmt":
        options = _options(node)
        if not getattr(node, "is_vacuumcmd", True):
            label, views = "ANALYZE", ("analyze",)
        elif "full" in options:
            label, views = "VACUUM FULL", ("cluster",) + (("analyze",) if "analyze" in options else ())
        else:
            label, views = "VACUUM", ("vacuum",) + (("analyze",) if "analyze" in options else ())
    elif kind == "CopyStmt":
        views = ("copy",)
    elif kind == "AlterTableStmt":  # an index it builds (ADD PRIMARY KEY, UNIQUE) reports; a rewrite does not
        return Watched(statement=label, line=statement.line, views=("create_index",), otherwise="no_view")
    return Watched(statement=label, line=statement.line, views=views)


# A snapshot's restore: psql runs its SQL, whose long parts are the tables' COPY and the index builds.
RESTORE = Watched(statement="The restore", line=None, views=("create_index", "copy"), otherwise="no_view")


def watched_file(sqlfile: SqlFile) -> Watched:
    """A file sent whole, as one query (the dirty protocol): its one statement when it has one
    (BEGIN/COMMIT aside), else WHOLE_FILE, reported by any view one of its statements may use."""
    inner = [watched(s) for s in sqlfile.statements if not s.transaction_control]
    if len(inner) == 1:
        return inner[0]
    views = tuple(dict.fromkeys(v for w in inner for v in w.views))
    # Which of its statements runs is not known: with no row, none that a view covers does.
    return Watched(statement=WHOLE_FILE, line=None, views=views, otherwise="no_view")


# --- reading the views ----------------------------------------------------------------------------

# The table's name, if this session can read it: not when it is another database's, or was made by
# the sampled session's transaction, not yet committed (a restore's tables): only its OID is there.
_RELATION = "(SELECT c.oid::regclass::text FROM pg_class c WHERE c.oid = v.relid AND v.datname = current_database())"
_QUERIES = {
    "create_index": f"""SELECT command, phase, {_RELATION} AS relation, lockers_total, lockers_done,
                              current_locker_pid, blocks_total, blocks_done, tuples_total, tuples_done,
                              partitions_total, partitions_done
                       FROM pg_stat_progress_create_index v WHERE pid = %s""",
    "cluster": f"""SELECT command, phase, {_RELATION} AS relation, heap_blks_total, heap_blks_scanned,
                         heap_tuples_written
                  FROM pg_stat_progress_cluster v WHERE pid = %s""",
    "vacuum": f"""SELECT 'VACUUM' AS command, phase, {_RELATION} AS relation, heap_blks_total,
                        heap_blks_scanned, heap_blks_vacuumed
                 FROM pg_stat_progress_vacuum v WHERE pid = %s""",
    "analyze": f"""SELECT 'ANALYZE' AS command, phase, {_RELATION} AS relation, sample_blks_total,
                         sample_blks_scanned, child_tables_total, child_tables_done
                  FROM pg_stat_progress_analyze v WHERE pid = %s""",
    "copy": f"""SELECT command, command AS phase, {_RELATION} AS relation, bytes_total, bytes_processed,
                      tuples_processed
               FROM pg_stat_progress_copy v WHERE pid = %s""",
}


def _measure(view: str, row: dict) -> tuple[int | None, int | None, str | None, int | None]:
    """(done, total, unit, waiting_for) of a view's row: what its current phase counts."""
    phase = row["phase"] or ""
    if view == "create_index":
        if phase.startswith("waiting for") and row["lockers_total"]:
            return row["lockers_done"], row["lockers_total"], "transactions", row["current_locker_pid"] or None
        if row["blocks_total"]:
            return row["blocks_done"], row["blocks_total"], "blocks", None
        if row["tuples_total"]:
            return row["tuples_done"], row["tuples_total"], "tuples", None
        if row["partitions_total"]:
            return row["partitions_done"], row["partitions_total"], "partitions", None
        return None, None, None, None
    if view == "cluster":
        if row["heap_blks_total"] and phase == "seq scanning heap":
            return row["heap_blks_scanned"], row["heap_blks_total"], "blocks", None
        return row["heap_tuples_written"], None, "tuples written", None
    if view == "vacuum":
        done = row["heap_blks_vacuumed"] if phase == "vacuuming heap" else row["heap_blks_scanned"]
        return done, row["heap_blks_total"] or None, "blocks", None
    if view == "analyze":
        if phase == "acquiring inherited sample rows":
            return row["child_tables_done"], row["child_tables_total"] or None, "child tables", None
        return row["sample_blks_scanned"], row["sample_blks_total"] or None, "blocks", None
    if row["bytes_total"]:  # copy: a file's size is known; a client's stream is not
        return row["bytes_processed"], row["bytes_total"], "bytes", None
    return row["tuples_processed"], None, "rows", None


def sample(conn: psycopg.Connection, pid: int, what: Watched, seconds: float, server: int) -> StatementProgress:
    """What the views say now of backend ``pid`` running ``what`` (for ``seconds`` so far)."""
    base = dict(statement=what.statement, line=what.line, seconds=seconds, server_version=server)
    views = [v for v in what.views if server >= SINCE.get(v, 0)]
    if not views:
        return StatementProgress(**base, seen="no_view")
    for view in views:
        row = conn.execute(_QUERIES[view], (pid,)).fetchone()
        if row is None:
            continue
        if row["phase"] is None:  # another role's session: only its pid shows
            return StatementProgress(**base, seen="hidden")
        done, total, unit, waiting_for = _measure(view, row)
        return StatementProgress(**base, command=row["command"], relation=row["relation"], phase=row["phase"],
                                 done=done, total=total, unit=unit, waiting_for=waiting_for)
    return StatementProgress(**base, seen=what.otherwise)


# --- the sampler --------------------------------------------------------------------------------

class StatementWatch:
    """Samples backend ``pid`` while ``running`` says which statement it runs.

    Contract: ``report`` hears a StatementProgress for each sample of a statement that has run
    ``after`` seconds, from the sampler's thread, and None once such a statement has ended (so
    a surface stops showing it); nothing is reported after ``watching`` returns.
    """

    def __init__(self, connect: Callable[[], psycopg.Connection], pid: int | None, report: Report, *,
                 application_name: str | None = None, every: float = SAMPLE_SECONDS,
                 after: float = AFTER_SECONDS) -> None:
        """``pid`` None: the backend is the session named ``application_name`` (another program's,
        psql's for a restore), looked up when first sampled."""
        self._connect, self.pid, self.report, self.every, self.after = connect, pid, report, every, after
        self.application_name = application_name
        self._lock = threading.Lock()
        self._current: tuple[Statement | SqlFile | Watched, float] | None = None  # named when sampled: most never are
        self._reported = False
        self._stop = threading.Event()
        self._conn: psycopg.Connection | None = None
        self._server = 0
        self._broken = False

    @contextmanager
    def running(self, what: Statement | SqlFile | Watched) -> Iterator[None]:
        """While the block runs, backend ``pid`` runs ``what``: one statement, or a file sent whole."""
        with self._lock:
            self._current = (what, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._current = None
                if self._reported:
                    self._reported = False
                    self.report(None)

    def _loop(self) -> None:
        try:
            while not self._stop.wait(self.every):
                with self._lock:
                    current = self._current
                if current is None or self._broken or time.monotonic() - current[1] < self.after:
                    continue
                running, started = current
                what = running if isinstance(running, Watched) else (
                    watched_file(running) if hasattr(running, "statements") else watched(running))
                progress = self._sample(what, started)
                with self._lock:
                    if progress is not None and self._current is current and not self._stop.is_set():
                        self._reported = True
                        self.report(progress)
        finally:
            if self._conn is not None:
                self._conn.close()

    def _sample(self, what: Watched, started: float) -> StatementProgress | None:
        try:
            if self._conn is None:
                self._conn = self._connect()
                self._conn.row_factory = dict_row
                self._conn.execute("SELECT set_config('statement_timeout', %s, false)", (QUERY_TIMEOUT,))
                self._server = int(self._conn.execute("SHOW server_version_num").fetchone()["server_version_num"])
            if self.pid is None:
                row = self._conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s "
                                         "ORDER BY backend_start LIMIT 1", (self.application_name,)).fetchone()
                if row is None:
                    return None  # not connected yet
                self.pid = row["pid"]
            return sample(self._conn, self.pid, what, time.monotonic() - started, self._server)
        except Exception as err:  # noqa: BLE001 - whatever it is, the migration goes on unwatched
            log.warning("progress.sample_failed", error=redact(f"{type(err).__name__}: {err}".splitlines()[0]))
            self._broken = True
            return None

    @contextmanager
    def watching(self) -> Iterator[StatementWatch]:
        thread = threading.Thread(target=self._loop, name=f"progress-{self.pid}", daemon=True)
        thread.start()
        try:
            yield self
        finally:
            with self._lock:
                self._stop.set()
            thread.join()


class Unwatched:
    """The watch of a run nobody follows (a dry run, a caller with no progress callback)."""

    @contextmanager
    def running(self, what: Statement | SqlFile | Watched) -> Iterator[None]:
        yield
