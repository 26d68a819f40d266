use super::*;
use proptest::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn silence_makes_suspect_then_dead_and_a_heartbeat_revives() {
    let mut l = Liveness::new(LivenessConfig::default());
    let t0 = Instant::now();
    let p = PeerId([1; 32]);
    assert_eq!(l.heard(p, t0), Some(PeerState::Alive));
    assert_eq!(l.heard(p, t0 + ms(900)), None);
    assert!(l.tick(t0 + ms(2000)).is_empty());
    assert_eq!(l.tick(t0 + ms(2500)), vec![(p, PeerState::Suspect)]);
    assert_eq!(l.tick(t0 + ms(3400)), vec![(p, PeerState::Dead)]);
    assert!(l.tick(t0 + Duration::from_secs(60)).is_empty());
    assert_eq!(
        l.heard(p, t0 + Duration::from_secs(61)),
        Some(PeerState::Alive)
    );
}

#[test]
fn left_is_final_until_heard_again() {
    let mut l = Liveness::new(LivenessConfig::default());
    let t0 = Instant::now();
    let p = PeerId([2; 32]);
    l.heard(p, t0);
    assert_eq!(l.left(p, t0), Some(PeerState::Left));
    assert!(l.tick(t0 + Duration::from_secs(30)).is_empty());
    assert_eq!(l.state(&p), Some(PeerState::Left));
}

#[test]
fn a_starved_observer_does_not_blame_its_peers() {
    let t0 = Instant::now();
    let id = PeerId([7; 32]);
    let mut l = Liveness::new(LivenessConfig::default());
    l.heard(id, t0);
    // 5 s pass, of which we were starved for 4.5 s: only 0.5 s of silence counts.
    let now = t0 + Duration::from_secs(5);
    l.pause(ms(4500), now);
    assert!(l.tick(now).is_empty());
    assert_eq!(l.state(&id), Some(PeerState::Alive));
    // A busy observer allows more silence.
    let mut busy = Liveness::new(LivenessConfig::default());
    busy.heard(id, t0);
    assert!(
        busy.tick_stretched(now, 3)
            .iter()
            .all(|(_, s)| *s != PeerState::Dead)
    );
    // Without the pause the same silence makes a suspect, dead a round of asks later.
    let mut m = Liveness::new(LivenessConfig::default());
    m.heard(id, t0);
    assert_eq!(m.tick(now), vec![(id, PeerState::Suspect)]);
    assert!(m.tick(now + ms(250)).is_empty());
    assert_eq!(m.tick(now + ms(500)), vec![(id, PeerState::Dead)]);
}

#[test]
fn when_the_stretch_falls_a_long_silence_makes_a_suspect_its_friends_can_vouch_for() {
    let t0 = Instant::now();
    let id = PeerId([3; 32]);
    let mut l = Liveness::new(LivenessConfig::default());
    l.heard(id, t0);
    // Busy with dials, the observer allows 4 times the silence ...
    assert!(l.tick_stretched(t0 + ms(2400), 4).is_empty());
    // ... then the dials end: 2.65 s of silence is past `dead_after`, but nobody was asked.
    assert_eq!(l.tick(t0 + ms(2650)), vec![(id, PeerState::Suspect)]);
    assert_eq!(l.asks_due(t0 + ms(2650), 1, 3), vec![id]);
    // A friend heard it just now: alive.
    assert_eq!(
        l.answer(id, Some(ms(100)), t0 + ms(2700)),
        Some(PeerState::Alive)
    );
    assert!(l.tick(t0 + ms(3200)).is_empty());
    assert!(l.indirect(&id, t0 + ms(3200)));
}

/// Runs the asks and ticks of one observer every 250 ms up to `to`; `news` says what each
/// of 3 friends answers (their silence) at a given time, `each` sees every step. Returns when
/// the target died.
fn run(
    l: &mut Liveness,
    target: PeerId,
    t0: Instant,
    to: u64,
    news: impl Fn(u64) -> Option<u64>,
    mut each: impl FnMut(&Liveness, u64),
) -> Option<u64> {
    let mut at = 0;
    while at <= to {
        let now = t0 + ms(at);
        for id in l.asks_due(now, 1, 3) {
            assert_eq!(id, target);
            for _ in 0..3 {
                l.answer(id, news(at).map(ms), now);
            }
        }
        for (id, s) in l.tick(now) {
            if id == target && s == PeerState::Dead {
                return Some(at);
            }
        }
        each(l, at);
        at += 250;
    }
    None
}

