"""Migrating: status, validate, up/down/goto/force, dry-run, and their plans and results.
May import the core (commands.*), commands.snapshot, commands.lock and commands.sql.
"""
