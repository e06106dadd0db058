"""The INVALID indexes a failed ``CREATE INDEX CONCURRENTLY`` left behind.

A concurrent build that fails (a unique index over duplicate rows, a deadlock, a cancel, a lock
timeout) does not remove its index: PostgreSQL leaves it in the catalog marked invalid
(``pg_index.indisvalid`` false). No query uses it, every write to its table still maintains it,
and a retry of the file fails on its name, or, with IF NOT EXISTS, skips it and records the
migration as done with the index still invalid.

Found from the catalog, never from the error's text: the file's concurrent index builds are
read from its parsed statements (the index is always in its table's schema), then looked up by
table and name. A build with no name (PostgreSQL chooses one) matches every invalid index of its
table.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from commands.sessions import InvalidIndex

if TYPE_CHECKING:
    import psycopg

    from commands.sql.sqlfile import SqlFile

_QUERY = """
SELECT n.nspname, i.relname, t.oid::regclass::text
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
JOIN pg_class t ON t.oid = x.indrelid
JOIN pg_namespace n ON n.oid = i.relnamespace
WHERE NOT x.indisvalid
  AND x.indrelid = to_regclass(CASE WHEN %(schema)s::text IS NULL THEN quote_ident(%(table)s::text)
                                    ELSE quote_ident(%(schema)s::text) || '.' || quote_ident(%(table)s::text) END)
  AND (%(name)s::text IS NULL OR i.relname = %(name)s::text)
ORDER BY 1, 2
"""


def concurrent_builds(sqlfile: SqlFile) -> list[dict]:
    """Each ``CREATE INDEX CONCURRENTLY`` of ``sqlfile``: its table (schema, name) and index name."""
    builds = []
    for statement in sqlfile.statements:
        node = statement.node
        if statement.kind != "IndexStmt" or not getattr(node, "concurrent", False) or node.relation is None:
            continue
        builds.append({"schema": node.relation.schemaname, "table": node.relation.relname, "name": node.idxname})
    return builds


def invalid_indexes(conn: psycopg.Connection, sqlfile: SqlFile) -> tuple[InvalidIndex, ...]:
    """The invalid indexes that ``sqlfile``'s concurrent builds left, as the catalog has them now
    (resolved on ``conn``'s search path, as the file's own statements were)."""
    found: dict[tuple[str, str], InvalidIndex] = {}
    for build in concurrent_builds(sqlfile):
        for schema, name, table in conn.execute(_QUERY, build).fetchall():
            found.setdefault((schema, name), InvalidIndex(schema=schema, name=name, table=table))
    return tuple(found.values())
