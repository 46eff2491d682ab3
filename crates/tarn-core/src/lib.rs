//! Shared vocabulary of every tarn crate: the wire error (`ApiError`) with the
//! Databricks/MLflow error codes, identifiers, wall-clock time, page tokens,
//! secret references, `run_as` and `deployment`.
//!
//! This crate depends on no other tarn crate. A user's mistake never maps to
//! a 5xx or 429, which clients retry.

pub mod deployment;
pub mod error;
pub mod id;
pub mod page;
pub mod run_as;
pub mod secret_ref;
pub mod time;

pub use error::{ApiError, ErrorCode};
