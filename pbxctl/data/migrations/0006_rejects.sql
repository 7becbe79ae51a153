-- pbxctl schema 6: records a service could not process, quarantined with the reason, so one
-- bad record never stops the service that met it (and nothing is lost without a trace).
CREATE TABLE rejected_records (
    id          bigserial   PRIMARY KEY,
    at          timestamptz NOT NULL DEFAULT now(),
    source      text        NOT NULL,   -- call-log | order-notifier | collector
    reason      text        NOT NULL,
    record      text        NOT NULL    -- the record, escaped to printable ASCII
);
CREATE INDEX rejected_records_at ON rejected_records (at);
