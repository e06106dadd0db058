"""The command grammar shared by Slack, the console and the CLI: text in, Command out.

``parse`` returns a frozen Command or raises UsageError whose message says what was wrong
and whose ``usage`` is the line for that verb; never anything else, whatever the input.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import ClassVar

from commands import usage as usage_lines
from commands.errors import UsageError
from commands.grammar_unblock import MigrateUnblock, unblock_words
from commands.grammar_words import (REQUEST_ID, command_name, count_word, drill_words, env_word, list_words, quoted_word,
                                    reason_word, rollback_words, split_options, tokenize, trailing_env, version_word)
from commands.usage import Usage


@dataclass(frozen=True, kw_only=True)
class MigrateStatus:
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigrateValidate:
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigrateDrift:
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigratePlan:
    """The pending migrations, linted: what ``up`` would run and what is risky in it."""

    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class MigrateUp:
    env: str | None = None
    steps: int | None = None  # None: every pending migration


@dataclass(frozen=True, kw_only=True)
class MigrateDown:
    env: str | None = None
    steps: int | None = None  # None: all the way down (--all)


@dataclass(frozen=True, kw_only=True)
class MigrateGoto:
    env: str | None = None
    version: int


@dataclass(frozen=True, kw_only=True)
class MigrateForce:
    env: str | None = None
    version: int  # -1 clears the version table, as ``migrate force -1`` does


@dataclass(frozen=True, kw_only=True)
class MigrateBaseline:
    """Record ``version`` (clean) only if the live schema is exactly that version's."""

    env: str | None = None
    version: int


@dataclass(frozen=True, kw_only=True)
class MigrateDryRun:
    env: str | None = None
    steps: int | None = None


@dataclass(frozen=True, kw_only=True)
class SnapshotList:
    env: str | None = None
    before: str | None = None  # the page of those older than this snapshot (the card's "More")
    all: bool = False          # every snapshot, read from the whole inventory (for scripts: --format json)


@dataclass(frozen=True, kw_only=True)
class SnapshotCreate:
    env: str | None = None
    reason: str = "manual"


@dataclass(frozen=True, kw_only=True)
class SnapshotVerify:
    env: str | None = None
    name: str


@dataclass(frozen=True, kw_only=True)
class SnapshotDrill:
    env: str | None = None
    name: str | None = None  # None: the newest snapshot


@dataclass(frozen=True, kw_only=True)
class SnapshotRestore:
    env: str | None = None
    name: str
    preserve: bool = False  # export the rows written since the snapshot first, re-import them after


@dataclass(frozen=True, kw_only=True)
class SnapshotPreserved:  # the bundles of rows restores kept (``--preserve``)
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class SnapshotReimport:  # put a bundle's rows back (those whose key is not there yet)
    env: str | None = None
    name: str


@dataclass(frozen=True, kw_only=True)
class SnapshotPin:
    env: str | None = None
    name: str
    pinned: bool = True  # False: unpin


@dataclass(frozen=True, kw_only=True)
class SnapshotCleanup:
    env: str | None = None
    retention_days: int | None = None  # None: the environment's retention_days
    dry_run: bool = False


@dataclass(frozen=True, kw_only=True)
class DbopsHistory:
    env: str | None = None  # None: every environment
    limit: int = 20
    needs_environment: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class Rollback:
    """``/rollback``: with no target, the plan; with one (and a reason), the rollback itself.

    ``steps``: down through the down files (on a dirty database, only 1: force the failed
    version clean, then run its down file — the guide's option A); ``to``: goto a lower
    version; ``snapshot``: restore that snapshot; ``recover``: drop the failed file's leftovers
    (none holds data) and force the previous version.
    """

    env: str | None = None
    steps: int | None = None
    to: int | None = None
    snapshot: str | None = None
    recover: bool = False
    reason: str | None = None
    preserve: bool = False  # with snapshot: keep the rows written since it (SnapshotRestore.preserve)

    @property
    def planning(self) -> bool:
        return self.steps is None and self.to is None and self.snapshot is None and not self.recover


