//! Unity Catalog privileges: which apply to which kind of object, who
//! holds what on an object, what each operation needs, and changes to the
//! grants. A principal holds a privilege on an object when it owns the
//! object or when the privilege (or ALL_PRIVILEGES) was granted on the
//! object or on the catalog or schema above it, to it, to a group it is in
//! (nested groups count) or to `account users`. Reaching anything in a
//! schema also needs USE_CATALOG and USE_SCHEMA, as on Databricks. Owners
//! of a container may manage (and grant on) what it holds but read no data
//! through that alone. Admins pass every check.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use tarn_store::{UcObject, User};

use crate::names::FullName;
use crate::{Catalog, CatalogError, Kind, Result};

/// The group every principal is in, as Unity Catalog names it.
pub const ACCOUNT_USERS: &str = "account users";
/// The workspace's own name for everyone, accepted as a synonym.
const WORKSPACE_USERS: &str = "users";
/// How long a claimed owner waits for its table to be created.
const CLAIM_TTL: Duration = Duration::from_secs(600);

const ALL_KINDS: &[Kind] = &[Kind::Catalog, Kind::Schema, Kind::Table, Kind::Volume];
const CONTAINERS: &[Kind] = &[Kind::Catalog, Kind::Schema];

/// Each privilege tarn knows and the kinds it can be granted on (a grant on
/// a container reaches what it holds).
const PRIVILEGES: &[(&str, &[Kind])] = &[
    ("ALL_PRIVILEGES", ALL_KINDS),
    ("MANAGE", ALL_KINDS),
    ("APPLY_TAG", ALL_KINDS),
    ("BROWSE", &[Kind::Catalog]),
    ("USE_CATALOG", &[Kind::Catalog]),
    ("CREATE_SCHEMA", &[Kind::Catalog]),
    ("USE_SCHEMA", CONTAINERS),
    ("CREATE_TABLE", CONTAINERS),
    ("CREATE_VOLUME", CONTAINERS),
    ("CREATE_FUNCTION", CONTAINERS),
    ("CREATE_MODEL", CONTAINERS),
    ("CREATE_MATERIALIZED_VIEW", CONTAINERS),
    ("EXECUTE", CONTAINERS),
    ("SELECT", &[Kind::Catalog, Kind::Schema, Kind::Table]),
    ("MODIFY", &[Kind::Catalog, Kind::Schema, Kind::Table]),
    ("REFRESH", &[Kind::Catalog, Kind::Schema, Kind::Table]),
    ("READ_VOLUME", &[Kind::Catalog, Kind::Schema, Kind::Volume]),
    ("WRITE_VOLUME", &[Kind::Catalog, Kind::Schema, Kind::Volume]),
];

/// What the workspace catalog grants everyone on Databricks; tarn grants
/// the same on `main` and `main.default` when it creates them.
pub(crate) const DEFAULT_CATALOG_GRANTS: &[&str] = &["USE_CATALOG"];
pub(crate) const DEFAULT_SCHEMA_GRANTS: &[&str] =
    &["USE_SCHEMA", "CREATE_TABLE", "CREATE_VOLUME", "CREATE_FUNCTION", "CREATE_MODEL", "CREATE_MATERIALIZED_VIEW"];

/// A privilege's canonical name: `use catalog` and `USE_CATALOG` are one.
pub fn privilege_name(raw: &str) -> Option<&'static str> {
    let wanted = raw.trim().to_uppercase().replace([' ', '-'], "_");
    let wanted = if wanted == "ALL" { "ALL_PRIVILEGES".to_string() } else { wanted };
    PRIVILEGES.iter().map(|(name, _)| *name).find(|name| *name == wanted)
}

fn spaced(privilege: &str) -> String {
    privilege.replace('_', " ")
}

/// The caller as Unity Catalog sees it: its name and every group it is in.
#[derive(Debug, Clone)]
pub struct Principal {
    pub name: String,
    pub groups: Vec<String>,
    pub admin: bool,
}

