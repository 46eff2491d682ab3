//! Carrying a [`crate::Bundle`] to a workspace: files under
//! `<root_path>/files`, the deploy lock, the state files, each resource
//! created or updated in place; `run`, `destroy` and `summary`.
