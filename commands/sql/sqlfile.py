"""A migration file's SQL as dbops reads it: its statements, where each starts, what it would do.

Plain data, with no parser: ``commands.sql.sqlscan.scan`` fills it in (loading PostgreSQL's parser
only then), and everything that only passes a SqlFile around imports just this."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pglast import ast


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
    # The parsed statement, for the linter (commands.lint.lint): parsing is the costly part. INSERT,
    # UPDATE and SELECT without WITH keep only their target table (see commands.sql.sqlsplit).
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


def position_of(text: str, offset: int) -> Position:
    """The 1-based line and column of character ``offset`` in ``text`` (reads the text up to
    it: for one position; sqlsplit counts the lines of every statement in one pass)."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return Position(line=line, column=column)


BOM = "\ufeff"  # a byte order mark, which PostgreSQL reads as part of the first word
