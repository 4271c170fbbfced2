-- esurety store, version 8: keys at rest. The branch's copy of each 認証キー is kept sealed
-- (ChaCha20-Poly1305 under a key derived from the secret outside the store, see
-- src/secrets.rs) in sealed_keys; the registry's hash of a key becomes an HMAC under the
-- same secret (key_mac = 1). Keys stored in clear by earlier versions (certificate_keys)
-- are sealed, and their registry hashes made again, by `Store::seal_legacy_keys` the first
-- time esurety starts with the secret; certificate_keys is then empty.
CREATE TABLE sealed_keys (
    number TEXT PRIMARY KEY REFERENCES certificates (number),
    sealed BLOB NOT NULL                  -- nonce ‖ ciphertext ‖ tag, the number as associated data
);
ALTER TABLE registry ADD COLUMN key_mac INTEGER NOT NULL DEFAULT 0;  -- 1: HMAC-SHA256(secret; salt ‖ key); 0: salted SHA-256 (before v8)

-- A resync after a UIDVALIDITY change records how far it got, so an interrupted one resumes
-- there instead of losing the lower unmatched UIDs or storing the higher ones again.
CREATE TABLE imap_resyncs (
    mailbox  TEXT    NOT NULL,
    validity INTEGER NOT NULL,
    through  INTEGER NOT NULL,           -- every UID up to this one is matched or stored
    done     INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (mailbox, validity)
);

-- A failed check is counted once per (number, what asked): a check asked again for the same
-- message (a replayed batch, a retried call to a remote registry) does not count twice.
ALTER TABLE registry_failures ADD COLUMN asked_for TEXT;
CREATE UNIQUE INDEX registry_failures_once ON registry_failures (number, asked_for) WHERE asked_for IS NOT NULL;
