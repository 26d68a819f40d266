//! Pushing files: the one-pass probe and hash of a file, and `import` of whole folders —
//! names from tags, content already in the network skipped, clashes suffixed, files that are
//! not audio listed and passed over. Files are probed and hashed (on a blocking thread)
//! ahead of the ones being sent, and files under 1 MiB are sent up to 32 at once, larger
//! ones up to 8 (each is mostly round trips), so both cores work.

use super::Node;
use crate::audio::{self, FileTags, TrackInfo};
use crate::store::catalog::{FileDigest, FileHasher};
use crate::store::track_name::{MAX_NAME_BYTES, is_invisible_format};
use anyhow::{Context, Result, anyhow, bail};
use futures_util::StreamExt;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering::Relaxed;

/// A file probed, hashed and tagged, ready to be stored under a name.
pub struct PreparedFile {
    pub path: PathBuf,
    pub info: TrackInfo,
    pub digest: FileDigest,
    pub tags: FileTags,
    /// When the file was last modified as it was read, to tell a file changed since.
    pub modified: Option<std::time::SystemTime>,
}

/// Whether the file at `path` is no longer the one of `size` bytes last modified at `modified`.
pub fn changed_since(path: &Path, size: u64, modified: Option<std::time::SystemTime>) -> bool {
    match std::fs::metadata(path) {
        Ok(m) => m.len() != size || m.modified().ok() != modified,
        Err(_) => true,
    }
}

/// One pass over the file, probing and hashing as it streams by: memory stays flat for any
/// size, and a file that is not audio is refused after its first megabytes.
pub async fn prepare_file(file: &Path) -> Result<PreparedFile> {
    let meta =
        std::fs::metadata(file).with_context(|| format!("cannot read {}", file.display()))?;
    if !meta.is_file() {
        bail!("{} is not a file", file.display());
    }
    if meta.len() == 0 {
        bail!("{} is empty", file.display());
    }
    let path = file.to_path_buf();
    let modified = meta.modified().ok();
    tokio::task::spawn_blocking(move || -> Result<PreparedFile> {
        let mut hasher = FileHasher::default();
        let info = audio::scan_file(&path, |b| hasher.update(b))?;
        let tags = audio::read_file_tags(&path);
        Ok(PreparedFile {
            path,
            info,
            digest: hasher.finish(),
            tags,
            modified,
        })
    })
    .await
    .map_err(|e| anyhow!("probe failed: {e}"))?
}

/// What became of one file of an import.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum ImportOutcome {
    Imported {
        name: String,
        warnings: Vec<String>,
    },
    /// Its content is in the network already (under this name).
    Duplicate {
        existing: String,
    },
    NotAudio {
        why: String,
    },
    Failed {
        why: String,
    },
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct ImportReport {
    pub files: Vec<(PathBuf, ImportOutcome)>,
    /// Why the import stopped before the end (the network is full).
    pub stopped: Option<String>,
}

/// Room kept in a name for a clash suffix (` (9999)`).
const SUFFIX_ROOM: usize = 7;

/// The name a file is imported under: `Artist - Title` from its tags, else its title, else
/// the file's stem; `/` and `\` become `-`, control, bidirectional and zero-width characters
/// go, and it is cut at a character boundary to leave room for a clash suffix.
pub fn import_name(tags: &crate::store::track_tags::TrackTags, path: &Path) -> String {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let raw = match (&tags.artist, &tags.title) {
        (Some(a), Some(t)) => format!("{a} - {t}"),
        (None, Some(t)) => t.clone(),
        _ => stem,
    };
    let mut name = String::new();
    for c in raw.chars() {
        let c = if c == '/' || c == '\\' { '-' } else { c };
        if c.is_control() || is_invisible_format(c) {
            continue;
        }
        if name.len() + c.len_utf8() > MAX_NAME_BYTES - SUFFIX_ROOM {
            break;
        }
        name.push(c);
    }
    let name = name.trim().to_string();
    if name.is_empty() || name == "." || name == ".." {
        "untitled".to_string()
    } else {
        name
    }
}

