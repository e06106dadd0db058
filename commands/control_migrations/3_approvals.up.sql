-- The two-person rule's state machine. Every transition is a conditional UPDATE on state,
-- so of two clicks, two approvers or two replicas exactly one moves a request on:
--   pending -> executing -> executed | failed
--   pending -> void (the state changed since the request) | denied | cancelled | expired
CREATE TABLE dbops_approvals (
    id text PRIMARY KEY,
    environment text NOT NULL,
    operation text NOT NULL,
    command text NOT NULL,
    command_args jsonb NOT NULL,
    requester text NOT NULL,
    channel text,
    surface text NOT NULL,
    fingerprint text NOT NULL,
    impact jsonb NOT NULL,
    state text NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'executing', 'executed', 'failed', 'void', 'denied', 'cancelled', 'expired')),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    decided_by text,
    decided_at timestamptz,
    reason text,
    message_ts text,
    outcome text,
    finished_at timestamptz
);
CREATE INDEX dbops_approvals_pending ON dbops_approvals (environment, created_at) WHERE state = 'pending';
