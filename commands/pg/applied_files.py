"""The record of applied and reverted migration files, in the control database
(``dbops_applied_files``; the AuditLog contract's file methods, ``commands.migrations.AuditLog``)."""

from __future__ import annotations

import psycopg

from commands.pg.connect import control_connection, control_error, run_once
from commands.results import AppliedFile

_COLUMNS = "environment, version, previous, name, filename, direction, sha256, actor, operation, at, duration_ms"


def _file(row: tuple) -> AppliedFile:
    return AppliedFile(environment=row[0], version=row[1], previous=row[2], name=row[3], filename=row[4],
                       direction=row[5], sha256=row[6], actor=row[7], operation=row[8], at=row[9],
                       duration_ms=row[10])


def record_file(url: str, entry: AppliedFile, *, pooled: bool) -> None:
    try:
        with control_connection(url, pooled=pooled) as conn:
            conn.execute(
                f"INSERT INTO dbops_applied_files ({_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (entry.environment, entry.version, entry.previous, entry.name, entry.filename, entry.direction, entry.sha256,
                 entry.actor, entry.operation, entry.at, entry.duration_ms))
    except psycopg.Error as err:
        raise control_error("could not record the applied file", err) from None


def applied_files(url: str, environment: str, *, pooled: bool) -> dict[int, AppliedFile]:
    rows = run_once(url, f"""SELECT DISTINCT ON (version) {_COLUMNS} FROM dbops_applied_files
                             WHERE environment = %(env)s ORDER BY version, id DESC""",
                    {"env": environment}, pooled=pooled, failure="could not read the applied files")
    return {row[1]: _file(row) for row in rows}


def file_history(url: str, environment: str | None, limit: int, *, pooled: bool) -> list[AppliedFile]:
    rows = run_once(url, f"""SELECT {_COLUMNS} FROM dbops_applied_files
                             WHERE %(env)s::text IS NULL OR environment = %(env)s
                             ORDER BY id DESC LIMIT %(limit)s""",
                    {"env": environment, "limit": limit}, pooled=pooled, failure="could not read the applied files")
    return [_file(row) for row in rows]
