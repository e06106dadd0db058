"""`/migrate drift` on real PostgreSQL: the live schema against the schema its recorded version
should have, built by applying the files to a scratch database (cached in the control database)."""

from __future__ import annotations

import psycopg
import pytest

from bot.cli.shell import result_text
from commands.pg.catalog import read_schema
from commands.pg.scratch import SCRATCH_PREFIX, ScratchFailed
from commands.results import Outcome
from commands.schema.results import DriftResult

FILES = {
    "1_users.up.sql": "CREATE TABLE users (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, age integer,\n"
                      "  email text NOT NULL, CONSTRAINT users_age_positive CHECK (age > 0));",
    "1_users.down.sql": "DROP TABLE users;",
    "2_events.up.sql": "CREATE TABLE events (id serial PRIMARY KEY, user_id bigint REFERENCES users (id),\n"
                       "  starts_at timestamptz NOT NULL DEFAULT now());\n"
                       "CREATE INDEX idx_events_start ON events (starts_at);",
    "2_events.down.sql": "DROP TABLE events;",
    "3_functions.up.sql": "CREATE FUNCTION adult(age integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT age >= 18 $$;\n"
                          "CREATE TYPE mood AS ENUM ('happy', 'sad');",
    "3_functions.down.sql": "DROP FUNCTION adult(integer); DROP TYPE mood;",
}


def drift(bed) -> tuple[DriftResult, str]:
    result = bed.run("migrate drift test")
    assert isinstance(result, DriftResult), result
    return result, result_text(result, command="migrate drift test")


def scratch_databases(bed) -> list[str]:
    return [r[0] for r in bed.query("SELECT datname FROM pg_database WHERE datname LIKE %s", (SCRATCH_PREFIX + "%",))]


def test_no_drift_after_a_clean_up_and_the_scratch_database_is_dropped(make_bed):
    bed = make_bed(FILES)
    assert bed.run("migrate up test").outcome is Outcome.DONE
    result, text = drift(bed)
    assert result.outcome is Outcome.DONE and result.differences == ()
    assert "no drift: the schema is exactly version 3" in text
    assert result.built_on == "the managed server"
    assert scratch_databases(bed) == []


def test_no_drift_for_any_kind_of_object_after_a_clean_up(make_bed):
    from tests.schema_history import HISTORY
    bed = make_bed(HISTORY)
    assert bed.run("migrate up test").outcome is Outcome.DONE
    result, _ = drift(bed)
    assert result.differences == () and result.expected_major == result.live_major


