"""Restoring a snapshot atomically: all of it, or the database exactly as it was.

in-place:     one psql session; dbops writes BEGIN, a prelude that empties every user
              schema (so objects created after the snapshot go too), the snapshot's SQL,
              and COMMIT only once all of it arrived. A failure anywhere, or this process
              dying, ends psql's input inside the open transaction: the server rolls back.
new-database: restore into a fresh database, then rename it over the old one in one
              transaction; the old one is kept for undo. With more than one job
              (``restore_jobs``, sized to the server by default) pg_restore loads the fresh
              database in parallel from a temporary copy of the archive
              (``commands.pg.parallel_restore``); any failure drops the fresh database, so the
              old one is as it was either way. Legacy scripts take the one-transaction path.

SQL only: psql runs the snapshot's SQL in restricted mode, where it refuses every
meta-command (``\\!`` would start a shell), with a random key per restore that the file
cannot know. pg_restore writes ``\\restrict`` with a key of its own making before any of a
dbops archive's content; a legacy script is read first (``commands.pg.psql_script``: it
stops at a meta-command) and dbops wraps it in ``\\restrict KEY`` … ``\\unrestrict KEY``,
the key written to psql's stdin, never its command line. Client programs without
restricted mode are refused before the database is touched. A parallel restore runs no psql
at all: pg_restore sends the archive's SQL straight to the server, where a meta-command is
only a syntax error (``commands.pg.parallel_restore``).
"""

from __future__ import annotations

import secrets
import subprocess
import tempfile
import threading
import time
from contextlib import contextmanager, nullcontext
from typing import TYPE_CHECKING, Iterator

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from commands.errors import SnapshotFailed
from commands.pg.connect import connect, describe
from commands.pg.embedded import database_url
from commands.pg.parallel_restore import auto_jobs, client_cores, restore_archive, server_room, unpacked
from commands.pg.psql_script import sql_only
from commands.pg.restore_names import drop_abandoned_restores, free_names
from commands.pg.streams import CHUNK, feed, gzip_chunks, stderr_tail, zstd_chunks
from commands.pg.tools import Tools, child_env
from commands.process_env import base_env
from commands.snapshot.snapshots import Restored, Snapshot

if TYPE_CHECKING:
    from commands.pg.statement_progress import Report