/// `base`, else `base (2)`, `base (3)`, … — the first that `taken` does not hold.
pub fn unique_name(base: &str, taken: impl Fn(&str) -> bool) -> String {
    if !taken(base) {
        return base.to_string();
    }
    (2..)
        .map(|n| format!("{base} ({n})"))
        .find(|n| !taken(n))
        .unwrap_or_else(|| base.to_string())
}

/// Every regular file under `roots`, in path order; symlinked folders are followed once
/// (a loop is never walked twice). Unreadable folders are reported, not fatal.
pub fn collect_files(roots: &[PathBuf]) -> (Vec<PathBuf>, Vec<(PathBuf, String)>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    let mut seen_dirs: HashSet<(u64, u64)> = HashSet::new();
    let mut stack: Vec<PathBuf> = roots.iter().rev().cloned().collect();
    while let Some(path) = stack.pop() {
        let meta = match std::fs::metadata(&path) {
            Ok(m) => m,
            Err(e) => {
                problems.push((path, e.to_string()));
                continue;
            }
        };
        if meta.is_file() {
            files.push(path);
        } else if meta.is_dir() {
            if !seen_dirs.insert((meta.dev(), meta.ino())) {
                continue;
            }
            match std::fs::read_dir(&path) {
                Ok(rd) => {
                    let mut children: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
                    children.sort();
                    stack.extend(children.into_iter().rev());
                }
                Err(e) => problems.push((path, e.to_string())),
            }
        }
    }
    (files, problems)
}

/// How far an import is: files and bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImportProgress {
    pub files_done: u64,
    pub files: u64,
    pub bytes_done: u64,
    pub bytes: u64,
}

