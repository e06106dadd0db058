"""A database's schema as plain, comparable, JSON-serialisable data.

A ``Schema`` is a set of objects, each a kind ("table", "column", "index", …), a name (as
a person would write it: ``users.email``; a schema other than ``public`` is written before
it: ``audit.events``) and its attributes (strings, booleans or None). Two schemas read
from databases built by the same migrations compare equal; what a migration cannot decide
(ownership, privileges, object ids, column positions, the version table) is never in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# The order kinds are listed and compared in: containers before what they contain.
KINDS = ("schema", "extension", "type", "sequence", "table", "column", "constraint", "index", "view",
         "materialized view", "function", "procedure", "trigger", "policy")

Value = str | bool | None
# What a reading holds and how it is named. A cached expected schema was read by some dbops:
# any change to the reader (an attribute more, a name written otherwise) raises this, so a
# reading from before is never compared with one from after.
READING_FORMAT = 1


@dataclass(frozen=True, kw_only=True)
class SchemaObject:
    kind: str
    name: str
    attributes: tuple[tuple[str, Value], ...] = ()  # sorted by attribute name
    # Which attribute says what the object is, shown when it is added or removed ("text" of
    # a column, the definition of an index); None: the name says enough.
    summary: str | None = None

    def get(self, attribute: str) -> Value:
        return dict(self.attributes).get(attribute)

    @property
    def key(self) -> tuple[int, str]:
        return KINDS.index(self.kind), self.name


def schema_object(kind: str, name: str, summary: str | None = None, **attributes: Value) -> SchemaObject:
    if kind not in KINDS:
        raise ValueError(f"unknown schema object kind {kind!r}")
    return SchemaObject(kind=kind, name=name, attributes=tuple(sorted(attributes.items())), summary=summary)


@dataclass(frozen=True, kw_only=True)
class Schema:
    objects: tuple[SchemaObject, ...] = ()  # sorted by (kind, name); one object per (kind, name)
    server_major: int | None = None         # the PostgreSQL major it was read from
    _index: dict = field(init=False, default=None, compare=False, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        ordered = tuple(sorted(self.objects, key=lambda o: o.key))
        object.__setattr__(self, "objects", ordered)
        object.__setattr__(self, "_index", {(o.kind, o.name): o for o in ordered})

    def get(self, kind: str, name: str) -> SchemaObject | None:
        return self._index.get((kind, name))

    def keys(self) -> set[tuple[str, str]]:
        return set(self._index)

    def to_json(self) -> dict:
        return {"server_major": self.server_major,
                "objects": [{"kind": o.kind, "name": o.name, "summary": o.summary,
                             "attributes": dict(o.attributes)} for o in self.objects]}

    @classmethod
    def from_json(cls, data: dict) -> Schema:
        return cls(server_major=data.get("server_major"),
                   objects=tuple(SchemaObject(kind=o["kind"], name=o["name"], summary=o.get("summary"),
                                              attributes=tuple(sorted(o["attributes"].items())))
                                 for o in data["objects"]))
