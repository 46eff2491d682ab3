//! Carrying a [`crate::Bundle`] to a workspace: files under
//! `<root_path>/files`, the deploy lock, the state files, each resource
//! created or updated in place; `destroy` and what `run` and `summary`
//! read back. Everything that can be checked is checked before the first
//! write, and a deploy that fails half-way puts back what it changed.

mod files;
mod lock;
mod lookup;
mod perms;
mod refs;
pub mod resources;
mod rollback;
pub mod state;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;
use tarn_assist::{Client, ClientError};

pub use lookup::ApiLookup;
pub use state::{Entry, Resources};

use crate::Bundle;
use crate::config::CurrentUser;
use lock::Lock;
use refs::Key;
use resources::Deployment;
use rollback::{Journal, Undo};

#[derive(Debug, thiserror::Error)]
pub enum DeployError {
    /// A workspace call failed; `context` says which.
    #[error("{context}: {source}")]
    Api { context: String, source: ClientError },
    #[error("the deployment is locked by {user} (since {since}); pass --force-lock to take the lock over")]
    Locked { user: String, since: String },
    /// The bundle cannot be deployed as written (found before any write).
    #[error("{0}")]
    Invalid(String),
    /// A local step (reading files, building an artifact) failed.
    #[error("{0}")]
    Local(String),
    /// A resource call failed; what had changed was put back.
    #[error("{failure}\n{rollback}")]
    RolledBack { failure: Box<DeployError>, rollback: String },
}

impl DeployError {
    pub fn api(context: &str) -> impl Fn(ClientError) -> DeployError + '_ {
        move |source| DeployError::Api { context: context.to_string(), source }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Created,
    Updated,
    Deleted,
    Unchanged,
}

/// What deploy or destroy did to one resource.
#[derive(Debug, Clone)]
pub struct Change {
    pub action: Action,
    pub kind: String,
    pub key: String,
    pub id: String,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let action = match self.action {
            Action::Created => "created",
            Action::Updated => "updated",
            Action::Deleted => "deleted",
            Action::Unchanged => "unchanged",
        };
        write!(f, "{action} {}.{} (id {})", self.kind, self.key, self.id)
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub changes: Vec<Change>,
    pub files_uploaded: usize,
    pub files_deleted: usize,
}

/// The caller, from SCIM `Me`.
pub async fn current_user(client: &Client) -> Result<CurrentUser, ClientError> {
    let me = client.get("/api/2.0/preview/scim/v2/Me", &[]).await?;
    let user_name = me
        .get("userName")
        .and_then(Value::as_str)
        .ok_or_else(|| ClientError::Invalid("SCIM Me answered no userName".into()))?
        .to_string();
    Ok(CurrentUser { short_name: short_name(&user_name), user_name })
}

/// The name before the `@`, lowercased, each other character `_`.
pub fn short_name(user_name: &str) -> String {
    let local = user_name.split('@').next().unwrap_or(user_name);
    local.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_lowercase() } else { '_' }).collect()
}

/// What must hold before anything is written: every resource type is one
/// tarn deploys, references name resources of the bundle, files read.
fn check(bundle: &Bundle) -> Result<Vec<Key>, DeployError> {
    for (kind, group) in &bundle.resources {
        if !group.is_empty() && !resources::ORDER.contains(&kind.as_str()) {
            return Err(DeployError::Invalid(format!("tarn does not deploy `{kind}` resources yet")));
        }
    }
    refs::order(bundle).map_err(DeployError::Invalid)
}

pub struct DeployOptions {
    pub force_lock: bool,
}

/// Deploys the bundle: checks, builds, locks, syncs files, creates or
/// updates each resource in dependency order, deletes the ones the bundle
/// dropped, writes the state, unlocks.
pub async fn deploy(
    client: &Client,
    bundle: &Bundle,
    user: &CurrentUser,
    options: &DeployOptions,
) -> Result<Report, DeployError> {
    let order = check(bundle)?;
    let sync_set = files::read_sync_set(bundle)?;
    let built = files::build(bundle)?;
    let lock = match bundle.lock_enabled {
        true => Some(Lock::acquire(client, &bundle.state_path, &user.user_name, options.force_lock).await?),
        false => None,
    };
    let result = Deploy { client, bundle, order }.run(sync_set, built).await;
    if let Some(lock) = lock {
        let released = lock.release(client).await;
        if result.is_ok() {
            released?;
        }
    }
    result
}

struct Deploy<'a> {
    client: &'a Client,
    bundle: &'a Bundle,
    order: Vec<Key>,
}

