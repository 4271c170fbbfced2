-- esurety store, version 7: each recipient of an outgoing mail has its own state.
-- Delivered recipients were recorded already (outbox_deliveries); a recipient the server
-- refused for good (5xx) is now recorded too, so one recipient's refusal no longer decides
-- for the others: those whose failure was temporary are retried, and staff see exactly
-- who lacks the mail. A recipient in neither table is still to be delivered.
CREATE TABLE outbox_refusals (
    outbox     INTEGER NOT NULL REFERENCES outbox (id),
    recipient  TEXT    NOT NULL,
    error      TEXT    NOT NULL,
    refused_at TEXT    NOT NULL,
    PRIMARY KEY (outbox, recipient)
);
