"""Snapshots in an S3-compatible object store (``snapshot_url = "s3://BUCKET/PREFIX"``).

Objects are laid out as ``commands.objstore.layout`` says (one manifest key per snapshot,
listed in parallel; snapshots of the older flat layout are still read), and a listing is
read into the same ``Snapshot`` values as a directory's, so scoping and cleanup treat both
alike.

create:  a zero-byte marker ``PREFIX/.tmp-HOST-PID-NAME.dump.zst`` first (it says who is
         writing, and lists as an interrupted run), then the data as a multipart upload of
         parts sent as they fill, several at once (``commands.objstore.parts``: never the
         whole dump in memory or on disk), then the manifest (the commit point), then the
         marker goes. An upload that fails is aborted; one whose process was killed is
         aborted by the next create of that environment (``tidy``): an unfinished multipart
         upload is never an object, so it is never listed.
faults:  throttling (SlowDown, 503) and 5xx answers are retried with backoff by botocore's
         "standard" retry mode; what still fails is a SnapshotFailed naming the store and
         the error, never a credential (they come from the standard AWS chain: environment
         variables, config files, an instance or pod role; never dbops' config file).
"""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import BinaryIO, Iterator
from urllib.parse import urlsplit

import botocore.session
import structlog
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from botocore.utils import parse_timestamp

from commands.config import EnvironmentSettings
from commands.errors import SnapshotFailed
from commands.lock.lock_dirs import pid_alive
from commands.objstore import layout
from commands.objstore.parts import PART_THREADS, PartWriter
from commands.snapshot.snapshots import (
    DATA_SUFFIX, LEGACY_SIDECAR, MANIFEST_SUFFIX, PIN_SUFFIX, Listing, Snapshot, dbops_snapshot, environment_in_name,
    listing_of, newest_first_key, parse_temp, temp_name, this_host,
)

MANIFEST_LIMIT = 1 << 20
FOREIGN_TEMP_AGE_SECONDS = 24 * 3600
# botocore's "standard" mode retries throttling (SlowDown, 503) and 5xx with jittered exponential backoff.
RETRIES = {"max_attempts": 6, "mode": "standard"}
# the listing's requests (16 manifest folders, pins, the flat layout) or an upload's parts, all at once
CONNECTIONS = max(len(layout.SHARDS) + 2, PART_THREADS + 2)
log = structlog.get_logger("dbops.snapshots")


