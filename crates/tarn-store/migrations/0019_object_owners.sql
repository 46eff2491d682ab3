-- Owners and ids for the objects the Permissions API covers since this
-- migration: MLflow experiments, registered models, the SQL warehouse and
-- workspace notebooks and directories. An empty creator means no owner:
-- only admins and what object_acls grants.
ALTER TABLE mlflow_experiments ADD COLUMN creator TEXT NOT NULL DEFAULT '';
ALTER TABLE mlflow_registered_models ADD COLUMN creator TEXT NOT NULL DEFAULT '';
-- Databricks' `registered_model_databricks.id`: what the Permissions API's
-- path names, and what survives a rename (the name is the key).
ALTER TABLE mlflow_registered_models ADD COLUMN model_id TEXT;
UPDATE mlflow_registered_models SET model_id = lower(hex(randomblob(16))) WHERE model_id IS NULL;
CREATE UNIQUE INDEX mlflow_registered_models_by_id ON mlflow_registered_models(model_id);
ALTER TABLE workspace_objects ADD COLUMN creator TEXT NOT NULL DEFAULT '';
-- A home belongs to its user.
UPDATE workspace_objects SET creator = substr(path, length('/Users/') + 1) WHERE parent = '/Users';

-- Grants that keep what every principal could do before objects were
-- guarded. They are seeded here, once, rather than at each start, so that
-- an admin who takes one away does not see it come back on restart.
-- The default experiment: every user logs runs to it.
INSERT OR IGNORE INTO object_acls (object_type, object_id, principal_kind, principal, level)
VALUES ('experiments', '0', 'group', 'users', 'CAN_EDIT');
-- The warehouse: its id is decided here if tarn-sql has not decided it yet
-- (the same setting and shape, 8 random bytes in hex), so `users` can be
-- given CAN_USE on it.
INSERT OR IGNORE INTO settings (key, value) VALUES ('sql_warehouse_id', lower(hex(randomblob(8))));
INSERT OR IGNORE INTO object_acls (object_type, object_id, principal_kind, principal, level)
SELECT 'warehouses', value, 'group', 'users', 'CAN_USE' FROM settings WHERE key = 'sql_warehouse_id';
-- /Shared, as in Databricks: every user manages what is in it. Its row is
-- made here (tarn-files makes its directory on disk at open).
INSERT OR IGNORE INTO workspace_objects (path, parent, object_type, language, created_at, modified_at)
VALUES ('/Shared', '/', 'DIRECTORY', NULL, CAST(strftime('%s', 'now') AS INTEGER) * 1000, CAST(strftime('%s', 'now') AS INTEGER) * 1000);
INSERT OR IGNORE INTO object_acls (object_type, object_id, principal_kind, principal, level)
SELECT 'directories', CAST(object_id AS TEXT), 'group', 'users', 'CAN_MANAGE'
FROM workspace_objects WHERE path = '/Shared' AND object_type = 'DIRECTORY';
