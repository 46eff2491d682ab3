-- Every authenticated API call: who, what, when, and how it ended. Read as
-- `system.access.audit`.
CREATE TABLE audit_events (
    event_id      INTEGER PRIMARY KEY AUTOINCREMENT,
    event_time    INTEGER NOT NULL,
    user_name     TEXT NOT NULL,
    service_name  TEXT NOT NULL,
    action_name   TEXT NOT NULL,
    method        TEXT NOT NULL,
    request_path  TEXT NOT NULL,
    status_code   INTEGER NOT NULL,
    duration_ms   INTEGER NOT NULL
);
CREATE INDEX audit_events_by_time ON audit_events(event_time);
