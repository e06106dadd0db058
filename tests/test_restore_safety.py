"""A restore runs SQL and nothing else, on real PostgreSQL with the real psql and pg_restore.

Every planted meta-command is first shown to be live (psql without dbops runs it and the
marker file appears), then restored through dbops: it never runs, the database is as it
was, and the user is told which line and why. Data full of backslashes still restores
exactly, and client programs without psql's restricted mode are refused up front.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import stat
import subprocess
import sys
from pathlib import Path

import psycopg
from psycopg import sql
import pytest
import zstandard

from bot.cli.shell import result_text
from commands.errors import SnapshotFailed
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.psql_script import PsqlScript, ScriptProblem
from commands.pg.tools import bundled_bin_dir, child_env
from commands.results import Outcome, Reason, Refusal
from commands.snapshot.results import RestoreResult
from commands.snapshot.snapshots import find, list_snapshots

PSQL = str(bundled_bin_dir() / "psql")
# Values that COPY writes as lines psql must never read as commands: \N (NULL is another),
# \\. and \\! (escaped backslashes), and a carriage return written \r: "\restrict abc".
TRICKY = ["\\N", "\\.", "a\\b", "\\! touch /tmp/never", "\restrict abc", "one\n\\.\nthree", "\\", "it's"]
LEGACY = "togather_test_20260128_143022_planted"  # legacy files belong to the environment their name says


def make_notes(bed, rows: int = 8) -> None:
    bed.execute("CREATE TABLE notes (id int PRIMARY KEY, body text);"
                "CREATE TABLE kept (id int); INSERT INTO kept VALUES (1), (2);")
    with psycopg.connect(bed.url, autocommit=True) as conn:
        with conn.cursor().copy("COPY notes (id, body) FROM STDIN") as copy:
            for n in range(rows):
                copy.write_row((n, None if n % 9 == 8 else TRICKY[n % 9 % len(TRICKY)] + f" #{n}"))


def table_bytes(bed, table: str) -> bytes:
    """The table exactly as COPY reads it out, every byte."""
    with psycopg.connect(bed.url) as conn:
        with conn.cursor().copy(f"COPY {table} TO STDOUT") as copy:  # fixed table names only
            return b"".join(bytes(chunk) for chunk in copy)


def fingerprint(bed) -> tuple:
    return (bed.tables(), table_bytes(bed, "notes"), table_bytes(bed, "kept"))


def plain_dump(bed) -> bytes:
    return subprocess.run([str(bundled_bin_dir() / "pg_dump"), "--no-password"], env=child_env(bed.url),
                          capture_output=True, check=True).stdout


def planted(plain: bytes, payload: str) -> tuple[bytes, int]:
    """``plain`` with ``payload`` after the first COPY block, past data lines full of
    backslashes; and the line number the payload starts on."""
    end = plain.index(b"\n\\.\n") + 4
    return plain[:end] + payload.encode() + b"\n" + plain[end:], plain[:end].count(b"\n") + 1


def assert_live(bed, payload: str, mark: Path) -> None:
    """psql on its own, unrestricted, runs the payload: the test below is not vacuous."""
    subprocess.run([PSQL, "--no-psqlrc", "--quiet", "--file=-"], input=payload.encode(), env=child_env(bed.url),
                   capture_output=True, timeout=60)
    assert mark.exists(), payload
    mark.unlink()


PAYLOADS = {
    "shell": "\\! touch {mark}",
    "copy to program": "\\copy (SELECT 1) TO PROGRAM 'touch {mark}'",
    "output pipe": "\\o |touch {mark}\nSELECT 1;",
    "setenv": "\\setenv PAGER 'touch {mark}'\n\\pset pager always\n\\! touch {mark}",
    "include": "\\i {include}",
}


@pytest.mark.parametrize("kind", PAYLOADS)
def test_a_planted_meta_command_in_a_legacy_dump_never_runs_and_the_user_is_told_where(make_bed, tmp_path, kind):
    bed = make_bed()
    make_notes(bed)
    mark, include = tmp_path / "ran", tmp_path / "include.sql"
    include.write_text(f"\\! touch {mark}\n")
    payload = PAYLOADS[kind].format(mark=mark, include=include)
    assert_live(bed, payload, mark)
    script, line = planted(plain_dump(bed), payload)
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    (directory / f"{LEGACY}.sql.gz").write_bytes(gzip.compress(script))
    bed.execute("DELETE FROM kept WHERE id = 2")
    before = fingerprint(bed)

    verified = bed.run(f"snapshot verify {LEGACY}")
    assert verified.outcome is Outcome.FAILED
    (check,) = [c for c in verified.checks if not c.passed]
    assert check.name == "sql only" and check.detail.startswith(f"not safe to restore: line {line}: ")
    refused = bed.run(f"snapshot restore {LEGACY}")
    assert isinstance(refused, Refusal) and refused.reason is Reason.SNAPSHOT_DAMAGED
    shown = result_text(refused, command=f"snapshot restore {LEGACY}")
    assert f"line {line}: `{payload.splitlines()[0][:40]}" in shown and "` is a psql meta-command" in shown
    assert "a restore runs SQL only" in shown and "Nothing was changed" in shown
    # Past verification (the file changed in between, say), the restore itself stops there.
    snapshot = find(list_snapshots(directory), LEGACY)
    with pytest.raises(SnapshotFailed, match=f"rolled back; the database is as it was: line {line}: "):
        PgDumpSnapshotter().restore(bed.settings.environment("test"), snapshot)
    assert not mark.exists()
    assert fingerprint(bed) == before


def test_psql_refuses_a_meta_command_that_the_reader_cannot_see(make_bed, tmp_path):
    """The reader does not follow a client encoding set through a function; in SJIS, psql
    reads 0x95 0x5C as one character, so its E'' string ends where the reader's does not.
    psql's restricted mode still refuses the command: that, not the reader, is the guarantee."""
    bed = make_bed()
    make_notes(bed)
    mark = tmp_path / "ran"
    hidden = (b"--\n-- PostgreSQL database dump\n--\nSELECT set_config('client_encoding', 'SJIS', false);\n"
              b"SELECT E'\x95\\'; \\! touch " + str(mark).encode() + b"\n';\n"
              b"SELECT set_config('client_encoding', 'UTF8', false);\nDROP TABLE kept;\n")
    subprocess.run([PSQL, "--no-psqlrc", "--quiet", "--file=-"], input=hidden.replace(b"DROP TABLE kept;", b""),
                   env=child_env(bed.url), capture_output=True, timeout=60)
    assert mark.exists()  # live without dbops
    mark.unlink()
    reader = PsqlScript()
    reader.feed(hidden)
    reader.close()  # the reader sees nothing wrong
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    (directory / f"{LEGACY}.sql.gz").write_bytes(gzip.compress(hidden))
    before = fingerprint(bed)
    assert bed.run(f"snapshot verify {LEGACY}").outcome is Outcome.DONE
    with pytest.raises(SnapshotFailed, match="The snapshot holds a psql meta-command, and a restore runs SQL only. "
                                             "psql said: .*backslash commands are restricted"):
        bed.run(f"snapshot restore {LEGACY}")
    assert not mark.exists()
    assert fingerprint(bed) == before