class PgRestorer:
    def __init__(self, tools: Tools, *, database: str) -> None:
        """``database`` names the environment in connection errors (``connect.environment``)."""
        self.tools = tools
        self.database = database

    def restore(self, snapshot: Snapshot, *, url: str, mode: str, lock_timeout: str,
                jobs: int | None = 1, progress: Report | None = None) -> Restored:
        """``jobs``: new-database mode's pg_restore jobs; None sizes them to the server
        (``parallel_restore.auto_jobs``); 1 is one transaction. ``progress`` hears what
        PostgreSQL's progress views say of psql's session as it restores (one transaction only:
        parallel jobs run in several sessions, and none of them is sampled)."""
        started = time.perf_counter()
        self._require_restricted_mode(snapshot)
        if mode == "in-place":
            self._restore_in_place(snapshot, url, lock_timeout, progress)
            kept, kept_size, jobs, abandoned = None, None, 1, ()
        else:
            kept, kept_size, jobs, abandoned = self._restore_new_database(snapshot, url, jobs, progress)
        return Restored(database=conninfo_dbname(url), mode=mode, kept_database=kept, kept_size=kept_size, jobs=jobs,
                        duration_ms=(time.perf_counter() - started) * 1000, abandoned_dropped=abandoned)

    def _sql_chunks(self, snapshot: Snapshot, failures: list[str]) -> Iterator[bytes]:
        """The snapshot as SQL: pg_restore's output for dbops snapshots, gunzip for legacy
        ones. Anything that goes wrong on the way is appended to ``failures``."""
        if snapshot.kind == "legacy":
            try:
                # Made by pg_dump 17+ from a server before 17, the script sets transaction_timeout too.
                yield from sql_only(portable_header(gzip_chunks(snapshot)), failures)
            except (OSError, EOFError) as err:
                failures.append(f"the gzip stream is damaged ({err})")
            return
        with tempfile.TemporaryFile() as stderr:
            restore = subprocess.Popen([self.tools.path("pg_restore"), "--clean", "--if-exists", "--file=-"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=base_env())
            feeder = threading.Thread(target=feed, args=(restore.stdin, zstd_chunks(snapshot), failures),
                                      daemon=True)
            feeder.start()
            try:
                yield from portable_header(iter(lambda: restore.stdout.read(CHUNK), b""))
            finally:
                restore.stdout.close()
                feeder.join()
                if restore.wait() != 0:
                    failures.append(f"pg_restore could not read it: {stderr_tail(stderr)}")

    def _psql_restore(self, snapshot: Snapshot, env: dict[str, str], *, prelude: str | None) -> None:
        """Run the snapshot's SQL in one transaction that commits only if all of it arrived.

        dbops writes BEGIN and, once the source has ended cleanly, COMMIT. If the source
        fails, or this process dies, psql reaches the end of its input inside the open
        transaction and the server rolls it back: nothing half-restored is ever committed.
        """
        argv = [self.tools.path("psql"), "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
                "--output=/dev/null", "--file=-"]
        opening, closing = restricted_block(snapshot.kind)
        failures: list[str] = []
        with tempfile.TemporaryFile() as stderr:
            psql = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
            try:
                psql.stdin.write(opening + b"BEGIN;\n" + (prelude.encode() + b"\n" if prelude else b""))
                for chunk in self._sql_chunks(snapshot, failures):
                    psql.stdin.write(chunk)
                if not failures:
                    psql.stdin.write(closing + b"\nCOMMIT;\n")
            except BrokenPipeError:
                pass  # psql stopped at an error; its exit code and stderr say which
            finally:
                try:
                    psql.stdin.close()
                except BrokenPipeError:
                    pass
            code = psql.wait()
            if code != 0:
                said = stderr_tail(stderr)
                why = (" The snapshot holds a psql meta-command, and a restore runs SQL only."
                       if "backslash commands are restricted" in said else "")
                raise SnapshotFailed(f"Restore of {snapshot.name} failed and was rolled back; the database is as it "
                                     f"was.{why} psql said: {said}")
        if failures:
            raise SnapshotFailed(f"Restore of {snapshot.name} was rolled back; the database is as it was: "
                                 f"{'; '.join(failures)}.")

    def _require_restricted_mode(self, snapshot: Snapshot) -> None:
        """Refuse, before the database is touched, to restore through client programs that
        cannot refuse meta-commands: the snapshot's file alone would decide what runs."""
        for program in ("psql",) if snapshot.kind == "legacy" else ("pg_restore", "psql"):
            if not self.tools.restricts_meta_commands(program):
                raise SnapshotFailed(
                    f"{self.tools.path(program)} has no restricted mode (\\restrict, in PostgreSQL 18 and 13.22, "
                    "14.19, 15.14, 16.10, 17.6 or later), so it could run the shell commands a snapshot file may "
                    f"hold. {snapshot.name} was not restored and nothing was changed; set pg_bin_dir to PostgreSQL "
                    "18's client programs.")

    def _restore_in_place(self, snapshot: Snapshot, url: str, lock_timeout: str, progress: Report | None) -> None:
        with connect(url, database=self.database, application_name="dbops-restore") as conn:
            major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]
        with self._watching(url, progress) as named:
            self._psql_restore(snapshot, {**child_env(url, options=f"-c lock_timeout={lock_timeout}"), **named},
                               prelude=empty_schemas_sql(major))

    @contextmanager
    def _watching(self, url: str, progress: Report | None) -> Iterator[dict[str, str]]:
        """psql's session sampled while it restores (``commands.pg.statement_progress``). Its pid is
        psql's to know, so it is found by a name of its own; yields psql's environment for that."""
        if progress is None:
            yield {}
            return
        from commands.pg.statement_progress import RESTORE, StatementWatch
        name = f"dbops-restore-{secrets.token_hex(6)}"
        watch = StatementWatch(lambda: connect(url, database=self.database, application_name="dbops-progress"),
                               None, progress, application_name=name)
        with watch.watching(), watch.running(RESTORE):
            yield {"PGAPPNAME": name}

    def _restore_new_database(self, snapshot: Snapshot, url: str, jobs: int | None,
                              progress: Report | None) -> tuple[str, int | None, int, tuple[str, ...]]:
        """(the kept database, its size in bytes (None if the server would not say), the jobs
        that restored it, the databases killed restores had left and this one dropped:
        ``restore_names``). The archive is unpacked (when jobs run) before
        anything is created, so a snapshot that cannot be read, or no room for it, changes
        nothing on the server but those leftovers."""
        target = conninfo_dbname(url)
        maintenance = database_url(url, "postgres")
        with connect(maintenance, database=self.database, application_name="dbops-restore") as admin:
            abandoned = drop_abandoned_restores(admin, target)
            fresh, kept = free_names(admin, target)
            room = server_room(admin)
            if snapshot.kind == "legacy":
                jobs = 1  # a plain script has no table of contents to share out
            elif jobs is None:
                jobs = auto_jobs(room, client_cores())
            with unpacked(snapshot) if jobs > 1 else nullcontext() as archive:
                try:
                    admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(fresh)))
                except psycopg.errors.InsufficientPrivilege as err:
                    raise SnapshotFailed(f"Could not create a database to restore {snapshot.name} into: "
                                         f"{describe(err)} (restore_mode = \"new-database\" needs CREATEDB: ALTER "
                                         f"ROLE … CREATEDB, or set restore_mode = \"in-place\"). {target} is "
                                         "unchanged.") from None
                try:
                    if archive is None:
                        with self._watching(url, progress) as named:
                            self._psql_restore(snapshot, {**child_env(url, dbname=fresh), **named}, prelude=None)
                    else:
                        said = restore_archive(self.tools, archive, child_env(url, dbname=fresh), database=fresh,
                                               jobs=jobs, server_major=room.server_major)
                        if said is not None:
                            raise SnapshotFailed(f"Restore of {snapshot.name} failed part-way; the database it was "
                                                 f"loading was dropped and the database is as it was. pg_restore "
                                                 f"said: {said}")
                except BaseException:
                    admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
                    raise
            try:
                self._swap(admin, target, fresh, kept)
            except psycopg.Error as err:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
                raise SnapshotFailed(f"Could not swap in the restored database: {describe(err)}. "
                                     f"{target} is unchanged.") from None
            try:
                kept_size = admin.execute("SELECT pg_database_size(%s)", (kept,)).fetchone()[0]
            except psycopg.Error:  # no CONNECT on it (nor pg_read_all_stats): the card says so without a figure
                kept_size = None
        return kept, kept_size, jobs, abandoned

    @staticmethod
    def _swap(admin: psycopg.Connection, target: str, fresh: str, kept: str) -> None:
        """Rename target -> kept and fresh -> target in one transaction, after closing the
        target to new sessions and ending the ones it has (the application should be stopped)."""
        admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS false").format(sql.Identifier(target)))
        try:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                          "AND pid <> pg_backend_pid()", (target,))
            with admin.transaction():
                admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(target), sql.Identifier(kept)))
                admin.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(fresh), sql.Identifier(target)))
        except psycopg.Error:
            admin.execute(sql.SQL("ALTER DATABASE {} ALLOW_CONNECTIONS true").format(sql.Identifier(target)))
            raise


