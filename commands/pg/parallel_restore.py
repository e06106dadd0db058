"""A new-database restore with ``pg_restore --jobs``: tables loaded, indexes and constraints
built side by side, into the fresh database that is then swapped in (``commands.pg.restore``).

How many jobs ("auto"): the fewest of
  - MAX_AUTO_JOBS (past four, gains flatten and each job holds its own maintenance_work_mem
    while it builds an index on the live server);
  - the cores of the host pg_restore runs on, and the server's ``max_worker_processes``
    (its own statement of how much parallel work it is sized for: SQL cannot see its cores);
  - half the connection slots left (``max_connections`` less the reserved ones and every
    session now, and the role's ``CONNECTION LIMIT``): the application and the team keep
    the other half. pg_restore holds one connection per job at most.
One job is the single-transaction path, which needs no temporary file.

Why a temporary file: pg_restore runs jobs only on an archive it can seek in (each job reads
its table's data where the table of contents, or a scan, finds it); from standard input it
refuses. A snapshot is zstd over pg_dump's custom archive, maybe an object in S3, so it is
decompressed once into a file in the temporary directory (TMPDIR, else /tmp), made 0600 and
exclusive, after checking there is room for it: without room the restore is refused before
the server is touched. Where /proc is mounted (Linux) the file's name is removed as soon as
it is made and pg_restore opens it as ``/proc/self/fd/N``: its space is freed when the last
of dbops and its pg_restore closes it, however dbops ends (a SIGKILL included), and no file
is ever left behind; elsewhere the name is removed when the restore ends. The
alternatives cost more: one pg_restore per job, each with its share of the table of contents,
would download and decompress the whole snapshot once per job.

SQL only: pg_restore writing straight to a database (``--dbname``) sends each statement
over libpq and each table's rows with COPY's protocol; no psql is involved, so there is no
meta-command to run (pg_restore refuses ``--restrict-key`` with ``--dbname``: there is no
script to guard).
"""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Iterator

import psycopg
import structlog
from psycopg.conninfo import make_conninfo

from commands.errors import SnapshotFailed
from commands.pg.streams import stderr_tail, zstd_chunks
from commands.pg.tools import Tools
from commands.redact import redact
from commands.snapshot.snapshots import Snapshot, read_manifest
from commands.units import human_size

log = structlog.get_logger("dbops.snapshots")
MAX_AUTO_JOBS = 4
# Left free on the temporary file system beyond the archive itself, so a restore never
# fills a disk that other programs (perhaps the server's own) write to.
RESERVE_FRACTION, RESERVE_MIN = 20, 16 << 20
_PROC_FD = Path("/proc/self/fd")
_OLD_SERVER_ERROR = 'unrecognized configuration parameter "transaction_timeout"'


@dataclass(frozen=True, kw_only=True)
class ServerRoom:
    """What the server says about the parallel work it can take now."""
    server_major: int
    max_worker_processes: int
    free_connections: int  # slots left for ordinary roles, after every session now and the role's limit


def server_room(admin: psycopg.Connection) -> ServerRoom:
    """Read on any server from 13 by any role: settings and pg_stat_activity's row count."""
    major, workers, limit, reserved, sessions, role_limit, role_sessions = admin.execute(
        "SELECT current_setting('server_version_num')::int / 10000, current_setting('max_worker_processes')::int, "
        "current_setting('max_connections')::int, "
        "current_setting('superuser_reserved_connections')::int "
        "+ coalesce(current_setting('reserved_connections', true)::int, 0), "
        "(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), "
        "(SELECT rolconnlimit FROM pg_roles WHERE rolname = current_user), "
        "(SELECT count(*) FROM pg_stat_activity WHERE usename = current_user)").fetchone()
    free = limit - reserved - sessions
    if role_limit is not None and role_limit >= 0:
        free = min(free, role_limit - role_sessions)
    return ServerRoom(server_major=major, max_worker_processes=workers, free_connections=free)


def client_cores() -> int:
    """The cores this process may run on (its CPU affinity: a container's cpuset, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def auto_jobs(room: ServerRoom, client_cores: int) -> int:
    """The jobs "auto" picks (module docstring); 1 means the single-transaction path."""
    # One connection per job: pg_restore closes its opening one before the jobs start.
    by_connections = room.free_connections // 2
    return max(1, min(MAX_AUTO_JOBS, client_cores, room.max_worker_processes, by_connections))


def archive_size(snapshot: Snapshot) -> tuple[int, bool]:
    """(bytes, exact): the uncompressed archive's size from the manifest; for a snapshot taken
    before dbops recorded it, the database's size then (an overestimate: indexes are not in it)."""
    manifest = read_manifest(snapshot)
    exact = manifest.get("archive_size")
    if isinstance(exact, int) and exact >= 0:
        return exact, True
    return int(manifest.get("database_size") or 0), False


