//! The Permissions API's rules: each object type's levels (weakest first),
//! who holds which on an object (its owner, its direct entries for users,
//! service principals and groups, a group's entries reaching its members,
//! `users` reaching everyone, admins holding the owner's level), and
//! changing an object's entries. The API layer finds the object, its
//! creator and, for workspace objects, the directories above it, whose
//! levels flow down to it; this module knows no object store.

use std::sync::Arc;

use serde_json::{Map, Value, json};
use tarn_store::{ADMINS_GROUP, ObjectAclRow, Store, USERS_GROUP, User};

use crate::error::{IdentityError, Result};

/// A type of object the Permissions API covers.
#[derive(Debug)]
pub struct ObjectType {
    /// The path segment: `/api/2.0/permissions/<path>/<id>`.
    pub path: &'static str,
    /// `object_type` in answers.
    pub name: &'static str,
    /// Levels and what they allow, weakest first.
    pub levels: &'static [(&'static str, &'static str)],
}

const WORKSPACE_LEVELS: &[(&str, &str)] = &[
    ("CAN_READ", "Can read"),
    ("CAN_RUN", "Can run"),
    ("CAN_EDIT", "Can edit"),
    ("CAN_MANAGE", "Can manage and set permissions"),
];

pub const OBJECT_TYPES: &[ObjectType] = &[
    ObjectType {
        path: "jobs",
        name: "job",
        levels: &[
            ("CAN_VIEW", "Can view the job, its runs and their output"),
            ("CAN_MANAGE_RUN", "Can also run the job and cancel and repair its runs"),
            ("CAN_MANAGE", "Can also edit and delete the job and set its permissions"),
            ("IS_OWNER", "Owns the job"),
        ],
    },
    ObjectType {
        path: "pipelines",
        name: "pipelines",
        levels: &[
            ("CAN_VIEW", "Can view the pipeline"),
            ("CAN_RUN", "Can also start and stop updates"),
            ("CAN_MANAGE", "Can also edit and delete the pipeline and set its permissions"),
            ("IS_OWNER", "Owns the pipeline"),
        ],
    },
    ObjectType {
        path: "clusters",
        name: "cluster",
        levels: &[
            ("CAN_ATTACH_TO", "Can attach notebooks and sessions"),
            ("CAN_RESTART", "Can also start, restart and terminate"),
            ("CAN_MANAGE", "Can also edit, delete and set permissions"),
        ],
    },
    ObjectType {
        path: "serving-endpoints",
        name: "serving-endpoint",
        levels: &[
            ("CAN_VIEW", "Can view the endpoint"),
            ("CAN_QUERY", "Can also query it"),
            ("CAN_MANAGE", "Can also change, delete and set permissions"),
        ],
    },
    ObjectType {
        path: "experiments",
        name: "mlflowExperiment",
        levels: &[
            ("CAN_READ", "Can read the experiment and its runs"),
            ("CAN_EDIT", "Can also create and log to runs and edit the experiment"),
            ("CAN_MANAGE", "Can also rename and delete it and set its permissions"),
        ],
    },
    ObjectType {
        path: "registered-models",
        name: "registered-model",
        levels: &[
            ("CAN_READ", "Can read the model and its versions"),
            ("CAN_EDIT", "Can also edit it and create versions"),
            ("CAN_MANAGE_STAGING_VERSIONS", "Can also move versions to and from Staging"),
            ("CAN_MANAGE_PRODUCTION_VERSIONS", "Can also move versions to and from Production and set aliases"),
            ("CAN_MANAGE", "Can also rename and delete it and set its permissions"),
        ],
    },
    ObjectType {
        path: "warehouses",
        name: "warehouses",
        // As Databricks ranks them: monitoring includes using.
        levels: &[
            ("CAN_VIEW", "Can view the warehouse"),
            ("CAN_USE", "Can also start it and run statements on it"),
            ("CAN_MONITOR", "Can also monitor it"),
            ("CAN_MANAGE", "Can also stop, edit and delete it and set its permissions"),
            ("IS_OWNER", "Owns the warehouse"),
        ],
    },
    ObjectType { path: "notebooks", name: "notebook", levels: WORKSPACE_LEVELS },
    ObjectType { path: "directories", name: "directory", levels: WORKSPACE_LEVELS },
    ObjectType { path: "repos", name: "repo", levels: WORKSPACE_LEVELS },
];