class S3Store:
    """One environment's ``snapshot_url`` (the ``ObjectStore`` contract)."""

    def __init__(self, url: str, *, endpoint_url: str | None = None, client=None) -> None:
        parts = urlsplit(url)
        self.bucket, prefix = parts.netloc, parts.path.strip("/")
        self.prefix = f"{prefix}/" if prefix else ""
        self.where = url
        self.client = client or _session().create_client(
            "s3", endpoint_url=endpoint_url,
            config=Config(retries=RETRIES, connect_timeout=5, read_timeout=60, max_pool_connections=CONNECTIONS,
                          # the dump's own sha256 (in the manifest) is its integrity check
                          request_checksum_calculation="when_required",
                          s3={"addressing_style": "path"} if endpoint_url else {}))

    @classmethod
    def for_env(cls, env: EnvironmentSettings) -> "S3Store":
        return cls(env.snapshot_url, endpoint_url=env.s3_endpoint_url)

    # --- reading ---

    def list(self) -> Listing:
        """Both layouts' snapshots: the catalog's 16 manifest folders, its pins and the flat
        layout's objects, each listed by its own requests, all at once."""
        folders = layout.manifest_dirs()
        with self._fault("list the snapshots"), ThreadPoolExecutor(len(folders) + 2,
                                                                  thread_name_prefix="dbops-list") as pool:
            flat = pool.submit(self._objects, "", "/")
            pins = pool.submit(self._objects, layout.PIN_DIR)
            manifests = [pool.submit(self._objects, folder) for folder in folders]
            return self._listing(flat.result(), set(pins.result()), [folder.result() for folder in manifests])

    def list_since(self, env_name: str, since: datetime | None, memo: dict) -> tuple[Listing, bool]:
        """The snapshots named ``ENV_YYYYMMDD_HHMMSS…`` from ``since`` on (to the second; every
        one when None), read from few keys, for a page of the newest (``commands.snapshot.paging``);
        and whether that is all of the environment's catalog (nothing older exists).

        Within a manifest folder an environment's keys sort by the time in their name, so each
        of the 16 folders is read from ``StartAfter=manifests/H/ENV_<since>`` only, and its first
        key (``MaxKeys=1``) says whether anything older is there: one round of requests at once.
        What comes back also holds look-alike environments (``prod_eu`` sorts after
        ``prod_2026…``) and is a superset of the catalog snapshots from ``since`` on: the caller
        scopes and cuts it by name. The flat layout (older snapshots, legacy ``togather_*``
        names that carry no environment prefix, interrupted runs' markers) is read whole, as
        ``list`` reads it: dbops no longer writes there, so it is a few keys, one request when empty.
        ``memo`` keeps what does not depend on ``since`` (the flat layout, the pins, each folder's
        first key) from one round of a page to the next, so a wider round asks the 16 folders only.
        """
        start = f"{env_name}_{since:%Y%m%d_%H%M%S}" if since is not None else ""
        folders = layout.manifest_dirs()
        with self._fault("list the snapshots"), ThreadPoolExecutor(2 * len(folders) + 2,
                                                                  thread_name_prefix="dbops-page") as pool:
            if not memo:
                memo["flat"] = pool.submit(self._objects, "", "/")
                memo["pins"] = pool.submit(self._objects, f"{layout.PIN_DIR}{env_name}_")
                memo["firsts"] = [pool.submit(self._first, f"{folder}{env_name}_") for folder in folders]
            manifests = [pool.submit(self._objects, f"{folder}{env_name}_", "", f"{folder}{start}" if start else "")
                         for folder in folders]
            listing = self._listing(memo["flat"].result(), set(memo["pins"].result()),
                                    [folder.result() for folder in manifests])
            return listing, all(_not_before(first.result(), env_name, start) for first in memo["firsts"])

    def _first(self, under: str) -> str | None:
        """The first key under ``PREFIX/under`` (by its key under ``PREFIX/``), or None."""
        found = self.client.list_objects_v2(Bucket=self.bucket, Prefix=self._key(under), MaxKeys=1)
        return next((item["Key"][len(self.prefix):] for item in found.get("Contents", ())), None)

    def _listing(self, flat: dict, pinned: set[str], folders: list[dict]) -> Listing:
        flat_listing = listing_of(flat, _object_facts, directory=None, store=self)
        snapshots, orphans = list(flat_listing.snapshots), list(flat_listing.orphans)
        for folder in folders:
            for filename, item in folder.items():
                named = layout.read_manifest_file(filename)
                if named is None:
                    orphans.append(filename)
                    continue
                name, size = named
                snapshots.append(dbops_snapshot(
                    name, filename=layout.data_file(name), size=size, written_ns=_object_facts(item)[1],
                    pinned=layout.pin_file(name) in pinned, directory=None, store=self, entry=filename))
        snapshots.sort(key=newest_first_key, reverse=True)
        return Listing(snapshots=tuple(snapshots), orphans=tuple(sorted(orphans)), incomplete=flat_listing.incomplete)

    def _objects(self, under: str, delimiter: str = "", start_after: str = "") -> dict[str, dict]:
        """The objects under ``PREFIX/under`` by their key under ``PREFIX/`` (with a delimiter:
        not those in its sub-folders; with ``start_after``: only those whose key under
        ``PREFIX/`` sorts after it)."""
        more = {"StartAfter": self._key(start_after)} if start_after else {}
        pages = self.client.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self._key(under), Delimiter=delimiter, **more)
        return {item["Key"][len(self.prefix):]: item for page in pages for item in page.get("Contents", ())}

    def manifest(self, snapshot: Snapshot) -> dict:
        return self.read_manifest(_manifest_of(snapshot), snapshot.name)

    def read_manifest(self, filename: str, label: str) -> dict:
        """The JSON object at ``PREFIX/filename`` (a snapshot's or a bundle's manifest, read up to
        MANIFEST_LIMIT bytes); SnapshotFailed naming ``label`` when it is gone or not one."""
        with self._fault(f"read the manifest of {label}"):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(filename),
                                              Range=f"bytes=0-{MANIFEST_LIMIT - 1}")["Body"].read()
            except ClientError as err:
                if _code(err) in ("NoSuchKey", "404"):
                    raise SnapshotFailed(f"The manifest of {label} cannot be read (it is gone).") from None
                raise
        try:
            manifest = json.loads(body)
        except ValueError as err:
            raise SnapshotFailed(f"The manifest of {label} cannot be read ({err}).") from None
        if not isinstance(manifest, dict):
            raise SnapshotFailed(f"The manifest of {label} cannot be read (not a JSON object).")
        return manifest

    def open(self, snapshot: Snapshot) -> BinaryIO:
        with self._fault(f"read {snapshot.name}"):
            return self.client.get_object(Bucket=self.bucket, Key=self._key(snapshot.filename))["Body"]

    # --- changing ---

    def delete(self, snapshot: Snapshot) -> int:
        """The object that lists it goes first (the manifest; a flat snapshot's data): a delete
        cut short leaves data nobody lists, never a listed snapshot without its data."""
        if snapshot.entry:
            order = (snapshot.entry, snapshot.filename, layout.pin_file(snapshot.name))
        else:
            order = (snapshot.filename, *(snapshot.name + suffix for suffix in (MANIFEST_SUFFIX, LEGACY_SIDECAR,
                                                                                 PIN_SUFFIX)))
        with self._fault(f"delete {snapshot.name}"):
            for filename in order:
                self.client.delete_object(Bucket=self.bucket, Key=self._key(filename))
        return snapshot.size

    def set_pinned(self, snapshot: Snapshot, pinned: bool) -> bool:
        key = self._key(layout.pin_file(snapshot.name) if snapshot.entry else snapshot.name + PIN_SUFFIX)
        with self._fault(f"{'pin' if pinned else 'unpin'} {snapshot.name}"):
            if pinned == self._exists(key):
                return False
            if pinned:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"")
            else:
                self.client.delete_object(Bucket=self.bucket, Key=key)
        return True

    def bundles(self) -> "S3Bundles":
        from commands.objstore.bundles import S3Bundles  # only a restore that keeps rows, and their list
        return S3Bundles(self)

    def tidy_bundles(self, env_name: str, *, dry_run: bool = False) -> list[str]:
        return self.bundles().tidy(env_name, dry_run=dry_run)

    def writer(self, name: str) -> "PartWriter":
        """A file to write snapshot ``name``'s data into, part by part (a context manager: on a
        clean exit the upload is completed, ``.name`` being the name it got; otherwise it is
        aborted). The marker put first stays until ``write_manifest``."""
        return PartWriter(self, name)

    def write_manifest(self, name: str, manifest: dict) -> None:
        with self._fault(f"write the manifest of {name}"):
            self.client.put_object(Bucket=self.bucket, Key=self._key(layout.manifest_file(name, manifest["size"])),
                                   Body=json.dumps(manifest, indent=2).encode(), ContentType="application/json")
            self.client.delete_object(Bucket=self.bucket, Key=self._key(temp_name(name, DATA_SUFFIX)))

    def discard(self, name: str) -> None:
        """Remove snapshot ``name``'s data and marker (its manifest could not be written); what
        cannot be removed now, the next create's ``tidy`` removes."""
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(layout.data_file(name)))
            self.client.delete_object(Bucket=self.bucket, Key=self._key(temp_name(name, DATA_SUFFIX)))
        except (BotoCoreError, ClientError) as err:
            log.warning("snapshot.discard_failed", snapshot=name, error=type(err).__name__)

    def tidy(self, env_name: str) -> list[str]:
        """Abort the uploads interrupted creates of ``env_name`` left and remove their markers
        and data without a manifest: a marker of this host whose process is gone, or of
        another host untouched for FOREIGN_TEMP_AGE_SECONDS (a pid means nothing there).
        Tidying never fails a create: what cannot be removed is logged and left."""
        removed: list[str] = []
        listing = self.list()  # a store that cannot be read fails the create here, before pg_dump starts
        published = {s.name for s in listing.snapshots}
        now = time.time()
        for filename in listing.incomplete:
            temp = parse_temp(filename)
            if temp is None or environment_in_name(temp[2]) != env_name:
                continue
            host, pid, name = temp
            try:
                if host == this_host() and pid_alive(pid):
                    continue
                if host != this_host() and now - self._written(filename) < FOREIGN_TEMP_AGE_SECONDS:
                    continue
                for data in (layout.data_file(name), name + DATA_SUFFIX):  # a create of either layout
                    removed += self._abort_uploads(data)
                    if name not in published:  # data whose manifest never came is no snapshot
                        self.client.delete_object(Bucket=self.bucket, Key=self._key(data))
                self.client.delete_object(Bucket=self.bucket, Key=self._key(filename))
            except (BotoCoreError, ClientError) as err:
                log.warning("snapshot.leftover_kept", store=self.where, file=filename, error=type(err).__name__)
                continue
            removed.append(filename)
        if removed:
            log.info("snapshot.leftovers_removed", store=self.where, removed=removed)
        return removed

    def probe(self) -> dict[str, str]:
        """Do under the prefix what a create and a cleanup do, on a probe named
        ``.dbops-doctor-HOST-PID``: write a tiny object and delete it, start a multipart upload
        and abort it. Each step that was refused, with the store's error code ("write",
        "delete", "start an upload", "abort an upload"); empty when all were allowed. A step
        that needs one refused before it is not tried. SnapshotFailed if the store cannot
        be reached."""
        key = self._key(f".dbops-doctor-{this_host()}-{os.getpid()}")
        refused: dict[str, str] = {}
        with self._fault("probe the prefix"):
            try:
                self.client.put_object(Bucket=self.bucket, Key=key, Body=b"dbops doctor")
            except ClientError as err:
                refused["write"] = _code(err)
            else:
                try:
                    self.client.delete_object(Bucket=self.bucket, Key=key)
                except ClientError as err:
                    refused["delete"] = _code(err)
            try:
                upload = self.client.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
            except ClientError as err:
                refused["start an upload"] = _code(err)
            else:
                try:
                    self.client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload)
                except ClientError as err:
                    refused["abort an upload"] = _code(err)
        return refused

    # --- helpers ---

    def _key(self, filename: str) -> str:
        return self.prefix + filename

    def _exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except ClientError as err:
            if _code(err) in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def _free_name(self, name: str) -> str:
        for n in range(1, 100):
            candidate = f"{name}{'' if n == 1 else f'_{n}'}"
            if not any(self._exists(self._key(data)) for data in (layout.data_file(candidate), candidate + DATA_SUFFIX)):
                return candidate
        raise SnapshotFailed(f"Could not find a free name for snapshot {name} in {self.where}.")

    def _written(self, filename: str) -> float:
        head = self.client.head_object(Bucket=self.bucket, Key=self._key(filename))
        return head["LastModified"].timestamp()

    def _abort_uploads(self, data: str) -> list[str]:
        aborted = []
        pages = self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=self._key(data))
        for page in pages:
            for upload in page.get("Uploads", ()):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
                aborted.append(f"upload of {upload['Key'][len(self.prefix):]}")
        return aborted

    @contextmanager
    def _fault(self, doing: str) -> Iterator[None]:
        """botocore's errors, once its retries are spent, as a SnapshotFailed that says what to check."""
        try:
            yield
        except ClientError as err:
            code = _code(err)
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            hint = {"NoSuchBucket": "the bucket does not exist", "AccessDenied": "access denied: check the bucket "
                    "policy (docs/object-storage.md) and the credentials dbops runs with",
                    "InvalidAccessKeyId": "the access key is not known to the store",
                    "SignatureDoesNotMatch": "the secret key does not match the access key"}.get(code, "")
            raise SnapshotFailed(f"Object storage {self.where} refused to {doing}: {code or status}"
                                 f"{f' ({hint})' if hint else ''}. Nothing was kept.") from None
        except BotoCoreError as err:
            raise SnapshotFailed(f"Object storage {self.where} cannot be reached to {doing}: {_describe(err)}. "
                                 "Check s3_endpoint_url, the network and the AWS credentials. Nothing was kept.") from None


