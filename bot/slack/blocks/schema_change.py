"""The schema change on an approval card (up, down, goto): the first differences between the
expected schemas of the current and the target version on the card, the rest in a reply in
its thread; or, when those schemas could not be built, one line saying why."""

from __future__ import annotations

from bot.slack.blocks.drift import difference_line
from bot.slack.blocks.kit import Card, Message, code, count, esc, plain, shorten
from bot.slack.blocks.wording import at_version, number
from commands.approval.results import ApprovalRequest

ON_CARD = 10      # differences on the card itself; the thread reply has the rest
IN_THREAD = 400   # a thread reply lists this many at most (its blocks run out before)
WHY_CHARS = 300


def _span(r: ApprovalRequest) -> str:
    return f"{at_version(r.impact.before.version)} → {number(r.impact.target)}"


def schema_rows(card: Card, r: ApprovalRequest) -> None:
    i = r.impact
    if i.schema_unavailable is not None:
        card.context(f"Schema change not shown: {esc(shorten(i.schema_unavailable, WHY_CHARS))} "
                     "The request is not affected.")
        return
    if i.schema_change is None:
        return
    if not i.schema_change:
        card.context(f"Schema change, {_span(r)}: none (the files change no object).")
        return
    rest = len(i.schema_change) - ON_CARD
    card.lines([code(difference_line(d)) for d in i.schema_change[:ON_CARD]], max_blocks=2,
               title=f"*Schema change, {_span(r)}: {count(len(i.schema_change), 'difference')}:*")
    if rest > 0:
        card.context(f"…and {rest:,} more, in this card's thread. `+` the target has it, `-` it is gone, `~` changed.")
    else:
        card.context("`+` the target has it, `-` it is gone, `~` changed.")


def schema_thread(r: ApprovalRequest) -> Message | None:
    """The differences the card had no room for, as a reply in its thread; None when it had room."""
    change = r.impact.schema_change or ()
    rest = change[ON_CARD:]
    if not rest:
        return None
    headline = f"Schema change of {r.id}, {_span(r)}: the other {count(len(rest), 'difference')}"
    card = Card(plain(headline)).section(f"*{esc(headline)}*")
    card.lines([code(difference_line(d)) for d in rest[:IN_THREAD]], total=len(rest))
    return card.message()
