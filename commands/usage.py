"""Every command's usage, written once and in no surface's syntax.

A usage line is the words after the surface's own prefix: the grammar writes
``migrate up [N] [ENV]``, Slack shows ``/migrate up [N] [ENV]`` and a shell
``dbops migrate up [N] [ENV]``. Each surface words the lines in one place
(``bot.slack.blocks.render.slash``, ``bot.cli.shell.shell``). A ``Usage`` is a tuple of
alternatives: ``migrate down N [ENV]`` or ``migrate down --all [ENV]``.

The domain's messages cite a command the same way a user reads one in Slack's help, as its
slash form in backticks (`` `/snapshot list` ``); a surface that is not Slack rewords each
citation (``bot.cli.shell.shell_words``).
"""

from __future__ import annotations

import re

Usage = tuple[str, ...]
# A command cited in a message: its slash form in backticks; group 1 is the command without the slash.
CITED = re.compile(r"`/((?:migrate|snapshot|rollback|dbops)(?: [^`\n]*)?)`")

MIGRATE: dict[str, Usage] = {
    "status": ("migrate status [ENV]",),
    "validate": ("migrate validate [ENV]",),
    "plan": ("migrate plan [ENV]",),
    "drift": ("migrate drift [ENV]",),
    "up": ("migrate up [N] [ENV]",),
    "down": ("migrate down N [ENV]", "migrate down --all [ENV]"),
    "goto": ("migrate goto VERSION [ENV]",),
    "force": ("migrate force VERSION [ENV]   (VERSION may be -1: no version)",),
    "baseline": ("migrate baseline VERSION [ENV]   (only if the schema is exactly VERSION)",),
    "dry-run": ("migrate dry-run [N] [ENV]",),
    "unblock": ("migrate unblock PID [ENV] --cancel|--terminate [--retry]   (a session in a migration's way)",),
}
MIGRATE_GROUP: Usage = ("migrate status|validate|up|down|goto|force|baseline|dry-run|plan|drift|unblock …",)
SNAPSHOT: dict[str, Usage] = {
    "list": ("snapshot list [ENV] [--before NAME | --all]   (a page of the newest; --before: the next one)",),
    "create": ('snapshot create [ENV] [--reason "TEXT"]  (default reason: manual)',),
    "verify": ("snapshot verify NAME [ENV]",),
    "drill": ("snapshot drill [ENV] [NAME]   (default: the newest snapshot)",),
    "restore": ("snapshot restore NAME [ENV] [--preserve]   (--preserve: keep the rows written since it)",),
    "preserved": ("snapshot preserved [ENV]   (the rows restores kept)",),
    "reimport": ("snapshot reimport BUNDLE [ENV]",),
    "pin": ("snapshot pin NAME [ENV]",),
    "unpin": ("snapshot unpin NAME [ENV]",),
    "cleanup": ("snapshot cleanup [ENV] [--retention-days N] [--dry-run]",),
}
SNAPSHOT_GROUP: Usage = ("snapshot list|create|verify|drill|restore|pin|unpin|cleanup|preserved|reimport …",)
# The reason goes with a target: without one the rollback only shows its options, so asks none.
ROLLBACK: Usage = ('rollback [ENV] [--steps N | --to VERSION | --snapshot NAME [--preserve] | --recover  --reason "TEXT"]',)
DBOPS: dict[str, Usage] = {
    "help": ("dbops help",),
    "history": ("dbops history [ENV]",),
    "approvals": ("dbops approvals [ENV]",),
    "approve": ("dbops approve REQUEST",),
    "deny": ('dbops deny REQUEST --reason "TEXT"',),
    "cancel": ("dbops cancel REQUEST",),
    "lock": ("dbops lock status [ENV]", "dbops lock release [ENV]"),
    "doctor": ("dbops doctor [ENV]",),
}
DBOPS_GROUP: Usage = ("dbops help|history|approvals|approve|deny|cancel|lock|doctor …",)
ANY: Usage = ("migrate …", "snapshot …", "rollback …", "dbops help")


def all_usage() -> tuple[str, ...]:
    """Every command's usage line, one line per alternative, for help."""
    groups = (*MIGRATE.values(), *SNAPSHOT.values(), ROLLBACK, *DBOPS.values())
    return tuple(line for usage in groups for line in usage)
