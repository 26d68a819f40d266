//! Giving memory freed after a burst (an import, a joiner's catalog, a repair pass) back to
//! the system. glibc keeps freed pages inside its heaps until told otherwise: a peer that
//! had received 100,000 tracks kept 60 MiB more than the same peer started afresh.

use super::Node;
use std::time::Duration;

const TRIM_EVERY: Duration = Duration::from_secs(20);

impl Node {
    pub(crate) fn spawn_memory_trim(&self) {
        #[cfg(all(target_os = "linux", target_env = "gnu"))]
        {
            let node = self.clone();
            self.spawn_task(async move {
                // The first tick is at once: loading the catalog at start leaves garbage too.
                let mut tick = tokio::time::interval(TRIM_EVERY);
                loop {
                    tokio::select! {
                        _ = node.inner.shutdown.cancelled() => return,
                        _ = tick.tick() => {}
                    }
                    // SAFETY: malloc_trim only returns free heap pages; any thread may call it.
                    let _ = tokio::task::spawn_blocking(|| unsafe { libc::malloc_trim(0) }).await;
                }
            });
        }
    }
}
