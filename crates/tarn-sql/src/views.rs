//! Views in the catalog: [`CatalogViews`] is the gateway's and the
//! warehouse's [`ViewCatalog`]. A view is a table entry of type VIEW with
//! its query as written (`view_definition`), the columns the engine
//! found the query to have, and, in its properties under Spark's keys,
//! the catalog and schema its names resolve in
//! (`view.catalogAndNamespace.*`), and whether the statement named the
//! view's columns (`tarn.view.namedColumns`: the query's are then renamed).

use std::sync::Arc;

use serde_json::{Value, json};
use tarn_catalog::{Catalog, CatalogError, CreateRequest, Kind};
use tarn_gateway::access::Name;
use tarn_gateway::{NewView, SqlFailure, ViewCatalog, ViewDefinition};
use tarn_lake::arrow::array::{ArrayRef, BooleanArray, StringArray};
use tarn_lake::arrow::datatypes::{DataType, Field, Schema};
use tarn_lake::arrow::record_batch::RecordBatch;
use tarn_store::Store;

use crate::grants::{principal, resolve};

const NAMESPACE_PARTS: &str = "view.catalogAndNamespace.numParts";
const NAMESPACE_PART: &str = "view.catalogAndNamespace.part.";
const NAMED_COLUMNS: &str = "tarn.view.namedColumns";

pub struct CatalogViews {
    catalog: Catalog,
    store: Arc<Store>,
}

impl CatalogViews {
    pub fn new(catalog: Catalog, store: Arc<Store>) -> Self {
        Self { catalog, store }
    }

    /// The names of the views in `schema` (a full name) `user` may see.
    fn visible_views(&self, user: &str, schema: &str) -> Result<Vec<String>, CatalogError> {
        let principal = principal(&self.catalog, &self.store, user)?;
        let parent: Vec<&str> = schema.split('.').collect();
        let (tables, _) = self.catalog.list_visible(&principal, Kind::Table, &parent, 0, u64::from(u32::MAX))?;
        let views = tables.into_iter().filter(is_view);
        Ok(views.filter_map(|t| t.get("name").and_then(Value::as_str).map(str::to_string)).collect())
    }

    /// The table entry `full` names, if there is one.
    fn entry(&self, full: &str) -> Result<Option<Value>, SqlFailure> {
        match self.catalog.get(Kind::Table, full) {
            Ok(info) => Ok(Some(info)),
            Err(CatalogError::NotFound { .. }) => Ok(None),
            Err(e) => Err(failure(e.to_string())),
        }
    }

    fn full_name(name: &[String], namespace: &[String]) -> Result<String, SqlFailure> {
        resolve(name, namespace, 3)
            .ok_or_else(|| failure(format!("[INVALID_IDENTIFIER] {} is no view name", name.join("."))))
    }
}

fn failure(message: String) -> SqlFailure {
    SqlFailure { exception_class: "org.apache.spark.sql.AnalysisException", message }
}

fn is_view(info: &Value) -> bool {
    info.get("table_type").and_then(Value::as_str) == Some("VIEW")
}

fn done() -> Result<Vec<u8>, SqlFailure> {
    answer(&RecordBatch::new_empty(Arc::new(Schema::empty())))
}

fn answer(batch: &RecordBatch) -> Result<Vec<u8>, SqlFailure> {
    crate::encode_stream(batch)
        .map_err(|e| SqlFailure { exception_class: "org.apache.spark.SparkException", message: e.to_string() })
}

/// Spark's `SHOW ... LIKE` patterns: `*` stands for any characters, `|`
/// separates alternatives; case is ignored.
fn like(pattern: &str, name: &str) -> bool {
    fn glob(pattern: &[char], name: &[char]) -> bool {
        match pattern.split_first() {
            None => name.is_empty(),
            Some(('*', rest)) => (0..=name.len()).any(|skip| glob(rest, &name[skip..])),
            Some((c, rest)) => name.split_first().is_some_and(|(n, more)| n == c && glob(rest, more)),
        }
    }
    let name: Vec<char> = name.to_lowercase().chars().collect();
    pattern.split('|').any(|alternative| {
        let alternative: Vec<char> = alternative.trim().to_lowercase().chars().collect();
        glob(&alternative, &name)
    })
}

