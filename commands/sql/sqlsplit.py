"""A migration file cut into its statements, each parsed on its own: time linear in the
file's size; memory: a window of it, its largest statement and a small record per statement.

Why not one ``pglast.parse_sql`` of the whole file: it builds the whole file's syntax tree,
and pglast turns each node's byte offset into a character offset by walking the list of the
file's multi-byte characters, so a file with non-ASCII text takes time quadratic in its size
(20,000 INSERTs with accented names: 51 s; a 50 MB seed-data file had not been planned after
10 minutes, at 849 MB; bench/RESULTS.md).

How, instead:

- PostgreSQL's lexer (libpg_query's scanner split) cuts the file at each ``;`` outside
  quotes, comments and parentheses, a window of ``WINDOW`` characters at a time, so its
  memory stays bounded. It runs on an ASCII twin of the text, every non-ASCII character
  replaced by ``q``: the same length, so its offsets are the file's character offsets, and
  the same tokens, since the lexer reads every non-ASCII character as an identifier letter,
  as it reads ``q``. The one place the twin could read differently is a dollar-quote tag
  holding a non-ASCII character (``$é$`` and ``$q$`` would be one tag); such a file is parsed
  whole.
- The scanner drops what it cannot place (a piece without a keyword, the rest of the file
  after an unbalanced parenthesis), so what lies between the pieces is checked to be only
  whitespace, ``;`` and comments.
- Each piece is parsed alone to JSON first (libpg_query's C code, no Python objects). INSERT,
  UPDATE and SELECT without a WITH, the bulk of seed data, keep only the table they write,
  all the linter reads from them; every other statement gets its full syntax tree. A piece
  that ends mid-statement (a ``;`` inside ``BEGIN ATOMIC … END``) is joined to the next.
- Lines are counted once, forwards.

Whenever this path cannot vouch for its result (a piece that does not parse, anything else
between pieces), the whole file is parsed at once, as before: slower, never wrong. Syntax
errors come from that whole parse, with PostgreSQL's own message and position.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import NamedTuple

import pglast
from pglast import ast, parser
from pglast.parser import ParseError

WINDOW = 1 << 20  # characters lexed at a time (doubled while one statement does not fit)
MAX_JOINED = 1000  # pieces joined into one statement (BEGIN ATOMIC bodies) before parsing whole

_NON_ASCII = re.compile(r"[^\x00-\x7f]")
# "$", identifier letters, then a non-ASCII character: a dollar-quote tag the twin could
# confuse with another (possessive, so a long run of letters is read once).
_NON_ASCII_TAG = re.compile(r"\$[A-Za-z0-9_]*+[^\x00-\x7f]")
_SPACE = " \t\n\r\f\v"  # PostgreSQL's whitespace (scan.l), narrower than str.strip's
_BETWEEN = {"ASCII_59", "SQL_COMMENT", "C_COMMENT"}  # ";" and comments: all that may separate statements
_SLIM_HEAD = re.compile(r'\{"version":\d+,"stmts":\[\{"stmt":\{"(InsertStmt|UpdateStmt|SelectStmt)":\{')
_RELATION = '"relation":'
_JSON = json.JSONDecoder()


class Piece(NamedTuple):
    start: int      # character offset of its first token (comments before it are not part of it)
    end: int        # just past its last character (a trailing comment's), before the ";"
    line: int       # 1-based line of ``start``
    node: ast.Node  # its syntax tree; INSERT/UPDATE/SELECT without WITH: only their target table


def statements(text: str) -> list[Piece]:
    """The statements of ``text`` in order. Raises ParseError (PostgreSQL's message and
    character index) if it is not valid SQL."""
    pieces = by_statement(text)
    return pieces if pieces is not None else whole(text)


def by_statement(text: str) -> list[Piece] | None:
    """The fast path: what ``whole`` returns, or None when it cannot vouch for that."""
    try:
        return _by_statement(text)
    except _Unsure:
        return None


class _Unsure(Exception):
    """The fast path cannot vouch for its answer: parse the whole file."""


class _Lines:
    """The line of each offset, for offsets asked in rising order: each newline is counted once."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _by_statement(text: str) -> list[Piece]:
    if not text.isascii() and _NON_ASCII_TAG.search(text):
        raise _Unsure
    lines = _Lines(text)
    made: dict[tuple, ast.Node] = {}
    pieces = []
    cuts = _cuts(text)
    for start, end in cuts:
        parsed = _parse_one(text[start:end], made)
        joined = 0
        while parsed is None:  # it ends mid-statement: the next piece belongs to it
            following = next(cuts, None)
            joined += 1
            if following is None or joined > MAX_JOINED:
                raise _Unsure
            end = following[1]
            parsed = _parse_one(text[start:end], made)
        node, lead = parsed
        pieces.append(Piece(start=start + lead, end=end, line=lines.at(start + lead), node=node))
    return pieces


