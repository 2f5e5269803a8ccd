-- Events tiering has received; the qualification rules read them.
CREATE TABLE received_events (
    event_id    text PRIMARY KEY,
    topic       text NOT NULL,
    type        text NOT NULL,
    customer_id text NOT NULL,
    event_time  timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX received_events_by_customer ON received_events (customer_id, event_time);