#[test]
fn a_crashed_peer_is_dead_within_3_s_though_friends_heard_it_just_before() {
    for heard_before in [0u64, 500, 999] {
        for friend_lag in [0u64, 400, 999] {
            let t0 = Instant::now();
            let p = PeerId([3; 32]);
            let mut l = Liveness::new(LivenessConfig::default());
            // We last heard it `heard_before` ms before the crash at 1000; a friend heard it
            // up to the crash, `friend_lag` ms after us at most.
            l.heard(p, t0 + ms(1000 - heard_before));
            let friend_heard = (1000 - heard_before + friend_lag).min(1000);
            let died = run(
                &mut l,
                p,
                t0,
                10_000,
                |at| at.checked_sub(friend_heard),
                |_, _| {},
            );
            let died = died.expect("a crashed peer must die");
            assert!(
                died - 1000 <= 2750,
                "dead {} ms after the crash (heard {heard_before} ms before, friend lag {friend_lag})",
                died - 1000
            );
        }
    }
}

#[test]
fn a_peer_only_friends_hear_stays_alive_and_dies_when_they_stop() {
    let t0 = Instant::now();
    let p = PeerId([4; 32]);
    let mut l = Liveness::new(LivenessConfig::default());
    l.heard(p, t0);
    // Friends hear it every second until 60 s; we never do again.
    let friends_hear_until = 60_000;
    let news = |at: u64| (at <= friends_hear_until).then_some(at % 1000);
    let mut was_indirect = false;
    let died = run(&mut l, p, t0, 70_000, news, |l, at| {
        if at > 3000 && at < friends_hear_until {
            assert_eq!(l.state(&p), Some(PeerState::Alive), "at {at} ms");
            was_indirect |= l.indirect(&p, t0 + ms(at));
        }
    });
    assert!(was_indirect, "it was alive only through friends");
    let died = died.expect("dead once nobody hears it");
    assert!(
        died - friends_hear_until <= 2750,
        "dead {} ms after friends stopped hearing it",
        died - friends_hear_until
    );
}

#[test]
fn unasked_answers_do_not_keep_a_peer_alive() {
    let t0 = Instant::now();
    let p = PeerId([5; 32]);
    let mut l = Liveness::new(LivenessConfig::default());
    l.heard(p, t0);
    // Nobody asked: a stream of fresh "answers" changes nothing.
    for at in (0..4000).step_by(250) {
        l.answer(p, Some(ms(0)), t0 + ms(at));
    }
    assert_eq!(l.tick(t0 + ms(4000)), vec![(p, PeerState::Suspect)]);
    assert_eq!(l.tick(t0 + ms(4500)), vec![(p, PeerState::Dead)]);
}

#[test]
fn unanswered_asks_stretch_silences_and_answers_shrink_them_back() {
    let t0 = Instant::now();
    let (a, b) = (PeerId([6; 32]), PeerId([7; 32]));
    let mut l = Liveness::new(LivenessConfig::default());
    l.heard(a, t0);
    l.heard(b, t0);
    // We are starved: our asks about both go unanswered, round after round.
    let mut at = 1500;
    while at <= 3000 {
        l.asks_due(t0 + ms(at), 1, 3);
        at += 500;
    }
    assert!(l.health_stretch() > 1, "unanswered asks count against us");
    assert!(
        l.tick(t0 + ms(3000))
            .iter()
            .all(|(_, s)| *s != PeerState::Dead),
        "an unhealthy observer allows longer silences"
    );
    // Answers come back (stale ones: the peers really are silent); health recovers.
    for _ in 0..20 {
        l.answer(a, Some(ms(5000)), t0 + ms(3000));
        l.asks_due(t0 + ms(3000), 1, 3);
    }
    for _ in 0..3 {
        l.answer(a, Some(ms(5000)), t0 + ms(3000));
        l.answer(b, Some(ms(5000)), t0 + ms(3000));
    }
    assert_eq!(l.health_stretch(), 1);
}

