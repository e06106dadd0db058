"""Restore drills in the control database (contract: ``commands.migrations.DrillLog``)."""

from __future__ import annotations

from commands.pg.connect import run_once
from commands.pg.control import ensure_control_schema
from commands.snapshot.results import DrillRecord

_COLUMNS = "environment, snapshot, drilled_at, passed, restore_ms, size, actor, detail"


def _record(row: tuple) -> DrillRecord:
    env, snapshot, drilled_at, passed, restore_ms, size, actor, detail = row
    return DrillRecord(env=env, snapshot=snapshot, drilled_at=drilled_at, passed=passed, restore_ms=restore_ms,
                       size=size, actor=actor, detail=detail)


class PgDrillLog:
    def __init__(self, url: str) -> None:
        self.url = url

    def _rows(self, query: str, params: dict) -> list[tuple]:
        ensure_control_schema(self.url)
        return run_once(self.url, query, params, failure="could not read or write restore drills")

    def record(self, drill: DrillRecord) -> None:
        self._rows(f"INSERT INTO dbops_drills ({_COLUMNS}) VALUES (%(env)s, %(snapshot)s, %(at)s, %(passed)s, "
                   "%(restore_ms)s, %(size)s, %(actor)s, %(detail)s)",
                   {"env": drill.env, "snapshot": drill.snapshot, "at": drill.drilled_at, "passed": drill.passed,
                    "restore_ms": drill.restore_ms, "size": drill.size, "actor": drill.actor, "detail": drill.detail})

    def latest(self, env: str) -> dict[str, DrillRecord]:
        rows = self._rows(f"SELECT DISTINCT ON (snapshot) {_COLUMNS} FROM dbops_drills WHERE environment = %(env)s "
                          "ORDER BY snapshot, drilled_at DESC, id DESC", {"env": env})
        return {row[1]: _record(row) for row in rows}

    def last(self, env: str, *, passed: bool | None = None) -> DrillRecord | None:
        rows = self._rows(f"SELECT {_COLUMNS} FROM dbops_drills WHERE environment = %(env)s "
                          "AND (%(passed)s::boolean IS NULL OR passed = %(passed)s) "
                          "ORDER BY drilled_at DESC, id DESC LIMIT 1", {"env": env, "passed": passed})
        return _record(rows[0]) if rows else None
