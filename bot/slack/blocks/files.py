"""Slack wording for the integrity of applied files: the flags ``status`` and ``plan`` show, the
refusal of an ``up`` on top of an edited applied file, and the files ``/dbops history`` lists."""

from __future__ import annotations

from bot.slack.blocks.kit import Card, code, count, duration_text, esc, shorten, user_ref, when
from commands.results import AppliedFile, FileCheck, FileFlag

FLAGS_SHOWN = 12
SHA_CHARS = 12  # enough to tell two checksums apart by eye


def sha(value: str | None) -> str:
    return code(value[:SHA_CHARS]) if value else "?"


def _applied_by(recorded: AppliedFile | None) -> str:
    if recorded is None:
        return ""
    return f"applied by {user_ref(recorded.actor)} {when(recorded.at)}"


def flag_row(f: FileFlag) -> str:
    name = code(f.filename)
    if f.problem == "edited":
        return (f":warning: *edited after it was applied:* {name}: checksum {sha(f.sha256)} now, "
                f"{sha(f.recorded.sha256 if f.recorded else None)} when {_applied_by(f.recorded)}. The database "
                "ran the old text. Restore the file as it was applied, and put the change in a new migration.")
    if f.problem == "gone":
        return (f":warning: *applied, and its file has gone:* {name} ({_applied_by(f.recorded)}). "
                "Restore it from version control: a database built from this folder would lack what it did.")
    return (f":warning: *below the current version, never applied:* {name}. golang-migrate's `up` never applies "
            f"a file whose version ({f.version}) is below the database's ({f.current}), and dbops applies what "
            f"golang-migrate would. Renumber it above {f.current} (and above every other file) so `up` runs it.")


def flag_title(check: FileCheck) -> str:
    return (f"*{count(len(check.flags), 'migration file')} "
            f"{'is' if len(check.flags) == 1 else 'are'} not what the database ran:*")


def flag_section(card: Card, check: FileCheck, env: str, *, notes: bool = True) -> None:
    """The flags, each with its fix; then, once (``notes``: status says it, plan need not), why
    some files could not be checked."""
    if check.flags:
        card.lines([flag_row(f) for f in check.flags[:FLAGS_SHOWN]], total=len(check.flags),
                   title=flag_title(check), more=f"use {code(f'dbops migrate status {env} --format json')} for all")
    if not notes:
        return
    if check.unrecorded is not None:
        card.context(f"Applied files not checked: {esc(shorten(check.unrecorded, 300))}.")
    elif check.unchecked:
        card.context(f"{count(check.unchecked, 'applied file')} not recorded (applied before dbops recorded files, "
                     "or by the migrate CLI): not checked for edits.")


def flag_headline(check: FileCheck) -> str:
    """The flags in a few words for a card's headline; "" when there are none."""
    kinds = {"edited": "edited", "gone": "gone", "out_of_order": "out of order"}
    found = [f"{sum(f.problem == k for f in check.flags)} {word}" for k, word in kinds.items()
             if any(f.problem == k for f in check.flags)]
    return f"applied files: {', '.join(found)}" if found else ""


def refusal_section(card: Card, files: tuple[FileFlag, ...], env: str) -> None:
    card.lines([flag_row(f) for f in files[:FLAGS_SHOWN]], total=len(files),
               title=f"*{count(len(files), 'applied file')} changed since {'it was' if len(files) == 1 else 'they were'} "
                     "applied. Nothing was changed.*")
    card.context("What an edited file says now never ran here, and no `up` will run it: `up` only applies files "
                 "above the current version. Or, where rewriting applied files is intended, set "
                 f"`allow_edited_applied_files = true` under {code(f'[environments.{env}]')}.")


def history_row(f: AppliedFile) -> str:
    return (f"{when(f.at)} · {user_ref(f.actor)} · {'applied' if f.direction == 'up' else 'reverted'} "
            f"{code(f.filename)} ({esc(f.operation)}) · sha256 {sha(f.sha256)} · {duration_text(f.duration_ms)}")
