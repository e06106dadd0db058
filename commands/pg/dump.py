"""Snapshots with pg_dump, zstd and sha256 in one streamed pass.

create:  pg_dump -Fc -Z0 | zstd (multi-threaded) | sha256 -> .tmp-HOST-PID-NAME, fsync, link to
         NAME.dump.zst, then NAME.manifest.json (the commit point), fsync the directory.
         The dump never sits in memory: it moves through in 1 MiB chunks. Every file is
         created 0600 without following links (a directory dbops makes is 0700); any file
         error is diagnosed (disk full, permission) and whatever was written is removed.
verify:  the file's sha256 against the manifest (every byte), then ``pg_restore --list``
         decodes its header and table of contents.
restore: see ``commands.pg.restore``.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from contextlib import AbstractContextManager, contextmanager
from typing import IO, Callable, Iterator

import structlog

from commands.config import EnvironmentSettings
from commands.errors import SnapshotFailed
from commands.lock.lock_dirs import pid_alive
from commands.pg.connect import connect, environment
from commands.pg.streams import (
    CHUNK, HashingWriter, fsync_dir, gzip_chunks, pipe_into, sha256_of, stderr_tail, zstd_chunks,
)
from commands.pg.tools import Tools, child_env
from commands.redact import mask_url
from commands.results import State
from commands.snapshot.tidy import delete_judged
from commands.snapshot.snapshots import (
    DATA_SUFFIX, DIRECTORY_MODE, FILE_MODE, MANIFEST_SUFFIX, Created, Restored, Snapshot, Verified, diagnose_os,
    environment_in_name, is_dbops_name, parse_temp, read_manifest, snapshot_name, temp_name, this_host,
)
from commands.snapshot.store import ObjectStore, object_store_for
from commands.units import human_size

# zstd workers: two already compress faster than pg_dump produces (about 500 MB/s against
# 250 MB/s), and each further one adds about 15 MB of buffers; at two, dbops peaks at
# 120 MB whatever the host's core count or the database's size (bench/snapshots.py).
MAX_ZSTD_THREADS = 2
# Into object storage, one worker: the S3 client (about 25 MB) and its part buffers take the
# room a second one would, and the upload, not zstd, is the slower end (bench/s3_snapshots.py).
OBJECT_STORE_ZSTD_THREADS = 1
LEFTOVER_AGE_SECONDS = 600
FOREIGN_TEMP_AGE_SECONDS = 24 * 3600
Progress = Callable[[int, int, int], None]  # (bytes read from pg_dump, bytes written, database size)
log = structlog.get_logger("dbops.snapshots")


def remove_leftovers(directory: Path, env_name: str) -> list[str]:
    """Delete what interrupted creates of ``env_name`` left, and nothing else: regular files
    whose names dbops generates for that environment (never a link, a directory, or a file
    made by hand; another environment's are its own business).

    - a temporary file written on this host by a process that is gone; one of another host
      (the directory may be shared over NFS, where a pid means nothing) or of an older dbops
      that did not name its host, once untouched for FOREIGN_TEMP_AGE_SECONDS (a create in
      flight writes to it with every chunk);
    - a data file whose manifest never came, untouched for LEFTOVER_AGE_SECONDS.

    A file that cannot be removed is left and logged: tidying never fails a create.
    """
    return delete_judged(directory, lambda entry, names, now: _is_leftover(entry, names, env_name, now),
                         kept_event="snapshot.leftover_kept")


def _is_leftover(entry: os.DirEntry, names: set[str], env_name: str, now: float) -> bool:
    temp = parse_temp(entry.name)
    if temp is not None:
        host, pid, name = temp
        if environment_in_name(name) != env_name:
            return False
        if host == this_host():
            return not pid_alive(pid)
        return now - entry.stat(follow_symlinks=False).st_mtime > FOREIGN_TEMP_AGE_SECONDS
    if entry.name.endswith(DATA_SUFFIX):
        name = entry.name[: -len(DATA_SUFFIX)]
        return (is_dbops_name(name) and environment_in_name(name) == env_name and name + MANIFEST_SUFFIX not in names
                and now - entry.stat(follow_symlinks=False).st_mtime > LEFTOVER_AGE_SECONDS)
    return False


@contextmanager
def _synced(fh: IO[bytes]) -> Iterator[IO[bytes]]:
    """``fh``, flushed and fsynced on a clean exit, closed on any."""
    with fh:
        yield fh
        fh.flush()
        os.fsync(fh.fileno())


class PgDumpSnapshotter:
    """Snapshots of an environment's database (the ``Snapshotter`` contract).

    ``threads``: zstd worker threads (default: one per core, at most MAX_ZSTD_THREADS).
    """

    def __init__(self, *, threads: int | None = None) -> None:
        self.threads = threads if threads is not None else min(os.cpu_count() or 1, MAX_ZSTD_THREADS)

    def for_env(self, env: EnvironmentSettings) -> "_EnvSnapshotter":
        return _EnvSnapshotter(tools=Tools.for_bin_dir(env.pg_bin_dir), compression_level=env.snapshot_compression_level,
                               threads=self.threads)

    def create(self, env: EnvironmentSettings, *, reason: str, actor: str, state: State,
               progress: Progress | None = None) -> Created:
        store = object_store_for(env)
        if store is not None:
            return self.for_env(env).create_in_store(store, env_name=env.name, url=env.database_url, reason=reason,
                                                     actor=actor, version=state.version, dirty=state.dirty,
                                                     progress=progress)
        if env.snapshot_dir is None:
            raise SnapshotFailed(f"No snapshot_dir is configured for {env.name}.")
        return self.for_env(env).create(env_name=env.name, url=env.database_url, directory=env.snapshot_dir,
                                        reason=reason, actor=actor, version=state.version, dirty=state.dirty,
                                        progress=progress)

    def verify(self, env: EnvironmentSettings, snapshot: Snapshot) -> Verified:
        return self.for_env(env).verify(snapshot)

    def restore(self, env: EnvironmentSettings, snapshot: Snapshot, progress=None) -> Restored:
        from commands.pg.restore import PgRestorer  # loaded by a restore, not by every command
        return PgRestorer(Tools.for_bin_dir(env.pg_bin_dir), database=environment(env.name)).restore(
            snapshot, url=env.database_url, mode=env.restore_mode, lock_timeout=env.lock_timeout,
            jobs=env.restore_jobs, progress=progress)


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
        remove_leftovers(directory, env_name)
        server_major, db_size, dbname, estimates = self._server_facts(url, env_name)
        dump_major = self._dump_major(server_major)
        created_at = datetime.now(timezone.utc)
        name = snapshot_name(env_name, created_at, version, dirty, reason)
        temp = directory / temp_name(name, DATA_SUFFIX)
        try:
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        except OSError as err:
            raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
        try:
            try:
                sha256, size, archive = self._dump_into(_synced(os.fdopen(fd, "wb")), url, directory, db_size,
                                                        progress)
                final = self._publish(temp, directory, name)
            except OSError as err:
                raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        name = final.name[: -len(DATA_SUFFIX)]
        manifest = self._manifest(name=name, env_name=env_name, dbname=dbname, reason=reason, actor=actor,
                                  created_at=created_at, version=version, dirty=dirty, size=size, sha256=sha256,
                                  archive_size=archive, dump_major=dump_major, server_major=server_major, db_size=db_size,
                                  started=started, row_estimates=estimates)
        try:
            try:
                self._write_manifest(directory, name, manifest)
            except OSError as err:
                raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
        except BaseException:
            final.unlink(missing_ok=True)  # data without its manifest is no snapshot: leave nothing
            raise
        return Created(name=name, path=final, manifest=manifest)

    def create_in_store(self, store: ObjectStore, *, env_name: str, url: str, reason: str, actor: str,
                        version: int | None, dirty: bool, progress: Progress | None = None) -> Created:
        """``create`` into object storage: the dump goes up in parts as pg_dump produces it;
        the manifest, written last, publishes it. What an interrupted create of this
        environment left (an unfinished upload, data without a manifest) is removed first."""
        started = time.perf_counter()
        store.tidy(env_name)
        server_major, db_size, dbname, estimates = self._server_facts(url, env_name)
        dump_major = self._dump_major(server_major)
        created_at = datetime.now(timezone.utc)
        upload = store.writer(snapshot_name(env_name, created_at, version, dirty, reason))
        sha256, size, archive = self._dump_into(upload, url, None, db_size, progress,
                                                threads=min(self.threads, OBJECT_STORE_ZSTD_THREADS))
        manifest = self._manifest(name=upload.name, env_name=env_name, dbname=dbname, reason=reason, actor=actor,
                                  created_at=created_at, version=version, dirty=dirty, size=size, sha256=sha256,
                                  archive_size=archive, dump_major=dump_major, server_major=server_major, db_size=db_size,
                                  started=started, row_estimates=estimates)
        try:
            store.write_manifest(upload.name, manifest)
        except BaseException:
            store.discard(upload.name)  # data without its manifest is no snapshot: leave nothing
            raise
        return Created(name=upload.name, path=None, manifest=manifest)

    def _dump_major(self, server_major: int) -> int:
        dump_major = self.tools.major_version("pg_dump")
        if dump_major < server_major:
            raise SnapshotFailed(f"pg_dump {dump_major} is older than the server ({server_major}): it cannot dump it. "
                                 f"Set pg_bin_dir to PostgreSQL {server_major}'s client programs.")
        return dump_major

    def _manifest(self, *, name: str, env_name: str, dbname: str, reason: str, actor: str, created_at: datetime,
                  version: int | None, dirty: bool, size: int, archive_size: int, sha256: str, dump_major: int,
                  server_major: int, db_size: int, started: float, row_estimates: dict[str, int | None]) -> dict:
        return {
            "format": "dbops-snapshot-1", "name": name, "environment": env_name, "database": dbname,
            "reason": reason, "actor": actor, "created_at": created_at.isoformat(), "version": version,
            "dirty": dirty, "size": size, "archive_size": archive_size, "sha256": sha256,
            "compression": f"zstd-{self.compression_level}",
            "pg_dump_version": dump_major, "server_version": server_major, "database_size": db_size,
            "duration_ms": round((time.perf_counter() - started) * 1000, 1), "row_estimates": row_estimates,
        }

    def _prepare_directory(self, directory: Path) -> None:
        """Make the directory 0700 when dbops makes it; one the operator made keeps its mode."""
        try:
            directory.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
        except OSError as err:
            raise SnapshotFailed(self._diagnose_os(err, directory, None)) from None

    def _server_facts(self, url: str, env_name: str) -> tuple[int, int, str, dict[str, int | None]]:
        """The server's major version, the database's size and name, and every table's row estimate."""
        with connect(url, database=environment(env_name), application_name="dbops-snapshot") as conn:
            major, size, name = conn.execute(
                "SELECT current_setting('server_version_num')::int / 10000, pg_database_size(current_database()), "
                "current_database()").fetchone()
            from commands.pg.changed_rows import row_estimates  # a create only: not a status's listing
            return major, size, name, row_estimates(conn)

    def _dump_into(self, sink: AbstractContextManager[IO[bytes]], url: str, directory: Path | None, db_size: int,
                   progress: Progress | None, *, threads: int | None = None) -> tuple[str, int, int]:
        """pg_dump | zstd into ``sink`` (a file, or an object store's upload), hashed on the way;
        (sha256, size, the archive's size before compression: what a parallel restore unpacks).
        Entering and leaving ``sink`` is inside: its final flush, fsync or upload can fail too,
        and then pg_dump is stopped."""
        with tempfile.TemporaryFile() as stderr:
            process = subprocess.Popen([self.tools.path("pg_dump"), "--format=custom", "--compress=0", "--no-password"],
                                       stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=stderr,
                                       env=child_env(url))
            import zstandard  # loaded by the commands that compress, not by every command line
            compressor = zstandard.ZstdCompressor(level=self.compression_level,
                                                  threads=self.threads if threads is None else threads)
            read = 0
            try:
                with sink as fh:
                    hashing = HashingWriter(fh)
                    with compressor.stream_writer(hashing, closefd=False) as writer:
                        while chunk := process.stdout.read(CHUNK):
                            writer.write(chunk)
                            read += len(chunk)
                            if progress is not None:
                                progress(read, hashing.written, db_size)
                    if process.wait() != 0:  # a failed dump is never published: leaving sink by raising aborts it
                        raise SnapshotFailed(self._diagnose_dump(stderr_tail(stderr), url, directory, db_size))
            except BaseException as err:
                process.kill()
                process.wait()
                if isinstance(err, OSError):
                    raise SnapshotFailed(self._diagnose_os(err, directory, db_size)) from None
                raise
            finally:
                process.stdout.close()
        return hashing.sha256.hexdigest(), hashing.written, read

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
        """Write, fsync and publish the manifest; on any failure its temporary file is gone."""
        temp = directory / temp_name(name, MANIFEST_SUFFIX)
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, FILE_MODE)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(manifest, fh, indent=2)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(temp, directory / f"{name}{MANIFEST_SUFFIX}")
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        fsync_dir(directory)

    # --- failure diagnosis (the guide's Issue 6) ---

    @staticmethod
    def _diagnose_os(err: OSError, directory: Path, db_size: int | None) -> str:
        return diagnose_os(err, directory, db_size)

    @staticmethod
    def _diagnose_dump(stderr: str, url: str, directory: Path | None, db_size: int) -> str:
        if "connection to server" in stderr or "could not connect" in stderr or "password authentication" in stderr:
            return f"No connection: pg_dump could not connect to {mask_url(url)}: {stderr}. Nothing was kept."
        if directory is None:
            return f"pg_dump failed: {stderr}. Nothing was kept."
        free = shutil.disk_usage(directory).free
        if free < db_size // 10:
            return (f"Not enough disk space: {directory} has {human_size(free)} free; the database is "
                    f"{human_size(db_size)}. pg_dump said: {stderr}. Nothing was kept.")
        return f"pg_dump failed: {stderr}. Nothing was kept."

    # --- verify ---

    def verify(self, snapshot: Snapshot) -> Verified:
        if snapshot.kind == "legacy":
            return self._verify_legacy(snapshot)
        checks = []
        manifest = read_manifest(snapshot)
        try:
            digest = sha256_of(snapshot)
        except OSError as err:  # gone since it was listed, or a link put in its place
            why = "it is a link, which dbops never follows" if err.errno == errno.ELOOP else err.strerror or str(err)
            return Verified(ok=False, checks=(("readable", False, f"{snapshot.filename} cannot be read: {why}"),))
        checks.append(("checksum", digest == manifest.get("sha256"),
                       "sha256 matches the manifest" if digest == manifest.get("sha256")
                       else f"sha256 {digest[:12]}… does not match the manifest's {str(manifest.get('sha256'))[:12]}…"))
        if checks[0][1]:
            with tempfile.TemporaryFile() as stderr:
                listed = pipe_into([self.tools.path("pg_restore"), "--list"], zstd_chunks(snapshot),
                                    stdout=subprocess.DEVNULL, stderr=stderr)
                checks.append(("readable", listed == 0, "pg_restore --list decodes its table of contents" if listed == 0
                               else f"pg_restore --list failed: {stderr_tail(stderr)}"))
        return Verified(ok=all(c[1] for c in checks), checks=tuple(checks))

    @staticmethod
    def _verify_legacy(snapshot: Snapshot) -> Verified:
        """A legacy script is readable (gzip's CRC over every byte), looks like pg_dump's SQL,
        and is SQL only: read as psql would, it holds no meta-command outside COPY data and
        is not cut short (``commands.pg.psql_script``)."""
        from commands.pg.psql_script import PsqlScript, ScriptProblem  # only old snapshots need psql's reading
        script, head, problem = PsqlScript(), b"", None
        try:
            for chunk in gzip_chunks(snapshot):
                head = head or chunk[:4096]
                if problem is None:
                    try:
                        script.feed(chunk)
                    except ScriptProblem as err:
                        problem = str(err)
        except (OSError, EOFError) as err:
            return Verified(ok=False, checks=(("readable", False, f"gzip stream is damaged: {err}"),))
        if problem is None:
            try:
                script.close()
            except ScriptProblem as err:
                problem = str(err)
        looks_sql = b"PostgreSQL database dump" in head or b"CREATE" in head or b"SET " in head
        return Verified(ok=looks_sql and problem is None, checks=(
            ("readable", True, "gzip stream complete (CRC checked)"),
            ("sql", looks_sql, "looks like pg_dump's SQL" if looks_sql else "does not look like pg_dump SQL"),
            ("sql only", problem is None, f"{script.line} lines read as psql would: no meta-command outside COPY data"
             if problem is None else f"not safe to restore: {problem}"),
        ))

    # --- restore ---
