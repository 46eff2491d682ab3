//! The workspace directory as SCIM 2.0 serves it: users, service principals
//! and groups read by anyone, written by admins only. Every write reads the
//! resource as SCIM JSON, changes that JSON (a create's body, a replace's
//! body, or PATCH operations on the current JSON) and writes it back whole,
//! so the three paths accept exactly the same attributes.

use std::sync::Arc;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{ADMINS_GROUP, GroupRow, PrincipalKind, PrincipalRow, PrincipalWriteError, Store, USERS_GROUP, User};

use crate::error::{IdentityError, Result};
use crate::filter::{Filter, field};
use crate::patch;

/// Entitlements a principal or group can hold.
pub const ENTITLEMENTS: &[&str] = &[
    "workspace-access",
    "workspace-consume",
    "databricks-sql-access",
    "allow-cluster-create",
    "allow-instance-pool-create",
];

const LIST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:ListResponse";
/// Most resources one list page returns.
const MAX_COUNT: usize = 10_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceKind {
    Users,
    ServicePrincipals,
    Groups,
}

impl ResourceKind {
    /// The kind a SCIM path segment names.
    pub fn from_segment(segment: &str) -> Option<Self> {
        match segment {
            "Users" => Some(Self::Users),
            "ServicePrincipals" => Some(Self::ServicePrincipals),
            "Groups" => Some(Self::Groups),
            _ => None,
        }
    }

    fn schema(self) -> &'static str {
        match self {
            Self::Users => "urn:ietf:params:scim:schemas:core:2.0:User",
            Self::ServicePrincipals => "urn:ietf:params:scim:schemas:core:2.0:ServicePrincipal",
            Self::Groups => "urn:ietf:params:scim:schemas:core:2.0:Group",
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Self::Users => "User",
            Self::ServicePrincipals => "Service principal",
            Self::Groups => "Group",
        }
    }

    fn principal_kind(self) -> Option<PrincipalKind> {
        match self {
            Self::Users => Some(PrincipalKind::User),
            Self::ServicePrincipals => Some(PrincipalKind::ServicePrincipal),
            Self::Groups => None,
        }
    }
}

/// A list request's query parameters.
#[derive(Debug, Default, Clone)]
pub struct ListQuery {
    pub filter: Option<String>,
    pub start_index: Option<usize>,
    pub count: Option<usize>,
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
    pub sort_by: Option<String>,
    pub sort_order: Option<String>,
}

/// Which attributes a response carries.
#[derive(Debug, Default, Clone)]
pub struct Projection {
    pub attributes: Option<String>,
    pub excluded_attributes: Option<String>,
}

impl Projection {
    fn apply(&self, mut resource: Value) -> Value {
        let names = |text: &Option<String>| -> Option<Vec<String>> {
            text.as_ref().map(|t| t.split(',').map(|n| n.trim().to_ascii_lowercase()).collect())
        };
        if let Some(object) = resource.as_object_mut() {
            if let Some(keep) = names(&self.attributes) {
                object.retain(|k, _| k == "id" || k == "schemas" || keep.contains(&k.to_ascii_lowercase()));
            }
            if let Some(drop) = names(&self.excluded_attributes) {
                object.retain(|k, _| k == "id" || k == "schemas" || !drop.contains(&k.to_ascii_lowercase()));
            }
        }
        resource
    }
}

pub struct Directory {
    pub(crate) store: Arc<Store>,
}

fn not_found(kind: ResourceKind, id: &str) -> IdentityError {
    IdentityError::NotFound(format!("{} {id} not found", kind.noun()))
}

fn invalid(message: impl Into<String>) -> IdentityError {
    IdentityError::InvalidParameter(message.into())
}

pub(crate) fn require_admin(caller: &User, what: &str) -> Result<()> {
    if caller.admin {
        return Ok(());
    }
    Err(IdentityError::PermissionDenied(format!("Only workspace admins can {what}")))
}

