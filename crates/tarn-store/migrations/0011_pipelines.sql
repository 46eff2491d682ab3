-- Pipelines: settings kept whole as the client sent them (JSON).
CREATE TABLE pipelines (
    pipeline_id       TEXT PRIMARY KEY,
    name              TEXT NOT NULL,
    spec              TEXT NOT NULL,
    creator_user_name TEXT NOT NULL,
    created_time      INTEGER NOT NULL,
    last_modified     INTEGER NOT NULL,
    -- The cluster the pipeline's updates run on, once one was created.
    cluster_id        TEXT
);
CREATE INDEX pipelines_by_name ON pipelines (lower(name));

-- Updates: one row each; `state` moves only through tarn-pipelines'
-- transition function, written fenced on the state read.
CREATE TABLE pipeline_updates (
    update_id     TEXT PRIMARY KEY,
    pipeline_id   TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    state         TEXT NOT NULL,
    cause         TEXT NOT NULL,
    request       TEXT NOT NULL,
    cluster_id    TEXT,
    creation_time INTEGER NOT NULL,
    end_time      INTEGER,
    message       TEXT
);
CREATE INDEX pipeline_updates_by_pipeline ON pipeline_updates (pipeline_id, seq);

-- The event log, as the events API and `event_log()` show it.
CREATE TABLE pipeline_events (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    update_id   TEXT,
    timestamp   INTEGER NOT NULL,
    level       TEXT NOT NULL,
    event_type  TEXT NOT NULL,
    message     TEXT NOT NULL,
    origin      TEXT NOT NULL,
    details     TEXT NOT NULL,
    error       TEXT
);
CREATE INDEX pipeline_events_by_pipeline ON pipeline_events (pipeline_id, seq);

-- What each streaming flow has read: one row per batch. A batch is written
-- `pending` before its data commits and becomes `committed` once the target's
-- Delta log holds it (the commit carries the flow's transaction version).
CREATE TABLE pipeline_flow_batches (
    pipeline_id TEXT NOT NULL,
    flow        TEXT NOT NULL,
    batch       INTEGER NOT NULL,
    state       TEXT NOT NULL,
    progress    TEXT NOT NULL,
    PRIMARY KEY (pipeline_id, flow, batch)
);
