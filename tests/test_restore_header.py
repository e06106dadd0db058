"""What psql receives from a dbops snapshot: pg_restore 18's SQL with only its header's
``SET transaction_timeout`` (which PostgreSQL 13-16 reject) made conditional. The restore
itself is pinned on every server version in tests/test_matrix.py."""

from __future__ import annotations

import subprocess

import zstandard

from commands.pg.restore import portable_header
from commands.pg.tools import bundled_bin_dir

HEADER_LINE = b"SET transaction_timeout = 0;\n"
PORTABLE_LINE = (b"SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings "
                 b"WHERE name = 'transaction_timeout';\n")


def restore_sql(bed, name: str) -> bytes:
    archive = bed.settings.environment("test").snapshot_dir / f"{name}.dump.zst"
    dump = zstandard.ZstdDecompressor().decompress(archive.read_bytes(), max_output_size=1 << 26)
    return subprocess.run([str(bundled_bin_dir() / "pg_restore"), "--clean", "--if-exists", "--file=-"],
                          input=dump, capture_output=True, check=True).stdout


def cut(data: bytes, size: int) -> list[bytes]:
    return [data[i:i + size] for i in range(0, len(data), size)]


def test_only_the_header_line_changes_however_the_stream_is_cut(make_bed):
    bed = make_bed({"1_notes.up.sql": "CREATE TABLE notes (body text);\n"
                                      "INSERT INTO notes VALUES ('SET transaction_timeout = 0;');"})
    bed.run("migrate up")
    sql = restore_sql(bed, bed.run("snapshot create").snapshot.name)
    header, body = sql.split(b"\nDROP ", 1)
    assert HEADER_LINE in header and b"\n" + HEADER_LINE in body  # once in the header, once as a row
    expected = header.replace(HEADER_LINE, PORTABLE_LINE) + b"\nDROP " + body

    for size in (1, 2, 7, 100, 4096, len(sql)):
        assert b"".join(portable_header(iter(cut(sql, size)))) == expected, size


def test_sql_without_such_a_header_passes_through_unchanged():
    plain = b"-- a legacy script\nSET statement_timeout = 0;\nCREATE TABLE t (x int);\n" + HEADER_LINE
    no_end = b"--\n" * 30_000 + HEADER_LINE + b"CREATE TABLE t ();\n"  # a header past 64 KiB is not looked into
    for sql in (plain, no_end, b"", b"SET x = 1;"):
        assert b"".join(portable_header(iter(cut(sql, 1000)))) == sql
