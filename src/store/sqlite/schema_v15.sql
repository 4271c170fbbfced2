-- The end senders an owner's system relays that have given a right key through its token
-- (`token:ID sender:ADDRESS`): strangers' failures relayed from the same system are
-- counted apart from theirs, so strangers never spend what they need.
CREATE TABLE known_callers (
    caller TEXT    NOT NULL PRIMARY KEY,
    since  INTEGER NOT NULL
);
