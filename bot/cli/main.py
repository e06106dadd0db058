"""The ``dbops`` command line: the Slack grammar from a shell, with exit codes for scripts.

    dbops migrate|snapshot|rollback|lock|doctor|dbops … [--env ENV] [--format text|json] [--config PATH]
    dbops serve …  ·  dbops console …  ·  dbops [COMMAND] --help  ·  dbops --version

Exit codes. With ``--format json`` every outcome is one JSON object on stdout carrying its
``exit_code`` and, unless it is 0, its ``kind`` (``bot.cli.outcome``):

    exit  meaning                        kind               what
    0     done, or nothing to do         (the Result's)     a Result whose outcome is done or no_change
    1     failed                         failed             a Result whose outcome is failed: a migration,
                                                            a verification, a rollback, or a blocking
                                                            finding of ``migrate plan``
                                         fault              DatabaseError, SourceError, VersionTableError,
                                                            SnapshotFailed: dbops could not do it
                                         internal_error     a bug in dbops (the traceback goes to the log)
    2     usage: the command or the      usage_error        UsageError: the command line is not in the grammar
          configuration is wrong         config_error       ConfigError: a missing or invalid configuration
                                                            file, an unknown environment, a migrations_dir
                                                            that is not there (MigrationsDirMissing),
                                                            approvals asked for with no control database
    3     refused, or awaiting approval  refused            a Refusal (lock held, dirty, a request with no
                                                            control database to keep it …), ApprovalRefused
                                         awaiting_approval  ApprovalNeeded: the request's id is in it

A reader that leaves the pipe early (``dbops snapshot list | head``) makes it exit 141, as a
shell reports it, with nothing on stderr.

Only what a command needs is imported, when it needs it: a status must not pay for Slack,
the scheduler, the linter or the HTTP server (``bench/cli_startup.py`` measures it).
"""

from __future__ import annotations

import gc
import os
import sys
from contextlib import contextmanager
from typing import TYPE_CHECKING, Iterator, Sequence, TextIO

from bot.logs import configure_logging
from commands.errors import CommandError, UsageError

if TYPE_CHECKING:
    from bot.terminal import Names
    from commands.config import Settings
    from commands.executor import Executor
    from commands.kinds import Result

EXIT = {"done": 0, "no_change": 0, "failed": 1, "refused": 3, "awaiting_approval": 3}  # by Outcome value
GRAMMAR_VERBS = ("migrate", "snapshot", "rollback", "dbops", "lock", "doctor")
HELP_FLAGS = ("-h", "--help")


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
        from commands.config import load_settings
        return load_settings(path)
    from bot.console.demo import demo_settings
    return demo_settings()


def build_executor(settings: Settings, *, doctor: bool = False) -> Executor:
    """The composition root: the real collaborators, and the audit log when a control
    database is configured (its schema brought up to date first, or, while it cannot be
    reached, when the audit log is first written). For ``doctor``, a control database that
    cannot be used is one of the things it reports, and SLACK_BOT_TOKEN (if set) is checked
    with Slack."""
    from commands.executor import Executor
    from commands.pg.database import PgDatabases
    from commands.pg.dump import PgDumpSnapshotter
    from commands.pg.privileges import PgProbe
    from commands.pg.squawk import SquawkLinter
    from bot.stores import use_snapshot_stores

    use_snapshot_stores()
    audit = approvals = rollbacks = slack = None
    if settings.control_database_url:
        from commands.pg.approvals import PgApprovals
        from commands.pg.control import PgAuditLog, PgRollbackLog, prepare_control_database
        prepare_control_database(settings.control_database_url)
        # One command per process: a session when one is needed, no pool and its threads.
        audit = PgAuditLog(settings.control_database_url, pooled=False)
        approvals = PgApprovals(settings.control_database_url, pooled=False)
        rollbacks = PgRollbackLog(settings.control_database_url, pooled=False)
    if doctor:
        from bot.slack.doctor import slack_check_from_environ  # Slack's client only for the doctor
        slack = slack_check_from_environ(os.environ)
    return Executor(settings, PgDatabases(application_name="dbops-cli"), PgDumpSnapshotter(), audit=audit,
                    approvals=approvals, rollback_log=rollbacks, linter=SquawkLinter(), probe=PgProbe(), slack=slack)


def _serve(args: list[str], config_path: str | None) -> int:
    from bot.slack.serve import serve
    host, port = _take_option(args, "--host"), _take_option(args, "--port")
    http = "--http" in args
    unknown = [a for a in args if a != "--http"]
    if unknown:
        from bot.cli.help import COMMANDS
        raise UsageError(f"dbops serve does not take {unknown[0]!r}.", usage=COMMANDS["serve"].usage)
    return serve(load(config_path), http=http, host=host, port=port)


def _console(args: list[str], config_path: str | None) -> int:
    from bot.console.session import console
    user = _take_option(args, "--user")
    verbose = "--verbose" in args
    args = [a for a in args if a != "--verbose"]
    if args:
        from bot.cli.help import COMMANDS
        raise UsageError(f"dbops console does not take {args[0]!r}.", usage=COMMANDS["console"].usage)
    path = config_path or os.environ.get("DBOPS_CONFIG")
    if path:
        from commands.config import load_settings
        return console(load_settings(path), user=user, verbose=verbose)
    return console(None, user=user, verbose=verbose)


