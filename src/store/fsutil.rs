//! File writes that a crash cannot leave half done, and the rules that keep a data dir private
//! to its user: the dir 0700, every file 0600 whatever the umask, temp files under fresh random
//! names opened with O_EXCL|O_NOFOLLOW so a planted file or symlink is never written through.

use anyhow::{Context, Result, bail};
use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Creates (0700) or checks the data dir. Refuses one owned by another user or writable by
/// group or others: anyone who can write there could plant files the peer trusts. Also sets
/// the process umask to 077, so whatever this process creates from here on is private.
pub fn prepare_data_dir(dir: &Path) -> Result<()> {
    // SAFETY: umask only swaps the process's file-creation mask.
    unsafe { libc::umask(0o077) };
    if !dir.exists() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    }
    let meta = std::fs::symlink_metadata(dir)
        .with_context(|| format!("cannot use data dir {}", dir.display()))?;
    if !meta.is_dir() {
        bail!("data dir {} is not a directory", dir.display());
    }
    // SAFETY: geteuid has no preconditions.
    let me = unsafe { libc::geteuid() };
    if meta.uid() != me {
        bail!(
            "data dir {} belongs to another user (uid {}); use a data dir of your own",
            dir.display(),
            meta.uid()
        );
    }
    if meta.mode() & 0o022 != 0 {
        bail!(
            "data dir {} is writable by other users (mode {:o}); run `chmod 700 {}` or use another",
            dir.display(),
            meta.mode() & 0o777,
            dir.display()
        );
    }
    if meta.mode() & 0o077 != 0 {
        // A data dir from an older release (0755): close it, it holds the network key.
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot make data dir {} private", dir.display()))?;
    }
    // What an older release left readable (the database, the blob dir) is closed too.
    for e in std::fs::read_dir(dir)?.flatten() {
        let Ok(m) = e.metadata() else { continue };
        let want = if m.is_dir() { 0o700 } else { 0o600 };
        if !m.file_type().is_symlink() && m.mode() & 0o077 != 0 {
            let _ = std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(want));
        }
    }
    Ok(())
}

/// Creates a new file 0600 that must not exist yet and is never a symlink.
pub fn create_new_private(path: &Path) -> Result<File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))
}

/// A fresh temp name beside `path`: `.NAME.meff-RANDOM` (hidden, unguessable).
pub fn temp_beside(path: &Path) -> PathBuf {
    let dir = path.parent().unwrap_or(Path::new("."));
    let stem = path
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    // Cut long names so the temp name stays within NAME_MAX (255 bytes).
    let mut cut = stem.len().min(200);
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    dir.join(format!(
        ".{}.meff-{:016x}",
        &stem[..cut],
        rand::random::<u64>()
    ))
}

/// Write to a fresh private temp file beside `path`, fsync, rename over `path`, fsync the
/// directory.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = temp_beside(path);
    let mut f = create_new_private(&tmp)?;
    if let Err(e) = f.write_all(bytes).and_then(|_| f.sync_all()) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    if let Err(e) = std::fs::rename(&tmp, path) {
        let _ = std::fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    sync_dir(path);
    Ok(())
}

/// Best effort: some filesystems cannot fsync a directory, and the rename is already done.
pub fn sync_dir(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
}

/// A folder's fsync shared by everyone who renamed into it meanwhile (group commit): an
/// import stores dozens of blobs at once, and a folder fsync each was half the fsyncs of a
/// tiny blob. `sync` returns once an fsync that began after it was called has
/// finished, so the caller's rename is covered; at most one runs at a time.
pub struct DirSync {
    dir: PathBuf,
    handle: Option<File>,
    state: std::sync::Mutex<DirSyncState>,
    finished_one: std::sync::Condvar,
}

#[derive(Default)]
struct DirSyncState {
    started: u64,
    finished: u64,
    running: bool,
}

impl DirSync {
    pub fn new(dir: &Path) -> DirSync {
        DirSync {
            dir: dir.to_path_buf(),
            handle: File::open(dir).ok(),
            state: Default::default(),
            finished_one: Default::default(),
        }
    }

    /// Blocks (call it off the runtime's threads) until what was renamed into the folder
    /// before this call is on disk, as far as the filesystem can fsync a folder.
    pub fn sync(&self) {
        let lock = || self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut st = lock();
        // One running now may have begun before our rename: the next one is ours.
        let needed = st.started + 1;
        while st.finished < needed {
            if st.running {
                st = self
                    .finished_one
                    .wait(st)
                    .unwrap_or_else(|e| e.into_inner());
                continue;
            }
            st.running = true;
            st.started += 1;
            let this = st.started;
            drop(st);
            match &self.handle {
                Some(d) => {
                    let _ = d.sync_all();
                }
                None => sync_dir(&self.dir.join(".")),
            }
            st = lock();
            st.running = false;
            st.finished = this;
            self.finished_one.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_folder_sync_waits_for_an_fsync_begun_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let sync = std::sync::Arc::new(DirSync::new(dir.path()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let sync = sync.clone();
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let before = sync.state.lock().unwrap().started;
                        sync.sync();
                        // The fsync that covered this call began after it.
                        assert!(sync.state.lock().unwrap().finished > before);
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let st = sync.state.lock().unwrap();
        assert!(!st.running);
        assert_eq!(st.started, st.finished);
    }

    #[test]
    fn a_planted_symlink_is_never_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let link = dir.path().join("planted");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(create_new_private(&link).is_err());
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        let a = temp_beside(&dir.path().join("x"));
        let b = temp_beside(&dir.path().join("x"));
        assert_ne!(a, b);
        let long = "é".repeat(120);
        let t = temp_beside(&dir.path().join(&long));
        assert!(t.file_name().unwrap().len() <= 255);
    }

    #[test]
    fn loose_or_foreign_data_dirs_are_refused_and_new_ones_are_private() {
        let base = tempfile::tempdir().unwrap();
        let fresh = base.path().join("a/b");
        prepare_data_dir(&fresh).unwrap();
        assert_eq!(std::fs::metadata(&fresh).unwrap().mode() & 0o777, 0o700);
        let open = base.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let e = prepare_data_dir(&open).unwrap_err().to_string();
        assert!(e.contains("writable by other users"), "{e}");
        let old = base.path().join("old");
        std::fs::create_dir(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        prepare_data_dir(&old).unwrap();
        assert_eq!(std::fs::metadata(&old).unwrap().mode() & 0o777, 0o700);
    }
}
