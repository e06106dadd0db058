"""A database's schema read from its catalogs into a ``commands.schema.model.Schema``.

One read, in one read-only REPEATABLE READ transaction, so the objects all come from the
same moment. Every query works on PostgreSQL 13 to 18 and needs no privilege beyond
connecting: the catalogs and the ``pg_get_*def`` functions are readable by any role.
Left out, because no migration decides them or they are not the application's: system
schemas, what extensions own, ownership, privileges, column positions, and the version
table (``schema_migrations`` or the configured one) with its constraints and indexes.
"""

from __future__ import annotations

import re

import psycopg

from commands.schema.model import Schema, SchemaObject, schema_object

_USER_NAMESPACE = "n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'"


def _not_extension_member(catalog: str, oid: str) -> str:
    return (f"NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = '{catalog}'::regclass "
            f"AND d.objid = {oid} AND d.deptype = 'e')")


def _qualified(schema: str, name: str) -> str:
    """As a person writes it: ``users`` in public, ``audit.events`` elsewhere."""
    return name if schema == "public" else f"{schema}.{name}"


# Each query's first two columns are the object's schema and name; the rest its attributes.
_RELATIONS = f"""
    SELECT c.oid, n.nspname, c.relname, c.relkind::text FROM pg_catalog.pg_class c
    JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE {_USER_NAMESPACE} AND {_not_extension_member('pg_class', 'c.oid')}
      AND NOT (n.nspname = %(vschema)s AND c.relname = %(vtable)s)"""

_QUERIES = {
    "schema": f"""
        SELECT n.nspname FROM pg_catalog.pg_namespace n
        WHERE {_USER_NAMESPACE} AND {_not_extension_member('pg_namespace', 'n.oid')}""",
    "extension": """
        SELECT e.extname, n.nspname FROM pg_catalog.pg_extension e
        JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace""",
    "table": f"""
        SELECT r.nspname, r.relname, r.relkind = 'p', c.relpersistence = 'u', c.relrowsecurity,
               c.relforcerowsecurity, CASE WHEN r.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(r.oid) END,
               pg_catalog.pg_get_expr(c.relpartbound, c.oid),
               (SELECT pn.nspname || '.' || pc.relname FROM pg_catalog.pg_inherits i
                JOIN pg_catalog.pg_class pc ON pc.oid = i.inhparent
                JOIN pg_catalog.pg_namespace pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = r.oid LIMIT 1)
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_class c ON c.oid = r.oid WHERE r.relkind IN ('r', 'p', 'f')""",
    "column": f"""
        SELECT r.nspname, r.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull,
               pg_catalog.pg_get_expr(d.adbin, d.adrelid), NULLIF(a.attidentity, ''), NULLIF(a.attgenerated, '')
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_attribute a ON a.attrelid = r.oid
        LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE r.relkind IN ('r', 'p', 'f') AND a.attnum > 0 AND NOT a.attisdropped""",
    "index": f"""
        SELECT r.nspname, ic.relname, r.relname, pg_catalog.pg_get_indexdef(i.indexrelid), i.indisvalid
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_index i ON i.indrelid = r.oid
        JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid""",
    # contype 'n': PostgreSQL 18 keeps NOT NULL as constraints (17 for domains); a column's or
    # domain's nullability is read as such, the same on every major.
    "constraint": f"""
        SELECT n.nspname, coalesce(tc.relname, t.typname), con.conname, pg_catalog.pg_get_constraintdef(con.oid),
               con.convalidated
        FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
        LEFT JOIN pg_catalog.pg_class tc ON tc.oid = con.conrelid
        LEFT JOIN pg_catalog.pg_type t ON t.oid = con.contypid
        WHERE {_USER_NAMESPACE} AND con.contype <> 'n' AND (tc.oid IS NOT NULL OR t.oid IS NOT NULL)
          AND NOT (n.nspname = %(vschema)s AND tc.relname IS NOT DISTINCT FROM %(vtable)s)
          AND {_not_extension_member('pg_constraint', 'con.oid')}""",
    "sequence": f"""
        SELECT r.nspname, r.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart::text,
               s.seqincrement::text, s.seqmin::text, s.seqmax::text, s.seqcache::text, s.seqcycle
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_sequence s ON s.seqrelid = r.oid""",
    "view": f"""
        SELECT r.nspname, r.relname, r.relkind = 'm', pg_catalog.pg_get_viewdef(r.oid)
        FROM ({_RELATIONS}) r WHERE r.relkind IN ('v', 'm')""",
    # A body is compared by its md5: the definition of a long function is no use in a chat.
    # Functions a type made for itself (a range's constructors; from 14, its multirange's) come
    # with the type: an internal dependency.
    "function": f"""
        SELECT n.nspname, p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid) || ')',
               p.prokind = 'p', l.lanname, pg_catalog.pg_get_function_result(p.oid), p.provolatile::text,
               p.proisstrict, p.prosecdef, array_to_string(p.proconfig, ', '),
               md5(CASE WHEN p.prosrc <> '' OR p.prokind NOT IN ('f', 'p') THEN p.prosrc
                        ELSE pg_catalog.pg_get_functiondef(p.oid) END)
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        JOIN pg_catalog.pg_language l ON l.oid = p.prolang
        WHERE {_USER_NAMESPACE} AND {_not_extension_member('pg_proc', 'p.oid')}
          AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d WHERE d.classid = 'pg_proc'::regclass
                          AND d.objid = p.oid AND d.deptype = 'i')""",
    "trigger": f"""
        SELECT r.nspname, r.relname, t.tgname, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled::text
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_trigger t ON t.tgrelid = r.oid WHERE NOT t.tgisinternal""",
    # Multiranges (14+) come with their range; arrays and a table's row type with their owner.
    "type": f"""
        SELECT n.nspname, t.typname, t.typtype::text,
               (SELECT array_to_string(array_agg(e.enumlabel ORDER BY e.enumsortorder), ', ')
                FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid),
               CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
               CASE WHEN t.typtype = 'd' THEN t.typnotnull END, t.typdefault,
               (SELECT string_agg(a.attname || ' ' || pg_catalog.format_type(a.atttypid, a.atttypmod), ', '
                                  ORDER BY a.attnum)
                FROM pg_catalog.pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped),
               (SELECT pg_catalog.format_type(rg.rngsubtype, NULL) FROM pg_catalog.pg_range rg WHERE rg.rngtypid = t.oid)
        FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
        WHERE {_USER_NAMESPACE} AND {_not_extension_member('pg_type', 't.oid')}
          AND (t.typtype IN ('e', 'd', 'r')
               OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))""",
    "policy": f"""
        SELECT r.nspname, r.relname, p.polname, p.polcmd::text, p.polpermissive,
               (SELECT string_agg(CASE WHEN role = 0 THEN 'public' ELSE pg_catalog.pg_get_userbyid(role) END, ', '
                                  ORDER BY 1) FROM unnest(p.polroles) AS role),
               pg_catalog.pg_get_expr(p.polqual, p.polrelid), pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
        FROM ({_RELATIONS}) r JOIN pg_catalog.pg_policy p ON p.polrelid = r.oid""",
}

