//! Leases: one holder at a time per name, for a time, with an epoch that
//! grows whenever the holder changes. The rule (who may take a lease) is
//! one SQL statement, atomic on both databases.

use crate::db::{OptionalExtension, params};
use crate::{Result, Store};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseRow {
    pub holder: String,
    pub epoch: i64,
    pub expires_at: i64,
}

impl Store {
    /// Takes or renews lease `name` for `holder` until `now + ttl_ms`: free,
    /// expired, already `holder`'s, or held by `stale` (a holder the caller
    /// knows is dead). Answers the epoch, or `None` when another holds it.
    pub fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        stale: Option<&str>,
        now: i64,
        ttl_ms: i64,
    ) -> Result<Option<i64>> {
        Ok(self
            .conn()
            .query_row(
                "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?1, ?2, 1, CAST(?4 AS BIGINT) + ?5)
                 ON CONFLICT (name) DO UPDATE SET
                     epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
                     holder = excluded.holder, expires_at = excluded.expires_at
                 WHERE leases.holder = excluded.holder OR leases.expires_at < ?4 OR leases.holder = ?3
                 RETURNING epoch",
                params![name, holder, stale, now, ttl_ms],
                |r| r.get(0),
            )
            .optional()?)
    }

    /// Lets lease `name` go if `holder` has it: it expires now, its epoch
    /// stays, so the next holder's is still greater.
    pub fn release_lease(&self, name: &str, holder: &str) -> Result<()> {
        self.conn()
            .execute("UPDATE leases SET expires_at = 0 WHERE name = ?1 AND holder = ?2", params![name, holder])?;
        Ok(())
    }

    pub fn lease(&self, name: &str) -> Result<Option<LeaseRow>> {
        Ok(self
            .conn()
            .query_row("SELECT holder, epoch, expires_at FROM leases WHERE name = ?1", [name], |r| {
                Ok(LeaseRow { holder: r.get(0)?, epoch: r.get(1)?, expires_at: r.get(2)? })
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn one_holder_at_a_time_until_it_expires_or_is_known_dead() {
        let store = crate::test_store();
        assert_eq!(store.acquire_lease("w", "a", None, 1_000, 100).unwrap(), Some(1));
        // Renewing keeps the epoch; another holder waits for the expiry.
        assert_eq!(store.acquire_lease("w", "a", None, 1_050, 100).unwrap(), Some(1));
        assert_eq!(store.acquire_lease("w", "b", None, 1_100, 100).unwrap(), None);
        assert_eq!(store.lease("w").unwrap().unwrap().holder, "a");
        assert_eq!(store.acquire_lease("w", "b", None, 1_151, 100).unwrap(), Some(2));
        // A holder known dead is replaced at once; a wrong guess changes nothing.
        assert_eq!(store.acquire_lease("w", "c", Some("a"), 1_160, 100).unwrap(), None);
        assert_eq!(store.acquire_lease("w", "c", Some("b"), 1_160, 100).unwrap(), Some(3));
        store.release_lease("w", "b").unwrap();
        assert_eq!(store.lease("w").unwrap().unwrap().holder, "c");
        store.release_lease("w", "c").unwrap();
        assert_eq!(store.lease("w").unwrap().unwrap().expires_at, 0);
        assert_eq!(store.acquire_lease("w", "d", None, 1_170, 100).unwrap(), Some(4));
    }
}
