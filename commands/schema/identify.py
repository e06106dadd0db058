"""Which version the live schema really is, when the version table cannot say: the database
is dirty, at a version no file has, or has no version recorded at all.

The live schema is compared with the expected schemas (cached) of candidate versions, the
recorded one and its neighbours first, then outwards; at most ``MAX_COMPARED`` are compared,
and the answer says when the search was bounded. For a dirty version N whose file failed,
the answer also says which of the objects that file creates exist, and whether the schema
is exactly version N−1 plus leftovers of that file which can be removed without data loss
(an index, an empty table it created): the recovery that keeps every good migration.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.config import EnvironmentSettings
from commands.context import Context
from commands.errors import CommandError, ScratchFailed
from commands.results import State
from commands.schema.compare import Change, Difference, compare
from commands.schema.expected import expected_schema
from commands.schema.model import Schema
from commands.schema.results import Leftover, SchemaVersion
from commands.source import NIL_VERSION, MigrationSource

if TYPE_CHECKING:
    from commands.migrations import EnvironmentDatabase

# Each comparison past the cache builds a scratch database: a bound keeps a status answering.
MAX_COMPARED = 6


def candidates(state: State, source: MigrationSource) -> list[int]:
    """Versions in the order they are compared: the recorded one (or the nearest file version
    below it, or the newest when nothing is recorded) first, then its neighbours outwards,
    earlier before later at the same distance except right after a failed file, whose
    previous version is the likeliest."""
    versions = [NIL_VERSION] + [m.version for m in source.migrations]
    if state.version == NIL_VERSION:
        anchor = len(versions) - 1
    else:
        below = [i for i, v in enumerate(versions) if v <= state.version]
        anchor = below[-1] if below else 0
    order = sorted(range(len(versions)), key=lambda i: (abs(i - anchor), i > anchor))
    return [versions[i] for i in order]


def identify(ctx: Context, env: EnvironmentSettings, source: MigrationSource, state: State,
             db: EnvironmentDatabase) -> SchemaVersion:
    """Which version the live schema is (see the module's docstring). Reads the live schema
    once and compares it with cached or built expected schemas; changes nothing."""
    live = ctx.databases.scratch(env).live()
    expected: dict[int, Schema | None] = {}

    def schema_of(version: int) -> Schema | None:
        """None: the files up to ``version`` do not apply to an empty database (the failed one
        often fails there too), so that version cannot be what the schema is."""
        if version not in expected:
            try:
                expected[version] = expected_schema(ctx, env, source, version)[0]
            except ScratchFailed:
                expected[version] = None
        return expected[version]

    try:
        if state.dirty and source.get(state.version) is not None:
            return _after_failure(source, state.version, live, schema_of, db)
        return _search(candidates(state, source), live, schema_of)
    except CommandError as err:
        return SchemaVersion(error=err.message)


def _search(order: list[int], live: Schema, schema_of, first: tuple[tuple[int, tuple[Difference, ...]], ...] = ()
            ) -> SchemaVersion:
    compared, bounded = list(first), False
    for version, differences in first:
        if not differences:
            return SchemaVersion(matches=version, compared=tuple(v for v, _ in compared))
    for version in order:
        if any(v == version for v, _ in compared):
            continue
        if len(compared) >= MAX_COMPARED:
            bounded = True
            break
        schema = schema_of(version)
        if schema is None:
            continue
        differences = compare(schema, live)
        compared.append((version, differences))
        if not differences:
            return SchemaVersion(matches=version, compared=tuple(v for v, _ in compared))
    if not compared:
        return SchemaVersion(error="no version's expected schema could be built from the files")
    closest, differences = min(compared, key=lambda c: len(c[1]))
    return SchemaVersion(closest=closest, differences=differences, compared=tuple(v for v, _ in compared),
                         bounded=bounded)


def _after_failure(source: MigrationSource, failed: int, live: Schema, schema_of,
                   db: EnvironmentDatabase) -> SchemaVersion:
    previous = source.previous(failed)
    after, before = schema_of(failed), schema_of(previous)
    if before is None:  # the good versions themselves do not build: nothing to say about the failed one
        return _search(candidates(State(version=failed, dirty=True), source), live, schema_of)
    from_previous = compare(before, live)
    first = ((previous, from_previous),)
    if after is not None:
        made = {(d.kind, d.name) for d in compare(before, after) if d.change is Change.ADDED}
        present = tuple(_named(kind, name, live) for kind, name in made if live.get(kind, name) is not None)
        missing = tuple(f"{kind} {name}" for kind, name in made if live.get(kind, name) is None)
        first = ((failed, compare(after, live)),) + first
    else:
        # Its file fails on an empty database too: what it creates is not known from a build,
        # but the version table says it was the only file run after the previous version.
        made = {(d.kind, d.name) for d in from_previous if d.change is Change.ADDED}
        present, missing = tuple(_named(kind, name, live) for kind, name in made), ()
    leftovers: tuple[Leftover, ...] = ()
    exact = any(not differences for _, differences in first)
    if not exact and all(d.change is Change.ADDED and (d.kind, d.name) in made for d in from_previous):
        # The previous version plus only what the failed file made: no other version is nearer.
        leftovers = _leftovers(from_previous, live, db)
        found = SchemaVersion(closest=previous, differences=from_previous, compared=tuple(v for v, _ in first))
    else:
        found = _search(candidates(State(version=failed, dirty=True), source), live, schema_of, first=first)
    return SchemaVersion(matches=found.matches, closest=found.closest, differences=found.differences,
                         compared=found.compared, bounded=found.bounded, failed=failed, previous=previous,
                         present=tuple(sorted(present)), missing=tuple(sorted(missing)), leftovers=leftovers)


def _named(kind: str, name: str, live: Schema) -> str:
    obj = live.get(kind, name)
    return f"{kind} {name}" + (" (INVALID)" if obj is not None and obj.get("valid") is False else "")


def _leftovers(differences: tuple[Difference, ...], live: Schema, db: EnvironmentDatabase) -> tuple[Leftover, ...]:
    tables = [d.name for d in differences if d.kind == "table"]
    rows = db.inspector.live_objects(tables) if tables else None
    found = []
    for d in differences:
        obj = live.get(d.kind, d.name)
        invalid = d.kind == "index" and obj is not None and obj.get("valid") is False
        if d.kind == "index":
            item = Leftover(kind="index", name=d.name, invalid=invalid, removable=True)
        elif d.kind == "table" and rows is not None and rows.exists(d.name) and not rows.has_rows(d.name):
            item = Leftover(kind="table", name=d.name, removable=True)
        elif d.kind == "table":
            item = Leftover(kind="table", name=d.name, why_not="it holds rows (or they could not be counted)")
        else:
            item = Leftover(kind=d.kind, name=d.name, why_not=f"dbops removes only indexes and empty tables, not a {d.kind}")
        if item.removable:
            item = Leftover(kind=item.kind, name=item.name, invalid=item.invalid, removable=True,
                            statement=db.leftovers.statement(item.kind, *item.schema_and_name))
        found.append(item)
    return tuple(found)


def recovery(ctx: Context, env: EnvironmentSettings, source: MigrationSource, state: State,
             db: EnvironmentDatabase) -> SchemaVersion | None:
    """What the live schema is, for a dirty database at a version a file has; else None."""
    if not state.dirty or source.get(state.version) is None:
        return None
    return identify(ctx, env, source, state, db)
