//! Membership upkeep: merging tables, anti-entropy, redialing members we lost, leaving.

use super::{Node, close_code, now_ms};
use crate::id::PeerId;
use crate::mesh::liveness::PeerState;
use crate::mesh::membership::{MemberRecord, departed_long_ago};
use crate::net::msg::Msg;
use crate::net::relay_socket::is_relay_addr;
use anyhow::{Result, bail};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tracing::{info, warn};

const TICK: Duration = Duration::from_millis(250);
const ANTI_ENTROPY_EVERY: Duration = Duration::from_secs(2);
const REDIAL_ALIVE_AFTER: Duration = Duration::from_secs(2);
const RELAY_AFTER: Duration = Duration::from_secs(1);
/// How long a direct dial may take before we ask a common friend to introduce us (stretched
/// as `RELAY_AFTER` is while many dials are in flight): a dial across NATs that do not know
/// each other yet needs the other side to dial at the same time.
const INTRODUCE_AFTER: Duration = Duration::from_millis(250);
const REPAIR_EVERY: Duration = Duration::from_millis(500);
const MAX_UPGRADE_WAIT: Duration = Duration::from_secs(60);
const REDIAL_DEAD_AFTER: Duration = Duration::from_secs(5);
/// A dead member is redialed ever less often, up to this: a friend's laptop that is off for
/// the week costs a dial every few minutes, not a storm every few seconds.
const MAX_DEAD_REDIAL_WAIT: Duration = Duration::from_secs(300);
/// Live peers that keep redialing a dead member on the backoff schedule.
const DEAD_REDIALERS: usize = 3;
/// Peers each anti-entropy round goes to: a few random ones, as epidemic gossip does, so a
/// change any delta missed still spreads in a few rounds while idle traffic per peer stays
/// the same at 8 peers or 64.
const ANTI_ENTROPY_FANOUT: usize = 3;
/// Peers a record that was news to us is passed on to.
const RUMOR_FANOUT: usize = 4;
/// How long the higher id of a pair waits before punching towards a new member (stretched
/// while many dials are in flight: in a join storm the lower id's handshake takes longer, and
/// a second handshake for the same pair is pure cost).
const PUNCH_DEFER: Duration = Duration::from_millis(300);
/// A peer whose table digest differs gets our whole table at most this often.
const TABLE_RESEND_EVERY: Duration = Duration::from_secs(1);
/// Peers that left are shown apart for a day, then forgotten.
const FORGET_LEFT_AFTER_MS: u64 = 24 * 3600 * 1000;

/// Whether we are one of the few live peers that redial `dead` on the quick schedule; the
/// rest try once every `MAX_DEAD_REDIAL_WAIT`. A peer that comes back dials everyone itself,
/// so 16 dead members no longer cost every live peer a stream of handshake packets
/// (and the ICMP answering each) to 16 dead ports.
fn redials_the_dead<'a>(
    me: PeerId,
    dead: PeerId,
    linked: impl Iterator<Item = &'a PeerId>,
) -> bool {
    let score = |a: &PeerId| {
        let (lo, hi) = if a.0 < dead.0 { (a, &dead) } else { (&dead, a) };
        let mut h = blake3::Hasher::new();
        h.update(&lo.0);
        h.update(&hi.0);
        u64::from_le_bytes(h.finalize().as_bytes()[..8].try_into().unwrap_or([0; 8]))
    };
    let ours = score(&me);
    linked.filter(|p| **p != dead && score(p) < ours).count() < DEAD_REDIALERS
}

impl Node {
    pub(crate) fn own_record(&self) -> MemberRecord {
        let st = self.state();
        st.table
            .get(&self.id())
            .cloned()
            .unwrap_or_else(|| MemberRecord {
                id: self.id(),
                name: self.name().to_string(),
                addrs: vec![],
                incarnation: now_ms(),
                left: false,
                capacity: self.inner.cfg.capacity,
                disk_full: false,
            })
    }

