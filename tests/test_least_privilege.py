"""Every operation under a least-privilege role (tests/roles.py: no superuser, no CREATEDB, not in
pg_signal_backend or pg_read_all_stats; it owns the application's tables, not the database or, on
15+, schema ``public``): it works, or it is refused by name before anything changes (no safety
snapshot, no SQL, no approval request), naming the privilege and what gives it. A privilege
error only PostgreSQL can find (a migration altering another role's table) is a clean failure.

Run on the wheel's PostgreSQL 18 and on 14, where ``public`` belongs to the bootstrap superuser
with CREATE for PUBLIC, so the in-place restore lacks other things.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import datetime, timezone
from typing import Iterator

import psycopg
import pytest
from psycopg import sql

from bot.cli.shell import result_text
from commands import grammar
from commands.errors import PrivilegeError
from commands.executor import Actor, Executor
from commands.pg.alerts import PgAlerts
from commands.pg.approvals import PgApprovals
from commands.pg.control import PgAuditLog, migrate_control_database
from commands.pg.database import PgDatabases
from commands.pg.dump import PgDumpSnapshotter
from commands.pg.lock import golang_migrate_lock_key
from commands.pg.privileges import PgProbe
from commands.pg.runner import PRIVILEGE_HINT
from commands.migrate.results import MigrateResult
from commands.results import Outcome, Reason, Refusal
from commands.watch.watch import DirtyWatcher
from tests import pg_servers, roles
from tests.conftest import wait_for

FILES = {"1_users.up.sql": "CREATE TABLE users (id bigserial PRIMARY KEY, email text NOT NULL);",
         "1_users.down.sql": "DROP TABLE users;",
         "2_orders.up.sql": "CREATE TABLE orders (id bigint PRIMARY KEY, user_id bigint REFERENCES users);",
         "2_orders.down.sql": "DROP TABLE orders;"}


@pytest.fixture(scope="module", params=["pg18-wheel", "pg14"])
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The wheel's 18, then an npm build of 14 (tests/pg_servers.py), for every test here."""
    if request.param == "pg18-wheel":
        yield request.getfixturevalue("wheel_server_url")
        return
    server = pg_servers.start("pg14-lp", 14, pg_servers.npm_bin_dir(14))
    try:
        yield server.url
    finally:
        server.stop()


def major(bed) -> int:
    return bed.query("SELECT current_setting('server_version_num')::int / 10000")[0][0]


def snapshots(bed) -> list[str]:
    directory = bed.settings.environment("test").snapshot_dir
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def databases(app_role) -> set[str]:
    return {row[0] for row in app_role.admin("SELECT datname FROM pg_database")}


def refused(result, operation: str) -> Refusal:
    assert isinstance(result, Refusal), result
    assert (result.reason, result.operation) == (Reason.MISSING_PRIVILEGE, operation)
    assert result.shortfall is not None and result.shortfall.missing
    return result


def test_every_migrate_and_snapshot_operation_works_under_the_role(make_bed, app_role):
    bed = make_bed(FILES, url=app_role.url)
    for text in ("migrate status", "migrate validate", "migrate plan", "migrate dry-run", "snapshot list",
                 "dbops lock status", "rollback"):
        assert bed.run(text).outcome in (Outcome.DONE, Outcome.NO_CHANGE), text
    assert bed.run("migrate up 1").outcome is Outcome.DONE  # creates schema_migrations: CREATE on public
    assert bed.run("migrate up").outcome is Outcome.DONE
    assert bed.run("migrate down 1").outcome is Outcome.DONE
    assert bed.run("migrate goto 2").outcome is Outcome.DONE
    assert bed.run("migrate force 1").outcome is Outcome.DONE and bed.state() == (1, False)
    assert bed.run("migrate force 2").outcome is Outcome.DONE
    created = bed.run('snapshot create --reason "least privilege"')
    assert created.outcome is Outcome.DONE
    name = created.snapshot.name
    assert bed.run(f"snapshot verify {name}").outcome is Outcome.DONE
    assert bed.run(f"snapshot pin {name}").outcome is Outcome.DONE
    assert bed.run(f"snapshot unpin {name}").outcome is Outcome.DONE
    assert bed.run("snapshot cleanup --dry-run").outcome in (Outcome.DONE, Outcome.NO_CHANGE)
    assert bed.run("snapshot cleanup").outcome in (Outcome.DONE, Outcome.NO_CHANGE)
    assert bed.run('rollback --steps 1 --reason "least privilege"').outcome is Outcome.DONE
    assert bed.state() == (1, False)
    assert bed.run("dbops lock release").outcome is Outcome.NO_CHANGE


