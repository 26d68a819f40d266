//! One thread does every database write after start, in order. A redb commit fsyncs; done
//! on a runtime thread it stalls the control streams and heartbeats that thread also serves.
//! Writes queued while a commit runs go together into the next transaction.

use super::db::{Db, Write};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tracing::warn;

enum Op {
    /// A write, and whether it commits without waiting for others (a user's own change).
    Write(Write, bool),
    Flush(mpsc::Sender<()>),
}

pub struct DbWriter {
    tx: Option<mpsc::Sender<Op>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DbWriter {
    pub fn start(db: Arc<Db>) -> std::io::Result<DbWriter> {
        let (tx, rx) = mpsc::channel::<Op>();
        let thread = std::thread::Builder::new()
            .name("meff-db".into())
            .spawn(move || run(&db, &rx))?;
        Ok(DbWriter {
            tx: Some(tx),
            thread: Some(thread),
        })
    }

    /// Queues a write; it is applied after every write queued before it, within
    /// [`GATHER`].
    pub fn submit(&self, write: anyhow::Result<Write>) {
        self.queue(write, false);
    }

    /// Queues a write of this peer's own (a push, a remove): its transaction commits as soon
    /// as the writer gets to it, without waiting [`GATHER`] for others. A command that must
    /// not answer before it is on disk also calls `flush` (`Node::saved`).
    pub fn submit_now(&self, write: anyhow::Result<Write>) {
        self.queue(write, true);
    }

    fn queue(&self, write: anyhow::Result<Write>, now: bool) {
        match write {
            Ok(w) => {
                if let Some(tx) = &self.tx {
                    let _ = tx.send(Op::Write(w, now));
                }
            }
            Err(e) => warn!("cannot save to the database: {e:#}"),
        }
    }

    /// Blocks until every write queued so far is committed.
    pub fn flush(&self) {
        let (done_tx, done_rx) = mpsc::channel();
        if let Some(tx) = &self.tx
            && tx.send(Op::Flush(done_tx)).is_ok()
        {
            let _ = done_rx.recv();
        }
    }
}

impl Drop for DbWriter {
    /// Whatever was queued is committed before the database (and the data dir's lock) go.
    fn drop(&mut self) {
        self.tx = None;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// How long the first write of a transaction waits for others: an import brings hundreds of
/// catalog and holdings writes a second, and a commit each (an fsync and its page writes)
/// took a seventh of the peers' CPU. Nothing waits on these commits but `flush`, which goes at
/// once; a crash loses at most this much more, which peers give back.
const GATHER: Duration = Duration::from_millis(10);

/// Writes a transaction takes at most, so one commit stays short.
const MAX_WRITES_PER_COMMIT: usize = 4_096;

fn run(db: &Db, rx: &mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let until = Instant::now() + GATHER;
        let mut writes = Vec::new();
        let mut flushed = Vec::new();
        let mut urgent = false;
        let mut next = Some(first);
        while let Some(op) = next {
            match op {
                Op::Write(w, now) => {
                    writes.push(w);
                    urgent |= now;
                }
                Op::Flush(done) => flushed.push(done),
            }
            if writes.len() >= MAX_WRITES_PER_COMMIT {
                break;
            }
            // A flush or an own write waits for nobody: what is queued already goes with it.
            let left = until.checked_duration_since(Instant::now());
            next = match left {
                Some(left) if flushed.is_empty() && !urgent => rx.recv_timeout(left).ok(),
                _ => rx.try_recv().ok(),
            };
        }
        if !writes.is_empty()
            && let Err(e) = db.apply(&writes)
        {
            warn!("cannot save to the database: {e:#}");
        }
        for done in flushed {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_land_in_order_and_flush_waits_for_them() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Db::open(&dir.path().join("t.redb")).unwrap());
        let w = DbWriter::start(db.clone()).unwrap();
        for i in 0..100u32 {
            w.submit(Write::catalog(&[("x".to_string(), i)], &[]));
        }
        w.submit(Write::catalog(&[("y".to_string(), 7u32)], &[]));
        w.submit(Write::catalog::<u32>(&[], &["y".to_string()]));
        w.flush();
        assert_eq!(db.load_catalog::<u32>().unwrap(), vec![99]);
        w.submit(Write::catalog(&[("z".to_string(), 1u32)], &[]));
        drop(w);
        assert_eq!(db.load_catalog::<u32>().unwrap(), vec![99, 1]);
    }
}
