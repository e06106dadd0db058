"""Watching in the background: a dirty database, held locks, disk, scheduled cleanups.
May import the core and the capabilities it watches (migrate, snapshot, lock).
"""
