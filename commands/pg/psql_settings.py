"""The settings a script can change that change how psql reads the rest of it.

psql lexes each line with two facts from the server: standard_conforming_strings (whether
a backslash in '…' escapes the quote after it) and the client encoding (in a client-only
encoding such as SJIS, a multibyte character can end in the byte of a backslash). A script
changes them with SET; ``commands.pg.psql_script`` follows those SETs through this module.
"""

from __future__ import annotations

import re

_SET = re.compile(rb"set\s+(?:session\s+|local\s+)?(standard_conforming_strings|client_encoding|names)"
                  rb"(?:\s*=\s*|\s+to\s+|\s+(?=['a-z0-9]))('[^'\\]*'|[a-z0-9_]+)\s*;", re.I)
_SET_NAME = re.compile(rb"set\s+(?:session\s+|local\s+)?([a-z_][a-z0-9_.]*)", re.I)
_RESETS = re.compile(rb"(?:reset\s+(?:all|standard_conforming_strings)|discard\s+all)\s*;", re.I)
_BOOLEAN = {b"on": True, b"true": True, b"yes": True, b"1": True, b"off": False, b"false": False, b"no": False,
            b"0": False}
# Client-only encodings (not pg_valid_server_encoding): psql reads their characters whole,
# a byte reader cannot tell a backslash from the second byte of one.
_UNSAFE_ENCODINGS = {b"sjis", b"shiftjis", b"mskanji", b"win932", b"windows932", b"shiftjis2004", b"big5",
                     b"win950", b"windows950", b"gbk", b"win936", b"windows936", b"uhc", b"win949",
                     b"windows949", b"gb18030", b"johab"}
SETTINGS_WORDS = (b"set", b"reset", b"discard")  # the first words of statements that may change them


class Unfollowable(ValueError):
    """The statement changes how psql reads what follows in a way no reader can follow."""


def standard_strings_after(statement: bytes, current: bool | None) -> bool | None:
    """standard_conforming_strings once ``statement`` (a SET, RESET or DISCARD, with its
    semicolon) has run: True or False, or None when the script no longer says which.
    Raises Unfollowable for a client encoding that hides backslashes, or one it cannot read."""
    found = _SET.fullmatch(statement)
    if found is None:
        named = _SET_NAME.match(statement)
        name = named[1].lower() if named else b""
        if name in (b"client_encoding", b"names"):
            raise Unfollowable(f"a SET {name.decode()} this reader cannot follow; write it as "
                               f"SET {name.decode()} = 'VALUE';")
        return None if name == b"standard_conforming_strings" or _RESETS.fullmatch(statement) else current
    name, value = found[1].lower(), found[2].strip(b"'").lower()
    if name == b"standard_conforming_strings":
        return _BOOLEAN.get(value)
    if re.sub(rb"[-_]", b"", value) in _UNSAFE_ENCODINGS:
        raise Unfollowable(f"client encoding {value.decode()} is one whose characters can end in a byte like a "
                           "backslash, so where psql's meta-commands are cannot be read")
    return current