@dataclass(frozen=True)
class Archive:
    path: str  # what pg_restore opens
    pass_fds: tuple[int, ...]  # the descriptor it must inherit to open it, when ``path`` is under /proc


@contextmanager
def unpacked(snapshot: Snapshot, directory: Path | None = None) -> Iterator[Archive]:
    """The snapshot's archive, decompressed into a private temporary file for pg_restore to
    open. The file is gone when this ends (module docstring: SIGKILL too, on Linux).
    SnapshotFailed, nothing changed, when ``directory`` has no room for it."""
    where = Path(directory or tempfile.gettempdir())
    size, exact = archive_size(snapshot)
    need = size + max(size // RESERVE_FRACTION, RESERVE_MIN)
    free = shutil.disk_usage(where).free
    if free < need:
        raise SnapshotFailed(_no_room(snapshot, where, free, need, exact))
    started = time.perf_counter()
    fd, name = tempfile.mkstemp(prefix="dbops-restore-", suffix=".dump", dir=where)  # 0600, O_EXCL
    anonymous = _PROC_FD.is_dir()
    try:
        if anonymous:
            os.unlink(name)
        import zstandard  # loaded by a restore, not by every command line
        try:
            with os.fdopen(os.dup(fd), "wb") as fh:  # its last flush, on leaving, can meet a full disk too
                for chunk in zstd_chunks(snapshot):
                    fh.write(chunk)
        except OSError as err:
            if err.errno in (errno.ENOSPC, errno.EDQUOT):
                raise SnapshotFailed(_no_room(snapshot, where, shutil.disk_usage(where).free, need, exact)) from None
            raise SnapshotFailed(f"Could not unpack {snapshot.name} into {where} for a parallel restore: "
                                 f"{err.strerror or err}. Nothing was changed.") from None
        except zstandard.ZstdError as err:
            raise SnapshotFailed(f"{snapshot.name} could not be unpacked: the snapshot file is damaged ({err}). "
                                 "Nothing was changed.") from None
        log.info("restore.unpacked", snapshot=snapshot.name, directory=str(where), bytes=os.fstat(fd).st_size,
                 seconds=round(time.perf_counter() - started, 2))
        yield Archive(str(_PROC_FD / str(fd)), (fd,)) if anonymous else Archive(name, ())
    finally:
        os.close(fd)
        if not anonymous:
            Path(name).unlink(missing_ok=True)


def _no_room(snapshot: Snapshot, where: Path, free: int, need: int, exact: bool) -> str:
    needs = human_size(need) if exact else f"up to {human_size(need)} (from the database's size when it was taken)"
    return (f"No room to restore {snapshot.name} in parallel: its archive needs {needs} of temporary space in "
            f"{where}, which has {human_size(free)} free. Nothing was changed. Free space there, point TMPDIR at a "
            "larger file system, or set restore_jobs = 1 (one transaction, no temporary file).")


def restore_archive(tools: Tools, archive: Archive, env: dict[str, str], *, database: str, jobs: int,
                    server_major: int) -> str | None:
    """``pg_restore --jobs`` of ``archive`` into ``database`` (connection details in ``env``).
    None when it succeeded, else what pg_restore said.

    pg_restore 18 opens every session with ``SET transaction_timeout = 0``, which a server
    before 17 rejects, whatever it restores. From 17 the first error stops it; before 17 it
    runs on past errors, and it succeeded only if every error it reported was that one."""
    argv = [tools.path("pg_restore"), "--clean", "--if-exists", "--no-password", f"--jobs={jobs}",
            f"--dbname={make_conninfo(dbname=database)}", archive.path]
    if server_major >= 17:
        argv.insert(3, "--exit-on-error")
    with tempfile.TemporaryFile() as stderr:
        code = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=stderr, env=env,
                              pass_fds=archive.pass_fds).returncode
        if code == 0 or (server_major < 17 and _only_timeout_errors(stderr)):
            return None
        return _errors(stderr)


def _errors(stderr: IO[bytes]) -> str:
    """pg_restore's first errors that say something (an old server's opening one says nothing
    here), or the end of what it said."""
    stderr.seek(0)
    lines = stderr.read().decode("utf-8", "replace").splitlines()
    errors = [line for line in lines if line.startswith("pg_restore: error:") and not line.endswith(_OLD_SERVER_ERROR)]
    return redact(" | ".join(errors[:2])) if errors else stderr_tail(stderr)


def _only_timeout_errors(stderr: IO[bytes]) -> bool:
    """Whether every error pg_restore reported is the one an old server gives its opening SET.
    Its closing tally ("errors ignored on restore: N") cannot be used: the workers' opening
    errors are not in it."""
    stderr.seek(0)
    errors = [line for line in stderr.read().decode("utf-8", "replace").splitlines()
              if line.startswith("pg_restore: error:")]
    return bool(errors) and all(line.endswith(_OLD_SERVER_ERROR) for line in errors)
