"""The checks of single configuration values: each turns a TOML value into a setting or raises ValueError.

``commands.config`` applies them key by key and names the key and file in the error it reports."""

from __future__ import annotations

import math
import re
from typing import Any, Callable
from urllib.parse import SplitResult, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from commands.redact import redact, url_passwords

# Operations that may be listed in require_approval.
APPROVABLE = ("up", "down", "goto", "force", "restore", "cleanup", "lock-release", "dry-run", "unblock",
              "reimport")


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a string")
    return value


def _nonempty_str(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("a non-empty string")
    return value


def _str_list(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ValueError("a list of non-empty strings")
    return tuple(value)


def _seconds(least: float, most: float) -> Callable[[Any], float]:
    """A finite number of seconds from ``least`` to ``most``: inf, nan or 1e10 pass a plain
    "greater than 0" and then break every wait and timeout built from them."""
    def check(value: Any) -> float:
        if (isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value)
                or not least <= value <= most):
            raise ValueError(f"a number of seconds from {least:g} to {most:g}")
        return float(value)
    return check


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("true or false")
    return value


def _preserve_columns(value: Any) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """[environments.X.preserve]: each table (``name`` or ``schema.name``) with the list of its
    insert/update time columns."""
    shape = 'a table of table names, each a list of column names (orders = ["updated_at"])'
    if not isinstance(value, dict):
        raise ValueError(shape)
    checked = []
    for table, columns in value.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}(\.[A-Za-z_][A-Za-z0-9_$]{0,62})?", table):
            raise ValueError(f"{shape}; {table!r} is not a table name")
        if not isinstance(columns, list) or not columns or not all(isinstance(c, str) and c for c in columns):
            raise ValueError(f"{shape}; {table} has {columns!r}")
        checked.append((table, tuple(columns)))
    return tuple(checked)


def _approvals(value: Any) -> tuple[str, ...]:
    items = _str_list(value)
    unknown = [v for v in items if v not in APPROVABLE]
    if unknown:
        raise ValueError(f"a list of operations from {', '.join(APPROVABLE)} (unknown: {', '.join(unknown)})")
    return items


_CRON_FIELDS = (("minute", 0, 59), ("hour", 0, 23), ("day of month", 1, 31), ("month", 1, 12), ("day of week", 0, 7))
_CRON_ITEM = re.compile(r"(\*|(\d{1,2})(?:-(\d{1,2}))?)(?:/(\d{1,2}))?")
def _cron(value: Any) -> str:
    """A standard five-field crontab line (numbers, ranges, lists, steps; no names)."""
    shape = 'a five-field cron expression such as "0 3 * * *"'
    if not isinstance(value, str) or len(value.split()) != 5:
        raise ValueError(shape)
    for field_text, (label, low, high) in zip(value.split(), _CRON_FIELDS):
        for item in field_text.split(","):
            match = _CRON_ITEM.fullmatch(item)
            if match is None:
                raise ValueError(f"{shape}; {item!r} is not a valid {label}")
            numbers = [int(n) for n in match.group(2, 3) if n is not None]
            if any(not low <= n <= high for n in numbers) or (len(numbers) == 2 and numbers[0] > numbers[1]):
                raise ValueError(f"{shape}; the {label} must be within {low}-{high}")
            if match[4] is not None and int(match[4]) == 0:
                raise ValueError(f"{shape}; a step of 0 never fires")
    return value


def _timezone(value: Any) -> str:
    """An IANA time zone name, such as "UTC" or "Europe/Berlin"."""
    try:
        ZoneInfo(_nonempty_str(value))
    except (ValueError, ZoneInfoNotFoundError):
        raise ValueError('an IANA time zone name such as "UTC" or "Europe/Berlin"') from None
    return value


_ACCOUNT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}\$?")  # an account name, or a uid without one
_SLACK_USER = re.compile(r"[UW][A-Z0-9]{2,30}")
def _cli_users(value: Any) -> dict[str, str]:
    """Operating-system account names to the Slack user ids their shell users act as."""
    shape = 'a table of operating-system account names to Slack user ids, such as { "alice" = "U0ALICE" }'
    if not isinstance(value, dict):
        raise ValueError(shape)
    for account, user in value.items():
        if not _ACCOUNT.fullmatch(account):
            raise ValueError(f"{shape}; {account!r} is not an account name")
        if not isinstance(user, str) or not _SLACK_USER.fullmatch(user):
            raise ValueError(f"{shape}; {account!r} maps to {user!r}, which is not a Slack user id (U… or W…)")
    return dict(value)


