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
    /// Where the holder answers (JSON), if it said.
    pub address: Option<String>,
}

/// A lease and the epoch a writer holds it at: writes fenced with it are
/// refused once another holder took the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fence<'a> {
    pub lease: &'a str,
    pub epoch: i64,
}

/// A request to take or renew a lease.
#[derive(Debug, Clone, Copy)]
pub struct LeaseClaim<'a> {
    pub name: &'a str,
    pub holder: &'a str,
    /// Where the holder answers, kept with the lease.
    pub address: Option<&'a str>,
    /// A holder the caller knows is dead, replaced at once.
    pub stale: Option<&'a str>,
    pub now: i64,
    pub ttl_ms: i64,
}

impl Store {
    /// Takes or renews the claim's lease for its holder until `now +
    /// ttl_ms`: free, expired, already the holder's, or held by `stale`.
    /// Answers the epoch, or `None` when another holds it.
    pub fn acquire_lease(&self, claim: &LeaseClaim<'_>) -> Result<Option<i64>> {
        let LeaseClaim { name, holder, address, stale, now, ttl_ms } = *claim;
        Ok(self
            .conn()
            .query_row(
                "INSERT INTO leases (name, holder, epoch, expires_at, address)
                 VALUES (?1, ?2, 1, CAST(?4 AS BIGINT) + ?5, ?6)
                 ON CONFLICT (name) DO UPDATE SET
                     epoch = CASE WHEN leases.holder = excluded.holder THEN leases.epoch ELSE leases.epoch + 1 END,
                     holder = excluded.holder, expires_at = excluded.expires_at, address = excluded.address
                 WHERE leases.holder = excluded.holder OR leases.expires_at < ?4 OR leases.holder = ?3
                 RETURNING epoch",
                params![name, holder, stale, now, ttl_ms, address],
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
            .reader()
            .query_row("SELECT holder, epoch, expires_at, address FROM leases WHERE name = ?1", [name], |r| {
                Ok(LeaseRow { holder: r.get(0)?, epoch: r.get(1)?, expires_at: r.get(2)?, address: r.get(3)? })
            })
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseClaim;

    fn claim<'a>(holder: &'a str, stale: Option<&'a str>, now: i64) -> LeaseClaim<'a> {
        LeaseClaim { name: "w", holder, address: Some(holder), stale, now, ttl_ms: 100 }
    }

    #[test]
    fn one_holder_at_a_time_until_it_expires_or_is_known_dead() {
        let store = crate::test_store();
        assert_eq!(store.acquire_lease(&claim("a", None, 1_000)).unwrap(), Some(1));
        // Renewing keeps the epoch; another holder waits for the expiry.
        assert_eq!(store.acquire_lease(&claim("a", None, 1_050)).unwrap(), Some(1));
        assert_eq!(store.acquire_lease(&claim("b", None, 1_100)).unwrap(), None);
        let held = store.lease("w").unwrap().unwrap();
        assert_eq!((held.holder.as_str(), held.address.as_deref()), ("a", Some("a")));
        assert_eq!(store.acquire_lease(&claim("b", None, 1_151)).unwrap(), Some(2));
        assert_eq!(store.lease("w").unwrap().unwrap().address.as_deref(), Some("b"));
        // A holder known dead is replaced at once; a wrong guess changes nothing.
        assert_eq!(store.acquire_lease(&claim("c", Some("a"), 1_160)).unwrap(), None);
        assert_eq!(store.acquire_lease(&claim("c", Some("b"), 1_160)).unwrap(), Some(3));
        store.release_lease("w", "b").unwrap();
        assert_eq!(store.lease("w").unwrap().unwrap().holder, "c");
        store.release_lease("w", "c").unwrap();
        assert_eq!(store.lease("w").unwrap().unwrap().expires_at, 0);
        assert_eq!(store.acquire_lease(&claim("d", None, 1_170)).unwrap(), Some(4));
    }
}
