-- Workspace objects (notebooks, files, directories) by path. Their content
-- lives under $TARN_HOME/workspace at the same path; this table keeps what a
-- file system cannot: a stable object id (kept across overwrites, new for a
-- new object at a reused path), the object type and a notebook's language.
-- `parent` is the path of the containing directory ('/' for top level).
CREATE TABLE workspace_objects (
    object_id    INTEGER PRIMARY KEY AUTOINCREMENT,
    path         TEXT NOT NULL UNIQUE,
    parent       TEXT NOT NULL,
    object_type  TEXT NOT NULL,
    language     TEXT,
    created_at   INTEGER NOT NULL,
    modified_at  INTEGER NOT NULL
);
CREATE INDEX workspace_objects_by_parent ON workspace_objects(parent, path);