impl Node {
    /// Imports every file under `roots`. `on_file` hears each outcome as it happens;
    /// `on_progress` hears files and bytes done, also while a file is being sent.
    pub async fn import(
        &self,
        roots: &[PathBuf],
        dry_run: bool,
        on_file: impl Fn(&Path, &ImportOutcome) + Send + Sync,
        on_progress: impl Fn(ImportProgress) + Send + Sync,
    ) -> Result<ImportReport> {
        // A large library, or a slow mount, is walked off the runtime's threads.
        let roots_owned = roots.to_vec();
        let ((files, problems), sizes) = tokio::task::spawn_blocking(move || {
            let (files, problems) = collect_files(&roots_owned);
            let sizes: Vec<u64> = files
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
                .collect();
            ((files, problems), sizes)
        })
        .await
        .map_err(|e| anyhow!("walking the folders failed: {e}"))?;
        let mut report = ImportReport::default();
        for (p, why) in problems {
            let o = ImportOutcome::Failed { why };
            on_file(&p, &o);
            report.files.push((p, o));
        }
        let total: u64 = sizes.iter().sum();
        let count = files.len();
        // Files are prepared ahead while earlier ones are stored.
        let (tx, mut rx) = tokio::sync::mpsc::channel(IMPORT_WINDOW);
        let feeder = tokio::spawn(async move {
            for f in files {
                let prepared = prepare_file(&f).await;
                if tx.send((f, prepared)).await.is_err() {
                    break;
                }
            }
        });
        let done = std::sync::atomic::AtomicU64::new(0);
        let files_done = std::sync::atomic::AtomicU64::new(0);
        let mut imported = 0usize;
        let mut planned: HashSet<String> = HashSet::new();
        let mut planned_hashes: HashMap<[u8; 32], String> = HashMap::new();
        let mut i = 0;
        let mut in_flight = futures_util::stream::FuturesOrdered::new();
        let mut fed_all = false;
        loop {
            // Small files travel several at once (each is mostly round trips); a large one
            // alone, so memory stays that of one push.
            while !fed_all && in_flight.len() < IMPORT_WINDOW {
                let next_size = sizes.get(i).copied().unwrap_or(0);
                if !in_flight.is_empty() && next_size >= LARGE_FILE {
                    break;
                }
                if in_flight.len() >= MEDIUM_FILE_WINDOW && next_size >= SMALL_FILE {
                    break;
                }
                let Some((path, prepared)) = rx.recv().await else {
                    fed_all = true;
                    break;
                };
                let size = sizes.get(i).copied().unwrap_or(0);
                i += 1;
                let step = self.plan_import(prepared, dry_run, &mut planned, &mut planned_hashes);
                let (done, files_done, on_progress) = (&done, &files_done, &on_progress);
                in_flight.push_back(async move {
                    let outcome = match step {
                        ImportStep::Ready(o) => Ok(o),
                        ImportStep::Store(name, p, warnings) => {
                            let at = |sent: u64, _: u64| {
                                on_progress(ImportProgress {
                                    files_done: files_done.load(Relaxed),
                                    files: count as u64,
                                    bytes_done: done.load(Relaxed) + sent.min(size),
                                    bytes: total,
                                })
                            };
                            self.store_import(name, *p, warnings, at).await
                        }
                    };
                    (path, size, outcome)
                });
            }
            let Some((path, size, outcome)) = in_flight.next().await else {
                break;
            };
            let outcome = match outcome {
                Ok(o) => o,
                Err(ImportStop(why)) => {
                    report.stopped = Some(format!(
                        "network full: {imported} of {count} imported; offer more capacity ({why})"
                    ));
                    break;
                }
            };
            if matches!(outcome, ImportOutcome::Imported { .. }) {
                imported += 1;
            }
            done.fetch_add(size, Relaxed);
            files_done.fetch_add(1, Relaxed);
            on_file(&path, &outcome);
            on_progress(ImportProgress {
                files_done: files_done.load(Relaxed),
                files: count as u64,
                bytes_done: done.load(Relaxed),
                bytes: total,
            });
            report.files.push((path, outcome));
        }
        drop(in_flight);
        feeder.abort();
        Ok(report)
    }

    /// What to do with one prepared file, decided in file order: its name (clear of names
    /// taken and of names planned earlier in this import), or an outcome already known.
    fn plan_import(
        &self,
        prepared: Result<PreparedFile>,
        dry_run: bool,
        planned: &mut HashSet<String>,
        planned_hashes: &mut HashMap<[u8; 32], String>,
    ) -> ImportStep {
        let p = match prepared {
            Ok(p) => p,
            Err(e) => {
                let why = format!("{e:#}");
                return ImportStep::Ready(
                    if why.contains("not a decodable audio file")
                        || why.contains("is empty")
                        || why.contains("not streamable")
                    {
                        ImportOutcome::NotAudio { why }
                    } else {
                        ImportOutcome::Failed { why }
                    },
                );
            }
        };
        let existing = {
            let st = self.state();
            st.catalog
                .live_with_hash(&p.digest.hash)
                .find_map(|k| st.catalog.shown_name(k).map(str::to_string))
        }
        .or_else(|| planned_hashes.get(&p.digest.hash).cloned());
        if let Some(existing) = existing {
            return ImportStep::Ready(ImportOutcome::Duplicate { existing });
        }
        let base = import_name(&p.tags.tags, &p.path);
        let name = {
            let st = self.state();
            unique_name(&base, |n| {
                planned.contains(n) || st.catalog.get(n).is_some_and(|e| !e.tombstone)
            })
        };
        planned.insert(name.clone());
        planned_hashes.insert(p.digest.hash, name.clone());
        let warnings = p.tags.warnings.clone();
        if dry_run {
            return ImportStep::Ready(ImportOutcome::Imported { name, warnings });
        }
        ImportStep::Store(name, Box::new(p), warnings)
    }

