//! Create, read, update and delete for every kind of object. What differs
//! between kinds is data: the name fields a request carries, the id field,
//! and the extra fields of its info.

use serde_json::{Map, Value, json};
use tarn_core::time::now_ms;
use tarn_store::UcObject;

use crate::names::{FullName, identifier};
use crate::request::{CreateRequest, Properties, UpdateRequest, given};
use crate::{Catalog, CatalogError, Kind, Result};

/// The request fields that name an object of `kind`, outermost first.
fn name_fields(kind: Kind) -> &'static [&'static str] {
    match kind.depth() {
        1 => &["name"],
        2 => &["catalog_name", "name"],
        _ => &["catalog_name", "schema_name", "name"],
    }
}

fn id_field(kind: Kind) -> &'static str {
    match kind {
        Kind::Catalog | Kind::Staging => "id",
        Kind::Schema => "schema_id",
        Kind::Table => "table_id",
        Kind::Volume => "volume_id",
    }
}

/// The name field `key` of a create request, or INVALID_ARGUMENT.
fn required<'a>(req: &'a CreateRequest, key: &str) -> Result<&'a str> {
    let field = match key {
        "catalog_name" => &req.catalog_name,
        "schema_name" => &req.schema_name,
        _ => &req.name,
    };
    given(field).ok_or_else(|| CatalogError::InvalidArgument(format!("Missing required field: {key}")))
}

fn properties(properties: Option<&Properties>) -> Value {
    properties.map_or_else(|| json!({}), |p| json!(p))
}

fn file_uri(path: &std::path::Path) -> String {
    format!("file://{}", path.display())
}

/// The local path of a `file://` URI (or a plain absolute path).
pub fn local_path(location: &str) -> Option<std::path::PathBuf> {
    let path = location.strip_prefix("file://").unwrap_or(location);
    path.starts_with('/').then(|| std::path::PathBuf::from(path))
}

impl Catalog {
    /// Removes a managed volume's files; what cannot be removed stays as
    /// orphaned files, never an error (the volume is gone either way).
    fn remove_managed_files(&self, location: &str) {
        if let Some(root) = self.storage.object()
            && let Some(rel) = root.rel_of_url(location).filter(|rel| !rel.is_empty())
        {
            let _ = root.delete_prefix(&rel);
        } else if let Some(dir) = local_path(location) {
            let _ = std::fs::remove_dir_all(dir);
        }
    }

    fn parse_request_name(&self, kind: Kind, req: &CreateRequest) -> Result<FullName> {
        let parts = name_fields(kind).iter().map(|f| required(req, f)).collect::<Result<Vec<_>>>()?;
        FullName::from_parts(&parts)
    }

    pub(crate) fn load(&self, kind: Kind, full: &str) -> Result<UcObject> {
        self.store
            .get_uc_object(kind.as_str(), full)?
            .ok_or_else(|| CatalogError::NotFound { kind, name: full.to_string() })
    }

    fn require_parent(&self, kind: Kind, name: &FullName) -> Result<()> {
        match kind.parent() {
            Some(parent) => self.load(parent, &name.parent()).map(drop),
            None => Ok(()),
        }
    }

    /// A fresh managed directory under the lake, created now so engines and
    /// the Files API can write into it; under the object-store root, a
    /// prefix (nothing to create).
    fn managed_location(&self, area: &str, id: &str) -> Result<String> {
        if let Some(root) = self.storage.object() {
            return Ok(root.url(&format!("{area}/{id}")));
        }
        let dir = self.lake.join(area).join(id);
        std::fs::create_dir_all(&dir)
            .map_err(|source| CatalogError::Io { context: format!("creating {}", dir.display()), source })?;
        Ok(file_uri(&dir))
    }