def _cuts(text: str) -> Iterator[tuple[int, int]]:
    """(start, end) of each piece the lexer cuts, whitespace trimmed, in file order."""
    at, size = 0, WINDOW
    while True:
        end = min(at + size, len(text))
        final = end == len(text)
        window = text[at:end]
        if not window.isascii():
            window = _NON_ASCII.sub("q", window)
        try:
            cuts = parser.split(window, with_parser=False, only_slices=True)
        except ParseError:  # an unterminated quote or comment: the window ends inside it?
            if final:
                raise _Unsure from None
            size *= 2
            continue
        if not final:
            cuts = cuts[:-1]  # the window may end inside its last piece: read it again in the next
            if not cuts:
                size *= 2
                continue
        previous = 0
        for cut in cuts:
            _check_between(window[previous:cut.start])
            previous = cut.stop
            yield at + cut.start, at + cut.stop
        if final:
            _check_between(window[previous:])
            return
        at, size = at + previous, WINDOW


def _check_between(gap: str) -> None:
    """Raise _Unsure unless ``gap`` holds only whitespace, ``;`` and comments."""
    if gap.strip(_SPACE + ";") and any(token.name not in _BETWEEN for token in parser.scan(gap)):
        raise _Unsure


def _parse_one(sql: str, made: dict[tuple, ast.Node]) -> tuple[ast.Node, int] | None:
    """The syntax tree of ``sql`` and the offset of its first token (past leading comments)
    if it is one statement; None if it ends mid-statement. Raises _Unsure otherwise.
    ``made``: the slim nodes so far, shared by statements that write the same table (nodes
    are only read: thousands of INSERTs into one table hold one)."""
    try:
        parsed = parser.parse_sql_json(sql)
    except ParseError as err:
        if len(err.args) > 1 and err.args[1] is None:  # "syntax error at end of input"
            return None
        raise _Unsure from None
    head = _SLIM_HEAD.match(parsed)
    # A second statement gives the first a "stmt_len". A key name inside a string literal
    # can only send a statement down the full parse, never make a wrong slim one. A leading
    # comment too: the full parse says where the statement starts, in characters.
    if (head is not None and '"stmt_len":' not in parsed and '"withClause":' not in parsed
            and not sql.startswith(("--", "/*"))):
        node = _slim(head[1], parsed, head.end(), made)
        if node is not None:
            return node, 0
    nodes = pglast.parse_sql(sql)
    if len(nodes) != 1:
        raise _Unsure
    return nodes[0].stmt, nodes[0].stmt_location or 0


def _slim(kind: str, parsed: str, at: int, made: dict[tuple, ast.Node]) -> ast.Node | None:
    """``kind``'s node with only its target table, read from the head of libpg_query's JSON
    (the relation is the first field of InsertStmt and UpdateStmt); None if it is not there."""
    if kind == "SelectStmt":
        key: tuple = (kind,)
    elif parsed.startswith(_RELATION, at):
        relation, _ = _JSON.raw_decode(parsed, at + len(_RELATION))
        key = (kind, relation.get("catalogname"), relation.get("schemaname"), relation.get("relname"))
    else:
        return None
    if key not in made:
        if kind == "SelectStmt":
            made[key] = ast.SelectStmt()
        else:
            table = ast.RangeVar(catalogname=key[1], schemaname=key[2], relname=key[3])
            made[key] = ast.InsertStmt(relation=table) if kind == "InsertStmt" else ast.UpdateStmt(relation=table)
    return made[key]


def whole(text: str) -> list[Piece]:
    """One parse of the whole file: the exact answer, at the old cost (the syntax tree of
    the whole file; time quadratic in its size when it has non-ASCII text)."""
    lines = _Lines(text)
    pieces = []
    for raw in pglast.parse_sql(text):
        start = raw.stmt_location or 0  # its first token
        end = start + raw.stmt_len if raw.stmt_len else len(text)
        # The recorded span runs up to the ";", whitespace included: trimmed as the fast path's.
        while end > start and text[end - 1] in _SPACE:
            end -= 1
        pieces.append(Piece(start=start, end=end, line=lines.at(start), node=raw.stmt))
    return pieces
