-- esurety store, version 9: the registry as a service (registry-service.md).
-- Owner systems call the API with a bearer token; only a SHA-256 of each token is kept
-- (tokens are 256 random bits, so a fast hash is enough: nothing to brute-force).
CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    name         TEXT    NOT NULL,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   TEXT    NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
-- Every check made through the web (API or lookup page) and the command line: who asked,
-- from where, about which number, and the answer. Never the key.
CREATE TABLE registry_checks (
    id      INTEGER PRIMARY KEY,
    at      TEXT    NOT NULL,
    via     TEXT    NOT NULL,              -- api | page | pdf | cli
    token   INTEGER REFERENCES api_tokens (id),
    address TEXT,                          -- the caller's IP address
    number  TEXT    NOT NULL,              -- as asked, cut to 40 characters
    result  TEXT    NOT NULL               -- valid | mismatch | malformed | locked
);
CREATE INDEX registry_checks_by_at ON registry_checks (at);
-- Failures are also counted per client address (the lookup page, the API).
ALTER TABLE registry_failures ADD COLUMN address TEXT;
CREATE INDEX registry_failures_by_address ON registry_failures (address, at) WHERE address IS NOT NULL;
-- The owner side's register names the issuer of each pair (the notice's, or the registry
-- that answered); `result` may now be `unchecked` (no registry here can check the pair).
ALTER TABLE submissions ADD COLUMN issuer TEXT;
