"""The Slack card of ``/dbops doctor``: the verdict first, then one row per check, with the fix
under each one that did not pass. The summary's wording is ``bot.text_doctor``'s."""

from __future__ import annotations

from bot.slack.blocks.kit import Card, Message, bold, code, esc, plain
from bot.text_doctor import verdict
from commands.doctor.results import DoctorResult, Verdict

MARK = {Verdict.PASS: ":white_check_mark:", Verdict.WARN: ":warning:", Verdict.FAIL: ":x:",
        Verdict.SKIP: ":heavy_minus_sign:"}


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
