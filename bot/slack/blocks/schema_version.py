"""Block Kit words for which version the live schema really is (``SchemaVersion``), shared by
the status card, the rollback plan and the dirty alert; and ``/migrate baseline``'s reply."""

from __future__ import annotations

from bot.slack.blocks.differences import difference_line
from bot.slack.blocks.kit import Card, Message, bold, code, count, esc, plain
from bot.slack.blocks.wording import at_version, version_text
from commands.schema.results import BaselineResult, SchemaVersion
from commands.results import Outcome, State

DIFFERENCES_SHOWN = 10


def _differences(differences) -> list[str]:
    rows = [code(difference_line(d)) for d in differences[:DIFFERENCES_SHOWN]]
    if len(differences) > DIFFERENCES_SHOWN:
        rows.append(f"… and {len(differences) - DIFFERENCES_SHOWN:,} more (`/migrate drift` once it is recorded)")
    return rows


def schema_version_text(sv: SchemaVersion, state: State, env: str, *, advice: bool = True) -> str:
    """What the live schema is, in a few lines, and the command that acts on it."""
    if sv.error is not None:
        return f"*Which version the schema really is could not be told:* {esc(sv.error)}"
    lines = []
    if sv.matches is not None:
        lines.append(f"*The live schema is exactly {at_version(sv.matches)}.*")
    elif sv.recoverable:
        lines.append(f"*The live schema is {at_version(sv.previous)} plus what migration {sv.failed} left behind:*")
        lines += [f"• {esc(item.kind)} {code(item.name)}" + (" (INVALID)" if item.invalid else "")
                  for item in sv.leftovers]
    else:
        lines.append(f"*The live schema matches no version exactly.* Closest: {at_version(sv.closest)}, "
                     f"{count(len(sv.differences), 'difference')}:")
        lines += _differences(sv.differences)
    if sv.failed is not None and (sv.present or sv.missing) and sv.matches is None:
        lines.append(f"Of what migration {sv.failed} creates: "
                     f"present: {esc(', '.join(sv.present)) or 'nothing'}; missing: {esc(', '.join(sv.missing)) or 'nothing'}.")
    if sv.bounded:
        lines.append(f"Compared {count(len(sv.compared), 'version')} ("
                     f"{', '.join(at_version(v).removeprefix('version ') for v in sv.compared)}), nearest first; "
                     "the search stopped there.")
    if advice:
        lines.append(_advice(sv, state, env))
    return "\n".join(line for line in lines if line)


def _advice(sv: SchemaVersion, state: State, env: str) -> str:
    if state.dirty and sv.recoverable:
        return (f"{code(f'/rollback {env}')} offers to record {at_version(sv.previous)}"
                + (" after removing those, which loses no data" if sv.leftovers else "")
                + f": every migration before {sv.failed} is kept, no snapshot restored.")
    if sv.matches is not None and sv.matches >= 0 and (state.dirty or sv.matches != state.version):
        return f"Record it with {code(f'/migrate baseline {sv.matches} {env}')}."
    return ""


def baseline(r: BaselineResult) -> Message:
    if r.outcome is Outcome.NO_CHANGE:
        headline = f"{bold(r.env)}: already at {version_text(r.after)}; nothing changed"
        return Card(plain(headline)).section(headline).message()
    if r.outcome is Outcome.REFUSED:
        headline = (f"{bold(r.env)}: not baselined: the live schema is not version {r.version} "
                    f"({count(len(r.differences), 'difference')})")
        card = Card(plain(headline)).section(headline)
        card.lines(_differences(r.differences), title="*The live schema against version "
                   f"{r.version}:*")
        return card.context(f"Nothing was recorded: {version_text(r.before)} as before. "
                            "`+` only in the database, `-` missing from it, `~` different, `!` broken.").message()
    headline = f"{bold(r.env)}: baselined at version {r.version}: the live schema matches it exactly"
    card = Card(plain(headline)).section(headline)
    card.fields([("Before", version_text(r.before)), ("After", version_text(r.after)),
                 ("Safety snapshot", code(r.snapshot) if r.snapshot else "none (off for this environment)")])
    return card.context("No SQL ran: only the version was recorded. The next `/migrate up` applies the files "
                        f"after {r.version}.").message()
