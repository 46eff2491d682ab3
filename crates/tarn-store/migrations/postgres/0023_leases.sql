-- Leases: which tarn process may act for the workspace. `serve` holds the
-- `workspace` lease while it runs (renewed every few seconds), so a second
-- `tarn serve` on the same database is refused instead of ending the first
-- one's runs as its own leftovers. `epoch` grows each time the holder
-- changes.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
