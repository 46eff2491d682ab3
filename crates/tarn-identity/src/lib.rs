//! Identities of a workspace: users, service principals and groups (SCIM
//! 2.0, and by name as the legacy Groups API 2.0 addresses them), admins (members of `admins`, directly or through nested groups),
//! token management, secrets (sealed at rest, scope ACLs), and permissions
//! on workspace objects (the Permissions API's levels and who holds them). Rows live in `tarn-store`; this crate owns the
//! rules (who may write, what a SCIM body means, filters and PATCH) and
//! knows no HTTP.
//!
//! Invariants: a principal's id is unique across users, service principals
//! and groups; the `admins` and `users` groups always exist, and `users` is
//! every active principal (never stored); only admins write the directory
//! or touch another principal's tokens.

mod backends;
mod directory;
mod error;
mod filter;
mod group_names;
mod patch;
mod permissions;
mod secrets;
mod tokens;

pub use backends::Backend;
pub use directory::{Directory, ENTITLEMENTS, ListQuery, Projection, ResourceKind};
pub use error::{IdentityError, Result};
pub use filter::Filter;
pub use group_names::MemberName;
pub use permissions::{OBJECT_TYPES, Object, ObjectType, Permissions};
pub use secrets::{MAX_SECRETS_PER_SCOPE, MAX_VALUE_BYTES, Permission, SealingKey, Secrets};
pub use tokens::{TokenManagement, token_info};
