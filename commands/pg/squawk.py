"""squawk (squawk-cli's binary) as dbops' SqlLinter: its JSON reporter read into Findings.

Files are linted in batches (one run per transaction mode, at most BATCH files a run):
squawk starts in about 3 ms, so one run per file cost 3 s for a thousand pending files.

Never a shell: the binary's path and the files' paths are the only arguments besides fixed
options, and the files come from the migrations directory; its environment is the allow-list
of ``commands.process_env`` (no token or database URL of dbops reaches it). A missing binary,
a crash or output that is not squawk's JSON becomes one finding per file saying so, never an
exception; so does a file over MAX_BYTES, which squawk is not given.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from commands.process_env import base_env

if TYPE_CHECKING:  # loaded by a lint, not by every command the linter is given to
    from commands.lint.results import Finding

TIMEOUT_SECONDS = 60
BATCH = 200
# squawk holds a whole file's syntax tree, about 14 times the file's size: 724 MB and 6 s for
# a 50 MB seed-data file (bench/RESULTS.md). Its rules are about schema changes, which are
# never that large, so a larger file is left to dbops' own rules, and its findings say so.
MAX_BYTES = 4 * 1024 * 1024
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

    def lint(self, files: Sequence[tuple[Path, bool]], *, exclude: tuple[str, ...] = ()) -> list[list[Finding]]:
        found: list[list[Finding]] = [[] for _ in files]
        binary = self.binary or find_squawk()
        too_large = set()
        for i, (path, _) in enumerate(files):
            size = _size(path)
            if size is not None and size > MAX_BYTES:
                too_large.add(i)
                found[i] = [_too_large(path.name, size)]
        for in_transaction in (True, False):
            indexes = [i for i, (_, wrapped) in enumerate(files) if wrapped is in_transaction and i not in too_large]
            for start in range(0, len(indexes), BATCH):
                batch = indexes[start:start + BATCH]
                for i, findings in zip(batch, self._run(binary, [files[i][0] for i in batch], in_transaction,
                                                        exclude), strict=True):
                    found[i] = findings
        return found

    def _run(self, binary: Path | None, paths: list[Path], in_transaction: bool,
             exclude: tuple[str, ...]) -> list[list[Finding]]:
        """One squawk run over ``paths``: each file's findings, in order."""
        def trouble(message: str) -> list[list[Finding]]:
            return [[_trouble(path.name, message)] for path in paths]

        if binary is None:
            return trouble("squawk was not run: its binary was not found (install squawk-cli).")
        args = [str(binary), "--reporter", "json",
                "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction"]
        if exclude:
            args.append("--exclude=" + ",".join(exclude))
        try:
            done = subprocess.run([*args, "--", *map(str, paths)], capture_output=True, text=True,
                                  timeout=TIMEOUT_SECONDS, check=False, env=base_env())
        except OSError as err:
            return trouble(f"squawk could not be started: {err.strerror or err}.")
        except subprocess.TimeoutExpired:
            return trouble(f"squawk did not finish within {TIMEOUT_SECONDS} s.")
        by_path: dict[str, list[Finding]] = {str(path): [] for path in paths}
        try:
            reported = json.loads(done.stdout) if done.stdout.strip() else []
            if done.returncode not in (0, 1) or not isinstance(reported, list):
                raise ValueError
            for item in reported:
                if item.get("rule_name") not in _SKIPPED:
                    by_path[item["file"]].append(_finding(Path(item["file"]).name, item))
        except (ValueError, AttributeError, TypeError, KeyError):
            said = " ".join(done.stderr.split())[:300] or f"exit status {done.returncode}"
            return trouble(f"squawk failed: {said}")
        return [by_path[str(path)] for path in paths]


def _finding(filename: str, item: dict) -> Finding:
    from commands.lint.results import Finding
    line = item.get("line")
    help_ = item.get("help")
    return Finding(rule=str(item.get("rule_name") or "squawk"),
                   severity=_LEVELS.get(str(item.get("level", "")).lower(), "info"),
                   filename=filename,
                   line=line + 1 if isinstance(line, int) else None,  # squawk counts lines from 0
                   message=" ".join(_sentence(str(t)) for t in (item.get("message"), help_) if t), source="squawk")


def _sentence(text: str) -> str:
    """squawk's message and its help are often unpunctuated phrases: joined as they come they
    read as one ("…slow operations Configure a …")."""
    text = text.strip()
    return text if not text or text[-1] in ".!?:" else text + "."


def _size(path: Path) -> int | None:
    try:
        return path.stat().st_size
    except OSError:
        return None  # squawk's own run reports a file it cannot read


def _too_large(filename: str, size: int) -> Finding:
    from commands.lint.results import Finding
    return Finding(rule="squawk-not-run", severity="info", filename=filename, line=None,
                   message=f"squawk was not run on this file: it is {size / 1024 / 1024:,.1f} MB, over the "
                           f"{MAX_BYTES // 1024 // 1024} MB that squawk reads in reasonable time and memory. "
                           "dbops' own rules still checked it.", source="squawk")


def _trouble(filename: str, message: str) -> Finding:
    from commands.lint.results import Finding
    return Finding(rule="squawk-not-run", severity="warning", filename=filename, line=None, message=message,
                   source="squawk")
