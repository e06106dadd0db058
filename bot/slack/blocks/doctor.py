"""The card of ``/dbops doctor``: the verdict first, then one line per check (``✅ name: detail``),
with the fix under each one that did not pass. The checks' own details and fixes are the
doctor's (``commands.doctor.doctor``): the same words on every surface, JSON included."""

from __future__ import annotations

from collections import Counter

from bot.slack.blocks.kit import Card, Message, bold, code, esc, plain
from commands.doctor.results import DoctorResult, Verdict

MARK = {Verdict.PASS: ":white_check_mark:", Verdict.WARN: ":warning:", Verdict.FAIL: ":x:",
        Verdict.SKIP: ":heavy_minus_sign:"}


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


def doctor(r: DoctorResult) -> Message:
    title = f"{bold(r.env)}: {esc(verdict(r))}"
    card = Card(plain(title)).section(title)
    rows = []
    for check in r.checks:
        row = f"{MARK[check.verdict]} *{esc(check.name)}*: {esc(check.detail)}"
        if check.fix and check.verdict in (Verdict.FAIL, Verdict.WARN):
            row += f"\n        _Fix:_ {esc(check.fix)}"
        rows.append(row)
    card.lines(rows, max_blocks=12)
    return card.context(f"Run {code(f'/dbops doctor {r.env}')} again after a fix; from a shell, "
                        f"{code(f'dbops doctor {r.env} --format json')} gives the checks as JSON.").message()
