"""What a migration file's statements lock: the table-level lock each takes, read from
PostgreSQL's parse tree (the manual's "Table-Level Locks"). The lint shows it on a plan; a
migration looks for the sessions in its way with it (``commands.pg.blockers``)."""

from __future__ import annotations

from collections.abc import Iterable

from pglast import ast
from pglast.enums import AlterTableType, ConstrType, ObjectType

from commands.sql.sqlfile import SqlFile
from commands.sql.sqlparse import _table

# The table-level lock each statement takes (PostgreSQL's "Table-Level Locks"): the
# strongest of its parts. ALTER TABLE takes ACCESS EXCLUSIVE except for these subcommands.
ACCESS_EXCLUSIVE, EXCLUSIVE = "ACCESS EXCLUSIVE", "EXCLUSIVE"
SHARE_ROW_EXCLUSIVE, SHARE, SHARE_UPDATE_EXCLUSIVE = "SHARE ROW EXCLUSIVE", "SHARE", "SHARE UPDATE EXCLUSIVE"
ROW_EXCLUSIVE = "ROW EXCLUSIVE"
_STRENGTH = (ROW_EXCLUSIVE, SHARE_UPDATE_EXCLUSIVE, SHARE, SHARE_ROW_EXCLUSIVE, EXCLUSIVE, ACCESS_EXCLUSIVE)
_ALTER_TABLE_LOCKS = {
    AlterTableType.AT_ValidateConstraint: SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_SetStatistics: SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_ClusterOn: SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_DropCluster: SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_AttachPartition: SHARE_UPDATE_EXCLUSIVE,
    AlterTableType.AT_EnableTrig: SHARE_ROW_EXCLUSIVE,
    AlterTableType.AT_DisableTrig: SHARE_ROW_EXCLUSIVE,
}


def _strongest(locks: Iterable[str]) -> str:
    return max(locks, key=_STRENGTH.index)


def _alter_table_lock(node: ast.AlterTableStmt) -> str:
    locks = []
    for cmd in node.cmds:
        if (cmd.subtype == AlterTableType.AT_AddConstraint and isinstance(cmd.def_, ast.Constraint)
                and cmd.def_.contype == ConstrType.CONSTR_FOREIGN):
            locks.append(SHARE_ROW_EXCLUSIVE)
        else:
            locks.append(_ALTER_TABLE_LOCKS.get(cmd.subtype, ACCESS_EXCLUSIVE))
    return _strongest(locks) if locks else ACCESS_EXCLUSIVE


def _locks_of(node: ast.Node) -> list[tuple[str, str, str]]:
    """(table, lock, statement) for each table ``node`` locks; [] for what takes no table lock
    worth showing (a new table, a view, a function …)."""
    match node:
        case ast.AlterTableStmt(objtype=ObjectType.OBJECT_TABLE):
            found = [(_table(node.relation), _alter_table_lock(node), "ALTER TABLE")]
            for cmd in node.cmds:  # a new foreign key also locks the table it references
                if isinstance(cmd.def_, ast.Constraint) and cmd.def_.contype == ConstrType.CONSTR_FOREIGN:
                    found.append((_table(cmd.def_.pktable), SHARE_ROW_EXCLUSIVE, "ALTER TABLE (foreign key)"))
            return found
        case ast.RenameStmt(renameType=ObjectType.OBJECT_TABLE | ObjectType.OBJECT_COLUMN):
            return [(_table(node.relation), ACCESS_EXCLUSIVE, "ALTER TABLE … RENAME")]
        case ast.IndexStmt():
            if node.concurrent:
                return [(_table(node.relation), SHARE_UPDATE_EXCLUSIVE, "CREATE INDEX CONCURRENTLY")]
            return [(_table(node.relation), SHARE, "CREATE INDEX")]
        case ast.DropStmt(removeType=ObjectType.OBJECT_TABLE):
            return [(".".join(s.sval for s in o), ACCESS_EXCLUSIVE, "DROP TABLE") for o in node.objects]
        case ast.DropStmt(removeType=ObjectType.OBJECT_INDEX):
            lock, what = (SHARE_UPDATE_EXCLUSIVE, "DROP INDEX CONCURRENTLY") if node.concurrent else (
                ACCESS_EXCLUSIVE, "DROP INDEX")
            return [(f"table of index {'.'.join(s.sval for s in o)}", lock, what) for o in node.objects]
        case ast.TruncateStmt():
            return [(_table(r), ACCESS_EXCLUSIVE, "TRUNCATE") for r in node.relations]
        case ast.InsertStmt() | ast.UpdateStmt() | ast.DeleteStmt() | ast.MergeStmt():
            return [(_table(node.relation), ROW_EXCLUSIVE, type(node).__name__.removesuffix("Stmt").upper())]
        case ast.CreateTrigStmt():
            return [(_table(node.relation), SHARE_ROW_EXCLUSIVE, "CREATE TRIGGER")]
        case ast.RefreshMatViewStmt():
            return [(_table(node.relation), EXCLUSIVE if node.concurrent else ACCESS_EXCLUSIVE,
                     "REFRESH MATERIALIZED VIEW")]
        case ast.ClusterStmt(relation=ast.RangeVar()):
            return [(_table(node.relation), ACCESS_EXCLUSIVE, "CLUSTER")]
        case ast.VacuumStmt():
            full = any(getattr(o, "defname", None) == "full" for o in node.options or ())
            return [(_table(r.relation), ACCESS_EXCLUSIVE if full else SHARE_UPDATE_EXCLUSIVE,
                     "VACUUM FULL" if full else "VACUUM") for r in node.rels or () if r.relation is not None]
    return []


def table_locks(sqlfile: SqlFile) -> tuple[tuple[int, str, str, str], ...]:
    """What the statements of ``sqlfile`` lock, in file order (tables created in the file skipped:
    nobody else can be using them). The same lock on the same table by the same kind of
    statement is listed once, at its first line: 100,000 INSERTs into a table are one entry.
    Each is (line, table, lock in the manual's words, statement)."""
    estimates, created, seen, nodes = [], set(), set(), set()
    for line, node in ((s.line, s.node) for s in sqlfile.statements if s.node is not None):
        if isinstance(node, ast.CreateStmt):
            created.add(_table(node.relation))
        if id(node) in nodes:  # a node sqlscan shares among statements: its locks are listed already
            continue
        nodes.add(id(node))
        for table, lock, statement in _locks_of(node):
            if table not in created and (table, lock, statement) not in seen:
                seen.add((table, lock, statement))
                estimates.append((line, table, lock, statement))
    return tuple(estimates)