def test_an_in_place_restore_is_refused_naming_the_owner_before_any_snapshot_and_works_once_granted(make_bed,
                                                                                                   app_role):
    role, db = app_role.name, app_role.database
    bed = make_bed(FILES, url=app_role.url)
    bed.run("migrate up")
    snapshot = bed.run('snapshot create --reason "empty"').snapshot.name
    bed.execute("INSERT INTO users (email) VALUES ('ana@example.com')")
    before = snapshots(bed)

    result = refused(bed.run(f"snapshot restore {snapshot}"), "snapshot restore")

    fixes = [m.fix for m in result.shortfall.missing]
    if major(bed) >= 15:  # public belongs to pg_database_owner: only the database's owner can give it back
        assert fixes == [f"ALTER DATABASE {db} OWNER TO {role}"]
        assert "schema public back to its owner" in result.shortfall.missing[0].what
    else:  # public belongs to the bootstrap superuser; recreating it needs CREATE on the database
        assert fixes == [f"ALTER SCHEMA public OWNER TO {role}", f"GRANT CREATE ON DATABASE {db} TO {role}"]
        assert result.shortfall.missing[0].what.startswith("ownership of schema public")
    assert result.shortfall.setting == 'restore_mode = "new-database"'
    assert "ALTER ROLE " + role + " CREATEDB" in [m.fix for m in result.shortfall.setting_needs]
    text = result_text(result, command=f"snapshot restore {snapshot}")
    assert f"refused: database role `{role}` lacks what it needs\nNothing was changed" in text
    assert 'Or set `restore_mode = "new-database"` under `[environments.test]`, which needs:' in text
    assert snapshots(bed) == before  # no safety snapshot was taken
    assert bed.query("SELECT email FROM users") == [("ana@example.com",)]

    for fix in fixes:  # what it names is what it takes
        app_role.admin(fix)
    # A snapshot taken since: on 14 an older one gives public back to the bootstrap superuser.
    granted = bed.run('snapshot create --reason "granted"').snapshot.name
    bed.execute("INSERT INTO users (email) VALUES ('bo@example.com')")
    assert bed.run(f"snapshot restore {granted}").outcome is Outcome.DONE
    assert bed.query("SELECT email FROM users") == [("ana@example.com",)]


