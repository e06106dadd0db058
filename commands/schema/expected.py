"""The expected schema of a version: the migration files up to it, applied to an empty
scratch database, read; cached in the control database by the files' sha256."""

from __future__ import annotations

import hashlib

from commands.context import Context
from commands.config import EnvironmentSettings
from commands.migrate.migrate_ops import read_sql
from commands.schema.model import READING_FORMAT, Schema
from commands.source import MigrationSource

CACHE = "cache"


def files_digest(source: MigrationSource, version: int) -> str:
    """sha256 over every up file up to ``version``, name and bytes, in golang-migrate's order
    (and the reader's format): the same files give the same digest, and any edit, rename,
    addition or removal a new one."""
    digest = hashlib.sha256(f"dbops schema reading {READING_FORMAT}\0".encode())
    for migration in source.migrations:
        if migration.version > version:
            break
        digest.update(f"{migration.version}\0".encode())
        if migration.up is not None:
            digest.update(migration.up.filename.encode() + b"\0")
            digest.update(hashlib.sha256(migration.up.path.read_bytes()).digest())
    return digest.hexdigest()


def expected_schema(ctx: Context, env: EnvironmentSettings, source: MigrationSource,
                    version: int) -> tuple[Schema, str, bool]:
    """(the schema version ``version`` should have, where it was built, whether it came from
    the cache). Without a control database nothing is cached: it is built every time."""
    cache = ctx.databases.schema_cache(ctx.settings.control_database_url) if ctx.settings.control_database_url else None
    key = files_digest(source, version)
    if cache is not None:
        found = cache.get(key)
        if found is not None:
            return found[0], found[1], True
    files = [(m.version, m.label, read_sql(m.up, ctx.parsed) if m.up is not None else None)
             for m in source.migrations if m.version <= version]
    ctx.step("build", str(version))
    schema, built_on = ctx.databases.scratch(env).build(files)
    if cache is not None:
        cache.put(key, version, schema, built_on)
    return schema, built_on, False
