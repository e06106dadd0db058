-- Operations running now, with a heartbeat, so that one left behind by a dead process is
-- found, marked interrupted and reported in its channel (never silently retried).
CREATE TABLE dbops_operations (
    id bigserial PRIMARY KEY,
    environment text,
    command text NOT NULL,          -- what the user typed
    actor text NOT NULL,
    channel text,
    message_ts text,                -- the channel message that shows its progress
    owner text NOT NULL,            -- the process running it: host, pid and a per-start id
    state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'finished', 'interrupted')),
    step text,
    outcome text,
    started_at timestamptz NOT NULL DEFAULT now(),
    heartbeat_at timestamptz NOT NULL DEFAULT now(),
    finished_at timestamptz
);
CREATE INDEX dbops_operations_running ON dbops_operations (heartbeat_at) WHERE state = 'running';
