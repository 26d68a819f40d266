//! Content-addressed blob files. A blob is written under a temp name, fsynced, checked against
//! its hash and only then renamed to its hash: a crash never leaves a half blob under a real
//! name. Beside each blob of more than one piece lies its outboard (`outboards/HASH`), built in
//! the same pass and stored first, so a blob under its name always has one (a data dir of an
//! older release has none: they are built when first needed).

use super::direct_write::DirectWriter;
use super::fsutil::DirSync;
use super::outboard::{OutboardBuilder, outboard_len};
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
    outboards: PathBuf,
    /// Bytes of all stored blobs: counted once at open, then kept as blobs come and go, so
    /// `status` never scans the directory.
    bytes: Arc<AtomicU64>,
    dir_sync: Arc<DirSync>,
    outboards_sync: Arc<DirSync>,
}

impl BlobStore {
    /// Opens the store; leftovers of interrupted writes are removed.
    pub fn open(dir: &Path) -> Result<Self> {
        let tmp = dir.join("tmp");
        let outboards = dir.join("outboards");
        for d in [&tmp, &outboards] {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
        }
        if let Ok(rd) = std::fs::read_dir(&tmp) {
            for e in rd.flatten() {
                let _ = std::fs::remove_file(e.path());
            }
        }
        let mut store = BlobStore {
            dir: dir.to_path_buf(),
            tmp,
            dir_sync: Arc::new(DirSync::new(dir)),
            outboards_sync: Arc::new(DirSync::new(&outboards)),
            outboards,
            bytes: Arc::new(AtomicU64::new(0)),
        };
        let total = store.scan_bytes();
        store.bytes = Arc::new(AtomicU64::new(total));
        Ok(store)
    }

    pub fn path(&self, h: &Hash) -> PathBuf {
        self.dir.join(hex(h))
    }

    pub fn outboard_path(&self, h: &Hash) -> PathBuf {
        self.outboards.join(hex(h))
    }

    /// The stored outboard of a blob of `size` bytes; None when there is none of the right
    /// length yet (a blob stored by an older release), so it must be built.
    pub fn read_outboard(&self, h: &Hash, size: u64) -> Option<Vec<u8>> {
        let want = outboard_len(size);
        if want == 0 {
            return Some(Vec::new());
        }
        std::fs::read(self.outboard_path(h))
            .ok()
            .filter(|o| o.len() as u64 == want)
    }

    /// Builds and stores the outboard of a held blob by reading it whole (blocking); None when
    /// the blob is not its hash's content (a rotten copy) or is gone. An outboard that cannot
    /// be stored (a full disk) is still given: the blob is good.
    pub fn build_outboard(&self, h: &Hash) -> Result<Option<Vec<u8>>> {
        use std::io::Read;
        let mut f = match std::fs::File::open(self.path(h)) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e).context("cannot read blob"),
        };
        let size = f.metadata()?.len();
        let mut builder = OutboardBuilder::new(size);
        let mut buf = vec![0u8; (size as usize).clamp(1, 1 << 20)];
        loop {
            let n = f.read(&mut buf)?;
            if n == 0 {
                break;
            }
            builder.update(&buf[..n]);
        }
        let Some((root, outboard)) = builder.finish() else {
            bail!("blob changed while it was read");
        };
        if root != *h {
            return Ok(None);
        }
        if let Err(e) = self.put_outboard(h, &outboard) {
            tracing::warn!("outboard of blob {} not stored: {e:#}", &hex(h)[..16]);
        }
        Ok(Some(outboard))
    }

    /// Writes an outboard under a temp name, fsyncs and renames it into place.
    pub fn put_outboard(&self, h: &Hash, outboard: &[u8]) -> Result<()> {
        if outboard.is_empty() {
            return Ok(());
        }
        let tmp = self
            .tmp
            .join(format!("{}.obao.{}", hex(h), rand::random::<u64>()));
        if let Err(e) = write_synced(&tmp, outboard) {
            let _ = std::fs::remove_file(&tmp);
            return Err(e).context("cannot write outboard");
        }
        std::fs::create_dir_all(&self.outboards).context("cannot create the outboard folder")?;
        std::fs::rename(&tmp, self.outboard_path(h)).context("cannot store outboard")?;
        Ok(())
    }

    /// Removes outboards whose blob is gone (a crash between the outboard's rename and the
    /// blob's, or a blob rename that failed) and that are older than `grace`: a commit under
    /// way renames its outboard a moment before its blob, and that one must stay. Returns how
    /// many went.
    pub fn remove_orphan_outboards(&self, grace: std::time::Duration) -> usize {
        let Ok(rd) = std::fs::read_dir(&self.outboards) else {
            return 0;
        };
        let now = std::time::SystemTime::now();
        let mut removed = 0;
        for e in rd.flatten() {
            let Some(h) = parse_hex(&e.file_name().to_string_lossy()) else {
                continue;
            };
            let old = e
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > grace);
            if old && !self.has(&h) && std::fs::remove_file(e.path()).is_ok() {
                removed += 1;
            }
        }
        removed
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
        let _ = std::fs::remove_file(self.outboard_path(h));
    }

    /// Starts writing the blob `h` of `size` bytes.
    pub fn begin(&self, h: &Hash, size: u64) -> Result<BlobWriter> {
        let tmp = self
            .tmp
            .join(format!("{}.{}", hex(h), rand::random::<u64>()));
        let file = super::fsutil::create_new_private(&tmp)?;
        Ok(BlobWriter {
            file: Some(BlobFile::new(file, size)),
            tmp,
            target: self.path(h),
            outboard_tmp: self
                .tmp
                .join(format!("{}.obao.{}", hex(h), rand::random::<u64>())),
            outboard_target: self.outboard_path(h),
            builder: OutboardBuilder::new(size),
            expected: *h,
            committed: false,
            written: 0,
            store_bytes: self.bytes.clone(),
            dir_sync: self.dir_sync.clone(),
            outboards_sync: self.outboards_sync.clone(),
        })
    }
}

