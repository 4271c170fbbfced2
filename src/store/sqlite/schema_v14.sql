-- A new API token made on the desk, kept until the page the admin is sent to shows it
-- once: sealed under the company's secret (the store alone does not reveal it), for one
-- session, for minutes. In the store, not in one server's memory, so the page may be
-- served by another web server of the same store. (Version 14.)
CREATE TABLE fresh_tokens (
    session    BLOB    NOT NULL PRIMARY KEY REFERENCES sessions (id_hash) ON DELETE CASCADE,
    sealed     BLOB    NOT NULL,
    expires_at INTEGER NOT NULL
);
