"""The dump's upload: a write-only file whose parts go to a multipart upload as they fill,
several at once.

Memory stays bounded whatever the dump's size: at most IN_FLIGHT_BYTES of parts are being
sent (four 5 MiB parts; one 16 MiB part once parts grow) while the next one fills, so the
upload holds at most IN_FLIGHT_BYTES + one part (25 MiB; 32 MiB past the 5,000th part).
Nothing touches local disk. A part that fails (once botocore's retries of throttling and
5xx answers are spent) fails the next write, or the completion, and the upload is aborted
after the parts still in flight have ended, so no part outlives the abort.
"""

from __future__ import annotations

from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

import structlog
from botocore.exceptions import BotoCoreError, ClientError

from commands.objstore.layout import data_file
from commands.snapshot.snapshots import DATA_SUFFIX, temp_name

# S3's parts are at least 5 MiB (but the last), at most 10,000 of them: 5 MiB parts keep memory
# flat; after PART_SIZE_GROWS_AFTER of them parts are LARGE_PART_SIZE, so a dump may reach ~100 GiB.
PART_SIZE = 5 << 20
LARGE_PART_SIZE = 16 << 20
PART_SIZE_GROWS_AFTER = 5000
IN_FLIGHT_BYTES = 20 << 20
PART_THREADS = IN_FLIGHT_BYTES // PART_SIZE
log = structlog.get_logger("dbops.snapshots")


class PartWriter:
    """Snapshot ``name``'s data, sent part by part (a context manager: on a clean exit the
    upload is completed, ``.name`` being the name it got; otherwise it is aborted). ``store``
    is the ``S3Store`` it writes to (not imported here: it imports this)."""

    def __init__(self, store, name: str) -> None:
        self.store, self.name = store, name
        self.buffer = bytearray()
        self.etags: dict[int, str] = {}
        self.sending: dict[int, tuple[Future, int]] = {}  # part number -> (its upload, its size)
        self.numbered = 0
        self.upload_id = ""
        self.pool: ThreadPoolExecutor | None = None

    def __enter__(self) -> "PartWriter":
        store = self.store
        with store._fault(f"start the upload of {self.name}"):
            self.name = store._free_name(self.name)
            store.client.put_object(Bucket=store.bucket, Key=self._marker, Body=b"")
            self.upload_id = store.client.create_multipart_upload(Bucket=store.bucket, Key=self._key)["UploadId"]
        self.pool = ThreadPoolExecutor(PART_THREADS, thread_name_prefix="dbops-upload")
        return self

    def __exit__(self, kind, value, traceback) -> None:
        try:
            if kind is None:
                try:
                    self._complete()
                    return
                except BaseException:
                    self._abort()
                    raise
            self._abort()
        finally:
            self.pool.shutdown(wait=True, cancel_futures=True)

    @property
    def _key(self) -> str:
        return self.store._key(data_file(self.name))

    @property
    def _marker(self) -> str:
        return self.store._key(temp_name(self.name, DATA_SUFFIX))

    def write(self, data: bytes) -> int:
        self.buffer += data
        # The part goes as it is (no copy): a little over the part size is fine.
        if len(self.buffer) >= (PART_SIZE if self.numbered < PART_SIZE_GROWS_AFTER else LARGE_PART_SIZE):
            part, self.buffer = self.buffer, bytearray()
            self._send(part)
        return len(data)

    def flush(self) -> None:
        """Parts go when full; the rest goes when the upload completes."""

    def _send(self, body: bytearray) -> None:
        while self.sending and sum(size for _, size in self.sending.values()) + len(body) > IN_FLIGHT_BYTES:
            self._settle(wait_for_one=True)
        self._settle(wait_for_one=False)  # a part that failed fails the dump now, not at the end
        self.numbered += 1
        self.sending[self.numbered] = (self.pool.submit(self._upload, self.numbered, body), len(body))

    def _upload(self, number: int, body: bytearray) -> str:
        with self.store._fault(f"upload part {number} of {self.name}"):
            return self.store.client.upload_part(Bucket=self.store.bucket, Key=self._key, UploadId=self.upload_id,
                                                 PartNumber=number, Body=body)["ETag"]

    def _settle(self, *, wait_for_one: bool) -> None:
        """Collect the parts that have gone (waiting for one first if asked); a part's failure is raised."""
        if wait_for_one:
            wait([future for future, _ in self.sending.values()], return_when=FIRST_COMPLETED)
        for number, (future, _) in list(self.sending.items()):
            if future.done():
                del self.sending[number]
                self.etags[number] = future.result()

    def _complete(self) -> None:
        if self.buffer or not self.numbered:
            part, self.buffer = self.buffer, bytearray()
            self._send(part)
        while self.sending:
            self._settle(wait_for_one=True)
        parts = [{"PartNumber": number, "ETag": self.etags[number]} for number in sorted(self.etags)]
        with self.store._fault(f"complete the upload of {self.name}"):
            self.store.client.complete_multipart_upload(Bucket=self.store.bucket, Key=self._key,
                                                        UploadId=self.upload_id, MultipartUpload={"Parts": parts})

    def _abort(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)  # a part still arriving after the abort would linger
        try:
            self.store.client.abort_multipart_upload(Bucket=self.store.bucket, Key=self._key, UploadId=self.upload_id)
            self.store.client.delete_object(Bucket=self.store.bucket, Key=self._marker)
        except (BotoCoreError, ClientError) as err:  # the next create's tidy aborts it
            log.warning("snapshot.abort_failed", snapshot=self.name, error=type(err).__name__)
