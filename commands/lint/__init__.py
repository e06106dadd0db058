"""Linting migrations: the static rules, the live-data rules, squawk's findings, plans.
May import the core, commands.migrate (plans of a run) and commands.sql.
"""
