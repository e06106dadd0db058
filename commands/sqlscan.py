"""What a migration file holds, read with pglast (PostgreSQL's own parser).

The executor needs four answers per file, and this module gives them without a database:
- is it valid SQL at all (and if not, the line and column of the error);
- can it run inside dbops' transaction, or does it manage its own (explicit BEGIN/COMMIT)
  or hold statements PostgreSQL refuses in a transaction block (CREATE INDEX CONCURRENTLY…);
- is it empty (no statements: an empty or comment-only file is a valid no-op step);
- which statements lose data (dropped tables or columns, deleted rows…), in plain words for
  the approver. Only what the file's own statements do: bodies of DO blocks and functions
  are opaque strings to the parser, and cascades through foreign keys need the database.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

from pglast import ast
from pglast.enums import AlterTableType, CmdType, DropBehavior, ObjectType, TransactionStmtKind
from pglast.parser import ParseError
from pglast.stream import maybe_double_quote_name

from commands import sqlsplit


class Mode(str, Enum):
    TRANSACTIONAL = "transactional"      # runs in dbops' transaction with its version update
    OWN_TRANSACTION = "own-transaction"  # has BEGIN/COMMIT of its own: run whole, dirty protocol
    NO_TRANSACTION = "no-transaction"    # cannot run in a transaction block: run whole, dirty protocol


@dataclass(frozen=True, kw_only=True)
class Position:
    line: int    # 1-based
    column: int  # 1-based, in characters


@dataclass(frozen=True, kw_only=True, slots=True)
class Statement:
    kind: str           # pglast node name, e.g. "CreateStmt"
    start: int          # character offset in the file of its first token (after any comment before it)
    end: int            # just past its last character (a trailing comment's), before the ";"
    line: int           # the line of ``start``
    no_transaction: str | None = None  # why it cannot run in a transaction block
    transaction_control: bool = False  # BEGIN/COMMIT/ROLLBACK…
    data_loss: tuple[str, ...] = ()    # one plain-words line per destructive action
    # The parsed statement, for the linter (commands.lint): parsing is the costly part. INSERT,
    # UPDATE and SELECT without WITH keep only their target table (see commands.sqlsplit).
    node: ast.Node | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, kw_only=True)
class SyntaxProblem:
    message: str
    position: Position


@dataclass(frozen=True, kw_only=True)
class SqlFile:
    text: str
    statements: tuple[Statement, ...]
    syntax_error: SyntaxProblem | None

    @property
    def empty(self) -> bool:
        return self.syntax_error is None and not self.statements

    @property
    def mode(self) -> Mode:
        if any(s.transaction_control for s in self.statements):
            return Mode.OWN_TRANSACTION
        if any(s.no_transaction for s in self.statements):
            return Mode.NO_TRANSACTION
        return Mode.TRANSACTIONAL

    @property
    def no_transaction_reasons(self) -> tuple[tuple[int, str], ...]:
        return tuple((s.line, s.no_transaction) for s in self.statements if s.no_transaction)

    @property
    def data_loss(self) -> tuple[tuple[int, str], ...]:
        """(line, description) of every destructive action, in file order."""
        return tuple((s.line, d) for s in self.statements for d in s.data_loss)


_OWN_TRANSACTION_KINDS = {
    TransactionStmtKind.TRANS_STMT_BEGIN,
    TransactionStmtKind.TRANS_STMT_START,
    TransactionStmtKind.TRANS_STMT_COMMIT,
    TransactionStmtKind.TRANS_STMT_ROLLBACK,
    TransactionStmtKind.TRANS_STMT_PREPARE,
    TransactionStmtKind.TRANS_STMT_COMMIT_PREPARED,
    TransactionStmtKind.TRANS_STMT_ROLLBACK_PREPARED,
}


def _no_transaction_reason(node: ast.Node) -> str | None:
    """Why PostgreSQL refuses ``node`` inside a transaction block, or None if it does not."""
    match node:
        case ast.IndexStmt(concurrent=True):
            return "CREATE INDEX CONCURRENTLY"
        case ast.DropStmt(concurrent=True):
            return "DROP INDEX CONCURRENTLY"
        case ast.ReindexStmt():
            if any(getattr(p, "defname", None) == "concurrently" for p in node.params or ()):
                return "REINDEX CONCURRENTLY"
            if node.kind.name in ("REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"):
                return "REINDEX SYSTEM/DATABASE"
        case ast.VacuumStmt(is_vacuumcmd=True):
            return "VACUUM"
        case ast.CreatedbStmt():
            return "CREATE DATABASE"
        case ast.DropdbStmt():
            return "DROP DATABASE"
        case ast.CreateTableSpaceStmt():
            return "CREATE TABLESPACE"
        case ast.DropTableSpaceStmt():
            return "DROP TABLESPACE"
        case ast.AlterSystemStmt():
            return "ALTER SYSTEM"
        case ast.CreateSubscriptionStmt():
            return "CREATE SUBSCRIPTION"
        case ast.DropSubscriptionStmt():
            return "DROP SUBSCRIPTION"
        case ast.ClusterStmt(relation=None):
            return "CLUSTER (all tables)"
    return None


def _name(*parts: str | None) -> str:
    """A dotted name as SQL would write it: quoted only where PostgreSQL needs quotes."""
    return ".".join(maybe_double_quote_name(p) for p in parts if p)


def _table(rel: ast.RangeVar) -> str:
    return _name(rel.catalogname, rel.schemaname, rel.relname)


def _listing(noun: str, names: list[str]) -> str:
    return f"{noun}{'s' if len(names) > 1 else ''} {', '.join(names)}"


def _them(names: list[str]) -> str:
    return "them" if len(names) > 1 else "it"


def _data_loss(node: ast.Node) -> list[str]:
    """What ``node`` destroys, one description per action; [] if it destroys nothing.

    Views (plain or materialized) hold no data of their own, UPDATE keeps its rows, and
    DROP SCHEMA without CASCADE fails on a non-empty schema, so none of them count.
    """
    found = []
    # A DELETE in a WITH runs even under a statement that only reads: WITH d AS (DELETE…) SELECT…
    with_clause = getattr(node, "withClause", None)
    for cte in (with_clause.ctes if with_clause else None) or ():
        found += _data_loss(cte.ctequery)
    match node:
        case ast.DropStmt(removeType=ObjectType.OBJECT_TABLE):
            found.append("drops " + _listing("table", [_name(*(s.sval for s in o)) for o in node.objects]))
        case ast.DropStmt(removeType=ObjectType.OBJECT_SCHEMA, behavior=DropBehavior.DROP_CASCADE):
            schemas = [_name(s.sval) for s in node.objects]
            found.append(f"drops {_listing('schema', schemas)} with everything in {_them(schemas)} (CASCADE)")
        case ast.AlterTableStmt(objtype=ObjectType.OBJECT_TABLE):
            for cmd in node.cmds:
                column = f"{_table(node.relation)}.{_name(cmd.name)}"
                if cmd.subtype == AlterTableType.AT_DropColumn:
                    found.append(f"drops column {column}")
                elif cmd.subtype == AlterTableType.AT_AlterColumnType:
                    found.append(f"changes the type of column {column}")
        case ast.TruncateStmt():
            tables = [_table(r) for r in node.relations]
            found.append(f"truncates {', '.join(tables)}" + (
                f" and every table with a foreign key to {_them(tables)} (CASCADE)"
                if node.behavior == DropBehavior.DROP_CASCADE else ""))
        case ast.DeleteStmt():
            found.append(f"deletes rows from {_table(node.relation)}"
                         + ("" if node.whereClause else " (no WHERE: every row)"))
        case ast.MergeStmt():
            if any(w.commandType == CmdType.CMD_DELETE for w in node.mergeWhenClauses):
                found.append(f"deletes matched rows from {_table(node.relation)} (MERGE)")
    return found


def position_of(text: str, offset: int) -> Position:
    """The 1-based line and column of character ``offset`` in ``text`` (reads the text up to
    it: for one position; sqlsplit counts the lines of every statement in one pass)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Position(line=line, column=column)


