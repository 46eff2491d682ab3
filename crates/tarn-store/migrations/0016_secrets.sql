-- Secret scopes, their secrets (sealed: a nonce and the AES-256-GCM
-- ciphertext, under a key kept outside this database) and their ACLs.
CREATE TABLE secret_scopes (
    name         TEXT PRIMARY KEY COLLATE NOCASE,
    backend_type TEXT NOT NULL,             -- DATABRICKS
    creator      TEXT NOT NULL,
    created_at   INTEGER NOT NULL
);

CREATE TABLE secrets (
    scope        TEXT NOT NULL REFERENCES secret_scopes(name) ON DELETE CASCADE,
    key          TEXT NOT NULL,
    sealed       BLOB NOT NULL,
    last_updated INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
);

-- principal: a user name, a service principal's application id or a group name.
CREATE TABLE secret_acls (
    scope      TEXT NOT NULL REFERENCES secret_scopes(name) ON DELETE CASCADE,
    principal  TEXT NOT NULL,
    permission TEXT NOT NULL,               -- READ | WRITE | MANAGE
    PRIMARY KEY (scope, principal)
);
