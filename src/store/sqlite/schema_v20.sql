-- Each certificate's 保証期限 beside its state, from its current version, so the daily
-- expiry (lifecycle.md) reads only the certificates due, by an index, however many there are.
ALTER TABLE certificates ADD COLUMN guarantee_end TEXT;
UPDATE certificates SET guarantee_end = (
    SELECT json_extract(v.contents, '$.guarantee_end') FROM certificate_versions v
    WHERE v.number = certificates.number AND v.version = certificates.current_version);
CREATE INDEX certificates_due ON certificates (status, guarantee_end);
