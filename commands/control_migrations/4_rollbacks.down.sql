DROP TABLE dbops_rollbacks;