impl ObjectType {
    pub fn of(path: &str) -> Option<&'static ObjectType> {
        OBJECT_TYPES.iter().find(|t| t.path == path)
    }

    fn rank(&self, level: &str) -> Option<usize> {
        self.levels.iter().position(|(l, _)| *l == level)
    }

    /// The owner's level: IS_OWNER where the type has it, else its strongest.
    fn owner_level(&self) -> &'static str {
        self.levels.last().map_or("CAN_MANAGE", |(l, _)| l)
    }

    fn has_owner_entry(&self) -> bool {
        self.owner_level() == "IS_OWNER"
    }
}

/// An object the API layer found.
#[derive(Debug, Clone)]
pub struct Object {
    pub ty: &'static ObjectType,
    pub id: String,
    /// Who created it: its owner unless an IS_OWNER entry names another.
    pub creator: String,
    /// Objects whose levels flow down to this one, nearest first (a
    /// notebook's directories, up to the root). Their levels are read by
    /// name in this object's type.
    pub parents: Vec<Object>,
}

impl Object {
    pub fn new(ty: &'static ObjectType, id: impl Into<String>, creator: impl Into<String>) -> Self {
        Self { ty, id: id.into(), creator: creator.into(), parents: Vec::new() }
    }

    /// The object, holding at least what each of `parents` grants.
    pub fn with_parents(mut self, parents: Vec<Object>) -> Self {
        self.parents = parents;
        self
    }

    fn path(&self) -> String {
        format!("/{}/{}", self.ty.path, self.id)
    }

    fn describe(&self) -> String {
        format!("{} {}", self.ty.name, self.id)
    }
}

pub struct Permissions {
    store: Arc<Store>,
}

/// An entry's principal as the API names it.
const PRINCIPAL_FIELDS: [(&str, &str); 3] =
    [("user_name", "user"), ("service_principal_name", "service_principal"), ("group_name", "group")];

impl Permissions {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// The direct entries with the owner's: the stored IS_OWNER, else the creator.
    fn entries(&self, object: &Object) -> Result<Vec<ObjectAclRow>> {
        let mut rows = self.store.object_acls(object.ty.path, &object.id)?;
        let owner_kind =
            if self.store.find_service_principal(&object.creator)?.is_some() { "service_principal" } else { "user" };
        if !rows.iter().any(|r| r.level == "IS_OWNER") && !object.creator.is_empty() {
            rows.insert(
                0,
                ObjectAclRow {
                    principal_kind: owner_kind.into(),
                    principal: object.creator.clone(),
                    level: object.ty.owner_level().into(),
                },
            );
        }
        Ok(rows)
    }

