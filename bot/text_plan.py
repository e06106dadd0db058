"""Plain-text wording for ``/migrate plan`` (and the findings on an approval request)."""

from __future__ import annotations

from bot import text
from commands.findings import blocks, rank
from commands.results import Finding, PlanResult


def finding_line(f: Finding, blocking: bool = False) -> str:
    where = f"{f.filename}:{f.line}" if f.line is not None else f.filename
    source = "squawk " if f.source == "squawk" else ""
    if f.allowed_by is not None:
        return f"    allowed  {where} {source}{f.rule}: {f.message} (allowed: {f.allowed_by})"
    return f"    {f.severity.upper() if blocking else f.severity:<8} {where} {source}{f.rule}: {f.message}"


def plan_lines(r: PlanResult) -> list[str]:
    if not r.files:
        return [f"{r.env}: nothing is pending (database at {text.version_text(r.state)})."]
    total = sum(len(f.findings) for f in r.files)
    verdict = (f"{r.blocking} blocking (at or above {r.block_severity}): `migrate up` will need approval."
               if r.blocking else "nothing blocks `migrate up`.")
    lines = [f"{r.env}: {len(r.files)} pending migration(s) from {text.at_version(r.state.version)}, {total} finding(s); "
             f"{verdict}"]
    for f in r.files:
        mode = "" if f.mode == "transactional" else f" [runs as a whole: {f.mode}]"
        lines.append(f"  {f.version} {f.filename or f'{f.version}_{f.name} (no up file)'}{mode}")
        ordered = sorted(f.findings, key=lambda x: (x.allowed_by is not None, -rank(x.severity)))
        lines += [finding_line(x, blocks(x, r.block_severity)) for x in ordered]
        lines += [f"    lock     line {lk.line}: {lk.lock} on {lk.table} ({lk.statement})" for lk in f.locks]
    return lines
