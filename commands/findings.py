"""Which lint findings block: severities in order, and the rules ``up`` refuses by itself.

Kept apart from the rules (``commands.lint``, which needs PostgreSQL's parser) so that a
command that only shows or weighs findings never loads the parser.
"""

from __future__ import annotations

from commands.results import Finding

SEVERITIES = ("info", "warning", "error")  # in rising order; "none" as a block level blocks nothing
# ``up`` refuses these itself before anything runs, so they never make it a request.
REFUSED_BY_UP = frozenset({"syntax-error", "unreadable"})


def rank(severity: str) -> int:
    """Position of ``severity`` in SEVERITIES; "none" (block nothing) ranks above them all."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def blocks(finding: Finding, block_severity: str) -> bool:
    return finding.allowed_by is None and rank(finding.severity) >= rank(block_severity)
