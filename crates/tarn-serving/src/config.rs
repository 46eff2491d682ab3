//! An endpoint's config as the Serving API sends it (`served_entities`, or
//! the older `served_models`, `traffic_config`, `auto_capture_config`),
//! checked and read into types, and written back in the API's shape, which
//! is also how the store keeps it.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::{Result, ServingError, invalid};

/// `workload_size`: how many requests a served entity takes at once, and
/// so how many worker processes it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkloadSize {
    Small,
    Medium,
    Large,
}

impl WorkloadSize {
    fn parse(text: &str) -> Result<Self> {
        match text {
            "Small" => Ok(Self::Small),
            "Medium" => Ok(Self::Medium),
            "Large" => Ok(Self::Large),
            other => Err(invalid(format!("Invalid workload_size '{other}': must be one of Small, Medium, Large"))),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Small => "Small",
            Self::Medium => "Medium",
            Self::Large => "Large",
        }
    }

    /// Requests in flight at once, Databricks' upper bound of the size.
    pub fn concurrency(self) -> usize {
        match self {
            Self::Small => 4,
            Self::Medium => 16,
            Self::Large => 64,
        }
    }

    /// Worker processes: one per four concurrent requests, at most a core each.
    pub fn processes(self, cores: usize) -> usize {
        self.concurrency().div_ceil(4).min(cores.max(1))
    }
}

/// One served entity: a registered model version behind the endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServedEntity {
    pub name: String,
    /// A workspace registry name, or a Unity Catalog `catalog.schema.model`.
    pub entity_name: String,
    pub entity_version: String,
    pub workload_size: WorkloadSize,
    pub workload_type: String,
    pub scale_to_zero: bool,
    pub environment_vars: BTreeMap<String, String>,
    pub creator: String,
    pub creation_timestamp: i64,
}

impl ServedEntity {
    /// Whether a running entity for `self` can serve `other` unchanged.
    pub fn same_deployment(&self, other: &ServedEntity) -> bool {
        self.name == other.name
            && self.entity_name == other.entity_name
            && self.entity_version == other.entity_version
            && self.workload_size == other.workload_size
            && self.scale_to_zero == other.scale_to_zero
            && self.environment_vars == other.environment_vars
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub served_entity_name: String,
    pub traffic_percentage: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EndpointConfig {
    pub served_entities: Vec<ServedEntity>,
    pub routes: Vec<Route>,
    /// The legacy inference table settings, kept as sent.
    pub auto_capture_config: Option<Value>,
    /// Sent as `served_models`: answered in that shape too.
    pub legacy: bool,
}

const WORKLOAD_TYPES: &[&str] = &[
    "CPU",
    "CPU_MEDIUM",
    "CPU_LARGE",
    "GPU_SMALL",
    "GPU_MEDIUM",
    "GPU_LARGE",
    "GPU_XLARGE",
    "GPU_XLARGE_8",
    "MULTIGPU_MEDIUM",
];

/// Endpoint and served entity names: letters, digits, `-` and `_`, at most 63.
pub fn check_name(kind: &str, name: &str) -> Result<()> {
    let valid =
        !name.is_empty() && name.len() <= 63 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        return Ok(());
    }
    Err(invalid(format!("Invalid {kind} name '{name}': it must be 1 to 63 characters of letters, digits, '-' and '_'")))
}

fn text<'a>(object: &'a Map<String, Value>, field: &str) -> Result<Option<&'a str>> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(invalid(format!("Field '{field}' must be a string, got {other}"))),
    }
}

/// A version given as a string or a number.
fn version(object: &Map<String, Value>, field: &str) -> Result<Option<String>> {
    match object.get(field) {
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        _ => Ok(text(object, field)?.map(str::to_string)),
    }
}

