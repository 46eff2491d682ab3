-- Notification destinations (webhooks, email lists) jobs notify, and when
-- each job's schedule last fired, so a restart neither loses nor replays
-- its schedule.
CREATE TABLE notification_destinations (
    id               TEXT PRIMARY KEY,
    display_name     TEXT NOT NULL,
    destination_type TEXT NOT NULL,
    config           TEXT NOT NULL,
    created_by       TEXT NOT NULL,
    created_time     INTEGER NOT NULL
);
CREATE TABLE job_schedule_state (
    job_id     INTEGER PRIMARY KEY,
    last_fired INTEGER NOT NULL
);