_IN_ARGUMENT = re.compile(r"([(]|, )IN ")
_TYPE_KINDS = {"e": "enum", "d": "domain", "r": "range", "c": "composite"}


def _objects(kind: str, row: tuple) -> SchemaObject:
    if kind == "schema":
        return schema_object("schema", row[0])
    if kind == "extension":
        return schema_object("extension", row[0], schema=row[1])
    schema, name, *rest = row
    if kind == "table":
        partitioned, unlogged, rls, force_rls, partition_key, bound, parent = rest
        return schema_object("table", _qualified(schema, name), partitioned=partitioned, unlogged=unlogged,
                             row_security=rls, force_row_security=force_rls, partition_key=partition_key,
                             partition_of=parent if bound is not None else None, partition_bound=bound)
    if kind == "column":
        column, type_, not_null, default, identity, generated = rest
        return schema_object("column", f"{_qualified(schema, name)}.{column}", summary="type", type=type_,
                             not_null=not_null, default=default, identity=identity, generated=generated)
    if kind == "index":
        table, definition, valid = rest
        return schema_object("index", _qualified(schema, name), summary="definition", table=_qualified(schema, table),
                             definition=definition, valid=valid)
    if kind == "constraint":
        constraint, definition, validated = rest
        return schema_object("constraint", f"{_qualified(schema, name)}.{constraint}", summary="definition",
                             definition=definition, validated=validated)
    if kind == "sequence":
        type_, start, increment, minimum, maximum, cache, cycle = rest
        return schema_object("sequence", _qualified(schema, name), type=type_, start=start, increment=increment,
                             minimum=minimum, maximum=maximum, cache=cache, cycle=cycle)
    if kind == "view":
        materialized, definition = rest
        return schema_object("materialized view" if materialized else "view", _qualified(schema, name),
                             definition=definition)
    if kind == "function":
        if rest[0]:  # PostgreSQL 13 writes a procedure's IN arguments "IN who bigint", later ones "who bigint"
            name = _IN_ARGUMENT.sub(r"\1", name)
        procedure, language, result, volatility, strict, definer, settings, body_md5 = rest
        return schema_object("procedure" if procedure else "function", _qualified(schema, name), language=language,
                             returns=None if procedure else result, volatility=volatility, strict=strict,
                             security_definer=definer, settings=settings or None, body_md5=body_md5)
    if kind == "trigger":
        trigger, definition, enabled = rest
        return schema_object("trigger", f"{_qualified(schema, name)}.{trigger}", summary="definition",
                             definition=definition, enabled=enabled)
    if kind == "type":
        typtype, labels, base, not_null, default, attributes, subtype = rest
        return schema_object("type", _qualified(schema, name), summary="type_kind", type_kind=_TYPE_KINDS[typtype],
                             values=labels, base_type=base, not_null=not_null, default=default,
                             attributes=attributes, subtype=subtype)
    policy, command, permissive, roles, using, check = rest
    return schema_object("policy", f"{_qualified(schema, name)}.{policy}", command=command,
                         permissive=permissive, roles=roles, using=using, with_check=check)


def read_schema(conn: psycopg.Connection, *, version_schema: str | None, version_table: str) -> Schema:
    """The schema of the database ``conn`` is connected to, without the version table
    (``version_schema``: None for the connection's current schema, as golang-migrate
    places it). ``conn`` is in autocommit mode and left so."""
    with conn.transaction():
        conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        schema = version_schema or conn.execute("SELECT coalesce(current_schema(), 'public')").fetchone()[0]
        params = {"vschema": schema, "vtable": version_table}
        objects = [_objects(kind, row) for kind, query in _QUERIES.items()
                   for row in conn.execute(query, params).fetchall()]
        major = int(conn.execute("SELECT current_setting('server_version_num')").fetchone()[0]) // 10000
    return Schema(objects=tuple(objects), server_major=major)
