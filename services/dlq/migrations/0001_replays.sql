-- Dead letters already replayed, by their position in the dead-letter topic: a second replay
-- skips them. The record's timestamp guards against a recreated topic reusing offsets.
CREATE TABLE replays (
    dlq_topic        text NOT NULL,
    dlq_partition    integer NOT NULL,
    dlq_offset       bigint NOT NULL,
    record_timestamp bigint NOT NULL,
    target_topic     text NOT NULL,
    error_class      text,
    replayed_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dlq_topic, dlq_partition, dlq_offset)
);
