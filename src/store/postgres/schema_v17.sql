-- As SQLite's version 17: the documents as issued, their SHA-256, the files but the key
-- notice's.
CREATE TABLE issued_documents (
    number    TEXT   NOT NULL REFERENCES certificates (number),
    version   BIGINT NOT NULL,
    kind      TEXT   NOT NULL,
    sha256    TEXT   NOT NULL,
    pdf       BYTEA,
    issued_at TEXT   NOT NULL,
    PRIMARY KEY (number, version, kind, sha256)
);
