//! SCIM PATCH (RFC 7644 §3.5.2): `add`, `replace` and `remove` operations
//! applied to a resource's SCIM JSON, which is then read back and written
//! whole. Paths are `attr`, `attr.sub` and `attr[filter]` (remove and
//! replace of matching items of a multi-valued attribute); without a path
//! the value is an object of attributes.

use serde_json::{Map, Value};

use crate::error::{IdentityError, Result};
use crate::filter::Filter;

/// Attributes holding lists of `{"value", ...}` items.
const MULTI_VALUED: &[&str] = &["members", "groups", "entitlements", "emails", "roles"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Add,
    Replace,
    Remove,
}

fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidParameter(message.into())
}

/// Applies the `Operations` of a PatchOp body to `resource`.
pub fn apply(resource: &mut Value, operations: &[Value]) -> Result<()> {
    if operations.is_empty() {
        return Err(invalid("a PATCH needs at least one operation in 'Operations'"));
    }
    for operation in operations {
        let op = operation.get("op").and_then(Value::as_str).unwrap_or_default();
        let kind = match op.to_ascii_lowercase().as_str() {
            "add" => Kind::Add,
            "replace" => Kind::Replace,
            "remove" => Kind::Remove,
            _ => return Err(invalid(format!("unknown PATCH op '{op}': use add, replace or remove"))),
        };
        let value = operation.get("value").cloned();
        match operation.get("path").and_then(Value::as_str) {
            Some(path) => apply_one(resource, kind, path, value)?,
            None => {
                let Some(Value::Object(fields)) = value else {
                    return Err(invalid(format!("a PATCH '{op}' without a path needs an object value")));
                };
                for (name, value) in fields {
                    apply_one(resource, kind, &name, Some(value))?;
                }
            }
        }
    }
    Ok(())
}

fn apply_one(resource: &mut Value, kind: Kind, path: &str, value: Option<Value>) -> Result<()> {
    let object = resource.as_object_mut().ok_or_else(|| invalid("the resource is not an object"))?;
    let (attr, selector) = match path.split_once('[') {
        Some((attr, rest)) => {
            let inner = rest.strip_suffix(']').ok_or_else(|| invalid(format!("path '{path}' has no closing ']'")))?;
            (attr, Some(Filter::parse(inner)?))
        }
        None => (path, None),
    };
    let (attr, sub) = match attr.split_once('.') {
        Some((attr, sub)) if selector.is_none() => (attr, Some(sub)),
        _ => (attr, None),
    };
    let key = existing_key(object, attr);
    if MULTI_VALUED.iter().any(|m| m.eq_ignore_ascii_case(attr)) {
        return apply_multi(object, key, kind, selector, value);
    }
    if selector.is_some() {
        return Err(invalid(format!("'{attr}' is not multi-valued, so '{path}' selects nothing")));
    }
    match (sub, kind) {
        (None, Kind::Remove) => {
            object.remove(&key);
        }
        (None, _) => {
            object.insert(key, value.ok_or_else(|| invalid(format!("'{path}' needs a value")))?);
        }
        (Some(sub), kind) => {
            let parent = object.entry(key).or_insert_with(|| Value::Object(Map::new()));
            let parent = parent.as_object_mut().ok_or_else(|| invalid(format!("'{attr}' has no sub-attributes")))?;
            let sub_key = existing_key(parent, sub);
            match kind {
                Kind::Remove => {
                    parent.remove(&sub_key);
                }
                _ => {
                    parent.insert(sub_key, value.ok_or_else(|| invalid(format!("'{path}' needs a value")))?);
                }
            }
        }
    }
    Ok(())
}

fn apply_multi(
    object: &mut Map<String, Value>,
    key: String,
    kind: Kind,
    selector: Option<Filter>,
    value: Option<Value>,
) -> Result<()> {
    let items = match value {
        Some(Value::Array(items)) => items,
        Some(Value::Null) | None => Vec::new(),
        Some(one) => vec![one],
    };
    let list = object.entry(key.clone()).or_insert_with(|| Value::Array(Vec::new()));
    let list = list.as_array_mut().ok_or_else(|| invalid(format!("'{key}' is not a list")))?;
    match (kind, selector) {
        (Kind::Remove, Some(filter)) => list.retain(|item| !filter.matches(item)),
        (Kind::Remove, None) if items.is_empty() => list.clear(),
        (Kind::Remove, None) => {
            let gone: Vec<Option<&Value>> = items.iter().map(item_value).collect();
            list.retain(|item| !gone.contains(&item_value(item)));
        }
        (Kind::Replace, Some(filter)) => {
            list.retain(|item| !filter.matches(item));
            list.extend(items);
        }
        (Kind::Replace, None) => *list = items,
        (Kind::Add, Some(_)) => return Err(invalid(format!("an add to '{key}' takes no filter"))),
        (Kind::Add, None) => {
            for item in items {
                if item_value(&item).is_none() {
                    return Err(invalid(format!("each item added to '{key}' needs a 'value'")));
                }
                if !list.iter().any(|have| item_value(have) == item_value(&item)) {
                    list.push(item);
                }
            }
        }
    }
    Ok(())
}

fn item_value(item: &Value) -> Option<&Value> {
    crate::filter::field(item, "value")
}

/// The object's key for `name` compared without case, or `name` itself.
fn existing_key(object: &Map<String, Value>, name: &str) -> String {
    object.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn operations_change_what_they_name() {
        let mut group = json!({"displayName": "team", "members": [{"value": "1"}, {"value": "2"}]});
        apply(
            &mut group,
            &[
                json!({"op": "add", "path": "members", "value": [{"value": "3"}, {"value": "1"}]}),
                json!({"op": "Remove", "path": "members[value eq \"2\"]"}),
                json!({"op": "replace", "value": {"displayName": "crew"}}),
                json!({"op": "add", "path": "name.givenName", "value": "x"}),
            ],
        )
        .unwrap();
        assert_eq!(
            group,
            json!({"displayName": "crew", "members": [{"value": "1"}, {"value": "3"}], "name": {"givenName": "x"}})
        );
        apply(&mut group, &[json!({"op": "remove", "path": "members", "value": [{"value": "1"}]})]).unwrap();
        assert_eq!(group["members"], json!([{"value": "3"}]));
        for bad in [json!({"op": "move", "path": "x"}), json!({"op": "add", "path": "members", "value": [{}]})] {
            assert!(apply(&mut group, std::slice::from_ref(&bad)).is_err(), "{bad}");
        }
        assert!(apply(&mut group, &[]).is_err());
    }
}
