-- Unity Catalog objects (catalog, schema, table, volume, staging table), each
-- stored as the info object the UC API returns, keyed by kind and the
-- lower-cased full name. `parent` is the full name of the containing object.
CREATE TABLE uc_objects (
    kind       TEXT NOT NULL,
    full_name  TEXT NOT NULL,
    parent     TEXT NOT NULL,
    id         TEXT NOT NULL UNIQUE,
    info       TEXT NOT NULL,
    PRIMARY KEY (kind, full_name)
);
CREATE INDEX uc_objects_by_parent ON uc_objects(kind, parent, full_name);

-- Delta commits coordinated for managed tables (Sail's `delta/preview/commits`).
CREATE TABLE delta_commits (
    table_id                    TEXT NOT NULL,
    version                     INTEGER NOT NULL,
    timestamp                   INTEGER NOT NULL,
    file_name                   TEXT NOT NULL,
    file_size                   INTEGER NOT NULL,
    file_modification_timestamp INTEGER NOT NULL,
    PRIMARY KEY (table_id, version)
);
CREATE TABLE delta_backfill (
    table_id  TEXT PRIMARY KEY,
    version   INTEGER NOT NULL
);

-- Tokens tarn issues to its own engines are not listed to users.
ALTER TABLE tokens ADD COLUMN purpose TEXT NOT NULL DEFAULT 'user';
