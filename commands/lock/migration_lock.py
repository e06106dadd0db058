"""The migration lock: PostgreSQL's advisory lock on the environment's database, and deploy scripts' lock directories.

What a change holds while it runs (a migration, a force, a dry run, a restore); a held lock is a Refusal naming who."""

from __future__ import annotations

import time
from contextlib import contextmanager
from typing import Iterator

import structlog

from commands.config import EnvironmentSettings
from commands.context import Context
from commands.lock import lock_dirs
from commands.migrations import EnvironmentDatabase
from commands.results import Reason, Refusal

log = structlog.get_logger("dbops.migrate")  # the name its events had beside the migrations


@contextmanager
def migration_lock(ctx: Context, env: EnvironmentSettings, operation: str) -> Iterator[EnvironmentDatabase | Refusal]:
    """A session on ``env``'s database holding the migration lock, and the configured
    ``lock_dirs`` (deploy.sh's ``mkdir`` locks) taken too, or the Refusal naming who holds
    one. Everything is released on the way out, whatever happened inside. The wait is told
    to ``ctx.observer`` (lock "migration"), had or not."""
    with ctx.databases.open(env) as db:
        ctx.step("lock")
        started = time.monotonic()
        holder = db.lock.acquire(env.lock_wait_seconds)
        if holder is not None:
            ctx.observer.lock_wait(environment=env.name, lock="migration", seconds=time.monotonic() - started,
                                   acquired=False)
            log.info("lock.refused", holder_pid=holder.pid, holder_application=holder.application_name)
            yield Refusal(env=env.name, operation=operation, reason=Reason.LOCK_HELD, holder=holder)
            return
        try:
            taken = lock_dirs.take(env.lock_dirs, now=ctx.clock())
            ctx.observer.lock_wait(environment=env.name, lock="migration", seconds=time.monotonic() - started,
                                   acquired=isinstance(taken, list))
            if not isinstance(taken, list):  # a deploy script holds its own lock: it is migrating
                log.info("lock.refused", lock_dir=taken.path)
                yield Refusal(env=env.name, operation=operation, reason=Reason.LOCK_HELD, lock_dir=taken)
                return
            try:
                yield db
            finally:
                lock_dirs.release(taken)
        finally:
            db.lock.release()
