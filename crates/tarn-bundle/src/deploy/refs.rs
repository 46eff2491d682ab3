//! `${resources.<type>.<key>.<field>}` references between a bundle's
//! resources: which resources each one needs first, the order that
//! follows, and the values they resolve to once their targets exist.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use super::resources::ORDER;
use crate::Bundle;

/// `(type, key)` of a resource.
pub type Key = (String, String);

/// A reference's target and field: `resources.jobs.etl.id` → `(jobs, etl, id)`.
fn parse(inner: &str) -> Option<(String, String, String)> {
    let rest = inner.strip_prefix("resources.")?;
    let mut parts = rest.splitn(3, '.');
    Some((parts.next()?.to_string(), parts.next()?.to_string(), parts.next()?.to_string()))
}

/// Each `${...}` in `text`: its byte range and inner text.
fn spans(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(start) = text[from..].find("${").map(|i| from + i) {
        let Some(end) = text[start..].find('}').map(|i| start + i) else { break };
        out.push((start, end + 1, &text[start + 2..end]));
        from = end + 1;
    }
    out
}

fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Array(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Object(map) => map.values().for_each(|v| strings(v, out)),
        _ => {}
    }
}

/// The resources `value` refers to.
pub fn targets(value: &Value) -> BTreeSet<Key> {
    let mut all = Vec::new();
    strings(value, &mut all);
    let mut out = BTreeSet::new();
    for text in all {
        for (_, _, inner) in spans(text) {
            if let Some((kind, key, _)) = parse(inner) {
                out.insert((kind, key));
            }
        }
    }
    out
}

fn rank(kind: &str) -> usize {
    ORDER.iter().position(|k| *k == kind).unwrap_or(ORDER.len())
}

/// Every resource, each after those it refers to (and, between
/// independent ones, in [`ORDER`]); an error names a reference to a
/// resource the bundle lacks, or a cycle.
pub fn order(bundle: &Bundle) -> Result<Vec<Key>, String> {
    let mut needs: BTreeMap<Key, BTreeSet<Key>> = BTreeMap::new();
    for (kind, group) in &bundle.resources {
        for (key, resource) in group {
            let wanted = targets(&resource.value);
            for (t_kind, t_key) in &wanted {
                if !bundle.resources.get(t_kind).is_some_and(|g| g.contains_key(t_key)) {
                    return Err(format!(
                        "{}: resources.{kind}.{key} refers to resources.{t_kind}.{t_key}, which the bundle does not define",
                        location(resource)
                    ));
                }
            }
            needs.insert((kind.clone(), key.clone()), wanted);
        }
    }
    let mut done: Vec<Key> = Vec::new();
    let mut left: Vec<Key> = needs.keys().cloned().collect();
    left.sort_by_key(|(kind, key)| (rank(kind), kind.clone(), key.clone()));
    while !left.is_empty() {
        let ready = left.iter().position(|k| needs[k].iter().all(|n| done.contains(n) || n == k));
        let Some(i) = ready else {
            let (kind, key) = &left[0];
            return Err(format!("resources.{kind}.{key} is part of a cycle of references"));
        };
        done.push(left.remove(i));
    }
    Ok(done)
}

fn location(resource: &crate::Resource) -> String {
    let l = &resource.location;
    format!("{}:{}:{}", l.file.display(), l.line, l.column)
}

/// `value` with every reference to a deployed resource replaced: `id` by
/// its id, other fields by the deployed settings' field. A string that is
/// one whole reference to a non-string field takes that field's value.
pub fn resolve(value: &Value, deployed: &BTreeMap<Key, (String, Value)>) -> Result<Value, String> {
    Ok(match value {
        Value::String(s) => resolve_text(s, deployed)?,
        Value::Array(items) => Value::Array(items.iter().map(|v| resolve(v, deployed)).collect::<Result<_, _>>()?),
        Value::Object(map) => Value::Object(
            map.iter().map(|(k, v)| Ok((k.clone(), resolve(v, deployed)?))).collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

fn field(inner: &str, deployed: &BTreeMap<Key, (String, Value)>) -> Result<Option<Value>, String> {
    let Some((kind, key, field)) = parse(inner) else { return Ok(None) };
    let (id, settings) = deployed
        .get(&(kind.clone(), key.clone()))
        .ok_or_else(|| format!("resources.{kind}.{key} is not deployed yet"))?;
    if field == "id" {
        return Ok(Some(Value::String(id.clone())));
    }
    let pointer = format!("/{}", field.replace('.', "/"));
    settings
        .pointer(&pointer)
        .cloned()
        .map(Some)
        .ok_or_else(|| format!("resources.{kind}.{key} has no field `{field}`"))
}

fn resolve_text(text: &str, deployed: &BTreeMap<Key, (String, Value)>) -> Result<Value, String> {
    let found = spans(text);
    if let [(0, end, inner)] = found.as_slice()
        && *end == text.len()
        && let Some(v) = field(inner, deployed)?
    {
        return Ok(v);
    }
    let mut out = String::new();
    let mut from = 0;
    for (start, end, inner) in found {
        out.push_str(&text[from..start]);
        match field(inner, deployed)? {
            Some(Value::String(s)) => out.push_str(&s),
            Some(other) => out.push_str(&other.to_string()),
            None => out.push_str(&text[start..end]),
        }
        from = end;
    }
    out.push_str(&text[from..]);
    Ok(Value::String(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn references_resolve_to_ids_and_fields() {
        let mut deployed = BTreeMap::new();
        deployed.insert(("pipelines".to_string(), "p".to_string()), ("abc".to_string(), json!({"name": "P", "n": 3})));
        let value = json!({"a": "${resources.pipelines.p.id}", "b": "x-${resources.pipelines.p.name}-y", "c": "${resources.pipelines.p.n}", "d": "${var.keep}"});
        let out = resolve(&value, &deployed);
        assert_eq!(out, Ok(json!({"a": "abc", "b": "x-P-y", "c": 3, "d": "${var.keep}"})));
        assert_eq!(targets(&value).len(), 1);
    }
}
