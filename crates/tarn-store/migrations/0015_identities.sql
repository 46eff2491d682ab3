-- Identities. Users and service principals share `users` (told apart by
-- `kind`); groups have their own table. A principal's id is unique across
-- both tables, so a member id names exactly one user, service principal or
-- group. New ids are drawn at random in Databricks' 16-digit range.
ALTER TABLE users ADD COLUMN kind TEXT NOT NULL DEFAULT 'user';  -- user | service_principal
ALTER TABLE users ADD COLUMN application_id TEXT;                 -- service principals only
ALTER TABLE users ADD COLUMN active INTEGER NOT NULL DEFAULT 1;
ALTER TABLE users ADD COLUMN external_id TEXT;
ALTER TABLE users ADD COLUMN given_name TEXT;
ALTER TABLE users ADD COLUMN family_name TEXT;
ALTER TABLE users ADD COLUMN entitlements TEXT NOT NULL DEFAULT '[]';  -- JSON array of names
CREATE UNIQUE INDEX users_application_id ON users(application_id);

CREATE TABLE groups (
    id           INTEGER PRIMARY KEY,
    display_name TEXT NOT NULL UNIQUE,
    external_id  TEXT,
    entitlements TEXT NOT NULL DEFAULT '[]',
    created_at   INTEGER NOT NULL
);

-- Direct membership; `users` (every active principal) is not stored.
CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES groups(id) ON DELETE CASCADE,
    member_id INTEGER NOT NULL,
    PRIMARY KEY (group_id, member_id)
);
CREATE INDEX group_members_member ON group_members(member_id);

INSERT INTO groups (id, display_name, entitlements, created_at) VALUES
    (1000000000000001, 'admins', '["workspace-access","databricks-sql-access","allow-cluster-create","allow-instance-pool-create"]', 0),
    (1000000000000002, 'users', '["workspace-access","databricks-sql-access"]', 0);

-- The workspace's first user is its admin.
INSERT INTO group_members (group_id, member_id)
    SELECT 1000000000000001, id FROM users WHERE user_name = 'admin';
