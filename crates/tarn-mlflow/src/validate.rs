//! MLflow's limits on what runs log.

use crate::MlflowError;

pub const MAX_KEY_LENGTH: usize = 250;
pub const MAX_PARAM_VALUE_LENGTH: usize = 6000;
pub const MAX_TAG_VALUE_LENGTH: usize = 8000;
pub const MAX_BATCH_METRICS: usize = 1000;
pub const MAX_BATCH_PARAMS_AND_TAGS: usize = 100;
pub const MAX_BATCH_ENTRIES: usize = 1000;

fn invalid(message: String) -> MlflowError {
    MlflowError::InvalidParameter(message)
}

/// Names may hold alphanumerics, underscores, dashes, periods, spaces,
/// colons and slashes, and must not climb out of a path.
pub fn key(kind: &str, key: &str) -> Result<(), MlflowError> {
    if key.is_empty() {
        return Err(invalid(format!("Missing value for required parameter '{kind} key'")));
    }
    if key.chars().count() > MAX_KEY_LENGTH {
        return Err(invalid(format!(
            "{kind} key '{key:.40}...' had length {}, which exceeded length limit of {MAX_KEY_LENGTH}",
            key.chars().count()
        )));
    }
    let allowed = |c: char| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ' ' | ':' | '/');
    if !key.chars().all(allowed) || key.split('/').any(|part| part == "..") || key.starts_with('/') {
        return Err(invalid(format!(
            "Invalid {kind} name: '{key}'. Names may only contain alphanumerics, underscores (_), dashes (-), \
             periods (.), spaces ( ), colon(:) and slashes (/)."
        )));
    }
    Ok(())
}

pub fn value(kind: &str, key: &str, value: &str, limit: usize) -> Result<(), MlflowError> {
    let length = value.chars().count();
    if length > limit {
        return Err(invalid(format!(
            "{kind} value '{value:.40}...' had length {length}, which exceeded length limit of {limit} (key '{key}')"
        )));
    }
    Ok(())
}

/// A tag's key and value (runs, experiments, models, versions).
pub fn tag(key: &str, value: &str) -> Result<(), MlflowError> {
    self::key("Tag", key)?;
    self::value("Tag", key, value, MAX_TAG_VALUE_LENGTH)
}

/// A param's key and value (runs, logged models).
pub fn param(key: &str, value: &str) -> Result<(), MlflowError> {
    self::key("Param", key)?;
    self::value("Param", key, value, MAX_PARAM_VALUE_LENGTH)
}

pub fn tags(pairs: &[(String, String)]) -> Result<(), MlflowError> {
    pairs.iter().try_for_each(|(k, v)| tag(k, v))
}

pub fn params(pairs: &[(String, String)]) -> Result<(), MlflowError> {
    pairs.iter().try_for_each(|(k, v)| param(k, v))
}

pub fn batch_size(metrics: usize, params: usize, tags: usize) -> Result<(), MlflowError> {
    let too_many = |what: &str, n: usize, limit: usize| {
        invalid(format!("A batch logging request can contain at most {limit} {what}. Got {n} {what}."))
    };
    if metrics > MAX_BATCH_METRICS {
        return Err(too_many("metrics", metrics, MAX_BATCH_METRICS));
    }
    if params > MAX_BATCH_PARAMS_AND_TAGS {
        return Err(too_many("params", params, MAX_BATCH_PARAMS_AND_TAGS));
    }
    if tags > MAX_BATCH_PARAMS_AND_TAGS {
        return Err(too_many("tags", tags, MAX_BATCH_PARAMS_AND_TAGS));
    }
    let total = metrics + params + tags;
    if total > MAX_BATCH_ENTRIES {
        return Err(too_many("metrics, params and tags in total", total, MAX_BATCH_ENTRIES));
    }
    Ok(())
}

/// A metric value as MLflow stores it: NaN as 0 with a flag, infinities as
/// the largest finite doubles.
pub fn metric_value(value: f64) -> (f64, bool) {
    if value.is_nan() {
        (0.0, true)
    } else if value.is_infinite() {
        (if value > 0.0 { f64::MAX } else { f64::MIN }, false)
    } else {
        (value, false)
    }
}
