"""new-database restores with pg_restore --jobs, on real PostgreSQL with the real pg_restore.

The parallel path must rebuild the database exactly as the one-transaction path does, leave
the target as it was when anything fails (no fresh database, no temporary file, no space
held), keep the replaced database for undo, and refuse plainly when there is no room to
unpack the archive. The supported-server matrix runs it on 13-18 (tests/test_matrix.py).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg
import pytest
import zstandard
from psycopg import sql

from bot.cli.shell import result_text
from commands.errors import SnapshotFailed
from commands.pg.embedded import database_url
from commands.pg.parallel_restore import MAX_AUTO_JOBS, ServerRoom, auto_jobs
from commands.pg.tools import bundled_bin_dir, child_env
from commands.results import Outcome
from commands.snapshot.results import RestoreResult

SCHEMA = """
CREATE TABLE customers (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    plan text NOT NULL CHECK (plan IN ('free', 'pro')),
    profile jsonb NOT NULL DEFAULT '{}'
);
CREATE TABLE orders (
    id bigserial PRIMARY KEY,
    customer_id bigint NOT NULL REFERENCES customers ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL,
    placed_at timestamptz NOT NULL
);
CREATE INDEX orders_customer ON orders (customer_id, placed_at DESC);
CREATE INDEX orders_big ON orders (total) WHERE total > 500;
CREATE SCHEMA ledger;
CREATE SEQUENCE ledger.entry_numbers START 5000 INCREMENT 3;
CREATE TABLE ledger.entries (n int PRIMARY KEY DEFAULT nextval('ledger.entry_numbers'),
                             order_id bigint REFERENCES orders, note text);
COMMENT ON TABLE orders IS 'one row per checkout';
INSERT INTO customers (email, plan, profile)
    SELECT 'c' || g || '@example.com', CASE WHEN g % 3 = 0 THEN 'pro' ELSE 'free' END,
           jsonb_build_object('n', g, 'tags', jsonb_build_array('a', g % 7))
    FROM generate_series(1, 4000) g;
INSERT INTO orders (customer_id, total, placed_at)
    SELECT 1 + g % 4000, (g % 1000) + 0.25, timestamptz '2026-01-01 00:00+00' + g * interval '1 minute'
    FROM generate_series(1, 30000) g;
INSERT INTO ledger.entries (order_id, note) SELECT g, repeat('x', g % 50) FROM generate_series(1, 6000) g;
SELECT lo_from_bytea(0, 'a large object'::bytea);
"""

CATALOG = {
    "columns": "SELECT table_schema, table_name, column_name, data_type, is_nullable, column_default, is_identity "
               "FROM information_schema.columns WHERE table_schema IN ('public', 'ledger') ORDER BY 1, 2, 3",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace IN ('public'::regnamespace, 'ledger'::regnamespace) ORDER BY 1, 2",
    "indexes": "SELECT schemaname, indexname, indexdef FROM pg_indexes WHERE schemaname IN ('public', 'ledger') "
               "ORDER BY 1, 2",
    "valid indexes": "SELECT count(*) FILTER (WHERE NOT indisvalid) FROM pg_index",
    "sequences": "SELECT schemaname, sequencename, start_value, increment_by, last_value FROM pg_sequences "
                 "WHERE schemaname IN ('public', 'ledger') ORDER BY 1, 2",
    "comments": "SELECT obj_description('orders'::regclass, 'pg_class')",
    "large objects": "SELECT string_agg(encode(lo_get(oid), 'escape'), ',') FROM pg_largeobject_metadata",
    "customers": "SELECT md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c",
    "orders": "SELECT md5(string_agg(o::text, ',' ORDER BY id)) FROM orders o",
    "entries": "SELECT md5(string_agg(e::text, ',' ORDER BY n)) FROM ledger.entries e",
    "version": "SELECT version, dirty FROM schema_migrations",
}


def fingerprint(bed, url: str | None = None) -> dict:
    """Data, sequences, indexes, constraints and the rest, as the catalogs and the rows say."""
    if url is None:
        return {name: bed.query(query) for name, query in CATALOG.items()}
    with psycopg.connect(url) as conn:
        return {name: conn.execute(query).fetchall() for name, query in CATALOG.items()}


@pytest.fixture
def shop(make_bed):
    def make(**env):
        bed = make_bed({"1_shop.up.sql": SCHEMA, "1_shop.down.sql": "SELECT 1;",
                        "2_later.up.sql": "CREATE TABLE later (x int); INSERT INTO later VALUES (1);",
                        "2_later.down.sql": "DROP TABLE later;"}, restore_mode="new-database", **env)
        assert bed.run("migrate up 1").outcome is Outcome.DONE
        return bed
    return make


def incident(bed) -> None:
    """What happened after the snapshot: a migration, new and changed rows, sequences moved on."""
    assert bed.run("migrate up").outcome is Outcome.DONE
    bed.execute("INSERT INTO customers (email, plan) VALUES ('late@example.com', 'pro');"
                "UPDATE orders SET total = 0 WHERE id % 10 = 0; SELECT nextval('ledger.entry_numbers');"
                "DROP INDEX orders_big; ALTER TABLE ledger.entries DROP CONSTRAINT entries_order_id_fkey")


@pytest.fixture
def private_tmp(tmp_path, monkeypatch) -> Path:
    """A temporary directory of dbops' own (TMPDIR as the process reads it), to see what is left in it."""
    directory = tmp_path / "tmp"
    directory.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(directory))
    return directory


