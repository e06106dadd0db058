"""Reading a plain SQL script as psql reads it, to keep psql's meta-commands out of a restore.

A legacy snapshot (``.sql.gz``) is a script for psql, and psql runs the backslash
meta-commands in it: ``\\!`` starts a shell, ``\\copy … to program`` and ``\\o |cmd`` pipe
into one, ``\\setenv`` and ``\\i`` reach outside the database. dbops restores SQL and nothing
else, so this module follows psql's own lexer (src/fe_utils/psqlscan.l: quotes, comments,
dollar quotes, parentheses, SQL-standard function bodies) and psql's COPY … FROM stdin data
blocks, whose lines (``\\N``, ``\\.``) are data, and stops at the first backslash anywhere
else. pg_dump's own ``\\restrict KEY`` and ``\\unrestrict KEY`` lines are blanked instead:
dbops runs the whole script in a restricted block of its own, with a key the file cannot know.

This reading explains a refusal before anything runs; it is not the guarantee. psql's
restricted mode is: whatever this reader makes of a file (a setting changed by a function,
an encoding it does not follow), psql refuses every meta-command in it. Where psql's
reading depends on something the script does not say (standard_conforming_strings before
any SET, a client encoding whose characters can end in a backslash, a number run into a
word, which psql 13–15 and 16+ split differently), the reader refuses rather than guess.
"""

from __future__ import annotations

import re
from typing import Iterable, Iterator

from commands.pg.psql_settings import SETTINGS_WORDS, Unfollowable, standard_strings_after
from commands.redact import redact


class ScriptProblem(Exception):
    """Why the script cannot be restored as SQL only, with the line (1-based) it was found on."""

    def __init__(self, line: int, what: str) -> None:
        super().__init__(f"line {line}: {what}")
        self.line = line


# Lexer states, named as in psqlscan.l. XQS: just after a closing quote, where whitespace
# holding a newline and another quote continue the same string.
INITIAL, XC, XQ, XE, XUS, XB, XD, XDOLQ, XQS = "initial", "xc", "xq", "xe", "xus", "xb", "xd", "xdolq", "xqs"

_IDENT = rb"[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*"
# One token in the INITIAL state. Alternatives are ordered so that the first to match is the
# one flex's longest-match rule would pick at that position.
_TOKEN = re.compile(rb"""
  (?P<space>[ \t\n\r\f]+)
| (?P<comment>--[^\n\r]*)
| (?P<xc>/\*)
| (?P<xe>[eE]')
| (?P<xb>[bBxX]')
| (?P<xus>[uU]&')
| (?P<xui>[uU]&")
| (?P<xn>[nN](?='))
| (?P<dolq>\$(?:[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9]*)?\$)
| (?P<ident>""" + _IDENT + rb""")
| (?P<number>(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9][0-9_]*)(?:[Ee][-+]?[0-9][0-9_]*)?)
| (?P<xq>')
| (?P<xd>")
| (?P<backslash>\\)
| (?P<var>:(?:'[A-Za-z\x80-\xff_0-9]+'|"[A-Za-z\x80-\xff_0-9]+"|\{\?[A-Za-z\x80-\xff_0-9]+\}|[A-Za-z\x80-\xff_0-9]+))
| (?P<typecast>::)
| (?P<open>\()
| (?P<close>\))
| (?P<semi>;)
| (?P<other>[^-/ \t\n\r\f'"$\\:();.0-9A-Za-z\x80-\xff_]+|.)
""", re.X | re.S)
# Once a statement is known to be neither COPY, nor SET, nor CREATE FUNCTION/PROCEDURE, its
# words no longer matter: only quotes, comments, backslashes, parentheses and semicolons do.
# These skip a run of everything else in one match (INSERT-style dumps are mostly such runs);
# with standard_conforming_strings known to be on, a plain string that closes on the line
# (and is not followed by a newline, which could continue it) is skipped too.
_QUIET_PARTS = rb"""
  [ \t\n\r\f,=+*<>!@#%^&|`~?\[\]{}.()]++
| -(?!-)
| /(?!\*)
| :(?!['"{])
| (?![eEbBxXnN]'|[uU]&)[A-Za-z\x80-\xff_][A-Za-z\x80-\xff_0-9$]*+
| (?:[0-9][0-9_]*+(?:\.[0-9_]*+)?+)(?:[Ee][-+]?[0-9][0-9_]*+)?+(?![A-Za-z\x80-\xff_])"""
_QUIET = re.compile(rb"(?:" + _QUIET_PARTS + rb")++", re.X)
_QUIET_STD = re.compile(rb"(?:" + _QUIET_PARTS + rb"""
| '(?:[^'\n\r]|'')*+'(?![ \t\f]*+(?:--[^\n\r]*+)?[\n\r])
)++""", re.X)
_PARENS_OUTSIDE_STRINGS = re.compile(rb"'(?:[^']|'')*'|([()])")
_OPENS = {"xc": XC, "xe": XE, "xb": XB, "xus": XUS, "xui": XD, "xd": XD, "dolq": XDOLQ}  # token -> state
_IDENT_START = re.compile(rb"[A-Za-z\x80-\xff_]")
_STD_NAME = re.compile(rb"standard_conforming_strings", re.I)
_XC_STOP = re.compile(rb"/\*|\*/")
_XE_STOP = re.compile(rb"\\[\s\S]|'")
_HORIZ = re.compile(rb"(?:[ \t\f]|--[^\n\r]*)*")
_SPECIAL = re.compile(rb"(?:[ \t\n\r\f]+|--[^\n\r]*[\n\r])*")
_META = re.compile(rb"\\[^\s\\]*")
_RESTRICT_LINE = re.compile(rb"\\(?:un)?restrict [A-Za-z0-9]+[ \t\r]*\n?")
_SETTINGS = [[word] for word in SETTINGS_WORDS]
MAX_SETTING = 1 << 16
_DATA_ENDS = (b"\n\\.\n", b"\n\\.\r\n")


