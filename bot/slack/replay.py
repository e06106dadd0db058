"""The replay guard: each signed Slack request is accepted once."""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from typing import Callable


class ReplayGuard:
    """Refuses a signed request seen before. Slack's signature covers the timestamp, and a
    timestamp more than five minutes from now is refused; within that a captured request
    would verify again, so each signature is accepted once (per process: replicas behind a
    load balancer each keep their own window).

    Contract: the caller records only signatures it has verified, so only the holder of the
    signing secret (Slack) can add entries. Each entry is a fixed-size hash, kept for the
    longest time its signature can still verify (a timestamp up to five minutes ahead of the
    first sighting stays valid until five minutes after it), and there are never more than
    ``max_entries``: past that, the oldest is forgotten first.
    """

    WINDOW_SECONDS = 2 * 5 * 60 + 30
    MAX_ENTRIES = 20_000  # about 4 MB; a chat-ops workspace sends a few requests a minute

    def __init__(self, clock: Callable[[], float] = time.monotonic, *, max_entries: int = MAX_ENTRIES) -> None:
        self.clock = clock
        self.max_entries = max_entries
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # first sighting, oldest first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._seen)

    def first_time(self, signature: str) -> bool:
        """True the first time a (verified) ``signature`` is seen within the window; then False."""
        key = hashlib.sha256(signature.encode("utf-8", "surrogateescape")).digest()
        now = self.clock()
        with self._lock:
            while self._seen and now - next(iter(self._seen.values())) >= self.WINDOW_SECONDS:
                self._seen.popitem(last=False)
            if key in self._seen:
                return False
            self._seen[key] = now
            if len(self._seen) > self.max_entries:
                self._seen.popitem(last=False)
            return True