def _choice(*options: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if value not in options:
            raise ValueError("one of " + ", ".join(f'"{o}"' for o in options))
        return value
    return check


def _int_range(low: int, high: int) -> Callable[[Any], int]:
    """A whole number from ``low`` to ``high``: every count and span has a ceiling, so no value
    overflows a timedelta or a PostgreSQL setting later."""
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise ValueError(f"a whole number from {low} to {high}")
        return value
    return check


def _jobs(most: int) -> Callable[[Any], int | None]:
    """``"auto"`` (None: sized to the server at each restore) or a whole number from 1 to ``most``."""
    whole = _int_range(1, most)

    def check(value: Any) -> int | None:
        if value == "auto":
            return None
        try:
            return whole(value)
        except ValueError:
            raise ValueError(f'"auto" or a whole number from 1 to {most}') from None
    return check


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(us|ms|s|min|h|d)?")
_SPACED_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s+(us|ms|s|min|h|d)")
_MS_PER_UNIT = {"us": 0.001, "ms": 1, "s": 1000, "min": 60_000, "h": 3_600_000, "d": 86_400_000}
def _pg_duration(most: str) -> Callable[[Any], str]:
    """A time setting as PostgreSQL reads one (lock_timeout, statement_timeout): a number with
    an optional unit (us, ms, s, min, h, d; none: ms), "0" for no limit, at most ``most``.

    Returned with no space in it: the value travels in PGOPTIONS (``-c lock_timeout=10s``),
    which splits on spaces, so "10 s", which PostgreSQL itself accepts, would break every
    restore. A fraction becomes whole milliseconds, as PostgreSQL rounds it."""
    amount, unit = _DURATION.fullmatch(most).groups()
    ceiling = float(amount) * _MS_PER_UNIT[unit]
    shape = f'a PostgreSQL duration such as "10s", "500ms", "1min" or "0" (no limit), at most "{most}"'

    def check(value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            value = f"{value}ms"
        if not isinstance(value, str):
            raise ValueError(shape)
        text = value.strip()
        match = _DURATION.fullmatch(text)
        if match is None:
            spaced = _SPACED_DURATION.fullmatch(text)
            raise ValueError(shape + (f'; write "{spaced[1]}{spaced[2]}", without the space' if spaced else ""))
        ms = float(match[1]) * _MS_PER_UNIT[match[2] or "ms"]
        if ms > ceiling:
            raise ValueError(shape)
        if 0 < ms < 1:
            raise ValueError(f'{shape}; "{text}" is under 1ms, which PostgreSQL rounds to 0: no limit at all')
        return text if "." not in match[1] else f"{round(ms)}ms"
    return check


def duration_seconds(text: str) -> float:
    """A duration that ``_pg_duration`` accepted, in seconds (0: no limit)."""
    match = _DURATION.fullmatch(text)
    return float(match[1]) * _MS_PER_UNIT[match[2] or "ms"] / 1000


def _postgres_url(value: Any) -> str:
    url = _nonempty_str(value)
    try:
        parts = urlsplit(url)
        parts.port  # raises ValueError for a port that is not a number
    except ValueError:
        raise ValueError("a postgres:// or postgresql:// URL with a numeric port") from None
    if parts.scheme not in ("postgres", "postgresql"):
        raise ValueError("a postgres:// or postgresql:// URL")
    return url


def _register_password(url: str) -> None:
    """Mask every password libpq would take from ``url`` (userinfo, ``?password=``,
    ``?sslpassword=``, however percent-encoded), both as written and as decoded."""
    redact.register(*url_passwords(url))


def _identifier(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_$]{0,62}", value):
        raise ValueError("a plain SQL identifier (letters, digits, _ and $; at most 63 characters)")
    return value


def _rule_names(value: Any) -> tuple[str, ...]:
    """Lint rule names (dbops' or squawk's, e.g. "rename-column", "adding-required-field")."""
    items = _str_list(value)
    if not all(re.fullmatch(r"[a-z0-9][a-z0-9-]{0,79}", v) for v in items):
        raise ValueError('a list of lint rule names such as "rename-column"')
    return items


_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_PREFIX = re.compile(r"[A-Za-z0-9!_.*'()/-]{0,900}")


def _snapshot_url(value: Any) -> str:
    """``s3://BUCKET/PREFIX`` (the prefix may be empty). Credentials never go here: they come
    the standard AWS way (environment variables, config files, an instance role)."""
    url = _nonempty_str(value)
    parts = urlsplit(url)
    if parts.scheme != "s3" or not _BUCKET.fullmatch(parts.netloc or "") or parts.query or parts.fragment:
        raise ValueError("s3://BUCKET/PREFIX (a bucket name, then an optional key prefix; no credentials)")
    prefix = parts.path.strip("/")
    if not _PREFIX.fullmatch(prefix) or "//" in prefix or any(p in (".", "..") for p in prefix.split("/")):
        raise ValueError("s3://BUCKET/PREFIX with a prefix of letters, digits and !_.*'()/- (no '..', no '//')")
    return f"s3://{parts.netloc}/{prefix}" if prefix else f"s3://{parts.netloc}"


def _http_url(value: Any) -> tuple[str, SplitResult]:
    """An http(s) URL with a host and a valid port, and its parts."""
    url = _nonempty_str(value)
    try:
        parts = urlsplit(url)
        parts.port
    except ValueError:
        raise ValueError("an http:// or https:// URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("an http:// or https:// URL")
    return url, parts


def _endpoint_url(value: Any) -> str:
    """An http(s) URL of an S3-compatible endpoint, without user or password in it."""
    url, parts = _http_url(value)
    if parts.username or parts.password:
        raise ValueError("a URL without credentials (they come from the AWS environment variables or config files)")
    return url.rstrip("/")


_HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110's token


def _hook_url(value: Any) -> str:
    """An http(s) URL of an application hook (a deployment system's endpoint)."""
    return _http_url(value)[0]


def _hook_headers(value: Any) -> tuple[tuple[str, str], ...]:
    """A table of HTTP header names to values (``${VAR}`` takes a value from the environment)."""
    if not isinstance(value, dict):
        raise ValueError('a table of header names to values, e.g. { Authorization = "Bearer ${DEPLOY_TOKEN}" }')
    for name, header in value.items():
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"a table of HTTP header names to values ({name!r} is not a header name)")
        if not isinstance(header, str) or "\r" in header or "\n" in header or not header.strip():
            raise ValueError(f"a table of header names to one-line, non-empty strings (the value of {name} is not)")
    return tuple(value.items())


def hook_header_variables(raw_headers: Any, environ: dict[str, str]) -> tuple[tuple[str, str, bool], ...]:
    """(header, variable, whether the variable has a value) for each ``${VAR}`` a hook's header
    takes from the environment: names only, for ``/dbops doctor`` (an empty variable sends a
    header such as "Bearer " that no deployment system accepts)."""
    if not isinstance(raw_headers, dict):
        return ()
    return tuple((header, name, bool(environ.get(name)))
                 for header, raw in raw_headers.items() if isinstance(raw, str)
                 for name in dict.fromkeys(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", raw)))


CREDENTIAL_HEADER = re.compile(r"auth|token|secret|key|passw|cookie|session|signature", re.IGNORECASE)


def register_hook_secrets(values: dict[str, Any], raw_headers: Any, environ: dict[str, str]) -> None:
    """Mask what an environment's hooks carry: the value of each header that takes a variable
    from the environment or whose name says it is a credential (``CREDENTIAL_HEADER``), the
    variables' own values (a token alone may turn up in an answer) and the URLs' passwords. A
    plain header written in the file (``X-Deploy-Env = "prod"``) is not masked: every "prod"
    in every message would be. (A URL's query is never shown: ``commands.app.hooks.shown_url``
    cuts it.)"""
    raw = raw_headers if isinstance(raw_headers, dict) else {}
    for name, header in values.get("app_hook_headers", ()):
        taken = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", raw.get(name) or "")
        if taken or CREDENTIAL_HEADER.search(name):
            redact.register(header)
        redact.register(*(environ.get(variable) for variable in taken))
    for key in ("app_pause_url", "app_resume_url"):
        if key in values:
            redact.register(*url_passwords(values[key]))