    /// Change our own record; a fresh incarnation makes the change win every merge.
    pub(crate) fn update_self(&self, f: impl FnOnce(&mut MemberRecord)) {
        let mut rec = self.own_record();
        f(&mut rec);
        rec.incarnation = now_ms().max(rec.incarnation + 1);
        {
            let mut st = self.state();
            st.table.merge(rec.clone());
            st.members_dirty = true;
        }
        self.broadcast_updates(vec![rec], None);
    }

    /// An address a peer saw us at: when it is not one we advertise already (we are behind a
    /// NAT), advertise it too.
    pub(crate) fn note_observed(&self, addr: SocketAddr) {
        if addr.ip().is_unspecified() || is_relay_addr(&addr) {
            return;
        }
        let known = {
            let mut st = self.state();
            let fresh = st.observed.insert(addr);
            !fresh
                || st
                    .table
                    .get(&self.id())
                    .is_some_and(|r| r.addrs.contains(&addr))
        };
        if !known {
            info!("peers see us at {addr}");
            self.update_self(|r| r.addrs.insert(0, addr));
        }
    }

    /// Merge records from `from` (or from disk); dial newcomers; pass changes on.
    pub(crate) fn merge_members(&self, recs: Vec<MemberRecord>, from: Option<PeerId>) {
        let me = self.id();
        let now = Instant::now();
        let mut changed: Vec<MemberRecord> = Vec::new();
        let mut refute = false;
        let mut punch = Vec::new();
        let defer_save;
        {
            let mut st = self.state();
            // While dials are in flight (a join storm) the table changes many times a second.
            defer_save = !st.table.records().all(|r| r.id == me) && !st.dialing.is_empty();
            for rec in recs {
                if departed_long_ago(&rec, now_ms(), FORGET_LEFT_AFTER_MS) {
                    continue;
                }
                if rec.id == me {
                    // Someone holds a record of us newer than ours (an earlier run): outrank it.
                    let stale_claim = match st.table.get(&me) {
                        Some(ours) => {
                            rec.incarnation > ours.incarnation
                                || (rec.incarnation == ours.incarnation && rec.left && !ours.left)
                        }
                        None => true,
                    };
                    if stale_claim && !st.leaving {
                        refute = true;
                    }
                    continue;
                }
                let id = rec.id;
                let left = rec.left;
                let old_addrs = st
                    .table
                    .get(&id)
                    .map(|r| r.addrs.clone())
                    .unwrap_or_default();
                let new_addrs: Vec<SocketAddr> = rec
                    .addrs
                    .iter()
                    .filter(|a| !old_addrs.contains(a))
                    .copied()
                    .collect();
                let copy = rec.clone();
                if st.table.merge(rec) {
                    changed.push(copy);
                    // A member that just learned its public address: dial it at once, so our
                    // packets cross its NAT while its own dial to us is still opening ours.
                    let linked_direct = st
                        .links
                        .get(&id)
                        .is_some_and(|l| !is_relay_addr(&l.conn.remote_address()));
                    if !left
                        && !linked_direct
                        && Some(id) != from
                        && !new_addrs.is_empty()
                        && !st.leaving
                    {
                        punch.push((id, new_addrs));
                    }
                    if left {
                        if st.live.left(id, now).is_some() {
                            info!("{} left", st.table.display_name(&id));
                        }
                    } else if st.live.state(&id) == Some(PeerState::Left)
                        || st.live.state(&id).is_none()
                    {
                        st.live.forget(&id);
                        st.live.learned(id, now);
                        // Of a pair that learns of each other at once, the lower id dials
                        // first and the higher waits one redial period: one handshake per
                        // pair in a join storm, not two.
                        if me > id {
                            st.last_dial.insert(id, now);
                        } else {
                            st.last_dial.remove(&id);
                        }
                    }
                }
            }
            if !changed.is_empty() {
                st.members_dirty = true;
            }
        }
        let stretch = dial_stretch(&self.state());
        let punch_defer = PUNCH_DEFER * stretch;
        for (id, addrs) in punch {
            let node = self.clone();
            let defer = me > id;
            self.spawn_task(async move {
                // The higher id punches a moment later: where the lower id's dial gets
                // through at once (no NAT in the way) one handshake is made, not two; behind
                // NATs the later packets still open our side for the other's retries.
                if defer {
                    tokio::time::sleep(punch_defer).await;
                }
                // Marked as being dialed, so the redial tick does not dial it a second time
                // (in a join storm that made 2.7 handshakes a pair); dialed as the tick would,
                // with a relay if it does not land. A dial already in flight does not stop this
                // one: it may be going to addresses that do not answer, and these are new.
                {
                    let mut st = node.state();
                    let direct = st.links.get(&id).is_some_and(|l| {
                        l.conn.close_reason().is_none() && !is_relay_addr(&l.conn.remote_address())
                    });
                    if direct {
                        return;
                    }
                    st.dialing.insert(id);
                    st.last_dial.insert(id, Instant::now());
                }
                node.dial_member(id, addrs, false, stretch);
            });
        }
        if refute {
            self.update_self(|_| {});
        }
        if !defer_save && (!changed.is_empty() || refute) {
            // Persist at once: a peer that crashes right after joining must still know its
            // network when it restarts. While dials are in flight the save waits for the next
            // tick (250 ms): a database commit per rumor was a third of a join storm's CPU.
            self.persist_members();
        }
        if !changed.is_empty() {
            self.pass_on_updates(changed, from);
        }
    }

