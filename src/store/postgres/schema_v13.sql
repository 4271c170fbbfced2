-- As SQLite's version 13: the lease of a message claimed outside a transaction (Unix
-- seconds, the server's clock).
ALTER TABLE messages ADD COLUMN lease_until BIGINT;
