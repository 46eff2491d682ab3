//! Pipeline settings as `w.pipelines.create` sends them (the SDK's
//! `PipelineSpec`), checked whole before anything is stored. The JSON is
//! kept as sent, so fields tarn does not act on still round-trip.

use std::time::Duration;

use serde_json::{Map, Value};

use crate::error::{PipelinesError, Result, invalid};

/// Where a pipeline's definitions come from.
#[derive(Debug, Clone, PartialEq)]
pub enum Library {
    /// A workspace notebook (Python or SQL).
    Notebook(String),
    /// A workspace or volume file (`.py` or `.sql`).
    File(String),
    /// Every `.py` and `.sql` file matching a pattern (`dir/**`, `dir/*.sql`).
    Glob(String),
}

#[derive(Debug, Clone, Default)]
pub struct PipelineSettings {
    pub name: String,
    pub catalog: String,
    /// `schema`, or the legacy `target`.
    pub schema: String,
    pub libraries: Vec<Library>,
    /// Readable with `spark.conf.get` in definitions.
    pub configuration: Map<String, Value>,
    pub development: bool,
    /// The update runs its flows again every `trigger_interval` until stopped.
    pub continuous: bool,
    /// `pipelines.trigger.interval` of the configuration; 5 seconds by default.
    pub trigger_interval: Duration,
    pub serverless: bool,
    /// The user or service principal `run_as` names; updates run as the
    /// pipeline's owner when it names none.
    pub run_as: Option<String>,
    pub raw: Value,
}

pub(crate) const DEFAULT_CATALOG: &str = "main";
pub(crate) const DEFAULT_SCHEMA: &str = "default";

fn text<'a>(raw: &'a Value, field: &str) -> Result<Option<&'a str>> {
    match raw.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.as_str())),
        Some(_) => Err(invalid(format!("'{field}' must be a string"))),
    }
}

fn flag(raw: &Value, field: &str) -> Result<bool> {
    match raw.get(field) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("'{field}' must be a boolean"))),
    }
}

impl PipelineSettings {
    pub fn parse(raw: &Value) -> Result<Self> {
        if !raw.is_object() {
            return Err(invalid("Pipeline settings must be a JSON object"));
        }
        tarn_core::deployment::check(raw, tarn_core::deployment::PIPELINE_KINDS).map_err(invalid)?;
        let name = text(raw, "name")?.map(str::trim).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| invalid("A pipeline needs a name"))?.to_string();
        let schema = match (text(raw, "schema")?, text(raw, "target")?) {
            (Some(_), Some(_)) => return Err(invalid("Specify either 'schema' or 'target', not both")),
            (Some(s), None) | (None, Some(s)) => s.to_string(),
            (None, None) => DEFAULT_SCHEMA.to_string(),
        };
        let configuration = match raw.get("configuration") {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) if map.values().all(Value::is_string) => map.clone(),
            Some(_) => return Err(invalid("'configuration' must map names to string values")),
        };
        Ok(Self {
            name,
            catalog: text(raw, "catalog")?.unwrap_or(DEFAULT_CATALOG).to_string(),
            schema,
            libraries: libraries(raw.get("libraries"))?,
            trigger_interval: trigger_interval(&configuration)?,
            configuration,
            development: flag(raw, "development")?,
            continuous: flag(raw, "continuous")?,
            serverless: flag(raw, "serverless")?,
            run_as: tarn_core::run_as::named(raw).map_err(invalid)?.map(str::to_string),
            raw: raw.clone(),
        })
    }
}

/// `pipelines.trigger.interval`, written as Databricks writes it: `10
/// seconds`, `1 minute`, `2 hours`, `500 milliseconds`.
fn trigger_interval(configuration: &Map<String, Value>) -> Result<Duration> {
    const KEY: &str = "pipelines.trigger.interval";
    let Some(text) = configuration.get(KEY).and_then(Value::as_str) else { return Ok(Duration::from_secs(5)) };
    let bad = || invalid(format!("'{KEY}' must be a number and a unit (e.g. '10 seconds'), got '{text}'"));
    let mut parts = text.split_whitespace();
    let (Some(number), unit, None) = (parts.next(), parts.next(), parts.next()) else { return Err(bad()) };
    let number: u64 = number.parse().map_err(|_| bad())?;
    let millis = match unit.unwrap_or("seconds").trim_end_matches('s') {
        "millisecond" => 1,
        "second" | "sec" => 1_000,
        "minute" | "min" => 60_000,
        "hour" => 3_600_000,
        "day" => 86_400_000,
        _ => return Err(bad()),
    };
    let interval = Duration::from_millis(number.saturating_mul(millis));
    if interval.is_zero() {
        return Err(bad());
    }
    Ok(interval)
}

fn libraries(raw: Option<&Value>) -> Result<Vec<Library>> {
    let Some(list) = raw.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
    let list = list.as_array().ok_or_else(|| invalid("'libraries' must be a list"))?;
    list.iter().map(library).collect()
}

fn library(entry: &Value) -> Result<Library> {
    let path = |kind: &str, field: &str| -> Option<String> {
        entry.get(kind)?.get(field)?.as_str().filter(|p| !p.is_empty()).map(str::to_string)
    };
    if let Some(p) = path("notebook", "path") {
        return Ok(Library::Notebook(p));
    }
    if let Some(p) = path("file", "path") {
        return Ok(Library::File(p));
    }
    if let Some(p) = path("glob", "include") {
        return Ok(Library::Glob(p));
    }
    for kind in ["jar", "maven", "whl"] {
        if entry.get(kind).is_some() {
            return Err(PipelinesError::NotImplemented(format!(
                "'{kind}' pipeline libraries are not supported by tarn; use notebooks, files or globs"
            )));
        }
    }
    Err(invalid(format!("A pipeline library must give notebook.path, file.path or glob.include: {entry}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn settings_take_defaults_and_refuse_what_tarn_does_not_run() {
        let s = PipelineSettings::parse(&json!({"name": "p", "target": "bronze",
            "libraries": [{"file": {"path": "/Workspace/p.py"}}, {"glob": {"include": "/Workspace/t/**"}}]}))
        .unwrap();
        assert_eq!((s.catalog.as_str(), s.schema.as_str()), ("main", "bronze"));
        assert_eq!(s.libraries[1], Library::Glob("/Workspace/t/**".into()));
        assert!(PipelineSettings::parse(&json!({"libraries": []})).is_err());
        assert!(PipelineSettings::parse(&json!({"name": "p", "schema": "a", "target": "b"})).is_err());
        let continuous = PipelineSettings::parse(&json!({"name": "p", "continuous": true,
            "configuration": {"pipelines.trigger.interval": "2 minutes"}}))
        .unwrap();
        assert!(continuous.continuous && continuous.trigger_interval == Duration::from_secs(120));
        assert_eq!(s.trigger_interval, Duration::from_secs(5));
        let odd = json!({"name": "p", "configuration": {"pipelines.trigger.interval": "soon"}});
        assert!(PipelineSettings::parse(&odd).is_err());
        let jar = PipelineSettings::parse(&json!({"name": "p", "libraries": [{"jar": "x.jar"}]}));
        assert!(matches!(jar, Err(PipelinesError::NotImplemented(_))));
    }
}
