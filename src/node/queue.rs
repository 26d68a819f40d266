//! The play queue: an ordered list of track names and where playback is in it. Plain
//! logic; the node keeps one per peer, driven by `stream`, `queue`, `next` and `prev`.

use serde::Serialize;

/// SPEC's `queue --json`.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Queue {
    pub position: usize,
    pub tracks: Vec<String>,
    pub shuffle: bool,
    pub repeat: bool,
}

impl Queue {
    /// A queue of `tracks`; shuffled once here, so `queue` shows the order it plays in.
    pub fn new(mut tracks: Vec<String>, shuffle: bool, repeat: bool, seed: u64) -> Self {
        if shuffle {
            shuffle_in_place(&mut tracks, seed);
        }
        Queue {
            position: 0,
            tracks,
            shuffle,
            repeat,
        }
    }

    /// The position after `i`: the next track, the first again with repeat, else none.
    pub fn after(&self, i: usize) -> Option<usize> {
        if i + 1 < self.tracks.len() {
            Some(i + 1)
        } else if self.repeat && !self.tracks.is_empty() {
            Some(0)
        } else {
            None
        }
    }

    /// The position before `i`: the previous track, the last with repeat, else the first.
    pub fn before(&self, i: usize) -> Option<usize> {
        if self.tracks.is_empty() {
            None
        } else if i > 0 {
            Some((i - 1).min(self.tracks.len() - 1))
        } else if self.repeat {
            Some(self.tracks.len() - 1)
        } else {
            Some(0)
        }
    }

    pub fn name(&self, i: usize) -> Option<&str> {
        self.tracks.get(i).map(String::as_str)
    }
}

/// Fisher–Yates with a small xorshift generator: a shuffle needs no cryptography.
fn shuffle_in_place(v: &mut [String], seed: u64) {
    let mut x = seed | 1;
    for i in (1..v.len()).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let j = (x % (i as u64 + 1)) as usize;
        v.swap(i, j);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(n: usize, repeat: bool) -> Queue {
        Queue::new((0..n).map(|i| format!("t{i}")).collect(), false, repeat, 1)
    }

    #[test]
    fn after_and_before_stop_at_the_ends_unless_repeating() {
        let plain = q(3, false);
        assert_eq!(plain.after(0), Some(1));
        assert_eq!(plain.after(2), None);
        assert_eq!(plain.before(0), Some(0));
        assert_eq!(plain.before(2), Some(1));
        let looping = q(3, true);
        assert_eq!(looping.after(2), Some(0));
        assert_eq!(looping.before(0), Some(2));
        assert_eq!(q(0, true).after(0), None);
        assert_eq!(q(0, false).before(0), None);
    }

    #[test]
    fn shuffle_keeps_every_track_once() {
        let names: Vec<String> = (0..50).map(|i| format!("t{i}")).collect();
        let s = Queue::new(names.clone(), true, false, 42);
        assert_ne!(
            s.tracks, names,
            "50 tracks shuffled stay in order with odds 1/50!"
        );
        let mut sorted = s.tracks.clone();
        sorted.sort();
        let mut want = names;
        want.sort();
        assert_eq!(sorted, want);
        assert!(s.shuffle);
    }
}