    /// The strongest level `caller` holds on `object`, if any.
    pub fn level(&self, caller: &User, object: &Object) -> Result<Option<&'static str>> {
        if caller.admin {
            return Ok(Some(object.ty.owner_level()));
        }
        let mut groups: Vec<String> = self.store.effective_groups(caller.id)?.into_iter().map(|(_, n)| n).collect();
        groups.push(USERS_GROUP.into());
        let mut best = None;
        for (entry, _) in self.all_entries(object)? {
            let mine = match entry.principal_kind.as_str() {
                "group" => groups.contains(&entry.principal),
                _ => entry.principal == caller.user_name,
            };
            if mine {
                best = best.max(object.ty.rank(&entry.level));
            }
        }
        Ok(best.map(|rank| object.ty.levels[rank].0))
    }

    /// The object's entries, then its parents' with the parent each came
    /// from (its path, `/directories/<id>`).
    fn all_entries(&self, object: &Object) -> Result<Vec<(ObjectAclRow, Option<String>)>> {
        let mut all: Vec<(ObjectAclRow, Option<String>)> =
            self.entries(object)?.into_iter().map(|e| (e, None)).collect();
        for parent in &object.parents {
            all.extend(self.entries(parent)?.into_iter().map(|e| (e, Some(parent.path()))));
        }
        Ok(all)
    }

    /// Whether `caller` holds `needed` or stronger.
    pub fn allows(&self, caller: &User, object: &Object, needed: &str) -> Result<bool> {
        let needed = object.ty.rank(needed).unwrap_or(usize::MAX);
        Ok(self.level(caller, object)?.and_then(|l| object.ty.rank(l)).is_some_and(|held| held >= needed))
    }

    /// Refuses with PERMISSION_DENIED unless `caller` holds `needed`.
    pub fn check(&self, caller: &User, object: &Object, needed: &str) -> Result<()> {
        if self.allows(caller, object, needed)? {
            return Ok(());
        }
        Err(IdentityError::PermissionDenied(format!(
            "{} does not have {needed} permissions on {}. Please contact the owner or an administrator for access.",
            caller.user_name,
            object.describe()
        )))
    }

    /// The object's permissions as `get` answers them.
    pub fn view(&self, caller: &User, object: &Object) -> Result<Value> {
        if self.level(caller, object)?.is_none() {
            return Err(IdentityError::PermissionDenied(format!(
                "{} has no permissions on {}",
                caller.user_name,
                object.describe()
            )));
        }
        self.acl(object)
    }

    /// The object's entries as the API shows them, whoever asks.
    fn acl(&self, object: &Object) -> Result<Value> {
        let mut list: Vec<Value> = Vec::new();
        for (entry, from) in self.all_entries(object)? {
            let field =
                PRINCIPAL_FIELDS.iter().find(|(_, k)| *k == entry.principal_kind).map_or("user_name", |(f, _)| f);
            let permission = match from {
                None => json!({"permission_level": entry.level, "inherited": false}),
                Some(from) => {
                    json!({"permission_level": entry.level, "inherited": true, "inherited_from_object": [from]})
                }
            };
            match list.iter_mut().find(|v| v[field] == entry.principal) {
                Some(existing) => {
                    if let Some(all) = existing["all_permissions"].as_array_mut() {
                        all.push(permission);
                    }
                }
                None => {
                    let mut item = Map::new();
                    item.insert(field.into(), json!(entry.principal));
                    item.insert("display_name".into(), json!(self.display_name(&entry)?));
                    item.insert("all_permissions".into(), json!([permission]));
                    list.push(Value::Object(item));
                }
            }
        }
        list.push(json!({
            "group_name": ADMINS_GROUP,
            "all_permissions": [{
                "permission_level": if object.ty.has_owner_entry() { "CAN_MANAGE" } else { object.ty.owner_level() },
                "inherited": true,
                "inherited_from_object": [format!("/{}/", object.ty.path)],
            }],
        }));
        Ok(json!({
            "object_id": object.path(),
            "object_type": object.ty.name,
            "access_control_list": list,
        }))
    }

    fn display_name(&self, entry: &ObjectAclRow) -> Result<String> {
        let principal = match entry.principal_kind.as_str() {
            "service_principal" => self.store.find_service_principal(&entry.principal)?,
            "user" => self.store.find_principal(&entry.principal)?,
            _ => None,
        };
        Ok(principal.map_or_else(|| entry.principal.clone(), |p| p.display_name))
    }

    /// Sets (`replace`, PUT) or merges (PATCH) direct entries; the caller
    /// needs CAN_MANAGE. The owner stays unless an IS_OWNER entry names a
    /// new one.
    pub fn change(&self, caller: &User, object: &Object, acl: &[Value], replace: bool) -> Result<Value> {
        self.check(caller, object, "CAN_MANAGE")?;
        let given = acl.iter().map(|entry| self.entry(object.ty, entry)).collect::<Result<Vec<_>>>()?;
        let owners: Vec<&ObjectAclRow> = given.iter().filter(|e| e.level == "IS_OWNER").collect();
        if owners.len() > 1 || owners.iter().any(|o| o.principal_kind == "group") {
            return Err(IdentityError::InvalidParameter(
                "An object has one owner, a user or a service principal".into(),
            ));
        }
        let stored = self.store.object_acls(object.ty.path, &object.id)?;
        let same =
            |a: &ObjectAclRow, b: &ObjectAclRow| a.principal_kind == b.principal_kind && a.principal == b.principal;
        let mut rows: Vec<ObjectAclRow> = if replace {
            stored.into_iter().filter(|e| e.level == "IS_OWNER" && owners.is_empty()).collect()
        } else {
            stored
                .into_iter()
                .filter(|e| e.level != "IS_OWNER" || owners.is_empty())
                .filter(|e| !given.iter().any(|g| same(g, e)))
                .collect()
        };
        rows.extend(given);
        self.store.set_object_acls(object.ty.path, &object.id, &rows)?;
        // The caller may have just given up its own level: answer regardless.
        self.acl(object)
    }

    fn entry(&self, ty: &ObjectType, entry: &Value) -> Result<ObjectAclRow> {
        let invalid = |m: String| IdentityError::InvalidParameter(m);
        let named: Vec<(&str, &str)> = PRINCIPAL_FIELDS
            .iter()
            .filter_map(|(field, kind)| entry.get(*field).and_then(Value::as_str).map(|name| (*kind, name)))
            .collect();
        let [(kind, name)] = named.as_slice() else {
            return Err(invalid(
                "Each entry names exactly one of user_name, group_name, service_principal_name".into(),
            ));
        };
        let level = entry.get("permission_level").and_then(Value::as_str).unwrap_or_default();
        if ty.rank(level).is_none() {
            let known: Vec<&str> = ty.levels.iter().map(|(l, _)| *l).collect();
            return Err(invalid(format!(
                "Permission level '{level}' is not one of {} for a {}",
                known.join(", "),
                ty.name
            )));
        }
        let exists = match *kind {
            "user" => self.store.find_principal(name)?.is_some(),
            "service_principal" => self.store.find_service_principal(name)?.is_some(),
            _ => self.store.find_group(name)?.is_some(),
        };
        if !exists {
            return Err(invalid(format!("Principal '{name}' does not exist")));
        }
        Ok(ObjectAclRow { principal_kind: (*kind).into(), principal: (*name).into(), level: level.into() })
    }

    /// `permissionLevels` of a type.
    pub fn levels(ty: &ObjectType) -> Value {
        let levels: Vec<Value> =
            ty.levels.iter().map(|(l, d)| json!({"permission_level": l, "description": d})).collect();
        json!({"permission_levels": levels})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User { id: 7, user_name: name.into(), display_name: name.into(), admin: false }
    }

    fn workspace(store: &Arc<Store>) -> (Permissions, Object, Object, Object) {
        let (dir, nb) = (ObjectType::of("directories").unwrap(), ObjectType::of("notebooks").unwrap());
        let root = Object::new(dir, "0", "");
        let folder = Object::new(dir, "5", "owner@x").with_parents(vec![root.clone()]);
        let notebook = Object::new(nb, "9", "owner@x").with_parents(vec![folder.clone(), root.clone()]);
        let grant = |object: &Object, principal_kind: &str, principal: &str, level: &str| {
            let row = ObjectAclRow {
                principal_kind: principal_kind.into(),
                principal: principal.into(),
                level: level.into(),
            };
            store.set_object_acls(object.ty.path, &object.id, &[row]).unwrap();
        };
        grant(&folder, "user", "carol@x", "CAN_EDIT");
        grant(&root, "group", USERS_GROUP, "CAN_READ");
        (Permissions::new(store.clone()), root, folder, notebook)
    }

    #[test]
    fn levels_flow_down_from_every_ancestor_and_the_strongest_wins() {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let (rules, root, _folder, notebook) = workspace(&store);
        assert_eq!(rules.level(&user("carol@x"), &notebook).unwrap(), Some("CAN_EDIT"));
        assert_eq!(rules.level(&user("dave@x"), &notebook).unwrap(), Some("CAN_READ"));
        assert_eq!(rules.level(&user("owner@x"), &notebook).unwrap(), Some("CAN_MANAGE"));
        assert_eq!(rules.level(&user("dave@x"), &root).unwrap(), Some("CAN_READ"));
        assert!(rules.check(&user("carol@x"), &notebook, "CAN_MANAGE").is_err());
        // The inherited entries are shown as such, with where they come from.
        let acl = rules.view(&user("carol@x"), &notebook).unwrap();
        let carol = acl["access_control_list"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["user_name"] == "carol@x")
            .unwrap()
            .clone();
        assert_eq!(carol["all_permissions"][0]["inherited"], true);
        assert_eq!(carol["all_permissions"][0]["inherited_from_object"][0], "/directories/5");
    }
}
