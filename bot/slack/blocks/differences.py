"""The words of one schema difference, as the issue writes them; shared by drift, status,
the rollback plan and baseline."""

from __future__ import annotations

from bot.slack.blocks.kit import shorten
from commands.schema.compare import Change, Difference

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