/// `SHOW VIEWS`' rows, as Spark answers it.
fn view_rows(schema: &str, names: &[String]) -> Result<RecordBatch, SqlFailure> {
    let fields = vec![
        Field::new("namespace", DataType::Utf8, false),
        Field::new("viewName", DataType::Utf8, false),
        Field::new("isTemporary", DataType::Boolean, false),
    ];
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(vec![schema; names.len()])),
        Arc::new(StringArray::from(names.to_vec())),
        Arc::new(BooleanArray::from(vec![false; names.len()])),
    ];
    RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| failure(e.to_string()))
}

/// The properties a view keeps: the user's, then Spark's view keys.
fn view_properties(view: &NewView) -> tarn_catalog::Properties {
    let mut properties: tarn_catalog::Properties = view.properties.iter().cloned().collect();
    properties.insert(NAMESPACE_PARTS.into(), view.namespace.len().to_string());
    for (i, part) in view.namespace.iter().enumerate() {
        properties.insert(format!("{NAMESPACE_PART}{i}"), part.clone());
    }
    if !view.column_names.is_empty() {
        properties.insert(NAMED_COLUMNS.into(), "true".into());
    }
    properties
}

impl CatalogViews {
    /// A new query (and columns) for the view `full`: with the statement's
    /// comment and properties for `CREATE OR REPLACE`, its own kept for
    /// `ALTER VIEW ... AS` (the namespace keys follow the new query).
    fn replace(
        &self,
        full: &str,
        user: &str,
        view: &NewView,
        columns: Vec<Value>,
        properties: tarn_catalog::Properties,
    ) -> Result<Vec<u8>, SqlFailure> {
        self.catalog
            .amend_table(full, user, |info| {
                info.insert("view_definition".into(), json!(view.query));
                info.insert("columns".into(), Value::Array(columns));
                if view.alter {
                    let kept = info.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
                    let mut merged = kept;
                    merged.extend(properties.into_iter().map(|(k, v)| (k, json!(v))));
                    info.insert("properties".into(), Value::Object(merged));
                    return;
                }
                info.insert("properties".into(), json!(properties));
                match &view.comment {
                    Some(comment) => info.insert("comment".into(), json!(comment)),
                    None => info.remove("comment"),
                };
            })
            .map_err(|e| failure(e.to_string()))?;
        done()
    }

    /// The view `full` names, or the error a view statement gives.
    fn existing_view(&self, full: &str) -> Result<Value, SqlFailure> {
        match self.entry(full)? {
            Some(info) if is_view(&info) => Ok(info),
            Some(_) => Err(failure(format!(
                "[EXPECT_VIEW_NOT_TABLE.NO_ALTERNATIVE] {full} is a table, not a view. SQLSTATE: 42809"
            ))),
            None => Err(failure(format!("[TABLE_OR_VIEW_NOT_FOUND] The view {full} cannot be found. SQLSTATE: 42P01"))),
        }
    }
}

impl ViewCatalog for CatalogViews {
    fn view(&self, name: &[String], namespace: &[String]) -> Option<ViewDefinition> {
        let full = resolve(name, namespace, 3)?;
        let info = self.catalog.get(Kind::Table, &full).ok().filter(is_view)?;
        let text = |key: &str| info.get(key).and_then(Value::as_str).map(str::to_string);
        let property =
            |key: &str| info.pointer(&format!("/properties/{}", key.replace('/', "~1"))).and_then(Value::as_str);
        let parts: usize = property(NAMESPACE_PARTS).and_then(|n| n.parse().ok()).unwrap_or(0);
        let view_namespace = (0..parts).filter_map(|i| property(&format!("{NAMESPACE_PART}{i}")).map(str::to_string));
        let view_namespace: Name = view_namespace.collect();
        let columns = info.get("columns").and_then(Value::as_array).filter(|_| property(NAMED_COLUMNS).is_some());
        let column_names =
            columns.into_iter().flatten().filter_map(|c| c.get("name").and_then(Value::as_str).map(str::to_string));
        Some(ViewDefinition {
            full_name: text("full_name")?.split('.').map(str::to_string).collect(),
            query: text("view_definition")?,
            namespace: if view_namespace.len() == 2 { view_namespace } else { namespace.to_vec() },
            column_names: column_names.collect(),
        })
    }