@dataclass(frozen=True, kw_only=True)
class DbopsApprovals:
    env: str | None = None  # None: every environment
    needs_environment: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class DbopsApprove:
    request_id: str
    env: str | None = None  # the request's environment, read from the request
    needs_environment: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class DbopsDeny:
    request_id: str
    reason: str
    env: str | None = None
    needs_environment: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class DbopsCancel:
    request_id: str
    env: str | None = None
    needs_environment: ClassVar[bool] = False


@dataclass(frozen=True, kw_only=True)
class DbopsLockStatus:
    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class DbopsLockRelease:
    """Release a stale migration lock: an idle holder's session, stale lock directories."""

    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class DbopsDoctor:
    """Every precondition of the environment's operations checked, each with its fix (read-only)."""

    env: str | None = None


@dataclass(frozen=True, kw_only=True)
class DbopsHelp:
    env: str | None = None
    needs_environment: ClassVar[bool] = False


Command = (MigrateStatus | MigrateValidate | MigrateUp | MigrateDown | MigrateGoto | MigrateForce | MigrateDryRun
           | SnapshotList | SnapshotCreate | SnapshotVerify | SnapshotDrill | SnapshotRestore | SnapshotPin
           | SnapshotCleanup | DbopsHistory | DbopsHelp | DbopsApprovals | DbopsApprove | DbopsDeny | DbopsCancel
           | Rollback | DbopsLockStatus | DbopsLockRelease | MigratePlan | DbopsDoctor | MigrateDrift | MigrateBaseline | MigrateUnblock
           | SnapshotPreserved | SnapshotReimport)
COMMANDS: tuple[type, ...] = Command.__args__  # every command type, in the order above
# A dry run is here: it runs the pending SQL on the live database, holding its locks until the
# rollback, and what a rollback cannot undo (sequence values) stays changed.
STATE_CHANGING: tuple[type, ...] = (MigrateUp, MigrateDown, MigrateGoto, MigrateForce, MigrateBaseline, MigrateDryRun,
                                    SnapshotRestore, SnapshotCleanup, Rollback, DbopsLockRelease, MigrateUnblock,
                                    SnapshotReimport)
# Commands about dbops itself rather than a database: never shown as a running operation.
ABOUT_DBOPS: tuple[type, ...] = (DbopsHistory, DbopsHelp, DbopsApprovals, DbopsApprove, DbopsDeny, DbopsCancel)


def changes_state(command: Command) -> bool:
    """Whether ``command`` may change a database (a rollback's plan does not; a dry run may)."""
    return isinstance(command, STATE_CHANGING) and not (isinstance(command, Rollback) and command.planning)


def canonical(command: Command, env: str) -> str:
    """The command as one line that parses back to it, e.g. ``migrate down 2 production``."""
    match command:
        case MigrateUp(steps=steps) | MigrateDryRun(steps=steps):
            args = [] if steps is None else [str(steps)]
        case MigrateDown(steps=steps):
            args = ["--all"] if steps is None else [str(steps)]
        case MigrateGoto(version=version) | MigrateForce(version=version) | MigrateBaseline(version=version):
            args = [str(version)]
        case SnapshotRestore(name=name) | SnapshotVerify(name=name) | SnapshotDrill(name=str(name)) | SnapshotReimport(name=name):
            args = [name] + (["--preserve"] if getattr(command, "preserve", False) else [])
        case Rollback(steps=steps, to=to, snapshot=snapshot, recover=recover, reason=reason, preserve=preserve):
            args = ([] if steps is None else ["--steps", str(steps)]) + ([] if to is None else ["--to", str(to)])
            args += ([] if snapshot is None else ["--snapshot", snapshot]) + (["--recover"] if recover else [])
            args += ["--preserve"] if preserve else []
            args += ([] if reason is None else ["--reason", shlex.quote(reason)])
        case SnapshotCleanup(retention_days=days, dry_run=dry_run):
            args = ([] if days is None else ["--retention-days", str(days)]) + (["--dry-run"] if dry_run else [])
        case _:  # a command that words its own arguments (MigrateUnblock), or has none
            args = command.arguments() if hasattr(command, "arguments") else []
    return " ".join([command_name(command), *args, env])


