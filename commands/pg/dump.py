"""Snapshots with pg_dump, zstd and sha256 in one streamed pass; restores that are atomic.

create:  pg_dump -Fc -Z0 | zstd (multi-threaded) | sha256 -> .tmp-PID-NAME, fsync, link to
         NAME.dump.zst, then NAME.manifest.json (the commit point), fsync the directory.
         The dump never sits in memory: it moves through in 1 MiB chunks.
verify:  the file's sha256 against the manifest, then ``pg_restore --list`` reads it whole.
restore: in place, one psql session in a single transaction: a prelude that empties every
         user schema (so objects created after the snapshot go too), then the snapshot's
         SQL; any error rolls everything back. Or into a new database that replaces the old
         one by rename in one transaction, the old one kept for undo.
"""

from __future__ import annotations

import errno
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable, Iterator

import psycopg
import zstandard
from psycopg import sql

from commands.errors import SnapshotFailed
from commands.pg.connect import connect, describe
from commands.pg.embedded import database_url
from commands.pg.tools import ToolError, Tools, child_env
from commands.redact import mask_url, redact
from commands.config import EnvironmentSettings
from commands.results import State
from commands.snapshots import (
    DATA_SUFFIX, MANIFEST_SUFFIX, TEMP_PREFIX, Created, Restored, Snapshot, Verified, snapshot_name,
)

CHUNK = 1 << 20
LEFTOVER_AGE_SECONDS = 600
Progress = Callable[[int, int], None]  # (bytes read from pg_dump, bytes written)


