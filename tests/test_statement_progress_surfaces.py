"""A held index build's progress as each surface shows it while it runs: the channel's progress
message (through the fake Slack), the console's progress lines and the CLI's on a terminal; and a
failed CONCURRENTLY build's INVALID index in the channel's result and the dirty alert.

The build is held half-way by the advisory lock its index expression waits for
(tests/test_statement_progress.py), and released once the surface has shown it: no sleep."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bot.console.session import Console, script
from commands.results import Outcome
from tests.conftest import wait_for
from tests.slack_bed import serving, text_of
from tests.slack_fake import FakeSlack
from tests.test_statement_progress import DUPLICATES, FILES, SLOW, holding

PERCENT = re.compile(r"building index: scanning table, [\d,]+ of [\d,]+ blocks \((\d+)%\)")


def half_way(text: str) -> bool:
    found = PERCENT.search(text)
    return found is not None and 0 < int(found[1]) < 100


@pytest.fixture
def bed(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"], operators=["U0ALICE"], **SLOW)
    assert bed.run("migrate up 1", user="U0ALICE").outcome is Outcome.DONE
    return bed


def test_the_channels_progress_message_shows_the_builds_phase_and_percent(bed, control_url):
    with FakeSlack() as fake, serving(bed, fake, control_url) as scenario:
        with holding(bed.url):
            scenario.command("up")
            shown = fake.wait_for_message("C0INCIDENT", lambda m: half_way(text_of(m)), timeout=60)
            assert "CREATE INDEX CONCURRENTLY (line 1) on `events`" in text_of(shown)
        final = fake.wait_for_message("C0INCIDENT", lambda m: "2_held_index" in text_of(m)
                                      and "elapsed" not in text_of(m), timeout=60)
    assert "migrated up from 1 to 2" in text_of(final)
    assert bed.state() == (2, False)


def test_the_consoles_progress_lines_show_the_builds_phase_and_percent(bed):
    out = io.StringIO()
    console = Console(bed.settings, users={"alice": "U0ALICE"}, user="alice", channel="C0INCIDENT", out=out,
                      progress_interval=0.2)
    with console, holding(bed.url):
        codes: list[int] = []
        thread = threading.Thread(target=lambda: codes.append(script(console, iter(["/migrate up\n"]))), daemon=True)
        thread.start()
        wait_for(lambda: half_way(out.getvalue()), timeout=60, what="the console's progress line")
    thread.join(timeout=60)
    assert codes == [0], out.getvalue()
    assert bed.state() == (2, False)


def test_the_cli_on_a_terminal_prints_the_builds_progress_to_stderr(bed, tmp_path: Path):
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "{bed.migrations}"\n'
                      f'snapshot_dir = "{tmp_path / "snapshots"}"\nrequire_approval = []\nlock_timeout = "5min"\n')
    controller, terminal = pty.openpty()
    seen = bytearray()

    def read() -> None:
        while True:
            try:
                chunk = os.read(controller, 4096)
            except OSError:  # the terminal closed with the process
                return
            if not chunk:
                return
            seen.extend(chunk)

    with holding(bed.url):
        process = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "migrate", "up", "--config", str(config)],
                                   stdout=subprocess.PIPE, stderr=terminal, stdin=subprocess.DEVNULL, text=True,
                                   env={**os.environ, "NO_COLOR": "1"})
        os.close(terminal)
        reader = threading.Thread(target=read, daemon=True)
        reader.start()
        wait_for(lambda: half_way(seen.decode(errors="replace")), timeout=60, what="the CLI's progress line")
    stdout, _ = process.communicate(timeout=60)
    reader.join(timeout=10)
    os.close(controller)
    assert process.returncode == 0, stdout
    assert "migrated up from 1 to 2" in stdout and "elapsed" not in stdout  # the result alone on stdout
    assert "`dbops migrate up`" in seen.decode(errors="replace")  # as a shell types it


def test_a_piped_cli_prints_no_progress(bed, tmp_path: Path):
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "{bed.migrations}"\n'
                      f'snapshot_dir = "{tmp_path / "snapshots"}"\nrequire_approval = []\n')
    done = subprocess.run([sys.executable, "-m", "bot.cli.main", "migrate", "up", "--config", str(config)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "elapsed" not in done.stdout + done.stderr


# --- a failed CREATE INDEX CONCURRENTLY, in the channel -----------------------------------------------

def test_the_channel_result_and_the_dirty_alert_name_the_invalid_index_and_the_fix(make_bed, control_url):
    bed = make_bed(DUPLICATES, control=control_url, channels=["C0INCIDENT"], operators=["U0ALICE"])
    with FakeSlack() as fake, serving(bed, fake, control_url) as scenario:
        scenario.command("up")
        result = fake.wait_for_message("C0INCIDENT", lambda m: "left the database dirty" in text_of(m), timeout=60)
        assert bed.state() == (2, True)
        shown = text_of(result)
        assert "INVALID index left behind:* `public.users_email_key` on `users`" in shown
        assert 'DROP INDEX CONCURRENTLY IF EXISTS \\"public\\".\\"users_email_key\\";' in shown
        assert "/migrate force 1 test" in shown
        assert [e.kind for e in scenario.bot.watchers.tick(bed.settings.environment("test"))] == ["opened"]
        alert = fake.wait_for_message("C0INCIDENT", lambda m: "DIRTY" in text_of(m), timeout=30)
        assert "INVALID index left behind:* `public.users_email_key` on `users`" in text_of(alert)
        assert "/migrate force 1 test" in text_of(alert)
