"""A bundle: the rows a restore would have lost, in one zstd-compressed file, and its manifest.

The file is a sequence of frames, each a kind byte, a 4-byte big-endian length and the
payload: ``T`` a table's header (JSON: its name and columns), ``D`` a piece of its rows
(PostgreSQL's CSV, as COPY wrote it), ``E`` its end (JSON: the rows written). It is written
to a temporary file (0600, never through a link), hashed on the way, then published through
the store seam (``commands.snapshot.store.BundleStore``) with its manifest, which carries the
sha256 and is written last. Reading streams it back table by table: never whole in memory.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO, Iterator

from commands.errors import SnapshotFailed, UsageError
from commands.snapshot.bundle_leftovers import export_directory
from commands.snapshot.store import BUNDLE_NAME, writer_temp_name

FORMAT = "dbops-preserved-1"
CHUNK = 1 << 20
_FRAME = struct.Struct(">cI")
NAME = BUNDLE_NAME


def bundle_name(env: str, when: datetime) -> str:
    return f"{env}_{when.astimezone(timezone.utc):%Y%m%d_%H%M%S}_preserved"


def check_bundle_name(name: str) -> str:
    """A bundle name as a user typed it: refused unless it is one dbops makes (no paths)."""
    if not NAME.fullmatch(name):
        shown = repr(name if len(name) <= 60 else name[:57] + "…")
        raise UsageError(f"{shown} is not a bundle name. `/snapshot preserved` lists them "
                         "(ENV_YYYYMMDD_HHMMSS_preserved).")
    return name


class _Hashing:
    def __init__(self, fh: BinaryIO) -> None:
        self.fh, self.sha256, self.written = fh, hashlib.sha256(), 0

    def write(self, data: bytes) -> int:
        self.sha256.update(data)
        self.written += len(data)
        return self.fh.write(data)


class BundleWriter:
    """The ``BundleSink`` the database layer exports into: a temporary file (0600) in
    ``directory`` (the snapshot directory, so publishing is a link on the same file system;
    the system's temporary directory for object storage). ``discard`` removes it."""

    def __init__(self, directory: Path | None, env_name: str, level: int = 6) -> None:
        import zstandard  # loaded by a restore that keeps rows, not by every command
        if directory is not None:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        # Named for its host, pid and environment: a killed export's file is removed once its
        # writer is gone (commands.snapshot.bundle_leftovers).
        self.path = export_directory(directory) / writer_temp_name(env_name)
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self.file = os.fdopen(fd, "wb")
        self.hashing = _Hashing(self.file)
        self.writer = zstandard.ZstdCompressor(level=level).stream_writer(self.hashing, closefd=False)
        self.tables: list[dict] = []

    def _frame(self, kind: bytes, payload: bytes) -> None:
        self.writer.write(_FRAME.pack(kind, len(payload)) + payload)

    def table(self, header: dict) -> None:
        self.tables.append({**header, "rows": 0})
        self._frame(b"T", json.dumps(header).encode())

    def rows(self, data: bytes) -> None:
        self._frame(b"D", data)

    def end(self, rows: int) -> None:
        self.tables[-1]["rows"] = rows
        self._frame(b"E", json.dumps({"rows": rows}).encode())

    def finish(self) -> tuple[str, int]:
        """Close the stream, fsync the file; (sha256, size)."""
        self.writer.close()
        self.file.flush()
        os.fsync(self.file.fileno())
        self.file.close()
        return self.hashing.sha256.hexdigest(), self.hashing.written

    def discard(self) -> None:
        if not self.file.closed:
            self.file.close()
        self.path.unlink(missing_ok=True)


def checksum(stream: BinaryIO) -> str:
    digest = hashlib.sha256()
    with stream:
        while chunk := stream.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def read_tables(stream: BinaryIO, rows: dict[str, int]) -> Iterator[tuple[dict, Iterator[bytes]]]:
    """The bundle's tables in order: (header with ``rows`` from the manifest, its CSV pieces).
    A table's pieces not read by the caller are skipped before the next table."""
    import zstandard
    reader = zstandard.ZstdDecompressor().stream_reader(stream, closefd=True)

    def exactly(n: int) -> bytes:
        data = b""
        while len(data) < n:
            more = reader.read(n - len(data))
            if not more:
                raise SnapshotFailed("The bundle ends early: it is damaged.")
            data += more
        return data

    def frame() -> tuple[bytes, bytes] | None:
        head = reader.read(_FRAME.size)
        if not head:
            return None
        if len(head) < _FRAME.size:
            head += exactly(_FRAME.size - len(head))
        kind, length = _FRAME.unpack(head)
        return kind, exactly(length)

    with reader:
        pending: list[bool] = [False]

        def pieces() -> Iterator[bytes]:
            while (got := frame()) is not None:
                kind, payload = got
                if kind == b"E":
                    pending[0] = False
                    return
                yield payload
            raise SnapshotFailed("The bundle ends inside a table: it is damaged.")

        while (got := frame()) is not None:
            kind, payload = got
            if kind != b"T":
                raise SnapshotFailed("The bundle is damaged (a table's rows without its header).")
            header = json.loads(payload)
            pending[0] = True
            body = pieces()
            yield {**header, "rows": rows.get(header["table"], 0)}, body
            if pending[0]:
                for _ in body:
                    pass