all_usage = usage_lines.all_usage  # the usage lines live in commands.usage, in no surface's syntax


def _parse_migrate(args: list[str]) -> Command:
    if not args:
        raise UsageError("Which migrate command?", usage=usage_lines.MIGRATE_GROUP)
    verb, rest = args[0].lower(), args[1:]
    usage = usage_lines.MIGRATE.get(verb)
    if usage is None:
        raise UsageError(f"Unknown migrate command {quoted_word(args[0])}.", usage=usage_lines.MIGRATE_GROUP)
    if verb == "unblock":
        return unblock_words(rest, usage)
    flags = ("--all",) if verb == "down" else ()
    positional, env, seen, _ = split_options(rest, usage, flags)

    if verb in ("status", "validate", "plan", "drift"):
        positional, env = trailing_env(positional, env, usage, 0)
        return {"status": MigrateStatus, "validate": MigrateValidate, "plan": MigratePlan,
                "drift": MigrateDrift}[verb](env=env)
    if verb in ("up", "dry-run"):
        positional, env = trailing_env(positional, env, usage, 1)
        steps = count_word(positional[0], usage) if positional else None
        return (MigrateUp if verb == "up" else MigrateDryRun)(env=env, steps=steps)
    if verb == "down":
        positional, env = trailing_env(positional, env, usage, 1, required=0 if "--all" in seen else 1)
        if "--all" in seen:
            if positional:
                raise UsageError("Give either N or --all, not both.", usage=usage)
            return MigrateDown(env=env, steps=None)
        if not positional:
            raise UsageError("down needs an explicit number of migrations (or --all), so nothing is undone by accident.",
                             usage=usage)
        return MigrateDown(env=env, steps=count_word(positional[0], usage))
    positional, env = trailing_env(positional, env, usage, 1, required=1)  # goto, force, baseline
    if not positional:
        raise UsageError(f"{verb} needs a version.", usage=usage)
    version = version_word(positional[0], usage, allow_nil=verb == "force")
    return {"goto": MigrateGoto, "force": MigrateForce, "baseline": MigrateBaseline}[verb](env=env, version=version)


def _parse_snapshot(args: list[str]) -> Command:
    if not args:
        raise UsageError("Which snapshot command?", usage=usage_lines.SNAPSHOT_GROUP)
    verb, rest = args[0].lower(), args[1:]
    usage = usage_lines.SNAPSHOT.get(verb)
    if usage is None:
        raise UsageError(f"Unknown snapshot command {quoted_word(args[0])}.", usage=usage_lines.SNAPSHOT_GROUP)
    flags = {"cleanup": ("--dry-run",), "restore": ("--preserve",), "list": ("--all",)}.get(verb, ())
    valued = {"create": ("--reason",), "cleanup": ("--retention-days",), "list": ("--before",)}.get(verb, ())
    positional, env, seen, values = split_options(rest, usage, flags, valued)
    if verb in ("list", "create", "cleanup", "preserved"):
        positional, env = trailing_env(positional, env, usage, 0)
        if verb in ("list", "preserved"):
            return SnapshotList(env=env, **list_words(values, seen, usage)) if verb == "list" else SnapshotPreserved(env=env)
        if verb == "create":
            return SnapshotCreate(env=env, reason=reason_word(values.get("--reason", "manual"), usage))
        days = values.get("--retention-days")
        if days is not None and (not re.fullmatch(r"[0-9]{1,5}", days)):
            raise UsageError(f"--retention-days takes a whole number of days, not {quoted_word(days)}.", usage=usage)
        return SnapshotCleanup(env=env, retention_days=int(days) if days is not None else None,
                               dry_run="--dry-run" in seen)
    if verb == "drill":
        return SnapshotDrill(**drill_words(positional, env, usage))
    if len(positional) == 2:  # NAME ENV: names contain digits and dashes, so ENV is the second one
        if env is not None:
            raise UsageError("The environment is given twice.", usage=usage)
        env = env_word(positional[1], usage)
        positional = positional[:1]
    if len(positional) != 1:
        raise UsageError(f"{verb} needs exactly one snapshot name." if not positional else
                         "Too many arguments.", usage=usage)
    name = positional[0]
    if verb in ("verify", "restore", "reimport"):
        return {"verify": SnapshotVerify, "restore": SnapshotRestore, "reimport": SnapshotReimport}[verb](
            env=env, name=name, **({"preserve": "--preserve" in seen} if verb == "restore" else {}))
    return SnapshotPin(env=env, name=name, pinned=verb == "pin")


