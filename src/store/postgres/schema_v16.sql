-- As SQLite's version 16: mailboxes' OAuth 2.0 tokens, sealed.
CREATE TABLE oauth_tokens (
    login          TEXT   NOT NULL PRIMARY KEY,
    refresh_sealed BYTEA  NOT NULL,
    access_sealed  BYTEA,
    access_expires BIGINT,
    refused        TEXT,
    refused_at     BIGINT,
    updated_at     BIGINT NOT NULL
);