def test_a_new_database_restore_without_createdb_is_refused_naming_it_and_the_in_place_alternative(make_bed,
                                                                                                  app_role):
    role, db = app_role.name, app_role.database
    bed = make_bed(FILES, url=app_role.url, restore_mode="new-database", restore_jobs=2)
    bed.run("migrate up")
    snapshot = bed.run('snapshot create --reason "empty"').snapshot.name
    bed.execute("INSERT INTO users (email) VALUES ('ana@example.com')")
    before, existing = snapshots(bed), databases(app_role)

    result = refused(bed.run(f'rollback --snapshot {snapshot} --reason "least privilege"'), "snapshot restore")

    assert [m.fix for m in result.shortfall.missing] == [f"ALTER ROLE {role} CREATEDB",
                                                         f"ALTER DATABASE {db} OWNER TO {role}"]
    assert result.shortfall.missing[0].what == "CREATEDB (the restore creates a database beside this one)"
    assert result.shortfall.setting == 'restore_mode = "in-place"'
    text = result_text(result, command=f"rollback --snapshot {snapshot}")
    assert "internal error" not in text and "Traceback" not in text
    assert f"\n• CREATEDB (the restore creates a database beside this one): `ALTER ROLE {role} CREATEDB`" in text
    assert (snapshots(bed), databases(app_role)) == (before, existing)  # no snapshot, no database made
    assert bed.query("SELECT email FROM users") == [("ana@example.com",)]

    for fix in [m.fix for m in result.shortfall.missing]:
        app_role.admin(fix)
    restored = bed.run(f"snapshot restore {snapshot}")
    assert (restored.outcome, restored.jobs) == (Outcome.DONE, 2)  # pg_restore --jobs as the role
    assert bed.query("SELECT email FROM users") == []


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_new_database_restore_gives_a_table_back_to_the_role_that_owns_it_in_one_transaction_or_in_parallel(
        make_bed, app_role, jobs):
    """The role restores what another role owns (a schema and its table) when it is a member of
    that role: pg_restore --jobs as the one-transaction path does."""
    owner = f"reporting_{jobs}_{secrets.token_hex(3)}"
    app_role.admin(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner)).as_string(None))
    app_role.grant(f"GRANT {owner} TO {{role}}; ALTER ROLE {{role}} CREATEDB; ALTER DATABASE {{database}} OWNER TO {{role}}")
    bed = make_bed(FILES, url=app_role.url, restore_mode="new-database", restore_jobs=jobs)
    bed.run("migrate up")
    bed.execute(sql.SQL("CREATE SCHEMA reporting AUTHORIZATION {0}; CREATE TABLE reporting.report (n int); "
                        "INSERT INTO reporting.report VALUES (1); ALTER TABLE reporting.report OWNER TO {0}")
                .format(sql.Identifier(owner)))
    snapshot = bed.run('snapshot create --reason "owned by another role"').snapshot.name
    bed.execute("INSERT INTO users (email) VALUES ('ana@example.com')")

    restored = bed.run(f"snapshot restore {snapshot}")

    assert (restored.outcome, restored.jobs) == (Outcome.DONE, jobs)
    assert bed.query("SELECT tableowner FROM pg_tables WHERE tablename = 'report'") == [(owner,)]
    assert bed.query("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'reporting'") == [(owner,)]
    assert bed.query("SELECT n FROM reporting.report") == [(1,)] and bed.query("SELECT email FROM users") == []


def test_a_restore_the_role_cannot_do_is_refused_at_request_time_so_nobody_is_asked_to_approve_it(make_bed, app_role,
                                                                                                 control_url):
    bed = make_bed(FILES, url=app_role.url, control=control_url, restore_mode="new-database",
                   require_approval=["restore", "up"], approvers=["U0BOB"])
    migrate_control_database(control_url)
    bed.executor = Executor(bed.settings, PgDatabases(application_name="dbops-test"), PgDumpSnapshotter(),
                            approvals=PgApprovals(control_url), probe=PgProbe())
    snapshot = bed.run('snapshot create --reason "empty"').snapshot.name

    refused(bed.run(f"snapshot restore {snapshot}"), "snapshot restore")
    assert bed.run("migrate up").outcome is Outcome.AWAITING_APPROVAL  # what it can do is still asked for

    with psycopg.connect(control_url) as conn:
        assert conn.execute("SELECT operation FROM dbops_approvals").fetchall() == [("up",)]


