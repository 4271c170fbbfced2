-- The store's schema on PostgreSQL, at version 10: the tables of SQLite's versions 1 to 10
-- as they stand, with PostgreSQL's types. Integers are BIGINT (every id and time the code
-- reads is an i64), bytes are BYTEA, flags stay integers 0/1 as in SQLite.
-- `rowid` columns give the order (or the handle) that SQLite's implicit rowid gives.

CREATE TABLE messages (
    id           BIGSERIAL PRIMARY KEY,
    mailbox      TEXT   NOT NULL,
    side         TEXT   NOT NULL,
    source_uid   TEXT   NOT NULL,
    message_id   TEXT,
    sha256       BYTEA  NOT NULL,
    size         BIGINT NOT NULL,
    received_at  TEXT   NOT NULL,
    state        TEXT   NOT NULL DEFAULT 'new',
    outcome      TEXT,
    detail       TEXT,
    processed_at TEXT,
    marked       BIGINT NOT NULL DEFAULT 0,
    released_as  TEXT,
    UNIQUE (mailbox, source_uid)
);
CREATE INDEX messages_by_message_id ON messages (mailbox, message_id);
CREATE INDEX messages_pending ON messages (state) WHERE state = 'new';
CREATE INDEX messages_unmarked ON messages (mailbox) WHERE state = 'done' AND marked = 0;

CREATE TABLE message_bodies (
    message BIGINT PRIMARY KEY REFERENCES messages (id),
    raw     BYTEA NOT NULL
);

CREATE TABLE applications (
    id          BIGSERIAL PRIMARY KEY,
    message     BIGINT NOT NULL UNIQUE REFERENCES messages (id),
    office_code TEXT   NOT NULL,
    outcome     TEXT   NOT NULL,
    sender      TEXT,
    contractor  TEXT,
    problems    TEXT   NOT NULL DEFAULT '[]',
    warnings    TEXT   NOT NULL DEFAULT '[]',
    form        TEXT,
    created_at  TEXT   NOT NULL
);

-- One counter row per office, incremented in the transaction that issues with it: no
-- gaps, no reuse (a sequence would leave gaps).
CREATE TABLE serials (
    office_code TEXT PRIMARY KEY,
    last        BIGINT NOT NULL
);

CREATE TABLE certificates (
    number                 TEXT PRIMARY KEY,
    product                TEXT   NOT NULL,
    format                 TEXT   NOT NULL,
    status                 TEXT   NOT NULL,
    office_code            TEXT   NOT NULL,
    contractor             TEXT   NOT NULL,
    owner                  TEXT   NOT NULL,
    project                TEXT   NOT NULL,
    works_key              TEXT   NOT NULL,
    application            BIGINT REFERENCES applications (id),
    application_message_id TEXT,
    current_version        BIGINT NOT NULL,
    print_state            TEXT,
    created_at             TEXT   NOT NULL,
    printed_at             TEXT,
    rowid                  BIGSERIAL UNIQUE
);
CREATE INDEX certificates_by_works ON certificates (works_key);

CREATE TABLE certificate_versions (
    number    TEXT   NOT NULL REFERENCES certificates (number),
    version   BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    issued_at TEXT   NOT NULL,
    contents  TEXT   NOT NULL,
    PRIMARY KEY (number, version)
);

-- Keys in clear, from before version 8 (always empty here).
CREATE TABLE certificate_keys (
    number TEXT PRIMARY KEY REFERENCES certificates (number),
    key    TEXT NOT NULL
);

CREATE TABLE sealed_keys (
    number TEXT PRIMARY KEY REFERENCES certificates (number),
    sealed BYTEA NOT NULL
);