class PsqlScript:
    """A script followed chunk by chunk through psql's lexer; ``feed`` returns what psql may
    be given (the same bytes, pg_dump's restrict lines blanked) and raises ScriptProblem at
    the first thing that is not SQL; ``close`` ends it. Memory: one line at a time (a COPY
    data block is skimmed, not split into lines)."""

    def __init__(self) -> None:
        self._pending = b""
        self.line = 0                  # lines read so far
        self._state = INITIAL
        self._before_stop = INITIAL    # the string state XQS returns to on a continuation
        self._xqs_newline = False
        self._xc_depth = 0
        self._tag = b""                # the open dollar quote's delimiter
        # standard_conforming_strings as psql sees it, None while unknown: psql starts with
        # the server's setting, which the script does not say until it sets it (pg_dump does).
        self._std: bool | None = None
        self._next_std: bool | None = None
        self._paren = 0
        self._begin = 0                # psql's BEGIN … END depth in CREATE FUNCTION/PROCEDURE bodies
        self._idents = 0
        self._first = [b"", b"", b"", b""]
        self._copy = 0                 # progress through ``COPY name [(cols)] FROM stdin``
        self._head: list[bytes] = []   # the statement's first words
        self._start = 0                # where the statement's text begins on the current line
        self._text = bytearray()       # a SET/RESET/DISCARD statement's text from earlier lines
        self._copies = 0               # COPY … FROM stdin statements whose data comes next
        self._data = False
        self._at_line_start = True

    def feed(self, chunk: bytes) -> bytes:
        buf, pos, out = self._pending + chunk, 0, []
        while pos < len(buf):
            if self._data:
                end, finished = self._data_end(buf, pos)
                out.append(buf[pos:end])
                self.line += buf.count(b"\n", pos, end)
                pos = end
                if not finished:
                    break  # the rest waits for more bytes
                continue
            newline = buf.find(b"\n", pos)
            if newline < 0:
                break
            out.append(self._sql_line(buf[pos:newline + 1]))
            pos = newline + 1
        self._pending = buf[pos:]
        return b"".join(out)

    def close(self) -> bytes:
        """The rest of the script; raises ScriptProblem if it ends where psql would go on reading
        (what dbops writes after it would be read as part of it)."""
        rest, self._pending = self._pending, b""
        if self._data and self._at_line_start and rest.rstrip(b"\r") == b"\\.":
            self._done_with_data()
        elif rest and not self._data:
            rest = self._sql_line(rest)
        if self._data or self._copies:
            raise ScriptProblem(self.line, "the script ends inside the data of a COPY … FROM stdin: it is cut short")
        if self._state not in (INITIAL, XQS):
            what = {XC: "a /* comment */", XDOLQ: "a $$-quoted body", XD: 'a "quoted" name'}.get(self._state,
                                                                                              "a quoted string")
            raise ScriptProblem(self.line, f"the script ends inside {what}: it is cut short")
        return rest

    # --- COPY data ---

    def _data_end(self, buf: bytes, pos: int) -> tuple[int, bool]:
        """How far the data goes in ``buf`` from ``pos``, and whether it ended there: past the
        ``\\.`` line that ends it, or up to what must wait for more bytes."""
        if self._at_line_start:
            for end in (b"\\.\n", b"\\.\r\n"):
                if buf.startswith(end, pos):
                    return self._done_with_data(pos + len(end)), True
        found = [i for i in (buf.find(end, pos) for end in _DATA_ENDS) if i >= 0]
        if found:
            first = min(found)
            return self._done_with_data(first + (4 if buf.startswith(_DATA_ENDS[0], first) else 5)), True
        # Keep back a short last line: it may be the start of the \. line.
        last = buf.rfind(b"\n", pos)
        tail = last + 1 if last >= 0 else pos
        if len(buf) - tail < 4 and (last >= 0 or self._at_line_start):
            self._at_line_start = True
            return tail, False
        self._at_line_start = False
        return len(buf), False

    def _done_with_data(self, end: int = 0) -> int:
        self._copies -= 1
        self._data = self._copies > 0
        self._at_line_start = True
        return end

    # --- SQL ---

    def _sql_line(self, line: bytes) -> bytes:
        self.line += 1
        self._std = self._next_std  # psql reads the server's setting once per line
        if line[:1] == b"\\" and self._state in (INITIAL, XQS) and _RESTRICT_LINE.fullmatch(line):
            line = b"\n"  # pg_dump's own restricted block; dbops opens its own around the script
        if b"\0" in line:
            raise ScriptProblem(self.line, "a NUL byte, where psql would cut the line short")
        if _STD_NAME.search(line):
            self._next_std = None  # unless a SET on this line says which (_statement_end)
        pos = self._start = 0
        while pos < len(line):
            pos = self._step(line, pos)
        if self._head[:1] in _SETTINGS:
            self._text += line[self._start:]
            if len(self._text) > MAX_SETTING:
                raise ScriptProblem(self.line, "a SET statement longer than any this reader follows")
        if self._copies:
            self._data = True
            self._at_line_start = True
        return line

    def _step(self, line: bytes, pos: int) -> int:
        state = self._state
        if state == INITIAL:
            return self._token(line, pos)
        if state == XC:
            found = _XC_STOP.search(line, pos)
            if found is None:
                return len(line)
            if found[0] == b"/*":
                self._xc_depth += 1
            elif self._xc_depth:
                self._xc_depth -= 1
            else:
                self._state = INITIAL
            return found.end()
        if state in (XQ, XUS, XB):
            quote = line.find(b"'", pos)
            if quote < 0:
                return len(line)
            if state == XQ and self._std is None and line[quote - 1:quote] == b"\\":
                raise ScriptProblem(self.line, "a quoted string with \\' before the script sets "
                                               "standard_conforming_strings: psql's reading depends on the server")
            if state != XB and line[quote + 1:quote + 2] == b"'":
                return quote + 2
            return self._close_quote(state, quote + 1)
        if state == XE:
            while (found := _XE_STOP.search(line, pos)) is not None:
                if found[0] != b"'":
                    pos = found.end()
                elif line[found.end():found.end() + 1] == b"'":
                    pos = found.end() + 1
                else:
                    return self._close_quote(XE, found.end())
            return len(line)
        if state == XD:
            quote = line.find(b'"', pos)
            if quote < 0:
                return len(line)
            if line[quote + 1:quote + 2] == b'"':
                return quote + 2
            self._state = INITIAL
            return quote + 1
        if state == XDOLQ:
            end = line.find(self._tag, pos)
            if end < 0:
                return len(line)
            self._state = INITIAL
            return end + len(self._tag)
        return self._quote_stop(line, pos)

    def _close_quote(self, state: str, pos: int) -> int:
        self._state, self._before_stop, self._xqs_newline = XQS, state, False
        return pos

    def _quote_stop(self, line: bytes, pos: int) -> int:
        """After a closing quote: whitespace with a newline, then a quote, continue the string."""
        at = pos
        if not self._xqs_newline:
            at = _HORIZ.match(line, at).end()
            if at == len(line):
                return at
            if line[at:at + 1] not in (b"\n", b"\r"):
                self._state = INITIAL
                return pos
            self._xqs_newline = True
            at += 1
        at = _SPECIAL.match(line, at).end()
        if at == len(line):
            return at
        if line[at:at + 1] == b"'":
            self._state = self._before_stop
            return at + 1
        self._state = INITIAL
        return pos

    def _token(self, line: bytes, pos: int) -> int:
        if self._words_done():
            quiet = (_QUIET_STD if self._std else _QUIET).match(line, pos)
            if quiet is not None:
                if b"(" in quiet[0] or b")" in quiet[0]:
                    for paren in _PARENS_OUTSIDE_STRINGS.finditer(quiet[0]):
                        if paren[1] == b"(":
                            self._paren += 1
                        elif paren[1] == b")" and self._paren:
                            self._paren -= 1
                return quiet.end()
        match = _TOKEN.match(line, pos)
        kind, text, end = match.lastgroup, match[0], match.end()
        if kind in ("space", "comment"):
            return end
        if kind == "backslash":
            command = _META.match(line, pos)[0].decode("utf-8", "replace")
            shown = line[pos:].rstrip(b"\r\n").decode("utf-8", "replace")
            shown = shown if len(shown) <= 80 else shown[:79] + "…"
            raise ScriptProblem(self.line, f"`{redact(shown)}` is a psql meta-command ({command}), and a "
                                           "restore runs SQL only")
        if not self._head:
            self._start = pos
        if kind == "number" and _IDENT_START.match(line, end):
            word = line[pos:end + 8].split()[0].decode("utf-8", "replace")
            raise ScriptProblem(self.line, f"`{word}` runs a number into a word, which psql versions split "
                                           "differently")
        if kind in _OPENS:
            self._state = _OPENS[kind]
            self._xc_depth, self._tag = 0, text
            end = pos + 2 if kind == "xc" else end
        elif kind == "xq":
            self._state = XE if self._std is False else XQ
        elif kind == "ident":
            self._identifier(text.lower())
        elif kind == "open":
            self._paren += 1
        elif kind == "close" and self._paren:
            self._paren -= 1
        if kind != "xc":
            self._word(kind, text.lower())
        if kind == "semi" and not self._paren and not self._begin:
            self._statement_end(line, end)
        return end

    def _words_done(self) -> bool:
        """Whether the statement's words can no longer change how psql reads the rest of it."""
        return (self._copy < 0 or self._copy == 6) and self._head[:1] not in _SETTINGS and (
            self._first[0] != b"c" or self._idents >= 4 and not self._in_routine())

    def _in_routine(self) -> bool:
        first = self._first
        return first[0] == b"c" and (first[1] in (b"f", b"p") or first[1:3] == [b"o", b"r"] and first[3] in (b"f", b"p"))

    def _identifier(self, word: bytes) -> None:
        """psql's heuristic for CREATE [OR REPLACE] FUNCTION|PROCEDURE … BEGIN ATOMIC … END:
        semicolons inside such a body do not end the statement."""
        if self._idents == 0:
            self._first = [b"", b"", b"", b""]
        if word in (b"create", b"function", b"procedure", b"or", b"replace") and self._idents < 4:
            self._first[self._idents] = word[:1]
        self._idents += 1
        if self._in_routine() and self._paren == 0:
            if word == b"begin":
                self._begin += 1
            elif word == b"case" and self._begin:
                self._begin += 1
            elif word == b"end" and self._begin:
                self._begin -= 1

    def _word(self, kind: str, text: bytes) -> None:
        """Follow the statement's first words, and whether it is ``COPY name [(…)] FROM stdin``."""
        if len(self._head) < 3:
            self._head.append(text if kind == "ident" else kind.encode())
        step = self._copy
        if step == 0:
            step = 1 if text == b"copy" else -1
        elif step == 1:
            step = 2 if kind in ("ident", "xd", "xui") else -1
        elif step == 2:
            step = {b".": 1, b"(": 3, b"from": 4}.get(text if kind in ("ident", "open", "other") else b"", -1)
        elif step == 3:
            step = 5 if kind == "close" and self._paren == 0 else 3
        elif step == 5:
            step = 4 if text == b"from" else -1
        elif step == 4:
            step = 6 if text == b"stdin" else -1
        self._copy = step

    def _statement_end(self, line: bytes, end: int) -> None:
        if self._copy == 6:
            self._copies += 1
        if self._head[:1] in _SETTINGS:
            try:
                self._next_std = standard_strings_after(bytes(self._text + line[self._start:end]).strip(),
                                                        self._next_std)
            except Unfollowable as err:
                raise ScriptProblem(self.line, str(err)) from None
        self._idents, self._copy, self._head, self._text = 0, 0, [], bytearray()


def sql_only(chunks: Iterable[bytes], failures: list[str]) -> Iterator[bytes]:
    """``chunks`` as psql may be given them; at the first thing that is not SQL, the reason
    goes to ``failures`` and nothing more is given."""
    script = PsqlScript()
    try:
        for chunk in chunks:
            if out := script.feed(chunk):
                yield out
        if out := script.close():
            yield out
    except ScriptProblem as problem:
        failures.append(str(problem))