fn entity(value: &Value, legacy: bool) -> Result<ServedEntity> {
    let object = value.as_object().ok_or_else(|| invalid("Each served entity must be an object"))?;
    for unsupported in ["external_model", "foundation_model"] {
        if object.get(unsupported).is_some_and(|v| !v.is_null()) {
            return Err(ServingError::NotImplemented(format!(
                "Served entities with '{unsupported}' are not implemented by tarn: serve a registered model version"
            )));
        }
    }
    let (name_field, version_field) =
        if legacy { ("model_name", "model_version") } else { ("entity_name", "entity_version") };
    let entity_name = text(object, name_field)?
        .filter(|n| !n.is_empty())
        .ok_or_else(|| invalid(format!("Missing required field: {name_field}")))?
        .to_string();
    let entity_version = version(object, version_field)?
        .filter(|v| !v.is_empty())
        .ok_or_else(|| invalid(format!("Missing required field: {version_field}")))?;
    let name = match text(object, "name")? {
        Some(name) => name.to_string(),
        // Databricks' default; a Unity Catalog name contributes its last part.
        None => format!("{}-{entity_version}", entity_name.rsplit('.').next().unwrap_or(&entity_name)),
    };
    check_name("served entity", &name)?;
    let workload_size = WorkloadSize::parse(text(object, "workload_size")?.unwrap_or("Small"))?;
    let workload_type = text(object, "workload_type")?.unwrap_or("CPU").to_string();
    if !WORKLOAD_TYPES.contains(&workload_type.as_str()) {
        return Err(invalid(format!("Invalid workload_type '{workload_type}': must be one of {WORKLOAD_TYPES:?}")));
    }
    let scale_to_zero = match object.get("scale_to_zero_enabled") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => return Err(invalid(format!("Field 'scale_to_zero_enabled' must be a boolean, got {other}"))),
    };
    Ok(ServedEntity {
        name,
        entity_name,
        entity_version,
        workload_size,
        workload_type,
        scale_to_zero,
        environment_vars: environment_vars(object.get("environment_vars"))?,
        creator: text(object, "creator")?.unwrap_or_default().to_string(),
        creation_timestamp: object.get("creation_timestamp").and_then(Value::as_i64).unwrap_or(0),
    })
}

fn environment_vars(value: Option<&Value>) -> Result<BTreeMap<String, String>> {
    let Some(object) = value.filter(|v| !v.is_null()) else { return Ok(BTreeMap::new()) };
    let object = object.as_object().ok_or_else(|| invalid("environment_vars must be an object"))?;
    let mut vars = BTreeMap::new();
    for (key, value) in object {
        let value = value.as_str().ok_or_else(|| invalid(format!("environment_vars.{key} must be a string")))?;
        if let Some(Err(e)) = tarn_core::secret_ref::SecretRef::parse(value) {
            return Err(invalid(format!("environment_vars.{key}: {e}")));
        }
        vars.insert(key.clone(), value.to_string());
    }
    Ok(vars)
}

fn routes(config: &Map<String, Value>, entities: &[ServedEntity]) -> Result<Vec<Route>> {
    let sent = config.get("traffic_config").and_then(|t| t.get("routes")).filter(|r| !r.is_null());
    let Some(sent) = sent else {
        // Unsent, traffic is shared evenly, the first entities taking the remainder.
        let n = entities.len() as u32;
        return Ok(entities
            .iter()
            .enumerate()
            .map(|(i, e)| Route {
                served_entity_name: e.name.clone(),
                traffic_percentage: 100 / n + u32::from((i as u32) < 100 % n),
            })
            .collect());
    };
    let sent = sent.as_array().ok_or_else(|| invalid("traffic_config.routes must be a list"))?;
    let mut routes = Vec::new();
    for route in sent {
        let object = route.as_object().ok_or_else(|| invalid("Each route must be an object"))?;
        let name = match text(object, "served_entity_name")? {
            Some(name) => name,
            None => text(object, "served_model_name")?
                .ok_or_else(|| invalid("Each route must name a served_entity_name or served_model_name"))?,
        };
        if !entities.iter().any(|e| e.name == name) {
            return Err(invalid(format!("The route names served entity '{name}', which the config does not serve")));
        }
        let percentage = object
            .get("traffic_percentage")
            .and_then(Value::as_u64)
            .filter(|p| *p <= 100)
            .ok_or_else(|| invalid(format!("The route to '{name}' needs a traffic_percentage from 0 to 100")))?;
        routes.push(Route { served_entity_name: name.to_string(), traffic_percentage: percentage as u32 });
    }
    let total: u32 = routes.iter().map(|r| r.traffic_percentage).sum();
    if total != 100 {
        return Err(invalid(format!("The traffic percentages of the routes add up to {total}, not 100")));
    }
    Ok(routes)
}

impl EndpointConfig {
    /// Reads a config as `create` and `update_config` send it (or as the
    /// store keeps it), checking every field it uses.
    pub fn parse(config: &Value) -> Result<Self> {
        let config = config.as_object().ok_or_else(|| invalid("config must be an object"))?;
        let entities = config.get("served_entities").and_then(Value::as_array).filter(|a| !a.is_empty());
        let models = config.get("served_models").and_then(Value::as_array).filter(|a| !a.is_empty());
        let (sent, legacy) = match (entities, models) {
            (Some(entities), _) => (entities, models.is_some()),
            (None, Some(models)) => (models, true),
            (None, None) => return Err(invalid("The config must serve at least one entity (served_entities)")),
        };
        let from_models = entities.is_none();
        let served_entities = sent.iter().map(|e| entity(e, from_models)).collect::<Result<Vec<_>>>()?;
        for (i, e) in served_entities.iter().enumerate() {
            if served_entities[..i].iter().any(|other| other.name == e.name) {
                return Err(invalid(format!("Two served entities are named '{}'", e.name)));
            }
        }
        let routes = routes(config, &served_entities)?;
        let auto_capture_config = config.get("auto_capture_config").filter(|v| !v.is_null()).cloned();
        Ok(Self { served_entities, routes, auto_capture_config, legacy })
    }

