-- As SQLite's version 18: what a submitted PDF's signature said, and why.
ALTER TABLE submissions ADD COLUMN signature TEXT;
ALTER TABLE submissions ADD COLUMN signature_reason TEXT;
