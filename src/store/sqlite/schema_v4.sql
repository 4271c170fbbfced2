-- esurety store, version 4: the staff's daily digests (one per target and period, so a
-- restart never sends one twice), and which failed mails staff were told about.
CREATE TABLE digests (
    target       TEXT NOT NULL,              -- the branch's or owner's address
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    outbox       INTEGER REFERENCES outbox (id),
    PRIMARY KEY (target, period_end)
);
ALTER TABLE outbox ADD COLUMN staff_notified INTEGER NOT NULL DEFAULT 0;
