"""The application dbops serves: its health check (the guide's curl | jq), and the pause and
resume hooks called around a restore or a rollback, with what they answered.
May import the core only; snapshot, rollback and doctor import it.
"""
