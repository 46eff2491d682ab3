//! `tarn token`: personal access tokens of the admin user or of any user
//! (created on first use, not an admin), straight in the store (works
//! whether or not a server is running), and the admin token a new
//! workspace starts with.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use clap::Subcommand;
use tarn_core::time::now_ms;
use tarn_store::{Store, User};

use crate::config::Config;

pub use tarn_store::ADMIN_USER;

#[derive(Subcommand)]
pub enum TokenAction {
    /// Create a token and print its value (shown only this once).
    Create {
        /// The user the token is for (created if new); default: the admin.
        #[arg(long)]
        user: Option<String>,
        #[arg(long, default_value = "")]
        comment: String,
        /// Seconds until it expires; none: never.
        #[arg(long)]
        lifetime_seconds: Option<i64>,
    },
    /// List tokens (ids, never values).
    List {
        /// Whose tokens; default: the admin's.
        #[arg(long)]
        user: Option<String>,
    },
    /// Revoke a token by id, whoever owns it.
    Revoke { token_id: String },
}

pub(crate) fn admin_user(store: &Store) -> Result<User, String> {
    store.ensure_admin(ADMIN_USER, "Admin", now_ms()).map_err(|e| e.to_string())
}

/// The named user, created (as a plain user) if new; the admin if none is named.
fn user_named(store: &Store, name: Option<&str>) -> Result<User, String> {
    match name {
        None => admin_user(store),
        Some(name) if name.trim().is_empty() => Err("--user needs a name".into()),
        Some(name) => store.ensure_user(name, name, now_ms()).map_err(|e| e.to_string()),
    }
}

pub fn run(config: &Config, action: TokenAction) -> Result<(), String> {
    let store = config.open_store()?;
    match action {
        TokenAction::Create { user, comment, lifetime_seconds } => {
            let user = user_named(&store, user.as_deref())?;
            let (secret, row) =
                store.create_token(&user, &comment, lifetime_seconds, now_ms()).map_err(|e| e.to_string())?;
            eprintln!("created token {} for {} (its value is shown only now)", row.token_id, user.user_name);
            println!("{secret}");
        }
        TokenAction::List { user } => {
            let user = user_named(&store, user.as_deref())?;
            println!("{:<64}  {:>13}  {:>13}  COMMENT", "TOKEN_ID", "CREATED_MS", "EXPIRES_MS");
            for t in store.list_tokens(user.id).map_err(|e| e.to_string())? {
                println!("{:<64}  {:>13}  {:>13}  {}", t.token_id, t.creation_time, t.expiry_time, t.comment);
            }
        }
        TokenAction::Revoke { token_id } => {
            if !store.revoke_token(&token_id).map_err(|e| e.to_string())? {
                return Err(format!("no token with id {token_id}"));
            }
            println!("revoked {token_id}");
        }
    }
    Ok(())
}

/// On a new workspace (no token yet), creates the admin token and writes it
/// once to `$TARN_HOME/token`, readable by its owner only.
pub fn bootstrap_admin(config: &Config, store: &Store) -> Result<Option<PathBuf>, String> {
    if store.count_tokens().map_err(|e| e.to_string())? > 0 {
        return Ok(None);
    }
    let user = admin_user(store)?;
    let (secret, _) =
        store.create_token(&user, "admin token created at first start", None, now_ms()).map_err(|e| e.to_string())?;
    let path = config.home.join("token");
    let _ = std::fs::remove_file(&path);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| format!("writing {}: {e}", path.display()))?;
    file.write_all(format!("{secret}\n").as_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(Some(path))
}