    /// Sends our own record's change to every linked peer.
    fn broadcast_updates(&self, recs: Vec<MemberRecord>, except: Option<PeerId>) {
        let st = self.state();
        for (id, link) in &st.links {
            if Some(*id) != except {
                let _ = link.control.send(Msg::MemberUpdates(recs.clone()));
            }
        }
    }

    /// Passes others' records that were news to us on to a few random linked peers (a rumor):
    /// sending each to every link made every peer send every record to every other, N³
    /// messages for a mesh of N forming, most of its CPU at 64. Whoever a rumor misses gets
    /// the record in the next handshake's table or from anti-entropy.
    fn pass_on_updates(&self, recs: Vec<MemberRecord>, from: Option<PeerId>) {
        use rand::seq::IteratorRandom;
        let st = self.state();
        let targets = st
            .links
            .iter()
            .filter(|(id, _)| Some(**id) != from)
            .choose_multiple(&mut rand::rng(), RUMOR_FANOUT);
        for (_, link) in targets {
            let _ = link.control.send(Msg::MemberUpdates(recs.clone()));
        }
    }

    /// A few linked peers, chosen at random, for one anti-entropy round.
    fn gossip_targets(&self) -> Vec<PeerId> {
        use rand::seq::IteratorRandom;
        let st = self.state();
        st.links
            .keys()
            .copied()
            .choose_multiple(&mut rand::rng(), ANTI_ENTROPY_FANOUT)
    }

    /// Anti-entropy: our table's digest (32 bytes) to `targets`.
    fn send_members_digest(&self, targets: &[PeerId]) {
        let st = self.state();
        let digest = st.table.digest();
        for peer in targets {
            if let Some(link) = st.links.get(peer) {
                let _ = link.control.send(Msg::MembersDigest(digest));
            }
        }
    }

    /// A peer's digest differs from ours: send it our whole table (not too often), and it
    /// merges what it lacked; what we lack comes back when our digest reaches it.
    fn answer_members_digest(&self, peer: PeerId, theirs: [u8; 32]) {
        let mut st = self.state();
        if st.table.digest() == theirs {
            return;
        }
        let now = Instant::now();
        if st
            .table_sent
            .get(&peer)
            .is_some_and(|t| now.duration_since(*t) < TABLE_RESEND_EVERY)
        {
            return;
        }
        st.table_sent.insert(peer, now);
        let table = st.table.to_vec();
        if let Some(link) = st.links.get(&peer) {
            let _ = link.control.send(Msg::Members(table));
        }
    }

