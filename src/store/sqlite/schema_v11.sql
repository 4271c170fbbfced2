-- Several daemons (PostgreSQL) and the outbox: a mail being sent is claimed until a time,
-- so no two daemons send it at once; a daemon that dies lets its claim run out.
ALTER TABLE outbox ADD COLUMN claimed_until INTEGER NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;
-- A job run once per tick among daemons (digests, notices): who holds it, until when.
CREATE TABLE leases (
    name   TEXT PRIMARY KEY,
    holder TEXT    NOT NULL,
    until  INTEGER NOT NULL
);
