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

from commands.sql.sqlfile import SqlFile, SyntaxProblem, position_of


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
