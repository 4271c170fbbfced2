-- esurety store, version 10: the staff desk on the web (desk.md).
-- Users of the desk, with an Argon2id hash of the password (a PHC string) and their roles
-- (JSON list: "branch:ADDRESS", "owner:ADDRESS", "admin").
CREATE TABLE users (
    id         INTEGER PRIMARY KEY,
    name       TEXT    NOT NULL UNIQUE,
    hash       TEXT    NOT NULL,
    roles      TEXT    NOT NULL,
    disabled   INTEGER NOT NULL DEFAULT 0,
    created_at TEXT    NOT NULL
);
-- Sessions: only a SHA-256 of the session id (the cookie) is kept; the CSRF token of each
-- session's forms; times in unix seconds (idle timeout from last_seen).
CREATE TABLE sessions (
    id_hash    BLOB    PRIMARY KEY,
    user       INTEGER NOT NULL REFERENCES users (id),
    csrf       TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    last_seen  INTEGER NOT NULL
);
-- Failed logins, per user name and per client address ("user:NAME", "addr:IP").
CREATE TABLE login_failures (
    key TEXT    NOT NULL,
    at  INTEGER NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_at ON login_failures (at);
-- An unchecked submission settled by a person: who, when, and the note.
ALTER TABLE submissions ADD COLUMN settled_by TEXT;
ALTER TABLE submissions ADD COLUMN settled_at TEXT;
-- Failed checks are kept two days (the lockout's windows are at most an hour): an index to
-- prune them by time.
CREATE INDEX registry_failures_by_at ON registry_failures (at);
