"""dbops' own lint rules for pending migrations: what the guide calls dangerous, and what
squawk cannot know (the down file, the size of a table right now, how dbops runs a file).

Pure functions of the files' text, table sizes read beforehand, and the environment's
settings. Rules and their severities:

=============================================  ========  ================================================
rule                                           severity  finds
=============================================  ========  ================================================
missing-down                                   warning   a pending migration without a down file
down-loses-data                                warning   DROP TABLE/COLUMN, TRUNCATE, DELETE… in the down file
drop-column                                    error     ALTER TABLE … DROP COLUMN in an up file
rename-table                                   error     ALTER TABLE … RENAME TO
rename-column                                  error     ALTER TABLE … RENAME COLUMN
change-column-type                             error     ALTER TABLE … ALTER COLUMN … TYPE
not-null-without-default                       error     ADD COLUMN … NOT NULL without DEFAULT; SET NOT NULL
index-without-concurrently-on-large-table      error     CREATE INDEX without CONCURRENTLY on a table larger
                                                         than ``lint_large_table_mb`` now
mixed-transaction                              error     a statement that cannot run in a transaction block,
                                                         with other statements in the same file
syntax-error                                   error     the file does not parse
allow-needs-reason                             warning   a ``-- dbops:allow RULE`` comment without a reason
=============================================  ========  ================================================

A table created earlier in the same file is empty, so adding a NOT NULL column to it or
indexing it is not flagged. Findings whose risk depends on live data are judged afterwards,
across all pending files, against the live database (``commands.lint.lint_live``). ``-- dbops:allow RULE reason`` in a file accepts that rule's
findings in that file; ``lint_allow`` in the configuration accepts a rule everywhere.
Accepted findings are still shown, with why, and never block.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from commands.lint.results import Finding, LockEstimate
from commands.sql.sqllocks import table_locks
from commands.sql.sqlparse import _table
from commands.sql.sqlfile import SqlFile

RULES: dict[str, str] = {
    "missing-down": "warning",
    "down-loses-data": "warning",
    "drop-column": "error",
    "rename-table": "error",
    "rename-column": "error",
    "change-column-type": "error",
    "not-null-without-default": "error",
    "index-without-concurrently-on-large-table": "error",
    "mixed-transaction": "error",
    "syntax-error": "error",
    "allow-needs-reason": "warning",
}
_ALLOW = re.compile(r"--\s*dbops:allow\s+([A-Za-z0-9_:-]+)[ \t]*(.*?)\s*$", re.MULTILINE)
CONFIG_ALLOWED = "allowed by lint_allow in the dbops configuration"
MB = 1024 * 1024

def _finding(rule: str, filename: str, line: int | None, message: str) -> Finding:
    return Finding(rule=rule, severity=RULES[rule], filename=filename, line=line, message=message)


# --- the parsed statements --------------------------------------------------------------------

def _statements(sqlfile: SqlFile) -> list[tuple[int, ast.Node]]:
    """(line, node) of each statement, as sqlscan parsed them; [] when the file does not
    parse (its syntax_error says where)."""
    return [(s.line, s.node) for s in sqlfile.statements if s.node is not None]


def _column_is_not_null_without_default(column: ast.ColumnDef) -> bool:
    kinds = {c.contype for c in column.constraints or ()}
    if kinds & {ConstrType.CONSTR_DEFAULT, ConstrType.CONSTR_IDENTITY, ConstrType.CONSTR_GENERATED}:
        return False
    return bool(column.is_not_null or kinds & {ConstrType.CONSTR_NOTNULL, ConstrType.CONSTR_PRIMARY})


def index_tables(sqlfile: SqlFile) -> set[str]:
    """Tables a CREATE INDEX without CONCURRENTLY builds on (their sizes decide the rule)."""
    return {_table(node.relation) for _, node in _statements(sqlfile)
            if isinstance(node, ast.IndexStmt) and not node.concurrent}


def _up_rules(filename: str, up: SqlFile, sizes: Mapping[str, int], large_mb: int) -> list[Finding]:
    found: list[Finding] = []
    created: set[str] = set()
    for line, node in _statements(up):
        match node:
            case ast.CreateStmt():
                created.add(_table(node.relation))
            case ast.RenameStmt(renameType=ObjectType.OBJECT_TABLE):
                found.append(_finding("rename-table", filename, line,
                                      f"renames table {_table(node.relation)} to {node.newname}: the running "
                                      "application and a rollback still use the old name. Copy to a new table "
                                      "and keep the old one for the rollback window."))
            case ast.RenameStmt(renameType=ObjectType.OBJECT_COLUMN):
                found.append(_finding("rename-column", filename, line,
                                      f"renames column {_table(node.relation)}.{node.subname} to {node.newname}: "
                                      "the running application still uses the old name. Add a new column and "
                                      "copy instead."))
            case ast.AlterTableStmt(objtype=ObjectType.OBJECT_TABLE):
                table = _table(node.relation)
                for cmd in node.cmds:
                    found += _alter_rules(filename, line, table, cmd, table in created)
            case ast.IndexStmt(concurrent=False):
                table = _table(node.relation)
                size = sizes.get(table)
                if table not in created and size is not None and size > large_mb * MB:
                    found.append(_finding(
                        "index-without-concurrently-on-large-table", filename, line,
                        f"CREATE INDEX without CONCURRENTLY on {table}, {size / MB:,.0f} MB now (over "
                        f"lint_large_table_mb = {large_mb}): writes to it wait until the index is built. "
                        "Use CREATE INDEX CONCURRENTLY, in a file of its own."))
    return found


def _alter_rules(filename: str, line: int, table: str, cmd: ast.AlterTableCmd, new_table: bool) -> list[Finding]:
    column = f"{table}.{cmd.name}"
    match cmd.subtype:
        case AlterTableType.AT_DropColumn:
            return [_finding("drop-column", filename, line,
                             f"drops column {column}: its data is gone, and the down file cannot bring it back. "
                             "Stop using it first, and drop it in a later migration once it is archived.")]
        case AlterTableType.AT_AlterColumnType:
            return [_finding("change-column-type", filename, line,
                             f"changes the type of {column}: the table is rewritten under an ACCESS EXCLUSIVE lock "
                             "and converted values cannot be converted back. Add a new column and copy instead.")]
        case AlterTableType.AT_AddColumn if not new_table and _column_is_not_null_without_default(cmd.def_):
            return [_finding("not-null-without-default", filename, line,
                             f"adds NOT NULL column {table}.{cmd.def_.colname} without a DEFAULT: it fails on a "
                             "table that has rows. Add a DEFAULT, or add it nullable and backfill.")]
        case AlterTableType.AT_SetNotNull if not new_table:
            return [_finding("not-null-without-default", filename, line,
                             f"sets {column} NOT NULL: the whole table is scanned under an ACCESS EXCLUSIVE lock, and "
                             "it fails if a row has NULL. Add a CHECK (… IS NOT NULL) NOT VALID constraint and "
                             "validate it first.")]
    return []


def _mixed_transaction(filename: str, sqlfile: SqlFile) -> list[Finding]:
    if len(sqlfile.statements) < 2:
        return []
    return [_finding("mixed-transaction", filename, line,
                     f"{reason} cannot run in a transaction block, and this file has other statements: PostgreSQL "
                     "runs a multi-statement file in one implicit transaction, so it will fail. Put it in a file "
                     "of its own.") for line, reason in sqlfile.no_transaction_reasons]


# --- a migration's findings -----------------------------------------------------------------

def lint_migration(*, up_name: str | None, up: SqlFile | None, down_name: str | None, down: SqlFile | None,
                   sizes: Mapping[str, int], large_mb: int) -> list[Finding]:
    """dbops' findings on one pending migration, in file order (allowances not yet applied)."""
    found: list[Finding] = []
    if up_name is not None and up is not None:
        if up.syntax_error is not None:
            p = up.syntax_error.position
            found.append(_finding("syntax-error", up_name, p.line, f"{up.syntax_error.message} (column {p.column})"))
        found += _up_rules(up_name, up, sizes, large_mb)
        found += _mixed_transaction(up_name, up)
        if down_name is None:
            found.append(_finding("missing-down", up_name, None,
                                  "no down file: rolling back through this version changes nothing. Write one, "
                                  "even if it only says why it cannot undo."))
    if down_name is not None and down is not None:
        found += [_finding("down-loses-data", down_name, line, f"the down file {description}")
                  for line, description in down.data_loss]
    return sorted(found, key=lambda f: (f.filename, f.line or 0))


