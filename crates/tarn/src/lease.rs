//! The workspace lease `tarn serve` holds while it runs. A second `tarn
//! serve` on the same metadata (the same home on SQLite, the same
//! PostgreSQL database) is refused: at start a serve takes the runs,
//! updates and engines it finds in flight for a crashed predecessor's and
//! ends them, which would break a live one's.
//!
//! The holder is `host/pid/start ticks`; a holder on this host whose
//! process is gone (killed with -9) is replaced at once, any other only
//! once its lease expires, `TTL` after its last renewal.

use std::sync::Arc;
use std::time::Duration;

use tarn_core::time::now_ms;
use tarn_store::Store;

const NAME: &str = "workspace";
const TTL: Duration = Duration::from_secs(15);
const RENEW_EVERY: Duration = Duration::from_secs(5);

pub struct WorkspaceLease {
    store: Arc<Store>,
    holder: String,
}

fn ttl_ms() -> i64 {
    i64::try_from(TTL.as_millis()).unwrap_or(i64::MAX)
}

fn host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default()
}

fn this_process() -> String {
    let pid = std::process::id();
    let ticks = tarn_compute::process::start_ticks(pid).unwrap_or(0);
    format!("{}/{pid}/{ticks}", host())
}

/// Whether `holder` names a process of this host that is no longer alive.
fn dead_here(holder: &str) -> bool {
    let mut parts = holder.rsplitn(3, '/');
    let (Some(ticks), Some(pid), Some(on)) = (parts.next(), parts.next(), parts.next()) else { return false };
    let (Ok(ticks), Ok(pid)) = (ticks.parse::<i64>(), pid.parse::<u32>()) else { return false };
    on == host() && tarn_compute::process::start_ticks(pid) != Some(ticks)
}

impl WorkspaceLease {
    /// Takes the lease, or says which process holds it.
    pub fn acquire(store: Arc<Store>) -> Result<Self, String> {
        let holder = this_process();
        let current = store.lease(NAME).map_err(|e| e.to_string())?;
        let stale = current.as_ref().map(|l| l.holder.as_str()).filter(|h| dead_here(h));
        match store.acquire_lease(NAME, &holder, stale, now_ms(), ttl_ms()).map_err(|e| e.to_string())? {
            Some(_) => Ok(Self { store, holder }),
            None => Err(format!(
                "another tarn serve ({}) is serving this workspace's metadata; stop it, or wait {} s after it stopped",
                current.map(|l| l.holder).unwrap_or_default(),
                TTL.as_secs()
            )),
        }
    }

    /// Renews the lease every few seconds; if another process has taken it
    /// (this one stalled past the TTL), asks the server to stop.
    pub fn spawn_renewal(&self, stop: Arc<tokio::sync::watch::Sender<bool>>) -> tokio::task::JoinHandle<()> {
        let (store, holder) = (self.store.clone(), self.holder.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(RENEW_EVERY).await;
                match store.acquire_lease(NAME, &holder, None, now_ms(), ttl_ms()) {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        tracing::error!("another tarn serve took this workspace's lease; stopping");
                        let _ = stop.send(true);
                        return;
                    }
                    Err(e) => tracing::warn!(error = %e, "renewing the workspace lease"),
                }
            }
        })
    }

    pub fn release(&self) {
        if let Err(e) = self.store.release_lease(NAME, &self.holder) {
            tracing::warn!(error = %e, "releasing the workspace lease");
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
        assert!(dead_here(&format!("{}/{pid}/1", host())));
        assert!(!dead_here(&format!("elsewhere/{pid}/1")));
        assert!(!dead_here("garbage"));
    }
}
