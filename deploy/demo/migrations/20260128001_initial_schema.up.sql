-- Organizations publish events at places.
CREATE TABLE organizations (
    id bigserial PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE places (
    id bigserial PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations(id),
    name text NOT NULL,
    address jsonb NOT NULL DEFAULT '{}'::jsonb
);

CREATE TABLE events (
    id bigserial PRIMARY KEY,
    organization_id bigint NOT NULL REFERENCES organizations(id),
    place_id bigint REFERENCES places(id),
    title text NOT NULL,
    start_time timestamptz NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
