-- The owner side's register keeps what a submitted PDF's signature said (signing.md § The
-- owner side): valid, broken, untrusted or none, and why when it is not valid. NULL: a
-- register entry made before version 18.
ALTER TABLE submissions ADD COLUMN signature TEXT;
ALTER TABLE submissions ADD COLUMN signature_reason TEXT;
