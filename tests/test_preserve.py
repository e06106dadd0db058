"""Keeping what a restore would lose, on real PostgreSQL: measured on the card, exported before
the restore, re-imported after, conflicts and misfits reported and kept in the bundle."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from psycopg import sql

from commands import grammar
from commands.approval.results import ApprovalDecided, ApprovalNeeded
from commands.executor import Actor, Executor
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.preserve.results import PreservedListResult, ReimportResult
from commands.errors import UsageError
from commands.results import Outcome
from commands.snapshot.results import RestoreResult
from commands.snapshot.snapshots import MANIFEST_SUFFIX

FILES = {
    "1_shop.up.sql": """
        CREATE TABLE users (id bigserial PRIMARY KEY, email text UNIQUE NOT NULL,
                            created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz);
        CREATE TABLE orders (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                             user_id bigint NOT NULL REFERENCES users, total numeric(10, 2) NOT NULL,
                             placed timestamp NOT NULL DEFAULT now());
        CREATE TABLE audit_notes (body text);
        CREATE TABLE tags (name text PRIMARY KEY);
        INSERT INTO users (email, created_at) SELECT 'u' || g || '@example.com', now() - interval '2 days'
          FROM generate_series(1, 50) g;
        INSERT INTO orders (user_id, total, placed) SELECT 1 + g % 50, g, now() - interval '2 days'
          FROM generate_series(1, 100) g;
        INSERT INTO audit_notes SELECT 'note ' || g FROM generate_series(1, 500) g;
        INSERT INTO tags VALUES ('a'), ('b');
    """,
    "1_shop.down.sql": "DROP TABLE orders, users, audit_notes, tags;",
    "2_note.up.sql": "ALTER TABLE users ADD COLUMN note text;",
    "2_note.down.sql": "ALTER TABLE users DROP COLUMN note;",
}


def test_the_manifest_records_every_tables_row_estimate(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up 1")
    bed.execute("ANALYZE")
    name = bed.run("snapshot create --reason estimates").snapshot.name
    manifest = json.loads((bed.settings.environment("test").snapshot_dir / (name + MANIFEST_SUFFIX)).read_text())
    assert manifest["row_estimates"] == {"public.audit_notes": 500, "public.orders": 100, "public.schema_migrations": 1,
                                         "public.tags": 2, "public.users": 50}


WRITES = """
    INSERT INTO users (email) VALUES ('new1@example.com'), ('new2@example.com'), ('new3@example.com');
    UPDATE users SET updated_at = now(), email = 'changed' || id || '@example.com' WHERE id IN (1, 2);
    INSERT INTO orders (user_id, total) VALUES (51, 10), (52, 20), (1, 30), (2, 40);
    INSERT INTO audit_notes SELECT 'later ' || g FROM generate_series(1, 5000) g;
    ANALYZE;
