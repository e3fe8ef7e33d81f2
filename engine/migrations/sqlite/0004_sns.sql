-- Amazon SNS: the signing certificates (PEM, a JSON array) an integration pins instead of
-- fetching them from SigningCertURL.
ALTER TABLE integrations ADD COLUMN pinned_certificates TEXT;

-- Delivery digests are kept a day (hooks::DELIVERIES_KEPT_FOR); pruned by age.
CREATE INDEX deliveries_at ON deliveries (at);
