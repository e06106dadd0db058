DROP TABLE dbops_operations;