@pytest.fixture
def tmpfs(tmp_path, monkeypatch):
    """A real tmpfs of the given size as dbops' temporary directory: a full disk for real."""
    mounted: list[Path] = []

    def mount(size: str) -> Path:
        point = tmp_path / f"tmpfs-{size}"
        point.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(point)], check=True)
        mounted.append(point)
        monkeypatch.setattr(tempfile, "tempdir", str(point))
        return point
    yield mount
    for point in mounted:
        subprocess.run(["umount", str(point)], check=True)


def open_files() -> set[str]:
    """What this process has open (pg_restore's archive would show here as "(deleted)")."""
    fds = Path("/proc/self/fd")
    return {os.readlink(fds / fd) for fd in os.listdir(fds) if (fds / fd).exists()}


def databases(bed) -> list[tuple]:
    return bed.query("SELECT datname FROM pg_database ORDER BY 1")


def test_a_parallel_restore_rebuilds_data_sequences_indexes_and_constraints_exactly(shop, private_tmp):
    bed = shop(restore_jobs=2)
    expected = fingerprint(bed)
    name = bed.run('snapshot create --reason "before the incident"').snapshot.name
    incident(bed)
    assert fingerprint(bed) != expected

    result = bed.run(f"snapshot restore {name}")

    assert isinstance(result, RestoreResult) and (result.mode, result.jobs) == ("new-database", 2)
    assert fingerprint(bed) == expected
    assert "later" not in bed.tables()
    # It works on: the identity and the sequences continue after the restored rows.
    assert bed.query("INSERT INTO customers (email, plan) VALUES ('next@example.com', 'free') RETURNING id") == [
        (4001,)]
    assert bed.query("SELECT nextval('ledger.entry_numbers')") == [(5000 + 3 * 6000,)]
    assert "Mode: new-database, 2 parallel jobs" in result_text(result, command=f"snapshot restore {name}")
    assert list(private_tmp.iterdir()) == []


def test_one_job_restores_in_one_transaction_and_the_card_says_so(shop, private_tmp):
    bed = shop(restore_jobs=1)
    expected = fingerprint(bed)
    name = bed.run("snapshot create").snapshot.name
    incident(bed)

    result = bed.run(f"snapshot restore {name}")

    assert (result.jobs, fingerprint(bed)) == (1, expected)
    assert "Mode: new-database, one transaction" in result_text(result, command=f"snapshot restore {name}")


