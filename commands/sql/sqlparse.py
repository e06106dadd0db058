"""The pglast half of ``commands.sql.sqlscan``: a migration file parsed with PostgreSQL's own
parser, and what each statement does. ``sqlscan.scan`` loads it when a command first reads
a file.
"""

from __future__ import annotations

from pglast import ast
from pglast.enums import AlterTableType, CmdType, DropBehavior, ObjectType, TransactionStmtKind
from pglast.parser import ParseError
from pglast.stream import maybe_double_quote_name

from commands.sql import sqlsplit
from commands.sql.sqlfile import BOM, SqlFile, Statement, SyntaxProblem, position_of


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


def parse(text: str) -> SqlFile:
    """Parse ``text`` statement by statement (``commands.sql.sqlsplit``); never raises for bad SQL
    (the problem is in ``syntax_error``)."""
    try:
        pieces = sqlsplit.statements(text)
    except ParseError as err:
        message, offset = err.args[0], (err.args[1] if len(err.args) > 1 else 0)
        if offset is None:  # "syntax error at end of input": pglast gives no index past the end
            offset = len(text)
        if text.startswith(BOM):
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
