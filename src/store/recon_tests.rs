use super::*;
use proptest::prelude::*;
use std::collections::{BTreeMap, BTreeSet};

/// Items whose states merge by union (as catalog entries merge acks): a key held differently
/// on both sides ends as a third state on both.
#[derive(Clone, Debug, Default, PartialEq)]
struct Model(BTreeMap<u32, BTreeSet<u8>>);

fn item_hash(k: u32, v: &BTreeSet<u8>) -> ItemHash {
    let mut h = blake3::Hasher::new();
    h.update(&k.to_le_bytes());
    for x in v {
        h.update(&[*x]);
    }
    *h.finalize().as_bytes()
}

impl ReconSet for Model {
    type Key = u32;
    fn scan(
        &self,
        lower: Option<&u32>,
        upper: Option<&u32>,
        f: &mut dyn FnMut(&u32, &ItemHash) -> bool,
    ) {
        use std::ops::Bound::*;
        let lo = lower.map_or(Unbounded, |k| Included(*k));
        let hi = upper.map_or(Unbounded, |k| Excluded(*k));
        for (k, v) in self.0.range((lo, hi)) {
            if !f(k, &item_hash(*k, v)) {
                break;
            }
        }
    }
    fn key_bytes(_: &u32) -> usize {
        5
    }
}

impl Model {
    fn merge(&mut self, k: u32, v: &BTreeSet<u8>) {
        self.0.entry(k).or_default().extend(v.iter().copied());
    }
}

#[derive(Debug, Default)]
struct Run {
    rounds: usize,
    items_sent: usize,
    reply_bytes: usize,
    largest_reply: usize,
}

/// Plays both sides until one answers empty, moving the items each step sends.
fn sync(a: &mut Model, b: &mut Model, lim: &Limits) -> Run {
    let mut sides = [std::mem::take(a), std::mem::take(b)];
    let mut msg = start(&sides[0]);
    let mut to = 1;
    let mut run = Run::default();
    loop {
        run.rounds += 1;
        assert!(run.rounds < 100_000, "no convergence");
        let step = respond(&sides[to], &msg, lim).expect("well-formed message");
        let mut moved = Vec::new();
        for (lo, hi) in &step.send_ranges {
            sides[to].scan(lo.as_ref(), hi.as_ref(), &mut |k, _| {
                moved.push(*k);
                true
            });
        }
        moved.extend(step.send_keys.iter().copied());
        for k in moved {
            if let Some(v) = sides[to].0.get(&k).cloned() {
                sides[1 - to].merge(k, &v);
                run.items_sent += 1;
            }
        }
        let bytes = postcard::to_allocvec(&step.reply).expect("encodes").len();
        run.reply_bytes += bytes;
        run.largest_reply = run.largest_reply.max(bytes);
        if step.reply.is_empty() {
            break;
        }
        msg = step.reply;
        to = 1 - to;
    }
    let [x, y] = sides;
    *a = x;
    *b = y;
    run
}

fn model(keys: impl IntoIterator<Item = u32>, tag: u8) -> Model {
    Model(
        keys.into_iter()
            .map(|k| (k, BTreeSet::from([tag])))
            .collect(),
    )
}

/// The most one answer may take: its budget, plus the one range that crossed it (a split or a
/// full list) and the fingerprint lumping the rest.
fn reply_cap(lim: &Limits) -> usize {
    let fp_range = 2 * 6 + 42;
    lim.budget + lim.split * fp_range + lim.ids_max * (5 + 32) + fp_range + 64
}

#[test]
fn equal_sets_settle_in_one_round_with_nothing_sent() {
    let mut a = model(0..100_000, 1);
    let mut b = a.clone();
    let run = sync(&mut a, &mut b, &Limits::default());
    assert_eq!((run.rounds, run.items_sent), (1, 0));
}

#[test]
fn a_joiner_gets_everything_in_two_rounds_of_small_messages() {
    let mut holder = model(0..100_000, 1);
    let mut joiner = Model::default();
    let run = sync(&mut joiner, &mut holder, &Limits::default());
    assert_eq!(joiner, holder);
    assert_eq!(run.items_sent, 100_000);
    assert!(run.rounds <= 2, "{run:?}");
    assert!(run.largest_reply < 2048, "{run:?}");
}

