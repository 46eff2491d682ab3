//! Users, service principals and groups, and group membership (nested).
//! Ids are unique across users and groups (see migration 0015), so a
//! member id names one principal. The `users` group is every active user
//! and service principal, and is not stored.

use crate::db::{Conn as Connection, DbError, OptionalExtension, Row, params};

use crate::{Result, Store, StoreError};

/// The group whose members (direct or nested) are workspace admins.
pub const ADMINS_GROUP: &str = "admins";
/// The group every active user and service principal is in.
pub const USERS_GROUP: &str = "users";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrincipalKind {
    User,
    ServicePrincipal,
}

impl PrincipalKind {
    fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::ServicePrincipal => "service_principal",
        }
    }
}

/// A user or a service principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrincipalRow {
    pub id: i64,
    pub kind: PrincipalKind,
    /// A user's `userName`; a service principal's application id.
    pub user_name: String,
    pub display_name: String,
    pub application_id: Option<String>,
    pub active: bool,
    pub external_id: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub entitlements: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRow {
    pub id: i64,
    pub display_name: String,
    pub external_id: Option<String>,
    pub entitlements: Vec<String>,
    /// Direct members' ids.
    pub members: Vec<i64>,
}

/// What a write to a principal or group ran into.
#[derive(Debug, thiserror::Error)]
pub enum PrincipalWriteError {
    /// A name (userName, applicationId, displayName of a group) is taken.
    #[error("already exists")]
    Taken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<DbError> for PrincipalWriteError {
    fn from(e: DbError) -> Self {
        if e.is_unique_violation() { Self::Taken } else { Self::Store(e.into()) }
    }
}

const PRINCIPAL_COLUMNS: &str = "id, kind, user_name, display_name, application_id, active, external_id, given_name, \
                                 family_name, entitlements";

/// The JSON list of entitlements in column `index`.
fn entitlements(r: &Row<'_>, index: usize) -> crate::db::Result<Vec<String>> {
    let text: String = r.get(index)?;
    serde_json::from_str(&text).map_err(|e| DbError::Column { index, problem: e.to_string() })
}

fn principal(r: &Row<'_>) -> crate::db::Result<PrincipalRow> {
    let kind: String = r.get(1)?;
    Ok(PrincipalRow {
        id: r.get(0)?,
        kind: if kind == "service_principal" { PrincipalKind::ServicePrincipal } else { PrincipalKind::User },
        user_name: r.get(2)?,
        display_name: r.get(3)?,
        application_id: r.get(4)?,
        active: r.get(5)?,
        external_id: r.get(6)?,
        given_name: r.get(7)?,
        family_name: r.get(8)?,
        entitlements: entitlements(r, 9)?,
    })
}

/// A fresh principal id: 16 digits, like Databricks', unused by any user or group.
pub(crate) fn new_principal_id(conn: &Connection) -> Result<i64> {
    loop {
        let id = tarn_core::id::principal_id();
        let taken: bool = conn.query_row(
            "SELECT EXISTS (SELECT 1 FROM users WHERE id = ?1) OR EXISTS (SELECT 1 FROM groups WHERE id = ?1)",
            [id],
            |r| r.get(0),
        )?;
        if !taken {
            return Ok(id);
        }
    }
}

fn json_list(items: &[String]) -> String {
    serde_json::Value::from(items.to_vec()).to_string()
}

impl Store {
    /// Adds a user or service principal (its `id` is ignored and allocated).
    pub fn insert_principal(
        &self,
        row: &PrincipalRow,
        now: i64,
    ) -> std::result::Result<PrincipalRow, PrincipalWriteError> {
        let conn = self.conn();
        let id = new_principal_id(&conn)?;
        conn.execute(
            "INSERT INTO users (id, kind, user_name, display_name, application_id, active, external_id, given_name,
                                family_name, entitlements, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id,
                row.kind.as_str(),
                row.user_name,
                row.display_name,
                row.application_id,
                row.active,
                row.external_id,
                row.given_name,
                row.family_name,
                json_list(&row.entitlements),
                now
            ],
        )?;
        Ok(PrincipalRow { id, ..row.clone() })
    }

    /// Writes every field of an existing principal but its id, kind and name.
    pub fn update_principal(&self, row: &PrincipalRow) -> std::result::Result<bool, PrincipalWriteError> {
        let n = self.conn().execute(
            "UPDATE users SET display_name = ?2, active = ?3, external_id = ?4, given_name = ?5, family_name = ?6,
                              entitlements = ?7
             WHERE id = ?1",
            params![
                row.id,
                row.display_name,
                row.active,
                row.external_id,
                row.given_name,
                row.family_name,
                json_list(&row.entitlements)
            ],
        )?;
        Ok(n > 0)
    }

