"""Snapshots against a real PostgreSQL: round trips, damage, atomic restore, retention."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import pytest

from commands.errors import SnapshotFailed, UsageError
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.tools import bundled_bin_dir, child_env
from commands.results import Outcome, Reason, Refusal
from commands.snapshot.results import RestoreResult, SnapshotCreated
from commands.snapshot.snapshots import find, list_snapshots

RICH_SCHEMA = """
CREATE TABLE accounts (
    id bigserial PRIMARY KEY,
    email text NOT NULL UNIQUE,
    profile jsonb NOT NULL DEFAULT '{}',
    email_domain text GENERATED ALWAYS AS (split_part(email, '@', 2)) STORED,
    updated_at timestamptz
);
CREATE SEQUENCE invoice_numbers START 1000;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := '2026-01-28 14:30:22+00'; RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW account_domains AS SELECT email_domain, count(*) AS n FROM accounts GROUP BY 1;
CREATE SCHEMA billing;
CREATE TABLE billing.invoices (n int PRIMARY KEY DEFAULT nextval('invoice_numbers'), account_id bigint REFERENCES accounts(id));
INSERT INTO accounts (email, profile) VALUES ('ann@example.com', '{"plan": "pro", "tags": ["a", "b"]}'),
                                             ('bob@example.org', '{"plan": "free", "n": 3}');
