"""``Result``: every kind of result a command returns, one union the surfaces dispatch on."""

from __future__ import annotations

from commands.approval.results import ApprovalDecided, ApprovalNeeded, ApprovalRefused, ApprovalsResult
from commands.doctor.results import DoctorResult
from commands.lint.results import PlanResult
from commands.lock.results import LockReleaseResult, LockStatusResult
from commands.migrate.results import DryRunResult, MigrateResult, StatusResult, UnblockResult, ValidateResult
from commands.preserve.results import PreservedListResult, ReimportResult
from commands.results import HelpResult, HistoryResult, Refusal
from commands.rollback.results import RollbackPlan, RollbackResult
from commands.schema.results import BaselineResult, DriftResult
from commands.snapshot.results import (CleanupResult, DrillResult, PinResult, RestoreResult, SnapshotCreated, SnapshotListResult,
                                       SnapshotVerifyResult)


Result = (StatusResult | MigrateResult | Refusal | DryRunResult | ValidateResult | SnapshotListResult | SnapshotCreated
          | SnapshotVerifyResult | RestoreResult | PinResult | CleanupResult | HistoryResult | HelpResult
          | ApprovalNeeded | ApprovalRefused | ApprovalDecided | ApprovalsResult | RollbackPlan | RollbackResult
          | LockStatusResult | LockReleaseResult | PlanResult | DoctorResult | DriftResult | BaselineResult
          | DrillResult | UnblockResult | PreservedListResult | ReimportResult)