def _parse_dbops(args: list[str]) -> Command:
    if not args:
        return DbopsHelp()
    verb, rest = args[0].lower(), args[1:]
    usage = usage_lines.DBOPS.get(verb)
    if usage is None:
        raise UsageError(f"Unknown dbops command {quoted_word(args[0])}.", usage=usage_lines.DBOPS_GROUP)
    if verb in ("approve", "deny", "cancel"):
        positional, env, _, values = split_options(rest, usage, (), ("--reason",) if verb == "deny" else ())
        if len(positional) != 1:
            raise UsageError("Name one request (its id is on the request's card and in `/dbops approvals`).",
                             usage=usage)
        request_id = positional[0].lower()
        if not REQUEST_ID.fullmatch(request_id):
            raise UsageError(f"{quoted_word(positional[0])} is not a request id (they look like r1a2b3c4d5e).",
                             usage=usage)
        if verb == "approve":
            return DbopsApprove(request_id=request_id)
        if verb == "cancel":
            return DbopsCancel(request_id=request_id)
        if "--reason" not in values:
            raise UsageError("A denial needs a reason: --reason \"TEXT\".", usage=usage)
        return DbopsDeny(request_id=request_id, reason=reason_word(values["--reason"], usage))
    if verb == "lock":
        return _parse_lock(rest, usage)
    positional, env, _, _ = split_options(rest, usage, ())
    positional, env = trailing_env(positional, env, usage, 0)
    if verb == "help":
        return DbopsHelp()
    return {"approvals": DbopsApprovals, "doctor": DbopsDoctor}.get(verb, DbopsHistory)(env=env)


def _parse_lock(args: list[str], usage: Usage) -> Command:
    if not args or args[0].lower() not in ("status", "release"):
        raise UsageError("Which lock command: status or release?" if not args else
                         f"Unknown lock command {quoted_word(args[0])}.", usage=usage)
    positional, env, _, _ = split_options(args[1:], usage, ())
    positional, env = trailing_env(positional, env, usage, 0)
    return (DbopsLockStatus if args[0].lower() == "status" else DbopsLockRelease)(env=env)


def _parse_rollback(args: list[str]) -> Command:
    return Rollback(**rollback_words(args, usage_lines.ROLLBACK))


def parse(text: str | list[str]) -> Command:
    """Parse a command line such as ``migrate up 2 production`` (a leading / is allowed)."""
    tokens = tokenize(text) if isinstance(text, str) else list(text)
    if not tokens:
        raise UsageError("Empty command.", usage=usage_lines.MIGRATE_GROUP)
    head = tokens[0].lstrip("/").lower()
    parser = {"migrate": _parse_migrate, "snapshot": _parse_snapshot, "dbops": _parse_dbops,
              "rollback": _parse_rollback}.get(head)
    if parser is not None:
        return parser(tokens[1:])
    if head in ("lock", "doctor"):  # the shell's ``dbops lock status``, ``dbops doctor``
        return _parse_dbops(tokens)
    raise UsageError(f"Unknown command {quoted_word(tokens[0])}.", usage=usage_lines.ANY)
