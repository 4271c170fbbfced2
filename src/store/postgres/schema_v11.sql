-- As SQLite's version 11: documents kept with a certificate (a 中間前払金保証's 認定調書).
CREATE TABLE certificate_documents (
    id          BIGSERIAL PRIMARY KEY,
    number      TEXT  NOT NULL REFERENCES certificates (number),
    kind        TEXT  NOT NULL,
    name        TEXT  NOT NULL,
    bytes       BYTEA NOT NULL,
    received_at TEXT  NOT NULL
);
CREATE INDEX certificate_documents_by_number ON certificate_documents (number);