def _refusal(text: str) -> SyntaxProblem | None:
    """Bytes that would make PostgreSQL run something other than the file as written.

    A NUL byte: PostgreSQL (and pglast) read a query only up to it, so everything after it
    would be dropped without a word, and the version recorded as applied."""
    nul = text.find("\0")
    if nul == -1:
        return None
    byte = len(text[:nul].encode("utf-8"))
    return SyntaxProblem(message=f"NUL byte (0x00) at byte {byte}: PostgreSQL stops reading a query at a NUL "
                                 "byte, so the rest of the file would be silently skipped. Remove it.",
                         position=position_of(text, nul))


_BOM = "\ufeff"


def scan(text: str) -> SqlFile:
    """Parse ``text``; never raises for bad SQL (the problem is in ``syntax_error``).

    Time linear in the size of ``text``, and no syntax tree of the whole file is held
    (``commands.sqlsplit``)."""
    refused = _refusal(text)
    if refused is not None:
        return SqlFile(text=text, statements=(), syntax_error=refused)
    try:
        pieces = sqlsplit.statements(text)
    except ParseError as err:
        message, offset = err.args[0], (err.args[1] if len(err.args) > 1 else 0)
        if offset is None:  # "syntax error at end of input": pglast gives no index past the end
            offset = len(text)
        if text.startswith(_BOM):
            message = ("the file starts with a byte order mark (U+FEFF), which PostgreSQL reads as part of the "
                       f"first word ({message}). Save the file as UTF-8 without a BOM.")
        return SqlFile(text=text, statements=(),
                       syntax_error=SyntaxProblem(message=str(message), position=position_of(text, int(offset))))
    facts: dict[int, tuple] = {}  # by node: sqlsplit shares one node among a table's INSERTs
    statements = []
    for p in pieces:
        if id(p.node) not in facts:
            facts[id(p.node)] = (
                _no_transaction_reason(p.node),
                isinstance(p.node, ast.TransactionStmt) and p.node.kind in _OWN_TRANSACTION_KINDS,
                tuple(_data_loss(p.node)))
        no_transaction, transaction_control, data_loss = facts[id(p.node)]
        statements.append(Statement(kind=type(p.node).__name__, start=p.start, end=p.end, line=p.line,
                                    no_transaction=no_transaction, transaction_control=transaction_control,
                                    data_loss=data_loss, node=p.node))
    return SqlFile(text=text, statements=tuple(statements), syntax_error=None)