/// A blob being written. Dropped without `commit`, it leaves nothing behind.
pub struct BlobWriter {
    file: Option<BlobFile>,
    tmp: PathBuf,
    target: PathBuf,
    outboard_tmp: PathBuf,
    outboard_target: PathBuf,
    builder: OutboardBuilder,
    expected: Hash,
    committed: bool,
    written: u64,
    store_bytes: Arc<AtomicU64>,
    dir_sync: Arc<DirSync>,
    outboards_sync: Arc<DirSync>,
}

impl BlobWriter {
    pub fn write(&mut self, data: &[u8]) -> Result<()> {
        self.builder.update(data);
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
        let builder = std::mem::replace(&mut self.builder, OutboardBuilder::new(0));
        let Some((root, outboard)) = builder.finish() else {
            bail!("content is not the announced size");
        };
        if root != self.expected {
            bail!("content does not match its hash");
        }
        let f = f.into_file().context("cannot write blob")?;
        f.sync_all().context("cannot sync blob")?;
        // The outboard goes in before the blob's rename: a blob under its name always has it.
        if !outboard.is_empty() {
            write_synced(&self.outboard_tmp, &outboard).context("cannot write outboard")?;
            if let Some(dir) = self.outboard_target.parent() {
                std::fs::create_dir_all(dir).context("cannot create the outboard folder")?;
            }
            std::fs::rename(&self.outboard_tmp, &self.outboard_target)
                .context("cannot store outboard")?;
            self.outboards_sync.sync();
        }
        let replaces = self.target.exists();
        std::fs::rename(&self.tmp, &self.target).context("cannot store blob")?;
        self.committed = true;
        if !replaces {
            self.store_bytes.fetch_add(self.written, Ordering::Relaxed);
        }
        self.dir_sync.sync();
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.committed {
            self.file.take();
            let _ = std::fs::remove_file(&self.tmp);
        }
        let _ = std::fs::remove_file(&self.outboard_tmp);
    }
}

/// Where a blob's bytes go while it is written.
enum BlobFile {
    /// A tiny blob: one write when done, a buffer its size.
    Buffered(std::io::BufWriter<std::fs::File>),
    /// A large one: around the page cache (see `direct_write`).
    Direct(DirectWriter),
}

/// From this size on a blob is written directly; below it a synchronous write per block costs
/// more than the copy it saves, and an import of tiny tracks is bound by its writes.
const DIRECT_FROM: u64 = 1 << 20;

impl BlobFile {
    fn new(file: std::fs::File, size: u64) -> BlobFile {
        if size >= DIRECT_FROM {
            BlobFile::Direct(DirectWriter::new(file))
        } else {
            BlobFile::Buffered(std::io::BufWriter::with_capacity(
                (size as usize).max(8 << 10),
                file,
            ))
        }
    }

