"""The two-person rule: requests, approve/deny/cancel, what a change would do (its impact).
May import the core, commands.lint, commands.migrate, commands.snapshot, commands.lock.
"""
