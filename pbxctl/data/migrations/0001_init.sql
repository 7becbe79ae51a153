-- pbxctl schema 1: the call log written by the FastAGI handlers.
CREATE TABLE agi_calls (
    id          bigserial PRIMARY KEY,
    uniqueid    text        NOT NULL,
    route       text        NOT NULL,
    dnid        text        NOT NULL DEFAULT '',
    caller      text        NOT NULL DEFAULT '',
    outcome     text        NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agi_calls_uniqueid ON agi_calls (uniqueid);
