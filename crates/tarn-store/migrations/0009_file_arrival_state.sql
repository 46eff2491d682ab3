-- What each job's file-arrival trigger last saw at its path (a JSON map of
-- file to [size, mtime]), so files that land while tarn is down start a run
-- when it is back.
CREATE TABLE job_file_arrival_state (
    job_id   INTEGER PRIMARY KEY,
    url      TEXT NOT NULL,
    seen     TEXT NOT NULL,
    last_run INTEGER
);