    /// Every frame after the handshake on a control stream lands here.
    pub(crate) fn handle_control(&self, peer: PeerId, msg: Msg) -> Result<()> {
        match msg {
            Msg::Members(recs) | Msg::MemberUpdates(recs) => {
                self.merge_members(recs, Some(peer));
                Ok(())
            }
            Msg::MembersDigest(d) => {
                self.answer_members_digest(peer, d);
                Ok(())
            }
            Msg::Leave { incarnation } => {
                let mut st = self.state();
                if let Some(rec) = st.table.get(&peer).cloned()
                    && rec.incarnation <= incarnation
                {
                    st.table.merge(MemberRecord {
                        left: true,
                        incarnation,
                        ..rec
                    });
                    st.members_dirty = true;
                }
                if st.live.left(peer, Instant::now()).is_some() {
                    info!("{} left", st.table.display_name(&peer));
                }
                Ok(())
            }
            Msg::Introduce { peer: target } => {
                self.handle_introduce(peer, target);
                Ok(())
            }
            Msg::ProbeAsk { target } => {
                self.answer_probe(peer, target);
                Ok(())
            }
            Msg::ProbeSeen { target, silent_ms } => {
                self.on_probe_seen(target, silent_ms);
                Ok(())
            }
            Msg::PunchNow { peer: target, addr } => {
                self.handle_punch(peer, target, addr);
                Ok(())
            }
            Msg::Catalog(_)
            | Msg::CatalogItems(_)
            | Msg::CatalogRecon(_)
            | Msg::CatalogDigest(_)
            | Msg::Holdings { .. }
            | Msg::HoldingsDelta { .. }
            | Msg::HoldingsDigest { .. }
            | Msg::HoldingsAsk
            | Msg::Playlists(_)
            | Msg::PlaylistDigest(_) => self.handle_storage_control(peer, msg),
            other => bail!("unexpected {} on the control stream", other.name()),
        }
    }

    pub(crate) fn spawn_maintenance(&self) {
        let node = self.clone();
        self.spawn_task(async move {
            let mut tick = tokio::time::interval(TICK);
            let mut last_gossip = Instant::now();
            let mut last_repair = Instant::now();
            loop {
                tokio::select! {
                    _ = node.inner.shutdown.cancelled() => break,
                    _ = tick.tick() => {}
                }
                let now = Instant::now();
                node.check_liveness(now);
                node.redial(now);
                if now.duration_since(last_gossip) >= ANTI_ENTROPY_EVERY {
                    last_gossip = now;
                    let targets = node.gossip_targets();
                    node.send_members_digest(&targets);
                    node.storage_gossip(&targets);
                }
                if now.duration_since(last_repair) >= REPAIR_EVERY {
                    last_repair = now;
                    node.check_disk_room();
                    node.repair_tick();
                }
                node.forget_departed();
                node.persist_members();
            }
        });
    }

    fn forget_departed(&self) {
        let gone = {
            let mut st = self.state();
            let gone = st.table.forget_departed(now_ms(), FORGET_LEFT_AFTER_MS);
            for id in &gone {
                st.live.forget(id);
                st.last_dial.remove(id);
            }
            gone
        };
        if !gone.is_empty() {
            let keys: Vec<Vec<u8>> = gone.iter().map(|id| id.0.to_vec()).collect();
            self.inner
                .db_writes
                .submit(Ok(crate::store::db::Write::ForgetMembers(keys)));
        }
    }

    fn check_liveness(&self, now: Instant) {
        let me = self.id();
        let mut st = self.state();
        // A check that comes far later than its tick means this process could not run (CPU
        // starvation in a join storm, a suspended laptop): that time is nobody's silence.
        if let Some(last) = st.last_liveness_check.replace(now) {
            let gap = now.saturating_duration_since(last);
            if gap > TICK * 2 {
                st.live.pause(gap - TICK, now);
            }
            Node::note_acks_heard(&mut st, me, last);
        }
        // Many handshakes in flight (a join storm) slow our peers' heartbeats as they slow
        // ours: allow up to 5 times the usual silence until they are done.
        let stretch = dial_stretch(&st);
        for (id, state) in st.live.tick_stretched(now, stretch) {
            match state {
                PeerState::Dead => warn!("{} is dead", st.table.display_name(&id)),
                other => info!("{} is {}", st.table.display_name(&id), other.as_str()),
            }
            if state == PeerState::Dead
                && let Some(link) = st.links.remove(&id)
            {
                link.conn.close(0u32.into(), b"heartbeats stopped");
            }
        }
        drop(st);
        self.ask_about_silent_peers(now, stretch);
    }