    fn create(&self, user: &str, view: &NewView) -> Result<Vec<u8>, SqlFailure> {
        let full = Self::full_name(&view.name, &view.namespace)?;
        let columns = tarn_lake::uc_columns(&view.fields, &[]);
        let properties = view_properties(view);
        if let Some(existing) = self.entry(&full)? {
            if !is_view(&existing) {
                return Err(failure(format!(
                    "[EXPECT_VIEW_NOT_TABLE.NO_ALTERNATIVE] {full} is a table, not a view: drop it first. SQLSTATE: 42809"
                )));
            }
            if view.if_not_exists {
                return done();
            }
            if !view.replace {
                return Err(failure(format!(
                    "[TABLE_OR_VIEW_ALREADY_EXISTS] Cannot create view {full} because it already exists. \
                     SQLSTATE: 42P07"
                )));
            }
            return self.replace(&full, user, view, columns, properties);
        }
        if view.alter {
            return Err(failure(format!("[TABLE_OR_VIEW_NOT_FOUND] The view {full} cannot be found. SQLSTATE: 42P01")));
        }
        let parts: Vec<&str> = full.split('.').collect();
        let request = CreateRequest {
            catalog_name: parts.first().map(|p| p.to_string()),
            schema_name: parts.get(1).map(|p| p.to_string()),
            name: parts.get(2).map(|p| p.to_string()),
            comment: view.comment.clone(),
            properties: Some(properties),
            table_type: Some("VIEW".into()),
            columns,
            view_definition: Some(view.query.clone()),
            ..Default::default()
        };
        match self.catalog.create(Kind::Table, &request, user) {
            Ok(_) => done(),
            Err(CatalogError::NotFound { kind: Kind::Schema, name }) => {
                Err(failure(format!("[SCHEMA_NOT_FOUND] The schema `{name}` cannot be found. SQLSTATE: 42704")))
            }
            Err(e) => Err(failure(e.to_string())),
        }
    }

    fn drop(&self, _user: &str, name: &[String], namespace: &[String], if_exists: bool) -> Result<Vec<u8>, SqlFailure> {
        let full = Self::full_name(name, namespace)?;
        match self.entry(&full)? {
            None if if_exists => done(),
            None => Err(failure(format!("[TABLE_OR_VIEW_NOT_FOUND] The view {full} cannot be found. SQLSTATE: 42P01"))),
            Some(info) if !is_view(&info) => Err(failure(format!(
                "[WRONG_COMMAND_FOR_OBJECT_TYPE] {full} is a table: use DROP TABLE instead. SQLSTATE: 42809"
            ))),
            Some(_) => {
                self.catalog.delete(Kind::Table, &full, false).map_err(|e| failure(e.to_string()))?;
                done()
            }
        }
    }

    fn set_properties(
        &self,
        user: &str,
        name: &[String],
        namespace: &[String],
        properties: &[(String, String)],
    ) -> Result<Vec<u8>, SqlFailure> {
        let full = Self::full_name(name, namespace)?;
        self.existing_view(&full)?;
        self.catalog
            .amend_table(&full, user, |info| {
                let mut merged = info.get("properties").and_then(Value::as_object).cloned().unwrap_or_default();
                merged.extend(properties.iter().map(|(k, v)| (k.clone(), json!(v))));
                info.insert("properties".into(), Value::Object(merged));
            })
            .map_err(|e| failure(e.to_string()))?;
        done()
    }

    fn show(
        &self,
        user: &str,
        schema: Option<&[String]>,
        namespace: &[String],
        pattern: Option<&str>,
    ) -> Result<Vec<u8>, SqlFailure> {
        let current = namespace.get(1..).unwrap_or_default().to_vec();
        let name = schema.map_or(current, <[String]>::to_vec);
        let full = resolve(&name, namespace, 2)
            .ok_or_else(|| failure(format!("[INVALID_IDENTIFIER] {} is no schema name", name.join("."))))?;
        let mut names = match self.visible_views(user, &full) {
            Ok(names) => names,
            Err(CatalogError::NotFound { .. }) => {
                return Err(failure(format!(
                    "[SCHEMA_NOT_FOUND] The schema `{full}` cannot be found. SQLSTATE: 42704"
                )));
            }
            Err(e) => return Err(failure(e.to_string())),
        };
        names.retain(|n| pattern.is_none_or(|p| like(p, n)));
        names.sort();
        let schema_name = full.rsplit('.').next().unwrap_or_default();
        answer(&view_rows(schema_name, &names)?)
    }
}

#[cfg(test)]
mod tests {
    use super::like;

    #[test]
    fn show_patterns_are_sparks() {
        assert!(like("g*", "Gold"));
        assert!(like("a|gold", "gold"));
        assert!(like("*ol*", "gold"));
        assert!(!like("g*", "silver"));
        assert!(like("gold", "GOLD") && !like("gol", "gold"));
    }
}