    pub fn create(&self, kind: Kind, req: &CreateRequest, user: &str) -> Result<Value> {
        let name = self.parse_request_name(kind, req)?;
        self.require_parent(kind, &name)?;
        let id = uuid::Uuid::new_v4().to_string();
        let now = now_ms();
        let mut info = Map::new();
        for (field, part) in name_fields(kind).iter().zip(&name.parts) {
            info.insert((*field).into(), json!(part));
        }
        info.insert("full_name".into(), json!(name.full()));
        info.insert(id_field(kind).into(), json!(id));
        if let Some(comment) = given(&req.comment) {
            info.insert("comment".into(), json!(comment));
        }
        info.insert("properties".into(), properties(req.properties.as_ref()));
        let owner = if kind == Kind::Table { self.take_claim(&name.full()) } else { None };
        let owner = owner.as_deref().unwrap_or(user);
        for (k, v) in [("owner", json!(owner)), ("created_by", json!(owner)), ("updated_by", json!(owner))] {
            info.insert(k.into(), v);
        }
        info.insert("created_at".into(), json!(now));
        info.insert("updated_at".into(), json!(now));
        self.fill_kind_fields(kind, &name, &id, req, &mut info)?;
        let mut full_name = name.full();
        if kind == Kind::Staging {
            // Several staging entries may exist for one name; each keeps its own.
            full_name = format!("{full_name}#{id}");
        }
        let parent = if kind == Kind::Staging { name.full() } else { name.parent() };
        let object = UcObject { kind: kind.as_str().into(), full_name, parent, id, info: Value::Object(info) };
        if !self.store.insert_uc_object(&object)? {
            return Err(CatalogError::AlreadyExists { kind, name: name.full() });
        }
        Ok(object.info)
    }

    fn fill_kind_fields(
        &self,
        kind: Kind,
        name: &FullName,
        id: &str,
        req: &CreateRequest,
        info: &mut Map<String, Value>,
    ) -> Result<()> {
        match kind {
            Kind::Catalog | Kind::Schema => {
                let root = match (given(&req.storage_root), self.storage.object()) {
                    (Some(root), _) => root.to_string(),
                    (None, Some(object)) => object.url(""),
                    (None, None) => file_uri(&self.lake),
                };
                info.insert("storage_root".into(), json!(root));
                info.insert("storage_location".into(), json!(root));
                if kind == Kind::Catalog {
                    info.insert("catalog_type".into(), json!("MANAGED_CATALOG"));
                    info.insert("isolation_mode".into(), json!("OPEN"));
                }
            }
            Kind::Staging => {
                info.insert("staging_location".into(), json!(self.managed_location("tables", id)?));
            }
            Kind::Table => self.fill_table(name, req, info)?,
            Kind::Volume => {
                let volume_type = given(&req.volume_type).unwrap_or("MANAGED");
                let location = match (volume_type, given(&req.storage_location)) {
                    ("MANAGED", _) => self.managed_location("volumes", id)?,
                    ("EXTERNAL", Some(location)) => location.to_string(),
                    ("EXTERNAL", None) => {
                        return Err(CatalogError::InvalidArgument(
                            "An EXTERNAL volume needs a storage_location".into(),
                        ));
                    }
                    (other, _) => return Err(CatalogError::InvalidArgument(format!("Unknown volume_type: {other}"))),
                };
                info.insert("volume_type".into(), json!(volume_type));
                info.insert("storage_location".into(), json!(location));
            }
        }
        Ok(())
    }

    /// A MANAGED table must be created at a location this catalog staged for
    /// that name; an EXTERNAL one names its own; a VIEW has a query instead.
    fn fill_table(&self, name: &FullName, req: &CreateRequest, info: &mut Map<String, Value>) -> Result<()> {
        let table_type = given(&req.table_type).unwrap_or("MANAGED");
        let location = given(&req.storage_location);
        if table_type == "VIEW" {
            let definition = given(&req.view_definition)
                .ok_or_else(|| CatalogError::InvalidArgument("A VIEW needs a view_definition".into()))?;
            if location.is_some() {
                return Err(CatalogError::InvalidArgument("A VIEW has no storage_location".into()));
            }
            info.insert("table_type".into(), json!("VIEW"));
            info.insert("view_definition".into(), json!(definition));
            info.insert("columns".into(), Value::Array(req.columns.clone()));
            return Ok(());
        }
        match (table_type, location) {
            ("MANAGED", Some(location)) => {
                let staged = self.store.list_uc_objects(Kind::Staging.as_str(), &name.full())?;
                let known =
                    staged.iter().any(|s| s.info.get("staging_location").and_then(Value::as_str) == Some(location));
                if !known {
                    return Err(CatalogError::InvalidArgument(format!(
                        "storage_location {location} was not staged for managed table {}",
                        name.full()
                    )));
                }
            }
            ("MANAGED", None) => {
                return Err(CatalogError::InvalidArgument(
                    "A MANAGED table is created at a location from staging-tables".into(),
                ));
            }
            // A pipeline's datasets: tarn writes them at a location of its own.
            ("EXTERNAL" | "STREAMING_TABLE" | "MATERIALIZED_VIEW", Some(_)) => {}
            ("EXTERNAL" | "STREAMING_TABLE" | "MATERIALIZED_VIEW", None) => {
                return Err(CatalogError::InvalidArgument(format!("An {table_type} table needs a storage_location")));
            }
            (other, _) => return Err(CatalogError::InvalidArgument(format!("Unsupported table_type: {other}"))),
        }
        info.insert("table_type".into(), json!(table_type));
        info.insert("data_source_format".into(), json!(given(&req.data_source_format).unwrap_or("DELTA")));
        info.insert("storage_location".into(), json!(location));
        info.insert("columns".into(), Value::Array(req.columns.clone()));
        Ok(())
    }

