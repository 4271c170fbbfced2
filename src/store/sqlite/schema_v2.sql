-- esurety store, version 2: the owner side's register of checked submissions.
-- One row per pair checked: what an auditor needs (who sent what, when, the result and
-- why, the registry version it was checked against), never the key.

CREATE TABLE submissions (
    id           INTEGER PRIMARY KEY,
    message      INTEGER NOT NULL REFERENCES messages (id),
    owner        TEXT    NOT NULL,
    message_id   TEXT,
    sender       TEXT    NOT NULL,
    received_at  TEXT    NOT NULL,
    number       TEXT    NOT NULL,
    source       TEXT    NOT NULL,          -- pdf | body
    product      TEXT,
    project      TEXT,
    result       TEXT    NOT NULL,          -- accepted | rejected
    reasons      TEXT    NOT NULL DEFAULT '[]',
    version      INTEGER,                   -- the registry's version when checked
    checked_at   TEXT    NOT NULL,
    UNIQUE (message, number)
);
CREATE INDEX submissions_by_number ON submissions (number);
