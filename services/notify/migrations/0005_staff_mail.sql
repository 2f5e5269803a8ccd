-- Mail to a shop's staff, from loyalty.console: invitations to the console and test sends of a
-- template. Not customers' messages: no consent, cap or quiet hours, not in delivery_log. One
-- row per event (its id the key: a redelivered event is one mail); the worker claims due rows
-- as it claims `scheduled` ones (SKIP LOCKED, under a lease).
CREATE TABLE staff_mail (
    event_id    text PRIMARY KEY,
    shop_id     text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('staff_invitation', 'test_send')),
    template    text NOT NULL,
    locale      text NOT NULL,
    to_email    text NOT NULL,
    -- An invitation's accept_url holds a single-use secret: removed once the mail is sent or
    -- given up.
    payload     jsonb NOT NULL,
    status      text NOT NULL DEFAULT 'pending'
                CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts    integer NOT NULL DEFAULT 0,
    due_at      timestamptz NOT NULL,
    lease_until timestamptz,
    error       text,
    created_at  timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL
);
CREATE INDEX staff_mail_due ON staff_mail (due_at) WHERE status IN ('pending', 'sending');
