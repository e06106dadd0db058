DROP TABLE dbops_approvals;