    /// Members we should be connected to but are not: dial them, less often once dead; after
    /// a failed direct dial go through a relay. Members reached through a relay get a direct
    /// attempt now and then, so the pair switches to direct when the NATs allow.
    fn redial(&self, now: Instant) {
        let targets: Vec<(PeerId, Vec<SocketAddr>, bool)> = {
            let mut st = self.state();
            if st.leaving {
                return;
            }
            let me = self.id();
            let mut out = Vec::new();
            let candidates: Vec<(PeerId, Vec<SocketAddr>)> = st
                .table
                .records()
                .filter(|r| r.id != me && !r.left && !r.addrs.is_empty())
                .map(|r| (r.id, r.addrs.clone()))
                .collect();
            for (id, addrs) in candidates {
                let upgrade = match st.links.get(&id) {
                    Some(l) if is_relay_addr(&l.conn.remote_address()) => true,
                    Some(_) => {
                        st.dead_dials.remove(&id);
                        continue;
                    }
                    None => false,
                };
                if st.dialing.contains(&id) {
                    continue;
                }
                // A pair behind a symmetric NAT stays relayed: try direct ever less often.
                let tries = st.upgrade_tries.get(&id).copied().unwrap_or(0);
                let wait = if upgrade {
                    (REDIAL_DEAD_AFTER * 2u32.pow(tries.min(4))).min(MAX_UPGRADE_WAIT)
                } else if st.live.state(&id) == Some(PeerState::Dead) {
                    if redials_the_dead(me, id, st.links.keys()) {
                        let n = st.dead_dials.get(&id).copied().unwrap_or(0);
                        (REDIAL_DEAD_AFTER * 2u32.pow(n.min(6))).min(MAX_DEAD_REDIAL_WAIT)
                    } else {
                        MAX_DEAD_REDIAL_WAIT
                    }
                } else {
                    REDIAL_ALIVE_AFTER
                };
                if st
                    .last_dial
                    .get(&id)
                    .is_some_and(|t| now.duration_since(*t) < wait)
                {
                    continue;
                }
                st.last_dial.insert(id, now);
                st.dialing.insert(id);
                if upgrade {
                    *st.upgrade_tries.entry(id).or_default() += 1;
                } else {
                    st.upgrade_tries.remove(&id);
                }
                if st.live.state(&id) == Some(PeerState::Dead) {
                    *st.dead_dials.entry(id).or_default() += 1;
                }
                out.push((id, addrs, upgrade));
            }
            out
        };
        // As for heartbeats: while many dials are in flight, a slow answer is load, not a NAT.
        let stretch = dial_stretch(&self.state());
        for (id, addrs, upgrade) in targets {
            self.dial_member(id, addrs, upgrade, stretch);
        }
    }

    /// Dials `id` (already marked in `dialing`, cleared when the dial ends); where it may be
    /// behind a NAT, asks for an introduction and starts a relayed link if the direct dial
    /// has not landed soon.
    fn dial_member(&self, id: PeerId, addrs: Vec<SocketAddr>, upgrade: bool, stretch: u32) {
        // A peer on this machine is reached directly or not at all: no relay helps.
        let local_only = addrs.iter().all(|a| a.ip().is_loopback());
        // Hole punching only for a dial that did not land soon: asked at once, the
        // introduction made the other side dial back while our handshake was still in
        // flight, two and more handshakes a pair (3.9 per pair as 64 peers formed).
        if !local_only {
            let node = self.clone();
            let wait = INTRODUCE_AFTER * stretch;
            self.spawn_task(async move {
                tokio::time::sleep(wait).await;
                if !node.is_connected_directly(&id) {
                    node.request_introduction(id);
                }
            });
        }
        if !upgrade && !local_only {
            // A direct dial that has not answered within a second is unlikely to: start
            // through a relay meanwhile. If the direct one lands later, it replaces it.
            let node = self.clone();
            let relay_after = RELAY_AFTER * stretch;
            self.spawn_task(async move {
                tokio::time::sleep(relay_after).await;
                if !node.is_connected(&id)
                    && let Err(e) = node.dial_via_relay(id).await
                {
                    tracing::debug!("relayed dial to {} failed: {e:#}", id.short());
                }
            });
        }
        let node = self.clone();
        self.spawn_task(async move {
            if let Err(e) = node.dial(addrs, Some(id)).await {
                tracing::debug!("direct dial to {} failed: {e:#}", id.short());
            }
            node.state().dialing.remove(&id);
        });
    }

