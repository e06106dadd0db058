"""Plain-text wording of why an environment may not act on a snapshot (another environment's,
nobody's, or one whose manifest disagrees with its name); the Slack card
(``bot.slack.blocks.snapshots.not_own``) says the same."""

from __future__ import annotations

from commands.results import Reason, Refusal


def not_own(r: Refusal) -> str:
    """Why ``r.env`` may not act on snapshot ``r.snapshot``, and what would allow it."""
    match r.reason:
        case Reason.OTHER_ENVIRONMENT if r.operation in ("snapshot restore", "snapshot verify"):
            return (f"It is a snapshot of {r.owner}, and {r.env} acts only on its own. To allow restoring snapshots "
                    f"of {r.owner} into {r.env}, add \"{r.owner}\" to restore_from under [environments.{r.env}] in "
                    f"the dbops configuration; each such restore then needs the approval of an approver of {r.env}.")
        case Reason.OTHER_ENVIRONMENT:
            return (f"It is a snapshot of {r.owner}, and {r.env} acts only on its own. Run it for {r.owner} "
                    f"instead: dbops {r.operation} {r.snapshot} {r.owner}")
        case Reason.UNCLAIMED_SNAPSHOT if r.claimants:
            return (f"It is a legacy snapshot whose name answers to {' and '.join(r.claimants)} (by environment or "
                    "database name), so dbops acts on it for none of them. Rename it togather_<environment>_… "
                    "to give it to one.")
        case Reason.UNCLAIMED_SNAPSHOT:
            return ("It is a legacy snapshot whose name answers to no configured environment (by environment or "
                    "database name), so dbops acts on it for none. Rename it togather_<environment>_… to give it "
                    "to one.")
    says = f"names {r.claimants[0]}" if r.claimants else "names no environment (or cannot be read)"
    return (f"Its name says it belongs to {r.owner}, but its manifest {says}: it was renamed, copied or edited by "
            "hand, and dbops acts on such a snapshot for no environment.")
