//! Who may do what in MLflow: an experiment (and its runs) and a registered
//! model (and its versions) are objects of the Permissions API. Admins,
//! and the anonymous MLflow caller on loopback (an admin), pass without a
//! lookup, so the operation answers for a missing object.

use tarn_mlflow::{ExperimentRow, RegisteredModelRow};
use tarn_store::User;

use crate::AppState;
use crate::error::ApiResult;
use crate::routes::permission_objects::{experiment as experiment_object, registered_model};
use crate::routes::permissions::permissions;

/// `level` on experiment `id`.
pub(super) fn experiment(s: &AppState, user: &User, id: &str, level: &str) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let object = experiment_object(&s.tracking.experiment(id)?)?;
    Ok(permissions(s).check(user, &object, level)?)
}

/// `level` on the experiment of run `run_id`.
pub(super) fn run(s: &AppState, user: &User, run_id: &str, level: &str) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let run = s.tracking.run(run_id)?;
    experiment(s, user, &run.experiment_id.to_string(), level)
}

/// `level` on the experiment of logged model `model_id`.
pub(super) fn logged_model(s: &AppState, user: &User, model_id: &str, level: &str) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let model = s.tracking.logged_model(model_id, true)?;
    experiment(s, user, &model.experiment_id.to_string(), level)
}

/// `level` on the experiment a proxied artifact path is under (its first
/// segment, `<experiment>/<run>/artifacts/...`); a path under no
/// experiment (the store's root) is admins' only.
pub(super) fn artifact_path(s: &AppState, user: &User, path: &str, level: &str) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let first = path.trim_start_matches('/').split('/').next().unwrap_or_default();
    if first.is_empty() || first.parse::<i64>().is_err() {
        return Err(tarn_identity::IdentityError::PermissionDenied(format!(
            "{} may read and write artifacts only under an experiment",
            user.user_name
        ))
        .into());
    }
    experiment(s, user, first, level)
}

/// `level` on the registered model `name`.
pub(super) fn model(s: &AppState, user: &User, name: &str, level: &str) -> ApiResult<()> {
    if user.admin {
        return Ok(());
    }
    let object = registered_model(&s.tracking.registered_model(name)?)?;
    Ok(permissions(s).check(user, &object, level)?)
}

/// Whether `user` may read the experiment (for searches; an error reading
/// permissions hides it).
pub(super) fn reads_experiment(s: &AppState, user: &User, e: &ExperimentRow) -> bool {
    user.admin || experiment_object(e).is_ok_and(|o| permissions(s).allows(user, &o, "CAN_READ").unwrap_or(false))
}

/// Whether `user` may read the registered model (for searches).
pub(super) fn reads_model(s: &AppState, user: &User, m: &RegisteredModelRow) -> bool {
    user.admin || registered_model(m).is_ok_and(|o| permissions(s).allows(user, &o, "CAN_READ").unwrap_or(false))
}

/// Whether `user` may read the registered model called `name` (for searches).
pub(super) fn reads_model_named(s: &AppState, user: &User, name: &str) -> bool {
    user.admin || s.tracking.registered_model(name).is_ok_and(|m| reads_model(s, user, &m))
}

/// The level a stage transition needs: Production's, to or from it;
/// Staging's otherwise.
pub(super) fn transition_level(from: &str, to: &str) -> &'static str {
    let production = |stage: &str| stage.eq_ignore_ascii_case("production");
    if production(from) || production(to) { "CAN_MANAGE_PRODUCTION_VERSIONS" } else { "CAN_MANAGE_STAGING_VERSIONS" }
}
