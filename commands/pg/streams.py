"""Streaming helpers for snapshot files: chunked zstd/gzip reading, hashing, feeding a child.

Every snapshot byte moves in CHUNK-sized pieces, so memory stays flat whatever the size.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
from pathlib import Path
from typing import IO, Iterator


from commands.process_env import base_env
from commands.redact import redact
from commands.snapshot.snapshots import Snapshot

CHUNK = 1 << 20


class HashingWriter:
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


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def stderr_tail(fh: IO[bytes], lines: int = 5) -> str:
    fh.seek(0)
    text = fh.read().decode("utf-8", "replace").strip().splitlines()
    return redact(" | ".join(text[-lines:]))


def pipe_into(argv: list[str], chunks: Iterator[bytes], **popen) -> int:
    """Feed ``chunks`` to ``argv``'s stdin; return its exit code. The child's environment is
    ``base_env``'s allow-list unless ``env`` is given."""
    popen.setdefault("env", base_env())
    process = subprocess.Popen(argv, stdin=subprocess.PIPE, **popen)
    failures: list[str] = []
    feed(process.stdin, chunks, failures)
    code = process.wait()
    return code if not failures else (code or 1)


def _no_follow(path: str, flags: int) -> int:
    """An ``open`` opener that refuses a link (ELOOP): a snapshot is read where it is, never
    through a link planted in the directory after it was listed."""
    return os.open(path, flags | os.O_NOFOLLOW)


def open_data(source: "Path | Snapshot") -> IO[bytes]:
    """A snapshot's data (or a file) to read in chunks: from its store when it has one,
    else from its directory, never through a link."""
    if isinstance(source, Path):
        return open(source, "rb", opener=_no_follow)
    if source.store is not None:
        return source.store.open(source)
    return open(source.path, "rb", opener=_no_follow)


def sha256_of(source: "Path | Snapshot") -> str:
    digest = hashlib.sha256()
    with open_data(source) as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def zstd_chunks(source: "Path | Snapshot") -> Iterator[bytes]:
    import zstandard  # loaded by the commands that read a snapshot, not by every command line
    with open_data(source) as fh, zstandard.ZstdDecompressor().stream_reader(fh) as reader:
        while chunk := reader.read(CHUNK):
            yield chunk


def gzip_chunks(source: "Path | Snapshot") -> Iterator[bytes]:
    with open_data(source) as raw, gzip.GzipFile(fileobj=raw, mode="rb") as fh:
        while chunk := fh.read(CHUNK):
            yield chunk


def feed(stdin: IO[bytes], chunks: Iterator[bytes], failures: list[str]) -> None:
    import zstandard
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
