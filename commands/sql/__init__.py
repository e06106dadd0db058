"""Reading SQL text: splitting it into statements, scanning for what psql or PostgreSQL would refuse.
May import the core only (and pglast); every capability reads SQL through it.
"""
