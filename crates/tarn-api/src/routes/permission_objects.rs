//! The Permissions API's objects that live outside the compute services:
//! MLflow experiments and registered models, the SQL warehouse, and
//! workspace notebooks and directories (with the directories above them,
//! whose levels flow down). `permissions::find` answers through these; the
//! routes of those services build their objects here too.

use tarn_core::ApiError;
use tarn_identity::{Object, ObjectType, Permissions};
use tarn_mlflow::{ExperimentRow, RegisteredModelRow};
use tarn_store::{User, WorkspaceObject};

use super::permissions::permissions;
use crate::AppState;
use crate::error::{ApiFailure, Surface, files_failure};

fn ty(path: &str) -> Result<&'static ObjectType, ApiFailure> {
    ObjectType::of(path).ok_or_else(|| ApiError::internal(format!("no permissions type '{path}'")).into())
}

pub(crate) fn experiment(e: &ExperimentRow) -> Result<Object, ApiFailure> {
    Ok(Object::new(ty("experiments")?, e.experiment_id.to_string(), e.creator.clone()))
}

pub(crate) fn registered_model(m: &RegisteredModelRow) -> Result<Object, ApiFailure> {
    Ok(Object::new(ty("registered-models")?, m.id.clone(), m.creator.clone()))
}

/// The object a path of one of these types names; `None` for other types.
pub(crate) fn find(s: &AppState, path: &str, id: &str) -> Result<Option<Object>, ApiFailure> {
    let object = match path {
        "experiments" => experiment(&s.tracking.experiment(id)?)?,
        "registered-models" => registered_model(
            &s.store
                .get_registered_model_by_id(id)?
                .ok_or_else(|| ApiError::not_found(format!("Registered model {id} does not exist")))?,
        )?,
        "warehouses" => {
            // The warehouse is tarn's: no owner, what the grants say.
            s.statements.warehouse().status(id)?;
            Object::new(ty(path)?, id, "")
        }
        "notebooks" | "directories" | "repos" => workspace_by_id(s, path, id)?,
        _ => return Ok(None),
    };
    Ok(Some(object))
}

fn workspace_by_id(s: &AppState, path: &str, id: &str) -> Result<Object, ApiFailure> {
    let missing = || ApiFailure::from(ApiError::not_found(format!("{path} {id} does not exist")));
    let object_id: i64 = id.parse().map_err(|_| missing())?;
    let lineage = s.files.workspace().lineage_of_id(object_id).map_err(fail)?.ok_or_else(missing)?;
    let object = workspace_object(&lineage)?.ok_or_else(missing)?;
    if object.ty.path != path {
        return Err(missing());
    }
    Ok(object)
}

fn fail(e: tarn_files::FilesError) -> ApiFailure {
    files_failure(Surface::Workspace, e)
}

/// A workspace row as a permissions object: a directory, or a notebook
/// (files too: the API has no type of their own for them).
fn workspace_row(row: &WorkspaceObject) -> Result<Object, ApiFailure> {
    let path = match row.object_type.as_str() {
        "DIRECTORY" => "directories",
        "REPO" => "repos",
        _ => "notebooks",
    };
    Ok(Object::new(ty(path)?, row.object_id.to_string(), row.creator.clone()))
}

/// The first row of a lineage (`Workspace::lineage`, nearest first) with
/// the rest as its parents.
fn workspace_object(lineage: &[WorkspaceObject]) -> Result<Option<Object>, ApiFailure> {
    let Some((first, parents)) = lineage.split_first() else { return Ok(None) };
    let parents = parents.iter().map(workspace_row).collect::<Result<Vec<_>, _>>()?;
    Ok(Some(workspace_row(first)?.with_parents(parents)))
}

