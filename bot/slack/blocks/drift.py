"""Block Kit for ``/migrate drift``: the card (each difference worded by ``differences``)."""

from __future__ import annotations

from bot.slack.blocks.differences import difference_line
from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain
from bot.slack.blocks.migrate import ROWS_SHOWN, json_hint
from bot.slack.blocks.wording import number, version_text
from commands.schema.results import DriftResult

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