impl Principal {
    /// Whether `grantee` (a user, a group, `account users`) names this
    /// principal: what a grant or an owner applies to.
    pub fn is(&self, grantee: &str) -> bool {
        grantee == self.name
            || grantee == ACCOUNT_USERS
            || grantee == WORKSPACE_USERS
            || self.groups.iter().any(|g| g == grantee)
    }
}

/// What an operation needs on the object it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// See it in a list or read its metadata: ownership of it or a
    /// container, or any privilege held on it.
    Browse,
    Select,
    Modify,
    ReadVolume,
    WriteVolume,
    /// Create an object of this kind in this container.
    Create(Kind),
    /// Create a registered model in this schema: CREATE_MODEL. Models live
    /// in the MLflow registry, not among the catalog's objects, so they
    /// have no [`Kind`].
    CreateModel,
    /// Reach what this container holds: USE_CATALOG (and USE_SCHEMA on a
    /// schema), as reading a registered model needs.
    Use,
    /// Alter, rename or drop it, or change its grants: ownership of it or
    /// a container, or MANAGE.
    Manage,
}

/// One change of `w.grants.update`.
#[derive(Debug, Clone, Default)]
pub struct GrantChange {
    pub principal: String,
    pub add: Vec<String>,
    pub remove: Vec<String>,
}

/// A principal's privileges on an object; `inherited_from` names the
/// container a privilege was granted on, when not the object itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldPrivilege {
    pub privilege: String,
    pub inherited_from: Option<(Kind, String)>,
}

/// An object with the catalog and schema above it, outermost first, and
/// every grant on any of them.
struct Chain {
    objects: Vec<(Kind, UcObject)>,
    grants: Vec<(String, String, String)>,
}

impl Chain {
    fn owner(&self, level: usize) -> Option<&str> {
        self.objects.get(level).and_then(|(_, o)| o.info.get("owner")).and_then(Value::as_str)
    }

    fn owns(&self, p: &Principal, level: usize) -> bool {
        self.owner(level).is_some_and(|owner| p.is(owner))
    }

    fn owns_any(&self, p: &Principal) -> bool {
        (0..self.objects.len()).any(|level| self.owns(p, level))
    }

    /// Grants to `p` on the object at `level` or above it.
    fn granted<'a>(&'a self, p: &'a Principal, level: usize) -> impl Iterator<Item = &'a str> + 'a {
        let ids: Vec<&str> = self.objects[..=level].iter().map(|(_, o)| o.id.as_str()).collect();
        self.grants
            .iter()
            .filter(move |(id, grantee, _)| ids.contains(&id.as_str()) && p.is(grantee))
            .map(|(_, _, privilege)| privilege.as_str())
    }

    /// Whether `p` holds `privilege` on the object at `level`.
    fn holds(&self, p: &Principal, level: usize, privilege: &str) -> bool {
        self.owns(p, level)
            || self.granted(p, level).any(|g| g == privilege || (g == "ALL_PRIVILEGES" && privilege != "MANAGE"))
    }

    fn denied(&self, level: usize, privilege: &str) -> CatalogError {
        let (kind, object) = &self.objects[level];
        CatalogError::PermissionDenied(format!(
            "User does not have {} on {kind} '{}'.",
            spaced(privilege),
            object.full_name
        ))
    }

    /// USE_CATALOG and USE_SCHEMA on the containers above `level` (and on
    /// `level` itself when `including`).
    fn can_use(&self, p: &Principal, level: usize, including: bool) -> Result<()> {
        let last = if including { level + 1 } else { level };
        for l in 0..last.min(2) {
            let privilege = if l == 0 { "USE_CATALOG" } else { "USE_SCHEMA" };
            if !self.holds(p, l, privilege) {
                return Err(self.denied(l, privilege));
            }
        }
        Ok(())
    }
}

impl Catalog {
    /// `user` as grants name it, with its groups.
    pub fn principal(&self, user: &User) -> Result<Principal> {
        let groups = self.store.effective_groups(user.id)?.into_iter().map(|(_, name)| name).collect();
        Ok(Principal { name: user.user_name.clone(), groups, admin: user.admin })
    }

