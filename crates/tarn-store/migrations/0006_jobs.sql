-- Jobs: settings kept whole as the client sent them (JSON), so fields tarn
-- does not act on still round-trip.
CREATE TABLE jobs (
    job_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    creator_user_name TEXT NOT NULL,
    run_as_user_name  TEXT NOT NULL,
    settings          TEXT NOT NULL,
    created_time      INTEGER NOT NULL
);
CREATE INDEX jobs_by_name ON jobs (lower(json_extract(settings, '$.name')));
