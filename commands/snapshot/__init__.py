"""Snapshots: list, create, verify, restore, pin, cleanup, the safety snapshot before a change.
May import the core, commands.lock (a restore holds the migration lock) and commands.sql.
"""
