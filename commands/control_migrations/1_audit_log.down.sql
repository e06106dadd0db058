DROP TABLE dbops_audit_log;