impl Directory {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    /// One page of a kind's resources, as the SDK pages: from `startIndex`
    /// (1-based), at most `count`, an empty page past the end.
    pub fn list(&self, kind: ResourceKind, query: &ListQuery) -> Result<Value> {
        let filter = query.filter.as_deref().filter(|f| !f.trim().is_empty()).map(Filter::parse).transpose()?;
        let mut resources: Vec<Value> =
            self.all(kind)?.into_iter().filter(|r| filter.as_ref().is_none_or(|f| f.matches(r))).collect();
        if let Some(sort_by) = &query.sort_by {
            let key = |r: &Value| field(r, sort_by).map(|v| v.as_str().map_or(v.to_string(), str::to_lowercase));
            resources.sort_by_key(key);
            if query.sort_order.as_deref().is_some_and(|o| o.eq_ignore_ascii_case("descending")) {
                resources.reverse();
            }
        }
        let total = resources.len();
        let start = query.start_index.unwrap_or(1).max(1);
        let count = query.count.unwrap_or(MAX_COUNT).min(MAX_COUNT);
        let projection =
            Projection { attributes: query.attributes.clone(), excluded_attributes: query.excluded_attributes.clone() };
        let page: Vec<Value> = resources.into_iter().skip(start - 1).take(count).map(|r| projection.apply(r)).collect();
        Ok(json!({
            "schemas": [LIST_SCHEMA],
            "totalResults": total,
            "startIndex": start,
            "itemsPerPage": page.len(),
            "Resources": page,
        }))
    }

