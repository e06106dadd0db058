"""Masking of secrets before any text leaves the process (logs, Slack, terminals).

A libpq connection string carries a password in three places, and each is masked by shape:

- a URL's userinfo, ``postgresql://user:PASSWORD@host/db`` (libpq ends it at the first ``@``,
  Python's ``urlsplit`` at the last: everything up to the last ``@`` of the authority goes);
- a URL's query, ``?password=PASSWORD`` or ``&sslpassword=…``, whose name libpq
  percent-decodes first, so ``?pass%77ord=…`` is a password too;
- a keyword/value string, ``password=PASSWORD`` or ``password = 'with spaces'``.

Values registered at start-up (the configuration's passwords, decoded and as written; Slack's
tokens) are masked wherever they appear, in whatever shape.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)(?P<user>[^:/@\s]*):(?P<pw>[^\s/]*)@")
_QUERY_PARAMETER = re.compile(r"(?P<lead>[?&])(?P<name>[^=&#?\s]+)=(?P<value>[^&\s]*)")
# Not after ? or &: that is a URL's query, masked above up to its & rather than to a space.
_KEYWORD_PASSWORD = re.compile(r"(?i)(?<![\w?&%])((?:ssl)?password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)")
_SLACK_TOKEN = re.compile(r"\bx(?:ox[abposr]|app)-[A-Za-z0-9-]{6,}")
_URL_PARAMETER = re.compile(r"[?&](?P<name>[^=&#?]+)=(?P<value>[^&]*)")  # in a URL alone: a space is a character
_AUTHORITY = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://(?P<authority>[^/]*)")
PASSWORD_PARAMETERS = ("password", "sslpassword")  # libpq's; "passfile" names a file, not a secret
MASK = "****"


def _is_password_parameter(name: str) -> bool:
    return unquote(name).lower() in PASSWORD_PARAMETERS


def url_passwords(url: str) -> list[str]:
    """Every password ``url`` gives libpq (userinfo and query), each as written and decoded:
    the values to register, so that they are masked wherever else they turn up."""
    found: list[str] = []
    authority = _AUTHORITY.match(url)
    if authority and "@" in authority["authority"]:
        # libpq's reading (the first @ ends the password) and urlsplit's (the last one does).
        first, last = authority["authority"].split("@", 1)[0], authority["authority"].rsplit("@", 1)[0]
        found += [credentials.split(":", 1)[1] for credentials in (first, last) if ":" in credentials]
    found += [m["value"] for m in _URL_PARAMETER.finditer(url) if _is_password_parameter(m["name"])]
    return list(dict.fromkeys(form for value in found for form in (value, unquote(value)) if form))


def mask_url(url: str) -> str:
    """Return ``url`` with every password in it replaced by ``****`` (the guide's sanitised
    form, ``postgresql://user:****@host/db``)."""
    return redact(url)


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
        text = _QUERY_PARAMETER.sub(lambda m: f"{m['lead']}{m['name']}={MASK}" if _is_password_parameter(m["name"])
                                    else m[0], text)
        text = _KEYWORD_PASSWORD.sub(lambda m: f"{m[1]}{MASK}", text)
        text = _SLACK_TOKEN.sub(MASK, text)
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, MASK)
        return text


# The process-wide redactor: the config loader registers secrets, every surface masks with it.
redact = Redactor()
