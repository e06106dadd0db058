"""Which lint findings block: severities in order, and the rules ``up`` refuses by itself.

Kept apart from the rules (``commands.lint.lint``, which needs PostgreSQL's parser) so that a
command that only shows or weighs findings never loads the parser.
"""

from __future__ import annotations

from collections.abc import Iterable

from commands.lint.results import Finding

SEVERITIES = ("info", "warning", "error")  # in rising order; "none" as a block level blocks nothing
# ``up`` refuses these itself before anything runs, so they never make it a request.
REFUSED_BY_UP = frozenset({"syntax-error", "unreadable"})


def rank(severity: str) -> int:
    """Position of ``severity`` in SEVERITIES; "none" (block nothing) ranks above them all."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def blocks(finding: Finding, block_severity: str) -> bool:
    return finding.allowed_by is None and rank(finding.severity) >= rank(block_severity)


def blocking_first(findings: Iterable[Finding], block_severity: str) -> tuple[list[Finding], list[Finding]]:
    """The findings that block at ``block_severity``, and the rest: each list most severe
    first (accepted ones last), otherwise in the order given. Every surface lists the first
    in full, before anything else, since they are why ``up`` needs approval."""
    ordered = sorted(findings, key=lambda f: (f.allowed_by is not None, -rank(f.severity)))
    return [f for f in ordered if blocks(f, block_severity)], [f for f in ordered if not blocks(f, block_severity)]