    fn chain(&self, kind: Kind, full_name: &str) -> Result<Chain> {
        let name = FullName::parse(kind, full_name)?;
        let kinds = [Kind::Catalog, Kind::Schema, kind];
        let mut objects = Vec::new();
        for depth in 1..=name.parts.len() {
            let kind = kinds[(depth - 1).min(2)];
            objects.push((kind, self.load(kind, &name.parts[..depth].join("."))?));
        }
        let ids: Vec<&str> = objects.iter().map(|(_, o)| o.id.as_str()).collect();
        let grants = self.store.uc_grants(&ids)?;
        Ok(Chain { objects, grants })
    }

    /// Refuses with PERMISSION_DENIED unless `p` may do `action` on the
    /// object (NOT_FOUND first when it does not exist).
    pub fn authorize(&self, p: &Principal, kind: Kind, full_name: &str, action: Action) -> Result<()> {
        let chain = self.chain(kind, full_name)?;
        if p.admin {
            return Ok(());
        }
        let level = chain.objects.len() - 1;
        let need = |privilege: &str| {
            chain.can_use(p, level, false)?;
            if chain.holds(p, level, privilege) { Ok(()) } else { Err(chain.denied(level, privilege)) }
        };
        match action {
            Action::Browse => {
                if chain.owns_any(p) {
                    return Ok(());
                }
                chain.can_use(p, level, false)?;
                let kind = chain.objects[level].0;
                let applies = |g: &str| g == "BROWSE" || PRIVILEGES.iter().any(|(n, k)| *n == g && k.contains(&kind));
                if chain.granted(p, level).any(applies) {
                    return Ok(());
                }
                Err(CatalogError::PermissionDenied(format!(
                    "User does not have any privilege on {kind} '{}'.",
                    chain.objects[level].1.full_name
                )))
            }
            Action::Select => need("SELECT"),
            Action::Modify => need("MODIFY"),
            Action::ReadVolume => need("READ_VOLUME"),
            Action::WriteVolume => need("WRITE_VOLUME"),
            Action::Create(child) => {
                chain.can_use(p, level, true)?;
                let privilege = match child {
                    Kind::Schema => "CREATE_SCHEMA",
                    Kind::Volume => "CREATE_VOLUME",
                    _ => "CREATE_TABLE",
                };
                if chain.holds(p, level, privilege) { Ok(()) } else { Err(chain.denied(level, privilege)) }
            }
            Action::CreateModel => {
                chain.can_use(p, level, true)?;
                if chain.holds(p, level, "CREATE_MODEL") { Ok(()) } else { Err(chain.denied(level, "CREATE_MODEL")) }
            }
            Action::Use => chain.can_use(p, level, true),
            Action::Manage => {
                if chain.owns_any(p) || chain.holds(p, level, "MANAGE") {
                    Ok(())
                } else {
                    Err(CatalogError::PermissionDenied(format!(
                        "User is not an owner of {} '{}' and does not have MANAGE on it.",
                        chain.objects[level].0, chain.objects[level].1.full_name
                    )))
                }
            }
        }
    }

    /// Refuses unless `p` may read (with `write`, write) the volume file at
    /// `path` (`/Volumes/<catalog>/<schema>/<volume>/...`): READ_VOLUME or
    /// WRITE_VOLUME. A path outside any volume is INVALID_ARGUMENT.
    pub fn authorize_volume_file(&self, p: &Principal, path: &str, write: bool) -> Result<()> {
        let volume: Vec<&str> =
            path.strip_prefix("/Volumes/").map_or_else(Vec::new, |rest| rest.split('/').take(3).collect());
        if volume.len() < 3 {
            return Err(CatalogError::InvalidArgument(format!("{path} is not a volume's path")));
        }
        let action = if write { Action::WriteVolume } else { Action::ReadVolume };
        self.authorize(p, Kind::Volume, &volume.join("."), action)
    }

