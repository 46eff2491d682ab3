//! The directory's groups addressed by name, as the legacy Groups API 2.0
//! (`/api/2.0/groups/*`, the `databricks groups` command of the legacy CLI)
//! addresses them: the same groups and members SCIM serves, so a group made
//! here is one `w.groups` lists. Membership changes go through SCIM PATCH
//! operations on the group, so both APIs keep one set of rules (admins
//! only, `users` not writable, no group inside itself).

use serde_json::json;
use tarn_store::USERS_GROUP;

use crate::directory::{Directory, Projection, ResourceKind, require_admin};
use crate::error::{IdentityError, Result};

/// A group member as the legacy API names it: a user (or a service
/// principal, by its application id) or a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberName {
    User(String),
    Group(String),
}

impl MemberName {
    /// The member a request names with exactly one of `user_name` and `group_name`.
    pub fn from_request(user_name: Option<&str>, group_name: Option<&str>) -> Result<Self> {
        let given = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
        match (given(user_name), given(group_name)) {
            (Some(user), None) => Ok(Self::User(user)),
            (None, Some(group)) => Ok(Self::Group(group)),
            _ => Err(IdentityError::InvalidParameter("Exactly one of user_name and group_name must be given".into())),
        }
    }
}

fn group_not_found(name: &str) -> IdentityError {
    IdentityError::NotFound(format!("Group {name} does not exist"))
}

impl Directory {
    /// Every group's name, `admins` and `users` included, sorted.
    pub fn group_names(&self) -> Result<Vec<String>> {
        let mut names: Vec<String> = self.store.list_groups()?.into_iter().map(|g| g.display_name).collect();
        names.sort();
        Ok(names)
    }

    /// Creates an empty group called `name`.
    pub fn create_group_named(&self, caller: &tarn_store::User, name: &str) -> Result<()> {
        if name.trim().is_empty() {
            return Err(IdentityError::InvalidParameter("group_name must not be empty".into()));
        }
        self.create(caller, ResourceKind::Groups, &json!({"displayName": name}))?;
        Ok(())
    }

    /// Deletes the group called `name` (not `admins` or `users`).
    pub fn delete_group_named(&self, caller: &tarn_store::User, name: &str) -> Result<()> {
        require_admin(caller, "delete a group")?;
        let id = self.group_id(name)?;
        self.delete(caller, ResourceKind::Groups, &id.to_string())
    }

    /// A group's direct members: users by user name, service principals by
    /// application id, groups by name.
    pub fn members_named(&self, group: &str) -> Result<Vec<MemberName>> {
        let id = self.group_id(group)?;
        let view = self.get(ResourceKind::Groups, &id.to_string(), &Projection::default())?;
        let mut members = Vec::new();
        for member in view["members"].as_array().into_iter().flatten() {
            let Some(id) = member["value"].as_str().and_then(|v| v.parse::<i64>().ok()) else { continue };
            if let Some(principal) = self.store.get_principal(id)? {
                members.push(MemberName::User(principal.user_name));
            } else if let Some(group) = self.store.get_group(id)? {
                members.push(MemberName::Group(group.display_name));
            }
        }
        Ok(members)
    }

    /// The groups `member` is directly in (not the groups those are in).
    pub fn parents_named(&self, member: &MemberName) -> Result<Vec<String>> {
        let id = self.member_id(member)?;
        Ok(self.store.direct_groups(id)?.into_iter().map(|(_, name)| name).collect())
    }

    /// Adds `member` to `parent`; adding a member already there changes nothing.
    pub fn add_member_named(&self, caller: &tarn_store::User, parent: &str, member: &MemberName) -> Result<()> {
        require_admin(caller, "change a group")?;
        let parent_id = self.group_id(parent)?;
        let member_id = self.member_id(member)?;
        if self.store.direct_groups(member_id)?.iter().any(|(id, _)| *id == parent_id) {
            return Ok(());
        }
        // A group inside one of its own members would make every lookup of
        // effective groups circular.
        if self.store.effective_groups(parent_id)?.iter().any(|(id, _)| *id == member_id) {
            return Err(IdentityError::InvalidParameter(format!(
                "{parent} is already a member of {}, so it cannot contain it",
                display(member)
            )));
        }
        let body = json!({"Operations": [
            {"op": "add", "path": "members", "value": [{"value": member_id.to_string()}]}
        ]});
        self.patch(caller, ResourceKind::Groups, &parent_id.to_string(), &body)?;
        Ok(())
    }