    async fn store_import(
        &self,
        name: String,
        p: PreparedFile,
        warnings: Vec<String>,
        progress: impl Fn(u64, u64) + Send + Sync,
    ) -> Result<ImportOutcome, ImportStop> {
        let want = self.replicas().min(self.alive_count());
        match self
            .store_prepared(&name, p, super::push::PushMode::Import, progress)
            .await
        {
            Ok(pushed) if pushed.already_there => Ok(ImportOutcome::Duplicate {
                existing: pushed.name,
            }),
            Ok(pushed) if pushed.holders.len() >= want => Ok(ImportOutcome::Imported {
                name: pushed.name,
                warnings,
            }),
            Ok(pushed) => {
                // Never leave a track with fewer than R copies behind.
                let _ = self.remove_with(&pushed.name, true).await;
                Err(ImportStop(format!(
                    "'{}' fit on {} of {want} peers",
                    pushed.name,
                    pushed.holders.len()
                )))
            }
            Err(e) if e.to_string().starts_with("no peer could store") => {
                Err(ImportStop(format!("{e:#}")))
            }
            Err(e) => Ok(ImportOutcome::Failed {
                why: format!("{e:#}"),
            }),
        }
    }
}

/// Files smaller than [`SMALL_FILE`] an import stores at once: each is a few round trips
/// and fsyncs, and the more travel together the more of their messages, packets and
/// database commits are shared (8 at once: 424-441 tiny tracks/s into 5 peers; 32: 469-606).
const IMPORT_WINDOW: usize = 32;
/// Files of [`SMALL_FILE`] or more stored at once, so memory stays a few pushes'.
const MEDIUM_FILE_WINDOW: usize = 8;
const SMALL_FILE: u64 = 1 << 20;
/// A file this large is stored alone.
const LARGE_FILE: u64 = 8 << 20;

enum ImportStep {
    Ready(ImportOutcome),
    Store(String, Box<PreparedFile>, Vec<String>),
}

struct ImportStop(String);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::track_tags::TrackTags;

    #[test]
    fn names_come_from_tags_and_fit_with_a_suffix() {
        let tags = TrackTags {
            title: Some("Sun/rise\\again".into()),
            artist: Some("A\u{202e}my".into()),
            ..Default::default()
        };
        assert_eq!(
            import_name(&tags, Path::new("x/01.mp3")),
            "Amy - Sun-rise-again"
        );
        assert_eq!(
            import_name(&TrackTags::default(), Path::new("x/01 intro.flac")),
            "01 intro"
        );
        let long = TrackTags {
            title: Some("é".repeat(300)),
            ..Default::default()
        };
        let n = import_name(&long, Path::new("a.mp3"));
        assert!(n.len() <= MAX_NAME_BYTES - SUFFIX_ROOM);
        let suffixed = unique_name(&n, |x| x == n);
        assert!(suffixed.len() <= MAX_NAME_BYTES && suffixed.ends_with(" (2)"));
        assert!(crate::store::track_name::validate_name(&suffixed).is_ok());
        let taken = ["a", "a (2)"];
        assert_eq!(unique_name("a", |x| taken.contains(&x)), "a (3)");
        assert_eq!(
            import_name(&TrackTags::default(), Path::new("..")),
            "untitled"
        );
    }

    #[test]
    fn walks_folders_once_even_through_symlink_loops() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("music");
        std::fs::create_dir_all(root.join("b/c")).unwrap();
        std::fs::write(root.join("a.mp3"), b"x").unwrap();
        std::fs::write(root.join("b/c/d.flac"), b"x").unwrap();
        std::os::unix::fs::symlink(&root, root.join("b/loop")).unwrap();
        let (files, problems) = collect_files(&[root.clone(), root.join("missing")]);
        assert_eq!(files, vec![root.join("a.mp3"), root.join("b/c/d.flac")]);
        assert_eq!(problems.len(), 1);
    }
}
