-- pbxctl schema 4: call records (one per call per site, from the PBX's local call log) and
-- the recording index (one per call a person answered).
CREATE TABLE call_records (
    site          text        NOT NULL,
    uniqueid      text        NOT NULL,
    linkedid      text        NOT NULL,
    origin        text        NOT NULL DEFAULT '',  -- the gateway's linkedid, across sites
    caller        text        NOT NULL DEFAULT '',
    did           text        NOT NULL DEFAULT '',
    prefecture    text        NOT NULL DEFAULT '',
    mode          text        NOT NULL DEFAULT '',
    queue         text        NOT NULL DEFAULT '',
    agent         text        NOT NULL DEFAULT '',
    overflow      text        NOT NULL DEFAULT '',
    service       text        NOT NULL DEFAULT '',
    queue_status  text        NOT NULL DEFAULT '',
    dial_status   text        NOT NULL DEFAULT '',
    hangup_cause  text        NOT NULL DEFAULT '',
    started_at    timestamptz NOT NULL,
    answered_at   timestamptz,
    ended_at      timestamptz NOT NULL,
    talk_s        numeric(10,3) NOT NULL DEFAULT 0,
    collected_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, uniqueid)
);
CREATE INDEX call_records_linkedid ON call_records (linkedid);
CREATE INDEX call_records_started ON call_records (started_at);

CREATE TABLE recordings (
    site          text        NOT NULL,
    uniqueid      text        NOT NULL,
    path          text        NOT NULL,
    size_bytes    bigint      NOT NULL DEFAULT 0,
    sha256        text        NOT NULL DEFAULT '',
    audio_s       numeric(10,3) NOT NULL DEFAULT 0,
    status        text        NOT NULL CHECK (status IN
                      ('ok', 'missing', 'empty', 'truncated', 'corrupt')),
    problem       text        NOT NULL DEFAULT '',
    indexed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (site, uniqueid),
    FOREIGN KEY (site, uniqueid) REFERENCES call_records (site, uniqueid)
);
CREATE INDEX recordings_status ON recordings (status) WHERE status <> 'ok';
