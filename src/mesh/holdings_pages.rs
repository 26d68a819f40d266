//! A peer's whole holdings in pages: one frame per 16,384 blobs (512 KiB), so the set a peer
//! sends when a link opens or when asked never outgrows a frame, however much it holds. The
//! pages of one set share its sequence number; the last says so. They travel in order on the
//! control stream (never as a latest-wins snapshot), so a set is complete when its last page
//! is in, and only then replaces what we knew.

use super::holdings::Hash;
use std::collections::BTreeSet;

/// Blobs per page.
pub const PAGE: usize = 16_384;

/// One page of a holdings set: (sequence number, its blobs, more pages follow).
pub type Page = (u64, Vec<Hash>, bool);

/// The set `held` at `seq`, in pages (one, empty, for an empty set).
pub fn pages<'a>(seq: u64, held: impl ExactSizeIterator<Item = &'a Hash>) -> Vec<Page> {
    let total = held.len();
    let mut out: Vec<Page> = Vec::with_capacity(total.div_ceil(PAGE).max(1));
    let mut page = Vec::with_capacity(total.min(PAGE));
    for h in held {
        if page.len() == PAGE {
            out.push((seq, std::mem::take(&mut page), true));
            page.reserve(PAGE.min(total - out.len() * PAGE));
        }
        page.push(*h);
    }
    out.push((seq, page, false));
    out
}

/// Pages of one peer's set being put back together.
#[derive(Debug, Default)]
pub struct Assembly {
    seq: Option<u64>,
    blobs: BTreeSet<Hash>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Fed {
    /// More pages to come.
    Partial,
    /// The whole set at this sequence number.
    Complete(u64, BTreeSet<Hash>),
    /// More blobs than the peer can hold: a peer breaking the protocol.
    TooMany,
}

impl Assembly {
    /// Takes a page. A page of another sequence number than the set in progress starts a new
    /// set (a newer one replaced it). `cap` bounds what a peer can make us keep.
    pub fn feed(&mut self, (seq, held, more): Page, cap: usize) -> Fed {
        if self.seq != Some(seq) {
            self.seq = Some(seq);
            self.blobs.clear();
        }
        self.blobs.extend(held);
        if self.blobs.len() > cap {
            *self = Assembly::default();
            return Fed::TooMany;
        }
        if more {
            return Fed::Partial;
        }
        self.seq = None;
        Fed::Complete(seq, std::mem::take(&mut self.blobs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(n: usize) -> BTreeSet<Hash> {
        (0..n as u32)
            .map(|i| *blake3::hash(&i.to_le_bytes()).as_bytes())
            .collect()
    }

    #[test]
    fn a_set_of_any_size_travels_in_pages_that_fit_a_frame() {
        for n in [0, 1, PAGE - 1, PAGE, PAGE + 1, 3 * PAGE + 17] {
            let held = set(n);
            let pages = pages(9, held.iter());
            assert_eq!(pages.len(), n.div_ceil(PAGE).max(1), "{n}");
            let mut a = Assembly::default();
            let mut done = None;
            for (i, p) in pages.into_iter().enumerate() {
                assert!(p.1.len() <= PAGE);
                let last = !p.2;
                let bytes = postcard::to_allocvec(&crate::net::msg::Msg::Holdings {
                    seq: p.0,
                    held: p.1.clone(),
                    more: p.2,
                })
                .unwrap();
                assert!(bytes.len() <= crate::net::msg::Msg::max_len(9).unwrap());
                match a.feed(p, 10 * PAGE) {
                    Fed::Partial => assert!(!last, "page {i} of {n}"),
                    Fed::Complete(seq, s) => {
                        assert!(last);
                        done = Some((seq, s));
                    }
                    Fed::TooMany => panic!("refused {n}"),
                }
            }
            assert_eq!(done, Some((9, held)), "{n}");
        }
    }

    #[test]
    fn a_newer_set_replaces_one_in_progress_and_a_flood_is_refused() {
        let old = set(PAGE + 5);
        let new = set(3);
        let mut a = Assembly::default();
        let mut old_pages = pages(1, old.iter()).into_iter();
        assert_eq!(a.feed(old_pages.next().unwrap(), 100_000), Fed::Partial);
        for p in pages(2, new.iter()) {
            assert_eq!(a.feed(p, 100_000), Fed::Complete(2, new.clone()));
        }
        let mut a = Assembly::default();
        let flood = pages(3, old.iter());
        assert_eq!(a.feed(flood[0].clone(), PAGE / 2), Fed::TooMany);
    }
}