    pub fn get(&self, kind: ResourceKind, id: &str, projection: &Projection) -> Result<Value> {
        let id = parse_id(kind, id)?;
        let resource = self.view(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
        Ok(projection.apply(resource))
    }

    /// Whether `user` holds `entitlement`, its own or through a group it is
    /// in (`users` included); admins hold them all.
    pub fn entitled(&self, user: &User, entitlement: &str) -> Result<bool> {
        if user.admin {
            return Ok(true);
        }
        let own = self.store.get_principal(user.id)?.is_some_and(|p| p.entitlements.iter().any(|e| e == entitlement));
        if own {
            return Ok(true);
        }
        let mut groups: Vec<String> = self.store.effective_groups(user.id)?.into_iter().map(|(_, name)| name).collect();
        groups.push(tarn_store::USERS_GROUP.to_string());
        for name in groups {
            if self.store.find_group(&name)?.is_some_and(|g| g.entitlements.iter().any(|e| e == entitlement)) {
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// The caller as a SCIM user (or service principal).
    pub fn me(&self, caller: &User) -> Result<Value> {
        let row = self.store.get_principal(caller.id)?.ok_or_else(|| not_found(ResourceKind::Users, "me"))?;
        self.principal_view(&row)
    }

    pub fn create(&self, caller: &User, kind: ResourceKind, body: &Value) -> Result<Value> {
        require_admin(caller, &format!("create a {}", kind.noun().to_lowercase()))?;
        let id = match kind.principal_kind() {
            Some(principal_kind) => {
                let row = principal_row(principal_kind, body, None)?;
                let row = self.store.insert_principal(&row, now_ms()).map_err(|e| taken(e, kind, &row.user_name))?;
                self.set_groups(row.id, body)?;
                row.id
            }
            None => {
                let row = self.group_row(body, None)?;
                self.store.insert_group(&row, now_ms()).map_err(|e| taken(e, kind, &row.display_name))?.id
            }
        };
        self.view(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))
    }

    /// Replaces a resource with `body` (PUT).
    pub fn replace(&self, caller: &User, kind: ResourceKind, id: &str, body: &Value) -> Result<Value> {
        require_admin(caller, &format!("change a {}", kind.noun().to_lowercase()))?;
        let id = parse_id(kind, id)?;
        self.view(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
        self.write(kind, id, body)
    }

    /// Applies a PatchOp body's operations.
    pub fn patch(&self, caller: &User, kind: ResourceKind, id: &str, body: &Value) -> Result<Value> {
        require_admin(caller, &format!("change a {}", kind.noun().to_lowercase()))?;
        let id = parse_id(kind, id)?;
        let mut resource = self.view(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
        let operations = field(body, "Operations").and_then(Value::as_array).cloned().unwrap_or_default();
        patch::apply(&mut resource, &operations)?;
        self.write(kind, id, &resource)
    }

    pub fn delete(&self, caller: &User, kind: ResourceKind, id: &str) -> Result<()> {
        require_admin(caller, &format!("delete a {}", kind.noun().to_lowercase()))?;
        let id = parse_id(kind, id)?;
        let deleted = match kind {
            ResourceKind::Groups => {
                let group = self.store.get_group(id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
                if [ADMINS_GROUP, USERS_GROUP].contains(&group.display_name.as_str()) {
                    return Err(invalid(format!("The '{}' group cannot be deleted", group.display_name)));
                }
                self.store.delete_group(id)?
            }
            _ => {
                if id == caller.id {
                    return Err(invalid("A principal cannot delete itself"));
                }
                self.principal(kind, id)?.is_some() && self.store.delete_principal(id)?
            }
        };
        if !deleted {
            return Err(not_found(kind, &id.to_string()));
        }
        Ok(())
    }

    fn write(&self, kind: ResourceKind, id: i64, body: &Value) -> Result<Value> {
        match kind.principal_kind() {
            Some(principal_kind) => {
                let current = self.principal(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
                let row = principal_row(principal_kind, body, Some(&current))?;
                self.store.update_principal(&row).map_err(|e| taken(e, kind, &row.user_name))?;
                self.set_groups(id, body)?;
            }
            None => {
                let current = self.store.get_group(id)?.ok_or_else(|| not_found(kind, &id.to_string()))?;
                let row = self.group_row(body, Some(&current))?;
                self.store.update_group(&row).map_err(|e| taken(e, kind, &row.display_name))?;
            }
        }
        self.view(kind, id)?.ok_or_else(|| not_found(kind, &id.to_string()))
    }

    /// Every resource of a kind as SCIM JSON.
    fn all(&self, kind: ResourceKind) -> Result<Vec<Value>> {
        match kind.principal_kind() {
            Some(principal_kind) => {
                self.store.list_principals(principal_kind)?.iter().map(|p| self.principal_view(p)).collect()
            }
            None => self.store.list_groups()?.iter().map(|g| self.group_view(g)).collect(),
        }
    }

    fn principal(&self, kind: ResourceKind, id: i64) -> Result<Option<PrincipalRow>> {
        Ok(self.store.get_principal(id)?.filter(|p| Some(p.kind) == kind.principal_kind()))
    }

    fn view(&self, kind: ResourceKind, id: i64) -> Result<Option<Value>> {
        match kind {
            ResourceKind::Groups => self.store.get_group(id)?.map(|g| self.group_view(&g)).transpose(),
            _ => self.principal(kind, id)?.map(|p| self.principal_view(&p)).transpose(),
        }
    }

    /// The groups a principal or group is in: direct ones, then the rest.
    fn groups_of(&self, member: i64) -> Result<Vec<Value>> {
        let direct = self.store.direct_groups(member)?;
        let all = self.store.effective_groups(member)?;
        Ok(all
            .into_iter()
            .map(|(id, name)| {
                let kind = if direct.iter().any(|(d, _)| *d == id) { "direct" } else { "indirect" };
                json!({"value": id.to_string(), "display": name, "type": kind, "$ref": format!("Groups/{id}")})
            })
            .collect())
    }

    fn principal_view(&self, p: &PrincipalRow) -> Result<Value> {
        let kind = if p.kind == PrincipalKind::User { ResourceKind::Users } else { ResourceKind::ServicePrincipals };
        let mut view = json!({
            "schemas": [kind.schema()],
            "id": p.id.to_string(),
            "displayName": p.display_name,
            "active": p.active,
            "entitlements": p.entitlements.iter().map(|e| json!({"value": e})).collect::<Vec<_>>(),
            "groups": self.groups_of(p.id)?,
            "roles": [],
        });
        match p.kind {
            PrincipalKind::User => {
                view["userName"] = json!(p.user_name);
                view["emails"] = json!([{"value": p.user_name, "type": "work", "primary": true}]);
                let mut name = serde_json::Map::new();
                if let Some(given) = &p.given_name {
                    name.insert("givenName".into(), json!(given));
                }
                if let Some(family) = &p.family_name {
                    name.insert("familyName".into(), json!(family));
                }
                if !name.is_empty() {
                    view["name"] = Value::Object(name);
                }
            }
            PrincipalKind::ServicePrincipal => {
                view["applicationId"] = json!(p.application_id.as_deref().unwrap_or(&p.user_name));
            }
        }
        if let Some(external) = &p.external_id {
            view["externalId"] = json!(external);
        }
        Ok(view)
    }

    fn group_view(&self, g: &GroupRow) -> Result<Value> {
        let member_ids: Vec<i64> = if g.display_name == USERS_GROUP {
            let users = self.store.list_principals(PrincipalKind::User)?;
            let sps = self.store.list_principals(PrincipalKind::ServicePrincipal)?;
            users.into_iter().chain(sps).filter(|p| p.active).map(|p| p.id).collect()
        } else {
            g.members.clone()
        };
        let mut members = Vec::new();
        for id in member_ids {
            let (display, segment) = match self.store.get_principal(id)? {
                Some(p) if p.kind == PrincipalKind::User => (p.user_name, "Users"),
                Some(p) => (p.display_name, "ServicePrincipals"),
                None => match self.store.get_group(id)? {
                    Some(group) => (group.display_name, "Groups"),
                    None => continue,
                },
            };
            members.push(json!({"value": id.to_string(), "display": display, "$ref": format!("{segment}/{id}")}));
        }
        let mut view = json!({
            "schemas": [ResourceKind::Groups.schema()],
            "id": g.id.to_string(),
            "displayName": g.display_name,
            "members": members,
            "entitlements": g.entitlements.iter().map(|e| json!({"value": e})).collect::<Vec<_>>(),
            "groups": self.groups_of(g.id)?,
            "roles": [],
            "meta": {"resourceType": "WorkspaceGroup"},
        });
        if let Some(external) = &g.external_id {
            view["externalId"] = json!(external);
        }
        Ok(view)
    }

    /// Makes the body's `groups` (if it names any) the principal's direct groups.
    fn set_groups(&self, member: i64, body: &Value) -> Result<()> {
        let Some(groups) = field(body, "groups") else { return Ok(()) };
        let mut ids = Vec::new();
        for value in ids_of(groups, "groups")? {
            let group = self.store.get_group(value)?.ok_or_else(|| invalid(format!("Group {value} does not exist")))?;
            if group.display_name != USERS_GROUP {
                ids.push(value);
            }
        }
        // Only direct memberships are written; `indirect` items come back from a read.
        let direct: Vec<i64> = groups
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .filter(|i| field(i, "type").and_then(Value::as_str) != Some("indirect"))
                    .filter_map(|i| field(i, "value").and_then(id_value))
                    .collect()
            })
            .unwrap_or_default();
        ids.retain(|id| direct.contains(id));
        Ok(self.store.set_direct_groups(member, &ids)?)
    }

    fn group_row(&self, body: &Value, current: Option<&GroupRow>) -> Result<GroupRow> {
        let display_name = text(body, "displayName")
            .or_else(|| current.map(|c| c.display_name.clone()))
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| invalid("A group needs a displayName"))?;
        let builtin = |name: &str| [ADMINS_GROUP, USERS_GROUP].contains(&name);
        if let Some(current) = current
            && builtin(&current.display_name)
            && current.display_name != display_name
        {
            return Err(invalid(format!("The '{}' group cannot be renamed", current.display_name)));
        }
        let members = match field(body, "members") {
            None => current.map(|c| c.members.clone()).unwrap_or_default(),
            Some(_) if display_name == USERS_GROUP => {
                return Err(invalid("The 'users' group holds every active user; its members cannot be set"));
            }
            Some(members) => ids_of(members, "members")?,
        };
        for member in &members {
            if Some(*member) == current.map(|c| c.id) {
                return Err(invalid("A group cannot be a member of itself"));
            }
            if self.store.get_principal(*member)?.is_none() && self.store.get_group(*member)?.is_none() {
                return Err(invalid(format!("Member {member} does not exist")));
            }
        }
        Ok(GroupRow {
            id: current.map_or(0, |c| c.id),
            display_name,
            external_id: text(body, "externalId"),
            entitlements: entitlements_of(body)?,
            members,
        })
    }
}

fn parse_id(kind: ResourceKind, id: &str) -> Result<i64> {
    id.parse().map_err(|_| not_found(kind, id))
}

fn id_value(v: &Value) -> Option<i64> {
    v.as_str().and_then(|s| s.parse().ok()).or_else(|| v.as_i64())
}

/// The ids in a list of `{"value": id}` items.
fn ids_of(list: &Value, what: &str) -> Result<Vec<i64>> {
    let items = list.as_array().ok_or_else(|| invalid(format!("'{what}' must be a list")))?;
    items
        .iter()
        .map(|item| {
            field(item, "value")
                .and_then(id_value)
                .ok_or_else(|| invalid(format!("each of '{what}' needs a numeric 'value'")))
        })
        .collect()
}

fn text(body: &Value, name: &str) -> Option<String> {
    field(body, name).and_then(Value::as_str).map(str::to_string)
}

fn entitlements_of(body: &Value) -> Result<Vec<String>> {
    let Some(list) = field(body, "entitlements") else { return Ok(Vec::new()) };
    let items = list.as_array().ok_or_else(|| invalid("'entitlements' must be a list"))?;
    let mut out = Vec::new();
    for item in items {
        let name =
            field(item, "value").and_then(Value::as_str).ok_or_else(|| invalid("each entitlement needs a 'value'"))?;
        if !ENTITLEMENTS.contains(&name) {
            return Err(invalid(format!("Unknown entitlement '{name}': one of {}", ENTITLEMENTS.join(", "))));
        }
        if !out.iter().any(|e| e == name) {
            out.push(name.to_string());
        }
    }
    Ok(out)
}

fn active_of(body: &Value, current: Option<&PrincipalRow>) -> Result<bool> {
    match field(body, "active") {
        None | Some(Value::Null) => Ok(current.is_none_or(|c| c.active)),
        Some(Value::Bool(b)) => Ok(*b),
        // Some provisioning clients send "True"/"False".
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => Ok(true),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => Ok(false),
        Some(other) => Err(invalid(format!("'active' must be true or false, not {other}"))),
    }
}

/// A user or service principal from its SCIM JSON; `current` for a replace
/// or patch, whose name cannot change.
fn principal_row(kind: PrincipalKind, body: &Value, current: Option<&PrincipalRow>) -> Result<PrincipalRow> {
    let user_name = match kind {
        PrincipalKind::User => {
            let given = text(body, "userName").filter(|n| !n.trim().is_empty());
            match (current, given) {
                (Some(c), Some(n)) if !n.eq_ignore_ascii_case(&c.user_name) => {
                    return Err(invalid(format!("userName cannot change (it is '{}')", c.user_name)));
                }
                (Some(c), _) => c.user_name.clone(),
                (None, Some(n)) => n,
                (None, None) => return Err(invalid("A user needs a userName")),
            }
        }
        PrincipalKind::ServicePrincipal => {
            let given = text(body, "applicationId").filter(|n| !n.trim().is_empty());
            match (current, given) {
                (Some(c), Some(n)) if Some(&n) != c.application_id.as_ref() => {
                    return Err(invalid("applicationId cannot change"));
                }
                (Some(c), _) => c.user_name.clone(),
                (None, Some(n)) => n,
                (None, None) => uuid::Uuid::new_v4().to_string(),
            }
        }
    };
    let name = field(body, "name");
    let name_part = |part: &str| name.and_then(|n| field(n, part)).and_then(Value::as_str).map(str::to_string);
    Ok(PrincipalRow {
        id: current.map_or(0, |c| c.id),
        kind,
        display_name: text(body, "displayName").filter(|n| !n.trim().is_empty()).unwrap_or_else(|| user_name.clone()),
        application_id: (kind == PrincipalKind::ServicePrincipal).then(|| user_name.clone()),
        active: active_of(body, current)?,
        external_id: text(body, "externalId"),
        given_name: name_part("givenName"),
        family_name: name_part("familyName"),
        entitlements: entitlements_of(body)?,
        user_name,
    })
}

fn taken(e: PrincipalWriteError, kind: ResourceKind, name: &str) -> IdentityError {
    match e {
        PrincipalWriteError::Taken => {
            IdentityError::AlreadyExists(format!("{} with name {name} already exists.", kind.noun()))
        }
        PrincipalWriteError::Store(e) => e.into(),
    }
}
