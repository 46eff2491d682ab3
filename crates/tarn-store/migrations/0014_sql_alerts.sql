-- Databricks SQL objects: saved queries (`kind` 'query'), alerts on them
-- ('alert', /api/2.0/sql/alerts) and self-contained scheduled alerts
-- ('alert_v2', /api/2.0/alerts). `info` is the object as the API shows it,
-- less the fields kept in columns here.
CREATE TABLE sql_objects (
    id              TEXT    PRIMARY KEY,
    kind            TEXT    NOT NULL,
    info            TEXT    NOT NULL,
    owner           TEXT    NOT NULL,
    lifecycle_state TEXT    NOT NULL,
    create_time_ms  INTEGER NOT NULL,
    update_time_ms  INTEGER NOT NULL
);
CREATE INDEX sql_objects_by_kind ON sql_objects (kind, lifecycle_state, id);

-- An alert's last evaluation: its state, when it last fired, when it last
-- ran, and the error of a failed evaluation.
CREATE TABLE alert_states (
    alert_id          TEXT    PRIMARY KEY REFERENCES sql_objects (id) ON DELETE CASCADE,
    state             TEXT    NOT NULL,
    trigger_time_ms   INTEGER,
    last_evaluated_ms INTEGER,
    error             TEXT
);
