"""Running migration files against PostgreSQL.

Two ways, chosen per file by ``commands.sql.sqlscan``:
- transactional (most files): the file and its version update commit in one transaction,
  so a failing file leaves the database clean at the previous version;
- own-transaction or no-transaction files: the whole file is sent as one simple-protocol
  query, as golang-migrate sends it, between writing the target version dirty and clean.
  If it fails, the database stays dirty at the target version, as with the CLI.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import Callable, Iterator

import psycopg

from commands.errors import INSUFFICIENT_PRIVILEGE, CommandError
from commands.pg.connect import describe
from commands.pg.integrity import DEPENDENT_OBJECTS_STILL_EXIST, FOREIGN_KEY_VIOLATION, dependency_of
from commands.pg.state import PgVersionStore
from commands.pg.statement_progress import Report, StatementWatch, Unwatched
from commands.results import SqlError
from commands.sql.sqlfile import Mode, SqlFile, position_of


# PostgreSQL names the privilege and the object; what to do about it is dbops' to say.
PRIVILEGE_HINT = ("dbops' database role lacks this privilege. Grant it (or make the role the object's owner), or run "
                  "this migration as a role that has it; /dbops doctor lists what the role lacks.")


@dataclass(frozen=True, kw_only=True)
class Timeouts:
    lock_timeout: str
    statement_timeout: str


def sql_error(err: psycopg.Error, text: str, *, offset: int = 0, line: int | None = None) -> SqlError:
    """PostgreSQL's error, located in ``text``.

    ``offset`` is where the query that failed began in ``text``; ``line`` is that
    statement's first line, used when PostgreSQL gives no position (most utility
    statements, such as ALTER TABLE on a missing table, do not).
    """
    diag = err.diag
    column = None
    hint = diag.message_hint
    if err.sqlstate == INSUFFICIENT_PRIVILEGE and not hint:
        hint = PRIVILEGE_HINT
    if diag.statement_position:
        position = position_of(text, offset + int(diag.statement_position) - 1)
        line, column = position.line, position.column
    return SqlError(message=describe(err), sqlstate=err.sqlstate, detail=diag.message_detail,
                    hint=hint, context=diag.context, line=line, column=column,
                    constraint=diag.constraint_name)


class PgMigrationRunner:
    """Applies one file and records the version it leaves, on one autocommit connection.

    Contract: ``apply`` returns None when the file ran and ``target`` is recorded clean, or
    the SqlError; after an error in a transactional file the recorded state is unchanged,
    after an error in any other file it is ``target`` dirty.
    """

    def __init__(self, conn: psycopg.Connection, store: PgVersionStore, timeouts: Timeouts,
                 sampler: Callable[[], psycopg.Connection] | None = None) -> None:
        """``sampler``: opens the second session (same URL, same role) that samples a long
        statement's progress; None: progress is not sampled."""
        self.conn = conn
        self.store = store
        self.timeouts = timeouts
        self._timeouts_set = False
        self.sampler = sampler
        self._watch: StatementWatch | Unwatched = Unwatched()

    def _set_timeouts(self) -> None:
        """Session-wide, once per operation: the connection lives for one operation only."""
        if not self._timeouts_set:
            self.conn.execute(
                "SELECT set_config('lock_timeout', %s, false), set_config('statement_timeout', %s, false)",
                (self.timeouts.lock_timeout, self.timeouts.statement_timeout),
            )
            self._timeouts_set = True

    def apply(self, sqlfile: SqlFile | None, target: int, progress: Report | None = None) -> SqlError | None:
        """``progress`` hears what PostgreSQL's progress views say of a long statement while it runs."""
        self._set_timeouts()
        with self._watching(progress):
            if sqlfile is None or sqlfile.empty or sqlfile.mode is Mode.TRANSACTIONAL:
                error = self._apply_in_transaction(sqlfile, target)
            else:
                error = self._apply_dirty_protocol(sqlfile, target)
        return self._explained(error)

    @contextmanager
    def _watching(self, progress: Report | None) -> Iterator[None]:
        if progress is None or self.sampler is None:
            yield
            return
        with StatementWatch(self.sampler, self.conn.info.backend_pid, progress).watching() as watch:
            self._watch = watch
            try:
                yield
            finally:
                self._watch = Unwatched()

    def _explained(self, error: SqlError | None) -> SqlError | None:
        """A foreign-key-order failure names the dependency that caused it (read after the
        failed transaction has ended, from the catalog as it now is)."""
        if error is None or error.sqlstate not in (FOREIGN_KEY_VIOLATION, DEPENDENT_OBJECTS_STILL_EXIST):
            return error
        try:
            dependency = dependency_of(self.conn, error.sqlstate, error.constraint, detail=error.detail)
        except CommandError:
            return error
        return replace(error, dependency=dependency)

    def _apply_in_transaction(self, sqlfile: SqlFile | None, target: int) -> SqlError | None:
        try:
            with self.conn.transaction():
                if sqlfile is not None:
                    self._execute_statements(sqlfile, sqlfile.statements)
                self.store.write(target, False)
        except _StatementFailed as failed:
            return failed.error
        except psycopg.Error as err:
            return sql_error(err, "")
        return None

    def _execute_statements(self, sqlfile: SqlFile, statements) -> None:
        """Run ``statements`` one by one in the current transaction, so an error names its
        statement's line even when PostgreSQL gives no position."""
        for statement in statements:
            try:
                with self._watch.running(statement):
                    self.conn.execute(sqlfile.text[statement.start:statement.end])
            except psycopg.Error as err:
                raise _StatementFailed(sql_error(err, sqlfile.text, offset=statement.start, line=statement.line)) from err

    def _apply_dirty_protocol(self, sqlfile: SqlFile, target: int) -> SqlError | None:
        self.store.write(target, True)
        try:
            with self._watch.running(sqlfile):
                self.conn.execute(sqlfile.text)
        except psycopg.Error as err:
            self._abandon_transaction()
            return self._invalid_indexes(sql_error(err, sqlfile.text), sqlfile)
        self.store.write(target, False)
        return None

    def _invalid_indexes(self, error: SqlError, sqlfile: SqlFile) -> SqlError:
        """A failed CREATE INDEX CONCURRENTLY leaves its index behind, INVALID: named, from the catalog."""
        from commands.pg.invalid_indexes import invalid_indexes  # only a failed no-transaction file looks
        try:
            found = invalid_indexes(self.conn, sqlfile)
        except psycopg.Error:
            return error  # the error is what matters; the catalog could not say more
        return replace(error, invalid_indexes=found) if found else error

    def _abandon_transaction(self) -> None:
        """A file that opened its own transaction and failed leaves it aborted: end it."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            self.conn.execute("ROLLBACK")

    def dry_run(self, files: list[tuple[str, SqlFile | None]]) -> list[tuple[str, str, str | None, SqlError | None, float]]:
        """Run ``files`` in order in one transaction, then roll it all back.

        Returns ``(key, status, note, error, ms)`` per file; status is ok, partial (what ran
        passed, but some statements could not run), failed, skipped (none could run) or
        not_run. Statements that cannot run in a transaction are skipped (noted); a
        file's own BEGIN/COMMIT are left out so its statements run inside the dry run.
        Stops at the first failure: later files depend on it.
        """
        report: list[tuple[str, str, str | None, SqlError | None, float]] = []
        failed = False
        self._set_timeouts()
        try:
            with self.conn.transaction(force_rollback=True):
                for key, sqlfile in files:
                    if failed:
                        report.append((key, "not_run", "an earlier file failed", None, 0.0))
                        continue
                    started = time.perf_counter()
                    status, note, error = self._dry_run_file(sqlfile)
                    failed = status == "failed"
                    report.append((key, status, note, error, (time.perf_counter() - started) * 1000))
        except psycopg.Error:
            # Only the closing ROLLBACK can land here; each file's error is caught below.
            self._abandon_transaction()
        return report

    def _dry_run_file(self, sqlfile: SqlFile | None) -> tuple[str, str | None, SqlError | None]:
        if sqlfile is None or sqlfile.empty:
            return "ok", "no statements (a no-op step)", None
        runnable = [s for s in sqlfile.statements if not s.transaction_control and not s.no_transaction]
        note = None
        if sqlfile.mode is not Mode.TRANSACTIONAL:
            skipped = [f"{s.no_transaction} (line {s.line})" for s in sqlfile.statements if s.no_transaction]
            note = "; ".join(
                (["its own BEGIN/COMMIT left out"] if sqlfile.mode is Mode.OWN_TRANSACTION else [])
                + ([f"{', '.join(skipped)} cannot run in a transaction: parsed, not run"] if skipped else [])
            ) or None
            if not runnable:
                return "skipped", note, None
        try:
            # A savepoint, so the error does not end the dry run's own transaction.
            with self.conn.transaction():
                self._execute_statements(sqlfile, runnable)
        except _StatementFailed as failed:
            return "failed", note, failed.error
        # Passing what ran says nothing of what could not run: such a file is not "ok".
        return ("partial" if any(s.no_transaction for s in sqlfile.statements) else "ok"), note, None


class _StatementFailed(Exception):
    def __init__(self, error: SqlError) -> None:
        super().__init__(error.message)
        self.error = error
