"""The approvals store, counting each decision it records (``dbops_approvals_decided_total``).

Every decision, whoever makes it (a button, the CLI, the sweeper, whoever first notices an
expiry), is one conditional change in the control database that one caller wins: counting
the changes this process won counts each decision once across replicas.
"""

from __future__ import annotations

from typing import Any

from bot.metrics.exporter import Metrics
from commands.approval.results import ApprovalRequest
from commands.migrations import Approvals


class CountedApprovals:
    """``approvals`` as it is; ``transition`` and ``expire_due`` also tell ``metrics``."""

    def __init__(self, approvals: Approvals, metrics: Metrics) -> None:
        self._approvals, self._metrics = approvals, metrics

    def __getattr__(self, name: str) -> Any:
        return getattr(self._approvals, name)

    def transition(self, request_id: str, *, from_state: str, to_state: str, **details: Any) -> ApprovalRequest | None:
        moved = self._approvals.transition(request_id, from_state=from_state, to_state=to_state, **details)
        if moved is not None and from_state == "pending":
            self._metrics.approval_decided(environment=moved.env, to_state=to_state)
        return moved

    def expire_due(self, environment: str | None) -> list[ApprovalRequest]:
        expired = self._approvals.expire_due(environment)
        for request in expired:
            self._metrics.approval_decided(environment=request.env, to_state="expired")
        return expired
