-- MLflow tracking: experiments, runs and what runs log. Shapes follow the
-- MLflow tracking server's own schema so behaviour (latest metric per key,
-- soft deletion through lifecycle_stage) is the same. Times are epoch ms.
CREATE TABLE mlflow_experiments (
    experiment_id     INTEGER PRIMARY KEY,
    name              TEXT NOT NULL UNIQUE,
    artifact_location TEXT NOT NULL,
    lifecycle_stage   TEXT NOT NULL DEFAULT 'active',
    creation_time     INTEGER NOT NULL,
    last_update_time  INTEGER NOT NULL
);
CREATE TABLE mlflow_experiment_tags (
    experiment_id INTEGER NOT NULL REFERENCES mlflow_experiments(experiment_id) ON DELETE CASCADE,
    key           TEXT NOT NULL,
    value         TEXT NOT NULL,
    PRIMARY KEY (experiment_id, key)
);
CREATE TABLE mlflow_runs (
    run_uuid        TEXT PRIMARY KEY,
    experiment_id   INTEGER NOT NULL REFERENCES mlflow_experiments(experiment_id),
    name            TEXT NOT NULL,
    user_id         TEXT NOT NULL,
    status          TEXT NOT NULL,
    start_time      INTEGER NOT NULL,
    end_time        INTEGER,
    artifact_uri    TEXT NOT NULL,
    lifecycle_stage TEXT NOT NULL DEFAULT 'active',
    deleted_time    INTEGER
);
CREATE INDEX mlflow_runs_by_experiment ON mlflow_runs(experiment_id, start_time DESC, run_uuid);
CREATE TABLE mlflow_params (
    run_uuid TEXT NOT NULL REFERENCES mlflow_runs(run_uuid) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE TABLE mlflow_tags (
    run_uuid TEXT NOT NULL REFERENCES mlflow_runs(run_uuid) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
-- Every logged value. As in MLflow's SQL store, NaN is stored as 0 with
-- is_nan set, and infinities as the largest finite doubles.
CREATE TABLE mlflow_metrics (
    run_uuid  TEXT NOT NULL REFERENCES mlflow_runs(run_uuid) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key, timestamp, step, value, is_nan)
);
-- The value search and run data show: the one with the highest step, then
-- timestamp, then value (MLflow's rule).
CREATE TABLE mlflow_latest_metrics (
    run_uuid  TEXT NOT NULL REFERENCES mlflow_runs(run_uuid) ON DELETE CASCADE,
    key       TEXT NOT NULL,
    value     REAL NOT NULL,
    is_nan    INTEGER NOT NULL DEFAULT 0,
    timestamp INTEGER NOT NULL,
    step      INTEGER NOT NULL,
    PRIMARY KEY (run_uuid, key)
);
CREATE INDEX mlflow_latest_metrics_by_key ON mlflow_latest_metrics(key, value);
-- MLflow 3 logged models: a model with its own id, artifacts, params, tags
-- and metrics, produced by a run (source_run_id) or standalone.
CREATE TABLE mlflow_logged_models (
    model_id          TEXT PRIMARY KEY,
    experiment_id     INTEGER NOT NULL REFERENCES mlflow_experiments(experiment_id),
    name              TEXT NOT NULL,
    artifact_location TEXT NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    status            TEXT NOT NULL,
    status_message    TEXT,
    model_type        TEXT,
    source_run_id     TEXT,
    lifecycle_stage   TEXT NOT NULL DEFAULT 'active'
);
CREATE INDEX mlflow_logged_models_by_experiment ON mlflow_logged_models(experiment_id, creation_time DESC);
CREATE TABLE mlflow_logged_model_tags (
    model_id TEXT NOT NULL REFERENCES mlflow_logged_models(model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
CREATE TABLE mlflow_logged_model_params (
    model_id TEXT NOT NULL REFERENCES mlflow_logged_models(model_id) ON DELETE CASCADE,
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    PRIMARY KEY (model_id, key)
);
-- Metrics logged against a model (log-metric/log-batch with model_id).
CREATE TABLE mlflow_logged_model_metrics (
    model_id       TEXT NOT NULL REFERENCES mlflow_logged_models(model_id) ON DELETE CASCADE,
    key            TEXT NOT NULL,
    value          REAL NOT NULL,
    is_nan         INTEGER NOT NULL DEFAULT 0,
    timestamp      INTEGER NOT NULL,
    step           INTEGER NOT NULL,
    run_uuid       TEXT,
    dataset_name   TEXT,
    dataset_digest TEXT
);
CREATE INDEX mlflow_logged_model_metrics_by_model ON mlflow_logged_model_metrics(model_id, key);
-- What a run read (datasets, models) and wrote (models), as the client logs them.
CREATE TABLE mlflow_run_inputs (
    run_uuid TEXT NOT NULL REFERENCES mlflow_runs(run_uuid) ON DELETE CASCADE,
    kind     TEXT NOT NULL,
    body     TEXT NOT NULL,
    position INTEGER NOT NULL
);
CREATE INDEX mlflow_run_inputs_by_run ON mlflow_run_inputs(run_uuid, kind, position);
-- The model registry: registered models, their versions, tags and aliases.
-- Renames cascade through the name columns.
CREATE TABLE mlflow_registered_models (
    name              TEXT PRIMARY KEY,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description       TEXT NOT NULL DEFAULT ''
);
CREATE TABLE mlflow_registered_model_tags (
    name  TEXT NOT NULL REFERENCES mlflow_registered_models(name) ON DELETE CASCADE ON UPDATE CASCADE,
    key   TEXT NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (name, key)
);
CREATE TABLE mlflow_model_versions (
    name              TEXT NOT NULL REFERENCES mlflow_registered_models(name) ON DELETE CASCADE ON UPDATE CASCADE,
    version           INTEGER NOT NULL,
    creation_time     INTEGER NOT NULL,
    last_updated_time INTEGER NOT NULL,
    description       TEXT NOT NULL DEFAULT '',
    user_id           TEXT NOT NULL,
    current_stage     TEXT NOT NULL DEFAULT 'None',
    source            TEXT NOT NULL,
    storage_location  TEXT NOT NULL,
    run_id            TEXT,
    run_link          TEXT,
    model_id          TEXT,
    status            TEXT NOT NULL DEFAULT 'READY',
    PRIMARY KEY (name, version)
);
CREATE TABLE mlflow_model_version_tags (
    name    TEXT NOT NULL,
    version INTEGER NOT NULL,
    key     TEXT NOT NULL,
    value   TEXT NOT NULL,
    PRIMARY KEY (name, version, key),
    FOREIGN KEY (name, version) REFERENCES mlflow_model_versions(name, version) ON DELETE CASCADE ON UPDATE CASCADE
);
CREATE TABLE mlflow_registered_model_aliases (
    name    TEXT NOT NULL,
    alias   TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (name, alias),
    FOREIGN KEY (name, version) REFERENCES mlflow_model_versions(name, version) ON DELETE CASCADE ON UPDATE CASCADE
);