def test_a_legacy_dump_with_backslashes_in_its_data_restores_exactly(make_bed):
    bed = make_bed()
    make_notes(bed, rows=60_000)  # over 2 MiB: COPY data crosses the reader's chunk boundaries
    expected = fingerprint(bed)
    plain = plain_dump(bed)
    assert b"\\restrict " in plain and b"\n\\N\n" not in plain and b"\t\\N\n" in plain and b"\t\\restrict abc" in plain
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    (directory / f"{LEGACY}.sql.gz").write_bytes(gzip.compress(plain))
    bed.execute("UPDATE notes SET body = 'changed'; DROP TABLE kept; CREATE TABLE later (x int);")
    assert bed.run(f"snapshot verify {LEGACY}").outcome is Outcome.DONE
    assert isinstance(bed.run(f"snapshot restore {LEGACY}"), RestoreResult)
    assert fingerprint(bed) == expected


@pytest.mark.parametrize("mode", ["in-place", "new-database"])
def test_a_dbops_snapshot_with_backslash_lines_in_its_data_restores_byte_identical(make_bed, mode):
    bed = make_bed(restore_mode=mode)
    make_notes(bed, rows=2_000)
    expected = fingerprint(bed)
    name = bed.run("snapshot create").snapshot.name
    bed.execute("UPDATE notes SET body = 'changed'; DROP TABLE kept;")
    assert isinstance(bed.run(f"snapshot restore {name}"), RestoreResult)
    assert fingerprint(bed) == expected