    pub fn get(&self, kind: Kind, full_name: &str) -> Result<Value> {
        let name = FullName::parse(kind, full_name)?;
        Ok(self.load(kind, &name.full())?.info)
    }

    /// Objects of `kind` under `parent` (a catalog or `catalog.schema`;
    /// empty for catalogs).
    pub fn list(&self, kind: Kind, parent: &[&str]) -> Result<Vec<Value>> {
        let parent_name = FullName::from_parts(parent)?;
        if let Some(parent_kind) = kind.parent() {
            self.load(parent_kind, &parent_name.full())?;
        }
        Ok(self.store.list_uc_objects(kind.as_str(), &parent_name.full())?.into_iter().map(|o| o.info).collect())
    }

    /// Applies `comment`, `owner`, `properties` and `new_name`.
    pub fn update(&self, kind: Kind, full_name: &str, patch: &UpdateRequest, user: &str) -> Result<Value> {
        let name = FullName::parse(kind, full_name)?;
        let mut object = self.load(kind, &name.full())?;
        let info = object.info.as_object_mut().ok_or_else(|| CatalogError::InvalidArgument("corrupt info".into()))?;
        for (key, value) in [("comment", &patch.comment), ("owner", &patch.owner)] {
            if let Some(v) = given(value) {
                info.insert(key.into(), json!(v));
            }
        }
        if let Some(p) = &patch.properties {
            info.insert("properties".into(), properties(Some(p)));
        }
        if let Some(new_name) = given(&patch.new_name) {
            let new_name = identifier(new_name)?;
            if kind != Kind::Table && kind != Kind::Volume && self.store.count_uc_children(&name.full())? > 0 {
                return Err(CatalogError::InvalidArgument(format!(
                    "Renaming a non-empty {} is not supported",
                    kind.as_str()
                )));
            }
            let mut parts = name.parts.clone();
            if let Some(last) = parts.last_mut() {
                *last = new_name.clone();
            }
            object.full_name = parts.join(".");
            info.insert("name".into(), json!(new_name));
            info.insert("full_name".into(), json!(object.full_name));
            if self.store.get_uc_object(kind.as_str(), &object.full_name)?.is_some() {
                return Err(CatalogError::AlreadyExists { kind, name: object.full_name });
            }
        }
        info.insert("updated_at".into(), json!(now_ms()));
        info.insert("updated_by".into(), json!(user));
        if !self.store.update_uc_object(kind.as_str(), &name.full(), &object)? {
            return Err(CatalogError::NotFound { kind, name: name.full() });
        }
        Ok(object.info)
    }

    /// Applies `change` to a table's info: what tarn itself changed in the
    /// table's Delta log (columns, comment, properties).
    pub fn amend_table(
        &self,
        full_name: &str,
        user: &str,
        change: impl FnOnce(&mut Map<String, Value>),
    ) -> Result<Value> {
        let name = FullName::parse(Kind::Table, full_name)?;
        let mut object = self.load(Kind::Table, &name.full())?;
        let info = object.info.as_object_mut().ok_or_else(|| CatalogError::InvalidArgument("corrupt info".into()))?;
        change(info);
        info.insert("updated_at".into(), json!(now_ms()));
        info.insert("updated_by".into(), json!(user));
        if !self.store.update_uc_object(Kind::Table.as_str(), &name.full(), &object)? {
            return Err(CatalogError::NotFound { kind: Kind::Table, name: name.full() });
        }
        Ok(object.info)
    }