INSERT INTO billing.invoices (account_id) VALUES (1), (1), (2);
"""


def fingerprint(bed) -> dict:
    """Everything a user would compare after a restore."""
    return {
        "accounts": bed.query("SELECT id, email, profile, email_domain, updated_at FROM accounts ORDER BY id"),
        "invoices": bed.query("SELECT n, account_id FROM billing.invoices ORDER BY n"),
        "view": bed.query("SELECT * FROM account_domains ORDER BY 1"),
        "sequences": bed.query("SELECT last_value FROM invoice_numbers") + bed.query(
            "SELECT last_value FROM accounts_id_seq"),
        "tables": sorted(bed.query("SELECT schemaname, tablename FROM pg_tables WHERE schemaname !~ '^pg_' "
                                   "AND schemaname <> 'information_schema'")),
        "state": bed.state(),
    }


@pytest.fixture
def rich(make_bed):
    def make(**env):
        bed = make_bed({"1_schema.up.sql": RICH_SCHEMA, "1_schema.down.sql": "DROP SCHEMA billing CASCADE;",
                        "2_later.up.sql": "CREATE TABLE later (x int); INSERT INTO later VALUES (1);",
                        "2_later.down.sql": "DROP TABLE later;"}, **env)
        bed.run("migrate up 1")
        return bed
    return make


@pytest.mark.parametrize("mode", ["in-place", "new-database"])
def test_create_then_restore_round_trips_rich_data(rich, mode):
    bed = rich(restore_mode=mode)
    expected = fingerprint(bed)
    created = bed.run('snapshot create --reason "before the incident"')
    assert isinstance(created, SnapshotCreated) and created.snapshot.version == 1
    # The incident: later migrations, new rows, a sequence moved on, a table dropped.
    bed.run("migrate up")
    bed.execute("INSERT INTO accounts (email) VALUES ('eve@example.net'); SELECT nextval('invoice_numbers');"
                "DROP VIEW account_domains; UPDATE accounts SET profile = '{}'")
    result = bed.run(f"snapshot restore {created.snapshot.name}")
    assert isinstance(result, RestoreResult), result
    assert (result.before.version, result.after.version) == (2, 1)
    assert fingerprint(bed) == expected
    assert "later" not in bed.tables()  # made after the snapshot, so gone
    assert {t.table for t in result.largest_tables} >= {"public.accounts", "billing.invoices"}
    assert result.safety_snapshot is not None and "pre-restore" in result.safety_snapshot
    if mode == "new-database":
        assert result.kept_database and bed.query(
            "SELECT 1 FROM pg_database WHERE datname = %s", (result.kept_database,)) == [(1,)]


def test_every_migration_takes_a_verified_snapshot_first(rich):
    bed = rich()
    result = bed.run("migrate up")
    assert result.snapshot is not None and "_v1_pre-migration-v1-to-v2" in result.snapshot
    listed = bed.run("snapshot list")
    assert result.snapshot in [s.name for s in listed.snapshots]
    manifest = json.loads((bed.settings.environment("test").snapshot_dir / f"{result.snapshot}.manifest.json").read_text())
    assert manifest["version"] == 1 and manifest["reason"] == "pre-migration v1 to v2" and manifest["actor"] == "alice"


def test_a_failed_snapshot_stops_the_migration(make_bed, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("x")
    bed = make_bed({"1_a.up.sql": "CREATE TABLE a ();"}, snapshot_dir=str(blocker / "snapshots"))
    with pytest.raises(SnapshotFailed, match="The snapshot before up failed, so nothing was changed"):
        bed.run("migrate up")
    assert bed.state() is None and bed.tables() == set()


def test_a_corrupted_snapshot_fails_verify_and_is_never_restored(rich):
    bed = rich()
    name = bed.run("snapshot create").snapshot.name
    data = bed.settings.environment("test").snapshot_dir / f"{name}.dump.zst"
    raw = bytearray(data.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    data.write_bytes(bytes(raw))
    verified = bed.run(f"snapshot verify {name}")
    assert verified.outcome is Outcome.FAILED and not verified.checks[0].passed
    bed.run("migrate up")
    before = fingerprint(bed)
    refused = bed.run(f"snapshot restore {name}")
    assert isinstance(refused, Refusal) and refused.reason is Reason.SNAPSHOT_DAMAGED
    assert fingerprint(bed) == before


def test_a_restore_that_fails_half_way_leaves_the_database_exactly_as_it_was(rich):
    bed = rich()
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    # Cut the data off half-way and re-seal the checksum: verify's checks pass (the table of
    # contents is intact), pg_restore dies part-way through the data.
    data = directory / f"{name}.dump.zst"
    import hashlib
    import zstandard
    dump = zstandard.ZstdDecompressor().decompress(data.read_bytes(), max_output_size=1 << 26)
    cut = zstandard.ZstdCompressor().compress(dump[: len(dump) * 3 // 4])
    data.write_bytes(cut)
    manifest_path = directory / f"{name}.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = hashlib.sha256(cut).hexdigest()
    manifest_path.write_text(json.dumps(manifest))
    bed.run("migrate up")
    bed.execute("INSERT INTO accounts (email) VALUES ('after@example.com')")
    before = fingerprint(bed)
    refused = bed.run(f"snapshot restore {name}")  # verification reads the archive and refuses it
    assert isinstance(refused, Refusal) and refused.reason is Reason.SNAPSHOT_DAMAGED
    assert fingerprint(bed) == before
    # Past verification, the restore itself: its SQL stops part-way, so dbops never commits.
    env = bed.settings.environment("test")
    snapshot = find(list_snapshots(directory), name)
    with pytest.raises(SnapshotFailed, match="rolled back; the database is as it was"):
        PgDumpSnapshotter().restore(env, snapshot)
    assert fingerprint(bed) == before


def test_a_legacy_restore_that_errors_half_way_changes_nothing(rich):
    bed = rich()
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    script = b"CREATE TABLE restored_half (x int);\nINSERT INTO restored_half VALUES (1);\nSELECT 1/0;\nCREATE TABLE never ();\n"
    (directory / "togather_test_20260128_143022_broken.sql.gz").write_bytes(gzip.compress(script))
    before = fingerprint(bed)
    with pytest.raises(SnapshotFailed, match="division by zero"):
        bed.run("snapshot restore togather_test_20260128_143022_broken")
    assert fingerprint(bed) == before


def test_a_legacy_sql_gz_snapshot_is_listed_and_restored(rich):
    bed = rich()
    expected = fingerprint(bed)
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    plain = subprocess.run([str(bundled_bin_dir() / "pg_dump"), "--no-password"], env=child_env(bed.url),
                           capture_output=True, check=True).stdout
    legacy = directory / "togather_test_20260128_143022_before_deploy.sql.gz"
    legacy.write_bytes(gzip.compress(plain))
    (directory / "togather_test_20260128_143022_before_deploy.meta.json").write_text('{"reason": "before_deploy"}')
    (directory / "togather_test_20260101_000000_gone.meta.json").write_text("{}")  # orphan sidecar
    listed = bed.run("snapshot list")
    legacy_row = next(s for s in listed.snapshots if s.kind == "legacy")
    assert legacy_row.reason == "before deploy" and legacy_row.created_at.hour == 14
    assert listed.orphans == ("togather_test_20260101_000000_gone.meta.json",)
    assert bed.run(f"snapshot verify {legacy_row.name}").outcome is Outcome.DONE
    bed.run("migrate up")
    bed.execute("DELETE FROM billing.invoices")
    result = bed.run(f"snapshot restore {legacy_row.name}")
    assert isinstance(result, RestoreResult)
    assert fingerprint(bed) == expected


@pytest.mark.parametrize("name", ["../../etc/passwd", "a/b", "x\x00y", ".manifest", "..", "/abs"])
def test_names_that_could_escape_the_snapshot_directory_are_refused(rich, name):
    bed = rich()
    before = fingerprint(bed)
    for verb in ("verify", "restore", "pin"):
        with pytest.raises(UsageError, match="is not a snapshot name"):
            from commands import grammar
            from commands.executor import Actor
            bed.executor.run(grammar.parse(["snapshot", verb, name]), Actor(user="alice"))
    assert fingerprint(bed) == before


def test_cleanup_keeps_the_newest_the_pinned_and_the_one_before_the_current_migration(make_bed):
    bed = make_bed({f"{v}_m.up.sql": f"CREATE TABLE t{v} ();" for v in (1, 2, 3)}, keep_last=1, retention_days=7)
    directory = bed.settings.environment("test").snapshot_dir
    bed.run("migrate up 1")   # snapshot at version none
    bed.run("migrate up 1")   # snapshot at version 1: the one taken before the migration we are now at (2)
    pinned = bed.run('snapshot create --reason "keep me"').snapshot.name   # at version 2
    newest = bed.run("snapshot create").snapshot.name                      # at version 2
    bed.run(f"snapshot pin {pinned}")
    names = {s.name: s for s in bed.run("snapshot list").snapshots}
    before_current = next(n for n, s in names.items() if s.version == 1)
    oldest = next(n for n, s in names.items() if s.version == -1)

    later = bed.executor.clock() + __import__("datetime").timedelta(days=30)
    bed.executor.clock = lambda: later
    dry = bed.run("snapshot cleanup --dry-run")
    assert [s.name for s in dry.deleted] == [oldest] and dry.dry_run
    assert len(bed.run("snapshot list").snapshots) == 4  # a dry run deletes nothing
    done = bed.run("snapshot cleanup")
    assert [s.name for s in done.deleted] == [oldest] and done.freed_bytes == names[oldest].size
    kept = {s.name: why for s, why in done.kept}
    assert kept == {newest: "one of the newest 1", pinned: "pinned",
                    before_current: "the newest taken before version 2"}
    assert not any(p.name.startswith(oldest) for p in directory.iterdir())


def test_pg_dump_older_than_the_server_is_refused_by_name(make_bed):
    old_bin = Path("/usr/lib/postgresql/15/bin")  # Debian's PostgreSQL 15 client, part of the machine image
    bed = make_bed({"1_a.up.sql": "CREATE TABLE a ();"}, pg_bin_dir=str(old_bin))
    with pytest.raises(SnapshotFailed, match=r"pg_dump 15 is older than the server \(18\)"):
        bed.run("snapshot create")
    with pytest.raises(SnapshotFailed, match="pg_dump 15 is older"):
        bed.run("migrate up")  # and so no migration runs without its snapshot
    assert bed.run("snapshot list").snapshots == () and bed.state() is None


def test_an_unreachable_database_is_diagnosed_and_the_password_masked(make_bed, tmp_path):
    bed = make_bed({"1_a.up.sql": "SELECT 1;"}, database_url="postgresql://app:s3cret-pw@127.0.0.1:1/app")
    with pytest.raises(Exception) as caught:
        bed.run("snapshot create")
    assert "environment test: could not connect to postgresql://app:****@127.0.0.1:1/app" in str(caught.value)
    assert "s3cret-pw" not in str(caught.value)
    assert not (tmp_path / "snapshots").exists() or not any((tmp_path / "snapshots").iterdir())


def test_pin_and_unpin_say_whether_anything_changed(rich):
    bed = rich()
    name = bed.run("snapshot create").snapshot.name
    assert bed.run(f"snapshot pin {name}").outcome is Outcome.DONE
    assert bed.run(f"snapshot pin {name}").outcome is Outcome.NO_CHANGE
    assert bed.run("snapshot list").snapshots[0].name == name  # newest first, within the same second too
    assert bed.run("snapshot list").snapshots[0].pinned
    assert bed.run(f"snapshot unpin {name}").outcome is Outcome.DONE
    assert not bed.run("snapshot list").snapshots[0].pinned


def test_a_create_killed_with_sigkill_leaves_no_listed_snapshot(make_bed, tmp_path):
    import os
    import signal
    import sys

    from tests.conftest import wait_for

    bed = make_bed({"1_a.up.sql": "SELECT 1;"})
    bed.execute("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS t "
                "FROM generate_series(1, 600000) g")
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "migrations"\n'
                      f'snapshot_dir = "snapshots"\nrequire_approval = []\n')
    directory = tmp_path / "snapshots"
    child = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "snapshot", "create", "--config", str(config)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    temp = wait_for(lambda: directory.exists() and [p for p in directory.iterdir() if p.name.startswith(".tmp-")
                                                    and p.stat().st_size > 0], what="the snapshot's temporary file")
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    listed = bed.run("snapshot list")
    assert listed.snapshots == ()
    assert listed.incomplete == (temp[0].name,)
    created = bed.run("snapshot create")  # the next run removes what the dead one left
    assert [p.name for p in directory.iterdir() if p.name.startswith(".tmp-")] == []
    assert [s.name for s in bed.run("snapshot list").snapshots] == [created.snapshot.name]


def test_a_full_disk_is_diagnosed_and_nothing_partial_is_left(make_bed, small_filesystem):
    bed = make_bed({"1_a.up.sql": "SELECT 1;"}, snapshot_dir=str(small_filesystem))
    bed.execute("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS t "
                "FROM generate_series(1, 100000) g")
    with pytest.raises(SnapshotFailed) as caught:
        bed.run("snapshot create")
    message = str(caught.value)
    assert message.startswith("Not enough disk space:") and "free; the database is" in message
    assert "Nothing was kept" in message
    assert list(small_filesystem.iterdir()) == []
    with pytest.raises(SnapshotFailed, match="The snapshot before up failed, so nothing was changed. Not enough disk"):
        bed.run("migrate up")
    assert bed.state() is None


def test_a_read_only_snapshot_directory_is_diagnosed(make_bed, small_filesystem):
    subprocess.run(["mount", "-o", "remount,ro", str(small_filesystem)], check=True)
    bed = make_bed({"1_a.up.sql": "SELECT 1;"}, snapshot_dir=str(small_filesystem))
    with pytest.raises(SnapshotFailed, match="No permission: .* is on a read-only file system"):
        bed.run("snapshot create")


def test_the_password_goes_to_the_child_environment_never_its_arguments():
    env = child_env("postgresql://deploy:pa%40ss@db.internal:6432/togather?sslmode=require")
    assert (env["PGPASSWORD"], env["PGUSER"], env["PGHOST"], env["PGPORT"], env["PGDATABASE"], env["PGSSLMODE"]) == \
        ("pa@ss", "deploy", "db.internal", "6432", "togather", "require")


def test_a_restore_killed_with_sigkill_leaves_the_database_as_it_was(make_bed, tmp_path):
    import os
    import signal
    import sys

    from tests.conftest import wait_for

    bed = make_bed({"1_a.up.sql": "SELECT 1;"}, pre_migration_snapshot=False)
    bed.execute("CREATE TABLE bulk AS SELECT g AS id, md5(g::text) || md5((g * 7)::text) AS t "
                "FROM generate_series(1, 400000) g")
    snapshot = bed.run("snapshot create --reason before").snapshot.name
    bed.execute("INSERT INTO bulk VALUES (0, 'written after the snapshot')")
    config = tmp_path / "dbops.toml"
    config.write_text(f'[environments.test]\ndatabase_url = "{bed.url}"\nmigrations_dir = "migrations"\n'
                      f'snapshot_dir = "snapshots"\nrequire_approval = []\npre_migration_snapshot = false\n')
    child = subprocess.Popen([sys.executable, "-m", "bot.cli.main", "snapshot", "restore", snapshot, "--config",
                              str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # The restore is under way once psql's session is copying rows into the database.
    wait_for(lambda: bed.query("SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY%' "
                               "AND datname = current_database() AND pid <> pg_backend_pid()")[0][0] > 0,
             what="the restore's COPY", interval=0.002)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(timeout=30)
    wait_for(lambda: bed.query("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                               "AND pid <> pg_backend_pid() AND backend_type = 'client backend'")[0][0] == 0,
             what="the orphaned psql to end")

    assert bed.query("SELECT count(*) FROM bulk") == [(400001,)]  # all of it, as before the restore began
    assert bed.query("SELECT t FROM bulk WHERE id = 0") == [("written after the snapshot",)]
