//! The schedulers lease. The `tarn serve` holding it runs what must run
//! once per workspace: engines and contexts, run drivers and triggers,
//! pipeline updates, alert and monitor schedules, autotermination. At start
//! it resumes what a predecessor left in flight, so two holders at once
//! would each take the other's work.
//!
//! Without `TARN_REPLICA` a second serve is refused. With it, a serve that
//! finds the lease held is a standby replica: it serves the API (forwarding
//! what only the holder can answer, see `crate::replica`) and takes the
//! lease when the holder stops renewing it.
//!
//! The holder is `host/pid/start ticks`; a holder on this host whose
//! process is gone (killed with -9) is replaced at once, any other only
//! once its lease expires, `TTL` after its last renewal. Run transitions
//! are fenced with the epoch the lease was taken at.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tarn_core::time::now_ms;
use tarn_store::{LeaseClaim, Store};

pub const NAME: &str = "schedulers";
const TTL: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);
/// How often a standby tries to take the lease.
const STANDBY_POLL: Duration = Duration::from_secs(1);

pub struct SchedulerLease {
    store: Arc<Store>,
    holder: String,
    /// Where this serve answers (JSON: `api`, `gateway`), kept with the lease.
    address: String,
    /// Set when another process took the lease from this one.
    lost: AtomicBool,
}

fn ttl_ms() -> i64 {
    i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX)
}

fn this_process() -> String {
    let pid = std::process::id();
    let ticks = tarn_compute::process::start_ticks(pid).unwrap_or(0);
    format!("{}/{pid}/{ticks}", tarn_compute::process::host_name())
}

/// Whether `holder` names a process of this host that is no longer alive.
fn dead_here(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, '/');
    let (Some(ticks), Some(pid), Some(on)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let (Ok(ticks), Ok(pid)) = (ticks.parse::<i64>(), pid.parse::<u32>()) else { return false };
    on == tarn_compute::process::host_name() && tarn_compute::process::start_ticks(pid) != Some(ticks)
}

impl SchedulerLease {
    pub fn new(store: Arc<Store>, address: String) -> Self {
        Self { store, holder: this_process(), address, lost: AtomicBool::new(false) }
    }

    /// Takes the lease if it is free, expired, or its holder is known
    /// dead: the epoch; else `Err` names the holder.
    pub fn try_take(&self) -> Result<Result<i64, String>, String> {
        let current = self.store.lease(NAME).map_err(|e| e.to_string())?;
        let stale = current.as_ref().map(|l| l.holder.as_str()).filter(|h| dead_here(h));
        match self.claim(stale)? {
            Some(epoch) => Ok(Ok(epoch)),
            None => Ok(Err(current.map(|l| l.holder).unwrap_or_default())),
        }
    }

    fn claim(&self, stale: Option<&str>) -> Result<Option<i64>, String> {
        let claim = LeaseClaim {
            name: NAME,
            holder: &self.holder,
            address: Some(&self.address),
            stale,
            now: now_ms(),
            ttl_ms: ttl_ms(),
        };
        self.store.acquire_lease(&claim).map_err(|e| e.to_string())
    }

    /// The refusal of a serve without `TARN_REPLICA`.
    pub fn refusal(holder: &str) -> String {
        format!(
            "another tarn serve ({holder}) is serving this workspace's metadata; stop it, wait {} s after it \
             stopped, or run both with TARN_REPLICA=true (docs/deployment.md)",
            TTL.as_secs()
        )
    }

    /// A standby's wait: tries every second until the lease is its own.
    pub async fn wait_for(&self) -> i64 {
        loop {
            match self.try_take() {
                Ok(Ok(epoch)) => return epoch,
                Ok(Err(_)) => {}
                Err(e) => tracing::warn!(error = %e, "trying the schedulers lease"),
            }
            tokio::time::sleep(STANDBY_POLL).await;
        }
    }

    /// Renews the lease every few seconds; if another process has taken it
    /// (this one stalled past the TTL), asks the server to stop.
    pub fn spawn_renewal(self: &Arc<Self>, stop: Arc<tokio::sync::watch::Sender<bool>>) -> tokio::task::JoinHandle<()> {
        let lease = self.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match lease.claim(None) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::error!("another tarn serve took the schedulers lease; stopping");
                        lease.lost.store(true, Ordering::SeqCst);
                        let _ = stop.send(true);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the schedulers lease"),
                }
            }
        })
    }

    /// Whether another process took the lease from this one (it stalled
    /// past the TTL): what this one ran is the new holder's now.
    pub fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    pub fn release(&self) {
        if let Err(e) = self.store.release_lease(NAME, &self.holder) {
            tracing::warn!(error = %e, "releasing the schedulers lease");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_holder_is_dead_only_on_this_host_with_its_process_gone() {
        let me = this_process();
        assert!(!dead_here(&me));
        let pid = std::process::id();
        let host = tarn_compute::process::host_name();
        assert!(dead_here(&format!("{host}/{pid}/1")));
        assert!(!dead_here(&format!("elsewhere/{pid}/1")));
        assert!(!dead_here("garbage"));
    }
}