    /// Deletes an object. A catalog or schema with children needs `force`
    /// (CASCADE). Managed volume files go with the volume; table data stays
    /// on disk (as Databricks keeps dropped managed tables for a while).
    pub fn delete(&self, kind: Kind, full_name: &str, force: bool) -> Result<()> {
        let name = FullName::parse(kind, full_name)?;
        let object = self.load(kind, &name.full())?;
        let children = self.store.count_uc_children(&name.full())?;
        if matches!(kind, Kind::Catalog | Kind::Schema) && children > 0 && !force {
            return Err(CatalogError::NotEmpty { kind, name: name.full(), count: children });
        }
        self.store.delete_uc_object(kind.as_str(), &name.full(), true)?;
        let managed_volume =
            kind == Kind::Volume && object.info.get("volume_type").and_then(Value::as_str) == Some("MANAGED");
        let location = object.info.get("storage_location").and_then(Value::as_str);
        if managed_volume && let Some(location) = location {
            self.remove_managed_files(location);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn catalog() -> (Catalog, std::path::PathBuf) {
        let lake = std::env::temp_dir().join(format!("tarn-catalog-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
        let c = Catalog::new(Arc::new(tarn_store::Store::open_in_memory().unwrap()), lake.clone());
        c.bootstrap("admin").unwrap();
        (c, lake)
    }

    fn named(catalog: &str, schema: Option<&str>, name: &str) -> CreateRequest {
        CreateRequest {
            catalog_name: Some(catalog.into()),
            schema_name: schema.map(str::to_string),
            name: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn namespace_lifecycle() {
        let (c, lake) = catalog();
        assert_eq!(c.get(Kind::Schema, "hive_metastore.default").unwrap()["full_name"], "main.default");
        c.create(Kind::Schema, &named("main", None, "Sales"), "u").unwrap();
        assert!(matches!(
            c.create(Kind::Schema, &named("main", None, "sales"), "u"),
            Err(CatalogError::AlreadyExists { .. })
        ));
        assert!(matches!(
            c.create(Kind::Schema, &named("nope", None, "x"), "u"),
            Err(CatalogError::NotFound { kind: Kind::Catalog, .. })
        ));
        let staged = c.create(Kind::Staging, &named("main", Some("sales"), "t"), "u").unwrap();
        let location = staged["staging_location"].as_str().unwrap().to_string();
        let table = |location: &str| CreateRequest {
            table_type: Some("MANAGED".into()),
            storage_location: Some(location.into()),
            columns: vec![json!({"name": "a"})],
            ..named("main", Some("sales"), "t")
        };
        let bad = table("file:///tmp/elsewhere");
        assert!(matches!(c.create(Kind::Table, &bad, "u"), Err(CatalogError::InvalidArgument(_))));
        let info = c.create(Kind::Table, &table(&location), "u").unwrap();
        assert_eq!((info["columns"][0]["name"].as_str(), info["properties"].clone()), (Some("a"), json!({})));
        assert_eq!(info["full_name"], "main.sales.t");
        assert_eq!(c.list(Kind::Table, &["main", "sales"]).unwrap().len(), 1);
        assert!(matches!(c.delete(Kind::Schema, "main.sales", false), Err(CatalogError::NotEmpty { count: 1, .. })));
        assert!(c.get(Kind::Table, "main.sales.t").is_ok());
        c.delete(Kind::Schema, "main.sales", true).unwrap();
        assert!(matches!(c.get(Kind::Table, "main.sales.t"), Err(CatalogError::NotFound { .. })));
        let _ = std::fs::remove_dir_all(lake);
    }

    #[test]
    fn volumes_own_a_managed_directory() {
        let (c, lake) = catalog();
        let v = c.create(Kind::Volume, &named("main", Some("default"), "raw"), "u").unwrap();
        let dir = local_path(v["storage_location"].as_str().unwrap()).unwrap();
        assert!(dir.is_dir());
        let patch = UpdateRequest {
            new_name: Some("landing".into()),
            comment: Some("c".into()),
            properties: Some([("k".to_string(), "v".to_string())].into()),
            ..Default::default()
        };
        let renamed = c.update(Kind::Volume, "main.default.raw", &patch, "u").unwrap();
        assert_eq!(renamed["properties"], json!({"k": "v"}));
        assert_eq!(
            (renamed["full_name"].as_str(), renamed["comment"].as_str()),
            (Some("main.default.landing"), Some("c"))
        );
        c.delete(Kind::Volume, "main.default.landing", false).unwrap();
        assert!(!dir.exists());
        let _ = std::fs::remove_dir_all(lake);
    }
}
