"""Keeping what a restore would lose: the rows written since the snapshot, measured for the
approval card, saved in a bundle beside the snapshots (``--preserve``), re-imported after.

It may import the snapshot and lock capabilities (a restore with ``--preserve`` is the snapshot
restore with a ``Keep``) and the core; the approval and rollback capabilities import it, never
the reverse. It reaches PostgreSQL only through ``commands.migrations.ChangedRows`` and storage
only through ``commands.snapshot.store.BundleStore``.
"""
