-- Documents received with an application and kept with its certificate: a 中間前払金保証's
-- 認定調書 (the owner's certification of the works' progress), as the contractor sent it.
CREATE TABLE certificate_documents (
    id          INTEGER PRIMARY KEY,
    number      TEXT    NOT NULL REFERENCES certificates (number),
    kind        TEXT    NOT NULL,
    name        TEXT    NOT NULL,
    bytes       BLOB    NOT NULL,
    received_at TEXT    NOT NULL
);
CREATE INDEX certificate_documents_by_number ON certificate_documents (number);
