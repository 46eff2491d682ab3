//! What a deploy has changed so far, in order, and how a deploy that fails
//! half-way puts it back, newest first: resources it created deleted,
//! resources it updated given the settings, ACLs and grants read just
//! before, files it overwrote or deleted given their previous bytes, files
//! and artifacts it added deleted.

use serde_json::Value;
use tarn_assist::Client;

use super::state::{delete_path, write_file};
use super::{DeployError, perms, resources};

/// One change, with what undoes it.
pub enum Undo {
    /// A workspace file that was there before: its previous bytes go back
    /// through `upload_path` (a notebook's path with its extension, as the
    /// deploy uploads notebooks).
    File {
        upload_path: String,
        bytes: Vec<u8>,
    },
    /// A workspace file (or notebook) the deploy added.
    NewFile {
        path: String,
    },
    Created {
        kind: String,
        id: String,
    },
    Updated {
        kind: String,
        id: String,
        settings: Value,
    },
    Permissions {
        kind: String,
        id: String,
        previous: perms::Previous,
    },
}

/// The changes of one deploy, oldest first.
#[derive(Default)]
pub struct Journal {
    done: Vec<Undo>,
}

/// How many files a rollback put back and deleted, and what failed.
#[derive(Default)]
struct Tally {
    files_restored: usize,
    files_deleted: usize,
    notes: Vec<String>,
}

impl Journal {
    pub fn push(&mut self, undo: Undo) {
        self.done.push(undo);
    }

    /// Undoes every change, newest first; `failure` with what was done.
    pub async fn roll_back(self, client: &Client, failure: DeployError) -> DeployError {
        if self.done.is_empty() {
            return failure;
        }
        let mut tally = Tally::default();
        for undo in self.done.into_iter().rev() {
            undo.apply(client, &mut tally).await;
        }
        let mut notes = tally.notes;
        if tally.files_restored > 0 {
            notes.push(format!("put back the previous content of {} files", tally.files_restored));
        }
        if tally.files_deleted > 0 {
            notes.push(format!("deleted {} files it had added", tally.files_deleted));
        }
        let rollback = format!("the deploy was rolled back: {}", notes.join("; "));
        DeployError::RolledBack { failure: Box::new(failure), rollback }
    }
}

impl Undo {
    async fn apply(self, client: &Client, tally: &mut Tally) {
        let notes = &mut tally.notes;
        match self {
            Undo::File { upload_path, bytes } => match write_file(client, &upload_path, bytes, true).await {
                Ok(()) => tally.files_restored += 1,
                Err(e) => notes.push(format!("could not put back {upload_path}: {e}")),
            },
            Undo::NewFile { path } => match delete_path(client, &path, false).await {
                Ok(()) => tally.files_deleted += 1,
                Err(e) => notes.push(format!("could not delete the new file {path}: {e}")),
            },
            Undo::Created { kind, id } => match resources::delete(client, &kind, &id).await {
                Ok(()) => notes.push(format!("deleted the new {kind} {id}")),
                Err(e) => notes.push(format!("could not delete the new {kind} {id}: {e}")),
            },
            Undo::Updated { kind, id, settings } => match resources::restore(client, &kind, &id, &settings).await {
                Ok(()) => notes.push(format!("restored {kind} {id}")),
                Err(e) => notes.push(format!("could not restore {kind} {id}: {e}")),
            },
            Undo::Permissions { kind, id, previous } => {
                if let Err(e) = perms::restore(client, &kind, &id, &previous).await {
                    notes.push(format!("could not restore the permissions of {kind} {id}: {e}"));
                }
            }
        }
    }
}