@contextmanager
def _loading(own_process: bool) -> Iterator[None]:
    """While a command is loaded. Loading makes tens of thousands of objects that live as long
    as the process (classes, functions, modules): the garbage collector would walk them again
    and again and free none (bench/cli_startup.py: about 13 ms of a status). So, in a process
    of its own, none runs meanwhile; what was loaded is then frozen out of its sight, and it
    collects as usual what the command itself makes. A program that calls ``main`` and lives on
    (the tests) keeps its collector as it was: freezing would keep its garbage forever."""
    if not own_process:
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _run(args: list[str], config_path: str | None, output: str, *, own_process: bool = False) -> int:
    """A grammar command: parsed before anything is loaded, so bad input changes nothing."""
    with _loading(own_process):
        from bot.cli.user import shell_actor
        from commands import grammar

        command = grammar.parse(args)
        if output == "json" and isinstance(command, grammar.SnapshotList) and command.before is None:
            # scripts get the whole inventory (exact count, total size, orphans) as before; pages are for reading
            from dataclasses import replace
            command = replace(command, all=True)
        settings = load(config_path)
        actor = shell_actor(settings)
        executor = build_executor(settings, doctor=isinstance(command, grammar.DbopsDoctor))
    progress = _progress(settings, actor.user, " ".join(args))
    return _print_result(executor.run(command, actor, progress), settings, actor.user, output, " ".join(args))


def _progress(settings: Settings, user: str, command: str):
    """Progress lines on stderr when a person watches it (``bot.cli.progress``); else none."""
    from commands.context import ignore_progress
    if not sys.stderr.isatty():
        return ignore_progress
    from bot.cli.progress import ProgressLines
    return ProgressLines(command="/" + command, user=user, stream=sys.stderr, names=_names(settings),
                         ansi=_ansi(sys.stderr))


def _print_result(result: Result, settings: Settings, user: str, output: str, command: str) -> int:
    from bot.cli.shell import result_text
    from bot.cli.outcome import result_json, unmapped_note
    from commands.identity import unmapped_account
    from commands.redact import redact
    from commands.results import Reason, Refusal

    code = EXIT[result.outcome.value]
    account = unmapped_account(user)
    # Who dbops took an unmapped shell user for, and how to become who they are.
    note = unmapped_note(account) if account and isinstance(result, Refusal) and result.reason is Reason.NOT_OPERATOR \
        else None
    ansi = output == "text" and _ansi()
    text = result_text(result, command=command, names=_names(settings), ansi=ansi) + (f"\n{note}" if note else "")
    print(redact(result_json(result, code, message=text) if output == "json" else text))
    return code


def _names(settings: Settings) -> Names:
    """Who the Slack user ids a result mentions are, as far as this shell knows: the accounts
    [cli] users maps to them (``@alice (U0ALICE)``); any other id is shown as it is."""
    from bot.terminal import Names
    return Names(users={slack_id: f"{account} ({slack_id})" for account, slack_id in
                        reversed(list(settings.cli_users.items()))})


def _ansi(stream: TextIO | None = None) -> bool:
    """Styling only for a person at a terminal, and never when NO_COLOR is set (no-color.org)."""
    return (stream or sys.stdout).isatty() and not os.environ.get("NO_COLOR")


def _help(args: list[str]) -> str:
    from bot.cli.help import help_text
    words = [a for a in args if not a.startswith("-")]
    return help_text(words[1:] if words[:1] == ["help"] else words)


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return f"dbops {version('dbops')}"
    except PackageNotFoundError:  # run from a checkout that was never installed
        return "dbops (not installed: no version recorded)"


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    configure_logging()
    output = "text"
    try:
        config_path = _take_option(args, "--config")
        output = _take_option(args, "--format") or "text"
        if output not in ("text", "json"):
            output, shown = "text", output
            raise UsageError(f"--format must be text or json, not {shown!r}.")
        if "--version" in args or args == ["-V"]:
            print(_version())
            return 0
        if args[:1] == ["help"] or any(a in HELP_FLAGS for a in args):
            print(_help(args))
            return 0
        if not args:
            if output == "json":
                raise UsageError("Which command?")
            print(_help(args))
            return 2
        if args[0] == "serve":
            return _serve(args[1:], config_path)
        if args[0] == "console":
            return _console(args[1:], config_path)
        if args[0] not in GRAMMAR_VERBS:
            raise UsageError(f"Unknown command {args[0]!r}.")
        return _run(args, config_path, output, own_process=argv is None)
    except CommandError as err:
        return _fault(err, output, _typed(args))
    except BrokenPipeError:  # the reader went away (`dbops snapshot list | head`): nothing to report
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit's flush is quiet too
        return 141  # as a shell reports a writer that the pipe's reader left
    except Exception as err:  # a bug: say so plainly, keep the traceback in the (redacted) log
        import uuid
        import structlog
        from bot.cli.outcome import internal_error_json, internal_error_text
        from commands.redact import redact
        reference = uuid.uuid4().hex[:12]
        structlog.get_logger("dbops.cli").exception("internal_error", reference=reference)
        if output == "json":
            print(redact(internal_error_json(err, command=_typed(args), reference=reference)))
        else:
            print(redact(internal_error_text(command=_typed(args), reference=reference, ansi=_ansi(sys.stderr))),
                  file=sys.stderr)
        return 1


def _typed(args: list[str]) -> str:
    """The command as the shell user typed it, less --config and --format (that the CLI took out)."""
    return " ".join(["dbops", *args])


def _fault(err: CommandError, output: str, command: str) -> int:
    from bot.cli.outcome import fault_json, fault_text
    from commands.redact import redact
    if output == "json":
        print(redact(fault_json(err, err.exit_code)))
    else:
        print(redact(fault_text(err, command=command, ansi=_ansi(sys.stderr))), file=sys.stderr)
    return err.exit_code


if __name__ == "__main__":
    sys.exit(main())
