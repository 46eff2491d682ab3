//! Git folders (repos) and git credentials. A repo's id is the workspace
//! object id of its root (`tarn-files` writes that row); its checkout is on
//! disk (`tarn-repos` decides where). A credential's token is sealed by
//! `tarn-identity`'s key before it reaches this module.

use crate::db::{OptionalExtension, Row, params};

use crate::{Result, Store};

/// A repo as stored. `branch` is `None` on a detached HEAD (a tag or a
/// commit checked out); `sparse_checkout` is a JSON array of patterns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepoRow {
    pub id: i64,
    pub path: String,
    pub url: String,
    pub provider: String,
    pub branch: Option<String>,
    pub head_commit_id: String,
    pub sparse_checkout: Option<String>,
    pub git_credential_id: Option<i64>,
    pub creator: String,
    pub created_at: i64,
}

const REPO_COLUMNS: &str =
    "id, path, url, provider, branch, head_commit_id, sparse_checkout, git_credential_id, creator, created_at";

fn repo(r: &Row<'_>) -> crate::db::Result<RepoRow> {
    Ok(RepoRow {
        id: r.get(0)?,
        path: r.get(1)?,
        url: r.get(2)?,
        provider: r.get(3)?,
        branch: r.get(4)?,
        head_commit_id: r.get(5)?,
        sparse_checkout: r.get(6)?,
        git_credential_id: r.get(7)?,
        creator: r.get(8)?,
        created_at: r.get(9)?,
    })
}

/// A git credential as stored; `sealed_token` is never in clear.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitCredentialRow {
    pub credential_id: i64,
    pub user_name: String,
    pub git_provider: String,
    pub git_username: Option<String>,
    pub git_email: Option<String>,
    pub name: Option<String>,
    pub is_default_for_provider: bool,
    pub sealed_token: Option<Vec<u8>>,
    pub created_at: i64,
}

const CREDENTIAL_COLUMNS: &str = "credential_id, user_name, git_provider, git_username, git_email, name, \
     is_default_for_provider, sealed_token, created_at";

fn credential(r: &Row<'_>) -> crate::db::Result<GitCredentialRow> {
    Ok(GitCredentialRow {
        credential_id: r.get(0)?,
        user_name: r.get(1)?,
        git_provider: r.get(2)?,
        git_username: r.get(3)?,
        git_email: r.get(4)?,
        name: r.get(5)?,
        is_default_for_provider: r.get(6)?,
        sealed_token: r.get(7)?,
        created_at: r.get(8)?,
    })
}

impl Store {
    pub fn insert_repo(&self, r: &RepoRow) -> Result<()> {
        self.conn().execute(
            &format!("INSERT INTO repos ({REPO_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                r.id,
                r.path,
                r.url,
                r.provider,
                r.branch,
                r.head_commit_id,
                r.sparse_checkout,
                r.git_credential_id,
                r.creator,
                r.created_at
            ],
        )?;
        Ok(())
    }

