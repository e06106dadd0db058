"""What a killed new-database restore leaves behind, on real PostgreSQL: its half-loaded
``<target>_restoring_<stamp>`` database is named by ``/dbops doctor`` and dropped by the next
restore (which holds the migration lock, so no other restore of that target can be loading
it); the kept ``_before_restore_`` databases, which are the undo, and look-alikes stay."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from psycopg import sql

from bot.cli.shell import result_text
from commands.pg.embedded import database_url
from commands.pg.restore_names import is_restoring_name, restoring_name
from commands.results import Outcome
from tests.test_doctor import lines_of

FILES = {"1_users.up.sql": "CREATE TABLE users (id int PRIMARY KEY, email text);"
                           "INSERT INTO users VALUES (1, 'a@example.com');",
         "1_users.down.sql": "DROP TABLE users;"}


def databases(bed, target: str) -> set[str]:
    """The databases beside ``target`` (named ``target_…``)."""
    return {name for (name,) in bed.query("SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                          (target + "_",))}


@pytest.fixture
def by_hand(make_bed) -> Iterator:
    """A new-database environment, its database's name, and a way to make databases beside it by
    hand; whatever is beside it at the end is dropped."""
    bed = make_bed(FILES, restore_mode="new-database", restore_jobs=1)
    target = bed.query("SELECT current_database()")[0][0]

    def create(name: str) -> str:
        bed.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return name
    yield bed, target, create
    for name in databases(bed, target):
        bed.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_killed_restores_database_is_named_by_doctor_and_dropped_by_the_next_restore(by_hand):
    bed, target, create = by_hand
    assert bed.run("migrate up").outcome is Outcome.DONE
    name = bed.run('snapshot create --reason "before the incident"').snapshot.name
    # What a SIGKILLed restore leaves: its fresh database, half-loaded, one of its pg_restore
    # jobs maybe still connected. Beside it, a kept database (the undo of an earlier restore)
    # and two look-alikes that are not dbops' to drop.
    abandoned = create(restoring_name(target, "20260101_120000"))
    with psycopg.connect(database_url(bed.url, abandoned), autocommit=True) as loading:
        loading.execute("CREATE TABLE users (id int PRIMARY KEY, email text); INSERT INTO users VALUES (1, 'a')")
        kept = create(f"{target}_before_restore_20251231_090000")
        others = {create(f"{target}_restoring_notes"), create(f"{target}_restoring_20260101_120000_x")}

        doctor = bed.run("dbops doctor")

        line = lines_of(doctor)["abandoned restores"]
        assert line == ("WARN", f"database {abandoned} is left from a restore of {target} killed part-way: "
                                "half-loaded, taking space, and used by nothing")
        assert lines_of(doctor)["abandoned restores fix"][1] == (
            "The next /snapshot restore test drops it first. Or, unless a restore is running now (/dbops lock "
            f"status test), by hand: DROP DATABASE {abandoned} WITH (FORCE);")

        bed.execute("INSERT INTO users VALUES (2, 'b@example.com')")
        restored = bed.run(f"snapshot restore {name}")

    assert restored.outcome is Outcome.DONE and restored.abandoned_dropped == (abandoned,)
    assert bed.query("SELECT id FROM users ORDER BY id") == [(1,)]
    assert databases(bed, target) == {kept, *others, restored.kept_database}
    card = result_text(restored, command=f"snapshot restore {name}")
    assert (f"Dropped first: `{abandoned}`, half-loaded by a restore of test that was killed part-way (the database "
            "it was loading; never a kept one).") in card
    assert "abandoned restores" not in lines_of(bed.run("dbops doctor"))


def test_only_names_a_restore_gives_its_own_target_count_whole_or_cut_at_63_characters():
    assert is_restoring_name("shop_restoring_20260101_120000", "shop")
    assert is_restoring_name("shop_restoring_20260101_120000_2", "shop")
    assert not is_restoring_name("shop_before_restore_20260101_120000", "shop")
    assert not is_restoring_name("shop_restoring_20260101_120000", "sho")  # another target's: sho_restoring_…
    assert not is_restoring_name("shop_restoring_notes", "shop")
    long = "t" * 45  # its restoring names are cut inside the stamp
    cut = restoring_name(long, "20260101_120000")
    assert len(cut) == 63 and is_restoring_name(cut, long)
    assert not is_restoring_name(cut[:-1] + "x", long)
    longest = "u" * 63  # no room for the stamp: a restoring name would be the target itself, and is never trusted
    assert not is_restoring_name(restoring_name(longest, "20260101_120000"), longest)
