-- Outbox rows that can never be published (the broker refuses a record of theirs as too large
-- for its topic), set aside with the broker's error so that they do not stop the relay.
CREATE TABLE outbox_parked (
    id bigint PRIMARY KEY,
    parked_at timestamptz NOT NULL DEFAULT now(),
    error text NOT NULL,
    topics text[] NOT NULL,
    keys bytea[] NOT NULL,
    payloads bytea[] NOT NULL,
    header_names text[] NOT NULL,
    header_values bytea[] NOT NULL,
    header_counts integer[] NOT NULL
);
