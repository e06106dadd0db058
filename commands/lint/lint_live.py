"""Findings whose risk depends on live data, judged against the database as it is at the
start of the run.

Dropping a column loses data only if the table has rows; a NOT NULL column without a
default fails only on a table with rows; an index built without CONCURRENTLY, a constraint
validated at once or a table rewritten by a type change block writers only of a table the
application is using. A bootstrap (an empty database brought to the last version of a
history of hundreds of files) does all of these to tables that earlier files of the same
run create: none of them is a risk there, and flagging them turns every bootstrap into an
approval request nobody can judge. Such a finding is kept, at ``info``, and says why.

The judgement walks the pending files in order, statement by statement, starting from what
``LiveObjects`` says exists now: a table created (or renamed into place) by an earlier
statement of this run does not exist live yet; a dropped one is gone. A renamed table keeps
the situation of its old name. A finding on a statement whose tables are all new, absent or
(for data risks) empty is lowered; a rename is lowered only when its table does not exist
now, because the running application may use an empty table as well as a full one.
Statements inside DO blocks and functions are not parsed, so a table they create is
"absent now", which is what the live database says too.
"""

from __future__ import annotations

import bisect
import dataclasses
from collections.abc import Iterable, Sequence
from typing import Protocol

from pglast import ast
from pglast.enums import ObjectType

from commands.lint.results import Finding
from commands.sql.sqlparse import _name, _table
from commands.sql.sqlfile import SqlFile

# The rules (dbops' and squawk's) whose risk is to live data, or to an application using the
# table now. "data": none on a new, absent or empty table; "name": none on a new or absent one.
DATA, NAME = "data", "name"
LIVE_RISKS: dict[str, str] = {
    "drop-column": DATA, "change-column-type": DATA, "not-null-without-default": DATA,
    "index-without-concurrently-on-large-table": DATA,
    "rename-table": NAME, "rename-column": NAME,
    # squawk's rule names (squawk 2.x's JSON reporter)
    # squawk's drop rules are about clients that still use what is dropped, not the data
    "ban-drop-column": NAME, "ban-drop-table": NAME, "changing-column-type": DATA, "adding-required-field": DATA,
    "adding-not-nullable-field": DATA, "require-concurrent-index-creation": DATA,
    "constraint-missing-not-valid": DATA, "disallowed-unique-constraint": DATA, "adding-foreign-key-constraint": DATA,
    "adding-serial-primary-key-field": DATA, "adding-field-with-default": DATA, "ban-truncate-cascade": DATA,
    "adding-primary-key-constraint": DATA, "renaming-column": NAME, "renaming-table": NAME,
}


class LiveObjects(Protocol):
    """What the managed database holds now, for the tables the pending files touch."""

    def exists(self, table: str) -> bool:
        """Whether ``table`` (a name as SQL writes it, resolved on the search path) is a
        relation now."""

    def has_rows(self, table: str) -> bool:
        """Whether ``table`` holds at least one row now; True when it was not checked (a
        relation that is not a table, or more tables than are checked): unknown is not empty."""


@dataclasses.dataclass(frozen=True)
class _New:
    version: int  # the pending migration that creates it


_ABSENT = "absent"


def subjects(node: ast.Node) -> list[str]:
    """The tables whose data or users a statement's risk is about; [] for what is not judged."""
    match node:
        case ast.AlterTableStmt(objtype=ObjectType.OBJECT_TABLE) | ast.IndexStmt():
            return [_table(node.relation)]
        case ast.RenameStmt(renameType=ObjectType.OBJECT_TABLE | ObjectType.OBJECT_COLUMN):
            return [_table(node.relation)]
        case ast.DropStmt(removeType=ObjectType.OBJECT_TABLE):
            return [_name(*(s.sval for s in o)) for o in node.objects]
        case ast.TruncateStmt():
            return [_table(r) for r in node.relations]
    return []


def touched(files: Iterable[SqlFile | None]) -> list[str]:
    """Every table name the statements of ``files`` judge: what to ask LiveObjects about."""
    return sorted({t for f in files if f is not None for s in f.statements if s.node is not None
                   for t in subjects(s.node)})


def _renamed(node: ast.RenameStmt) -> str:
    schema = node.relation.schemaname
    return _name(node.relation.catalogname, schema, node.newname)


class _Run:
    """The tables as the run changes them: the live ones, less what it drops, plus what it creates."""

    def __init__(self, live: LiveObjects) -> None:
        self.live = live
        self.changed: dict[str, _New | str] = {}

    def where(self, table: str) -> _New | str:
        if table in self.changed:
            return self.changed[table]
        if not self.live.exists(table):
            return _ABSENT
        return "rows" if self.live.has_rows(table) else "empty"

    def apply(self, node: ast.Node, version: int) -> None:
        match node:
            case ast.CreateStmt() | ast.CreateTableAsStmt(objtype=ObjectType.OBJECT_TABLE):
                rel = node.relation if isinstance(node, ast.CreateStmt) else node.into.rel
                self.changed[_table(rel)] = _New(version)
            case ast.RenameStmt(renameType=ObjectType.OBJECT_TABLE):
                old = _table(node.relation)
                self.changed[_renamed(node)] = self.where(old)
                self.changed[old] = _ABSENT
            case ast.DropStmt(removeType=ObjectType.OBJECT_TABLE):
                for table in subjects(node):
                    self.changed[table] = _ABSENT


def _why(table: str, where: _New | str, risk: str) -> str | None:
    """Why ``risk`` does not apply to ``table`` in situation ``where``; None when it may."""
    if isinstance(where, _New):
        return f"{table} is created by migration {where.version} in this same run: it holds no live data yet"
    if where == _ABSENT:
        return f"{table} does not exist in the database now"
    if where == "empty" and risk == DATA:
        return f"{table} has no rows in the database now"
    return None


def judge(files: Sequence[tuple[int, str | None, SqlFile | None]], found: Sequence[list[Finding]],
          live: LiveObjects) -> list[list[Finding]]:
    """``found`` (the findings on each of ``files``: version, up file name, parsed up file),
    with each live-data finding that the live database shows to be no risk lowered to info
    and its reason in ``live_judgement``. Other findings are returned as they came."""
    run = _Run(live)
    judged: list[list[Finding]] = []
    for (version, filename, sqlfile), findings in zip(files, found, strict=True):
        lines: list[int] = []
        situations: list[dict[str, _New | str]] = []
        for s in sqlfile.statements if sqlfile is not None else ():
            if s.node is None:
                continue
            tables = subjects(s.node)
            lines.append(s.line)
            situations.append({t: run.where(t) for t in tables})
            run.apply(s.node, version)
        judged.append([_lowered(f, filename, lines, situations) for f in findings])
    return judged


def _lowered(f: Finding, filename: str | None, lines: list[int], situations: list[dict]) -> Finding:
    risk = LIVE_RISKS.get(f.rule)
    if risk is None or f.filename != filename or f.line is None or f.severity == "info":
        return f
    # The statement a finding is on: the last to start at or before its line (squawk may point
    # inside a statement); all the statements starting on that line, when several do.
    end = bisect.bisect_right(lines, f.line)
    if end == 0:
        return f
    first = bisect.bisect_left(lines, lines[end - 1])
    tables = {t: w for s in situations[first:end] for t, w in s.items()}
    reasons = [_why(t, w, risk) for t, w in sorted(tables.items())]
    if not reasons or None in reasons:
        return f
    return dataclasses.replace(f, severity="info", live_judgement="; ".join(dict.fromkeys(reasons)))
