-- pbxctl schema 9: each gateway's survivability watcher reports its prefecture's mode and its
-- paths to the province (for the supervisor wallboard). A report older than a few seconds
-- means the province cannot hear the watcher: the wallboard says so instead of trusting it.
CREATE TABLE prefecture_states (
    site        text        PRIMARY KEY,      -- the gateway
    prefecture  text        NOT NULL,
    mode        text        NOT NULL CHECK (mode IN ('central', 'survivable')),
    since       timestamptz NOT NULL,         -- when this mode began (the watcher's clock)
    path_a      boolean     NOT NULL,         -- the province reachable over switch A
    path_b      boolean     NOT NULL,
    reported_at timestamptz NOT NULL DEFAULT now()
);
