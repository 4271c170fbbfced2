-- As SQLite's version 14: a new API token, sealed, until its page shows it once.
CREATE TABLE fresh_tokens (
    session    BYTEA  NOT NULL PRIMARY KEY REFERENCES sessions (id_hash) ON DELETE CASCADE,
    sealed     BYTEA  NOT NULL,
    expires_at BIGINT NOT NULL
);
