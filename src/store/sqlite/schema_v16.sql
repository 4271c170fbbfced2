-- OAuth 2.0 logins of mailboxes (`auth = "oauth2"`): the refresh token and the current
-- access token, each sealed with the company's secret (never in clear), so every daemon on
-- the store uses the same tokens and a rotated refresh token is never lost. `refused`
-- says why the provider last refused the refresh token (the mailbox waits for
-- `esurety mailbox authorize`).
CREATE TABLE oauth_tokens (
    login          TEXT    NOT NULL PRIMARY KEY,
    refresh_sealed BLOB    NOT NULL,
    access_sealed  BLOB,
    access_expires INTEGER,
    refused        TEXT,
    refused_at     INTEGER,
    updated_at     INTEGER NOT NULL
);