    pub fn get_repo(&self, id: i64) -> Result<Option<RepoRow>> {
        let sql = format!("SELECT {REPO_COLUMNS} FROM repos WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], repo).optional()?)
    }

    /// Repos whose path starts with `prefix` (all for ""), by id, from
    /// `after_id` on (exclusive), at most `limit`.
    pub fn list_repos(&self, prefix: &str, after_id: i64, limit: usize) -> Result<Vec<RepoRow>> {
        let conn = self.conn();
        let sql = format!(
            "SELECT {REPO_COLUMNS} FROM repos WHERE substr(path, 1, length(?1)) = ?1 AND id > ?2 ORDER BY id LIMIT ?3"
        );
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map(params![prefix, after_id, limit as i64], repo)?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Writes what a checkout changed: branch, head, patterns, credential.
    pub fn update_repo_checkout(&self, r: &RepoRow) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE repos SET branch = ?2, head_commit_id = ?3, sparse_checkout = ?4, git_credential_id = ?5
             WHERE id = ?1",
            params![r.id, r.branch, r.head_commit_id, r.sparse_checkout, r.git_credential_id],
        )? > 0)
    }

    pub fn delete_repo(&self, id: i64) -> Result<bool> {
        Ok(self.conn().execute("DELETE FROM repos WHERE id = ?1", [id])? > 0)
    }

    /// Stores a new credential (its `credential_id` ignored); when it is
    /// the default for its provider, the user's others for that provider
    /// stop being. Returns the new id.
    pub fn insert_git_credential(&self, c: &GitCredentialRow) -> Result<i64> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if c.is_default_for_provider {
            clear_default(&tx, &c.user_name, &c.git_provider, 0)?;
        }
        let id = tx.query_row(
            "INSERT INTO git_credentials (user_name, git_provider, git_username, git_email, name,
                 is_default_for_provider, sealed_token, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING credential_id",
            params![
                c.user_name,
                c.git_provider,
                c.git_username,
                c.git_email,
                c.name,
                c.is_default_for_provider,
                c.sealed_token,
                c.created_at
            ],
            |r| r.get(0),
        )?;
        tx.commit()?;
        Ok(id)
    }

    /// The user's credential with that id.
    pub fn get_git_credential(&self, user: &str, id: i64) -> Result<Option<GitCredentialRow>> {
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM git_credentials WHERE user_name = ?1 AND credential_id = ?2");
        Ok(self.conn().query_row(&sql, params![user, id], credential).optional()?)
    }

    pub fn list_git_credentials(&self, user: &str) -> Result<Vec<GitCredentialRow>> {
        let conn = self.conn();
        let sql =
            format!("SELECT {CREDENTIAL_COLUMNS} FROM git_credentials WHERE user_name = ?1 ORDER BY credential_id");
        let mut stmt = conn.prepare(&sql)?;
        let rows = stmt.query_map([user], credential)?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Rewrites a credential (matched by user and id); the default flag
    /// moves as on insert.
    pub fn update_git_credential(&self, c: &GitCredentialRow) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        if c.is_default_for_provider {
            clear_default(&tx, &c.user_name, &c.git_provider, c.credential_id)?;
        }
        let n = tx.execute(
            "UPDATE git_credentials SET git_provider = ?3, git_username = ?4, git_email = ?5, name = ?6,
                 is_default_for_provider = ?7, sealed_token = ?8
             WHERE user_name = ?1 AND credential_id = ?2",
            params![
                c.user_name,
                c.credential_id,
                c.git_provider,
                c.git_username,
                c.git_email,
                c.name,
                c.is_default_for_provider,
                c.sealed_token
            ],
        )?;
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn delete_git_credential(&self, user: &str, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM git_credentials WHERE user_name = ?1 AND credential_id = ?2", params![user, id])?
            > 0)
    }
}

fn clear_default(tx: &crate::db::Conn, user: &str, provider: &str, keep: i64) -> Result<()> {
    tx.execute(
        "UPDATE git_credentials SET is_default_for_provider = 0
         WHERE user_name = ?1 AND lower(git_provider) = lower(?2) AND credential_id != ?3",
        params![user, provider, keep],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo_row(id: i64, path: &str) -> RepoRow {
        RepoRow {
            id,
            path: path.into(),
            url: "file:///r".into(),
            provider: "gitHub".into(),
            branch: Some("main".into()),
            head_commit_id: "abc".into(),
            sparse_checkout: None,
            git_credential_id: None,
            creator: "me".into(),
            created_at: 1,
        }
    }

    #[test]
    fn repos_list_by_prefix_and_page_by_id() {
        let store = crate::test_store();
        store.insert_repo(&repo_row(3, "/Repos/a/x")).unwrap();
        store.insert_repo(&repo_row(5, "/Repos/b/y")).unwrap();
        store.insert_repo(&repo_row(7, "/Repos/a/z")).unwrap();
        let ids = |rows: Vec<RepoRow>| rows.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(ids(store.list_repos("/Repos/a/", 0, 10).unwrap()), [3, 7]);
        assert_eq!(ids(store.list_repos("", 3, 1).unwrap()), [5]);
        let mut moved = repo_row(5, "/Repos/b/y");
        moved.branch = None;
        moved.head_commit_id = "def".into();
        assert!(store.update_repo_checkout(&moved).unwrap());
        assert_eq!(store.get_repo(5).unwrap().unwrap(), moved);
        assert!(store.delete_repo(5).unwrap());
        assert!(store.get_repo(5).unwrap().is_none());
    }

    #[test]
    fn credentials_are_per_user_with_one_default_per_provider() {
        let store = crate::test_store();
        let mut c = GitCredentialRow {
            credential_id: 0,
            user_name: "ann".into(),
            git_provider: "gitHub".into(),
            git_username: Some("ann".into()),
            git_email: None,
            name: None,
            is_default_for_provider: true,
            sealed_token: Some(vec![1, 2]),
            created_at: 1,
        };
        let first = store.insert_git_credential(&c).unwrap();
        let second = store.insert_git_credential(&c).unwrap();
        assert!(!store.get_git_credential("ann", first).unwrap().unwrap().is_default_for_provider);
        assert!(store.get_git_credential("bob", second).unwrap().is_none());
        c.credential_id = first;
        assert!(store.update_git_credential(&c).unwrap());
        assert!(!store.get_git_credential("ann", second).unwrap().unwrap().is_default_for_provider);
        assert_eq!(store.list_git_credentials("ann").unwrap().len(), 2);
        assert!(store.delete_git_credential("ann", first).unwrap());
        assert!(!store.delete_git_credential("bob", second).unwrap());
    }
}