def test_a_meta_command_planted_in_a_dbops_archive_never_runs(make_bed, tmp_path):
    bed = make_bed()
    make_notes(bed)
    filler = "A" * 300
    bed.execute(sql.SQL("COMMENT ON TABLE notes IS {}").format(sql.Literal(filler)))
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    data = directory / f"{name}.dump.zst"
    mark = tmp_path / "ran"
    # Rewrite the comment in the archive's table of contents, keeping its length: pg_restore
    # prints it as is, so its SQL now carries a line of its own for psql.
    archive = zstandard.ZstdDecompressor().decompress(data.read_bytes(), max_output_size=1 << 26)
    old = f"'{filler}';".encode()
    new = f"'x';\n\\! touch {mark}\n-- ".encode()
    assert len(new) < len(old)
    archive = archive.replace(old, new + b"-" * (len(old) - len(new)))
    assert f"\\! touch {mark}".encode() in archive
    crafted = zstandard.ZstdCompressor().compress(archive)
    data.write_bytes(crafted)
    manifest_path = directory / f"{name}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(crafted).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    restored = subprocess.run([str(bundled_bin_dir() / "pg_restore"), "--file=-"], input=archive, capture_output=True)
    assert restored.returncode == 0, restored.stderr
    script = restored.stdout
    with pytest.raises(ScriptProblem, match=r"\(\\!\)"):  # psql would run it, were it not restricted
        PsqlScript().feed(script)
    bed.execute("DELETE FROM kept")
    before = fingerprint(bed)
    assert bed.run(f"snapshot verify {name}").outcome is Outcome.DONE  # its table of contents is intact
    with pytest.raises(SnapshotFailed, match="The snapshot holds a psql meta-command, and a restore runs SQL only"):
        bed.run(f"snapshot restore {name}")
    assert not mark.exists()
    assert fingerprint(bed) == before


def without_restricted_mode(program: str, bin_dir: Path) -> None:
    """A pg_bin_dir whose ``program`` answers as a client from before restricted mode (its
    help does not mention it) and otherwise runs the real one; the other tools are real."""
    real = bundled_bin_dir()
    for tool in ("pg_dump", "pg_restore", "psql"):
        (bin_dir / tool).symlink_to(real / tool)
    wrapper = bin_dir / program
    wrapper.unlink()
    wrapper.write_text(f"#!{sys.executable} -I\n"
                       "import os, subprocess, sys\n"
                       f"real = {str(real / program)!r}\n"
                       "if sys.argv[1:2] in (['--help'], ['--help=commands']):\n"
                       "    out = subprocess.run([real, *sys.argv[1:]], capture_output=True, text=True).stdout\n"
                       "    sys.stdout.write(''.join(l for l in out.splitlines(True) if 'restrict' not in l))\n"
                       "else:\n"
                       "    os.execv(real, [real, *sys.argv[1:]])\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)


@pytest.mark.parametrize("program, kind", [("psql", "legacy"), ("psql", "dbops"), ("pg_restore", "dbops")])
def test_a_restore_through_clients_without_restricted_mode_is_refused_up_front(make_bed, tmp_path, program, kind):
    bed = make_bed()
    make_notes(bed)
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    if kind == "legacy":
        (directory / f"{LEGACY}.sql.gz").write_bytes(gzip.compress(plain_dump(bed)))
        name = LEGACY
    else:
        name = bed.run("snapshot create").snapshot.name
    bin_dir = tmp_path / "old-bin"
    bin_dir.mkdir()
    without_restricted_mode(program, bin_dir)
    old = make_bed(pg_bin_dir=str(bin_dir))
    bed.execute("DELETE FROM kept")
    before = fingerprint(bed)
    with pytest.raises(SnapshotFailed, match=f"{bin_dir / program} has no restricted mode .* {name} was not "
                                             "restored and nothing was changed"):
        old.run(f"snapshot restore {name}")
    assert fingerprint(bed) == before
