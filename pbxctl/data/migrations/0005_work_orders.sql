-- pbxctl schema 5: work orders, from a prefecture agent's call to a county terminal seat.
CREATE TABLE work_orders (
    id              bigserial   PRIMARY KEY,
    type            text        NOT NULL CHECK (type IN
                        ('repair', 'billing', 'outage', 'meter', 'other')),
    account_no      text        NOT NULL REFERENCES accounts,
    contact         text        NOT NULL DEFAULT '',
    address         text        NOT NULL DEFAULT '',
    description     text        NOT NULL DEFAULT '',
    priority        int         NOT NULL DEFAULT 3 CHECK (priority BETWEEN 1 AND 4),
    call_site       text        NOT NULL DEFAULT '',   -- the call it came from …
    call_linkedid   text        NOT NULL DEFAULT '',
    recording       text        NOT NULL DEFAULT '',   -- … and its recording (uniqueid)
    prefecture      text        NOT NULL,
    county          text        NOT NULL,
    seat            text,                               -- the assigned terminal seat
    status          text        NOT NULL DEFAULT 'new' CHECK (status IN
                        ('new', 'dispatched', 'accepted', 'done', 'returned', 'escalated')),
    version         int         NOT NULL DEFAULT 1,
    notify_attempts int         NOT NULL DEFAULT 0,
    next_notify_at  timestamptz,
    created_by      text        NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX work_orders_open ON work_orders (county, status)
    WHERE status NOT IN ('done');
CREATE INDEX work_orders_due ON work_orders (next_notify_at) WHERE status = 'dispatched';

CREATE TABLE work_order_events (
    id          bigserial   PRIMARY KEY,
    order_id    bigint      NOT NULL REFERENCES work_orders ON DELETE CASCADE,
    at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    actor       text        NOT NULL,
    event       text        NOT NULL,     -- created | dispatched | notify | accepted | ...
    from_status text,
    to_status   text,
    note        text        NOT NULL DEFAULT ''
);
CREATE INDEX work_order_events_order ON work_order_events (order_id, id);
