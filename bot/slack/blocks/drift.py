"""Block Kit for ``/migrate drift``: the words of each schema difference, and the card."""

from __future__ import annotations

from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain, shorten
from bot.slack.blocks.migrate import ROWS_SHOWN, json_hint, number
from bot.slack.blocks.wording import version_text
from commands.schema.compare import Change, Difference
from commands.schema.results import DriftResult

VALUE_CHARS = 200  # a definition in a difference line; --format json carries it whole
# What a false value of these attributes means, said after "is".
_BROKEN = {"valid": "INVALID", "validated": "NOT VALID"}


def _value(value: object) -> str:
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return shorten(" ".join(str(value).split()), VALUE_CHARS)


def difference_line(d: Difference) -> str:
    """As the issue words them: ``+ column users.email text``, ``- index idx_events_start``,
    ``~ column users.age: integer → text``, ``! index idx_x is INVALID``."""
    if d.change is Change.BROKEN:
        return f"! {d.kind} {d.name} is {_BROKEN.get(d.attribute or '', f'not {d.attribute}')}"
    if d.change is Change.CHANGED:
        what = "" if d.attribute in ("type", "definition") else f" {d.attribute.replace('_', ' ')}"
        return f"~ {d.kind} {d.name}{what}: {_value(d.expected)} → {_value(d.live)}"
    summary = f" {_value(d.summary)}" if d.summary is not None else ""
    return f"{d.change.value} {d.kind} {d.name}{summary}"


_UNMEASURED = {
    "dirty": ("is dirty: drift is measured against a clean, known version. `/migrate status` says which file "
              "failed; once the database is clean (fix it and `/migrate force VERSION`, or `/rollback`), check again."),
    "no_version": ("has no version recorded: there is no expected schema to compare with. If no migration was "
                   "ever applied, `/migrate plan` shows what `/migrate up` would apply. A database built some other "
                   "way needs the version its schema really is recorded first (`/migrate force VERSION`, once you "
                   "have checked which it is)."),
    "unknown_version": ("is at a version no migration file has: there is no expected schema to compare with. "
                        "Deploy the files that version came from (or check `migrations_dir`), then check again."),
}


def drift(r: DriftResult) -> Message:
    if r.unmeasured is not None:
        headline = f"{bold(r.env)}: drift not measured: {version_text(r.state)}"
        return Card(plain(headline)).section(headline).section(
            f"The database {_UNMEASURED[r.unmeasured]}").message()
    where = "the cache" if r.cached else (r.built_on or "a scratch database")
    note = f"Expected schema of version {number(r.state.version)} from {esc(where)}."
    if r.expected_major and r.live_major and r.expected_major != r.live_major:
        note += (f" It was built on PostgreSQL {r.expected_major}, the database runs {r.live_major}: "
                 "definitions PostgreSQL prints differently across versions may show as differences.")
    if not r.drifted:
        headline = f"{bold(r.env)}: no drift: the schema is exactly version {number(r.state.version)}"
        return Card(plain(headline)).section(headline).context(note).message()
    headline = (f"{bold(r.env)}: drift from version {number(r.state.version)}: "
                f"{count(len(r.differences), 'difference')}")
    card = Card(plain(headline)).section(headline)
    rows = [code(difference_line(d)) for d in r.differences[:ROWS_SHOWN]]
    card.lines(rows, total=len(r.differences), more=json_hint("migrate drift", r.env))
    return card.context(note, "`+` only in the database, `-` missing from it, `~` different, `!` broken.").message()
