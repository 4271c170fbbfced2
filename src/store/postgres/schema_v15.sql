-- As SQLite's version 15: end senders known to a token (they gave a right key through it).
CREATE TABLE known_callers (
    caller TEXT   NOT NULL PRIMARY KEY,
    since  BIGINT NOT NULL
);
