-- esurety store, version 5: what branch staff did by hand (who, when, to what), and held
-- messages released by staff to be processed as if from a registered contractor.
CREATE TABLE staff_actions (
    id      INTEGER PRIMARY KEY,
    at      TEXT    NOT NULL,
    by      TEXT    NOT NULL,               -- the staff member, as given to the command
    action  TEXT    NOT NULL,               -- release | reject | printed | retry
    target  TEXT    NOT NULL,               -- message id, 保証契約番号 or outbox message id
    detail  TEXT
);
ALTER TABLE messages ADD COLUMN released_as TEXT;  -- the contractor staff released it as
ALTER TABLE certificates ADD COLUMN printed_at TEXT;
-- Failed checks are also counted per sender (the address a submission came from), so one
-- sender cannot go on guessing across many numbers.
ALTER TABLE registry_failures ADD COLUMN sender TEXT;
CREATE INDEX registry_failures_by_sender ON registry_failures (sender, at) WHERE sender IS NOT NULL;
