//! What a create or an update asks of the catalog. The API reads the wire
//! body into these; tarn's own writers (system tables) build them. Empty
//! strings count as not given.

use std::collections::BTreeMap;

use serde_json::Value;

/// An object's `properties`: string keys and values.
pub type Properties = BTreeMap<String, String>;

/// A create: the names that place the object (those its kind needs) and
/// what the client may set; each kind reads the fields that concern it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CreateRequest {
    pub name: Option<String>,
    pub catalog_name: Option<String>,
    pub schema_name: Option<String>,
    pub comment: Option<String>,
    /// None: empty properties.
    pub properties: Option<Properties>,
    /// Catalogs and schemas: where their data goes (default: the lake).
    pub storage_root: Option<String>,
    /// Tables and EXTERNAL volumes: where their data is.
    pub storage_location: Option<String>,
    /// Tables: MANAGED (the default) or EXTERNAL.
    pub table_type: Option<String>,
    /// Tables: DELTA unless given.
    pub data_source_format: Option<String>,
    /// Volumes: MANAGED (the default) or EXTERNAL.
    pub volume_type: Option<String>,
    /// Tables: the column infos, kept as sent.
    pub columns: Vec<Value>,
    /// Views (`table_type` VIEW): the query.
    pub view_definition: Option<String>,
}

/// An update: each field given replaces the object's.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct UpdateRequest {
    pub comment: Option<String>,
    pub owner: Option<String>,
    pub properties: Option<Properties>,
    /// Renames the object within its parent.
    pub new_name: Option<String>,
}

/// A field's text, when given and not empty.
pub(crate) fn given(field: &Option<String>) -> Option<&str> {
    field.as_deref().filter(|s| !s.is_empty())
}
