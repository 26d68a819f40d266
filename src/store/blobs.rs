//! Content-addressed blob files. A blob is written under a temp name, fsynced, checked against
//! its hash and only then renamed to its hash: a crash never leaves a half blob under a real
//! name.

use super::fsutil::sync_dir;
use anyhow::{Context, Result, bail};
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

pub type Hash = [u8; 32];

pub fn hex(h: &Hash) -> String {
    data_encoding::HEXLOWER.encode(h)
}

fn parse_hex(s: &str) -> Option<Hash> {
    data_encoding::HEXLOWER
        .decode(s.as_bytes())
        .ok()?
        .try_into()
        .ok()
}

pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    /// Bytes of all stored blobs: counted once at open, then kept as blobs come and go, so
    /// `status` never scans the directory.
    bytes: Arc<AtomicU64>,
}

impl BlobStore {
    /// Opens the store; leftovers of interrupted writes are removed.
    pub fn open(dir: &Path) -> Result<Self> {
        let tmp = dir.join("tmp");
        std::fs::create_dir_all(&tmp)
            .with_context(|| format!("cannot create {}", tmp.display()))?;
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut store = BlobStore {
            dir: dir.to_path_buf(),
            tmp,
            bytes: Arc::new(AtomicU64::new(0)),
        };
        let total = store.scan_bytes();
        store.bytes = Arc::new(AtomicU64::new(total));
        Ok(store)
    }

    pub fn path(&self, h: &Hash) -> PathBuf {
        self.dir.join(hex(h))
    }

    pub fn has(&self, h: &Hash) -> bool {
        self.path(h).is_file()
    }

    pub fn list(&self) -> BTreeSet<Hash> {
        std::fs::read_dir(&self.dir)
            .map(|rd| {
                rd.flatten()
                    .filter_map(|e| parse_hex(&e.file_name().to_string_lossy()))
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn total_bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    fn scan_bytes(&self) -> u64 {
        self.list()
            .iter()
            .filter_map(|h| std::fs::metadata(self.path(h)).ok())
            .map(|m| m.len())
            .sum()
    }

    pub fn remove(&self, h: &Hash) {
        let path = self.path(h);
        let len = std::fs::metadata(&path).map(|m| m.len()).unwrap_or(0);
        if std::fs::remove_file(&path).is_ok() {
            self.bytes
                .fetch_sub(len.min(self.total_bytes()), Ordering::Relaxed);
        }
    }

    pub fn begin(&self, h: &Hash) -> Result<BlobWriter> {
        let tmp = self
            .tmp
            .join(format!("{}.{}", hex(h), rand::random::<u64>()));
        let file = super::fsutil::create_new_private(&tmp)?;
        Ok(BlobWriter {
            file: Some(std::io::BufWriter::with_capacity(1 << 20, file)),
            tmp,
            target: self.path(h),
            hasher: blake3::Hasher::new(),
            expected: *h,
            committed: false,
            written: 0,
            store_bytes: self.bytes.clone(),
        })
    }
}

/// A blob being written. Dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    file: Option<std::io::BufWriter<std::fs::File>>,
    tmp: PathBuf,
    target: PathBuf,
    hasher: blake3::Hasher,
    expected: Hash,
    committed: bool,
    written: u64,
    store_bytes: Arc<AtomicU64>,
}

impl BlobWriter {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.hasher.update(data);
        self.written += data.len() as u64;
        match self.file.as_mut() {
            Some(f) => f.write_all(data).context("cannot write blob"),
            None => bail!("blob writer already closed"),
        }
    }

    pub fn commit(mut self) -> Result<()> {
        let Some(f) = self.file.take() else {
            bail!("blob writer already closed")
        };
        if *self.hasher.finalize().as_bytes() != self.expected {
            bail!("content does not match its hash");
        }
        let f = f
            .into_inner()
            .map_err(|e| e.into_error())
            .context("cannot write blob")?;
        f.sync_all().context("cannot sync blob")?;
        let replaces = self.target.exists();
        std::fs::rename(&self.tmp, &self.target).context("cannot store blob")?;
        self.committed = true;
        if !replaces {
            self.store_bytes.fetch_add(self.written, Ordering::Relaxed);
        }
        sync_dir(&self.target);
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            self.file.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_commit_and_reject_wrong_content() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data = b"some audio bytes";
        let h = *blake3::hash(data).as_bytes();
        let mut w = store.begin(&h).unwrap();
        w.write(data).unwrap();
        w.commit().unwrap();
        assert!(store.has(&h));
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.total_bytes(), data.len() as u64);
        let reopened = BlobStore::open(dir.path()).unwrap();
        assert_eq!(reopened.total_bytes(), data.len() as u64);
        assert_eq!(std::fs::read(store.path(&h)).unwrap(), data);

        // The same blob stored twice still counts once.
        let mut w = store.begin(&h).unwrap();
        w.write(data).unwrap();
        w.commit().unwrap();
        assert_eq!(store.total_bytes(), data.len() as u64);
        let other = [9u8; 32];
        let mut w = store.begin(&other).unwrap();
        w.write(data).unwrap();
        assert!(w.commit().is_err());
        assert!(!store.has(&other));
        // Nothing half-written is left in tmp either.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let w = store.begin(&other).unwrap();
        drop(w);
        assert_eq!(store.total_bytes(), data.len() as u64);
        store.remove(&h);
        assert_eq!(store.total_bytes(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