/// What a workspace call needs at a path.
#[derive(Debug, Clone, Copy)]
pub(crate) enum WorkspaceAccess {
    /// `level` on the object at the path; a missing object is left to the
    /// operation to answer.
    Object(&'static str),
    /// Writing at the path: `level` on the object if it exists (an
    /// overwrite), else on the nearest directory above it.
    Write(&'static str),
}

/// Refuses with PERMISSION_DENIED unless `user` may do `access` at `path`.
pub(crate) fn require_workspace(
    s: &AppState,
    user: &User,
    path: &str,
    access: WorkspaceAccess,
) -> Result<(), ApiFailure> {
    check_workspace(&Permissions::new(s.store.clone()), s.files.workspace(), user, path, access)
}

fn check_workspace(
    rules: &Permissions,
    workspace: &tarn_files::Workspace,
    user: &User,
    path: &str,
    access: WorkspaceAccess,
) -> Result<(), ApiFailure> {
    if user.admin {
        return Ok(());
    }
    let canonical = workspace.canonical(path).map_err(fail)?;
    let lineage = workspace.lineage(&canonical).map_err(fail)?;
    let exists = lineage.first().is_some_and(|row| row.path == canonical);
    let level = match access {
        WorkspaceAccess::Object(_) if !exists => return Ok(()),
        WorkspaceAccess::Object(level) | WorkspaceAccess::Write(level) => level,
    };
    match workspace_object(&lineage)? {
        Some(object) => Ok(rules.check(user, &object, level)?),
        None => Ok(()),
    }
}

/// What a job's run-as principal may read of the notebooks and files its
/// tasks run: CAN_READ on a workspace object (directories' levels flowing
/// down), READ_VOLUME on a volume's file. DBFS is open to all, as on
/// Databricks.
pub struct TaskSources {
    store: std::sync::Arc<tarn_store::Store>,
    files: tarn_files::Files,
    catalog: tarn_catalog::Catalog,
}

impl TaskSources {
    pub fn new(
        store: std::sync::Arc<tarn_store::Store>,
        files: tarn_files::Files,
        catalog: tarn_catalog::Catalog,
    ) -> Self {
        Self { store, files, catalog }
    }

    fn check_path(&self, user: &User, path: &str) -> Result<(), ApiFailure> {
        if user.admin || path.starts_with("dbfs:") {
            return Ok(());
        }
        if path.starts_with("/Volumes/") {
            return Ok(self.catalog.authorize_volume_file(&self.catalog.principal(user)?, path, false)?);
        }
        let rules = Permissions::new(self.store.clone());
        check_workspace(&rules, self.files.workspace(), user, path, WorkspaceAccess::Object("CAN_READ"))
    }
}

impl tarn_jobs::SourceAccess for TaskSources {
    fn check(&self, user: &str, path: &str) -> Result<(), String> {
        let user = match self.store.find_user(user) {
            Ok(Some(user)) => user,
            Ok(None) => return Err(format!("{user} is no principal of this workspace")),
            Err(e) => return Err(e.to_string()),
        };
        self.check_path(&user, path).map_err(|ApiFailure(e)| e.message)
    }
}

/// Which of a directory's `children` `user` may read (all, for admins).
pub(crate) fn readable_children(
    s: &AppState,
    user: &User,
    directory: &str,
    children: Vec<tarn_files::ObjectInfo>,
) -> Result<Vec<tarn_files::ObjectInfo>, ApiFailure> {
    if user.admin {
        return Ok(children);
    }
    let lineage = s.files.workspace().lineage(directory).map_err(fail)?;
    let parents = lineage.iter().map(workspace_row).collect::<Result<Vec<_>, _>>()?;
    let rules = permissions(s);
    let mut readable = Vec::with_capacity(children.len());
    for child in children {
        let kind = match child.object_type {
            tarn_files::ObjectType::Directory => "directories",
            tarn_files::ObjectType::Repo => "repos",
            _ => "notebooks",
        };
        let object =
            Object::new(ty(kind)?, child.object_id.to_string(), child.creator.clone()).with_parents(parents.clone());
        if rules.allows(user, &object, "CAN_READ")? {
            readable.push(child);
        }
    }
    Ok(readable)
}
