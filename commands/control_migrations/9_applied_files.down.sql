DROP TABLE dbops_applied_files;
