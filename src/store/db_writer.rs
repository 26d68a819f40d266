//! One thread does every database write after start, in order. A redb commit fsyncs; done
//! on a runtime thread it stalls the control streams and heartbeats that thread also serves.
//! Writes queued while a commit runs go together into the next transaction.

use super::db::{Db, Write};
use std::sync::Arc;
use std::sync::mpsc;
use tracing::warn;

enum Op {
    Write(Write),
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

    /// Queues a write; it is applied after every write queued before it.
    pub fn submit(&self, write: anyhow::Result<Write>) {
        match write {
            Ok(w) => {
                if let Some(tx) = &self.tx {
                    let _ = tx.send(Op::Write(w));
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

fn run(db: &Db, rx: &mpsc::Receiver<Op>) {
    while let Ok(first) = rx.recv() {
        let mut writes = Vec::new();
        let mut flushed = Vec::new();
        let mut next = Some(first);
        while let Some(op) = next {
            match op {
                Op::Write(w) => writes.push(w),
                Op::Flush(done) => flushed.push(done),
            }
            next = rx.try_recv().ok();
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
