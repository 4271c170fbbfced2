-- A message claimed outside a transaction (an owner's deployment on PostgreSQL asks remote
-- registries with no transaction open) is leased until this time (Unix seconds, the
-- server's clock); kept alike on SQLite, where one daemon holds the store.
ALTER TABLE messages ADD COLUMN lease_until INTEGER;
