-- Amazon SNS: the signing certificates (PEM, a JSON array) an integration pins instead of
-- fetching them from SigningCertURL.
ALTER TABLE integrations ADD COLUMN pinned_certificates TEXT;