"""


def writes_after_the_snapshot(bed, *, at: int = 2) -> str:
    """A snapshot at version ``at``, then the database at 2 and rows written since: 3 users
    inserted and 2 updated, 4 orders (2 of them by new users), 5,000 notes (no time column)."""
    bed.run(f"migrate up {at}")
    bed.execute("ANALYZE")
    name = bed.run("snapshot create --reason before-writes").snapshot.name
    bed.run("migrate up")
    bed.execute(WRITES)
    return name


def ask(bed, text: str, user: str):
    return bed.executor.run(grammar.parse(text), Actor(user=user, channel="C0INCIDENT", surface="slack"))


@pytest.fixture
def desk(make_bed, control_url):
    bed = make_bed(FILES, control=control_url, preserve={"orders": ["placed"]}, approvers=["U0BOB"],
                   channels=["C0INCIDENT"], require_approval=["restore", "reimport"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            audit=PgAuditLog(control_url), approvals=PgApprovals(control_url))
    return bed


@pytest.fixture
def shop(make_bed):
    return make_bed(FILES, preserve={"orders": ["placed"]})


def test_a_restore_request_counts_the_rows_written_since_the_snapshot_on_its_card(desk):
    name = writes_after_the_snapshot(desk)
    needed = ask(desk, f"snapshot restore {name}", "U0ALICE")
    assert isinstance(needed, ApprovalNeeded)
    loss = needed.request.impact.loss
    assert [(t.table, t.rows, t.columns) for t in loss.counted] == [
        ("public.users", 5, ("created_at", "updated_at")), ("public.orders", 4, ("placed",))]
    assert loss.untracked == ("public.audit_notes",) and loss.estimates_known
    stored = desk.executor.approvals.get(needed.request.id)[0]  # as the card is drawn again, from the request
    assert stored.impact.loss == loss


def test_an_approved_restore_with_preserve_puts_back_new_rows_and_skips_those_whose_key_is_back(desk):
    name = writes_after_the_snapshot(desk)
    needed = ask(desk, f"snapshot restore {name} test --preserve", "U0ALICE")
    assert isinstance(needed, ApprovalNeeded) and needed.request.command.endswith("--preserve test")
    decided = ask(desk, f"dbops approve {needed.request.id}", "U0BOB")
    assert isinstance(decided, ApprovalDecided) and decided.outcome is Outcome.DONE
    report = {t.table: (t.exported, t.imported, t.conflicts, t.unfit) for t in decided.result.preserved.tables}
    # The 3 new users and the 4 orders are back; the 2 updated users' keys are in the snapshot:
    # they keep their old values, and the new ones stay in the bundle.
    assert report == {"public.users": (5, 3, 2, 0), "public.orders": (4, 4, 0, 0)}
    assert decided.result.preserved.untracked == ("public.audit_notes",)
    assert desk.query("SELECT count(*) FROM users")[0][0] == 53
    assert desk.query("SELECT email FROM users WHERE id = 1") == [("u1@example.com",)]
    assert desk.query("SELECT count(*) FROM audit_notes")[0][0] == 500
    # The sequences moved past the rows put back: the application's next insert works.
    desk.execute("INSERT INTO users (email) VALUES ('after@example.com'); INSERT INTO orders (user_id, total) "
                 "VALUES (53, 1)")
    assert desk.query("SELECT max(id) FROM users") == [(54,)]


def test_rows_that_no_longer_fit_the_restored_schema_stay_in_the_bundle_and_come_back_later_by_name(shop):
    name = writes_after_the_snapshot(shop, at=1)  # the snapshot is before version 2's column
    shop.execute("UPDATE users SET note = 'kept' WHERE id > 50")
    result = shop.run(f"snapshot restore {name} --preserve")
    assert isinstance(result, RestoreResult) and result.outcome is Outcome.DONE
    report = {t.table: t for t in result.preserved.tables}
    assert (report["public.users"].unfit, report["public.users"].why) == (5, "column note no longer exists")
    # Two orders point at users that are not back: the database refuses the table's rows.
    assert report["public.orders"].imported == 0 and report["public.orders"].unfit == 4
    assert "the database refused them" in report["public.orders"].why
    assert shop.query("SELECT count(*) FROM users")[0][0] == 50 and shop.state() == (1, False)

    bundle = result.preserved.bundle
    listed = shop.run("snapshot preserved")
    assert isinstance(listed, PreservedListResult)
    assert [(b.name, b.snapshot, b.rows, b.tables) for b in listed.bundles] == [(bundle, name, 9, 2)]
    shop.run("migrate up")  # the column is back
    again = shop.run(f"snapshot reimport {bundle}")
    assert isinstance(again, ReimportResult) and again.outcome is Outcome.DONE
    assert {t.table: (t.imported, t.conflicts, t.unfit) for t in again.report.tables} == {
        "public.users": (3, 2, 0), "public.orders": (4, 0, 0)}
    assert shop.query("SELECT count(*) FROM users WHERE note = 'kept'")[0][0] == 3


def test_a_reimport_needs_approval_like_a_restore(desk):
    name = writes_after_the_snapshot(desk)
    restored = ask(desk, f"dbops approve {ask(desk, f'snapshot restore {name} --preserve', 'U0ALICE').request.id}",
                   "U0BOB").result
    needed = ask(desk, f"snapshot reimport {restored.preserved.bundle}", "U0ALICE")
    assert isinstance(needed, ApprovalNeeded) and needed.request.operation == "reimport"
    done = ask(desk, f"dbops approve {needed.request.id}", "U0BOB")
    assert done.outcome is Outcome.NO_CHANGE  # everything that fits is back already
    assert {t.table: t.conflicts for t in done.result.report.tables} == {"public.users": 5, "public.orders": 4}


def test_cleanup_never_deletes_a_pinned_or_unexpired_bundle(shop):
    name = writes_after_the_snapshot(shop)
    bundles = [shop.run(f"snapshot restore {name} --preserve").preserved.bundle for _ in range(2)]
    assert shop.run(f"snapshot pin {bundles[0]}").outcome is Outcome.DONE
    kept = shop.run("snapshot cleanup --retention-days 0")
    assert kept.bundles_deleted == ()  # keep_last (3) protects both, whatever their age
    env = shop.settings.environment("test")
    shop.settings.environments["test"] = replace(env, keep_last=0)
    cleaned = shop.run("snapshot cleanup --retention-days 0")
    assert cleaned.bundles_deleted == (bundles[1],)  # expired and not pinned
    assert [b.name for b in shop.run("snapshot preserved").bundles] == [bundles[0]]
    young = shop.run("snapshot cleanup --retention-days 7")
    assert young.bundles_deleted == ()


def test_a_bundle_name_that_is_not_one_is_refused_and_changes_nothing(shop):
    with pytest.raises(UsageError, match="is not a bundle name"):
        shop.run("snapshot reimport ../../etc/passwd")
    with pytest.raises(UsageError, match="No bundle named"):
        shop.run("snapshot reimport test_20200101_000000_preserved")


def test_a_new_database_restore_with_preserve_puts_the_rows_back_into_the_database_that_replaced_the_old(make_bed):
    bed = make_bed(FILES, preserve={"orders": ["placed"]}, restore_mode="new-database")
    name = writes_after_the_snapshot(bed)
    result = bed.run(f"snapshot restore {name} --preserve")
    assert result.kept_database is not None
    assert {t.table: (t.imported, t.conflicts) for t in result.preserved.tables} == {
        "public.users": (3, 2), "public.orders": (4, 0)}
    assert bed.query("SELECT count(*) FROM users") == [(53,)]
    bed.execute(sql.SQL('DROP DATABASE {}').format(sql.Identifier(result.kept_database)))