    pub fn get_principal(&self, id: i64) -> Result<Option<PrincipalRow>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM users WHERE id = ?1");
        Ok(self.reader().query_row(&sql, [id], principal).optional()?)
    }

    pub fn find_principal(&self, user_name: &str) -> Result<Option<PrincipalRow>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM users WHERE user_name = ?1");
        Ok(self.conn().query_row(&sql, [user_name], principal).optional()?)
    }

    pub fn find_service_principal(&self, application_id: &str) -> Result<Option<PrincipalRow>> {
        let sql = format!("SELECT {PRINCIPAL_COLUMNS} FROM users WHERE application_id = ?1");
        Ok(self.conn().query_row(&sql, [application_id], principal).optional()?)
    }

    /// Users or service principals, oldest first.
    pub fn list_principals(&self, kind: PrincipalKind) -> Result<Vec<PrincipalRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT {PRINCIPAL_COLUMNS} FROM users WHERE kind = ?1 ORDER BY {}",
            conn.dialect().insertion_order()
        ))?;
        let rows = stmt.query_map([kind.as_str()], principal)?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Deletes a principal, its tokens and its memberships; false if there was none.
    pub fn delete_principal(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM tokens WHERE user_id = ?1", [id])?;
        tx.execute("DELETE FROM group_members WHERE member_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM users WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// Adds a group with its members (its `id` is ignored and allocated).
    pub fn insert_group(&self, row: &GroupRow, now: i64) -> std::result::Result<GroupRow, PrincipalWriteError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let id = new_principal_id(&tx)?;
        tx.execute(
            "INSERT INTO groups (id, display_name, external_id, entitlements, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![id, row.display_name, row.external_id, json_list(&row.entitlements), now],
        )?;
        set_members(&tx, id, &row.members)?;
        tx.commit()?;
        Ok(GroupRow { id, ..row.clone() })
    }

    /// Writes a group's name, external id, entitlements and members.
    pub fn update_group(&self, row: &GroupRow) -> std::result::Result<bool, PrincipalWriteError> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        let n = tx.execute(
            "UPDATE groups SET display_name = ?2, external_id = ?3, entitlements = ?4 WHERE id = ?1",
            params![row.id, row.display_name, row.external_id, json_list(&row.entitlements)],
        )?;
        if n > 0 {
            set_members(&tx, row.id, &row.members)?;
        }
        tx.commit()?;
        Ok(n > 0)
    }

    pub fn get_group(&self, id: i64) -> Result<Option<GroupRow>> {
        let conn = self.conn();
        let group = conn
            .query_row("SELECT id, display_name, external_id, entitlements FROM groups WHERE id = ?1", [id], group)
            .optional()?;
        group.map(|g| with_members(&conn, g)).transpose()
    }

    pub fn find_group(&self, display_name: &str) -> Result<Option<GroupRow>> {
        let conn = self.conn();
        let group = conn
            .query_row(
                "SELECT id, display_name, external_id, entitlements FROM groups WHERE display_name = ?1",
                [display_name],
                group,
            )
            .optional()?;
        group.map(|g| with_members(&conn, g)).transpose()
    }

    /// Every group, oldest first, with its direct members.
    pub fn list_groups(&self) -> Result<Vec<GroupRow>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(&format!(
            "SELECT id, display_name, external_id, entitlements FROM groups ORDER BY {}",
            conn.dialect().insertion_order()
        ))?;
        let groups = stmt.query_map(crate::db::params![], group)?.collect::<crate::db::Result<Vec<_>>>()?;
        groups.into_iter().map(|g| with_members(&conn, g)).collect()
    }

    /// Deletes a group and its memberships (as a group and of its members).
    pub fn delete_group(&self, id: i64) -> Result<bool> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM group_members WHERE member_id = ?1 OR group_id = ?1", [id])?;
        let n = tx.execute("DELETE FROM groups WHERE id = ?1", [id])?;
        tx.commit()?;
        Ok(n > 0)
    }

    /// The groups `member` is directly in (not `users`), by id.
    pub fn direct_groups(&self, member: i64) -> Result<Vec<(i64, String)>> {
        let conn = self.conn();
        let mut stmt = conn.prepare(
            "SELECT g.id, g.display_name FROM group_members m JOIN groups g ON g.id = m.group_id
             WHERE m.member_id = ?1 ORDER BY g.display_name",
        )?;
        let rows = stmt.query_map([member], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// The groups `member` is in directly or through nested groups (not `users`).
    pub fn effective_groups(&self, member: i64) -> Result<Vec<(i64, String)>> {
        let conn = self.reader();
        let mut stmt = conn.prepare(
            "WITH RECURSIVE member_of(id) AS (
                 SELECT group_id FROM group_members WHERE member_id = ?1
                 UNION SELECT m.group_id FROM group_members m JOIN member_of o ON m.member_id = o.id)
             SELECT g.id, g.display_name FROM member_of o JOIN groups g ON g.id = o.id ORDER BY g.display_name",
        )?;
        let rows = stmt.query_map([member], |r| Ok((r.get(0)?, r.get(1)?)))?;
        Ok(rows.collect::<crate::db::Result<_>>()?)
    }

    /// Whether `member` is in `admins`, directly or through nested groups.
    pub fn is_admin(&self, member: i64) -> Result<bool> {
        Ok(self.effective_groups(member)?.iter().any(|(_, name)| name == ADMINS_GROUP))
    }

    /// Makes `groups` the groups `member` is directly in.
    pub fn set_direct_groups(&self, member: i64, groups: &[i64]) -> Result<()> {
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        tx.execute("DELETE FROM group_members WHERE member_id = ?1", [member])?;
        for group in groups {
            tx.execute(
                "INSERT INTO group_members (group_id, member_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                [*group, member],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Adds `member` to the group named `group` (which must exist).
    pub fn add_to_group(&self, group: &str, member: i64) -> Result<()> {
        self.conn().execute(
            "INSERT INTO group_members (group_id, member_id)
             SELECT id, ?2 FROM groups WHERE display_name = ?1 ON CONFLICT DO NOTHING",
            params![group, member],
        )?;
        Ok(())
    }
}

fn group(r: &Row<'_>) -> crate::db::Result<GroupRow> {
    Ok(GroupRow {
        id: r.get(0)?,
        display_name: r.get(1)?,
        external_id: r.get(2)?,
        entitlements: entitlements(r, 3)?,
        members: Vec::new(),
    })
}

fn with_members(conn: &Connection, mut group: GroupRow) -> Result<GroupRow> {
    let mut stmt = conn.prepare(&format!(
        "SELECT member_id FROM group_members WHERE group_id = ?1 ORDER BY {}",
        conn.dialect().insertion_order()
    ))?;
    group.members = stmt.query_map([group.id], |r| r.get(0))?.collect::<crate::db::Result<_>>()?;
    Ok(group)
}

fn set_members(conn: &Connection, group: i64, members: &[i64]) -> crate::db::Result<()> {
    conn.execute("DELETE FROM group_members WHERE group_id = ?1", [group])?;
    for member in members {
        conn.execute(
            "INSERT INTO group_members (group_id, member_id) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            [group, *member],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> PrincipalRow {
        PrincipalRow {
            id: 0,
            kind: PrincipalKind::User,
            user_name: name.into(),
            display_name: name.into(),
            application_id: None,
            active: true,
            external_id: None,
            given_name: None,
            family_name: None,
            entitlements: vec![],
        }
    }

    #[test]
    fn nested_groups_make_an_admin_and_names_stay_unique() {
        let store = crate::test_store();
        let ana = store.insert_principal(&user("ana@example.com"), 1).unwrap();
        assert!(matches!(store.insert_principal(&user("ana@example.com"), 2), Err(PrincipalWriteError::Taken)));
        let team = GroupRow {
            id: 0,
            display_name: "team".into(),
            external_id: None,
            entitlements: vec![],
            members: vec![ana.id],
        };
        let team = store.insert_group(&team, 3).unwrap();
        assert!(!store.is_admin(ana.id).unwrap());
        store.add_to_group(ADMINS_GROUP, team.id).unwrap();
        assert!(store.is_admin(ana.id).unwrap());
        let names: Vec<String> = store.effective_groups(ana.id).unwrap().into_iter().map(|(_, n)| n).collect();
        assert_eq!(names, ["admins", "team"]);
        assert!(store.delete_group(team.id).unwrap());
        assert!(!store.is_admin(ana.id).unwrap());
        assert!(store.get_group(team.id).unwrap().is_none());
    }
}
