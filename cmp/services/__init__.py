"""The domain: consent recording, the chain, jurisdiction, notices, sites and keys; no request objects."""