CREATE TABLE registry (
    number       TEXT PRIMARY KEY,
    key_salt     BYTEA  NOT NULL,
    key_hash     BYTEA  NOT NULL,
    owner        TEXT   NOT NULL,
    status       TEXT   NOT NULL,
    published_at TEXT   NOT NULL,
    key_mac      BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE registry_versions (
    number       TEXT   NOT NULL REFERENCES registry (number),
    version      BIGINT NOT NULL,
    kind         TEXT   NOT NULL,
    published_at TEXT   NOT NULL,
    contents     TEXT   NOT NULL,
    PRIMARY KEY (number, version)
);

CREATE TABLE registry_failures (
    number    TEXT   NOT NULL,
    at        BIGINT NOT NULL,
    sender    TEXT,
    asked_for TEXT,
    address   TEXT
);
CREATE INDEX registry_failures_by_number ON registry_failures (number, at);
CREATE INDEX registry_failures_by_sender ON registry_failures (sender, at) WHERE sender IS NOT NULL;
CREATE INDEX registry_failures_by_address ON registry_failures (address, at) WHERE address IS NOT NULL;
CREATE INDEX registry_failures_by_at ON registry_failures (at);
CREATE UNIQUE INDEX registry_failures_once ON registry_failures (number, asked_for) WHERE asked_for IS NOT NULL;

CREATE TABLE outbox (
    id              BIGSERIAL PRIMARY KEY,
    message_id      TEXT   NOT NULL UNIQUE,
    source          BIGINT REFERENCES messages (id),
    kind            TEXT   NOT NULL,
    sender          TEXT   NOT NULL,
    recipients      TEXT   NOT NULL,
    subject         TEXT   NOT NULL,
    status          TEXT   NOT NULL DEFAULT 'pending',
    attempts        BIGINT NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at BIGINT NOT NULL,
    created_at      TEXT   NOT NULL,
    sent_at         TEXT,
    staff_notified  BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

CREATE TABLE outbox_bodies (
    outbox BIGINT PRIMARY KEY REFERENCES outbox (id),
    raw    BYTEA NOT NULL
);

CREATE TABLE outbox_deliveries (
    outbox       BIGINT NOT NULL REFERENCES outbox (id),
    recipient    TEXT   NOT NULL,
    delivered_at TEXT   NOT NULL,
    PRIMARY KEY (outbox, recipient)
);

CREATE TABLE outbox_refusals (
    outbox     BIGINT NOT NULL REFERENCES outbox (id),
    recipient  TEXT   NOT NULL,
    error      TEXT   NOT NULL,
    refused_at TEXT   NOT NULL,
    PRIMARY KEY (outbox, recipient)
);

CREATE TABLE submissions (
    id          BIGSERIAL PRIMARY KEY,
    message     BIGINT NOT NULL REFERENCES messages (id),
    owner       TEXT   NOT NULL,
    message_id  TEXT,
    sender      TEXT   NOT NULL,
    received_at TEXT   NOT NULL,
    number      TEXT   NOT NULL,
    source      TEXT   NOT NULL,
    product     TEXT,
    project     TEXT,
    result      TEXT   NOT NULL,
    reasons     TEXT   NOT NULL DEFAULT '[]',
    version     BIGINT,
    checked_at  TEXT   NOT NULL,
    issuer      TEXT,
    settled_by  TEXT,
    settled_at  TEXT,
    UNIQUE (message, number)
);
CREATE INDEX submissions_by_number ON submissions (number);

CREATE TABLE digests (
    target       TEXT NOT NULL,
    period_start TEXT NOT NULL,
    period_end   TEXT NOT NULL,
    outbox       BIGINT REFERENCES outbox (id),
    PRIMARY KEY (target, period_end)
);

CREATE TABLE staff_actions (
    id     BIGSERIAL PRIMARY KEY,
    at     TEXT NOT NULL,
    by     TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT
);

CREATE TABLE imap_resyncs (
    mailbox  TEXT   NOT NULL,
    validity BIGINT NOT NULL,
    through  BIGINT NOT NULL,
    done     BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox, validity)
);

CREATE TABLE api_tokens (
    id           BIGSERIAL PRIMARY KEY,
    name         TEXT  NOT NULL,
    hash         BYTEA NOT NULL UNIQUE,
    created_at   TEXT  NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

CREATE TABLE registry_checks (
    id      BIGSERIAL PRIMARY KEY,
    at      TEXT   NOT NULL,
    via     TEXT   NOT NULL,
    token   BIGINT REFERENCES api_tokens (id),
    address TEXT,
    number  TEXT   NOT NULL,
    result  TEXT   NOT NULL
);
CREATE INDEX registry_checks_by_at ON registry_checks (at);

CREATE TABLE users (
    id         BIGSERIAL PRIMARY KEY,
    name       TEXT   NOT NULL UNIQUE,
    hash       TEXT   NOT NULL,
    roles      TEXT   NOT NULL,
    disabled   BIGINT NOT NULL DEFAULT 0,
    created_at TEXT   NOT NULL
);

CREATE TABLE sessions (
    id_hash    BYTEA  PRIMARY KEY,
    "user"     BIGINT NOT NULL REFERENCES users (id),
    csrf       TEXT   NOT NULL,
    created_at BIGINT NOT NULL,
    last_seen  BIGINT NOT NULL
);

CREATE TABLE login_failures (
    rowid BIGSERIAL PRIMARY KEY,
    key   TEXT   NOT NULL,
    at    BIGINT NOT NULL
);
CREATE INDEX login_failures_by_key ON login_failures (key, at);
CREATE INDEX login_failures_by_at ON login_failures (at);
