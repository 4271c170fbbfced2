-- esurety store, version 1.
-- Every incoming message's raw bytes; outcomes; certificates and their versions;
-- the registry (what owners check against: a salted hash of each key, never the key);
-- the outbox (every outgoing message, kept after sending).

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY,
    mailbox      TEXT    NOT NULL,            -- the address whose mailbox it arrived in
    side         TEXT    NOT NULL,            -- 'branch' | 'owner'
    source_uid   TEXT    NOT NULL,            -- Maildir unique name, or IMAP uidvalidity:uid
    message_id   TEXT,                        -- the Message-ID header, when there is one
    sha256       BLOB    NOT NULL,
    raw          BLOB    NOT NULL,
    size         INTEGER NOT NULL,
    received_at  TEXT    NOT NULL,
    state        TEXT    NOT NULL DEFAULT 'new',  -- 'new' until its outcome is committed, then 'done'
    outcome      TEXT,                        -- issued | accepted | rejected | held | duplicate | form_sent | ignored
    detail       TEXT,
    processed_at TEXT,
    UNIQUE (mailbox, source_uid)
);
CREATE INDEX messages_by_message_id ON messages (mailbox, message_id);
CREATE INDEX messages_pending ON messages (state) WHERE state = 'new';

CREATE TABLE applications (
    id          INTEGER PRIMARY KEY,
    message     INTEGER NOT NULL UNIQUE REFERENCES messages (id),
    office_code TEXT    NOT NULL,
    outcome     TEXT    NOT NULL,
    sender      TEXT,
    contractor  TEXT,
    problems    TEXT    NOT NULL DEFAULT '[]',   -- JSON: every problem of the rejection
    warnings    TEXT    NOT NULL DEFAULT '[]',
    form        TEXT,                            -- the form as received
    created_at  TEXT    NOT NULL
);

-- The last serial used per office: numbers are never reused.
CREATE TABLE serials (
    office_code TEXT PRIMARY KEY,
    last        INTEGER NOT NULL
);

CREATE TABLE certificates (
    number                 TEXT PRIMARY KEY,
    product                TEXT    NOT NULL,
    format                 TEXT    NOT NULL,
    status                 TEXT    NOT NULL,   -- valid | cancelled
    office_code            TEXT    NOT NULL,
    contractor             TEXT    NOT NULL,
    owner                  TEXT    NOT NULL,
    project                TEXT    NOT NULL,
    works_key              TEXT    NOT NULL,
    application            INTEGER REFERENCES applications (id),
    application_message_id TEXT,
    current_version        INTEGER NOT NULL,
    print_state            TEXT,               -- paper only: waiting | printed
    created_at             TEXT    NOT NULL
);
CREATE INDEX certificates_by_works ON certificates (works_key);

-- Append-only: a version is never overwritten.
CREATE TABLE certificate_versions (
    number    TEXT    NOT NULL REFERENCES certificates (number),
    version   INTEGER NOT NULL,
    kind      TEXT    NOT NULL,                -- 新規 | 変更
    issued_at TEXT    NOT NULL,
    contents  TEXT    NOT NULL,                -- JSON of the certificate's contents
    PRIMARY KEY (number, version)
);

-- The branch keeps the key to typeset the notice again (render, resend).
CREATE TABLE certificate_keys (
    number TEXT PRIMARY KEY REFERENCES certificates (number),
    key    TEXT NOT NULL
);

CREATE TABLE registry (
    number       TEXT PRIMARY KEY,
    key_salt     BLOB NOT NULL,
    key_hash     BLOB NOT NULL,
    owner        TEXT NOT NULL,
    status       TEXT NOT NULL,               -- valid | cancelled
    published_at TEXT NOT NULL
);
CREATE TABLE registry_versions (
    number       TEXT    NOT NULL REFERENCES registry (number),
    version      INTEGER NOT NULL,
    kind         TEXT    NOT NULL,
    published_at TEXT    NOT NULL,
    contents     TEXT    NOT NULL,
    PRIMARY KEY (number, version)
);
-- Failed checks per number (known or not), for the lockout.
CREATE TABLE registry_failures (
    number TEXT    NOT NULL,
    at     INTEGER NOT NULL                    -- unix seconds
);
CREATE INDEX registry_failures_by_number ON registry_failures (number, at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT    NOT NULL UNIQUE,
    source          INTEGER REFERENCES messages (id),
    kind            TEXT    NOT NULL,         -- completion | paper_accepted | rejection | blank_form | duplicate
    sender          TEXT    NOT NULL,
    recipients      TEXT    NOT NULL,         -- JSON array
    subject         TEXT    NOT NULL,
    raw             BLOB    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending',  -- pending | sent | failed
    attempts        INTEGER NOT NULL DEFAULT 0,
    last_error      TEXT,
    next_attempt_at INTEGER NOT NULL,
    created_at      TEXT    NOT NULL,
    sent_at         TEXT
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE status = 'pending';

-- Per recipient, so a retry after a crash never delivers twice to the same one.
CREATE TABLE outbox_deliveries (
    outbox       INTEGER NOT NULL REFERENCES outbox (id),
    recipient    TEXT    NOT NULL,
    delivered_at TEXT    NOT NULL,
    PRIMARY KEY (outbox, recipient)
);