impl Deploy<'_> {
    async fn run(
        &self,
        sync_set: Vec<(state::SyncedFile, Vec<u8>)>,
        built: Vec<std::path::PathBuf>,
    ) -> Result<Report, DeployError> {
        let (client, bundle) = (self.client, self.bundle);
        let previous = state::load_resources(client, &bundle.state_path)
            .await
            .map_err(DeployError::api("reading state/resources.json"))?;
        let deployment_path = format!("{}/deployment.json", bundle.state_path);
        let last = state::read_json(client, &deployment_path)
            .await
            .map_err(DeployError::api("reading state/deployment.json"))?;
        let last_files = last.as_ref().map(state::parse_files).unwrap_or_default();
        let seq = last.as_ref().and_then(|v| v.get("seq")).and_then(Value::as_u64).unwrap_or(0) + 1;
        let mut journal = Journal::default();
        let applied = self.apply(&sync_set, &built, &last_files, &previous, &mut journal).await;
        let (mut next, mut changes, (files_uploaded, files_deleted)) = match applied {
            Ok(done) => done,
            Err(failure) => return Err(journal.roll_back(client, failure).await),
        };
        let dropped = self.delete_dropped(&previous, &mut next, &mut changes).await;
        let synced: Vec<state::SyncedFile> = sync_set.into_iter().map(|(f, _)| f).collect();
        self.write_state(&next, seq, &synced).await?;
        dropped?;
        Ok(Report { changes, files_uploaded, files_deleted })
    }

    /// Uploads artifacts and files, then creates or updates each resource;
    /// every change is kept in `journal` so a failure can put it back.
    async fn apply(
        &self,
        sync_set: &[(state::SyncedFile, Vec<u8>)],
        built: &[std::path::PathBuf],
        last_files: &[state::SyncedFile],
        previous: &Resources,
        journal: &mut Journal,
    ) -> Result<(Resources, Vec<Change>, (usize, usize)), DeployError> {
        let (client, bundle) = (self.client, self.bundle);
        let wheels = files::upload_artifacts(client, &bundle.artifact_path, built, journal).await?;
        let counts = files::sync(client, &bundle.file_path, sync_set, last_files, journal).await?;
        let mut next = Resources {
            lineage: previous.lineage.clone().or_else(|| Some(uuid::Uuid::new_v4().to_string())),
            serial: previous.serial + 1,
            entries: BTreeMap::new(),
        };
        let mut changes = Vec::new();
        for key in &self.order {
            let change = self.one(key, previous, &next, &wheels, journal).await?;
            let settings = self.settings_of(key, &next, &wheels)?;
            next.entries.insert(key.clone(), Entry { id: change.id.clone(), settings });
            changes.push(change);
        }
        perms::apply_root(client, &bundle.root_path, &bundle.permissions)
            .await
            .map_err(DeployError::api("setting permissions on the bundle's root folder"))?;
        Ok((next, changes, counts))
    }

    /// The resource's value with references to deployed resources and
    /// local wheels resolved: what is sent and recorded.
    fn settings_of(&self, (kind, key): &Key, next: &Resources, wheels: &[String]) -> Result<Value, DeployError> {
        let resource = self.bundle.resources.get(kind).and_then(|g| g.get(key));
        let resource = resource.ok_or_else(|| DeployError::Invalid(format!("resources.{kind}.{key} is gone")))?;
        let deployed: BTreeMap<Key, (String, Value)> =
            next.entries.iter().map(|(k, e)| (k.clone(), (e.id.clone(), e.settings.clone()))).collect();
        let mut value = refs::resolve(&resource.value, &deployed).map_err(DeployError::Invalid)?;
        files::rewrite_wheels(&mut value, &self.bundle.file_path, wheels);
        Ok(value)
    }

    async fn one(
        &self,
        key: &Key,
        previous: &Resources,
        next: &Resources,
        wheels: &[String],
        journal: &mut Journal,
    ) -> Result<Change, DeployError> {
        let (kind, name) = key;
        let client = self.client;
        let value = self.settings_of(key, next, wheels)?;
        let context = format!("deploying resources.{kind}.{name}");
        let api = DeployError::api(&context);
        let metadata = format!("{}/metadata.json", self.bundle.state_path);
        let deployment = Deployment { metadata_file_path: &metadata };
        let before = match previous.entries.get(key) {
            Some(entry) => resources::read(client, kind, &entry.id).await.map_err(&api)?.map(|s| (entry, s)),
            None => None,
        };
        let (id, action) = match before {
            None => {
                let id = resources::create(client, kind, &value, &deployment).await.map_err(&api)?;
                journal.push(Undo::Created { kind: kind.clone(), id: id.clone() });
                (id, Action::Created)
            }
            Some((entry, _)) if entry.settings == value => (entry.id.clone(), Action::Unchanged),
            Some((entry, settings)) => {
                let id = resources::update(client, kind, &entry.id, &value, &deployment).await.map_err(&api)?;
                journal.push(Undo::Updated { kind: kind.clone(), id: id.clone(), settings });
                (id, Action::Updated)
            }
        };
        if action == Action::Updated {
            let previous = perms::read(client, kind, &id, &value).await.map_err(&api)?;
            journal.push(Undo::Permissions { kind: kind.clone(), id: id.clone(), previous });
        }
        if action != Action::Unchanged {
            perms::apply(client, kind, &id, &value).await.map_err(&api)?;
        }
        Ok(Change { action, kind: kind.clone(), key: name.clone(), id })
    }

    /// Deletes the resources of the last deployment the bundle no longer
    /// has; one that fails stays in the state.
    async fn delete_dropped(
        &self,
        previous: &Resources,
        next: &mut Resources,
        changes: &mut Vec<Change>,
    ) -> Result<(), DeployError> {
        let mut dropped: Vec<(&Key, &Entry)> =
            previous.entries.iter().filter(|(k, _)| !next.entries.contains_key(*k)).collect();
        dropped.sort_by_key(|((kind, _), _)| std::cmp::Reverse(rank(kind)));
        let mut first_error = Ok(());
        for ((kind, key), entry) in dropped {
            match resources::delete(self.client, kind, &entry.id).await {
                Ok(()) => changes.push(Change {
                    action: Action::Deleted,
                    kind: kind.clone(),
                    key: key.clone(),
                    id: entry.id.clone(),
                }),
                Err(e) => {
                    next.entries.insert((kind.clone(), key.clone()), entry.clone());
                    if first_error.is_ok() {
                        first_error = Err(DeployError::api(&format!("deleting resources.{kind}.{key}"))(e));
                    }
                }
            }
        }
        first_error
    }

    async fn write_state(&self, next: &Resources, seq: u64, synced: &[state::SyncedFile]) -> Result<(), DeployError> {
        let (client, path) = (self.client, &self.bundle.state_path);
        let id = uuid::Uuid::new_v4().to_string();
        let writes = [
            ("resources.json", next.to_json()),
            ("deployment.json", state::deployment_json(seq, &id, synced)),
            ("metadata.json", state::metadata_json(self.bundle, next)),
        ];
        for (name, value) in writes {
            let target = format!("{path}/{name}");
            state::write_json(client, &target, &value).await.map_err(DeployError::api(&format!("writing {target}")))?;
        }
        Ok(())
    }
}

