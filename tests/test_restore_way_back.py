"""The database a new-database restore replaced, on real PostgreSQL: the restore card says what it
is for, how much it still takes, and the two ways back, and the SQL it gives works as written."""

from __future__ import annotations

import psycopg
from psycopg import sql

from bot.cli.shell import result_text
from commands.pg.embedded import database_url
from commands.results import Outcome
from commands.units import human_size

FILES = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY, email text);"
                           "INSERT INTO users SELECT g, 'u' || g || '@example.com' FROM generate_series(1, 500) g;",
         "1_users.down.sql": "DROP TABLE users;"}


def test_the_card_gives_the_way_back_to_the_replaced_database_and_its_sql_puts_it_back(make_bed):
    bed = make_bed(FILES, restore_mode="new-database", restore_jobs=1)
    target = bed.query("SELECT current_database()")[0][0]
    assert bed.run("migrate up").outcome is Outcome.DONE
    name = bed.run('snapshot create --reason "before the incident"').snapshot.name
    bed.execute("DELETE FROM users WHERE id > 100")  # the incident the restore undoes

    result = bed.run(f"snapshot restore {name}")

    kept = result.kept_database
    try:
        assert result.outcome is Outcome.DONE and bed.query("SELECT count(*) FROM users") == [(500,)]
        card = result_text(result, command=f"snapshot restore {name}")
        size = bed.query("SELECT pg_database_size(%s)", (kept,))[0][0]
        assert (f"The database it replaced is kept as `{kept}`: {target} exactly as it was before this restore, to "
                "go back to. It is closed to connections (ALLOW_CONNECTIONS false) so that nothing writes to it by "
                f"mistake, and it still takes {human_size(size)} on the database server until it is dropped.") in card
        assert ("Restore the safety snapshot, taken just before this restore, through the lock and any approval: "
                f"`dbops snapshot restore {result.safety_snapshot} test`") in card
        assert "Or rename it back by hand, at once: stop the application" in card
        assert f"When it is no longer needed: `DROP DATABASE {kept};`" in card

        # Going back by hand, as the card says: from the server's postgres database, its SQL as written.
        statements = [line for line in card.splitlines() if line.startswith(("ALTER DATABASE", "SELECT pg_"))]
        assert len(statements) == 5
        with psycopg.connect(database_url(bed.url, "postgres"), autocommit=True) as admin:
            for statement in statements:
                admin.execute(statement)
        assert bed.query("SELECT count(*) FROM users") == [(100,)]  # the database as it was before the restore
        assert bed.run("migrate status").outcome is Outcome.DONE
        aside = f"{target}_restored_{kept.rsplit('_before_restore_', 1)[-1]}"
        assert f"set aside as `{aside}`, with what was written to it since" in card
        assert bed.query("SELECT datname FROM pg_database WHERE datname IN (%s, %s) ORDER BY 1", (aside, kept)) == [
            (aside,)]
    finally:
        for leftover in (kept, f"{target}_restored_{kept.rsplit('_before_restore_', 1)[-1]}"):
            bed.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(leftover)))
