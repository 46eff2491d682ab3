-- Direct permissions on workspace objects (the Permissions API). The
-- owner is the object's creator unless an IS_OWNER entry names another;
-- admins' CAN_MANAGE is inherited, never stored.
CREATE TABLE object_acls (
    object_type    TEXT NOT NULL,   -- the API's path segment: jobs, clusters, pipelines...
    object_id      TEXT NOT NULL,
    principal_kind TEXT NOT NULL,   -- user | service_principal | group
    principal      TEXT NOT NULL,   -- user name, application id or group name
    level          TEXT NOT NULL,
    PRIMARY KEY (object_type, object_id, principal_kind, principal)
);
