//! The embedded transactional database (redb): network facts, membership and catalog survive
//! restarts and crashes.

use anyhow::{Context, Result};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};
use serde::{Serialize, de::DeserializeOwned};
use std::path::Path;

const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
const MEMBERS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("members");
const CATALOG: TableDefinition<&str, &[u8]> = TableDefinition::new("catalog");
const PLAYLISTS: TableDefinition<&[u8], &[u8]> = TableDefinition::new("playlists");

const DB_CACHE: usize = 8 << 20;

pub struct Db {
    db: Database,
}

impl Db {
    pub fn open(path: &Path) -> Result<Db> {
        // An empty file is a database that lost its contents, not a new one: starting over
        // would silently make a new network with a new key.
        if std::fs::metadata(path).is_ok_and(|m| m.len() == 0) {
            anyhow::bail!(
                "the database {} is damaged (empty); restore it from a backup, or move it away to start a new network",
                path.display()
            );
        }
        // The catalog lives in memory; the database is read at start and written after, so a
        // small page cache does (redb's default of 1 GiB grew a peer of 100,000 tracks past
        // half a gigabyte).
        let db = Database::builder()
            .set_cache_size(DB_CACHE)
            .create(path)
            .with_context(|| format!("cannot open database {}", path.display()))?;
        let tx = db.begin_write()?;
        tx.open_table(META)?;
        tx.open_table(MEMBERS)?;
        tx.open_table(CATALOG)?;
        tx.open_table(PLAYLISTS)?;
        tx.commit()?;
        Ok(Db { db })
    }

    pub fn get_meta<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(META)?;
        match t.get(key)? {
            Some(v) => Ok(Some(
                postcard::from_bytes(v.value()).context("corrupt database value")?,
            )),
            None => Ok(None),
        }
    }

    pub fn put_meta<T: Serialize>(&self, key: &str, value: &T) -> Result<()> {
        let bytes = postcard::to_allocvec(value)?;
        let tx = self.db.begin_write()?;
        tx.open_table(META)?.insert(key, bytes.as_slice())?;
        tx.commit()?;
        Ok(())
    }

    fn load_all<T: DeserializeOwned>(&self, def: TableDefinition<&[u8], &[u8]>) -> Result<Vec<T>> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(def)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (_, v) = row?;
            if let Ok(x) = postcard::from_bytes(v.value()) {
                out.push(x);
            }
        }
        Ok(out)
    }

    pub fn load_members<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.load_all(MEMBERS)
    }

    pub fn load_playlists<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        self.load_all(PLAYLISTS)
    }

    pub fn load_catalog<T: DeserializeOwned>(&self) -> Result<Vec<T>> {
        let mut out = Vec::new();
        self.each_catalog_row(|_, b| postcard::from_bytes(b).ok(), |x| out.push(x))?;
        Ok(out)
    }

    /// Hands each catalog row that `decode` understands from its key and value (older
    /// layouts included) to `each` as it is read: a peer of 100,000 tracks
    /// would otherwise hold them all twice while it starts (60 MB more at its peak).
    pub fn each_catalog_row<T>(
        &self,
        decode: impl Fn(&str, &[u8]) -> Option<T>,
        mut each: impl FnMut(T),
    ) -> Result<()> {
        let tx = self.db.begin_read()?;
        let t = tx.open_table(CATALOG)?;
        for row in t.iter()? {
            let (k, v) = row?;
            if let Some(x) = decode(k.value(), v.value()) {
                each(x);
            }
        }
        Ok(())
    }

    /// Applies writes in one transaction (one fsync for a burst of them).
    pub fn apply(&self, writes: &[Write]) -> Result<()> {
        // A commit fsyncs: inside the async runtime it would stall every task on that thread.
        // The writer thread has no runtime; any other caller is the bug this catches in tests.
        debug_assert!(
            tokio::runtime::Handle::try_current().is_err(),
            "database write inside the async runtime; submit it to the DbWriter"
        );
        let tx = self.db.begin_write()?;
        {
            let mut catalog = tx.open_table(CATALOG)?;
            let mut members = tx.open_table(MEMBERS)?;
            let mut playlists = tx.open_table(PLAYLISTS)?;
            for w in writes {
                match w {
                    Write::Catalog { upserts, deletes } => {
                        for (k, v) in upserts {
                            catalog.insert(k.as_str(), v.as_slice())?;
                        }
                        for k in deletes {
                            catalog.remove(k.as_str())?;
                        }
                    }
                    Write::Members(rows) => {
                        for (k, v) in rows {
                            members.insert(k.as_slice(), v.as_slice())?;
                        }
                    }
                    Write::Playlists(rows) => {
                        for (k, v) in rows {
                            playlists.insert(k.as_slice(), v.as_slice())?;
                        }
                    }
                    Write::ForgetMembers(keys) => {
                        for k in keys {
                            members.remove(k.as_slice())?;
                        }
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
}

/// A database write, its values already serialized.
#[derive(Debug)]
pub enum Write {
    Catalog {
        upserts: Vec<(String, Vec<u8>)>,
        deletes: Vec<String>,
    },
    Members(Vec<(Vec<u8>, Vec<u8>)>),
    Playlists(Vec<(Vec<u8>, Vec<u8>)>),
    ForgetMembers(Vec<Vec<u8>>),
}

impl Write {
    pub fn catalog<T: Serialize>(upserts: &[(String, T)], deletes: &[String]) -> Result<Write> {
        Ok(Write::Catalog {
            upserts: upserts
                .iter()
                .map(|(k, v)| Ok((k.clone(), postcard::to_allocvec(v)?)))
                .collect::<Result<_>>()?,
            deletes: deletes.to_vec(),
        })
    }

    pub fn playlists<T: Serialize>(rows: &[(Vec<u8>, T)]) -> Result<Write> {
        Ok(Write::Playlists(
            rows.iter()
                .map(|(k, v)| Ok((k.clone(), postcard::to_allocvec(v)?)))
                .collect::<Result<_>>()?,
        ))
    }

    pub fn members<T: Serialize>(rows: &[(Vec<u8>, T)]) -> Result<Write> {
        Ok(Write::Members(
            rows.iter()
                .map(|(k, v)| Ok((k.clone(), postcard::to_allocvec(v)?)))
                .collect::<Result<_>>()?,
        ))
    }
}
