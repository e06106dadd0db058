-- Every command any surface ran: who, where, what, how it ended, how long it took.
CREATE TABLE dbops_audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT now(),
    actor text NOT NULL,
    channel text,
    surface text NOT NULL,
    environment text,
    command text NOT NULL,
    arguments jsonb NOT NULL DEFAULT '{}',
    outcome text NOT NULL,
    detail text,
    duration_ms double precision NOT NULL
);
CREATE INDEX dbops_audit_log_environment_at ON dbops_audit_log (environment, at DESC);