    /// Whether `p` may see the object in a list.
    pub fn visible(&self, p: &Principal, kind: Kind, full_name: &str) -> bool {
        p.admin || self.authorize(p, kind, full_name, Action::Browse).is_ok()
    }

    /// The privileges granted directly on the object, by principal (only
    /// `principal`'s when given).
    pub fn grants(
        &self,
        kind: Kind,
        full_name: &str,
        principal: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<String>>> {
        let chain = self.chain(kind, full_name)?;
        let Some((_, object)) = chain.objects.last() else { return Ok(BTreeMap::new()) };
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (id, grantee, privilege) in &chain.grants {
            if *id == object.id && principal.is_none_or(|p| p == grantee) {
                out.entry(grantee.clone()).or_default().push(privilege.clone());
            }
        }
        Ok(out)
    }

    /// The privileges each principal holds on the object through grants on
    /// it and on its containers.
    pub fn effective_grants(
        &self,
        kind: Kind,
        full_name: &str,
        principal: Option<&str>,
    ) -> Result<BTreeMap<String, Vec<HeldPrivilege>>> {
        let chain = self.chain(kind, full_name)?;
        let level = chain.objects.len() - 1;
        let mut out: BTreeMap<String, Vec<HeldPrivilege>> = BTreeMap::new();
        for (id, grantee, privilege) in &chain.grants {
            let Some(at) = chain.objects.iter().position(|(_, o)| o.id == *id) else { continue };
            let applies =
                PRIVILEGES.iter().any(|(name, kinds)| name == privilege && kinds.contains(&chain.objects[level].0));
            if principal.is_some_and(|p| p != grantee) || (!applies && at != level) {
                continue;
            }
            let inherited_from = (at != level).then(|| (chain.objects[at].0, chain.objects[at].1.full_name.clone()));
            out.entry(grantee.clone())
                .or_default()
                .push(HeldPrivilege { privilege: privilege.clone(), inherited_from });
        }
        Ok(out)
    }

    /// Applies `changes` to the object's grants: `p` must own it or a
    /// container, or hold MANAGE; every privilege must apply to its kind and
    /// every principal exist. Nothing changes unless all do.
    pub fn update_grants(&self, p: &Principal, kind: Kind, full_name: &str, changes: &[GrantChange]) -> Result<()> {
        self.authorize(p, kind, full_name, Action::Manage)?;
        let chain = self.chain(kind, full_name)?;
        let Some((kind, object)) = chain.objects.last() else { return Ok(()) };
        let (mut add, mut remove) = (Vec::new(), Vec::new());
        for change in changes {
            self.require_principal(&change.principal)?;
            for (list, out) in [(&change.add, &mut add), (&change.remove, &mut remove)] {
                for raw in list {
                    let privilege = applicable(raw, *kind)?;
                    out.push((change.principal.clone(), privilege.to_string()));
                }
            }
        }
        Ok(self.store.change_uc_grants(&object.id, &add, &remove)?)
    }

    fn require_principal(&self, name: &str) -> Result<()> {
        let known = name == ACCOUNT_USERS
            || name == WORKSPACE_USERS
            || self.store.find_principal(name)?.is_some()
            || self.store.find_service_principal(name)?.is_some()
            || self.store.find_group(name)?.is_some();
        if known {
            Ok(())
        } else {
            Err(CatalogError::InvalidArgument(format!("Could not find principal with name {name}")))
        }
    }

    /// Grants `privileges` to everyone on a new object (the defaults of
    /// `main` and `main.default`).
    pub(crate) fn grant_everyone(&self, id: &str, privileges: &[&str]) -> Result<()> {
        let add: Vec<(String, String)> =
            privileges.iter().map(|p| (ACCOUNT_USERS.to_string(), (*p).to_string())).collect();
        Ok(self.store.change_uc_grants(id, &add, &[])?)
    }

    /// Makes `owner` the owner of the table `full_name` when it is created
    /// next (within ten minutes): an engine registers the tables a session
    /// creates with its own credential, and the gateway, which knows the
    /// session's principal, claims them first.
    pub fn claim_owner(&self, full_name: &str, owner: &str) {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.retain(|_, (_, at)| at.elapsed() < CLAIM_TTL);
        claims.insert(full_name.to_string(), (owner.to_string(), Instant::now()));
    }

    /// The owner claimed for a table being created, if any (the claim is used up).
    pub(crate) fn take_claim(&self, full_name: &str) -> Option<String> {
        let mut claims = self.claims.lock().unwrap_or_else(|p| p.into_inner());
        claims.remove(full_name).filter(|(_, at)| at.elapsed() < CLAIM_TTL).map(|(owner, _)| owner)
    }
}

/// `raw`'s canonical name if it can be granted on `kind`.
fn applicable(raw: &str, kind: Kind) -> Result<&'static str> {
    let name = privilege_name(raw)
        .ok_or_else(|| CatalogError::InvalidArgument(format!("Privilege {raw} is not a Unity Catalog privilege")))?;
    let kinds = PRIVILEGES.iter().find(|(n, _)| *n == name).map_or(&[][..], |(_, k)| *k);
    if kinds.contains(&kind) {
        Ok(name)
    } else {
        Err(CatalogError::InvalidArgument(format!(
            "Privilege {name} is not applicable to this entity: {}",
            kind.as_str()
        )))
    }
}

