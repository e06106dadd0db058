DROP TABLE dbops_alerts;
