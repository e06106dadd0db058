"""Two schemas compared object by object: what the live database has that the expected
schema has not (+), what it lacks (-), what differs (~), and what is broken (!)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from commands.schema.model import KINDS, Schema, SchemaObject, Value


class Change(str, Enum):
    ADDED = "+"     # in the live database only
    REMOVED = "-"   # expected, missing from the live database
    CHANGED = "~"   # in both, an attribute differs
    BROKEN = "!"    # in both and alike, but unusable as it is (an INVALID index, a NOT VALID constraint)


# The attributes whose false value means "broken" rather than "different", per kind.
_SOUNDNESS = {"index": ("valid",), "constraint": ("validated",)}


@dataclass(frozen=True, kw_only=True)
class Difference:
    change: Change
    kind: str
    name: str
    attribute: str | None = None   # CHANGED: which one; BROKEN: the attribute that is false
    expected: Value = None         # CHANGED: the expected value
    live: Value = None             # CHANGED: the live value
    summary: Value = None          # ADDED/REMOVED: what the object is (a column's type, an index's definition)

    @property
    def key(self) -> tuple[int, str, int, str]:
        return KINDS.index(self.kind), self.name, list(Change).index(self.change), self.attribute or ""

    def to_json(self) -> dict:
        return {"change": self.change.value, "kind": self.kind, "name": self.name, "attribute": self.attribute,
                "expected": self.expected, "live": self.live,
                "summary": self.summary}


def _summary(obj: SchemaObject) -> Value:
    return obj.get(obj.summary) if obj.summary else None


def _table_of(obj: SchemaObject) -> str | None:
    """The table an object belongs to, if it belongs to one: it goes and comes with it."""
    if obj.kind == "index":
        return obj.get("table")  # type: ignore[return-value]
    return obj.name.rsplit(".", 1)[0] if obj.kind in ("column", "constraint", "trigger", "policy") else None


def compare(expected: Schema, live: Schema) -> tuple[Difference, ...]:
    """Every difference between ``expected`` and ``live``, in a fixed order (kind, name,
    change, attribute): the same two schemas always give the same list. An object that is
    missing takes what it contains with it: the columns of a missing table are not listed."""
    differences: list[Difference] = []
    gone_tables = {name for kind, name in expected.keys() - live.keys() if kind == "table"}
    new_tables = {name for kind, name in live.keys() - expected.keys() if kind == "table"}
    for kind, name in expected.keys() | live.keys():
        want, have = expected.get(kind, name), live.get(kind, name)
        if have is None:
            if _table_of(want) not in gone_tables:
                differences.append(Difference(change=Change.REMOVED, kind=kind, name=name, summary=_summary(want)))
        elif want is None:
            if _table_of(have) not in new_tables:
                differences.append(Difference(change=Change.ADDED, kind=kind, name=name, summary=_summary(have)))
        else:
            differences.extend(_changed(want, have))
    return tuple(sorted(differences, key=lambda d: d.key))


def _changed(want: SchemaObject, have: SchemaObject) -> list[Difference]:
    found = []
    soundness = _SOUNDNESS.get(want.kind, ())
    for attribute in sorted({a for a, _ in want.attributes} | {a for a, _ in have.attributes}):
        before, after = want.get(attribute), have.get(attribute)
        if before == after:
            continue
        if attribute in soundness and before is True and after is False:
            found.append(Difference(change=Change.BROKEN, kind=want.kind, name=want.name, attribute=attribute))
        else:
            found.append(Difference(change=Change.CHANGED, kind=want.kind, name=want.name, attribute=attribute,
                                    expected=before, live=after))
    return found