    fn persist_members(&self) {
        let rows: Vec<(Vec<u8>, MemberRecord)> = {
            let mut st = self.state();
            if !st.members_dirty {
                return;
            }
            st.members_dirty = false;
            st.table
                .records()
                .map(|r| (r.id.0.to_vec(), r.clone()))
                .collect()
        };
        tracing::debug!("saving {} member records", rows.len());
        self.inner
            .db_writes
            .submit(crate::store::db::Write::members(&rows));
    }

    /// Stop at once without telling anyone, as a crash would: no leave, no hand-off. Others
    /// see the heartbeats stop.
    pub fn abort(&self) {
        self.state().leaving = true;
        self.inner.endpoint.close(0u32.into(), b"");
        self.inner.shutdown.cancel();
    }

    /// Leave gracefully: hand off what only we hold, tell everyone, close every link with the
    /// leave code, stop. Returns how many tracks were handed off (None: already stopped).
    pub async fn leave(&self) -> Option<usize> {
        if self.is_stopped() || self.state().leaving {
            return None;
        }
        let handed = self.hand_off().await;
        let inc = {
            let mut st = self.state();
            st.leaving = true;
            let me = self.id();
            let rec = st.table.get(&me).cloned();
            rec.map(|r| {
                // Stamped with the time of leaving: what "forgotten after a day" counts from.
                let inc = now_ms().max(r.incarnation + 1);
                st.table.merge(MemberRecord {
                    left: true,
                    incarnation: inc,
                    ..r
                });
                st.members_dirty = true;
                inc
            })
            .unwrap_or(0)
        };
        let links: Vec<quinn::Connection> = {
            let st = self.state();
            for link in st.links.values() {
                let _ = link.control.send(Msg::Leave { incarnation: inc });
            }
            st.links.values().map(|l| l.conn.clone()).collect()
        };
        // Give the control writers a moment to put the leave frame on the wire; the close below
        // says the same thing, so a lost frame is harmless.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for c in links {
            c.close(close_code::LEAVE.into(), b"peer left");
        }
        self.persist_members();
        let _ =
            tokio::time::timeout(Duration::from_millis(500), self.inner.endpoint.wait_idle()).await;
        self.inner
            .endpoint
            .close(close_code::LEAVE.into(), b"peer left");
        let _ = self.inner.left.set(handed);
        self.inner.shutdown.cancel();
        self.inner.tasks.close();
        if tokio::time::timeout(Duration::from_secs(3), self.inner.tasks.wait())
            .await
            .is_err()
        {
            warn!(
                "{} tasks still running after leaving",
                self.inner.tasks.len()
            );
        }
        self.saved().await;
        Some(handed)
    }
}

/// How much longer than usual things may take while dials to live members are in flight (a
/// join storm): 1 with none, up to 5. Silences allowed, and the waits before a relay, an
/// introduction or a second dial of a new pair, all grow with it.
fn dial_stretch(st: &super::State) -> u32 {
    let joining = st
        .dialing
        .iter()
        .filter(|id| st.live.state(id) != Some(PeerState::Dead))
        .count();
    1 + (joining.min(8) / 2) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_of_the_live_peers_redial_a_dead_one_quickly() {
        for seed in 0u8..20 {
            let dead = PeerId([seed; 32]);
            let live: Vec<PeerId> = (0..10u8).map(|i| PeerId([100 + i + seed; 32])).collect();
            let quick = live
                .iter()
                .filter(|me| {
                    let others: Vec<PeerId> = live
                        .iter()
                        .filter(|p| p != me)
                        .copied()
                        .chain([dead])
                        .collect();
                    redials_the_dead(**me, dead, others.iter())
                })
                .count();
            assert_eq!(quick, DEAD_REDIALERS);
        }
    }
}
