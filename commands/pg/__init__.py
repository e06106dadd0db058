"""The Postgres layer and the other adapters: the only part of dbops that imports psycopg or runs programs (pg_dump, psql, squawk).
May import the core and the capabilities' types, whose ports (commands.migrations) it implements."""
