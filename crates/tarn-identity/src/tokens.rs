//! Token management for admins (`w.token_management`): every user's tokens
//! (ids and metadata, never values), revoking any of them, and tokens made
//! on behalf of a service principal.

use std::sync::Arc;

use serde_json::{Value, json};
use tarn_core::time::now_ms;
use tarn_store::{PrincipalKind, Store, TokenRow, User};

use crate::error::{IdentityError, Result};

pub struct TokenManagement {
    store: Arc<Store>,
}

/// A token's metadata as `TokenInfo` carries it.
pub fn token_info(token: &TokenRow, owner: &str) -> Value {
    json!({
        "token_id": token.token_id,
        "creation_time": token.creation_time,
        "expiry_time": token.expiry_time,
        "comment": token.comment,
        "created_by_id": token.user_id,
        "created_by_username": owner,
        "owner_id": token.user_id,
    })
}

fn require_admin(caller: &User) -> Result<()> {
    if caller.admin {
        return Ok(());
    }
    Err(IdentityError::PermissionDenied("Only workspace admins can manage other principals' tokens".into()))
}

impl TokenManagement {
    pub fn new(store: Arc<Store>) -> Self {
        Self { store }
    }

    pub fn list(
        &self,
        caller: &User,
        created_by_id: Option<i64>,
        created_by_username: Option<&str>,
    ) -> Result<Vec<Value>> {
        require_admin(caller)?;
        let owner = match created_by_username {
            Some(name) => match self.store.find_principal(name)? {
                Some(p) => Some(p.id),
                None => return Ok(Vec::new()),
            },
            None => created_by_id,
        };
        Ok(self.store.all_tokens(owner)?.iter().map(|(t, name)| token_info(t, name)).collect())
    }

    pub fn get(&self, caller: &User, token_id: &str) -> Result<Value> {
        require_admin(caller)?;
        let all = self.store.all_tokens(None)?;
        let (token, owner) = all
            .iter()
            .find(|(t, _)| t.token_id == token_id)
            .ok_or_else(|| IdentityError::NotFound(format!("Token {token_id} does not exist")))?;
        Ok(token_info(token, owner))
    }

    pub fn revoke(&self, caller: &User, token_id: &str) -> Result<()> {
        require_admin(caller)?;
        if !self.store.revoke_token(token_id)? {
            return Err(IdentityError::NotFound(format!("Token {token_id} does not exist")));
        }
        Ok(())
    }

    /// A token for the service principal with this application id; its
    /// value is in the answer only.
    pub fn create_on_behalf_of(
        &self,
        caller: &User,
        application_id: &str,
        comment: &str,
        lifetime_seconds: Option<i64>,
    ) -> Result<Value> {
        require_admin(caller)?;
        let principal = self
            .store
            .find_service_principal(application_id)?
            .filter(|p| p.kind == PrincipalKind::ServicePrincipal)
            .ok_or_else(|| {
                IdentityError::NotFound(format!(
                    "Service principal with application id {application_id} does not exist"
                ))
            })?;
        if !principal.active {
            return Err(IdentityError::InvalidParameter(format!("Service principal {application_id} is not active")));
        }
        let owner = User {
            id: principal.id,
            user_name: principal.user_name.clone(),
            display_name: principal.display_name.clone(),
            admin: false,
        };
        let (secret, row) = self.store.create_token(&owner, comment, lifetime_seconds, now_ms())?;
        Ok(json!({"token_value": secret, "token_info": token_info(&row, &principal.user_name)}))
    }
}
