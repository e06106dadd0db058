"""Approval requests in the control database (contract: ``commands.migrations.Approvals``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from psycopg.types.json import Jsonb

from commands.pg.connect import run_once

if TYPE_CHECKING:
    from commands.approval.results import ApprovalRequest

COLUMNS = ("id, environment, operation, command, requester, channel, surface, fingerprint, impact, state, created_at, "
           "expires_at, decided_by, decided_at, reason, message_ts, outcome")
DECIDED = ("executing", "void", "denied", "cancelled", "expired")
ANSWERS = ("executing", "denied")  # leaving pending this way counts only before expires_at


def _request(row: dict) -> ApprovalRequest:
    # The approval machinery is loaded when a request is read, not by every command that is
    # given the store (a status from the shell).
    from commands.approval.approvals import decode_impact
    from commands.approval.results import ApprovalRequest
    return ApprovalRequest(id=row["id"], env=row["environment"], operation=row["operation"], command=row["command"],
                           requester=row["requester"], channel=row["channel"], surface=row["surface"],
                           fingerprint=row["fingerprint"], impact=decode_impact(row["impact"]), state=row["state"],
                           created_at=row["created_at"], expires_at=row["expires_at"], decided_by=row["decided_by"],
                           decided_at=row["decided_at"], reason=row["reason"], message_ts=row["message_ts"],
                           outcome=row["outcome"])


class PgApprovals:
    def __init__(self, url: str, *, pooled: bool = True) -> None:
        self.url = url
        self.pooled = pooled  # False: a session of its own each time (a one-shot command line)

    def _rows(self, query: str, params: dict) -> list[dict]:
        return run_once(self.url, query, params, as_dicts=True, pooled=self.pooled,
                        failure="could not read or write approval requests")

    def create(self, request: ApprovalRequest, command_args: dict) -> ApprovalRequest:
        from commands.approval.approvals import encode_impact
        # Both times from this database's clock: every replica then judges expiry by one clock.
        rows = self._rows(
            f"""INSERT INTO dbops_approvals (id, environment, operation, command, command_args, requester, channel,
                                             surface, fingerprint, impact, created_at, expires_at)
                VALUES (%(id)s, %(env)s, %(operation)s, %(command)s, %(args)s, %(requester)s, %(channel)s,
                        %(surface)s, %(fingerprint)s, %(impact)s, now(), now() + %(ttl)s)
                RETURNING {COLUMNS}""",
            {"id": request.id, "env": request.env, "operation": request.operation, "command": request.command,
             "args": Jsonb(command_args), "requester": request.requester, "channel": request.channel,
             "surface": request.surface, "fingerprint": request.fingerprint, "impact": Jsonb(encode_impact(request.impact)),
             "ttl": request.expires_at - request.created_at})
        return _request(rows[0])

    def get(self, request_id: str) -> tuple[ApprovalRequest, dict] | None:
        rows = self._rows(f"SELECT {COLUMNS}, command_args FROM dbops_approvals WHERE id = %(id)s", {"id": request_id})
        return (_request(rows[0]), rows[0]["command_args"]) if rows else None

    def transition(self, request_id: str, *, from_state: str, to_state: str, actor: str | None = None,
                   reason: str | None = None, outcome: str | None = None) -> ApprovalRequest | None:
        # The WHERE on state is the arbiter: of concurrent callers, one updates the row.
        rows = self._rows(
            f"""UPDATE dbops_approvals SET state = %(to)s,
                       decided_by = CASE WHEN %(decides)s THEN %(actor)s ELSE decided_by END,
                       decided_at = CASE WHEN %(decides)s THEN now() ELSE decided_at END,
                       reason = coalesce(%(reason)s, reason), outcome = coalesce(%(outcome)s, outcome),
                       finished_at = CASE WHEN %(decides)s THEN finished_at ELSE now() END
                WHERE id = %(id)s AND state = %(from)s
                  AND (NOT %(answers)s OR expires_at > now()) AND (NOT %(expires)s OR expires_at <= now())
                RETURNING {COLUMNS}""",
            {"to": to_state, "from": from_state, "id": request_id, "actor": actor, "reason": reason,
             "outcome": outcome, "decides": to_state in DECIDED,
             "answers": from_state == "pending" and to_state in ANSWERS,
             "expires": from_state == "pending" and to_state == "expired"})
        return _request(rows[0]) if rows else None

    def attach_message(self, request_id: str, message_ts: str) -> None:
        self._rows("UPDATE dbops_approvals SET message_ts = %(ts)s WHERE id = %(id)s", {"ts": message_ts, "id": request_id})

    def pending(self, environment: str | None) -> list[ApprovalRequest]:
        rows = self._rows(
            f"""SELECT {COLUMNS} FROM dbops_approvals
                WHERE state = 'pending' AND expires_at > now() AND (%(env)s::text IS NULL OR environment = %(env)s)
                ORDER BY created_at""",
            {"env": environment})
        return [_request(r) for r in rows]

    def expire_due(self, environment: str | None) -> list[ApprovalRequest]:
        # One conditional UPDATE: of concurrent sweeps, each row is moved (and returned) once.
        rows = self._rows(
            f"""UPDATE dbops_approvals SET state = 'expired', decided_at = now()
                WHERE state = 'pending' AND expires_at <= now()
                  AND (%(env)s::text IS NULL OR environment = %(env)s)
                RETURNING {COLUMNS}""",
            {"env": environment})
        return sorted((_request(r) for r in rows), key=lambda r: r.created_at)
