"""Where a snapshot's objects go under ``PREFIX/``, and how a listing reads them back.

The catalog layout (what dbops writes)::

    PREFIX/data/NAME.dump.zst                         the dump (a multipart upload)
    PREFIX/manifests/H/NAME.SIZE.manifest.json        its manifest, written last: the snapshot exists from then on
    PREFIX/pins/NAME.pinned                           a pin
    PREFIX/.tmp-HOST-PID-NAME.dump.zst                the marker of a create in progress

A listing reads the manifests' keys only: one key per snapshot, so a page of ListObjectsV2
holds 1,000 snapshots (not ~330 as data, manifest and pin side by side did), and the key
says all the list shows: the name (environment, time, version, reason), the dump's size
(SIZE), its write time (the manifest's LastModified); pins are their own, short listing. H
is the first hex digit of the name's sha256: 16 disjoint prefixes, listed in parallel, so
10,000 snapshots arrive in the time of one page of ~625 keys, not of ten pages one after
another. Nothing is opened to list.

The flat layout (what dbops wrote before: ``PREFIX/NAME.dump.zst``, ``PREFIX/NAME.manifest.json``,
``PREFIX/NAME.pinned``, and legacy ``*.sql.gz``) is still read, listed with a delimiter so
that the catalog's folders cost one common prefix each: a bucket without flat snapshots
answers that listing in one request. A process of the older version lists only the flat
layout; it never sees, so never deletes, a catalog snapshot.
"""

from __future__ import annotations

import hashlib

from commands.snapshot.snapshots import DATA_SUFFIX, MANIFEST_SUFFIX, PIN_SUFFIX, is_dbops_name

DATA_DIR = "data/"
MANIFEST_DIR = "manifests/"
PIN_DIR = "pins/"
SHARDS = "0123456789abcdef"


def shard(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()[0]


def data_file(name: str) -> str:
    return f"{DATA_DIR}{name}{DATA_SUFFIX}"


def manifest_file(name: str, size: int) -> str:
    return f"{MANIFEST_DIR}{shard(name)}/{name}.{size}{MANIFEST_SUFFIX}"


def pin_file(name: str) -> str:
    return f"{PIN_DIR}{name}{PIN_SUFFIX}"


def manifest_dirs() -> list[str]:
    return [f"{MANIFEST_DIR}{h}/" for h in SHARDS]


def read_manifest_file(filename: str) -> tuple[str, int] | None:
    """(name, dump size) of a catalog manifest's key (under ``PREFIX/``); None for any other key."""
    if not filename.startswith(MANIFEST_DIR) or not filename.endswith(MANIFEST_SUFFIX):
        return None
    folder, _, rest = filename[len(MANIFEST_DIR):-len(MANIFEST_SUFFIX)].partition("/")
    name, _, size = rest.rpartition(".")
    if not size.isdigit() or not is_dbops_name(name) or folder != shard(name):
        return None
    return name, int(size)
