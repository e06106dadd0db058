"""The observation seam: what the domain tells whoever counts it (``dbops serve`` exports it as
Prometheus metrics: ``bot.metrics``). The domain imports no exporter; it calls an ``Observer``
it was handed, and ``NOBODY`` (which ignores everything) where nothing counts, as in the CLI.

Every argument becomes a label value or a number on a page that needs no credentials, so
callers pass only bounded, non-secret values: a command's grammar name, a configured
environment's name, an ``Outcome`` value, one of ``LOCKS``. Never a user id, a snapshot name,
a file name or free text. Each call is cheap and never raises: it runs inside operations.
"""

from __future__ import annotations

from typing import Protocol

# The locks a wait is for: "migration" is the advisory lock shared with golang-migrate (and
# deploy.sh's lock directories); "statement" is a migration statement waiting for a table's lock
# under lock_timeout.
LOCKS = ("migration", "statement")


class Observer(Protocol):
    def operation(self, *, command: str, environment: str | None, outcome: str, seconds: float) -> None:
        """A command ran through the executor: its outcome (an ``Outcome`` value, or "error" for
        a fault) and how long it took, approval requests and refusals included."""

    def lock_wait(self, *, environment: str, lock: str, seconds: float, acquired: bool) -> None:
        """One wait for ``lock`` ended after ``seconds``: had (``acquired``) or given up
        (a holder kept it past the wait allowed, or lock_timeout struck)."""

    def lock_retry(self, *, environment: str, lock: str) -> None:
        """A wait for ``lock`` that gave up is about to be tried again (after its backoff)."""

    def state_seen(self, *, environment: str, version: int, dirty: bool) -> None:
        """The dirty watcher read ``environment``'s schema_migrations: version and dirty flag."""

    def watcher_tick(self, *, watcher: str, environment: str | None, failed: bool) -> None:
        """A scheduled watcher looked once (``environment`` None: one look for all of them);
        ``failed``: it could not (a database or the control database unreachable)."""


class Unobserved:
    """The Observer that ignores everything."""

    def operation(self, *, command: str, environment: str | None, outcome: str, seconds: float) -> None:
        pass

    def lock_wait(self, *, environment: str, lock: str, seconds: float, acquired: bool) -> None:
        pass

    def lock_retry(self, *, environment: str, lock: str) -> None:
        pass

    def state_seen(self, *, environment: str, version: int, dirty: bool) -> None:
        pass

    def watcher_tick(self, *, watcher: str, environment: str | None, failed: bool) -> None:
        pass


NOBODY: Observer = Unobserved()
