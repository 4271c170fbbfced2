-- esurety store, version 3: marking in the mailbox is tracked here, so any mailbox
-- (Maildir or IMAP) is marked exactly when its outcome is committed and again after a
-- crash or a resynchronisation, never by rescanning the mailbox.
ALTER TABLE messages ADD COLUMN marked INTEGER NOT NULL DEFAULT 0;
CREATE INDEX messages_unmarked ON messages (mailbox) WHERE state = 'done' AND marked = 0;
