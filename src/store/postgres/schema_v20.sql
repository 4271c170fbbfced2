-- As SQLite's version 20: each certificate's 保証期限, for the daily expiry.
ALTER TABLE certificates ADD COLUMN guarantee_end TEXT;
UPDATE certificates SET guarantee_end = (
    SELECT v.contents::jsonb ->> 'guarantee_end' FROM certificate_versions v
    WHERE v.number = certificates.number AND v.version = certificates.current_version);
CREATE INDEX certificates_due ON certificates (status, guarantee_end);