    /// The config in the API's shape (without states, which are live).
    pub fn to_json(&self) -> Value {
        let entities: Vec<Value> = self.served_entities.iter().map(entity_json).collect();
        let routes: Vec<Value> = self
            .routes
            .iter()
            .map(|r| {
                json!({
                    "served_entity_name": r.served_entity_name,
                    "served_model_name": r.served_entity_name,
                    "traffic_percentage": r.traffic_percentage,
                })
            })
            .collect();
        let mut out = json!({"served_entities": entities, "traffic_config": {"routes": routes}});
        if self.legacy {
            out["served_models"] = json!(self.served_entities.iter().map(model_json).collect::<Vec<_>>());
        }
        if let Some(capture) = &self.auto_capture_config {
            out["auto_capture_config"] = capture.clone();
        }
        out
    }

    pub fn entity(&self, name: &str) -> Option<&ServedEntity> {
        self.served_entities.iter().find(|e| e.name == name)
    }
}

fn entity_json(e: &ServedEntity) -> Value {
    let mut out = json!({
        "name": e.name,
        "entity_name": e.entity_name,
        "entity_version": e.entity_version,
        "workload_size": e.workload_size.as_str(),
        "workload_type": e.workload_type,
        "scale_to_zero_enabled": e.scale_to_zero,
        "creator": e.creator,
        "creation_timestamp": e.creation_timestamp,
    });
    if !e.environment_vars.is_empty() {
        out["environment_vars"] = json!(e.environment_vars);
    }
    out
}

fn model_json(e: &ServedEntity) -> Value {
    json!({
        "name": e.name,
        "model_name": e.entity_name,
        "model_version": e.entity_version,
        "workload_size": e.workload_size.as_str(),
        "workload_type": e.workload_type,
        "scale_to_zero_enabled": e.scale_to_zero,
        "creator": e.creator,
        "creation_timestamp": e.creation_timestamp,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn served_models_read_as_entities_and_answer_in_their_shape() {
        let config = EndpointConfig::parse(&json!({
            "served_models": [{"model_name": "m", "model_version": 2, "workload_size": "Small"}]
        }))
        .unwrap();
        assert_eq!(config.served_entities[0].name, "m-2");
        assert_eq!(config.routes, vec![Route { served_entity_name: "m-2".into(), traffic_percentage: 100 }]);
        let back = EndpointConfig::parse(&config.to_json()).unwrap();
        assert_eq!(back, config);
        assert_eq!(config.to_json()["served_models"][0]["model_version"], "2");
    }

    #[test]
    fn routes_must_name_served_entities_and_add_up_to_100() {
        let entities = json!([
            {"name": "a", "entity_name": "m", "entity_version": "1"},
            {"name": "b", "entity_name": "m", "entity_version": "2"},
        ]);
        let with = |routes: Value| {
            EndpointConfig::parse(&json!({"served_entities": entities, "traffic_config": {"routes": routes}}))
        };
        let split = with(json!([
            {"served_entity_name": "a", "traffic_percentage": 70},
            {"served_model_name": "b", "traffic_percentage": 30},
        ]))
        .unwrap();
        assert_eq!(split.routes[1].traffic_percentage, 30);
        let err = with(json!([{"served_entity_name": "a", "traffic_percentage": 70}])).unwrap_err();
        assert!(err.to_string().contains("add up to 70"), "{err}");
        let err = with(json!([{"served_entity_name": "z", "traffic_percentage": 100}])).unwrap_err();
        assert!(err.to_string().contains("'z'"), "{err}");
        let even = EndpointConfig::parse(&json!({"served_entities": entities})).unwrap();
        assert_eq!(even.routes.iter().map(|r| r.traffic_percentage).collect::<Vec<_>>(), vec![50, 50]);
    }

    #[test]
    fn bad_entities_are_refused_with_the_field_named() {
        let err = EndpointConfig::parse(&json!({"served_entities": [{"entity_name": "m"}]})).unwrap_err();
        assert!(err.to_string().contains("entity_version"), "{err}");
        let err = EndpointConfig::parse(&json!({"served_entities": [
            {"entity_name": "m", "entity_version": "1", "workload_size": "Huge"}
        ]}))
        .unwrap_err();
        assert!(err.to_string().contains("Huge"), "{err}");
        assert!(EndpointConfig::parse(&json!({"served_entities": []})).is_err());
    }

    #[test]
    fn sizes_map_to_processes_bounded_by_cores() {
        assert_eq!(WorkloadSize::Small.processes(8), 1);
        assert_eq!(WorkloadSize::Medium.processes(2), 2);
        assert_eq!(WorkloadSize::Large.processes(8), 8);
    }
}