class _HashingWriter:
    """A file wrapper for zstd's stream writer: hashes and counts what reaches the disk."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.sha256 = hashlib.sha256()
        self.written = 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.written += len(data)
        return self.fh.write(data)

    def flush(self) -> None:
        self.fh.flush()


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _stderr_tail(fh: IO[bytes], lines: int = 5) -> str:
    fh.seek(0)
    text = fh.read().decode("utf-8", "replace").strip().splitlines()
    return redact(" | ".join(text[-lines:]))


def remove_leftovers(directory: Path) -> list[str]:
    """Delete what interrupted runs left: temporary files of dead processes, and data files
    whose manifest never came (older than a few minutes, so a create in flight is safe)."""
    removed = []
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return removed
    names = {e.name for e in entries}
    now = time.time()
    for entry in entries:
        stale = False
        if entry.name.startswith(TEMP_PREFIX):
            pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
            stale = not pid.isdigit() or not _alive(int(pid))
        elif entry.name.endswith(DATA_SUFFIX):
            manifest = entry.name[: -len(DATA_SUFFIX)] + MANIFEST_SUFFIX
            stale = manifest not in names and now - entry.stat().st_mtime > LEFTOVER_AGE_SECONDS
        if stale:
            os.unlink(entry.path)
            removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class PgDumpSnapshotter:
    """Snapshots of an environment's database (the ``Snapshotter`` contract).

    ``threads``: zstd worker threads (-1: one per core).
    """

    def __init__(self, *, threads: int = -1) -> None:
        self.threads = threads

    def for_env(self, env: EnvironmentSettings) -> "_EnvSnapshotter":
        return _EnvSnapshotter(tools=Tools.for_bin_dir(env.pg_bin_dir), compression_level=env.snapshot_compression_level,
                               threads=self.threads)

    def create(self, env: EnvironmentSettings, *, reason: str, actor: str, state: State,
               progress: Progress | None = None) -> Created:
        if env.snapshot_dir is None:
            raise SnapshotFailed(f"No snapshot_dir is configured for {env.name}.")
        return self.for_env(env).create(env_name=env.name, url=env.database_url, directory=env.snapshot_dir,
                                        reason=reason, actor=actor, version=state.version, dirty=state.dirty,
                                        progress=progress)

    def verify(self, env: EnvironmentSettings, snapshot: Snapshot) -> Verified:
        return self.for_env(env).verify(snapshot)

    def restore(self, env: EnvironmentSettings, snapshot: Snapshot) -> Restored:
        return self.for_env(env).restore(snapshot, url=env.database_url, mode=env.restore_mode,
                                         lock_timeout=env.lock_timeout)


class _EnvSnapshotter:
    def __init__(self, *, tools: Tools, compression_level: int, threads: int) -> None:
        self.tools = tools
        self.compression_level = compression_level
        self.threads = threads

    # --- create ---

    def create(self, *, env_name: str, url: str, directory: Path, reason: str, actor: str,
               version: int | None, dirty: bool, progress: Progress | None = None) -> Created:
        started = time.perf_counter()
        self._prepare_directory(directory)
        remove_leftovers(directory)
        server_major, db_size, dbname = self._server_facts(url)
        dump_major = self.tools.major_version("pg_dump")
        if dump_major < server_major:
            raise SnapshotFailed(f"pg_dump {dump_major} is older than the server ({server_major}): it cannot dump it. "
                                 f"Set pg_bin_dir to PostgreSQL {server_major}'s client programs.")
        created_at = datetime.now(timezone.utc)
        name = snapshot_name(env_name, created_at, version, dirty, reason)
        temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{name}{DATA_SUFFIX}"
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as err:
            raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
        try:
            sha256, size = self._dump_into(fd, url, directory, db_size, progress)
            final = self._publish(temp, directory, name)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        name = final.name[: -len(DATA_SUFFIX)]
        manifest = {
            "format": "dbops-snapshot-1", "name": name, "environment": env_name, "database": dbname,
            "reason": reason, "actor": actor, "created_at": created_at.isoformat(), "version": version,
            "dirty": dirty, "size": size, "sha256": sha256, "compression": f"zstd-{self.compression_level}",
            "pg_dump_version": dump_major, "server_version": server_major, "database_size": db_size,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1),
        }
        self._write_manifest(directory, name, manifest)
        return Created(name=name, path=final, manifest=manifest)

    def _prepare_directory(self, directory: Path) -> None:
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise SnapshotFailed(self._diagnose_os(err, directory, None)) from None

    def _server_facts(self, url: str) -> tuple[int, int, str]:
        with connect(url, application_name="dbops-snapshot") as conn:
            major, size, name = conn.execute(
                "SELECT current_setting('server_version_num')::int / 10000, pg_database_size(current_database()), "
                "current_database()").fetchone()
        return major, size, name

    def _dump_into(self, fd: int, url: str, directory: Path, db_size: int,
                   progress: Progress | None) -> tuple[str, int]:
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen([self.tools.path("pg_dump"), "--format=custom", "--compress=0", "--no-password"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                       env=child_env(url))
            compressor = zstandard.ZstdCompressor(level=self.compression_level, threads=self.threads)
            read = 0
            try:
                # Everything that writes is inside: a full disk can surface at the final flush.
                with os.fdopen(fd, "wb") as fh:
                    sink = _HashingWriter(fh)
                    with compressor.stream_writer(sink, closefd=False) as writer:
                        while chunk := process.stdout.read(CHUNK):
                            writer.write(chunk)
                            read += len(chunk)
                            if progress is not None:
                                progress(read, sink.written)
                    fh.flush()
                    os.fsync(fh.fileno())
            except OSError as err:
                process.kill()
                process.wait()
                raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
            finally:
                process.stdout.close()
            if process.wait() != 0:
                raise SnapshotFailed(self._diagnose_dump(_stderr_tail(stderr), url, directory, db_size))
        return sink.sha256.hexdigest(), sink.written

    @staticmethod
    def _publish(temp: Path, directory: Path, name: str) -> Path:
        """Give the finished file its name without ever replacing another (link, not rename)."""
        for n in range(1, 100):
            final = directory / f"{name}{'' if n == 1 else f'_{n}'}{DATA_SUFFIX}"
            try:
                os.link(temp, final)
            except FileExistsError:
                continue
            temp.unlink()
            return final
        raise SnapshotFailed(f"Could not find a free name for snapshot {name} in {directory}.")

    @staticmethod
    def _write_manifest(directory: Path, name: str, manifest: dict) -> None:
        temp = directory / f"{TEMP_PREFIX}{os.getpid()}-{name}{MANIFEST_SUFFIX}"
        with open(temp, "w", encoding="utf-8") as fh:
            json.dump(manifest, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, directory / f"{name}{MANIFEST_SUFFIX}")
        _fsync_dir(directory)

    # --- failure diagnosis (the guide's Issue 6) ---

    @staticmethod
    def _diagnose_os(err: OSError, directory: Path, db_size: int | None) -> str:
        if err.errno in (errno.ENOSPC, errno.EDQUOT):
            free = shutil.disk_usage(directory).free if directory.exists() else 0
            size = f"; the database is {_human(db_size)}" if db_size else ""
            return (f"Not enough disk space: {directory} has {_human(free)} free{size}. Nothing was kept. "
                    "Delete old snapshots (/snapshot cleanup) or give the directory more space.")
        if err.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            what = "is on a read-only file system" if err.errno == errno.EROFS else "is not writable by dbops"
            return f"No permission: {directory} {what} ({err.strerror}). Nothing was kept."
        return f"Cannot write the snapshot in {directory}: {err.strerror}. Nothing was kept."

    @staticmethod
    def _diagnose_dump(stderr: str, url: str, directory: Path, db_size: int) -> str:
        if "connection to server" in stderr or "could not connect" in stderr or "password authentication" in stderr:
            return f"No connection: pg_dump could not connect to {mask_url(url)}: {stderr}. Nothing was kept."
        free = shutil.disk_usage(directory).free
        if free < db_size // 10:
            return (f"Not enough disk space: {directory} has {_human(free)} free; the database is "
                    f"{_human(db_size)}. pg_dump said: {stderr}. Nothing was kept.")
        return f"pg_dump failed: {stderr}. Nothing was kept."

    # --- verify ---

    def verify(self, snapshot: Snapshot) -> Verified:
        if snapshot.kind == "legacy":
            return self._verify_legacy(snapshot)
        checks = []
        manifest = read_manifest(snapshot)
        digest = _sha256(snapshot.path)
        checks.append(("checksum", digest == manifest.get("sha256"),
                       "sha256 matches the manifest" if digest == manifest.get("sha256")
                       else f"sha256 {digest[:12]}… does not match the manifest's {str(manifest.get('sha256'))[:12]}…"))
        if checks[0][1]:
            with tempfile.TemporaryFile() as stderr:
                listed = _pipe_into([self.tools.path("pg_restore"), "--list"], _zstd_chunks(snapshot.path),
                                    stdout=subprocess.DEVNULL, stderr=stderr)
                checks.append(("readable", listed == 0, "pg_restore --list reads it" if listed == 0
                               else f"pg_restore --list failed: {_stderr_tail(stderr)}"))
        return Verified(ok=all(c[1] for c in checks), checks=tuple(checks))

    @staticmethod
    def _verify_legacy(snapshot: Snapshot) -> Verified:
        try:
            with gzip.open(snapshot.path, "rb") as fh:
                head = fh.read(4096)
                while fh.read(CHUNK):
                    pass
        except (OSError, EOFError) as err:
            return Verified(ok=False, checks=(("readable", False, f"gzip stream is damaged: {err}"),))
        looks_sql = b"PostgreSQL database dump" in head or b"CREATE" in head or b"SET " in head
        return Verified(ok=looks_sql, checks=(
            ("readable", True, "gzip stream complete (CRC checked)"),
            ("sql", looks_sql, "plain SQL from pg_dump" if looks_sql else "does not look like pg_dump SQL"),
        ))

    # --- restore ---

    def restore(self, snapshot: Snapshot, *, url: str, mode: str, lock_timeout: str) -> Restored:
        started = time.perf_counter()
        if mode == "in-place":
            self._restore_in_place(snapshot, url, lock_timeout)
            kept = None
        else:
            kept = self._restore_new_database(snapshot, url)
        return Restored(database=conninfo_dbname(url), mode=mode, kept_database=kept,
                        duration_ms=(time.perf_counter() - started) * 1000)

    def _sql_chunks(self, snapshot: Snapshot, failures: list[str]) -> Iterator[bytes]:
        """The snapshot as SQL: pg_restore's output for dbops snapshots, gunzip for legacy
        ones. Anything that goes wrong on the way is appended to ``failures``."""
        if snapshot.kind == "legacy":
            try:
                yield from _gzip_chunks(snapshot.path)
            except (OSError, EOFError) as err:
                failures.append(f"the gzip stream is damaged ({err})")
            return
        with tempfile.TemporaryFile() as stderr:
            restore = subprocess.Popen([self.tools.path("pg_restore"), "--clean", "--if-exists", "--file=-"],
                                       stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr)
            feeder = threading.Thread(target=_feed, args=(restore.stdin, _zstd_chunks(snapshot.path), failures),
                                      daemon=True)
            feeder.start()
            try:
                while chunk := restore.stdout.read(CHUNK):
                    yield chunk
            finally:
                restore.stdout.close()
                feeder.join()
                if restore.wait() != 0:
                    failures.append(f"pg_restore could not read it: {_stderr_tail(stderr)}")

    def _psql_restore(self, snapshot: Snapshot, env: dict[str, str], *, prelude: str | None) -> None:
        """Run the snapshot's SQL in one transaction that commits only if all of it arrived.

        dbops writes BEGIN and, once the source has ended cleanly, COMMIT. If the source
        fails, or this process dies, psql reaches the end of its input inside the open
        transaction and the server rolls it back: nothing half-restored is ever committed.
        """
        argv = [self.tools.path("psql"), "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1",
                "--output=/dev/null", "--file=-"]
        failures: list[str] = []
        with tempfile.TemporaryFile() as stderr:
            psql = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, env=env)
            try:
                psql.stdin.write(b"BEGIN;\n" + (prelude.encode() + b"\n" if prelude else b""))
                for chunk in self._sql_chunks(snapshot, failures):
                    psql.stdin.write(chunk)
                if not failures:
                    psql.stdin.write(b"\nCOMMIT;\n")
            except BrokenPipeError:
                pass  # psql stopped at an error; its exit code and stderr say which
            finally:
                try:
                    psql.stdin.close()
                except BrokenPipeError:
                    pass
            code = psql.wait()
            if code != 0:
                raise SnapshotFailed(f"Restore of {snapshot.name} failed and was rolled back; the database is as it "
                                     f"was. psql said: {_stderr_tail(stderr)}")
        if failures:
            raise SnapshotFailed(f"Restore of {snapshot.name} was rolled back; the database is as it was: "
                                 f"{'; '.join(failures)}.")

    def _restore_in_place(self, snapshot: Snapshot, url: str, lock_timeout: str) -> None:
        with connect(url, application_name="dbops-restore") as conn:
            major = conn.execute("SELECT current_setting('server_version_num')::int / 10000").fetchone()[0]
        self._psql_restore(snapshot, child_env(url, options=f"-c lock_timeout={lock_timeout}"),
                           prelude=empty_schemas_sql(major))

    def _restore_new_database(self, snapshot: Snapshot, url: str) -> str:
        target = conninfo_dbname(url)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d_%H%M%S")
        fresh, kept = f"{target}_restoring_{stamp}"[:63], f"{target}_before_restore_{stamp}"[:63]
        maintenance = database_url(url, "postgres")
        with connect(maintenance, application_name="dbops-restore") as admin:
            admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(fresh)))
            try:
                self._psql_restore(snapshot, child_env(url, dbname=fresh), prelude=None)
            except BaseException:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
                raise
            try:
                self._swap(admin, target, fresh, kept)
            except psycopg.Error as err:
                admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(fresh)))
                raise SnapshotFailed(f"Could not swap in the restored database: {describe(err)}. "
                                     f"{target} is unchanged.") from None
        return kept

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


def conninfo_dbname(url: str) -> str:
    from psycopg.conninfo import conninfo_to_dict
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


def read_manifest(snapshot: Snapshot) -> dict:
    path = snapshot.path.with_name(snapshot.name + MANIFEST_SUFFIX)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise SnapshotFailed(f"The manifest of {snapshot.name} cannot be read ({err}).") from None


def _pipe_into(argv: list[str], chunks: Iterator[bytes], **popen) -> int:
    """Feed ``chunks`` to ``argv``'s stdin; return its exit code."""
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, **popen)
    failures: list[str] = []
    _feed(process.stdin, chunks, failures)
    code = process.wait()
    return code if not failures else (code or 1)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _zstd_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
        while chunk := reader.read(CHUNK):
            yield chunk


def _gzip_chunks(path: Path) -> Iterator[bytes]:
    with gzip.open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def _feed(stdin: IO[bytes], chunks: Iterator[bytes], failures: list[str]) -> None:
    try:
        for chunk in chunks:
            stdin.write(chunk)
    except BrokenPipeError:
        pass  # the reader stopped; its exit code tells why
    except (zstandard.ZstdError, OSError) as err:
        failures.append(f"the snapshot file is damaged ({err})")
    finally:
        try:
            stdin.close()
        except BrokenPipeError:
            pass


def _human(size: int | None) -> str:
    value = float(size or 0)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.1f} {unit}" if unit != "B" else f"{int(value)} B"
        value /= 1024
    return f"{value:.1f} TB"
