-- Job runs and their task runs, one row per run or task attempt. Run ids
-- come from one sequence, so a task run's id is a run id `runs/get-output`
-- takes. What the scheduler needs to resume or explain a run (the settings
-- it started with, parameters, outputs, task values) is in `doc` (JSON).
CREATE TABLE job_runs (
    run_id            INTEGER PRIMARY KEY AUTOINCREMENT,
    job_id            INTEGER,
    parent_run_id     INTEGER,
    task_key          TEXT,
    attempt_number    INTEGER NOT NULL DEFAULT 0,
    run_type          TEXT NOT NULL,
    life_cycle_state  TEXT NOT NULL,
    result_state      TEXT,
    state_message     TEXT NOT NULL DEFAULT '',
    termination_code  TEXT,
    creator_user_name TEXT NOT NULL,
    idempotency_token TEXT UNIQUE,
    start_time        INTEGER NOT NULL,
    execution_start   INTEGER,
    end_time          INTEGER,
    doc               TEXT NOT NULL
);
CREATE INDEX job_runs_by_job ON job_runs (job_id, run_id) WHERE task_key IS NULL;
CREATE INDEX job_runs_by_parent ON job_runs (parent_run_id, run_id);
CREATE INDEX job_runs_unfinished ON job_runs (life_cycle_state)
    WHERE life_cycle_state NOT IN ('TERMINATED', 'SKIPPED', 'INTERNAL_ERROR');