/// How many children a filtered list reads from the store at a time.
const LIST_BATCH: u64 = 500;

/// Whether privilege `g` held on or above an object of `kind` lets its
/// holder see it (what [`Action::Browse`] accepts).
fn shows(g: &str, kind: Kind) -> bool {
    g == "BROWSE" || PRIVILEGES.iter().any(|(n, k)| *n == g && k.contains(&kind))
}

impl Catalog {
    /// One page of the objects of `kind` under `parent` (a catalog or
    /// `catalog.schema`; empty for catalogs) that `p` may see, as
    /// [`Catalog::visible`] decides, by name: `limit` of them from `offset`
    /// (counted among those `p` sees), and whether more follow. When `p`
    /// sees every child (an admin, an owner of a container, a privilege
    /// held on one) the page is read as stored; otherwise children are read
    /// in batches and their own owners and grants checked, the container's
    /// chain once.
    pub fn list_visible(
        &self,
        p: &Principal,
        kind: Kind,
        parent: &[&str],
        offset: u64,
        limit: u64,
    ) -> Result<(Vec<Value>, bool)> {
        let parent_full = if parent.is_empty() { String::new() } else { FullName::from_parts(parent)?.full() };
        let Some(parent_kind) = kind.parent() else {
            return self.scan_visible(kind, &parent_full, offset, limit, |batch| {
                Ok(batch.iter().map(|o| self.visible(p, kind, &o.full_name)).collect())
            });
        };
        let chain = self.chain(parent_kind, &parent_full)?;
        let level = chain.objects.len();
        let usable = chain.can_use(p, level, false).is_ok();
        if p.admin || chain.owns_any(p) || (usable && chain.granted(p, level - 1).any(|g| shows(g, kind))) {
            let mut items = self.store.list_uc_objects_page(kind.as_str(), &parent_full, offset, limit + 1)?;
            let has_more = items.len() as u64 > limit;
            items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
            return Ok((items.into_iter().map(|o| o.info).collect(), has_more));
        }
        // Only what `p` owns or was granted on the child itself shows.
        let mut names: Vec<&str> = vec![&p.name, ACCOUNT_USERS, WORKSPACE_USERS];
        names.extend(p.groups.iter().map(String::as_str));
        let privileges: Vec<&str> = if usable {
            PRIVILEGES.iter().map(|(n, _)| *n).filter(|g| shows(g, kind)).chain(["BROWSE"]).collect()
        } else {
            Vec::new()
        };
        let mut items =
            self.store.list_uc_objects_held(kind.as_str(), &parent_full, &names, &privileges, offset, limit + 1)?;
        let has_more = items.len() as u64 > limit;
        items.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        Ok((items.into_iter().map(|o| o.info).collect(), has_more))
    }

