"""The ``dbops`` command line: the Slack grammar from a shell, with exit codes for scripts.

    dbops migrate status|validate|up|down|goto|force|dry-run … [--env ENV] [--format text|json] [--config PATH]

Exit codes: 0 done or nothing to do, 1 failed, 2 usage, 3 refused or awaiting approval.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import structlog

from bot.logs import configure_logging
from bot.shell_user import shell_actor
from bot.text import render_json, render_text, unmapped_note
from bot.text_shell import fault_text
from commands import grammar
from commands.config import Settings, load_settings
from commands.errors import CommandError, UsageError
from commands.executor import Actor, Executor
from commands.identity import unmapped_account
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, PgRollbackLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.redact import redact
from commands.squawk import SquawkLinter
from commands.results import Outcome, Reason, Refusal

EXIT = {Outcome.DONE: 0, Outcome.NO_CHANGE: 0, Outcome.FAILED: 1, Outcome.REFUSED: 3, Outcome.AWAITING_APPROVAL: 3}
GRAMMAR_VERBS = ("migrate", "snapshot", "rollback", "dbops", "lock")
HELP = """usage: dbops VERB … [--config PATH] [--format text|json]

  dbops serve [--host H] [--port P]     the Slack bot over Socket Mode ($SLACK_APP_TOKEN); /health on P
  dbops serve --http [--host H] [--port P]   the Slack bot over HTTP: POST /slack/events, GET /health
                                        (H defaults to 127.0.0.1; --host 0.0.0.0 listens on every interface)
  dbops console [--user NAME]           a terminal that behaves like a Slack channel (a script on stdin)

  dbops migrate status [ENV]            version, dirty flag, pending migrations, lock holder
  dbops migrate validate [ENV]          parse every migration file; list what golang-migrate skips
  dbops migrate plan [ENV]              lint pending migrations (squawk + dbops' rules); exit 1 on blocking findings
  dbops migrate up [N] [ENV]            apply pending migrations (all, or the next N)
  dbops migrate down N [ENV]            roll back N migrations (or --all)
  dbops migrate goto VERSION [ENV]      migrate up or down to VERSION
  dbops migrate force VERSION [ENV]     set the recorded version, clearing the dirty flag (-1: none)
  dbops migrate dry-run [N] [ENV]       run pending migrations in a transaction and roll it back

  dbops rollback [ENV]                  the rollback options for the current state, ranked
  dbops rollback [ENV] --steps N | --to V | --snapshot NAME --reason "TEXT"
                                        roll back (a request for approval where one is required)
  dbops dbops approvals | approve ID | deny ID --reason "TEXT" | cancel ID | history [ENV]
  dbops lock status [ENV]               the migration lock's holder and deploy.sh's lock directories
  dbops lock release [ENV]              release a stale lock (refused while its holder is alive)

ENV may also be given as --env ENV; it may be left out when one environment is configured.
The configuration comes from --config or $DBOPS_CONFIG; with neither, a built-in demo runs on
an embedded PostgreSQL.
You act as your operating-system account's Slack id from the configuration's [cli] users
(never $USER); an account it does not list is os:NAME, which may read and ask but not approve.
Exit codes: 0 done or nothing to do, 1 failed, 2 usage, 3 refused or awaiting approval."""


def _take_option(args: list[str], name: str) -> str | None:
    """Remove ``--name VALUE`` or ``--name=VALUE`` from ``args``; return VALUE."""
    for i, arg in enumerate(args):
        if arg == name:
            if i + 1 >= len(args):
                raise UsageError(f"{name} needs a value.")
            value = args[i + 1]
            del args[i:i + 2]
            return value
        if arg.startswith(name + "="):
            del args[i]
            return arg.split("=", 1)[1]
    return None


def load(config_path: str | None) -> Settings:
    path = config_path or os.environ.get("DBOPS_CONFIG")
    if path:
        return load_settings(path)
    from bot.demo import demo_settings
    return demo_settings()


def build_executor(settings: Settings) -> Executor:
    """The composition root: the real collaborators, and the audit log when a control
    database is configured (its schema brought up to date first)."""
    audit = approvals = rollbacks = None
    if settings.control_database_url:
        migrate_control_database(settings.control_database_url)
        audit = PgAuditLog(settings.control_database_url)
        approvals = PgApprovals(settings.control_database_url)
        rollbacks = PgRollbackLog(settings.control_database_url)
    return Executor(settings, PgDatabases(application_name="dbops-cli"), PgDumpSnapshotter(), audit=audit,
                    approvals=approvals, rollback_log=rollbacks, linter=SquawkLinter())


def _serve(args: list[str], config_path: str | None) -> int:
    from bot.serve import serve
    host, port = _take_option(args, "--host"), _take_option(args, "--port")
    http = "--http" in args
    unknown = [a for a in args if a != "--http"]
    if unknown:
        raise UsageError(f"dbops serve does not take {unknown[0]!r}. Run `dbops --help` for the list.")
    return serve(load(config_path), http=http, host=host, port=port)


def _console(args: list[str], config_path: str | None) -> int:
    from bot.console import console
    user = _take_option(args, "--user")
    if args:
        raise UsageError(f"dbops console does not take {args[0]!r}. Run `dbops --help` for the list.")
    path = config_path or os.environ.get("DBOPS_CONFIG")
    return console(load_settings(path) if path else None, user=user)


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    if not args or args[0] in ("-h", "--help", "help"):
        print(HELP)
        return 0 if args else 2
    try:
        config_path = _take_option(args, "--config")
        output = _take_option(args, "--format") or "text"
        if output not in ("text", "json"):
            raise UsageError(f"--format must be text or json, not {output!r}.")
        if args[0] == "serve":
            return _serve(args[1:], config_path)
        if args[0] == "console":
            return _console(args[1:], config_path)
        if args[0] not in GRAMMAR_VERBS:
            raise UsageError(f"Unknown command {args[0]!r}. Run `dbops --help` for the list.")
        if any(a in ("-h", "--help") for a in args[1:]):
            print(HELP)
            return 0
        command = grammar.parse(args)
        settings = load(config_path)
        actor = shell_actor(settings)
        result = build_executor(settings).run(command, actor)
    except CommandError as err:
        print(redact(f"dbops: {fault_text(err)}"), file=sys.stderr)
        return err.exit_code
    except Exception:  # a bug: say so plainly, keep the traceback in the (redacted) log
        structlog.get_logger("dbops.cli").exception("internal_error")
        print("dbops: internal error; the log line above has the details.", file=sys.stderr)
        return 1
    print(redact(render_json(result) if output == "json" else render_text(result)))
    unmapped = unmapped_account(actor.user)
    if unmapped and output == "text" and isinstance(result, Refusal) and result.reason is Reason.NOT_OPERATOR:
        print(unmapped_note(unmapped))  # who dbops took them for, and how to become who they are
    return EXIT[result.outcome]


if __name__ == "__main__":
    sys.exit(main())
