"""Bundles of preserved rows in the snapshots' bucket and prefix (the ``BundleStore`` contract).

Objects are named as the files of a snapshot directory are (``PREFIX/NAME.preserved.zst``,
``.preserved.json``, ``.preserved.pinned``). The data goes up from the finished local file
(boto3's managed transfer: multipart, streamed from disk), the manifest last: until it is
written the bundle is not listed. A marker named for the publishing host and pid stands while
it goes up, so that what a killed publish left can be found and removed (``tidy``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import BinaryIO

import structlog
from boto3.s3.transfer import S3Transfer
from botocore.exceptions import BotoCoreError, ClientError

from commands.errors import SnapshotFailed
from commands.snapshot.bundle_leftovers import abandoned_publish
from commands.snapshot.store import (BUNDLE_MANIFEST_SUFFIX, BUNDLE_NAME, BUNDLE_PIN_SUFFIX, BUNDLE_SUFFIX,
                                     BUNDLE_TEMP_PREFIX, StoredBundle, manifest_temp_name)

log = structlog.get_logger("dbops.preserve")

class S3Bundles:
    def __init__(self, store) -> None:  # the S3Store whose bucket and prefix they share (it imports this module)
        self.store = store
        self.where = store.where

    def bundles(self) -> list[StoredBundle]:
        with self.store._fault("list the preserved rows"):
            entries = self.store._objects("", "/")
        return [StoredBundle(name=k[: -len(BUNDLE_SUFFIX)], size=item["Size"],
                             pinned=k[: -len(BUNDLE_SUFFIX)] + BUNDLE_PIN_SUFFIX in entries)
                for k, item in entries.items()
                if k.endswith(BUNDLE_SUFFIX) and BUNDLE_NAME.fullmatch(k[: -len(BUNDLE_SUFFIX)])
                and k[: -len(BUNDLE_SUFFIX)] + BUNDLE_MANIFEST_SUFFIX in entries]

    def manifest(self, name: str) -> dict:
        return self.store.read_manifest(name + BUNDLE_MANIFEST_SUFFIX, f"bundle {name}")

    def publish(self, name: str, data: Path, manifest: dict) -> str:
        store = self.store
        with store._fault(f"store bundle {name}"):
            final = next((f"{name}{'' if n == 1 else f'_{n}'}" for n in range(1, 100)
                          if not store._exists(store._key(f"{name}{'' if n == 1 else f'_{n}'}" + BUNDLE_SUFFIX))), None)
            if final is None:
                raise SnapshotFailed(f"Could not find a free name for bundle {name} in {store.where}.")
            # Put first, gone once the manifest is: a publish killed in between leaves it, naming
            # its host and pid, for ``tidy`` to abort the upload it left (a multipart upload has
            # no name of its own that says whose it is).
            marker = store._key(manifest_temp_name(final))
            store.client.put_object(Bucket=store.bucket, Key=marker, Body=b"")
            # boto3's transfer manager: multipart for a large bundle, a file read part by part (the
            # client is botocore's own, which has no upload_file of its own).
            S3Transfer(store.client).upload_file(str(data), store.bucket, store._key(final + BUNDLE_SUFFIX))
            store.client.put_object(Bucket=store.bucket, Key=store._key(final + BUNDLE_MANIFEST_SUFFIX),
                                    Body=json.dumps({**manifest, "name": final}, indent=2).encode(),
                                    ContentType="application/json")
            store.client.delete_object(Bucket=store.bucket, Key=marker)
        return final

    def tidy(self, env_name: str, *, dry_run: bool = False) -> list[str]:
        """What ``ObjectStore.tidy_bundles`` says: for each marker of a killed publish, its
        unfinished upload aborted, its data removed if no manifest came, then the marker."""
        store, removed = self.store, []
        with store._fault("list the preserved rows"):
            markers = {item["Key"][len(store.prefix):]: item["LastModified"].timestamp()
                       for page in store.client.get_paginator("list_objects_v2").paginate(
                           Bucket=store.bucket, Prefix=store._key(BUNDLE_TEMP_PREFIX), Delimiter="/")
                       for item in page.get("Contents", ())}
        for marker, written in markers.items():
            name = abandoned_publish(marker, env_name, written)
            if name is None:
                continue
            if not dry_run:
                try:
                    store._abort_uploads(name + BUNDLE_SUFFIX)
                    if not store._exists(store._key(name + BUNDLE_MANIFEST_SUFFIX)):
                        store.client.delete_object(Bucket=store.bucket, Key=store._key(name + BUNDLE_SUFFIX))
                    store.client.delete_object(Bucket=store.bucket, Key=store._key(marker))
                except (BotoCoreError, ClientError) as err:
                    log.warning("preserve.leftover_kept", store=self.where, file=marker, error=type(err).__name__)
                    continue
            removed.append(marker)
        if removed and not dry_run:
            log.info("preserve.leftovers_removed", store=self.where, removed=removed)
        return removed

    def open(self, name: str) -> BinaryIO:
        store = self.store
        with store._fault(f"read bundle {name}"):
            return store.client.get_object(Bucket=store.bucket, Key=store._key(name + BUNDLE_SUFFIX))["Body"]

    def delete(self, name: str) -> int:
        store = self.store
        sizes = {b.name: b.size for b in self.bundles()}
        with store._fault(f"delete bundle {name}"):
            for suffix in (BUNDLE_MANIFEST_SUFFIX, BUNDLE_SUFFIX, BUNDLE_PIN_SUFFIX):
                store.client.delete_object(Bucket=store.bucket, Key=store._key(name + suffix))
        return sizes.get(name, 0)

    def set_pinned(self, name: str, pinned: bool) -> bool:
        store, key = self.store, self.store._key(name + BUNDLE_PIN_SUFFIX)
        with store._fault(f"{'pin' if pinned else 'unpin'} bundle {name}"):
            if pinned == store._exists(key):
                return False
            if pinned:
                store.client.put_object(Bucket=store.bucket, Key=key, Body=b"")
            else:
                store.client.delete_object(Bucket=store.bucket, Key=key)
        return True