    /// `limit` of the children that `keep` keeps (it answers for a batch at
    /// a time), from the `offset`th kept.
    fn scan_visible(
        &self,
        kind: Kind,
        parent: &str,
        offset: u64,
        limit: u64,
        mut keep: impl FnMut(&[UcObject]) -> Result<Vec<bool>>,
    ) -> Result<(Vec<Value>, bool)> {
        let (mut kept, mut out, mut at) = (0u64, Vec::new(), 0u64);
        loop {
            let batch = self.store.list_uc_objects_page(kind.as_str(), parent, at, LIST_BATCH)?;
            let read = batch.len() as u64;
            let keeps = keep(&batch)?;
            for (object, keep) in batch.into_iter().zip(keeps) {
                if !keep {
                    continue;
                }
                if kept >= offset {
                    if out.len() as u64 == limit {
                        return Ok((out, true));
                    }
                    out.push(object.info);
                }
                kept += 1;
            }
            if read < LIST_BATCH {
                return Ok((out, false));
            }
            at += LIST_BATCH;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::CreateRequest;

    fn setup() -> (Catalog, Principal, Principal) {
        let lake = std::env::temp_dir().join(format!("tarn-grants-{}-{}", std::process::id(), uuid::Uuid::new_v4()));
        let catalog = Catalog::new(Arc::new(tarn_store::Store::open_in_memory().unwrap()), lake);
        catalog.bootstrap("admin").unwrap();
        let schema = CreateRequest { catalog_name: Some("main".into()), name: Some("s".into()), ..Default::default() };
        catalog.create(Kind::Schema, &schema, "admin").unwrap();
        catalog.create(Kind::Table, &table("s", "t"), "admin").unwrap();
        let user = |name: &str| Principal { name: name.into(), groups: vec!["analysts".into()], admin: false };
        (catalog, user("bob"), user("carol"))
    }

    fn table(schema: &str, name: &str) -> CreateRequest {
        CreateRequest {
            catalog_name: Some("main".into()),
            schema_name: Some(schema.into()),
            name: Some(name.into()),
            table_type: Some("EXTERNAL".into()),
            storage_location: Some(format!("file:///tmp/{schema}/{name}")),
            ..Default::default()
        }
    }

    fn change(principal: &str, add: &[&str], remove: &[&str]) -> GrantChange {
        let owned = |l: &[&str]| l.iter().map(|s| s.to_string()).collect();
        GrantChange { principal: principal.into(), add: owned(add), remove: owned(remove) }
    }

    #[test]
    fn select_needs_use_schema_and_is_inherited_downward() {
        let (catalog, bob, _) = setup();
        let admin = Principal { name: "admin".into(), groups: vec![], admin: true };
        let denied = catalog.authorize(&bob, Kind::Table, "main.s.t", Action::Select).unwrap_err();
        assert!(denied.to_string().contains("USE SCHEMA on Schema 'main.s'"), "{denied}");
        let group = tarn_store::GroupRow {
            id: 0,
            display_name: "analysts".into(),
            external_id: None,
            entitlements: vec![],
            members: vec![],
        };
        catalog.store.insert_group(&group, 0).unwrap();
        catalog
            .update_grants(&admin, Kind::Schema, "main.s", &[change("analysts", &["USE SCHEMA", "SELECT"], &[])])
            .unwrap();
        catalog.authorize(&bob, Kind::Table, "main.s.t", Action::Select).unwrap();
        let denied = catalog.authorize(&bob, Kind::Table, "main.s.t", Action::Modify).unwrap_err();
        assert!(denied.to_string().contains("MODIFY on Table 'main.s.t'"), "{denied}");
        let effective = catalog.effective_grants(Kind::Table, "main.s.t", Some("analysts")).unwrap();
        assert_eq!(effective["analysts"][0].inherited_from, Some((Kind::Schema, "main.s".into())));
        assert!(catalog.grants(Kind::Table, "main.s.t", None).unwrap().is_empty());
    }

    #[test]
    fn only_owners_and_managers_grant_and_privileges_must_apply() {
        let (catalog, bob, carol) = setup();
        let admin = Principal { name: "admin".into(), groups: vec![], admin: true };
        catalog.store.ensure_user("bob", "bob", 0).unwrap();
        catalog.store.ensure_user("carol", "carol", 0).unwrap();
        let refused = catalog.update_grants(&bob, Kind::Table, "main.s.t", &[change("bob", &["SELECT"], &[])]);
        assert!(matches!(refused, Err(CatalogError::PermissionDenied(_))));
        let wrong = catalog.update_grants(&admin, Kind::Table, "main.s.t", &[change("bob", &["USE_CATALOG"], &[])]);
        assert!(matches!(wrong, Err(CatalogError::InvalidArgument(_))));
        let nobody = catalog.update_grants(&admin, Kind::Table, "main.s.t", &[change("nobody", &["SELECT"], &[])]);
        assert!(matches!(nobody, Err(CatalogError::InvalidArgument(_))));
        catalog.update_grants(&admin, Kind::Table, "main.s.t", &[change("bob", &["MANAGE"], &[])]).unwrap();
        catalog.update_grants(&bob, Kind::Table, "main.s.t", &[change("carol", &["SELECT"], &[])]).unwrap();
        assert!(!catalog.visible(&carol, Kind::Table, "main.s.t"), "no USE SCHEMA on main.s yet");
        catalog.update_grants(&admin, Kind::Schema, "main.s", &[change("carol", &["USE_SCHEMA"], &[])]).unwrap();
        assert!(catalog.visible(&carol, Kind::Table, "main.s.t"));
        assert_eq!(catalog.grants(Kind::Table, "main.s.t", Some("carol")).unwrap()["carol"], ["SELECT"]);
    }

    #[test]
    fn everyone_may_create_in_the_default_schema_and_owns_what_it_creates() {
        let (catalog, bob, carol) = setup();
        catalog.authorize(&bob, Kind::Schema, "main.default", Action::Create(Kind::Table)).unwrap();
        assert!(catalog.authorize(&bob, Kind::Catalog, "main", Action::Create(Kind::Schema)).is_err());
        catalog.claim_owner("main.default.mine", "bob");
        let info = catalog.create(Kind::Table, &table("default", "mine"), "engine").unwrap();
        assert_eq!(info["owner"], "bob");
        catalog.authorize(&bob, Kind::Table, "main.default.mine", Action::Modify).unwrap();
        assert!(catalog.authorize(&carol, Kind::Table, "main.default.mine", Action::Select).is_err());
        assert!(!catalog.visible(&carol, Kind::Table, "main.default.mine"));
        assert!(catalog.visible(&carol, Kind::Schema, "main.default"));
    }

    #[test]
    fn models_need_create_model_and_schema_usage() {
        let (catalog, bob, _) = setup();
        let admin = Principal { name: "admin".into(), groups: vec![], admin: true };
        catalog.authorize(&bob, Kind::Schema, "main.default", Action::CreateModel).unwrap();
        let denied = catalog.authorize(&bob, Kind::Schema, "main.s", Action::Use).unwrap_err();
        assert!(denied.to_string().contains("USE SCHEMA on Schema 'main.s'"), "{denied}");
        catalog.store.ensure_user("bob", "bob", 0).unwrap();
        catalog.update_grants(&admin, Kind::Schema, "main.s", &[change("bob", &["USE_SCHEMA"], &[])]).unwrap();
        catalog.authorize(&bob, Kind::Schema, "main.s", Action::Use).unwrap();
        let denied = catalog.authorize(&bob, Kind::Schema, "main.s", Action::CreateModel).unwrap_err();
        assert!(denied.to_string().contains("CREATE MODEL on Schema 'main.s'"), "{denied}");
    }

    #[test]
    fn paged_lists_show_what_browse_allows() {
        let (catalog, bob, carol) = setup();
        let admin = Principal { name: "admin".into(), groups: vec![], admin: true };
        for name in ["a", "b", "c"] {
            catalog.create(Kind::Table, &table("s", name), "admin").unwrap();
        }
        let names = |(items, more): (Vec<Value>, bool)| {
            (items.iter().map(|i| i["name"].as_str().unwrap().to_string()).collect::<Vec<_>>(), more)
        };
        let page = |p: &Principal, offset, limit| {
            names(catalog.list_visible(p, Kind::Table, &["main", "s"], offset, limit).unwrap())
        };
        assert_eq!(page(&admin, 1, 2), (vec!["b".into(), "c".into()], true));
        assert_eq!(page(&admin, 3, 2), (vec!["t".into()], false));
        assert_eq!(page(&bob, 0, 10), (vec![], false));
        catalog.store.ensure_user("bob", "bob", 0).unwrap();
        catalog.store.ensure_user("carol", "carol", 0).unwrap();
        catalog
            .update_grants(&admin, Kind::Schema, "main.s", &[change("bob", &["USE_SCHEMA", "SELECT"], &[])])
            .unwrap();
        catalog.update_grants(&admin, Kind::Schema, "main.s", &[change("carol", &["USE_SCHEMA"], &[])]).unwrap();
        catalog.update_grants(&admin, Kind::Table, "main.s.b", &[change("carol", &["SELECT"], &[])]).unwrap();
        catalog.update_grants(&admin, Kind::Table, "main.s.t", &[change("carol", &["MODIFY"], &[])]).unwrap();
        catalog.create(Kind::Table, &table("s", "d"), "carol").unwrap();
        assert_eq!(page(&bob, 0, 10).0.len(), 5);
        assert_eq!(page(&carol, 0, 1), (vec!["b".into()], true));
        assert_eq!(page(&carol, 1, 1), (vec!["d".into()], true), "carol owns d");
        assert_eq!(page(&carol, 2, 1), (vec!["t".into()], false));
        let catalogs = catalog.list_visible(&carol, Kind::Catalog, &[], 0, 10).unwrap().0;
        assert_eq!(catalogs.len(), 1);
    }

    #[test]
    fn paged_lists_page_through_ten_thousand_tables() {
        let (catalog, bob, carol) = setup();
        let admin = Principal { name: "admin".into(), groups: vec![], admin: true };
        for i in 0..10_000 {
            catalog.create(Kind::Table, &table("s", &format!("t{i:05}")), "admin").unwrap();
        }
        catalog.store.ensure_user("bob", "bob", 0).unwrap();
        catalog.store.ensure_user("carol", "carol", 0).unwrap();
        catalog
            .update_grants(&admin, Kind::Schema, "main.s", &[change("bob", &["USE_SCHEMA", "SELECT"], &[])])
            .unwrap();
        catalog.update_grants(&admin, Kind::Schema, "main.s", &[change("carol", &["USE_SCHEMA"], &[])]).unwrap();
        catalog.update_grants(&admin, Kind::Table, "main.s.t09999", &[change("carol", &["SELECT"], &[])]).unwrap();
        // A page is the slice of the whole list it names (bench/ui.sh times them).
        let names =
            |items: &[Value]| items.iter().filter_map(|t| t["name"].as_str().map(str::to_string)).collect::<Vec<_>>();
        let all = names(&catalog.list(Kind::Table, &["main", "s"]).unwrap());
        for (p, offset) in [(&admin, 5000), (&bob, 9990)] {
            let (items, more) = catalog.list_visible(p, Kind::Table, &["main", "s"], offset, 50).unwrap();
            let (start, end) = (offset as usize, (offset as usize + 50).min(all.len()));
            assert_eq!((names(&items), more), (all[start..end].to_vec(), end < all.len()), "{}", p.name);
        }
        let (items, _) = catalog.list_visible(&carol, Kind::Table, &["main", "s"], 0, 50).unwrap();
        assert_eq!(names(&items), vec!["t09999".to_string()]);
    }
}
