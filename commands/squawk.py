"""squawk (squawk-cli's binary) as dbops' SqlLinter: one run per file, its JSON reporter read
into Findings.

Never a shell: the binary's path and the file's path are the only arguments besides fixed
options, and the file comes from the migrations directory. A missing binary, a crash or
output that is not squawk's JSON becomes one finding saying so, never an exception.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from commands.results import Finding

TIMEOUT_SECONDS = 60
# pglast reports syntax errors with dbops' own wording (rule "syntax-error").
_SKIPPED = {"syntax-error"}
_LEVELS = {"error": "error", "warning": "warning"}


def find_squawk() -> Path | None:
    """The squawk binary next to this Python (squawk-cli installs it among the venv's
    scripts, which need not be on PATH), else the one on PATH."""
    beside = Path(sys.executable).parent / "squawk"
    if beside.is_file():
        return beside
    found = shutil.which("squawk")
    return Path(found) if found else None


class SquawkLinter:
    def __init__(self, binary: Path | None = None) -> None:
        self.binary = binary

    def lint(self, path: Path, *, in_transaction: bool, exclude: tuple[str, ...] = ()) -> list[Finding]:
        filename = path.name
        binary = self.binary or find_squawk()
        if binary is None:
            return [_trouble(filename, "squawk was not run: its binary was not found (install squawk-cli).")]
        args = [str(binary), "--reporter", "json",
                "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"]
        if exclude:
            args.append("--exclude=" + ",".join(exclude))
        try:
            done = subprocess.run([*args, "--", str(path)], capture_output=True, text=True, timeout=TIMEOUT_SECONDS,
                                  check=False)
        except OSError as err:
            return [_trouble(filename, f"squawk could not be started: {err.strerror or err}.")]
        except subprocess.TimeoutExpired:
            return [_trouble(filename, f"squawk did not finish within {TIMEOUT_SECONDS} s.")]
        try:
            reported = json.loads(done.stdout) if done.stdout.strip() else []
            if done.returncode not in (0, 1) or not isinstance(reported, list):
                raise ValueError
            return [_finding(filename, item) for item in reported if item.get("rule_name") not in _SKIPPED]
        except (ValueError, AttributeError, TypeError):
            said = " ".join(done.stderr.split())[:300] or f"exit status {done.returncode}"
            return [_trouble(filename, f"squawk failed: {said}")]


def _finding(filename: str, item: dict) -> Finding:
    line = item.get("line")
    help_ = item.get("help")
    return Finding(rule=str(item.get("rule_name") or "squawk"),
                   severity=_LEVELS.get(str(item.get("level", "")).lower(), "info"),
                   filename=filename,
                   line=line + 1 if isinstance(line, int) else None,  # squawk counts lines from 0
                   message=str(item.get("message", "")) + (f" {help_}" if help_ else ""), source="squawk")


def _trouble(filename: str, message: str) -> Finding:
    return Finding(rule="squawk-not-run", severity="warning", filename=filename, line=None, message=message,
                   source="squawk")
