"""The words of a command line: tokens, environments, counts, versions, options and reasons, each checked.

What a parser of a verb (``commands.grammar``) reads its arguments with; a word that fails its
check raises UsageError with the usage of the command it was part of."""

from __future__ import annotations

import re
import shlex

from commands.errors import UsageError
from commands.source import MAX_VERSION, NIL_VERSION
from commands.usage import MIGRATE_GROUP, Usage

MAX_STEPS = 1_000_000
MAX_REASON = 500
REQUEST_ID = re.compile(r"r[0-9a-f]{10}")  # an approval request's id
_ENV = re.compile(r"[a-z][a-z0-9_-]{0,39}")  # used with fullmatch: "$" would accept a trailing newline
_QUOTES = str.maketrans({"\u201c": '"', "\u201d": '"', "\u2018": "'", "\u2019": "'"})  # Slack's smart quotes


def command_name(command: object) -> str:
    """``MigrateUp`` -> ``migrate up``: the words a user typed."""
    words, word = [], ""
    for char in type(command).__name__:
        if char.isupper() and word:
            words.append(word)
            word = ""
        word += char.lower()
    words.append(word)
    return " ".join(words).replace("dry run", "dry-run")


def tokenize(text: str) -> list[str]:
    try:
        return shlex.split(text.translate(_QUOTES), comments=False, posix=True)
    except ValueError as err:  # unbalanced quotes
        raise UsageError(f"Could not read the command: {err}.", usage=MIGRATE_GROUP) from None


def env_word(token: str, usage: Usage) -> str:
    if not _ENV.fullmatch(token):
        raise UsageError(f"{quoted_word(token)} is not an environment name.", usage=usage)
    return token


def quoted_word(token: str) -> str:
    """A token quoted for a message: shortened, with control characters made visible."""
    short = token if len(token) <= 40 else token[:37] + "…"
    return repr(short)


def count_word(token: str, usage: Usage) -> int:
    if not re.fullmatch(r"[0-9]+", token):
        raise UsageError(f"{quoted_word(token)} is not a number of migrations.", usage=usage)
    value = int(token) if len(token) <= 20 else MAX_STEPS + 1  # int() refuses 4,300+ digits
    if not 1 <= value <= MAX_STEPS:
        raise UsageError(f"The number of migrations must be between 1 and {MAX_STEPS:,}.", usage=usage)
    return value


def version_word(token: str, usage: Usage, *, allow_nil: bool = False) -> int:
    if allow_nil and token == str(NIL_VERSION):
        return NIL_VERSION
    if not re.fullmatch(r"[0-9]+", token):
        nil = ", or -1" if allow_nil else ""
        raise UsageError(f"{quoted_word(token)} is not a migration version (a whole number{nil}).", usage=usage)
    value = int(token) if len(token) <= 20 else MAX_VERSION + 1  # int() refuses 4,300+ digits
    if value > MAX_VERSION:
        raise UsageError(f"{quoted_word(token)} is larger than any golang-migrate version (unsigned 64-bit).",
                         usage=usage)
    return value


def split_options(args: list[str], usage: Usage, flags: tuple[str, ...],
                   valued: tuple[str, ...] = ()) -> tuple[list[str], str | None, set[str], dict[str, str]]:
    """Take ``--env ENV`` / ``--env=ENV``, the boolean ``flags`` and the ``valued`` options
    (``--reason TEXT``) out of ``args``: returns positional, env, flags seen, option values."""
    positional: list[str] = []
    env: str | None = None
    seen: set[str] = set()
    values: dict[str, str] = {}
    items = iter(args)
    for arg in items:
        option = arg.split("=", 1)[0]
        if option in valued:
            value = arg.split("=", 1)[1] if "=" in arg else next(items, None)
            if value is None:
                raise UsageError(f"{option} needs a value.", usage=usage)
            if option in values:
                raise UsageError(f"{option} is given twice.", usage=usage)
            values[option] = value
        elif arg == "--env" or arg.startswith("--env="):
            value = arg.partition("=")[2] if "=" in arg else next(items, None)
            if not value:
                raise UsageError("--env needs an environment name.", usage=usage)
            if env is not None:
                raise UsageError("The environment is given twice.", usage=usage)
            env = env_word(value, usage)
        elif arg in flags:
            seen.add(arg)
        elif arg.startswith("--"):
            raise UsageError(f"Unknown option {quoted_word(arg)}.", usage=usage)
        else:
            positional.append(arg)
    return positional, env, seen, values


