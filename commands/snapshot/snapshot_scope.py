"""Which snapshots an environment sees and may act on, when environments share a directory.

An environment's own snapshots are:

- dbops snapshots whose name begins with its name (``production_20260128_…``). Listing
  trusts the name, so listing 10,000 opens no file. Every operation on one snapshot
  (verify, restore, pin, unpin, and each delete of a cleanup) also reads its manifest, and
  acts only when the manifest's ``environment`` is the one in the name: a file renamed, copied
  or edited by hand is nobody's.
- legacy ``togather_<db>_…`` snapshots, which record no environment, when ``<db>`` is its
  name or its database's name and no other configured environment's: ``togather_production_…``
  is production's. A word that two environments answer to (two hosts' databases both called
  ``togather``) makes the snapshot nobody's: dbops lists, restores and deletes it for none.

Another environment's snapshot may only be restored (and verified) where that environment is
listed in ``restore_from``; such a restore always needs this environment's approval.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import unquote, urlsplit

from commands import grammar as g
from commands.config import EnvironmentSettings, Settings
from commands.errors import SnapshotFailed, UsageError
from commands.results import Reason, Refusal
from commands.snapshot.snapshots import (
    LEGACY_SIDECAR, Listing, Snapshot, check_name, environment_in_name, legacy_db_in_name, parse_temp, read_manifest,
)
from commands.snapshot.store import BUNDLE_NAME, SnapshotStore, store_for

# Operations that may act on a snapshot of a ``restore_from`` environment.
_CROSSING = ("snapshot restore", "snapshot verify")


def database_name(env: EnvironmentSettings) -> str:
    """The database ``env``'s URL names ("" when it names none)."""
    return unquote(urlsplit(env.database_url).path.lstrip("/"))


@dataclass(frozen=True, kw_only=True)
class Scope:
    """``env``'s view of its snapshot directory. ``claims``: each legacy ``<db>`` word and the
    configured environments answering to it (by name or database name)."""

    env: str
    store: SnapshotStore | None
    claims: dict[str, tuple[str, ...]]

    def owner(self, snapshot: Snapshot) -> str | None:
        """The environment ``snapshot`` belongs to by its name (None: nobody's)."""
        if snapshot.kind == "dbops":
            return snapshot.environment
        claimants = self.claims.get(snapshot.legacy_db or "", ())
        return claimants[0] if len(claimants) == 1 else None

    def owns(self, snapshot: Snapshot) -> bool:
        return self.owner(snapshot) == self.env

    def own(self, listing: Listing) -> Listing:
        """The part of ``listing`` that is this environment's: its snapshots, and the orphaned or
        unfinished files whose names say they are its (names only: no file is opened)."""
        env = self.env  # the common case inline: listing 10,000 stays a scan of names
        return Listing(snapshots=tuple(s for s in listing.snapshots
                                       if (s.environment == env if s.kind == "dbops" else self.owns(s))),
                       orphans=tuple(f for f in listing.orphans if self._names_own(f)),
                       incomplete=tuple(f for f in listing.incomplete if self._names_own(f)))

    def _names_own(self, filename: str) -> bool:
        temp = parse_temp(filename)
        if temp is not None:
            return environment_in_name(temp[2]) == self.env
        if filename.endswith(LEGACY_SIDECAR):
            return self.claims.get(legacy_db_in_name(filename) or "", ()) == (self.env,)
        return environment_in_name(filename) == self.env

    def list(self) -> Listing:
        """This environment's part of its store (empty when it has none)."""
        if self.store is None:
            return Listing(snapshots=(), orphans=(), incomplete=())
        return self.own(self.store.list())


def scope_of(settings: Settings, env: EnvironmentSettings) -> Scope:
    """``env``'s scope; every configured environment's claims, so a word two answer to is nobody's."""
    claims: dict[str, list[str]] = {}
    for other in settings.environments.values():
        for word in {other.name, database_name(other)} - {""}:
            claims.setdefault(word, []).append(other.name)
    return Scope(env=env.name, store=store_for(env), claims={w: tuple(sorted(c)) for w, c in claims.items()})


def manifest_environment(snapshot: Snapshot) -> str | None:
    """The environment a dbops snapshot's manifest names (None: it names none, or cannot be read)."""
    try:
        named = read_manifest(snapshot).get("environment")
    except SnapshotFailed:
        return None
    return named if isinstance(named, str) else None


def confirmed(snapshot: Snapshot, owner: str) -> bool:
    """Whether ``snapshot``'s manifest agrees that it is ``owner``'s (a legacy one has none:
    its name is all there is)."""
    return snapshot.kind == "legacy" or manifest_environment(snapshot) == owner


def resolve(settings: Settings, env: EnvironmentSettings, name: str, operation: str) -> Snapshot | Refusal:
    """The snapshot called ``name`` that ``env`` may act on for ``operation``, or the Refusal
    that says whose it is and what would allow it. UsageError when no such snapshot exists.

    Looked for in ``env``'s directory, then (for a restore or verify) in the directory of each
    ``restore_from`` environment; whoever's it is, its manifest must agree.
    """
    wanted = check_name(name)
    scope = scope_of(settings, env)
    found = _named(scope.store.list(), wanted) if scope.store is not None else None
    if found is None and operation in _CROSSING:
        for source in env.restore_from:
            other = store_for(settings.environment(source))
            if other is not None and other.where != (scope.store.where if scope.store is not None else None):
                found = _named(other.list(), wanted)
                if found is not None:
                    break
    if found is None:
        raise UsageError(f"No snapshot named {wanted!r}. `/snapshot list` shows the available ones.")
    owner = scope.owner(found)
    refusal = Refusal(env=env.name, operation=operation, reason=Reason.OTHER_ENVIRONMENT, snapshot=found.name,
                      owner=owner)
    if owner is None:
        return replace(refusal, reason=Reason.UNCLAIMED_SNAPSHOT, claimants=scope.claims.get(found.legacy_db or "", ()))
    if owner != env.name and not (operation in _CROSSING and owner in env.restore_from):
        return refusal
    if not confirmed(found, owner):
        named = manifest_environment(found)
        return replace(refusal, reason=Reason.MANIFEST_MISMATCH, claimants=(named,) if named else ())
    return found


def _named(listing: Listing, name: str) -> Snapshot | None:
    return next((s for s in listing.snapshots if s.name == name), None)


def named_snapshot(command: g.Command) -> tuple[str, str] | None:
    """(snapshot name, operation) for a command that acts on one named snapshot."""
    match command:
        case g.SnapshotRestore(name=name):
            return name, "snapshot restore"
        case g.SnapshotVerify(name=name):
            return name, "snapshot verify"
        case g.SnapshotPin(name=name, pinned=pinned) if not BUNDLE_NAME.fullmatch(name):  # a bundle: its own rules
            return name, "snapshot pin" if pinned else "snapshot unpin"
        case g.Rollback(snapshot=str(name)):
            return name, "snapshot restore"  # what it runs, and what its refusals are worded as
    return None


def restore_source(settings: Settings, command: g.Command, env: EnvironmentSettings) -> Refusal | str | None:
    """For a command naming a snapshot: the Refusal when ``env`` may not act on it, else the
    environment it belongs to when that is another one (a ``restore_from`` source), else None.

    The executor asks before anything else, so a refused one never becomes an approval request.
    """
    named = named_snapshot(command)
    if named is None or not env.snapshots_on:
        return None
    found = resolve(settings, env, *named)
    if isinstance(found, Refusal):
        return found
    owner = scope_of(settings, env).owner(found)
    return owner if owner != env.name else None

