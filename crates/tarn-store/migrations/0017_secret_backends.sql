-- Where a scope's values come from beyond tarn's own sealed store: a
-- HashiCorp Vault KV v2 path or environment variables (JSON, no credentials).
ALTER TABLE secret_scopes ADD COLUMN backend_config TEXT NOT NULL DEFAULT '{}';