#[test]
fn a_new_link_gets_longer_for_its_first_heartbeat_then_the_usual_silence() {
    let t0 = Instant::now();
    let p = PeerId([9; 32]);
    let mut l = Liveness::new(LivenessConfig::default());
    l.linked(p, t0);
    // 5 s without the first heartbeat: still not dead (a join storm's late handshake).
    assert!(l.tick(t0 + ms(5000)).is_empty());
    // With no heartbeat ever, it is dead after 4 × 2.5 s (a suspect first).
    assert_eq!(l.tick(t0 + ms(6_000)), vec![(p, PeerState::Suspect)]);
    assert_eq!(l.tick(t0 + ms(10_000)), vec![(p, PeerState::Dead)]);
    // Once a heartbeat came, the usual 2.5 s hold.
    let mut l = Liveness::new(LivenessConfig::default());
    l.linked(p, t0);
    l.heard(p, t0 + ms(100));
    assert_eq!(l.tick(t0 + ms(1600)), vec![(p, PeerState::Suspect)]);
    assert_eq!(l.tick(t0 + ms(2600)), vec![(p, PeerState::Dead)]);
}

proptest! {
    /// Against a model of the rule: a peer is dead when we have not heard it for
    /// `dead_after`, no friend's fresh news came in the last `vouch_for`, and it has been a
    /// suspect for a round of asks (`ask_every`); a suspect when silent for `suspect_after`
    /// without such news; alive otherwise. Dead stays dead until heard.
    #[test]
    fn states_follow_silence_and_friends_news(
        steps in proptest::collection::vec((0u64..1500, proptest::bool::weighted(0.3), proptest::option::of(0u64..3000)), 1..120),
    ) {
        let cfg = LivenessConfig::default();
        let (suspect, dead, fresh, vouch) = (1500u64, 2500u64, 1250u64, 1000u64);
        prop_assert_eq!((cfg.suspect_after, cfg.dead_after, cfg.fresh, cfg.vouch_for), (ms(suspect), ms(dead), ms(fresh), ms(vouch)));
        let t0 = Instant::now();
        let p = PeerId([8; 32]);
        let mut l = Liveness::new(cfg);
        l.heard(p, t0);
        let (mut at, mut last_heard, mut last_vouch) = (0u64, 0u64, None::<u64>);
        let (mut model, mut since) = (PeerState::Alive, 0u64);
        for (gap, heard, answer) in steps {
            at += gap;
            let now = t0 + ms(at);
            if heard {
                l.heard(p, now);
                last_heard = at;
                last_vouch = None;
                if model != PeerState::Alive {
                    (model, since) = (PeerState::Alive, at);
                }
            }
            for id in l.asks_due(now, 1, 1) {
                prop_assert_eq!(id, p);
                l.answer(id, answer.map(ms), now);
                if answer.is_some_and(|a| a < fresh) && l.state(&p) != Some(PeerState::Dead) {
                    last_vouch = Some(at);
                }
            }
            l.tick(now);
            let silent = at - last_heard;
            let vouched = last_vouch.is_some_and(|v| at < v + vouch);
            let next = if model == PeerState::Dead {
                PeerState::Dead
            } else if vouched {
                PeerState::Alive
            } else if silent >= dead && model == PeerState::Suspect && at - since >= 500 {
                PeerState::Dead
            } else if silent >= suspect {
                PeerState::Suspect
            } else {
                model
            };
            if next != model {
                (model, since) = (next, at);
            }
            let state = l.state(&p);
            prop_assert_eq!(l.health_stretch(), 1, "every ask was answered");
            prop_assert_eq!(state, Some(model), "at {} ms, silent {} ms, vouched {}", at, silent, vouched);
            if state == Some(PeerState::Dead) {
                prop_assert!(silent >= dead && !vouched, "dead at {} ms: silent {} ms, vouched {}", at, silent, vouched);
            }
        }
    }
}
