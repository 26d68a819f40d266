//! The stars of this peer's user (Subsonic's `star`/`unstar`/`getStarred2`): ids with the
//! time they were starred, kept in the data dir.

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const STARS_FILE: &str = "web-stars.json";
/// Ids one user may star: a bound on the file a client can make us write.
const MAX_STARS: usize = 200_000;

#[derive(Default, Serialize, Deserialize)]
struct Starred {
    /// id → when (ms since the epoch).
    ids: BTreeMap<String, u64>,
}

pub struct Stars {
    path: PathBuf,
    starred: Mutex<Starred>,
}

impl Stars {
    pub fn load(dir: &Path) -> Stars {
        let path = dir.join(STARS_FILE);
        let starred = std::fs::read(&path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        Stars {
            path,
            starred: Mutex::new(starred),
        }
    }

    /// When `id` was starred, if it is.
    pub fn starred(&self, id: &str) -> Option<u64> {
        self.lock().ids.get(id).copied()
    }

    pub fn all(&self) -> Vec<(String, u64)> {
        self.lock()
            .ids
            .iter()
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    /// Stars (`on`) or unstars ids, and saves.
    pub fn set(&self, ids: &[&str], on: bool, now_ms: u64) -> Result<()> {
        let mut s = self.lock();
        for id in ids {
            if on {
                if s.ids.len() >= MAX_STARS {
                    anyhow::bail!("at most {MAX_STARS} items can be starred");
                }
                s.ids.entry(id.to_string()).or_insert(now_ms);
            } else {
                s.ids.remove(*id);
            }
        }
        let bytes = serde_json::to_vec(&*s)?;
        let tmp = crate::store::fsutil::temp_beside(&self.path);
        std::fs::write(&tmp, bytes)
            .and_then(|_| std::fs::rename(&tmp, &self.path))
            .with_context(|| format!("cannot save {}", self.path.display()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Starred> {
        self.starred.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let s = Stars::load(dir.path());
        s.set(&["tr-1", "al-2"], true, 10).unwrap();
        s.set(&["tr-1"], true, 20).unwrap();
        s.set(&["al-2"], false, 30).unwrap();
        let again = Stars::load(dir.path());
        assert_eq!(again.all(), vec![("tr-1".to_string(), 10)]);
        assert_eq!(again.starred("al-2"), None);
    }
}