def test_drift_names_out_of_band_column_index_constraint_and_function_changes(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up test")
    bed.execute("""
        ALTER TABLE users ADD COLUMN nickname text;
        ALTER TABLE users DROP CONSTRAINT users_age_positive;
        ALTER TABLE users ALTER COLUMN age TYPE text;
        ALTER TABLE users ADD CONSTRAINT users_email_present CHECK (email <> '') NOT VALID;
        DROP INDEX idx_events_start;
        CREATE OR REPLACE FUNCTION adult(age integer) RETURNS boolean LANGUAGE sql IMMUTABLE AS $$ SELECT age >= 21 $$;
        ALTER TYPE mood ADD VALUE 'calm';
    """)
    result, text = drift(bed)
    assert result.outcome is Outcome.FAILED
    lines = [line.strip().strip("`") for line in text.splitlines()]
    for expected in ("+ column users.nickname text",
                     "~ column users.age: integer → text",
                     "- constraint users.users_age_positive CHECK ((age > 0))",
                     "+ constraint users.users_email_present CHECK ((email <> ''::text)) NOT VALID",
                     "- index idx_events_start CREATE INDEX idx_events_start ON public.events USING btree (starts_at)",
                     "~ type mood values: happy, sad → happy, sad, calm"):
        assert expected in lines, (expected, text)
    assert any(line.startswith("~ function adult(age integer) body md5: ") for line in lines), text
    assert "drift from version 3: 7 differences" in text
    # The comparison is deterministic: the same databases, the same list in the same order.
    assert drift(bed)[0].differences == result.differences


def test_an_invalid_index_is_broken_not_different(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up test")
    bed.execute("UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'idx_events_start'::regclass")
    _, text = drift(bed)
    assert "! index idx_events_start is INVALID" in text


def test_dirty_or_unknown_versions_are_answered_plainly(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up test")
    bed.execute("UPDATE schema_migrations SET dirty = true")
    result, text = drift(bed)
    assert result.outcome is Outcome.REFUSED and result.unmeasured == "dirty"
    assert "drift is measured against a clean, known version" in text
    bed.execute("UPDATE schema_migrations SET dirty = false, version = 9")
    result, text = drift(bed)
    assert result.unmeasured == "unknown_version" and "no migration file has" in text
    assert scratch_databases(bed) == []


def test_the_cache_is_used_on_the_second_check_and_an_edited_file_invalidates_it(make_bed, control_url):
    bed = make_bed(FILES, control=control_url)
    bed.run("migrate up test")

    def cache() -> list[tuple]:
        with psycopg.connect(control_url) as conn:
            return conn.execute("SELECT version, uses FROM dbops_schema_cache ORDER BY built_at").fetchall()

    first, _ = drift(bed)
    assert not first.cached and cache() == [(3, 0)]
    second, text = drift(bed)
    assert second.cached and second.differences == () and cache() == [(3, 1)]
    assert "from the cache" in text
    # An edited applied file is another set of files: its schema is built anew (and now differs).
    bed.write({"2_events.up.sql": FILES["2_events.up.sql"].replace("(starts_at)", "(starts_at, user_id)")})
    third, text = drift(bed)
    assert not third.cached and cache() == [(3, 1), (3, 0)]
    assert "~ index idx_events_start: CREATE INDEX idx_events_start ON public.events USING btree (starts_at, user_id)" \
           " → CREATE INDEX idx_events_start ON public.events USING btree (starts_at)" in text


def test_a_file_that_fails_on_an_empty_database_is_reported_and_the_scratch_database_dropped(make_bed):
    bed = make_bed(FILES)
    bed.run("migrate up test")
    bed.write({"4_bad.up.sql": "ALTER TABLE nowhere ADD COLUMN x int;"})
    bed.execute("UPDATE schema_migrations SET version = 4")
    with pytest.raises(ScratchFailed) as failed:
        bed.run("migrate drift test")
    assert failed.value.message.startswith("The migration files do not apply to an empty database: 4_bad (line 1) "
                                           'failed: relation "nowhere" does not exist.')
    assert scratch_databases(bed) == []


def test_a_role_without_createdb_builds_on_the_embedded_server_and_says_so(make_bed, app_role):
    bed = make_bed(FILES, url=app_role.url)
    bed.run("migrate up test")
    result, text = drift(bed)
    assert result.built_on == "embedded PostgreSQL" and result.differences == ()
    assert "from embedded PostgreSQL" in text


def test_a_role_without_createdb_uses_scratch_database_url(make_bed, app_role, server_url):
    bed = make_bed(FILES, url=app_role.url, scratch_database_url=server_url)
    bed.run("migrate up test")
    app_role.admin("ALTER TABLE users ADD COLUMN nickname text")
    result, text = drift(bed)
    assert result.built_on == "scratch_database_url"
    assert "+ column users.nickname text" in text
    assert scratch_databases(bed) == []


def test_a_least_privilege_role_reads_the_schema_as_the_superuser_does(make_bed, app_role):
    from tests.schema_history import HISTORY
    app_role.grant("GRANT CREATE ON DATABASE {database} TO {role}")  # for CREATE SCHEMA audit
    bed = make_bed(HISTORY, url=app_role.url)
    assert bed.run("migrate up test").outcome is Outcome.DONE
    app_role.admin("CREATE FUNCTION admins_only() RETURNS int LANGUAGE sql AS 'SELECT 1'; "
                   "REVOKE ALL ON FUNCTION admins_only() FROM PUBLIC")
    readings = []
    for url in (app_role.url, app_role.admin_url):
        with psycopg.connect(url, autocommit=True) as conn:
            readings.append(read_schema(conn, version_schema=None, version_table="schema_migrations"))
    assert readings[0] == readings[1]
    assert readings[0].get("function", "admins_only()") is not None
    assert readings[0].get("table", "schema_migrations") is None


def test_slack_answers_drift_privately_with_the_differences(make_bed, control_url):
    from tests.slack_bed import serving, text_of
    from tests.slack_fake import FakeSlack
    with FakeSlack() as fake:
        bed = make_bed(FILES, control=control_url, channels=["C0INCIDENT"])
        bed.run("migrate up test")
        bed.execute("ALTER TABLE users ADD COLUMN nickname text")
        with serving(bed, fake, control_url) as scenario:
            status, ack, url = scenario.command("drift")
            assert status == 200 and ack == ""
            reply = scenario.reply(url, timeout=60)
    assert reply["response_type"] == "ephemeral"
    shown = text_of(reply)
    assert "drift from version 3: 1 difference" in shown and "+ column users.nickname text" in shown
    assert fake.calls_to("chat.postMessage") == []  # read-only: nothing in the channel
