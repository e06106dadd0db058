"""Locks: the migration lock, deploy scripts' lock directories, lock status and release.
May import the core only.
"""
