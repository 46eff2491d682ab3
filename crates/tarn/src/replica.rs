//! A standby replica's view of the lease holder: where its API and gateway
//! answer (read from the lease, briefly cached), and the gateway port's
//! forwarding of whole Spark Connect connections to the holder's gateway
//! until this replica holds the lease itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tarn_store::Store;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

/// How long a read of the holder's address is used before it is read again.
const FRESH: Duration = Duration::from_millis(500);

pub struct Holder {
    store: Arc<Store>,
    leading: AtomicBool,
    /// Set when this replica takes the lease.
    pub took_lease: Notify,
    cached: Mutex<Option<(Instant, Option<Value>)>>,
}

impl Holder {
    pub fn new(store: Arc<Store>) -> Arc<Self> {
        Arc::new(Self { store, leading: AtomicBool::new(false), took_lease: Notify::new(), cached: Mutex::new(None) })
    }

    pub fn lead(&self) {
        self.leading.store(true, Ordering::SeqCst);
        self.took_lease.notify_waiters();
    }

    pub fn leading(&self) -> bool {
        self.leading.load(Ordering::SeqCst)
    }

    /// The holder's address (`{"api": url, "gateway": "host:port"}`).
    fn address(&self) -> Option<Value> {
        let mut cached = self.cached.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((at, address)) = cached.as_ref()
            && at.elapsed() < FRESH
        {
            return address.clone();
        }
        let lease = self.store.lease(crate::lease::NAME).ok().flatten();
        let live = lease.filter(|l| l.expires_at > tarn_core::time::now_ms());
        let address = live.and_then(|l| l.address).and_then(|a| serde_json::from_str::<Value>(&a).ok());
        *cached = Some((Instant::now(), address.clone()));
        address
    }

    fn field(&self, name: &str) -> Option<Result<String, String>> {
        if self.leading() {
            return None;
        }
        let found = self.address().and_then(|a| a.get(name).and_then(Value::as_str).map(str::to_string));
        Some(found.ok_or_else(|| "no replica holds the schedulers lease right now; retry in a few seconds".into()))
    }
}

impl tarn_api::replica::Replicas for Holder {
    fn holder_url(&self) -> Option<Result<String, String>> {
        self.field("api")
    }
}

/// Accepts Spark Connect connections on the gateway port and pipes each to
/// the holder's gateway, until this replica takes the lease; then hands the
/// listener back for its own gateway.
pub async fn forward_gateway(listener: TcpListener, holder: Arc<Holder>) -> TcpListener {
    loop {
        let took = holder.took_lease.notified();
        if holder.leading() {
            return listener;
        }
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = took => return listener,
        };
        let Ok((mut client, _)) = accepted else { continue };
        let target = holder.field("gateway");
        tokio::spawn(async move {
            let Some(Ok(target)) = target else { return };
            match TcpStream::connect(&target).await {
                Ok(mut upstream) => {
                    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
                }
                Err(e) => tracing::warn!(error = %e, target, "forwarding a Spark Connect connection"),
            }
        });
    }
}
