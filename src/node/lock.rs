//! One peer per data dir, enforced with an advisory lock the OS drops if the process dies.

use anyhow::{Context, Result, bail};
use std::os::fd::AsRawFd;
use std::path::Path;

pub struct DataDirLock {
    _file: std::fs::File,
}

impl DataDirLock {
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("lock");
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .with_context(|| format!("cannot use data dir {}", dir.display()))?;
        // SAFETY: flock on a valid, owned file descriptor.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc != 0 {
            bail!(
                "another peer is already running on data dir {}",
                dir.display()
            );
        }
        Ok(DataDirLock { _file: file })
    }
}