def _session() -> botocore.session.Session:
    """A botocore session (credentials and region the standard AWS way, as boto3's) whose
    answers' timestamps are read by ``_timestamp``: botocore's own parser (dateutil) was three
    quarters of the CPU time of reading a page of 1,000 keys (47 ms; 11 ms without it)."""
    session = botocore.session.get_session()
    session.get_component("response_parser_factory").set_parser_defaults(timestamp_parser=_timestamp)
    return session


def _timestamp(value: str) -> datetime:
    """ISO 8601 as S3's XML writes it (``2026-12-01T15:42:52.000Z``) by the standard library;
    anything else (an HTTP date in a header) by botocore's parser."""
    try:
        return datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return parse_timestamp(value)


def _not_before(first: str | None, env_name: str, start: str) -> bool:
    """Whether a manifest folder whose first key (under the environment's prefix) is ``first``
    holds none of ``env_name``'s snapshots named before ``start``. A look-alike environment's
    key there (``prod_1x_…`` before ``prod_2026…``) says nothing of ours: not known, so False."""
    if first is None or not start:
        return True
    name = first.rpartition("/")[2]
    return environment_in_name(name) == env_name and name >= start


def _manifest_of(snapshot: Snapshot) -> str:
    return snapshot.entry or snapshot.name + MANIFEST_SUFFIX


def _object_facts(item: dict) -> tuple[int, int]:
    written: datetime = item["LastModified"]
    return item["Size"], int(written.astimezone(timezone.utc).timestamp() * 1_000_000_000)


def _code(err: ClientError) -> str:
    return str(err.response.get("Error", {}).get("Code", ""))


def _describe(err: BotoCoreError) -> str:
    """The error without anything a credential could hide in (botocore's messages name the endpoint only)."""
    from commands.redact import redact
    return redact(str(err))
