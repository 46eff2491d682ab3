//! What the monitored table's Delta log did since the version a refresh
//! last read: only appends (then the data files they added are all a
//! refresh reads), or anything else, which sends it back to a full read.
//! Correctness first: a `remove` (DELETE, UPDATE, MERGE, OPTIMIZE, an
//! overwrite), a deletion vector, a metadata or protocol change, or a
//! commit no longer in the log each mean the kept windows may count rows
//! that are gone, so they are not trusted.

use deltalake::DeltaTable;
use deltalake::kernel::{Action, Version};
use deltalake::logstore::get_actions;

/// The log between two versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Changes {
    /// Only these data files were added (paths relative to the table root).
    Appended(Vec<String>),
    /// Something else happened: why the kept windows cannot be extended.
    Rewritten(String),
}

/// The commits after `from` up to `to`, read from the log itself.
pub async fn since(table: &DeltaTable, from: i64, to: i64) -> Changes {
    if to < from {
        return Changes::Rewritten(format!("the table went back from version {from} to {to}"));
    }
    let store = table.log_store();
    let mut added = Vec::new();
    for version in from + 1..=to {
        let v = version as Version;
        let bytes = match store.read_commit_entry(v).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return Changes::Rewritten(format!("commit {version} is no longer in the log")),
            Err(e) => return Changes::Rewritten(format!("reading commit {version}: {e}")),
        };
        let actions = match get_actions(v, &bytes) {
            Ok(actions) => actions,
            Err(e) => return Changes::Rewritten(format!("reading commit {version}: {e}")),
        };
        if let Some(reason) = appended(&actions, &mut added) {
            return Changes::Rewritten(format!("commit {version} {reason}"));
        }
    }
    Changes::Appended(added)
}

/// Collects a commit's added files; or says why it is not an append.
fn appended(actions: &[Action], added: &mut Vec<String>) -> Option<&'static str> {
    for action in actions {
        match action {
            Action::Add(add) if add.deletion_vector.is_some() => return Some("added a deletion vector"),
            Action::Add(add) => added.push(add.path.clone()),
            Action::Remove(_) => return Some("removed data files"),
            Action::Metadata(_) => return Some("changed the table's metadata"),
            Action::Protocol(_) => return Some("changed the table's protocol"),
            Action::Cdc(_) | Action::Txn(_) | Action::CommitInfo(_) | Action::DomainMetadata(_) => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use deltalake::kernel::{Add, Remove};

    fn add(path: &str) -> Action {
        Action::Add(Add { path: path.into(), data_change: true, ..Default::default() })
    }

    #[test]
    fn only_plain_appends_extend_the_kept_windows() {
        let mut added = Vec::new();
        assert_eq!(appended(&[add("a.parquet"), add("b.parquet")], &mut added), None);
        assert_eq!(added, ["a.parquet", "b.parquet"]);
        let remove = Action::Remove(Remove { path: "a.parquet".into(), data_change: true, ..Default::default() });
        assert_eq!(appended(&[remove, add("c.parquet")], &mut Vec::new()), Some("removed data files"));
        let metadata = Action::Metadata(Default::default());
        assert!(appended(&[metadata], &mut Vec::new()).is_some());
    }
}