def test_a_table_the_role_cannot_read_refuses_up_before_the_version_table_or_a_snapshot_exists(make_bed, app_role):
    role = app_role.name
    app_role.admin("CREATE TABLE payroll_archive (id int)")  # the superuser's, granted to nobody
    bed = make_bed(FILES, url=app_role.url)

    result = refused(bed.run("migrate up"), "up")

    assert [m.fix for m in result.shortfall.missing] == [f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; "
                                                         f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"]
    assert "public.payroll_archive (no SELECT)" in result.shortfall.missing[0].what
    assert bed.state() is None and snapshots(bed) == []  # not even schema_migrations was created
    refused(bed.run('snapshot create --reason "x"'), "snapshot create")
    refused(bed.run("migrate force 1"), "force")

    app_role.grant("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    assert bed.run("migrate up").outcome is Outcome.DONE


def test_without_create_on_the_schema_up_is_refused_naming_the_grant_and_creates_nothing(make_bed, app_role):
    role = app_role.name
    app_role.admin(sql.SQL("REVOKE CREATE ON SCHEMA public FROM PUBLIC, {}").format(sql.Identifier(role)))
    bed = make_bed(FILES, url=app_role.url)

    result = refused(bed.run("migrate up"), "up")

    assert [(m.what, m.fix) for m in result.shortfall.missing] == [
        ("CREATE on schema public (to create the version table public.schema_migrations)",
         f"GRANT CREATE ON SCHEMA public TO {role}")]
    assert bed.state() is None and snapshots(bed) == []


def test_a_migration_altering_another_roles_table_fails_cleanly_at_the_previous_version(make_bed, app_role):
    app_role.admin(sql.SQL("CREATE TABLE ledger (id int); GRANT SELECT ON ledger TO {}").format(
        sql.Identifier(app_role.name)))
    bed = make_bed({**FILES, "3_ledger.up.sql": "ALTER TABLE ledger ADD COLUMN note text;",
                    "3_ledger.down.sql": "ALTER TABLE ledger DROP COLUMN note;"}, url=app_role.url)
    bed.run("migrate up 2")

    result = bed.run("migrate up")

    assert isinstance(result, MigrateResult) and result.outcome is Outcome.FAILED
    assert (result.failure.error.sqlstate, result.failure.error.message) == ("42501", "must be owner of table ledger")
    assert result.failure.error.hint == PRIVILEGE_HINT
    text = result_text(result, command="migrate up")
    assert "must be owner of table ledger" in text and "/dbops doctor lists what the role lacks" in text
    assert bed.state() == (2, False)  # rolled back: clean at the previous version
    assert bed.query("SELECT count(*) FROM information_schema.columns WHERE table_name = 'ledger'") == [(1,)]


def test_a_version_table_the_role_cannot_read_is_a_fault_naming_the_privilege_not_an_internal_error(make_bed,
                                                                                                    app_role):
    app_role.admin("CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null)")
    bed = make_bed(FILES, url=app_role.url)

    with pytest.raises(PrivilegeError, match="PostgreSQL said: permission denied for table schema_migrations"):
        bed.run("migrate status")
    with pytest.raises(PrivilegeError, match="permission denied for table schema_migrations"):
        bed.run("migrate up")  # its lint reads the version first
    result = refused(bed.run("migrate force 1"), "force")  # the up-front check names the grants before any SQL
    role = app_role.name
    assert [m.fix for m in result.shortfall.missing] == [
        f"GRANT SELECT, INSERT, DELETE ON public.schema_migrations TO {role}",
        f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}"]


@pytest.fixture
def other_role(app_role) -> Iterator[str]:
    """A second application role's session in the app's database, holding the migration lock, idle."""
    name, password = f"other_{uuid.uuid4().hex[:12]}", secrets.token_urlsafe(18)
    app_role.admin(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
        sql.Identifier(name), sql.Literal(password), sql.Identifier(roles.PASSWORD_GROUP)))
    key = golang_migrate_lock_key(schema="public", table="schema_migrations", database_url=app_role.url)
    conn = psycopg.connect(roles.role_url(app_role.url, name, password), autocommit=True,
                           application_name="deploy-migrate")
    try:
        conn.execute("SELECT pg_advisory_lock(%s)", (key,))
        yield name
    finally:
        conn.close()
        app_role.admin(sql.SQL("DROP ROLE {}").format(sql.Identifier(name)))


def alive(app_role, user: str) -> bool:
    return bool(app_role.admin("SELECT 1 FROM pg_stat_activity WHERE usename = %s", (user,)))


def test_lock_status_says_another_roles_session_is_hidden_instead_of_showing_blanks(make_bed, app_role, other_role):
    bed = make_bed(FILES, url=app_role.url)

    result = bed.run("dbops lock status")

    assert result.holder.hidden and result.holder.user == other_role
    assert result.holder.application_name == "deploy-migrate"
    text = result_text(result, command="dbops lock status")
    assert f"Advisory lock (golang-migrate's): pid {result.holder.pid} (deploy-migrate, user {other_role}, from a " \
           "client hidden from dbops' role)" in text
    assert "its state is hidden: it is another role's session, and PostgreSQL shows that only to members of " \
           "pg_read_all_stats" in text
    assert "local socket" not in text and "unknown time" not in text


def test_lock_release_of_another_roles_session_is_refused_naming_pg_signal_backend_until_granted(make_bed, app_role,
                                                                                                 other_role):
    role = app_role.name
    bed = make_bed(FILES, url=app_role.url, stale_lock_minutes=0)

    result = refused(bed.run("dbops lock release"), "dbops lock release")

    assert [m.fix for m in result.shortfall.missing] == [f"GRANT pg_signal_backend TO {role}",
                                                         f"GRANT pg_read_all_stats TO {role}"]
    assert "GRANT pg_signal_backend TO" in result_text(result, command="dbops lock release")
    assert alive(app_role, other_role)  # nothing was ended

    app_role.grant("GRANT pg_signal_backend, pg_read_all_stats TO {role}")
    released = bed.run("dbops lock release")
    assert released.outcome is Outcome.DONE and released.terminated == released.holder.pid
    wait_for(lambda: not alive(app_role, other_role), what="the stale holder's session to end")


def test_the_dirty_watcher_reads_the_state_under_the_role(make_bed, app_role, control_url):
    bed = make_bed({**FILES, "3_index.up.sql": "CREATE INDEX CONCURRENTLY users_missing ON users (no_such_column);",
                    "3_index.down.sql": ""}, url=app_role.url, control=control_url, channels=["C0INCIDENT"])
    migrate_control_database(control_url)
    assert bed.run("migrate up").outcome is Outcome.FAILED and bed.state() == (3, True)
    watcher = DirtyWatcher(PgDatabases(application_name="dbops-watch"), PgAlerts(control_url),
                           audit=PgAuditLog(control_url), clock=lambda: datetime.now(timezone.utc))

    opened = watcher.tick(bed.settings.environment("test"))

    assert [event.kind for event in opened] == ["opened"]
    assert opened[0].alert.version == 3


def test_cli_text_of_a_missing_privilege_names_the_grant_and_the_setting(make_bed, app_role):
    bed = make_bed(FILES, url=app_role.url, restore_mode="new-database")
    bed.run("migrate up")
    snapshot = bed.run('snapshot create --reason "x"').snapshot.name

    command = f"snapshot restore {snapshot}"
    lines = result_text(bed.executor.run(grammar.parse(command), Actor(user="alice")), command=command)

    assert lines.splitlines()[:2] == [f"test: `dbops snapshot restore` refused: database role `{app_role.name}` lacks "
                                      "what it needs", "Nothing was changed: the role's privileges were checked "
                                      "before any snapshot or SQL."]
    assert lines.splitlines()[-1] == ("  Grant as a superuser or the service's admin role. `dbops doctor test` checks "
                                      "every privilege dbops needs.")


def test_a_preserving_restore_works_under_the_role_and_a_table_it_may_not_read_is_said_not_counted(make_bed,
                                                                                                  app_role):
    from tests.test_preserve import FILES as SHOP, writes_after_the_snapshot
    role, db = app_role.name, app_role.database
    bed = make_bed(SHOP, url=app_role.url, preserve={"orders": ["placed"]})
    fixes = ([f"ALTER DATABASE {db} OWNER TO {role}"] if major(bed) >= 15 else
             [f"ALTER SCHEMA public OWNER TO {role}", f"GRANT CREATE ON DATABASE {db} TO {role}"])
    for fix in fixes:  # what an in-place restore needs under the role (the test above)
        app_role.admin(fix)
    name = writes_after_the_snapshot(bed)

    result = bed.run(f"snapshot restore {name} --preserve")
    assert result.outcome is Outcome.DONE, result
    assert {t.table: (t.imported, t.conflicts) for t in result.preserved.tables} == {
        "public.users": (3, 2), "public.orders": (4, 0)}

    app_role.admin("CREATE TABLE payroll (id int, created_at timestamptz)")  # the superuser's, granted to nobody
    restore = next(o for o in bed.run("rollback").options if o.method == "restore")
    assert [(t.table, t.why) for t in restore.impact.loss.uncountable] == [
        ("public.payroll", "the database role may not read it")]
