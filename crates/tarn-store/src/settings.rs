//! Workspace settings that are decided once and kept (the workspace id).

use crate::db::{OptionalExtension, params};

use crate::{Result, Store};

impl Store {
    /// The stored value for `key`, or `make()` stored first.
    pub fn setting_or_init(&self, key: &str, make: impl FnOnce() -> String) -> Result<String> {
        let conn = self.conn();
        if let Some(v) = conn.query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| r.get(0)).optional()? {
            return Ok(v);
        }
        let value = make();
        conn.execute("INSERT INTO settings (key, value) VALUES (?1, ?2)", params![key, value])?;
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn settings_are_decided_once() {
        let store = crate::test_store();
        assert_eq!(store.setting_or_init("k", || "a".into()).unwrap(), "a");
        assert_eq!(store.setting_or_init("k", || "b".into()).unwrap(), "a");
    }
}
