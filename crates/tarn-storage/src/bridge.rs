//! The runtime object-store futures run on, and the synchronous wait for
//! them. tarn's file code is synchronous and is called from tokio workers
//! and plain threads alike; waiting on a channel for a task spawned here
//! works from either, where `Runtime::block_on` would panic on a worker.

use std::future::Future;

use tokio::runtime::{Handle, Runtime};

pub(crate) struct Bridge {
    /// Taken at drop: a runtime dropped inside another one's context must be
    /// shut down in the background.
    runtime: Option<Runtime>,
}

impl Bridge {
    pub(crate) fn new() -> std::io::Result<Bridge> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("tarn-storage")
            .enable_all()
            .build()?;
        Ok(Bridge { runtime: Some(runtime) })
    }

    pub(crate) fn handle(&self) -> Handle {
        match &self.runtime {
            Some(runtime) => runtime.handle().clone(),
            None => unreachable!("the runtime is only taken when the bridge drops"),
        }
    }

    /// Runs `future` on the bridge's runtime and waits for its output.
    /// `None` if the task died (a panic in the store client).
    pub(crate) fn wait<F>(&self, future: F) -> Option<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let (sender, receiver) = std::sync::mpsc::sync_channel(1);
        self.handle().spawn(async move {
            let _ = sender.send(future.await);
        });
        receiver.recv().ok()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}
