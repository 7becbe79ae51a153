-- 24x7 self-service: electricity accounts, bills, outages.
CREATE TABLE accounts (
    account_no  text PRIMARY KEY CHECK (account_no ~ '^[0-9]{10}$'),
    holder      text NOT NULL,
    prefecture  text NOT NULL,
    county      text NOT NULL,
    address     text NOT NULL,
    phone       text NOT NULL DEFAULT ''
);
CREATE INDEX accounts_county ON accounts (county);

CREATE TABLE bills (
    account_no  text          NOT NULL REFERENCES accounts ON DELETE CASCADE,
    period      text          NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    kwh         int           NOT NULL CHECK (kwh >= 0),
    amount      numeric(12,2) NOT NULL CHECK (amount >= 0),
    due_date    date          NOT NULL,
    paid        boolean       NOT NULL DEFAULT false,
    PRIMARY KEY (account_no, period)
);

CREATE TABLE outages (
    id          bigserial   PRIMARY KEY,
    prefecture  text        NOT NULL,
    county      text,                    -- NULL: the whole prefecture
    planned     boolean     NOT NULL,
    starts_at   timestamptz NOT NULL,
    ends_at     timestamptz NOT NULL CHECK (ends_at > starts_at),
    reason      text        NOT NULL DEFAULT '',
    notice_prompt text                   -- catalogue prompt read out for this outage
);
CREATE INDEX outages_window ON outages (prefecture, ends_at);
