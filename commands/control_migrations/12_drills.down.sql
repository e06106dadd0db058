DELETE FROM dbops_alerts WHERE subject IN ('drill', 'drill_overdue');
DO $$
DECLARE
    c record;
BEGIN
    FOR c IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
             WHERE conrelid = 'dbops_alerts'::regclass AND contype = 'c' AND pg_get_constraintdef(oid) LIKE '%subject%'
    LOOP
        EXECUTE format('ALTER TABLE dbops_alerts DROP CONSTRAINT %I', c.conname);
        EXECUTE format('ALTER TABLE dbops_alerts ADD CONSTRAINT %I %s', c.conname,
                       replace(c.def, '''drill''::text, ''drill_overdue''::text, ', ''));
    END LOOP;
END $$;
DROP TABLE dbops_drills;
