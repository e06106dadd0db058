"""What a shell shows: every sample reply of ``tests/test_blocks.py`` as terminal text, pinned by golden files.

The CLI and the console print a result's Slack blocks as terminal text (``bot.terminal``), so
these files are what a shell user reads. ``DBOPS_UPDATE_GOLDEN=1`` rewrites them; read the diff
before committing it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bot.cli.shell import message_text, result_text
from tests.test_blocks import NOW, SAMPLES, migrate_failed, status_clean

GOLDEN = Path(__file__).parent / "golden" / "terminal"
ESCAPE = "\x1b["


def golden(name: str) -> str:
    path = GOLDEN / f"{name}.txt"
    assert path.exists(), f"no golden file {path.name}: run with DBOPS_UPDATE_GOLDEN=1"
    return path.read_text(encoding="utf-8").removesuffix("\n")


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_every_reply_as_terminal_text_matches_its_golden_file(name: str) -> None:
    text = message_text(SAMPLES[name]())
    if os.environ.get("DBOPS_UPDATE_GOLDEN") == "1":
        GOLDEN.mkdir(exist_ok=True)
        (GOLDEN / f"{name}.txt").write_text(text + "\n", encoding="utf-8")
    assert text == golden(name), f"{name}.txt changed: rerun with DBOPS_UPDATE_GOLDEN=1"
    assert ESCAPE not in text


def test_a_result_as_the_cli_prints_it_is_its_reply_as_terminal_text() -> None:
    text = result_text(migrate_failed(dirty=False), command="migrate up production", now=NOW)
    assert text == golden("migrate_failed_clean")
    assert "run `dbops migrate up production` again" in text and "/migrate" not in text


def test_ansi_styling_appears_only_when_asked_for() -> None:
    plain = result_text(status_clean(), command="migrate status production", now=NOW)
    styled = result_text(status_clean(), command="migrate status production", now=NOW, ansi=True)
    assert ESCAPE not in plain and ESCAPE in styled
    assert styled.replace("\x1b[1;4m", "").replace("\x1b[2m", "").replace("\x1b[0m", "") \
        .startswith(plain.splitlines()[0])


def test_a_result_piped_from_the_cli_has_no_escape_codes(tmp_path: Path) -> None:
    """stdout is a pipe, not a terminal: a script or a log reads plain text."""
    env = {**os.environ, "DBOPS_DEMO_DIR": str(tmp_path / "demo")}
    env.pop("DBOPS_CONFIG", None)
    env.pop("NO_COLOR", None)
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "migrate", "status"], env=env,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("demo: no version (nothing applied)\n") and ESCAPE not in done.stdout
