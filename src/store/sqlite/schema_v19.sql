-- The life of a guarantee (lifecycle.md): each change of a certificate's state after its
-- issue, and each 変更, is an event in its history with when, who and why. `event_id` is
-- the id every notice of it carries (the owner's mail, webhook and API alike).
CREATE TABLE certificate_events (
    id         INTEGER PRIMARY KEY,
    event_id   TEXT    NOT NULL UNIQUE,
    number     TEXT    NOT NULL REFERENCES certificates (number),
    kind       TEXT    NOT NULL,
    status     TEXT    NOT NULL,
    at         TEXT    NOT NULL,
    effective  TEXT,
    by         TEXT    NOT NULL,
    reason     TEXT    NOT NULL,
    version    INTEGER
);
CREATE INDEX certificate_events_by_number ON certificate_events (number, id);
-- Webhooks to owners' systems, a queue like the outbox: one row per event and endpoint
-- (once per event id), sent in order per certificate, retried with back-off.
CREATE TABLE webhook_deliveries (
    id              INTEGER PRIMARY KEY,
    event           INTEGER NOT NULL REFERENCES certificate_events (id),
    endpoint        TEXT    NOT NULL,
    number          TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT    NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    UNIQUE (event, endpoint)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (status, next_attempt_at);
-- The numbers each API token has checked with the right key: the only ones whose events
-- it may read.
CREATE TABLE token_numbers (
    token   INTEGER NOT NULL REFERENCES api_tokens (id),
    number  TEXT    NOT NULL,
    since   TEXT    NOT NULL,
    PRIMARY KEY (token, number)
);
-- The owner side: what it was told about the certificates it accepted, once per event
-- (by mail, webhook or its daily question, whichever came first).
CREATE TABLE owner_events (
    id          INTEGER PRIMARY KEY,
    registry    TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    number      TEXT    NOT NULL,
    kind        TEXT    NOT NULL,
    status      TEXT    NOT NULL,
    at          TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    via         TEXT    NOT NULL,
    received_at TEXT    NOT NULL,
    submission  INTEGER REFERENCES submissions (id),
    UNIQUE (registry, event_id)
);
CREATE INDEX owner_events_by_number ON owner_events (number, at);
CREATE INDEX owner_events_by_received ON owner_events (received_at);