def allowances(filename: str, text: str) -> tuple[dict[str, str], list[Finding]]:
    """The ``-- dbops:allow RULE reason`` comments of a file: {rule: reason}, and a finding
    for each comment without a reason (which accepts nothing)."""
    allowed: dict[str, str] = {}
    problems = []
    line, counted = 1, 0  # lines counted forwards, once: a file may hold thousands of these
    for match in _ALLOW.finditer(text):
        rule, reason = match[1], match[2]
        if reason:
            allowed[rule] = reason
        else:
            line, counted = line + text.count("\n", counted, match.start()), match.start()
            problems.append(_finding("allow-needs-reason", filename, line,
                                     f"`dbops:allow {rule}` has no reason, so it accepts nothing: write "
                                     f"`-- dbops:allow {rule} WHY`."))
    return allowed, problems


def accept(findings: Iterable[Finding], *, in_files: Mapping[str, Mapping[str, str]],
           configured: Iterable[str]) -> tuple[Finding, ...]:
    """``findings`` with ``allowed_by`` set where an allow comment in their file, or the
    configuration's ``lint_allow``, accepts their rule."""
    configured = set(configured)
    accepted = []
    for f in findings:
        reason = in_files.get(f.filename, {}).get(f.rule)
        if reason is not None:
            f = dataclasses.replace(f, allowed_by=reason)
        elif f.rule in configured:
            f = dataclasses.replace(f, allowed_by=CONFIG_ALLOWED)
        accepted.append(f)
    return tuple(accepted)


# --- what a file locks ------------------------------------------------------------------------

def lock_estimate(sqlfile: SqlFile) -> tuple[LockEstimate, ...]:
    """What the statements of ``sqlfile`` lock, in file order (``commands.sql.sqllocks.table_locks``)."""
    return tuple(LockEstimate(line=line, table=table, lock=lock, statement=statement)
                 for line, table, lock, statement in table_locks(sqlfile))
