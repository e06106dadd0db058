"""Plain-text wording for ``/migrate plan`` (and the findings on an approval request): the
findings that block ``up`` first, all of them, under a line saying they are why approval is
needed; then each pending migration with its other findings and locks."""

from __future__ import annotations

from bot import text
from commands.lint.findings import blocking_first
from commands.lint.results import Finding, PlanResult


def finding_line(f: Finding, blocking: bool = False) -> str:
    where = f"{f.filename}:{f.line}" if f.line is not None else f.filename
    source = "squawk " if f.source == "squawk" else ""
    if f.allowed_by is not None:
        return f"    allowed  {where} {source}{f.rule}: {f.message} (allowed: {f.allowed_by})"
    line = f"    {f.severity.upper() if blocking else f.severity:<8} {where} {source}{f.rule}: {f.message}"
    return line + (f" (not a risk now: {f.live_judgement})" if f.live_judgement is not None else "")


def why_approval(stopping: list[Finding], verb: str) -> list[str]:
    """The blocking findings, all of them, under the line that says they are why."""
    if not stopping:
        return []
    head = (f"  This finding is why {verb}:" if len(stopping) == 1 else
            f"  These {len(stopping)} findings are why {verb}:")
    return [head] + [finding_line(f, blocking=True) for f in stopping]


def plan_lines(r: PlanResult) -> list[str]:
    if not r.files:
        return [f"{r.env}: nothing is pending (database at {text.version_text(r.state)})."]
    total = sum(len(f.findings) for f in r.files)
    verdict = (f"{r.blocking} blocking (at or above {r.block_severity}): `migrate up` will need approval."
               if r.blocking else "nothing blocks `migrate up`.")
    lines = [f"{r.env}: {len(r.files)} pending migration(s) from {text.at_version(r.state.version)}, {total} finding(s); "
             f"{verdict}"]
    lines += why_approval([x for f in r.files for x in blocking_first(f.findings, r.block_severity)[0]],
                          "`migrate up` will need approval")
    for f in r.files:
        mode = "" if f.mode == "transactional" else f" [runs as a whole: {f.mode}]"
        stopping, rest = blocking_first(f.findings, r.block_severity)
        listed = f" ({len(stopping)} blocking, listed above)" if stopping else ""
        lines.append(f"  {f.version} {f.filename or f'{f.version}_{f.name} (no up file)'}{mode}{listed}")
        lines += [finding_line(x) for x in rest]
        lines += [f"    lock     line {lk.line}: {lk.lock} on {lk.table} ({lk.statement})" for lk in f.locks]
    return lines