def trailing_env(positional: list[str], env: str | None, usage: Usage, max_before: int,
                  required: int = 0) -> tuple[list[str], str | None]:
    """Positional arguments are ``values… [ENV]``: the ``required`` values come first, and a
    last token that is not a number is the ENV (``goto abc`` is a bad version, not an ENV)."""
    if len(positional) > required and not re.fullmatch(r"-?[0-9]+", positional[-1]):
        if env is not None:
            raise UsageError("The environment is given twice.", usage=usage)
        env = env_word(positional[-1], usage)
        positional = positional[:-1]
    if len(positional) > max_before:
        extra = positional[max_before:]
        shown = " ".join(quoted_word(p) for p in extra[:3]) + (f" and {len(extra) - 3} more" if len(extra) > 3 else "")
        raise UsageError(f"Too many arguments: {shown}.", usage=usage)
    return positional, env


def reason_word(text: str, usage: Usage) -> str:
    reason = " ".join(text.split())
    if not reason:
        raise UsageError("--reason needs some text: why is this being done?", usage=usage)
    if len(reason) > MAX_REASON:
        raise UsageError(f"The reason is {len(reason)} characters; keep it under {MAX_REASON}.", usage=usage)
    if any(ord(c) < 32 or ord(c) == 127 for c in reason):
        raise UsageError("The reason has control characters.", usage=usage)
    return reason


# A snapshot's name has its timestamp (``_YYYYMMDD_HHMMSS``); an environment's name has none.
_SNAPSHOT_STAMP = re.compile(r".*_[0-9]{8}_[0-9]{6}.*")


def drill_words(positional: list[str], env: str | None, usage: Usage) -> dict[str, str | None]:
    """``env`` and ``name`` of ``drill [ENV] [NAME]``: the word with a snapshot's timestamp is the
    NAME, the other the ENV (either order, so the canonical ``drill NAME ENV`` reads back)."""
    if len(positional) > 2:
        raise UsageError("Too many arguments.", usage=usage)
    names = [p for p in positional if _SNAPSHOT_STAMP.fullmatch(p)]
    others = [p for p in positional if not _SNAPSHOT_STAMP.fullmatch(p)]
    if len(names) > 1:
        raise UsageError("Name one snapshot.", usage=usage)
    if len(others) > 1:
        raise UsageError(f"{quoted_word(others[1])} is not a snapshot name (`/snapshot list` shows them).",
                         usage=usage)
    if others:
        if env is not None:
            raise UsageError("The environment is given twice.", usage=usage)
        env = env_word(others[0], usage)
    return {"env": env, "name": names[0] if names else None}


def list_words(values: dict[str, str], seen: set[str], usage: Usage) -> dict:
    """``before`` and ``all`` of ``list [ENV] [--before NAME | --all]``."""
    before = values.get("--before")
    if before is not None and "--all" in seen:
        raise UsageError("Give either --before NAME or --all, not both.", usage=usage)
    if before is not None and not _SNAPSHOT_STAMP.fullmatch(before):
        raise UsageError(f"--before takes a snapshot's name (`/snapshot list` shows them), not {quoted_word(before)}.",
                         usage=usage)
    return {"before": before, "all": "--all" in seen}


def rollback_words(args: list[str], usage: Usage) -> dict:
    """The fields of ``rollback [ENV] [--steps N | --to V | --snapshot NAME [--preserve] | --recover] --reason
    "TEXT"``: one target at most, a reason with it, --preserve only with a snapshot."""
    positional, env, seen, values = split_options(args, usage, ("--recover", "--preserve"),
                                                  ("--steps", "--to", "--snapshot", "--reason"))
    positional, env = trailing_env(positional, env, usage, 0)
    targets = [option for option in ("--steps", "--to", "--snapshot") if option in values]
    targets += ["--recover"] if "--recover" in seen else []
    if len(targets) > 1:
        raise UsageError(f"Give one of --steps, --to, --snapshot and --recover, not {' and '.join(targets)}.",
                         usage=usage)
    reason = reason_word(values["--reason"], usage) if "--reason" in values else None
    if targets and reason is None:
        raise UsageError("A rollback needs a reason, recorded with it: --reason \"TEXT\".", usage=usage)
    if "--preserve" in seen and "--snapshot" not in values:
        raise UsageError("--preserve keeps the rows a restore would lose: it goes with --snapshot NAME.", usage=usage)
    return {"env": env, "steps": count_word(values["--steps"], usage) if "--steps" in values else None,
            "to": version_word(values["--to"], usage, allow_nil=True) if "--to" in values else None,
            "snapshot": values.get("--snapshot"),  # checked against the snapshot directory when it runs
            "recover": "--recover" in seen, "reason": reason, "preserve": "--preserve" in seen}
