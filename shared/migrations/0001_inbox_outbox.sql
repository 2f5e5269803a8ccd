-- Inbox: ids of the input events whose effect is committed. A row is written in the same
-- transaction as the effect, so a redelivered event finds its id and changes nothing.
CREATE TABLE inbox (
    event_id    text PRIMARY KEY,
    topic       text NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);

-- Outbox: events to publish, written in the same transaction as the state change they announce
-- and deleted by the relay once Kafka has acknowledged them.
CREATE TABLE outbox (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    topic         text NOT NULL,
    key           bytea,
    value         bytea NOT NULL,
    header_names  text[] NOT NULL DEFAULT '{}',
    header_values bytea[] NOT NULL DEFAULT '{}',
    created_at    timestamptz NOT NULL DEFAULT now()
);
