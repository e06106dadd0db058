"""A page of an environment's newest snapshots for ``/snapshot list``, read from few keys.

The page order is (time in the name, name), newest first: for one environment's dbops names
(``ENV_YYYYMMDD_HHMMSS_…``) that is the names' own order, which is what lets an object store
answer "everything from this time on" from a ``StartAfter`` key (``S3Store.list_since``).
Which snapshots make a page is decided in that order (a continuation must be a position a
name alone fixes); within the page they are shown as the full listing orders them, by write
time within one second.

Correctness does not depend on any clock: the store returns every snapshot named at or after
the cut-off (and perhaps more); candidates are cut at the same cut-off by name, so any
snapshot not among them is older than every candidate. When at least a page of candidates
came back, the newest page of them is the newest page overall; otherwise the cut-off widens
(1, 7, 30, 365 days, then everything: at most 5 rounds, one when snapshots are taken daily).
The first key of each manifest folder, asked in the first round with the pins and the flat
layout (which a wider round does not ask again), says when nothing is older than the cut-off:
then the read was everything, and the count exact (one round for an environment with few
snapshots).

"More" continues from the oldest name shown (``before``): a key, never an offset, so a
snapshot created or deleted between two pages (here or by another replica) neither shifts a
page nor shows twice.

Only the list card reads pages. Cleanup and its protections, drills, find-by-name, tidy and
doctor read the whole inventory (``SnapshotStore.list``) as before. A local directory has no
cheaper read than the whole listing (10,000 files in ~0.14 s), so its page is cut from that,
exact and complete: the card and its "More" behave the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from commands.errors import UsageError
from commands.snapshot.snapshot_scope import Scope
from commands.snapshot.snapshots import (LEGACY_SUFFIX, Listing, Snapshot, check_name, dbops_snapshot, is_dbops_name,
                                         listing_of, newest_first_key)

PAGE = 30
WINDOWS_DAYS = (1, 7, 30, 365)


@dataclass(frozen=True, kw_only=True)
class Page:
    listing: Listing      # the page's snapshots (newest first), orphans and interrupted runs found on the way
    counted: int          # snapshots older than ``before`` (all when None) that were read: at least this many exist
    complete: bool        # everything was read: ``counted`` is exact and ``whole`` holds all of them
    whole: Listing | None  # the environment's whole listing, when it was read (a directory, or the last round)
    more: str | None       # the name the next page continues from (None: nothing older)


def page_key(snapshot: Snapshot) -> tuple:
    return snapshot.created_at, snapshot.name


def newest_page(scope: Scope, *, before: str | None = None, size: int = PAGE,
                now: datetime | None = None) -> Page:
    """The newest ``size`` snapshots of ``scope``'s environment older than the one named ``before``."""
    bound = _bound(before)
    read_since = getattr(scope.store, "list_since", None)
    if read_since is None:  # a directory (or no store): the whole listing is the cheapest read
        return _cut(scope.list(), None, bound, size)
    anchor = bound[0] if bound is not None else (now or datetime.now(timezone.utc))
    anchor = anchor.replace(microsecond=0)
    memo: dict = {}  # what the rounds share (``S3Store.list_since``)
    for days in (*WINDOWS_DAYS, None):
        since = anchor - timedelta(days=days) if days is not None else None
        listing, nothing_older = read_since(scope.env, since, memo)
        page = _cut(scope.own(listing), since if not nothing_older else None, bound, size)
        if page.complete or page.counted >= size:
            return page
    raise AssertionError("the last round reads everything")  # pragma: no cover


def _bound(before: str | None) -> tuple[datetime, str] | None:
    if before is None:
        return None
    name = check_name(before)
    at = _time_in(name)
    if at is None:
        raise UsageError(f"--before takes a snapshot's name, as `/snapshot list` shows it; {name!r} is not one.")
    return at, name


def _time_in(name: str) -> datetime | None:
    """The time a snapshot's name carries (dbops or legacy), read as a listing reads it."""
    if is_dbops_name(name):
        return dbops_snapshot(name, filename="", size=0, written_ns=0, pinned=False, directory=None).created_at
    legacy = listing_of({name + LEGACY_SUFFIX: None}, lambda _: (0, 0), directory=None).snapshots
    return legacy[0].created_at if legacy else None


def _cut(listing: Listing, since: datetime | None, bound: tuple | None, size: int) -> Page:
    kept = [s for s in listing.snapshots
            if (since is None or s.created_at >= since) and (bound is None or page_key(s) < bound)]
    kept.sort(key=page_key, reverse=True)
    chosen, complete = kept[:size], since is None
    # shown as the full listing orders them (by write time within one second); the next page
    # starts below the last one chosen by name, whichever row that is
    shown = Listing(snapshots=tuple(sorted(chosen, key=newest_first_key, reverse=True)), orphans=listing.orphans,
                    incomplete=listing.incomplete)
    more = chosen[-1].name if chosen and (len(kept) > len(chosen) or not complete) else None
    return Page(listing=shown, counted=len(kept), complete=complete, whole=listing if complete else None, more=more)
