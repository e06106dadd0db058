"""``dbops doctor`` under a least-privilege role (tests/roles.py): each shortfall is named with the
grant or the setting that fixes it, the real operation fails as the doctor says (changing
nothing), and works once the named grant is given."""

from __future__ import annotations

import psycopg
import pytest

from bot.cli.shell import result_text
from commands.results import Outcome, Reason
from tests.roles import role_url
from tests.test_doctor import FILES, check_lines, lines_of


def test_least_privilege_new_database_restore_fails_on_createdb_naming_the_grant_and_the_alternative(make_bed,
                                                                                                    app_role):
    role, db = app_role.name, app_role.database
    bed = make_bed(FILES, url=app_role.url, restore_mode="new-database")
    assert bed.run("migrate up").outcome is Outcome.DONE  # migrations work under it

    result = bed.run("dbops doctor")

    assert result.outcome is Outcome.FAILED
    lines = lines_of(result)
    assert lines["database connection"][1].startswith(f"connected as {role} to {db} ")
    assert lines["restore privileges (new-database)"] == (
        "FAIL", f'restore_mode = "new-database" needs what role {role} lacks: CREATEDB (the restore creates a '
                f"database beside this one); ownership of database {db} (it is renamed aside, and kept). "
                "/snapshot restore and /rollback --snapshot would fail, changing nothing")
    assert lines["restore privileges (new-database) fix"][1] == (
        f"ALTER ROLE {role} CREATEDB; ALTER DATABASE {db} OWNER TO {role}. "
        f'Or set restore_mode = "in-place" under [environments.test], which needs ownership of database {db} (from '
        "PostgreSQL 15 the restore gives schema public back to its owner, pg_database_owner): "
        f"ALTER DATABASE {db} OWNER TO {role}.")
    assert lines["lock release privileges"] == (
        "WARN", f"role {role} is not a member of pg_signal_backend (to end another role's session) or "
                f"pg_read_all_stats (to see that another role's session is idle): /dbops lock release ends only "
                f"sessions of {role} itself; a stale lock held by another role is kept, and said so")
    assert lines["lock release privileges fix"][1].startswith(f"GRANT pg_signal_backend, pg_read_all_stats TO {role} ")
    assert lines["unblock privileges"] == (
        "WARN", f"role {role} is not a member of pg_signal_backend (to signal another role's session) or "
                "pg_read_all_stats (to see another role's query, client and state): /migrate unblock signals only "
                "sessions of its own role (or of roles it is a member of); a superuser's session is never signalled")
    assert lines["migration privileges"][0] == lines["snapshot privileges"][0] == "ok"

    # What the doctor names is what it takes: granted, every privilege check passes and a
    # restore into a new database works under the role.
    snapshot = bed.run('snapshot create --reason "before the grants"').snapshot.name
    for grant in ("ALTER ROLE {role} CREATEDB", "ALTER DATABASE {database} OWNER TO {role}",
                  "GRANT pg_signal_backend, pg_read_all_stats TO {role}"):
        app_role.grant(grant)
    granted = bed.run("dbops doctor")
    assert granted.outcome is Outcome.DONE
    assert {name: label for name, (label, _) in lines_of(granted).items() if "privileges" in name} == {
        "migration privileges": "ok", "snapshot privileges": "ok", "restore privileges (new-database)": "ok",
        "lock release privileges": "ok", "unblock privileges": "ok"}
    assert "never a superuser's" in lines_of(granted)["unblock privileges"][1]
    assert bed.run(f"snapshot restore {snapshot}").outcome is Outcome.DONE