fn rank(kind: &str) -> usize {
    resources::ORDER.iter().position(|k| *k == kind).unwrap_or(resources::ORDER.len())
}

/// Deletes every resource of the deployment (what refers to others first),
/// then the bundle's root folder.
pub async fn destroy(
    client: &Client,
    bundle: &Bundle,
    user: &CurrentUser,
    options: &DeployOptions,
) -> Result<Vec<Change>, DeployError> {
    let lock = match bundle.lock_enabled {
        true => Some(Lock::acquire(client, &bundle.state_path, &user.user_name, options.force_lock).await?),
        false => None,
    };
    let mut changes = Vec::new();
    let deleted = delete_all(client, bundle, &mut changes).await;
    if let (Err(_), Some(lock)) = (&deleted, lock) {
        // Unlocked so a second destroy can go on from the state, which
        // still names what is left; the delete's error is the one to report.
        let _ = lock.release(client).await;
    }
    deleted?;
    // The lock went with the root folder.
    state::delete_path(client, &bundle.root_path, true)
        .await
        .map_err(DeployError::api(&format!("deleting {}", bundle.root_path)))?;
    Ok(changes)
}

async fn delete_all(client: &Client, bundle: &Bundle, changes: &mut Vec<Change>) -> Result<(), DeployError> {
    let previous = state::load_resources(client, &bundle.state_path)
        .await
        .map_err(DeployError::api("reading state/resources.json"))?;
    let mut entries: Vec<(&Key, &Entry)> = previous.entries.iter().collect();
    entries.sort_by_key(|((kind, _), _)| std::cmp::Reverse(rank(kind)));
    for ((kind, key), entry) in entries {
        resources::delete(client, kind, &entry.id)
            .await
            .map_err(DeployError::api(&format!("deleting resources.{kind}.{key}")))?;
        changes.push(Change { action: Action::Deleted, kind: kind.clone(), key: key.clone(), id: entry.id.clone() });
    }
    Ok(())
}

/// The ids the last deployment recorded.
pub async fn deployed(client: &Client, bundle: &Bundle) -> Result<Resources, DeployError> {
    state::load_resources(client, &bundle.state_path).await.map_err(DeployError::api("reading state/resources.json"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn short_names_are_the_normalized_local_part() {
        assert_eq!(super::short_name("Jane.Doe+x@example.com"), "jane_doe_x");
        assert_eq!(super::short_name("admin"), "admin");
    }
}
