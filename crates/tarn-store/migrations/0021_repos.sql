-- Git folders (repos): a clone of a remote kept under $TARN_HOME/repos/<id>,
-- shown in the workspace at `path` (a REPO row in workspace_objects whose
-- object_id is the repo's id). `branch` is NULL while a tag or commit is
-- checked out (a detached HEAD).
CREATE TABLE repos (
    id                INTEGER PRIMARY KEY,
    path              TEXT NOT NULL UNIQUE,
    url               TEXT NOT NULL,
    provider          TEXT NOT NULL,
    branch            TEXT,
    head_commit_id    TEXT NOT NULL,
    sparse_checkout   TEXT,                 -- JSON array of patterns, or NULL
    git_credential_id INTEGER,
    creator           TEXT NOT NULL,
    created_at        INTEGER NOT NULL
);

-- Git credentials, per user. The token is sealed (a nonce and the
-- AES-256-GCM ciphertext under the secrets' key), never stored in clear.
CREATE TABLE git_credentials (
    credential_id           INTEGER PRIMARY KEY AUTOINCREMENT,
    user_name               TEXT NOT NULL,
    git_provider            TEXT NOT NULL,
    git_username            TEXT,
    git_email               TEXT,
    name                    TEXT,
    is_default_for_provider INTEGER NOT NULL DEFAULT 0,
    sealed_token            BLOB,
    created_at              INTEGER NOT NULL
);
CREATE INDEX git_credentials_by_user ON git_credentials(user_name, credential_id);