def restricted_block(kind: str) -> tuple[bytes, bytes]:
    """What dbops writes before and after a legacy script's SQL: psql refuses every
    meta-command in between, and only dbops knows the key that ends it. A dbops archive
    needs none: pg_restore opens and closes its own restricted block."""
    if kind != "legacy":
        return b"", b""
    key = secrets.token_hex(32).encode()
    return b"\\restrict " + key + b"\n", b"\n\\unrestrict " + key


def conninfo_dbname(url: str) -> str:
    return str(conninfo_to_dict(url).get("dbname") or "postgres")


def empty_schemas_sql(server_major: int) -> str:
    """Drop every user schema and large object, then recreate ``public`` as initdb makes it,
    so the snapshot's SQL rebuilds the database exactly (objects made later go too)."""
    public_acl = ("ALTER SCHEMA public OWNER TO pg_database_owner; GRANT USAGE ON SCHEMA public TO PUBLIC;"
                  if server_major >= 15 else "GRANT ALL ON SCHEMA public TO PUBLIC;")
    return (
        "DO $dbops$ DECLARE s record; BEGIN "
        "FOR s IN SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' LOOP "
        "EXECUTE format('DROP SCHEMA %I CASCADE', s.nspname); END LOOP; "
        "PERFORM lo_unlink(oid) FROM pg_largeobject_metadata; END $dbops$; "
        f"CREATE SCHEMA public; {public_acl}"
    )


# pg_restore 18 writes this in its header whatever server the SQL is for; PostgreSQL before 17
# rejects it ("unrecognized configuration parameter"). The replacement does the same where the
# server has the setting and nothing where it has not, on one line (psql's line numbers hold).
_PORTABLE_HEADER_LINES = {
    b"SET transaction_timeout = 0;\n": b"SELECT pg_catalog.set_config(name, '0', false) FROM pg_catalog.pg_settings "
                                       b"WHERE name = 'transaction_timeout';\n",
}
_HEADER_LIMIT = 1 << 16


def portable_header(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """pg_restore's SQL, streamed, with its header made acceptable to every server from 13.

    Only the header is read: the leading blank lines, comments, psql's ``\\restrict`` and the
    ``SET``/``set_config`` lines, up to the first other line (at most 64 KiB). Its lines in
    ``_PORTABLE_HEADER_LINES`` are replaced; everything after it passes through untouched (row
    data is never rewritten) and nothing beyond the header is held in memory. It works on the
    archive's output at restore time, so snapshots taken before it existed restore on 13-16 too.
    """
    head, end = b"", None
    for chunk in chunks:
        head += chunk
        end = _header_end(head)
        if end is not None or len(head) > _HEADER_LIMIT:
            break
    if end is None:  # the SQL ended inside the header, or the header is implausibly long: leave it be
        end = head.rfind(b"\n") + 1 if len(head) <= _HEADER_LIMIT else 0
    yield b"".join(_PORTABLE_HEADER_LINES.get(line, line) for line in head[:end].splitlines(keepends=True))
    if end < len(head):
        yield head[end:]
    yield from chunks


def _header_end(sql_text: bytes) -> int | None:
    """The offset of the first complete line that cannot be in the header, or None if none yet."""
    start = 0
    while (newline := sql_text.find(b"\n", start)) != -1:
        line = sql_text[start:newline].strip()
        if line and not line.startswith((b"--", b"\\restrict ", b"SET ", b"SELECT pg_catalog.set_config(")):
            return start
        start = newline + 1
    return None