    /// Removes `member` from `parent`, where it must be a direct member.
    pub fn remove_member_named(&self, caller: &tarn_store::User, parent: &str, member: &MemberName) -> Result<()> {
        require_admin(caller, "change a group")?;
        let parent_id = self.group_id(parent)?;
        let member_id = self.member_id(member)?;
        if parent == USERS_GROUP {
            return Err(IdentityError::InvalidParameter(
                "The 'users' group holds every active user; its members cannot be removed".into(),
            ));
        }
        if !self.store.direct_groups(member_id)?.iter().any(|(id, _)| *id == parent_id) {
            return Err(IdentityError::NotFound(format!("{} is not a member of {parent}", display(member))));
        }
        let body = json!({"Operations": [
            {"op": "remove", "path": format!("members[value eq \"{member_id}\"]")}
        ]});
        self.patch(caller, ResourceKind::Groups, &parent_id.to_string(), &body)?;
        Ok(())
    }

    fn group_id(&self, name: &str) -> Result<i64> {
        Ok(self.store.find_group(name)?.ok_or_else(|| group_not_found(name))?.id)
    }

    fn member_id(&self, member: &MemberName) -> Result<i64> {
        match member {
            MemberName::Group(name) => self.group_id(name),
            MemberName::User(name) => {
                let principal = match self.store.find_principal(name)? {
                    Some(p) => Some(p),
                    None => self.store.find_service_principal(name)?,
                };
                principal.map(|p| p.id).ok_or_else(|| IdentityError::NotFound(format!("User {name} does not exist")))
            }
        }
    }
}

fn display(member: &MemberName) -> String {
    match member {
        MemberName::User(name) => format!("User {name}"),
        MemberName::Group(name) => format!("Group {name}"),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use tarn_store::Store;

    use super::*;

    fn directory() -> (Directory, tarn_store::User, tarn_store::User) {
        let store = Arc::new(Store::open_in_memory().unwrap());
        let admin = store.ensure_admin("admin@x", "admin", 0).unwrap();
        let bob = store.ensure_user("bob@x", "bob", 0).unwrap();
        (Directory::new(store), admin, bob)
    }

    #[test]
    fn members_and_parents_by_name() {
        let (dir, admin, _bob) = directory();
        dir.create_group_named(&admin, "eng").unwrap();
        dir.create_group_named(&admin, "data").unwrap();
        let bob = MemberName::User("bob@x".into());
        dir.add_member_named(&admin, "eng", &bob).unwrap();
        dir.add_member_named(&admin, "eng", &bob).unwrap();
        dir.add_member_named(&admin, "data", &MemberName::Group("eng".into())).unwrap();
        assert_eq!(dir.members_named("eng").unwrap(), vec![bob.clone()]);
        assert_eq!(dir.members_named("data").unwrap(), vec![MemberName::Group("eng".into())]);
        assert_eq!(dir.parents_named(&bob).unwrap(), vec!["eng".to_string()]);
        assert!(dir.group_names().unwrap().contains(&"data".to_string()));
        // A group inside its own member would be a cycle.
        let cycle = dir.add_member_named(&admin, "eng", &MemberName::Group("data".into()));
        assert!(matches!(cycle, Err(IdentityError::InvalidParameter(_))));
        dir.remove_member_named(&admin, "eng", &bob).unwrap();
        assert!(matches!(dir.remove_member_named(&admin, "eng", &bob), Err(IdentityError::NotFound(_))));
        assert!(dir.parents_named(&bob).unwrap().is_empty());
        dir.delete_group_named(&admin, "data").unwrap();
        assert!(matches!(dir.members_named("data"), Err(IdentityError::NotFound(_))));
    }

    #[test]
    fn only_admins_write_and_unknown_names_are_not_found() {
        let (dir, admin, bob) = directory();
        assert!(matches!(dir.create_group_named(&bob, "eng"), Err(IdentityError::PermissionDenied(_))));
        dir.create_group_named(&admin, "eng").unwrap();
        assert!(matches!(dir.create_group_named(&admin, "eng"), Err(IdentityError::AlreadyExists(_))));
        let carol = MemberName::User("carol@x".into());
        assert!(matches!(dir.add_member_named(&admin, "eng", &carol), Err(IdentityError::NotFound(_))));
        let bob_name = MemberName::User("bob@x".into());
        assert!(matches!(dir.add_member_named(&bob, "eng", &bob_name), Err(IdentityError::PermissionDenied(_))));
        assert!(matches!(dir.add_member_named(&admin, "nope", &bob_name), Err(IdentityError::NotFound(_))));
        assert!(matches!(dir.delete_group_named(&bob, "eng"), Err(IdentityError::PermissionDenied(_))));
        assert!(matches!(dir.delete_group_named(&admin, "admins"), Err(IdentityError::InvalidParameter(_))));
        assert!(MemberName::from_request(Some("a"), Some("b")).is_err());
        assert!(MemberName::from_request(None, Some(" ")).is_err());
    }
}
