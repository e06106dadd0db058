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


BOM = "\ufeff"  # a byte order mark, which PostgreSQL reads as part of the first word


def scan(text: str) -> SqlFile:
    """Parse ``text``; never raises for bad SQL (the problem is in ``syntax_error``).

    Time linear in the size of ``text``, and no syntax tree of the whole file is held
    (``commands.sql.sqlsplit``)."""
    refused = _refusal(text)
    if refused is not None:
        return SqlFile(text=text, statements=(), syntax_error=refused)
    # PostgreSQL's parser costs more to load than most commands take to run, and most never
    # read a file (a status lists names): it is loaded by the first command that does.
    from commands.sql.sqlparse import parse
    return parse(text)
