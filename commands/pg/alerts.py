"""Watchers' alerts in the control database (contract: ``commands.migrations.Alerts``)."""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime

from psycopg.types.json import Jsonb

from commands.pg.connect import run_once
from commands.watch.results import Alert, DiskWatchInfo, DriftWatchInfo
from commands.results import LockDirInfo, LockHolder
from commands.sessions import InvalidIndex
from commands.schema.compare import Change, Difference
from commands.snapshot.results import SnapshotInfo

COLUMNS = ("id, environment, subject, version, opened_at, notified_at, reminders, details, channel, message_ts, "
           "resolved_at, resolved_by, resolved_with")


def _encode(value) -> dict | None:
    """A details dataclass as JSON (datetimes as ISO 8601)."""
    if value is None:
        return None
    return json.loads(json.dumps(dataclasses.asdict(value), default=lambda v: v.isoformat()))


def _times(data: dict, *keys: str) -> dict:
    return {**data, **{k: datetime.fromisoformat(data[k]) if data.get(k) else None for k in keys}}


def _snapshots(items: list) -> tuple[SnapshotInfo, ...]:
    return tuple(SnapshotInfo(**_times(s, "created_at")) for s in items)


def _drift(data: dict) -> DriftWatchInfo:
    return DriftWatchInfo(**{**data, "differences": tuple(Difference(**{**d, "change": Change(d["change"])})
                                                          for d in data["differences"])})


def _lock_details(details: dict) -> dict:
    holder, lock_dir, disk = details.get("holder"), details.get("lock_dir"), details.get("disk")
    drift = details.get("drift")
    return {"drift": _drift(drift) if drift else None,
            "holder": LockHolder(**_times(holder, "since", "state_since")) if holder else None,
            "invalid_indexes": tuple(InvalidIndex(**i) for i in details.get("invalid_indexes") or ()),
            "previous_version": details.get("previous_version"),
            "lock_dir": LockDirInfo(**_times(lock_dir, "locked_at")) if lock_dir else None,
            "disk": DiskWatchInfo(**{**disk, "biggest": _snapshots(disk["biggest"]),
                                     "oldest": _snapshots(disk["oldest"])}) if disk else None}


def _alert(row: dict) -> Alert:
    details = row["details"]
    snapshot = details.get("snapshot")
    if snapshot:
        snapshot = SnapshotInfo(**{**snapshot, "created_at": datetime.fromisoformat(snapshot["created_at"])})
    return Alert(id=row["id"], env=row["environment"], subject=row["subject"], version=row["version"],
                 opened_at=row["opened_at"], notified_at=row["notified_at"], reminders=row["reminders"],
                 failed_file=details.get("failed_file"), latest_file_version=details.get("latest_file_version"),
                 snapshot=snapshot or None, channel=row["channel"], message_ts=row["message_ts"],
                 resolved_at=row["resolved_at"], resolved_by=row["resolved_by"],
                 resolved_with=row["resolved_with"], **_lock_details(details))


class PgAlerts:
    def __init__(self, url: str) -> None:
        self.url = url

    def _rows(self, query: str, params: dict) -> list[dict]:
        return run_once(self.url, query, params, as_dicts=True,
                        failure="could not read or write alerts")

    def open_alert(self, env: str, subject: str) -> Alert | None:
        rows = self._rows(f"SELECT {COLUMNS} FROM dbops_alerts WHERE environment = %(env)s AND subject = %(subject)s "
                          "AND resolved_at IS NULL", {"env": env, "subject": subject})
        return _alert(rows[0]) if rows else None

    def raise_alert(self, alert: Alert) -> Alert | None:
        snapshot = dataclasses.asdict(alert.snapshot) if alert.snapshot else None
        if snapshot:
            snapshot["created_at"] = alert.snapshot.created_at.isoformat()
        rows = self._rows(
            f"""INSERT INTO dbops_alerts (environment, subject, version, opened_at, notified_at, details)
                VALUES (%(env)s, %(subject)s, %(version)s, %(at)s, %(at)s, %(details)s)
                ON CONFLICT (environment, subject) WHERE resolved_at IS NULL DO NOTHING
                RETURNING {COLUMNS}""",
            {"env": alert.env, "subject": alert.subject, "version": alert.version, "at": alert.opened_at,
             "details": Jsonb({"failed_file": alert.failed_file, "latest_file_version": alert.latest_file_version,
                               "snapshot": snapshot, "holder": _encode(alert.holder),
                               "lock_dir": _encode(alert.lock_dir), "disk": _encode(alert.disk),
                               "drift": _encode(alert.drift),
                               "invalid_indexes": [dataclasses.asdict(i) for i in alert.invalid_indexes],
                               "previous_version": alert.previous_version})})
        return _alert(rows[0]) if rows else None

    def remind(self, alert_id: int, *, last_notified: datetime, now: datetime) -> Alert | None:
        rows = self._rows(
            f"""UPDATE dbops_alerts SET notified_at = %(now)s, reminders = reminders + 1
                WHERE id = %(id)s AND resolved_at IS NULL AND notified_at = %(last)s RETURNING {COLUMNS}""",
            {"now": now, "id": alert_id, "last": last_notified})
        return _alert(rows[0]) if rows else None

    def resolve(self, alert_id: int, *, now: datetime, resolved_by: str | None,
                resolved_with: str | None) -> Alert | None:
        rows = self._rows(
            f"""UPDATE dbops_alerts SET resolved_at = %(now)s, resolved_by = %(by)s, resolved_with = %(with)s
                WHERE id = %(id)s AND resolved_at IS NULL RETURNING {COLUMNS}""",
            {"now": now, "by": resolved_by, "with": resolved_with, "id": alert_id})
        return _alert(rows[0]) if rows else None

    def attach_message(self, alert_id: int, channel: str, message_ts: str) -> None:
        self._rows("UPDATE dbops_alerts SET channel = %(channel)s, message_ts = %(ts)s WHERE id = %(id)s",
                   {"channel": channel, "ts": message_ts, "id": alert_id})
