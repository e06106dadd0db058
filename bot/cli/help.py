"""The command line's help: ``dbops --help`` lists every command; ``dbops migrate up --help``
(any command's, ``serve`` and ``console`` included) prints its usage, options and an example.

The usage lines are the grammar's (``commands.usage``) as a shell types them; this module adds
what each command does, what its arguments mean, and one example.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass

from bot.cli.shell import shell
from commands import usage as u


@dataclass(frozen=True)
class Help:
    summary: str
    example: str
    usage: u.Usage
    arguments: tuple[tuple[str, str], ...] = ()  # (argument or option, what it means)
    grammar: bool = True  # takes ENV, --env and --format like every grammar command


ENV = ("ENV", "the environment (or --env ENV); it may be left out when one environment is configured")
N = ("N", "how many migrations")
NAME = ("NAME", "a snapshot's name, as `dbops snapshot list` shows it")
REQUEST = ("REQUEST", "a request's id (r…), as the request and `dbops dbops approvals` show it")
REASON = ("--reason TEXT", "why: recorded with it and shown to the approver")

COMMON = (
    ("--env ENV", "the environment, instead of giving it last"),
    ("--format text|json", "json: one JSON object on stdout for every outcome, errors included"),
    ("--config PATH", "the configuration file (default $DBOPS_CONFIG; with neither, the built-in demo)"),
)

# In the order of the overview, grouped under its headings.
GROUPS: dict[str, dict[str, Help]] = {
    "The bot": {
        "serve": Help(
            "the Slack bot: Socket Mode with $SLACK_APP_TOKEN, or --http for Slack's Events API",
            "dbops serve --http --host 0.0.0.0 --port 3000 --config /etc/dbops/dbops.toml",
            ("serve [--http] [--host H] [--port P] [--config PATH]",),
            (("--http", "take Slack's requests over HTTP at POST /slack/events (needs $SLACK_SIGNING_SECRET)"),
             ("--host H", "the address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)"),
             ("--port P", "the port (default 3000); GET /health and /metrics are served there too"),
             ("--config PATH", "the configuration file (default $DBOPS_CONFIG)")),
            grammar=False),
        "console": Help(
            "a terminal that behaves like a Slack channel: type slash commands, press buttons by number; "
            "reads a script from stdin when stdin is not a terminal",
            "dbops console --user bob",
            ("console [--user NAME] [--config PATH]",),
            (("--user NAME", "who types, in the built-in demo (alice asks, bob approves); `:as NAME` switches"),
             ("--config PATH", "a real configuration: you are your account's Slack id from [cli] users")),
            grammar=False),
    },
    "Migrations": {
        "migrate status": Help("version, dirty flag, pending migrations and the lock holder",
                               "dbops migrate status production", u.MIGRATE["status"], (ENV,)),
        "migrate validate": Help("parse every migration file; list the files golang-migrate skips",
                                 "dbops migrate validate --env staging", u.MIGRATE["validate"], (ENV,)),
        "migrate plan": Help("lint the pending migrations (squawk and dbops' rules); exit 1 when a finding blocks",
                             "dbops migrate plan production --format json", u.MIGRATE["plan"], (ENV,)),
        "migrate drift": Help("the live schema against the schema its recorded version should have (built from "
                              "the files in a scratch database); exit 1 when it differs",
                              "dbops migrate drift production --format json", u.MIGRATE["drift"], (ENV,)),
        "migrate up": Help("apply the pending migrations (all, or the next N) after a verified snapshot",
                           "dbops migrate up 2 production", u.MIGRATE["up"], (N, ENV)),
        "migrate down": Help("roll back N migrations through their down files (or --all) after a verified snapshot",
                             "dbops migrate down 1 production", u.MIGRATE["down"],
                             (N, ("--all", "every applied migration, instead of N"), ENV)),
        "migrate goto": Help("migrate up or down to VERSION", "dbops migrate goto 20260128003 production",
                             u.MIGRATE["goto"], (("VERSION", "the version to end at"), ENV)),
        "migrate force": Help("set the recorded version and clear the dirty flag; runs no SQL",
                              "dbops migrate force 20260128003 production", u.MIGRATE["force"],
                              (("VERSION", "the version to record (-1: none)"), ENV)),
        "migrate baseline": Help("adopt an existing database: record VERSION (clean) only if the live schema is "
                                 "exactly that version, else show the differences; exit 3 when refused",
                                 "dbops migrate baseline 20260128003 production", u.MIGRATE["baseline"],
                                 (("VERSION", "the version the schema is"), ENV)),
        "migrate dry-run": Help("run the pending migrations in a transaction and roll it back (sequence values "
                                "stay advanced)", "dbops migrate dry-run staging", u.MIGRATE["dry-run"], (N, ENV)),
        "migrate unblock": Help("cancel the query of (or end) the session in a migration's way, then (--retry) run "
                                "up again; needs approval as \"unblock\" by default",
                                "dbops migrate unblock 48213 production --terminate --retry", u.MIGRATE["unblock"],
                                (("PID", "the session's process id, as the blocked migration names it"), ENV,
                                 ("--cancel", "cancel its running query (an idle transaction keeps its locks)"),
                                 ("--terminate", "end its session: its open transaction is rolled back"),
                                 ("--retry", "then run `migrate up` again"))),
    },
    "Snapshots": {
        "snapshot list": Help("the environment's newest snapshots, a page of 30, and the disk they use",
                              "dbops snapshot list production", u.SNAPSHOT["list"],
                              (ENV, ("--before NAME", "the next page: those older than NAME (the last one shown)"),
                               ("--all", "every snapshot (what --format json gives): the exact count and size"))),
        "snapshot create": Help("take a verified snapshot now", 'dbops snapshot create production --reason "before '
                                'the schema change"', u.SNAPSHOT["create"], (ENV, REASON)),
        "snapshot verify": Help("check a snapshot's checksum and that it can be read back",
                                "dbops snapshot verify production_20260128_154500_v20260128003_manual production",
                                u.SNAPSHOT["verify"], (NAME, ENV)),
        "snapshot drill": Help("restore a snapshot (the newest by default) into a scratch database, check it, drop "
                               "it, and report how long the restore took; the managed database is only read",
                               "dbops snapshot drill production", u.SNAPSHOT["drill"], (ENV, NAME)),
        "snapshot restore": Help("restore a snapshot, all or nothing, after a safety snapshot",
                                 "dbops snapshot restore production_20260128_154500_v20260128003_manual production",
                                 u.SNAPSHOT["restore"], (NAME, ENV, (
                                     "--preserve", "save the rows written since the snapshot to a bundle first, "
                                                   "put back those that still fit after it"))),
        "snapshot preserved": Help("the bundles of rows restores kept (--preserve), newest first",
                                   "dbops snapshot preserved production", u.SNAPSHOT["preserved"], (ENV,)),
        "snapshot reimport": Help("put a bundle's rows back; rows whose key is there already are skipped",
                                  "dbops snapshot reimport production_20260128_163004_preserved production",
                                  u.SNAPSHOT["reimport"], (("BUNDLE", "a bundle, as `snapshot preserved` lists it"),
                                                           ENV)),
        "snapshot pin": Help("keep a snapshot from cleanup", "dbops snapshot pin "
                             "production_20260128_154500_v20260128003_manual production", u.SNAPSHOT["pin"],
                             (NAME, ENV)),
        "snapshot unpin": Help("let cleanup delete a snapshot once it is past retention", "dbops snapshot unpin "
                               "production_20260128_154500_v20260128003_manual production", u.SNAPSHOT["unpin"],
                               (NAME, ENV)),
        "snapshot cleanup": Help("delete snapshots past retention; the newest keep_last and pinned ones stay",
                                 "dbops snapshot cleanup production --dry-run", u.SNAPSHOT["cleanup"],
                                 (ENV, ("--retention-days N", "instead of the environment's retention_days"),
                                  ("--dry-run", "show what would be deleted; delete nothing"))),
    },
    "Rollback": {
        "rollback": Help("without a target, the ways back from the current state, ranked; with one, the rollback "
                         "(a request for approval where one is required)",
                         'dbops rollback production --steps 1 --reason "the release broke sign-up"', u.ROLLBACK,
                         (ENV, ("--steps N", "undo the last N migrations through their down files"),
                          ("--to VERSION", "go down to VERSION"), ("--snapshot NAME", "restore that snapshot"),
                          ("--preserve", "with --snapshot: keep the rows written since it"),
                          ("--recover", "dirty: remove the failed file's leftovers (no data loss) and force the "
                                        "previous version"),
                          ("--reason TEXT", "why: required with a target, kept in the rollback log"))),
    },
    "Approvals, history, the lock and the doctor": {
        "dbops approvals": Help("the requests waiting for a second person", "dbops dbops approvals",
                                u.DBOPS["approvals"], (ENV,)),
        "dbops approve": Help("approve someone else's request; it runs at once", "dbops dbops approve r1a2b3c4d5e",
                              u.DBOPS["approve"], (REQUEST,)),
        "dbops deny": Help("deny a request", 'dbops dbops deny r1a2b3c4d5e --reason "not during the incident"',
                           u.DBOPS["deny"], (REQUEST, ("--reason TEXT", "why: shown to whoever asked"))),
        "dbops cancel": Help("withdraw your own request", "dbops dbops cancel r1a2b3c4d5e", u.DBOPS["cancel"],
                             (REQUEST,)),
        "dbops history": Help("the audit log: the latest commands from every surface", "dbops dbops history production",
                              u.DBOPS["history"], (ENV,)),
        "lock status": Help("the migration lock's holder and deploy.sh's lock directories",
                            "dbops lock status production", u.DBOPS["lock"][:1], (ENV,)),
        "lock release": Help("release a stale lock (refused while its holder is alive)",
                             "dbops lock release production", u.DBOPS["lock"][1:], (ENV,)),
        "doctor": Help("every precondition checked, each with its fix; changes nothing; exit 1 if a check fails",
                       "dbops doctor production", u.DBOPS["doctor"], (ENV,)),
    },
}
COMMANDS: dict[str, Help] = {topic: h for group in GROUPS.values() for topic, h in group.items()}
LINE_WIDTH = 100
# The grammar's groups, for `dbops migrate --help`.
PREFIXES = ("migrate", "snapshot", "dbops", "lock")

NOTES = """\
ENV may be given last or as --env ENV; it may be left out when one environment is configured.
The configuration comes from --config or $DBOPS_CONFIG; with neither, a built-in demo runs on
an embedded PostgreSQL.
You act as your operating-system account's Slack id from the configuration's [cli] users
(never $USER); an account it does not list is os:NAME, which may read and ask but not approve."""
EXIT_CODES = ("Exit codes: 0 done or nothing to do, 1 failed, 2 usage (the command or the configuration is "
              "wrong),\n3 refused or awaiting approval.")


def _typed(h: Help) -> list[str]:
    """The help's usage lines as a shell types them: ``serve`` and ``console`` are the
    command line's own, the rest the grammar's."""
    return [("dbops " + line) if not h.grammar else shell(line) for line in h.usage]


def _row(left: str, right: str, width: int = 36) -> list[str]:
    """``left`` in a column ``width`` wide (on a line of its own when longer), ``right`` wrapped beside it."""
    wrapped = textwrap.wrap(right, LINE_WIDTH - 2 - width) or [""]
    lines = [f"  {left}"] if len(left) >= width else []
    beside = "" if lines else left
    return lines + [f"  {beside:<{width}}{wrapped[0]}"] + [f"  {'':<{width}}{more}" for more in wrapped[1:]]


def overview() -> str:
    lines = ["usage: dbops COMMAND … [--env ENV] [--format text|json] [--config PATH]",
             "       dbops COMMAND --help · dbops --version"]
    for heading, group in GROUPS.items():
        lines += ["", f"{heading}:"]
        for h in group.values():
            typed = _typed(h)
            lines += _row(typed[0], h.summary) + [f"  {t}" for t in typed[1:]]
    lines += ["", NOTES, EXIT_CODES,
              "Run `dbops COMMAND --help` (for example `dbops migrate up --help`) for a command's options and an "
              "example."]
    return "\n".join(lines)


def command_help(topic: str) -> str:
    h = COMMANDS[topic]
    common = [c for c in COMMON if c[0] != "--env ENV" or ENV in h.arguments] if h.grammar else []
    options = "".join(f" [{name}]" for name, _ in common)
    typed = _typed(h)
    lines = [f"usage: {typed[0]}{options}"] + [f"   or: {t}{options}" for t in typed[1:]]
    lines += ["", h.summary[0].upper() + h.summary[1:] + "."]
    arguments = [*h.arguments, *common]
    if arguments:
        lines += ["", "arguments and options:"]
        lines += [row for name, meaning in arguments for row in _row(name, meaning, 22)]
    return "\n".join(lines + ["", "example:", f"  {h.example}"])


def group_help(prefix: str) -> str:
    topics = [t for t in COMMANDS if t.split()[0] == prefix]
    lines = [f"usage: dbops {prefix} {'|'.join(t.split()[1] for t in topics)} …", ""]
    for topic in topics:
        typed = _typed(COMMANDS[topic])
        lines += _row(typed[0], COMMANDS[topic].summary) + [f"  {t}" for t in typed[1:]]
    return "\n".join(lines + ["", f"Run `dbops {prefix} COMMAND --help` for a command's options and an example."])


def help_text(words: list[str]) -> str:
    """The help for the command named by ``words`` (``["migrate", "up"]``), its group's if it
    names only the group (or a command the group lacks), else the overview."""
    if words[:2] == ["dbops", "lock"]:  # `dbops dbops lock status`, as the grammar spells it
        words = words[1:]
    for length in (2, 1):
        topic = " ".join(words[:length])
        if topic in COMMANDS:
            return command_help(topic)
    return group_help(words[0]) if words and words[0] in PREFIXES else overview()


def help_topic(usage: u.Usage) -> str:
    """The help to point a usage error at: the command its usage lines share (``migrate down``),
    or "" for the overview."""
    typed = [shell(line).removeprefix("dbops ").split() for line in usage]
    words = []
    for column in zip(*typed):  # the words every alternative starts with, up to the first placeholder
        if len(set(column)) > 1 or not column[0].replace("-", "").isalpha() or not column[0].islower():
            break
        words.append(column[0])
    topic = " ".join(words[:2])
    return topic if topic in COMMANDS or topic in PREFIXES else ""
