"""Plain-text wording of ``/dbops doctor``: the verdict, then one line per check, and the fix
under each check that failed or warned. The Slack card (``bot.slack.blocks.doctor``) uses the same
verdict. The checks' own details and fixes are the doctor's (``commands.doctor.doctor``): the same
words on every surface, JSON included."""

from __future__ import annotations

from collections import Counter

from commands.doctor.results import DoctorResult, Verdict

LABEL = {Verdict.PASS: "ok  ", Verdict.WARN: "WARN", Verdict.FAIL: "FAIL", Verdict.SKIP: "skip"}


def summary(r: DoctorResult) -> str:
    """"3 failed, 1 warning, 9 passed, 1 skipped" (only the counts that are not 0)."""
    counts = Counter(c.verdict for c in r.checks)
    warnings = "warning" if counts[Verdict.WARN] == 1 else "warnings"
    words = ((Verdict.FAIL, "failed"), (Verdict.WARN, warnings), (Verdict.PASS, "passed"), (Verdict.SKIP, "skipped"))
    return ", ".join(f"{counts[v]} {word}" for v, word in words if counts[v])


def verdict(r: DoctorResult) -> str:
    """The result in a few words: "doctor found problems: 2 failed, …" or "every check passed"."""
    if any(c.verdict is Verdict.FAIL for c in r.checks):
        return f"doctor found problems: {summary(r)}"
    if any(c.verdict is Verdict.WARN for c in r.checks):
        return f"no check failed: {summary(r)}"
    skipped = sum(c.verdict is Verdict.SKIP for c in r.checks)
    return "every check passed" + (f" ({skipped} skipped)" if skipped else "")


def doctor_lines(r: DoctorResult) -> list[str]:
    lines = [f"{r.env}: {verdict(r)}"]
    for check in r.checks:
        lines.append(f"  {LABEL[check.verdict]}  {check.name}: {check.detail}")
        if check.fix and check.verdict in (Verdict.FAIL, Verdict.WARN):
            lines.append(f"        fix: {check.fix}")
    return lines