#[test]
fn a_few_differences_in_a_large_set_cost_a_few_kilobytes() {
    let mut a = model(0..100_000, 1);
    let mut b = a.clone();
    for k in [7, 20_000, 55_555, 99_999] {
        b.0.insert(k, BTreeSet::from([2]));
    }
    b.0.remove(&31_337);
    a.0.insert(200_000, BTreeSet::from([3]));
    let run = sync(&mut a, &mut b, &Limits::default());
    assert_eq!(a, b);
    assert_eq!(a.0[&7], BTreeSet::from([1, 2]), "states merge");
    assert!(run.rounds <= 10, "{run:?}");
    assert!(run.reply_bytes < 40_000, "{run:?}");
    assert!(run.items_sent <= 12, "{run:?}");
}

#[test]
fn malformed_messages_are_refused() {
    let set = model(0..10, 1);
    let lim = Limits::default();
    let fp = |lo: Option<u32>, hi: Option<u32>| Range {
        lower: lo,
        upper: hi,
        body: Body::Fp(RangeFp::default()),
    };
    let overlap = [fp(None, Some(5)), fp(Some(4), None)];
    assert_eq!(respond(&set, &overlap, &lim), Err(ReconError::Unordered));
    let open_then_more = [fp(None, None), fp(Some(4), None)];
    assert_eq!(
        respond(&set, &open_then_more, &lim),
        Err(ReconError::Unordered)
    );
    let empty_range = [fp(Some(4), Some(4))];
    assert_eq!(
        respond(&set, &empty_range, &lim),
        Err(ReconError::Unordered)
    );
    let too_many: Vec<_> = (0..=lim.max_ranges as u32)
        .map(|i| fp(Some(i), Some(i + 1)))
        .collect();
    assert_eq!(
        respond(&set, &too_many, &lim),
        Err(ReconError::TooManyRanges(lim.max_ranges))
    );
    let unsorted = [Range {
        lower: None,
        upper: None,
        body: Body::Ids(vec![(3, [0; 32]), (2, [0; 32])]),
    }];
    assert!(matches!(
        respond(&set, &unsorted, &lim),
        Err(ReconError::BadList(_))
    ));
    let outside = [Range {
        lower: Some(5),
        upper: Some(8),
        body: Body::Want(vec![9]),
    }];
    assert!(matches!(
        respond(&set, &outside, &lim),
        Err(ReconError::BadList(_))
    ));
    let long = [Range {
        lower: None,
        upper: None,
        body: Body::Want((0..=lim.ids_max as u32).collect()),
    }];
    assert!(matches!(
        respond(&set, &long, &lim),
        Err(ReconError::BadList(_))
    ));
}

fn arb_side() -> impl Strategy<Value = Vec<(u32, u8)>> {
    prop::collection::vec((0u32..3000, 0u8..4), 0..1500)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Any two sets converge, in a bounded number of rounds, and no answer passes its cap
    /// whatever the sets' sizes.
    #[test]
    fn any_two_sets_converge_within_bounded_rounds_and_frames(
        shared in prop::collection::vec(0u32..3000, 0..3000),
        only_a in arb_side(),
        only_b in arb_side(),
        split in 2usize..17,
        ids_max in 1usize..40,
        budget in 200usize..4000,
    ) {
        let lim = Limits { split, ids_max, budget, max_ranges: 4096 };
        let mut a = model(shared.iter().copied(), 0);
        let mut b = a.clone();
        for (k, v) in only_a { a.merge(k, &BTreeSet::from([v])); }
        for (k, v) in only_b { b.merge(k, &BTreeSet::from([v])); }
        let mut expected = a.clone();
        for (k, v) in &b.0 { expected.merge(*k, v); }
        let run = sync(&mut a, &mut b, &lim);
        prop_assert_eq!(&a, &expected);
        prop_assert_eq!(&b, &expected);
        prop_assert!(run.largest_reply <= reply_cap(&lim), "{:?} over {}", run, reply_cap(&lim));
        // Rounds grow with the differences over the budget (each difference costs at most a
        // range of about 64 bytes at each level), times the depth of the splits; never with
        // the size of the sets.
        let depth = ((6000.0 / ids_max as f64).ln() / (split as f64).ln()).ceil() as usize + 2;
        let bound = 4 * (run.items_sent * 64 / budget + 1) * depth;
        prop_assert!(run.rounds <= bound, "{:?} over {} rounds", run, bound);
    }
}
