-- esurety store, version 6: the raw bytes of incoming and outgoing messages live in their
-- own tables. Marking, finishing or sending a message updates a small row only; before,
-- every such update rewrote the message's bytes (SQLite rewrites a whole row), a few
-- hundred KB for a completion mail with its PDFs and up to the size limit for incoming.

CREATE TABLE message_bodies (
    message INTEGER PRIMARY KEY REFERENCES messages (id),
    raw     BLOB NOT NULL
);
INSERT INTO message_bodies (message, raw) SELECT id, raw FROM messages;
ALTER TABLE messages DROP COLUMN raw;

CREATE TABLE outbox_bodies (
    outbox INTEGER PRIMARY KEY REFERENCES outbox (id),
    raw    BLOB NOT NULL
);
INSERT INTO outbox_bodies (outbox, raw) SELECT id, raw FROM outbox;
ALTER TABLE outbox DROP COLUMN raw;
