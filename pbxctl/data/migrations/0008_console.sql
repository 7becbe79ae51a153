-- pbxctl schema 8: the web console (docs/console.md): sign-in, server-side sessions, failed
-- sign-ins (rate limit), and a NOTIFY per work-order change so open inboxes update live.
CREATE TABLE console_logins (
    login         text        PRIMARY KEY,         -- a seat id of the inventory, or an admin
    admin         boolean     NOT NULL DEFAULT false,
    password_hash text        NOT NULL,            -- argon2id, never the password
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE console_sessions (
    -- sha256 of the cookie's random token: a copy of this table signs no one in
    token_hash    bytea       PRIMARY KEY,
    login         text        NOT NULL REFERENCES console_logins ON DELETE CASCADE,
    csrf          text        NOT NULL,
    lang          text        NOT NULL DEFAULT 'zh_CN',
    created_at    timestamptz NOT NULL DEFAULT now(),
    seen_at       timestamptz NOT NULL DEFAULT now(),
    expires_at    timestamptz NOT NULL              -- absolute end, whatever the activity
);
CREATE INDEX console_sessions_login ON console_sessions (login);

CREATE TABLE console_login_failures (
    id            bigserial   PRIMARY KEY,
    at            timestamptz NOT NULL DEFAULT now(),
    login         text        NOT NULL,
    client        text        NOT NULL
);
CREATE INDEX console_login_failures_login ON console_login_failures (login, at);
CREATE INDEX console_login_failures_client ON console_login_failures (client, at);

-- One notice per created order and per status change (version bump), sent at commit. The
-- payload names only what a listener needs to decide who may see it; the screen then fetches
-- the order through a scope-checked request.
CREATE FUNCTION work_orders_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('pbxctl_work_orders', json_build_object(
        'id', NEW.id, 'prefecture', NEW.prefecture, 'county', NEW.county,
        'status', NEW.status, 'version', NEW.version)::text);
    RETURN NULL;
END $$;
CREATE TRIGGER work_orders_notify_insert AFTER INSERT ON work_orders
    FOR EACH ROW EXECUTE FUNCTION work_orders_notify();
CREATE TRIGGER work_orders_notify_update AFTER UPDATE ON work_orders
    FOR EACH ROW WHEN (OLD.version IS DISTINCT FROM NEW.version)
    EXECUTE FUNCTION work_orders_notify();
