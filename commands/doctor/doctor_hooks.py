"""``/dbops doctor``'s line about the application's pause and resume hooks (``commands.app.hooks``).

A doctor must never stop production, so the hooks are not called: their URLs are checked for
form, their servers for a TCP connection (and a verified TLS handshake for https) over which no
request is sent. Besides: both hooks set (one alone leaves the application running during the
change, or stopped after it), each variable the headers take from the environment set to a value
(names only, never values), no credential written into the configuration itself or sent over
plain http, and ``health_url`` set so the resume is awaited on something.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from commands.app.hooks import configured, shown_url
from commands.config import EnvironmentSettings
from commands.config_values import CREDENTIAL_HEADER
from commands.privileges import listed
from commands.doctor.results import DoctorCheck, Verdict

NAME = "app hooks"
CONNECT_SECONDS = 5.0  # at most, per hook: the doctor answers in seconds even if a hook's timeout is long
NOT_CALLED = "not called: a doctor never pauses the application"


def _loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host.lower() == "localhost"


def hooks_check(env: EnvironmentSettings) -> DoctorCheck:
    if not configured(env):
        return DoctorCheck(name=NAME, verdict=Verdict.SKIP,
                           detail="not configured (app_pause_url, app_resume_url): a restore or rollback does not stop "
                                  "the application; stop its writes by hand")
    key = f"under [environments.{env.name}]"
    failed: list[str] = []
    warned: list[str] = []
    fixes: list[str] = []
    hooks = [(hook, url) for hook, url in (("pause", env.app_pause_url), ("resume", env.app_resume_url)) if url]
    if env.app_pause_url is None:
        warned.append("no app_pause_url: the application keeps writing while a restore or rollback changes the "
                      "database")
        fixes.append(f"Set app_pause_url {key}, or stop the application's writes by hand before each restore.")
    if env.app_resume_url is None:
        warned.append("no app_resume_url: after a restore or rollback the application stays stopped until someone "
                      "starts it")
        fixes.append(f"Set app_resume_url {key}, or start the application by hand after each restore.")
    for hook, url in hooks:
        problem = _reach(url, env)
        if problem is not None:
            failed.append(f"the {hook} hook {env.app_hook_method} {shown_url(url)}: {problem}")
            fixes.append(f"Check app_{hook}_url {key} and that dbops' host may connect to it"
                         + (": until it does, every restore and rollback is refused before it changes anything."
                            if hook == "pause" else "."))
    headers = dict(env.app_hook_headers)
    for header, variable, has_value in env.app_hook_header_variables:
        if not has_value:
            failed.append(f"the variable {variable} (for the {header} header) is empty in dbops' environment")
            fixes.append(f"Set {variable} in the environment dbops runs in, then restart dbops.")
    from_environment = {header for header, _, _ in env.app_hook_header_variables}
    written = [h for h in headers if h not in from_environment and CREDENTIAL_HEADER.search(h)]
    if written:
        warned.append(f"{listed(written)} written into the configuration file, not taken from the environment")
        fixes.append('Take credentials from the environment: { Authorization = "Bearer ${DEPLOY_TOKEN}" }.')
    plain = sorted({urlsplit(url).hostname or "" for _, url in hooks
                    if urlsplit(url).scheme.lower() == "http" and not _loopback(urlsplit(url).hostname or "")})
    if headers and plain:
        warned.append(f"the headers (a token) go over plain http to {listed(plain)}")
        fixes.append("Use https:// for the hooks.")
    if env.health_url is None and env.app_resume_url:
        warned.append("no health_url: after the resume hook nothing is awaited, so a restore reports done without "
                      "knowing whether the application came back")
        fixes.append(f"Set health_url {key} to the application's health check.")
    verdict = Verdict.FAIL if failed else Verdict.WARN if warned else Verdict.PASS
    return DoctorCheck(name=NAME, verdict=verdict, detail="; ".join(failed + warned) + ("; " if failed + warned else "")
                       + _summary(env, hooks), fix=" ".join(fixes) or None)


def _reach(url: str, env: EnvironmentSettings) -> str | None:
    from commands.app.health import connects  # sockets and TLS: only when a doctor runs
    return connects(url, timeout=min(env.app_hook_timeout_seconds, CONNECT_SECONDS))


def _summary(env: EnvironmentSettings, hooks: list[tuple[str, str]]) -> str:
    """What is configured, as people may see it (URLs shown, header names only)."""
    said = " and ".join(f"{hook} {env.app_hook_method} {shown_url(url)}" for hook, url in hooks)
    said += f" ({NOT_CALLED}; it only opens a connection, sending no request)"
    if env.app_hook_headers:
        sources = {h: v for h, v, _ in env.app_hook_header_variables}
        said += "; headers " + listed([f"{h} (from ${{{sources[h]}}})" if h in sources else h
                                       for h, _ in env.app_hook_headers])
    if env.health_url:
        said += f"; health_url awaited up to {env.app_health_wait_seconds:,} s after the resume"
    return said