    fn write_all(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            BlobFile::Buffered(f) => f.write_all(data),
            BlobFile::Direct(f) => f.write_all(data),
        }
    }

    fn into_file(self) -> std::io::Result<std::fs::File> {
        match self {
            BlobFile::Buffered(f) => f.into_inner().map_err(|e| e.into_error()),
            BlobFile::Direct(f) => f.finish(),
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut f = super::fsutil::create_new_private(path).map_err(std::io::Error::other)?;
    f.write_all(bytes)?;
    f.sync_all()
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
        let mut w = store.begin(&h, data.len() as u64).unwrap();
        w.write(data).unwrap();
        w.commit().unwrap();
        assert!(store.has(&h));
        assert_eq!(store.list().len(), 1);
        assert_eq!(store.total_bytes(), data.len() as u64);
        let reopened = BlobStore::open(dir.path()).unwrap();
        assert_eq!(reopened.total_bytes(), data.len() as u64);
        assert_eq!(std::fs::read(store.path(&h)).unwrap(), data);

        // The same blob stored twice still counts once.
        let mut w = store.begin(&h, data.len() as u64).unwrap();
        w.write(data).unwrap();
        w.commit().unwrap();
        assert_eq!(store.total_bytes(), data.len() as u64);
        let other = [9u8; 32];
        let mut w = store.begin(&other, data.len() as u64).unwrap();
        w.write(data).unwrap();
        assert!(w.commit().is_err());
        assert!(!store.has(&other));
        // Nothing half-written is left in tmp either.
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
        let w = store.begin(&other, data.len() as u64).unwrap();
        drop(w);
        assert_eq!(store.total_bytes(), data.len() as u64);
        store.remove(&h);
        assert_eq!(store.total_bytes(), 0);
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }

    #[test]
    fn a_blob_of_several_pieces_is_stored_with_its_outboard() {
        let dir = tempfile::tempdir().unwrap();
        let store = BlobStore::open(dir.path()).unwrap();
        let data: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
        let (h, outboard) = crate::store::outboard::outboard_of(&data);
        let mut w = store.begin(&h, data.len() as u64).unwrap();
        for piece in data.chunks(7_000) {
            w.write(piece).unwrap();
        }
        w.commit().unwrap();
        assert_eq!(
            store.read_outboard(&h, data.len() as u64),
            Some(outboard.clone())
        );
        assert_eq!(store.list().len(), 1, "outboards are not blobs");
        assert_eq!(store.total_bytes(), data.len() as u64);

        // An older release's blob has none until it is built; a rotten one cannot get one.
        std::fs::remove_file(store.outboard_path(&h)).unwrap();
        assert_eq!(store.read_outboard(&h, data.len() as u64), None);
        assert_eq!(store.build_outboard(&h).unwrap(), Some(outboard.clone()));
        assert_eq!(
            store.read_outboard(&h, data.len() as u64),
            Some(outboard.clone())
        );
        let mut rotten = data.clone();
        rotten[50_000] ^= 1;
        std::fs::write(store.path(&h), &rotten).unwrap();
        assert_eq!(store.build_outboard(&h).unwrap(), None);
        std::fs::remove_file(store.path(&h)).unwrap();
        assert_eq!(store.build_outboard(&h).unwrap(), None, "a blob not held");

        // An outboard left without its blob goes once it is older than the grace period.
        store.put_outboard(&h, &outboard).unwrap();
        let (fresh, _) = crate::store::outboard::outboard_of(&data[..90_000]);
        store.put_outboard(&fresh, &outboard).unwrap();
        let (kept, kept_outboard) = crate::store::outboard::outboard_of(&data[..80_000]);
        let mut w = store.begin(&kept, 80_000).unwrap();
        w.write(&data[..80_000]).unwrap();
        w.commit().unwrap();
        let hour_ago = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        for x in [&h, &kept] {
            std::fs::File::options()
                .write(true)
                .open(store.outboard_path(x))
                .unwrap()
                .set_modified(hour_ago)
                .unwrap();
        }
        assert_eq!(
            store.remove_orphan_outboards(std::time::Duration::from_secs(600)),
            1
        );
        assert!(!store.outboard_path(&h).exists(), "old orphan kept");
        assert!(
            store.outboard_path(&fresh).exists(),
            "a fresh one may be a commit under way"
        );
        assert_eq!(store.read_outboard(&kept, 80_000), Some(kept_outboard));
        store.remove(&kept);
        store.remove(&fresh);

        // A short upload is refused, whatever its hash.
        let mut w = store.begin(&h, data.len() as u64).unwrap();
        w.write(&data[..99_999]).unwrap();
        assert!(w.commit().is_err());
        store.remove(&h);
        assert!(!store.outboard_path(&h).exists());
        assert_eq!(
            std::fs::read_dir(dir.path().join("tmp")).unwrap().count(),
            0
        );
    }
}
