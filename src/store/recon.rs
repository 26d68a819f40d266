//! Range-based set reconciliation (Meyer, "Range-Based Set Reconciliation", 2022; what
//! negentropy and iroh-docs do): two peers compare fingerprints of key ranges, split the ranges
//! that differ, and list the items of small ones, so what travels grows with the differences,
//! never with the size of the sets. Pure logic over [`ReconSet`]; the node streams the items.
//!
//! A message is the list of ranges still open, in key order and disjoint. Each range carries
//! a fingerprint (XOR of the items' hashes and their count), a list of `(key, hash)` when it
//! is small, or the keys its sender wants. An answer that would pass its byte budget lumps
//! the ranges it has no room for into one fingerprint, to be split again next round. A side
//! whose answer is empty has everything the other side has (the items it was sent travel
//! before the message that settles their range), and says so with an empty message.

use serde::{Deserialize, Serialize};

pub type ItemHash = [u8; 32];

/// XOR of the items' hashes and how many there are: cheap to keep up to date as items come
/// and go, and two sides holding the same items in a range compute the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RangeFp {
    pub xor: ItemHash,
    pub count: u64,
}

impl RangeFp {
    pub fn add(&mut self, h: &ItemHash) {
        self.toggle(h);
        self.count += 1;
    }

    pub fn remove(&mut self, h: &ItemHash) {
        self.toggle(h);
        self.count = self.count.saturating_sub(1);
    }

    fn toggle(&mut self, h: &ItemHash) {
        for (a, b) in self.xor.iter_mut().zip(h) {
            *a ^= b;
        }
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Body<K> {
    Fp(RangeFp),
    /// Every item the sender holds in the range.
    Ids(Vec<(K, ItemHash)>),
    /// Keys the sender lacks or holds differently: send me yours.
    Want(Vec<K>),
}

/// `lower <= key < upper`; `None` is the start or the end of the key space.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Range<K> {
    pub lower: Option<K>,
    pub upper: Option<K>,
    pub body: Body<K>,
}

/// A set of keyed items, each with the hash of its state.
pub trait ReconSet {
    type Key: Ord + Clone;
    /// Calls `f` on every item with `lower <= key < upper`, in key order, while it returns true.
    fn scan(
        &self,
        lower: Option<&Self::Key>,
        upper: Option<&Self::Key>,
        f: &mut dyn FnMut(&Self::Key, &ItemHash) -> bool,
    );
    /// About how many bytes `key` takes on the wire.
    fn key_bytes(key: &Self::Key) -> usize;
    /// The fingerprint of everything, when the set keeps it up to date (else it is scanned).
    fn total(&self) -> Option<RangeFp> {
        None
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// A differing range holding more than `ids_max` items is split into this many.
    pub split: usize,
    /// A range of at most this many items is listed rather than split.
    pub ids_max: usize,
    /// Bytes an answer may take, about.
    pub budget: usize,
    /// Ranges a message may carry; more is a misbehaving peer.
    pub max_ranges: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            split: 16,
            ids_max: 32,
            budget: 256 * 1024,
            max_ranges: 4096,
        }
    }
}

