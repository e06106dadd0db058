"""``migrate unblock PID --cancel|--terminate [--retry]``: the way forward when a migration's
lock waits ran out behind another session.

Both are destructive (a cancelled query fails in the application; an ended session loses its
open transaction), so the operation needs approval as "unblock" by default. The session is
named by pid and start time: the signal is sent only if that pid still belongs to the session
that started then (checked in the same statement), so a pid reused by a new connection is never
signalled. PostgreSQL decides who may signal whom (a superuser; the same role; a member of
``pg_signal_backend``, never to a superuser's session): a refusal is its own, by name.

With ``--retry`` the pending migrations run again afterwards: ``migrate up`` as if the
requester typed it then (policy, approval, audit), so an ``up`` that needs a second person here
becomes its own request, never a side effect of the unblock's approval.
"""

from __future__ import annotations

from datetime import datetime

import structlog

from commands import grammar as g
from commands.config import EnvironmentSettings
from commands.privileges import ident
from commands.context import Context
from commands.identity import Actor
from commands.migrate.results import UnblockResult
from commands.results import Missing, Outcome, Reason, Refusal, Shortfall
from commands.sessions import Blocker

log = structlog.get_logger("dbops.unblock")


def _beyond_the_role(env: EnvironmentSettings, session: Blocker, role: str, superuser: bool, signal_backend: bool,
                     command: g.MigrateUnblock) -> Refusal | None:
    """PostgreSQL's rule for signalling, said before trying: a superuser's session only by a
    superuser; another role's only with pg_signal_backend's privileges; and dbops signals only a
    session whose start it can see (another role's is hidden without pg_read_all_stats)."""
    if superuser or (session.own and not session.superuser):
        return None
    verb = "pg_terminate_backend" if command.terminate else "pg_cancel_backend"
    if session.superuser:
        missing = [Missing(what=f"superuser: pid {session.pid} is a superuser's session, which only a superuser may "
                                "signal (dbops asks for no more)", fix=f"SELECT {verb}({session.pid}) as a superuser")]
    else:
        missing = [] if signal_backend else [Missing(
            what=f"pg_signal_backend: pid {session.pid} is a session of role {session.user or '?'}",
            fix=f"GRANT pg_signal_backend TO {ident(role)}")]
        if session.session_start is None:
            missing.append(Missing(what=f"pg_read_all_stats: to see when pid {session.pid}'s session started, so that "
                                        "only that session is ever signalled", fix=f"GRANT pg_read_all_stats TO {ident(role)}"))
    if not missing:
        return None
    return Refusal(env=env.name, operation="migrate unblock", reason=Reason.MISSING_PRIVILEGE,
                   shortfall=Shortfall(role=role, missing=tuple(missing)))


def refusal(ctx: Context, command: g.MigrateUnblock, env: EnvironmentSettings) -> Refusal | None:
    """What the role may not signal, said before anyone is asked to approve it."""
    with ctx.databases.open(env) as db:
        session = db.blockers.session(command.pid)
        return session and _beyond_the_role(env, session, *db.blockers.powers(), command)


def unblock(ctx: Context, command: g.MigrateUnblock, env: EnvironmentSettings) -> UnblockResult | Refusal:
    with ctx.databases.open(env) as db:
        session = db.blockers.session(command.pid)
        refused = session and _beyond_the_role(env, session, *db.blockers.powers(), command)
        if refused:
            return refused
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
    # As if the requester typed it now: an `up` that needs approval here becomes its request.
    retried = ctx.run(g.MigrateUp(env=env.name), Actor(user=ctx.actor.user, channel=ctx.actor.channel,
                                                       surface=ctx.actor.surface))
    return UnblockResult(env=env.name, pid=command.pid, terminate=command.terminate, blocker=session, signalled=True,
                         retry=retried, outcome=retried.outcome)