def test_in_place_restore_needs_the_database_owner_as_the_doctor_says(make_bed, app_role):
    role, db = app_role.name, app_role.database
    bed = make_bed(FILES, url=app_role.url)
    bed.run("migrate up")
    snapshot = bed.run('snapshot create --reason "empty"').snapshot.name
    bed.execute("INSERT INTO users (email) VALUES ('ana@example.com')")

    lines = lines_of(bed.run("dbops doctor"))

    assert lines["restore privileges (in-place)"][0] == "FAIL"
    assert lines["restore privileges (in-place) fix"][1] == (
        f'ALTER DATABASE {db} OWNER TO {role}. Or set restore_mode = "new-database" under [environments.test], '
        "which needs CREATEDB (the restore creates a database beside this one): "
        f"ALTER ROLE {role} CREATEDB; ownership of database {db} (it is renamed aside, and kept): "
        f"ALTER DATABASE {db} OWNER TO {role}.")
    refused = bed.run(f"snapshot restore {snapshot}")  # refused up front, naming what the doctor names
    assert refused.reason is Reason.MISSING_PRIVILEGE
    assert [m.fix for m in refused.shortfall.missing] == [f"ALTER DATABASE {db} OWNER TO {role}"]
    assert bed.query("SELECT email FROM users") == [("ana@example.com",)]  # rolled back: nothing changed

    app_role.grant("ALTER DATABASE {database} OWNER TO {role}")
    assert lines_of(bed.run("dbops doctor"))["restore privileges (in-place)"] == (
        "ok", f"role {role} can restore a snapshot in place")
    assert bed.run(f"snapshot restore {snapshot}").outcome is Outcome.DONE
    assert bed.query("SELECT email FROM users") == []


def test_a_table_the_role_cannot_read_fails_the_snapshot_check_as_pg_dump_fails(make_bed, app_role):
    role = app_role.name
    bed = make_bed(FILES, url=app_role.url)
    bed.run("migrate up")
    app_role.admin("CREATE TABLE payroll_archive (id int)")  # the superuser's, granted to nobody

    lines = lines_of(bed.run("dbops doctor"))

    assert lines["snapshot privileges"] == (
        "FAIL", f"pg_dump as {role} cannot read public.payroll_archive (no SELECT): every snapshot fails, and with it "
                "every migration (each takes one first)")
    assert lines["snapshot privileges fix"][1] == (f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}; "
                                                   f"GRANT SELECT ON ALL SEQUENCES IN SCHEMA public TO {role}.")
    assert lines["migration privileges"] == (
        "WARN", f"role {role} can run migrations, but: 1 object belongs to other roles (public.payroll_archive): a "
                "migration that alters or drops one of them fails")
    refused = bed.run('snapshot create --reason "x"')  # refused before pg_dump runs, with the doctor's fix
    assert refused.reason is Reason.MISSING_PRIVILEGE
    assert [m.fix + "." for m in refused.shortfall.missing] == [lines["snapshot privileges fix"][1]]

    app_role.grant("GRANT SELECT ON ALL TABLES IN SCHEMA public TO {role}")
    assert lines_of(bed.run("dbops doctor"))["snapshot privileges"][0] == "ok"
    assert bed.run('snapshot create --reason "x"').outcome is Outcome.DONE


def test_a_wrong_password_fails_the_connection_masked_and_skips_what_needs_it(make_bed, app_role):
    bed = make_bed(FILES, url=role_url(app_role.url, app_role.name, "not-the-password"))

    result = bed.run("dbops doctor")

    text = result_text(result, command="dbops doctor")
    lines = check_lines(text)
    label, detail = lines["database connection"]
    assert label == "FAIL" and f'password authentication failed for user "{app_role.name}"' in detail
    assert "not-the-password" not in text and ":****@" in detail
    assert lines["database connection fix"][1].startswith("Check database_url under [environments.test]")
    assert {name: lines[name] for name in ("client tools", "migration privileges", "restore privileges",
                                           "free space") if name in lines} == {
        "client tools": ("skip", "not checked: the server's version is unknown (no connection)"),
        "migration privileges": ("skip", "not checked: the database connection failed"),
        "restore privileges": ("skip", "not checked: the database connection failed"),
        "free space": ("skip", "not checked: the database's size is unknown (no connection)")}


def test_the_app_role_is_least_privilege_and_logs_in_only_with_its_password(app_role):
    with psycopg.connect(app_role.url) as conn:
        assert conn.execute(
            "SELECT rolsuper, rolcreatedb, rolcreaterole, rolreplication, rolbypassrls, "
            "pg_has_role('pg_signal_backend', 'MEMBER'), pg_get_userbyid(d.datdba) = current_user "
            "FROM pg_roles, pg_database d WHERE rolname = current_user AND d.datname = current_database()"
        ).fetchone() == (False, False, False, False, False, False, False)
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(role_url(app_role.url, app_role.name, "guessed")).close()