/// What to do with one message: answer `reply` (empty: we are in sync), after sending the
/// peer our items in `send_ranges` (whole ranges it has nothing of) and at `send_keys`.
#[derive(Debug, Default, PartialEq)]
pub struct Step<K> {
    pub reply: Vec<Range<K>>,
    pub send_ranges: Vec<(Option<K>, Option<K>)>,
    pub send_keys: Vec<K>,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ReconError {
    #[error("more than {0} ranges in one message")]
    TooManyRanges(usize),
    #[error("ranges out of order or overlapping")]
    Unordered,
    #[error("a listed range holds more than {0} items, or unsorted ones")]
    BadList(usize),
}

/// The message that opens a round: one fingerprint over everything.
pub fn start<S: ReconSet>(set: &S) -> Vec<Range<S::Key>> {
    vec![Range {
        lower: None,
        upper: None,
        body: Body::Fp(fingerprint(set, None, None)),
    }]
}

pub fn fingerprint<S: ReconSet>(
    set: &S,
    lower: Option<&S::Key>,
    upper: Option<&S::Key>,
) -> RangeFp {
    if lower.is_none()
        && upper.is_none()
        && let Some(t) = set.total()
    {
        return t;
    }
    let mut fp = RangeFp::default();
    set.scan(lower, upper, &mut |_, h| {
        fp.add(h);
        true
    });
    fp
}

/// The answer to `incoming`, checked first so that a peer's message costs at most one pass
/// over our set.
pub fn respond<S: ReconSet>(
    set: &S,
    incoming: &[Range<S::Key>],
    lim: &Limits,
) -> Result<Step<S::Key>, ReconError> {
    check(incoming, lim)?;
    let mut step = Step {
        reply: Vec::new(),
        send_ranges: Vec::new(),
        send_keys: Vec::new(),
    };
    let mut used = 0usize;
    for (i, r) in incoming.iter().enumerate() {
        if i > 0 && used >= lim.budget {
            let last = &incoming[incoming.len() - 1];
            let (lower, upper) = (r.lower.clone(), last.upper.clone());
            let fp = fingerprint(set, lower.as_ref(), upper.as_ref());
            step.reply.push(Range {
                lower,
                upper,
                body: Body::Fp(fp),
            });
            break;
        }
        let before = step.reply.len();
        answer_range(set, r, lim, &mut step);
        used += step.reply[before..]
            .iter()
            .map(range_bytes::<S>)
            .sum::<usize>();
    }
    Ok(step)
}

fn answer_range<S: ReconSet>(set: &S, r: &Range<S::Key>, lim: &Limits, step: &mut Step<S::Key>) {
    let (lower, upper) = (r.lower.as_ref(), r.upper.as_ref());
    match &r.body {
        Body::Fp(theirs) => {
            let ours = fingerprint(set, lower, upper);
            if ours == *theirs {
            } else if theirs.count == 0 {
                step.send_ranges.push((r.lower.clone(), r.upper.clone()));
            } else if ours.count as usize <= lim.ids_max {
                let mut ids = Vec::new();
                set.scan(lower, upper, &mut |k, h| {
                    ids.push((k.clone(), *h));
                    true
                });
                step.reply.push(Range {
                    lower: r.lower.clone(),
                    upper: r.upper.clone(),
                    body: Body::Ids(ids),
                });
            } else {
                split(set, r, ours.count, lim.split.max(2), step);
            }
        }
        Body::Ids(theirs) => {
            let mut want = Vec::new();
            let mut run_start: Option<S::Key> = None;
            let mut next = theirs.iter().peekable();
            set.scan(lower, upper, &mut |k, h| {
                while let Some((tk, th)) = next.next_if(|(tk, _)| tk <= k) {
                    if let Some(s) = run_start.take() {
                        step.send_ranges.push((Some(s), Some(tk.clone())));
                    }
                    if tk == k {
                        if th != h {
                            step.send_keys.push(k.clone());
                            want.push(k.clone());
                        }
                        return true;
                    }
                    want.push(tk.clone());
                }
                if run_start.is_none() {
                    run_start = Some(k.clone());
                }
                true
            });
            if let Some(s) = run_start.take() {
                let end = next.peek().map(|(tk, _)| tk.clone()).or(r.upper.clone());
                step.send_ranges.push((Some(s), end));
            }
            want.extend(next.map(|(tk, _)| tk.clone()));
            if !want.is_empty() {
                step.reply.push(Range {
                    lower: r.lower.clone(),
                    upper: r.upper.clone(),
                    body: Body::Want(want),
                });
            }
        }
        Body::Want(keys) => step.send_keys.extend(keys.iter().cloned()),
    }
}

/// Splits a range of `count` items into `parts` of about equal counts, each with its
/// fingerprint.
fn split<S: ReconSet>(
    set: &S,
    r: &Range<S::Key>,
    count: u64,
    parts: usize,
    step: &mut Step<S::Key>,
) {
    let parts = (parts as u64).min(count).max(1);
    let mut lower = r.lower.clone();
    let mut fp = RangeFp::default();
    let mut seen = 0u64;
    let mut part = 1u64;
    set.scan(r.lower.as_ref(), r.upper.as_ref(), &mut |k, h| {
        if part < parts && seen == count * part / parts && seen > 0 {
            step.reply.push(Range {
                lower: lower.take(),
                upper: Some(k.clone()),
                body: Body::Fp(fp),
            });
            lower = Some(k.clone());
            fp = RangeFp::default();
            part += 1;
        }
        fp.add(h);
        seen += 1;
        true
    });
    step.reply.push(Range {
        lower,
        upper: r.upper.clone(),
        body: Body::Fp(fp),
    });
}

/// Whether a message is well formed: ordered disjoint ranges, lists short and sorted.
pub fn check<K: Ord>(incoming: &[Range<K>], lim: &Limits) -> Result<(), ReconError> {
    if incoming.len() > lim.max_ranges {
        return Err(ReconError::TooManyRanges(lim.max_ranges));
    }
    let mut prev_upper: Option<&K> = None;
    for (i, r) in incoming.iter().enumerate() {
        if i > 0 {
            // Every range but the last has an upper bound, at or below the next one's lower.
            match (prev_upper, r.lower.as_ref()) {
                (Some(p), Some(l)) if p <= l => {}
                _ => return Err(ReconError::Unordered),
            }
        }
        if let (Some(l), Some(u)) = (&r.lower, &r.upper)
            && l >= u
        {
            return Err(ReconError::Unordered);
        }
        let ok = match &r.body {
            Body::Fp(_) => true,
            Body::Ids(ids) => sorted_inside(r, ids.iter().map(|(k, _)| k), ids.len(), lim),
            Body::Want(keys) => sorted_inside(r, keys.iter(), keys.len(), lim),
        };
        if !ok {
            return Err(ReconError::BadList(lim.ids_max));
        }
        prev_upper = r.upper.as_ref();
        if prev_upper.is_none() && i + 1 < incoming.len() {
            return Err(ReconError::Unordered);
        }
    }
    Ok(())
}

/// A list of at most `ids_max` keys, strictly ascending, all inside `r`.
fn sorted_inside<'a, K: Ord + 'a>(
    r: &Range<K>,
    keys: impl Iterator<Item = &'a K>,
    n: usize,
    lim: &Limits,
) -> bool {
    let inside =
        |k: &K| r.lower.as_ref().is_none_or(|l| k >= l) && r.upper.as_ref().is_none_or(|u| k < u);
    let mut last: Option<&K> = None;
    n <= lim.ids_max
        && keys.into_iter().all(|k| {
            let ok = inside(k) && last.is_none_or(|l| l < k);
            last = Some(k);
            ok
        })
}

/// About how many bytes a range takes on the wire.
pub fn range_bytes<S: ReconSet>(r: &Range<S::Key>) -> usize {
    let bound = |k: &Option<S::Key>| 1 + k.as_ref().map_or(0, S::key_bytes);
    bound(&r.lower)
        + bound(&r.upper)
        + match &r.body {
            Body::Fp(_) => 42,
            Body::Ids(ids) => 4 + ids.iter().map(|(k, _)| S::key_bytes(k) + 32).sum::<usize>(),
            Body::Want(keys) => 4 + keys.iter().map(S::key_bytes).sum::<usize>(),
        }
}

#[cfg(test)]
#[path = "recon_tests.rs"]
mod tests;
