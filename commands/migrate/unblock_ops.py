"""``migrate unblock PID --cancel|--terminate [--retry]``: the way forward when a migration's
lock waits ran out behind another session.

Both are destructive (a cancelled query fails in the application; an ended session loses its
open transaction), so the operation needs approval as "unblock" by default. The session is
named by pid and start time: the signal is sent only if that pid still belongs to the session
that started then (checked in the same statement), so a pid reused by a new connection is never
signalled. PostgreSQL decides who may signal whom (a superuser; the same role; a member of
``pg_signal_backend``, never to a superuser's session): a refusal is its own, by name.

With ``--retry`` the pending migrations run again afterwards (``migrate up``), unless ``up``
needs its own approval here: then the result says so, and the up is asked for as usual.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.context import Context
from commands.migrate.results import UnblockResult
from commands.results import Outcome

log = structlog.get_logger("dbops.unblock")


def unblock(ctx: Context, command: g.MigrateUnblock, env: EnvironmentSettings) -> UnblockResult:
    with ctx.databases.open(env) as db:
        session = db.blockers.session(command.pid)
        expected = datetime.fromisoformat(command.session) if command.session else (
            session.session_start if session else None)
        if session is None or expected is None or session.session_start != expected:
            return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session,
                                 signalled=False, gone=True, outcome=Outcome.NO_CHANGE)
        ctx.step("unblock", str(command.pid))
        signalled = db.blockers.signal(command.pid, expected, terminate=command.terminate)
    log.warning("unblock.signalled" if signalled else "unblock.not_signalled", pid=command.pid,
                terminate=command.terminate, application=session.application_name, client=session.client)
    if not signalled:  # it ended (or was replaced) between the look-up and the signal
        return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session,
                             signalled=False, gone=True, outcome=Outcome.NO_CHANGE)
    if not command.retry:
        return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session,
                             signalled=True)
    if "up" in env.require_approval:
        return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session,
                             signalled=True, retry_needs_approval=True)
    from commands.migrate.migrate_ops import migrate
    retried = migrate(ctx, g.MigrateUp(env=env.name), env)
    return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session, signalled=True,
                         retry=retried, outcome=retried.outcome)
