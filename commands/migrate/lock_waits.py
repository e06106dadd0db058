"""Lock waits that cannot stall production: short waits, retried with backoff.

Each statement of a migration runs with the environment's short ``lock_timeout``, so a file
that waits behind another session's lock gives up within it instead of holding every query on
the table in the queue behind it. Then (``apply``):

- a transactional file's transaction (with its version update) was rolled back by the failure:
  the database is clean at the previous version, and the file is tried again;
- a file run as a whole (its own BEGIN/COMMIT, or CONCURRENTLY) is tried again only when
  nothing of it ran: a file whose one transaction (BEGIN … COMMIT around everything) was rolled
  back, or a one-statement file whose wait was for a table lock (taken before it does anything;
  a CREATE INDEX CONCURRENTLY that waited later, for old transactions, has already made its
  index). Its dirty mark is then taken back: the database is clean at the previous version;
- between tries it pauses ``lock_retry_seconds``, doubled each time (at most ``MAX_PAUSE``),
  with random jitter, so two waiters never retry in step;
- while it waits the progress names what it waits for and who blocks it (seen from a second
  connection with ``pg_blocking_pids``), refreshed on each try; when the tries are used up the
  result carries the blockers, so the surface can offer to cancel or end them (``unblock``).
"""

from __future__ import annotations

import random
import time

import structlog

from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import LOCK_NOT_AVAILABLE
from commands.migrations import EnvironmentDatabase
from commands.results import Progress, SqlError
from commands.sessions import Blocker, LockWait
from commands.sql.sqlfile import Mode, SqlFile

log = structlog.get_logger("dbops.lock_waits")

MAX_PAUSE = 60.0
_jitter = random.Random()


def pause(attempt: int, first: float) -> float:
    """The pause after try ``attempt`` (1-based): ``first`` doubled each time, capped, and
    spread over its upper half at random ("equal jitter")."""
    full = min(MAX_PAUSE, first * 2 ** (attempt - 1))
    return full / 2 + _jitter.uniform(0, full / 2)


def _one_transaction(sqlfile: SqlFile) -> bool:
    """A file whose statements all sit inside one BEGIN … COMMIT: a failure rolls it all back."""
    control = [i for i, s in enumerate(sqlfile.statements) if s.transaction_control]
    return control == [0, len(sqlfile.statements) - 1] and len(control) == 2


def nothing_ran(sqlfile: SqlFile | None, table_wait: bool) -> bool:
    """Whether a failed lock wait left nothing of the file behind (see the module's docstring)."""
    if sqlfile is None or sqlfile.empty or sqlfile.mode is Mode.TRANSACTIONAL:
        return True
    if sqlfile.mode is Mode.OWN_TRANSACTION:
        return _one_transaction(sqlfile)
    return len(sqlfile.statements) == 1 and table_wait


def apply(ctx: Context, db: EnvironmentDatabase, env: EnvironmentSettings, sqlfile: SqlFile | None, target: int,
          previous: int, label: str) -> tuple[SqlError | None, LockWait | None]:
    """Apply one file as ``db.runner.apply`` does, trying again after lock timeouts.

    Returns the runner's error (None: applied) and the lock waits met (None: none). After the
    last failed try of a lock wait the database is at ``previous``, clean, unless the file had
    begun to change it (then it is dirty at ``target``, as the runner leaves it)."""
    attempts = 0
    seen: tuple[str | None, bool, tuple[Blocker, ...]] = (None, False, ())

    def waiting(what: str, blockers: tuple[Blocker, ...]) -> None:
        ctx.progress(Progress(step="lock-wait", detail=label, lock_wait=LockWait(
            waited_for=what, blockers=blockers, attempts=attempts, retries=env.lock_retries)))

    while True:
        attempts += 1
        tried = time.perf_counter()
        with db.blockers.watch(waiting) as watch:
            error = db.runner.apply(sqlfile, target, progress=ctx.statement_progress(label))
            latest = watch.latest()
        seen = latest or seen
        if error is None or error.sqlstate != LOCK_NOT_AVAILABLE:
            return error, _wait(seen, attempts, env) if attempts > 1 else None
        # The try's whole duration, which lock_timeout bounds: the wait dbops imposed on the table.
        ctx.observer.lock_wait(environment=env.name, lock="statement", seconds=time.perf_counter() - tried,
                               acquired=False)
        table_wait = latest is not None and latest[1]
        clean = nothing_ran(sqlfile, table_wait)
        if clean and sqlfile is not None and sqlfile.mode is not Mode.TRANSACTIONAL and not sqlfile.empty:
            db.store.write(previous, False)  # the runner marked it dirty; nothing of it ran
        log.warning("migration.lock_timeout", file=label, attempt=attempts, waited_for=seen[0],
                    blockers=[b.pid for b in seen[2]], retry=clean and attempts <= env.lock_retries)
        if not clean or attempts > env.lock_retries:
            return error, _wait(seen, attempts, env)
        wait = pause(attempts, env.lock_retry_seconds)
        ctx.observer.lock_retry(environment=env.name, lock="statement")
        ctx.progress(Progress(step="lock-wait", detail=label, lock_wait=_wait(seen, attempts, env, wait)))
        time.sleep(wait)


def _wait(seen: tuple[str | None, bool, tuple[Blocker, ...]], attempts: int, env: EnvironmentSettings,
          next_in: float | None = None) -> LockWait:
    return LockWait(waited_for=seen[0], blockers=seen[2], attempts=attempts, retries=env.lock_retries,
                    next_in_s=next_in)
