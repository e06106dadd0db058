"""The Postgres layer: the only part of dbops that imports psycopg or runs PostgreSQL's tools."""
