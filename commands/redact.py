"""Masking of secrets before any text leaves the process (logs, Slack, terminals)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

# user:password@ in any URL-like string, and password=... in libpq keyword strings.
_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^@\s/]*)@")
_KEYWORD_PASSWORD = re.compile(r"(?i)\b(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{6,}")
MASK = "****"


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``****`` (the guide's sanitised form)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact(url)
    if parts.password is None:
        return redact(url)
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{userinfo}:{MASK}@{netloc[1]}"))


class Redactor:
    """Replaces known secret values and anything shaped like a secret.

    Known values (database passwords, tokens, signing secrets) are registered once at
    start-up; shapes (URL passwords, ``password=``, Slack tokens) are masked whether or not
    they were registered.
    """

    def __init__(self) -> None:
        self._secrets: set[str] = set()

    def register(self, *values: str | None) -> None:
        for value in values:
            if value and len(value) >= 4:
                self._secrets.add(value)

    def __call__(self, text: str) -> str:
        text = _URL_PASSWORD.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", text)
        text = _KEYWORD_PASSWORD.sub(lambda m: f"{m[1]}{MASK}", text)
        text = _SLACK_TOKEN.sub(MASK, text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


# The process-wide redactor: the config loader registers secrets, every surface masks with it.
redact = Redactor()
