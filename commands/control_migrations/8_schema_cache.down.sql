DROP TABLE IF EXISTS dbops_schema_cache;
