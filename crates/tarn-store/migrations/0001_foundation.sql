-- Workspace-wide settings written once (workspace id, ...).
CREATE TABLE settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- Users and personal access tokens (stored as SHA-256 hashes, never in clear).
CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    user_name     TEXT NOT NULL UNIQUE,
    display_name  TEXT NOT NULL,
    created_at    INTEGER NOT NULL
);

CREATE TABLE tokens (
    token_id      TEXT PRIMARY KEY,
    token_hash    TEXT NOT NULL UNIQUE,
    user_id       INTEGER NOT NULL REFERENCES users(id),
    comment       TEXT NOT NULL DEFAULT '',
    creation_time INTEGER NOT NULL,
    expiry_time   INTEGER NOT NULL  -- -1: never expires
);

-- Clusters: the user's spec as given (JSON object) plus the live state.
CREATE TABLE clusters (
    cluster_id          TEXT PRIMARY KEY,
    spec                TEXT NOT NULL,
    state               TEXT NOT NULL,
    state_message       TEXT NOT NULL DEFAULT '',
    creator             TEXT NOT NULL,
    pinned              INTEGER NOT NULL DEFAULT 0,
    start_time          INTEGER NOT NULL,
    terminated_time     INTEGER,
    last_restarted_time INTEGER,
    last_activity_time  INTEGER,
    termination_reason  TEXT,          -- JSON {code, type, parameters}
    engine_url          TEXT,
    engine_pid          INTEGER,
    engine_start_ticks  INTEGER        -- /proc start time: tells our pid from a reused one
);

CREATE TABLE cluster_events (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    cluster_id  TEXT NOT NULL,
    timestamp   INTEGER NOT NULL,
    type        TEXT NOT NULL,
    details     TEXT NOT NULL          -- JSON EventDetails
);
CREATE INDEX cluster_events_by_cluster ON cluster_events(cluster_id, timestamp, id);
