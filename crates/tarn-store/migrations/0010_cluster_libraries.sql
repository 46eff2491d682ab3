-- Libraries installed on a cluster, in the order they were asked for. The
-- library is its API object (JSON) and `key` its canonical text, one row per
-- library a cluster has. `uninstall_pending` marks one removed at the
-- cluster's next start (UNINSTALL_ON_RESTART).
CREATE TABLE cluster_libraries (
    cluster_id        TEXT    NOT NULL,
    key               TEXT    NOT NULL,
    library           TEXT    NOT NULL,
    position          INTEGER NOT NULL,
    uninstall_pending INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (cluster_id, key)
);
