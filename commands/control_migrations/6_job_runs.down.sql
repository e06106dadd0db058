DROP TABLE dbops_job_runs;
