-- The documents as issued (signing.md § The registry serves what it issued): each PDF of
-- each version, its SHA-256 as mailed, and the file itself, so the registry serves the
-- very file the contractor received. The key notice's file is not kept (it carries the key
-- in clear; the key is kept sealed only): only its hash, one row per notice typeset (a
-- resend typesets it again, a new file with a new signature).
CREATE TABLE issued_documents (
    number    TEXT    NOT NULL REFERENCES certificates (number),
    version   INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    sha256    TEXT    NOT NULL,
    pdf       BLOB,
    issued_at TEXT    NOT NULL,
    PRIMARY KEY (number, version, kind, sha256)
);
