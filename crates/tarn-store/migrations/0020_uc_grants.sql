-- Unity Catalog privileges granted on catalogs, schemas, tables and volumes
-- (`w.grants`, GRANT/REVOKE). Keyed by the object's id so a rename keeps
-- them; an object's owner is in its info, not here.
CREATE TABLE uc_grants (
    securable_id TEXT NOT NULL,   -- uc_objects.id
    principal    TEXT NOT NULL,   -- user name, application id or group name
    privilege    TEXT NOT NULL,
    PRIMARY KEY (securable_id, principal, privilege)
);

CREATE TRIGGER uc_grants_follow_objects AFTER DELETE ON uc_objects
BEGIN
    DELETE FROM uc_grants WHERE securable_id = OLD.id;
END;

-- What a Databricks workspace catalog grants everyone, on a home created
-- before grants existed (a new home gets them when `main` is created).
INSERT INTO uc_grants (securable_id, principal, privilege)
SELECT id, 'account users', 'USE_CATALOG' FROM uc_objects WHERE kind = 'catalog' AND full_name = 'main';
INSERT INTO uc_grants (securable_id, principal, privilege)
SELECT o.id, 'account users', p.privilege
FROM uc_objects o,
     (SELECT 'USE_SCHEMA' AS privilege UNION ALL SELECT 'CREATE_TABLE' UNION ALL SELECT 'CREATE_VOLUME'
      UNION ALL SELECT 'CREATE_FUNCTION' UNION ALL SELECT 'CREATE_MODEL'
      UNION ALL SELECT 'CREATE_MATERIALIZED_VIEW') p
WHERE o.kind = 'schema' AND o.full_name = 'main.default';
