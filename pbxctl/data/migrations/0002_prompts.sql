-- Central prompt catalogue: the province holds the texts and versions and decides who plays
-- what; every site holds its own copy of the audio (central control, local playback).
CREATE TABLE prompts (
    prompt_id    text        NOT NULL CHECK (prompt_id ~ '^[a-z0-9][a-z0-9-]{0,63}$'),
    version      int         NOT NULL CHECK (version > 0),
    language     text        NOT NULL DEFAULT 'zh',
    kind         text        NOT NULL DEFAULT 'announcement',
    text         text        NOT NULL CHECK (length(text) BETWEEN 1 AND 2000),
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz,
    sha256       text,
    PRIMARY KEY (prompt_id, version)
);

-- Which prompt a prefecture's callers hear as welcome, and when.
CREATE TABLE prompt_rules (
    id          bigserial   PRIMARY KEY,
    prompt_id   text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('default', 'holiday', 'outage')),
    prefecture  text,                 -- NULL: every prefecture
    area_code   text,                 -- NULL: every caller area
    valid_from  timestamptz,
    valid_until timestamptz,
    priority    int         NOT NULL DEFAULT 0,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (valid_until IS NULL OR valid_from IS NULL OR valid_until > valid_from)
);

-- A site asked to play a version it does not hold (reported at call time).
CREATE TABLE prompt_drift (
    id       bigserial   PRIMARY KEY,
    site     text        NOT NULL,
    prompt   text        NOT NULL,
    uniqueid text        NOT NULL DEFAULT '',
    problem  text        NOT NULL,
    seen_at  timestamptz NOT NULL DEFAULT now()
);