def test_a_parallel_restore_that_fails_part_way_leaves_the_target_unchanged_and_nothing_behind(shop, private_tmp):
    bed = shop(restore_jobs=2)
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    # Cut the archive short and re-seal its checksum: the tables of contents reads, the
    # schema is made, and pg_restore fails part-way through the rows.
    data = directory / f"{name}.dump.zst"
    dump = zstandard.ZstdDecompressor().decompress(data.read_bytes(), max_output_size=1 << 28)
    data.write_bytes(zstandard.ZstdCompressor().compress(dump[: len(dump) * 2 // 3]))
    manifest = json.loads((directory / f"{name}.manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))
    incident(bed)
    before, existing, files = fingerprint(bed), databases(bed), open_files()

    with pytest.raises(SnapshotFailed, match="failed part-way; the database it was loading was dropped and the "
                                             "database is as it was. pg_restore said: "):
        bed.run(f"snapshot restore {name}")

    assert fingerprint(bed) == before
    assert databases(bed) == existing  # no fresh database left
    assert list(private_tmp.iterdir()) == [] and open_files() == files  # no temporary file, no space held


def test_the_replaced_database_is_kept_as_it_was_and_the_safety_snapshot_undoes_the_restore(shop, private_tmp):
    bed = shop(restore_jobs=2)
    name = bed.run("snapshot create").snapshot.name
    incident(bed)
    before = fingerprint(bed)

    result = bed.run(f"snapshot restore {name}")

    # The swap closed it to connections (nothing should write to it by mistake); a DBA going
    # back to it opens it again, and finds it exactly as it was.
    bed.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(result.kept_database)))
    assert fingerprint(bed, database_url(bed.url, result.kept_database)) == before
    undone = bed.run(f"snapshot restore {result.safety_snapshot}")
    assert undone.outcome is Outcome.DONE and undone.jobs == 2
    assert fingerprint(bed) == before and "later" in bed.tables()


def test_no_room_to_unpack_the_archive_refuses_before_the_server_is_touched(shop, tmpfs):
    bed = shop(restore_jobs=2)
    name = bed.run("snapshot create").snapshot.name
    incident(bed)
    before, existing = fingerprint(bed), databases(bed)
    small = tmpfs("1m")

    with pytest.raises(SnapshotFailed) as refused:
        bed.run(f"snapshot restore {name}")

    assert refused.value.message.startswith(f"No room to restore {name} in parallel: its archive needs ")
    assert (f"of temporary space in {small}, which has 1.0 MB free. Nothing was changed. Free space there, point "
            "TMPDIR at a larger file system, or set restore_jobs = 1") in refused.value.message
    assert (fingerprint(bed), databases(bed), list(small.iterdir())) == (before, existing, [])


def test_a_disk_that_fills_while_unpacking_refuses_and_frees_what_was_written(shop, tmpfs):
    bed = shop(restore_jobs=2)
    bed.execute("CREATE TABLE noise (body text); INSERT INTO noise SELECT md5(g::text) || md5((g * 7)::text) "
                "FROM generate_series(1, 300000) g")
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    manifest = json.loads((directory / f"{name}.manifest.json").read_text())
    assert manifest["archive_size"] > 20 << 20
    manifest["archive_size"] = 1  # a manifest that undersells it, or another writer filling the disk meanwhile
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))
    incident(bed)
    before, existing, files = fingerprint(bed), databases(bed), open_files()
    small = tmpfs("18m")

    with pytest.raises(SnapshotFailed, match=f"^No room to restore {name} in parallel: .* Nothing was changed"):
        bed.run(f"snapshot restore {name}")

    assert (fingerprint(bed), databases(bed), open_files()) == (before, existing, files)
    assert os.statvfs(small).f_bfree == os.statvfs(small).f_blocks  # every block written was freed


def test_auto_takes_the_fewest_of_the_cap_the_cores_the_workers_and_half_the_free_connections():
    room = ServerRoom(server_major=18, max_worker_processes=8, free_connections=97)
    assert auto_jobs(room, client_cores=2) == 2
    assert auto_jobs(room, client_cores=64) == MAX_AUTO_JOBS
    assert auto_jobs(ServerRoom(server_major=18, max_worker_processes=3, free_connections=97), 64) == 3
    assert auto_jobs(ServerRoom(server_major=18, max_worker_processes=8, free_connections=7), 64) == 3
    assert auto_jobs(ServerRoom(server_major=13, max_worker_processes=8, free_connections=3), 64) == 1
    assert auto_jobs(ServerRoom(server_major=13, max_worker_processes=0, free_connections=-3), 64) == 1


def test_auto_reads_the_server_and_a_role_near_its_connection_limit_restores_in_one_transaction(shop, private_tmp):
    bed = shop()  # restore_jobs "auto"
    name = bed.run("snapshot create").snapshot.name
    role = bed.query("SELECT current_user")[0][0]
    result = bed.run(f"snapshot restore {name}")
    assert result.jobs == min(MAX_AUTO_JOBS, os.cpu_count() or 1)
    bed.execute(sql.SQL('ALTER ROLE {} CONNECTION LIMIT 3').format(sql.Identifier(role)))  # fixed name: the test server's superuser
    try:
        assert bed.run(f"snapshot restore {name}").jobs == 1
    finally:
        bed.execute(sql.SQL('ALTER ROLE {} CONNECTION LIMIT -1').format(sql.Identifier(role)))


def test_a_meta_command_planted_in_an_archive_never_runs_in_a_parallel_restore(shop, private_tmp, tmp_path):
    """pg_restore --dbname sends the archive's SQL to the server itself: no psql, so a line
    that psql would run as a shell command is only text the server rejects."""
    bed = shop(restore_jobs=2)
    placeholder = "X" * 200
    bed.execute(sql.SQL("COMMENT ON TABLE customers IS {}").format(sql.Literal(placeholder)))
    name = bed.run("snapshot create").snapshot.name
    mark = tmp_path / "ran"
    payload = f"';\n\\! touch {mark}\n--".ljust(len(placeholder), "-")
    directory = bed.settings.environment("test").snapshot_dir
    data = directory / f"{name}.dump.zst"
    archive = zstandard.ZstdDecompressor().decompress(data.read_bytes(), max_output_size=1 << 28)
    assert archive.count(placeholder.encode()) == 1
    archive = archive.replace(placeholder.encode(), payload.encode())  # same length: the archive stays well-formed
    data.write_bytes(zstandard.ZstdCompressor().compress(archive))
    manifest = json.loads((directory / f"{name}.manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))
    # Live: as a script through psql without restricted mode, the line runs a shell.
    script = subprocess.run([str(bundled_bin_dir() / "pg_restore"), "--schema-only", "--file=-"], input=archive,
                            capture_output=True, check=True).stdout
    script = script[script.index(b"COMMENT ON TABLE public.customers"):]
    script = script[:script.index(b"\n", script.index(b"\\! touch")) + 1]  # the statement and the planted line
    subprocess.run([str(bundled_bin_dir() / "psql"), "--no-psqlrc", "--quiet", "--file=-"], input=script,
                   env=child_env(database_url(bed.url, "postgres")), capture_output=True)
    assert mark.exists()
    mark.unlink()
    assert bed.run(f"snapshot verify {name}").outcome is Outcome.DONE  # well-formed: only a restore can tell
    incident(bed)
    before, existing = fingerprint(bed), databases(bed)

    with pytest.raises(SnapshotFailed, match="failed part-way.* pg_restore said: .*syntax error at or near"):
        bed.run(f"snapshot restore {name}")

    assert not mark.exists()
    assert (fingerprint(bed), databases(bed)) == (before, existing)


def test_a_legacy_gzip_snapshot_keeps_the_one_transaction_psql_path_whatever_restore_jobs_says(shop, private_tmp):
    bed = shop(restore_jobs=4)
    expected = fingerprint(bed)
    plain = subprocess.run([str(bundled_bin_dir() / "pg_dump"), "--no-password"], env=child_env(bed.url),
                           capture_output=True, check=True).stdout
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    legacy = f"togather_{bed.query('SELECT current_database()')[0][0]}_20260128_143022_before_deploy"
    (directory / f"{legacy}.sql.gz").write_bytes(gzip.compress(plain))
    incident(bed)

    result = bed.run(f"snapshot restore {legacy}")

    assert (result.mode, result.jobs) == ("new-database", 1)
    assert fingerprint(bed) == expected
    assert "Mode: new-database, one transaction" in result_text(result, command=f"snapshot restore {legacy}")


def test_the_unpacked_archive_has_no_name_so_a_sigkilled_dbops_leaves_no_file(shop, private_tmp):
    bed = shop(restore_jobs=2)
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    archive_size = json.loads((directory / f"{name}.manifest.json").read_text())["archive_size"]
    # A process that unpacks the snapshot as a restore does, then waits on its stdin.
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, tempfile\n"
        f"tempfile.tempdir = {str(private_tmp)!r}\n"
        "from pathlib import Path\n"
        "from commands.pg.parallel_restore import unpacked\n"
        "from commands.snapshot.snapshots import find, list_snapshots\n"
        f"with unpacked(find(list_snapshots(Path({str(directory)!r})), {name!r})) as archive:\n"
        "    print('archive', archive.path, flush=True)\n"
        "    sys.stdin.read()\n")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        path = next(line.split()[1] for line in child.stdout if line.startswith("archive "))  # after its log lines
        assert path.startswith("/proc/self/fd/")
        held = os.readlink(f"/proc/{child.pid}/fd/{path.rsplit('/', 1)[1]}")
        assert held.startswith(f"{private_tmp}/dbops-restore-") and held.endswith(" (deleted)")
        assert os.stat(f"/proc/{child.pid}/fd/{path.rsplit('/', 1)[1]}").st_size == archive_size
        assert list(private_tmp.iterdir()) == []  # in use, and already nameless
        assert stat.S_IMODE(os.stat(f"/proc/{child.pid}/fd/{path.rsplit('/', 1)[1]}").st_mode) == 0o600
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert child.returncode == -signal.SIGKILL and list(private_tmp.iterdir()) == []
