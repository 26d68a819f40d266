//! The Node: one running peer. Owns the QUIC endpoint, the membership table and liveness, the
//! database and (later) the blob store; shell, control socket and tests all drive it through
//! its methods.

mod blob_range;
mod catalog_news;
mod catalog_sync;
#[cfg(test)]
pub(crate) use catalog_sync::batches as catalog_batches;
mod conn;
mod control_queue;
mod disk_full;
mod fetch;
mod gossip;
mod heartbeat;
mod held_news;
mod import;
pub use import::{ImportOutcome, ImportReport, PreparedFile, prepare_file};
pub use listen::{QueueEvent, QueueRequest};
pub use push::{PushMode, Pushed};
mod introduce;
mod listen;
mod lock;
mod memory;
mod peer_slots;
mod playlist;
mod probes;
pub mod push;
pub mod queue;
mod range_reader;
mod relay;
mod repair_task;
mod scrub;
mod source_choice;
pub mod status;
pub mod storage;
pub mod stream;
mod transfer;

use crate::id::PeerId;
use crate::mesh::liveness::{Liveness, LivenessConfig};
use crate::mesh::membership::{MemberRecord, Table};
use crate::net::auth::{NetworkKey, new_network_key};
use crate::net::identity::Identity;
use crate::net::relay_socket::{RelayHub, RelaySocket};
use crate::net::ticket::Ticket;
use crate::net::tls;
use crate::store::blobs::{BlobStore, Hash};
use crate::store::catalog::{Catalog, CatalogEntry};
use crate::store::db::Db;
use crate::store::hlc::Hlc;
use crate::store::old_catalog::StoredRow;
use anyhow::{Context, Result, bail};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

/// Application close codes, so the other side can tell why a connection ended.
pub mod close_code {
    pub const AUTH: u32 = 1;
    pub const PROTOCOL: u32 = 2;
    pub const DUPLICATE: u32 = 3;
    pub const LEAVE: u32 = 4;
    pub const NAME_TAKEN: u32 = 5;
    pub const VERSION: u32 = 6;
}

/// How long after start commands wait for the first catalog sync before answering anyway.
pub const SYNC_WAIT: Duration = Duration::from_secs(10);

/// Concurrent uploads a peer serves; more wait in line, and a freed slot goes to the peer
/// holding fewest. One peer holds at most 6 (its repair pulls 4 at once), so two are left
/// for the others: a member holding its share open with reads that never come cannot make
/// everyone else's ask wait past the 3 s a requester gives a holder to answer.
const MAX_UPLOADS: usize = 8;
const MAX_UPLOADS_PER_PEER: usize = 6;
/// Concurrent stores a peer writes (each holds a blocking thread for its disk writes); more
/// are refused. One peer gets at most 64: an import keeps 32 files (and their covers) in
/// flight, and the next hop of a chain sees them all as coming from the first.
const MAX_STORES: usize = 160;
const MAX_STORES_PER_PEER: usize = 64;

#[derive(Clone, Debug)]
pub enum JoinTarget {
    Ticket(Ticket),
    Addr { addr: SocketAddr, key: NetworkKey },
}

#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub name: String,
    pub port: u16,
    pub bind_ip: IpAddr,
    pub data_dir: PathBuf,
    pub join: Option<JoinTarget>,
    pub replicas: usize,
    pub capacity: u64,
    /// The capacity was asked for (`--capacity`): larger than the disk, it is refused; the
    /// default is cut to the disk's size instead.
    pub capacity_given: bool,
    pub repair_after: Duration,
    pub liveness: LivenessConfig,
    /// Bytes per second this peer serves to others at most (None: no limit).
    pub upload_limit: Option<u64>,
    /// Pause between scrub passes, and before the first when nothing is held yet.
    pub scrub_pause: Duration,
}

impl NodeConfig {
    pub fn new(name: &str, data_dir: PathBuf) -> Self {
        NodeConfig {
            name: name.to_string(),
            port: 0,
            bind_ip: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            data_dir,
            join: None,
            replicas: 3,
            capacity: 10 << 30,
            capacity_given: false,
            repair_after: Duration::from_secs(600),
            liveness: LivenessConfig::default(),
            upload_limit: None,
            scrub_pause: Duration::from_secs(10),
        }
    }
}

pub(crate) struct PeerLink {
    pub conn: quinn::Connection,
    pub dialer: PeerId,
    pub incarnation: u64,
    pub control: control_queue::ControlTx,
    /// ACK frames the peer had sent on this link at the last liveness check.
    pub acks_heard: u64,
    /// When we last sent the peer all our playlists because its digest differed.
    pub playlists_answered: Option<std::time::Instant>,
}

pub(crate) struct State {
    pub table: Table,
    pub live: Liveness,
    pub links: HashMap<PeerId, PeerLink>,
    pub dialing: HashSet<PeerId>,
    pub last_dial: HashMap<PeerId, Instant>,
    pub observed: BTreeSet<SocketAddr>,
    pub members_dirty: bool,
    pub leaving: bool,
    pub catalog: Catalog,
    pub playlists: crate::store::playlists::Playlists,
    pub hlc: Hlc,
    /// What other peers told us they hold.
    pub holdings: crate::mesh::holdings::HoldingsIndex,
    /// The change number of each peer's holdings we have applied.
    pub holdings_seen: HashMap<PeerId, u64>,
    /// Holdings sets arriving in pages, per peer, until their last page.
    pub holdings_pages: HashMap<PeerId, crate::mesh::holdings_pages::Assembly>,
    /// When we last asked each peer for its whole holdings.
    pub holdings_asked: HashMap<PeerId, Instant>,
    /// Our own holdings' change number: starts from the clock so a restart's numbers
    /// follow the last run's, and goes up by one per change.
    pub held_seq: u64,
    /// What we hold (mirrors the blob store).
    pub held: BTreeSet<Hash>,
    /// Fingerprint of `held`, kept up to date: what our holdings digest is made of.
    pub held_fp: crate::store::recon::RangeFp,
    /// Changes to `held` not yet told to peers (see `held_news`).
    pub held_pending: held_news::PendingHeld,
    /// Blobs repair must not drop yet: just stored for an entry (name, version) whose catalog
    /// write may not have arrived; protected until it has, or until the instant.
    pub protected: HashMap<Hash, (Instant, String, crate::store::catalog::Version)>,
    /// Transfers we are running from each peer, for load-aware source choice.
    pub in_flight: HashMap<PeerId, usize>,
    /// Transfers each peer last said it serves (heartbeats, load questions).
    pub peer_load: HashMap<PeerId, u32>,
    /// Blobs a repair fetch is pulling right now.
    pub repairing: HashSet<Hash>,
    /// Blobs repair must look at again on its next tick (besides what the catalog and the
    /// holdings report as changed).
    pub repair_dirty: HashSet<Hash>,
    /// Who could hold copies at the last full repair pass: a change means a full pass.
    pub repair_view: Option<(Vec<crate::mesh::placement::Candidate>, BTreeSet<PeerId>)>,
    pub repair_full_at: Option<Instant>,
    /// Blobs waiting for a repair worker, and how many workers run.
    pub repair_queue: std::collections::VecDeque<Hash>,
    pub repair_workers: usize,
    /// Tunnels we relay, per requesting peer.
    pub relayed_for: HashMap<PeerId, usize>,
    /// Direct attempts made since a peer became relayed, for backing off.
    pub upgrade_tries: HashMap<PeerId, u32>,
    /// Dials made to each dead member since it was last connected, for backing off.
    pub dead_dials: HashMap<PeerId, u32>,
    /// When we last sent each peer our whole membership table after its digest differed.
    pub table_sent: HashMap<PeerId, Instant>,
    /// When the failure detector last looked, to notice time we were starved.
    pub last_liveness_check: Option<Instant>,
    /// When we last acted on an introduction to each peer.
    pub punched: HashMap<PeerId, Instant>,
    /// The peer we are catching up from, and when it last sent us something: while we are
    /// not synced, rounds with others wait.
    pub pulling: Option<(PeerId, Instant)>,
    /// Per peer, the task answering its catalog rounds in order.
    pub recon_workers: HashMap<PeerId, tokio::sync::mpsc::Sender<catalog_sync::CatalogRanges>>,
    /// Blobs we deleted because our copy was corrupt: a fetch for one is told so, not just
    /// "not held", so the asker can say how many copies were bad.
    pub corrupt_dropped: HashSet<Hash>,
    /// Blobs a reader said were corrupt, when we last checked one for it.
    pub corrupt_claims: HashMap<Hash, std::time::Instant>,
    /// A copy is being checked on a reader's word; claims meanwhile are ignored.
    pub claim_check_running: bool,
    /// A blob write failed for lack of space: no new copies until there is room.
    pub disk_full: bool,
    /// Blobs whose pull failed: (failures in a row, no retry before).
    pub pull_backoff: HashMap<Hash, (u32, Instant)>,
}

pub(crate) struct Inner {
    pub cfg: NodeConfig,
    pub identity: Identity,
    pub endpoint: quinn::Endpoint,
    pub key: NetworkKey,
    /// For reads at start and the network key; every later write goes through `db_writes`.
    pub db: Arc<Db>,
    pub state: Mutex<State>,
    pub shutdown: CancellationToken,
    pub created_network: bool,
    pub local_addr: SocketAddr,
    pub blobs: BlobStore,
    /// Caps concurrent uploads; requests beyond it wait their turn.
    pub upload_slots: peer_slots::PeerSlots,
    /// Caps concurrent incoming stores; stores beyond it are refused.
    pub store_slots: peer_slots::PeerSlots,
    /// Transfers we serve right now (what our heartbeats report).
    pub serving: std::sync::atomic::AtomicUsize,
    pub now_playing: Mutex<Option<listen::Session>>,
    pub queue: Mutex<queue::Queue>,
    pub volume: std::sync::atomic::AtomicU8,
    pub relay_hub: Arc<RelayHub>,
    /// This process's start, in ms: what tells a restarted peer from a duplicate connection.
    pub boot: u64,
    pub upload_pacer: Option<Pacer>,
    /// True once our catalog has caught up with a peer's (or there is nobody to sync with).
    pub synced: tokio::sync::watch::Sender<bool>,
    /// Commands wait for the first sync until then, and answer with what they have after.
    pub sync_deadline: Instant,
    /// Set by a graceful leave: how many tracks it handed off.
    pub left: std::sync::OnceLock<usize>,
    /// Every task the node spawns: `leave` waits for them, so nothing outlives the node
    /// (its state, its database and its data-dir lock go with the last one).
    pub tasks: tokio_util::task::TaskTracker,
    /// Declared before the lock: its drop commits what is queued while the data dir is ours.
    pub db_writes: crate::store::db_writer::DbWriter,
    /// Wakes the teller of holdings changes.
    pub held_news: tokio::sync::Notify,
    _lock: lock::DataDirLock,
}

#[derive(Clone)]
pub struct Node {
    pub(crate) inner: Arc<Inner>,
}

/// Socket buffers for a join storm: with the OS default (208 KiB) a peer dropped tens of
/// thousands of datagrams while dozens of handshakes and table exchanges arrived at once, and
/// heartbeats went unheard. The forced form works with CAP_NET_ADMIN; otherwise the kernel
/// caps the request at `net.core.rmem_max`/`wmem_max`.
const SOCKET_BUFFER_BYTES: libc::c_int = 4 << 20;

fn grow_socket_buffers(socket: &std::net::UdpSocket) {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    let set = |force: libc::c_int, plain: libc::c_int| {
        let v = SOCKET_BUFFER_BYTES;
        let len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        let ptr = (&v as *const libc::c_int).cast();
        // SAFETY: setsockopt reads `len` bytes from `ptr`, a live c_int; `fd` is our socket.
        let forced = unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, force, ptr, len) } == 0;
        if !forced {
            // SAFETY: as above.
            unsafe { libc::setsockopt(fd, libc::SOL_SOCKET, plain, ptr, len) };
        }
    };
    set(libc::SO_RCVBUFFORCE, libc::SO_RCVBUF);
    set(libc::SO_SNDBUFFORCE, libc::SO_SNDBUF);
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Node {
    pub async fn start(mut cfg: NodeConfig) -> Result<Node> {
        crate::store::fsutil::prepare_data_dir(&cfg.data_dir)?;
        if let Some(disk) = crate::store::disk::filesystem_size(&cfg.data_dir)
            && cfg.capacity > disk
        {
            if cfg.capacity_given {
                bail!(
                    "--capacity {} is more than the disk holding {} ({}); offer at most that",
                    crate::cli::commands::human_bytes(cfg.capacity),
                    cfg.data_dir.display(),
                    crate::cli::commands::human_bytes(disk)
                );
            }
            cfg.capacity = disk;
        }
        let lock = lock::DataDirLock::acquire(&cfg.data_dir)?;
        let identity = Identity::load_or_create(&cfg.data_dir)?;
        let db = Arc::new(Db::open(&cfg.data_dir.join("meff.redb"))?);

        let stored_key: Option<NetworkKey> = db.get_meta("network_key")?;
        let join_key = cfg.join.as_ref().map(|j| match j {
            JoinTarget::Ticket(t) => t.key,
            JoinTarget::Addr { key, .. } => *key,
        });
        let (key, created_network) = match (stored_key, join_key) {
            (Some(s), Some(j)) if s != j => bail!(
                "data dir {} belongs to another network; use a fresh --data-dir to join this one",
                cfg.data_dir.display()
            ),
            (Some(s), _) => (s, false),
            (None, Some(j)) => (j, false),
            (None, None) => (new_network_key(), true),
        };
        if created_network {
            db.put_meta("network_key", &key)?;
        }

        let socket = std::net::UdpSocket::bind((cfg.bind_ip, cfg.port)).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AddrInUse {
                anyhow::anyhow!("UDP port {} is already in use", cfg.port)
            } else {
                anyhow::anyhow!("cannot bind UDP port {}: {e}", cfg.port)
            }
        })?;
        let local_addr = socket.local_addr()?;
        grow_socket_buffers(&socket);
        let runtime = Arc::new(quinn::TokioRuntime);
        let udp = quinn::Runtime::wrap_udp_socket(runtime.as_ref(), socket)
            .context("cannot use the UDP socket")?;
        let relay_socket = Arc::new(RelaySocket::new(udp));
        let relay_hub = relay_socket.hub.clone();
        let endpoint = quinn::Endpoint::new_with_abstract_socket(
            quinn::EndpointConfig::default(),
            Some(tls::server_config(&identity)?),
            relay_socket,
            runtime,
        )
        .context("cannot start QUIC endpoint")?;

        let mut table = Table::default();
        let stored: Vec<MemberRecord> = db.load_members()?;
        let last_incarnation = stored
            .iter()
            .find(|r| r.id == identity.id)
            .map(|r| r.incarnation)
            .unwrap_or(0);
        table.merge_all(stored.into_iter().filter(|r| r.id != identity.id));
        let me = MemberRecord {
            id: identity.id,
            name: cfg.name.clone(),
            addrs: local_addrs(local_addr),
            incarnation: now_ms().max(last_incarnation + 1),
            left: false,
            capacity: cfg.capacity,
            disk_full: false,
        };
        if let Some(holder) = table.name_holder(&me.name, &me.id) {
            tracing::warn!("name {} is also used by {}", me.name, holder.id.short());
        }
        table.merge(me);
        let blobs = BlobStore::open(&cfg.data_dir.join("blobs"))?;
        let held = blobs.list();
        let mut catalog = Catalog::new();
        let mut migrated = Vec::new();
        catalog.batch(|catalog| {
            db.each_catalog_row(crate::store::old_catalog::decode_stored, |row| match row {
                StoredRow::Current(e) => {
                    catalog.apply(e);
                }
                StoredRow::Old(e) => {
                    migrated.push(e.clone());
                    catalog.apply(e);
                }
            })
        })?;
        let mut playlists = crate::store::playlists::Playlists::new();
        for item in db.load_playlists::<crate::store::playlists::PlaylistItem>()? {
            playlists.apply(item);
        }
        let hlc = catalog
            .max_version()
            .max(playlists.all().map(|i| i.moved).max())
            .map(|v| Hlc::resume(v.ts))
            .unwrap_or_default();
        let mut live = Liveness::new(cfg.liveness);
        let t0 = Instant::now();
        for r in table.records() {
            if r.id != identity.id && !r.left {
                live.learned(r.id, t0);
            }
        }

        let cfg_upload_limit = cfg.upload_limit.filter(|r| *r > 0);
        // Nobody else in the table (a network just created): there is nothing to sync with.
        let cfg_join_none = cfg.join.is_none();
        let alone = table.records().all(|r| r.id == identity.id || r.left);
        let db_writes = crate::store::db_writer::DbWriter::start(db.clone())
            .context("cannot start the database writer")?;
        let upgraded = !migrated.is_empty();
        if upgraded {
            let rows: Vec<(String, CatalogEntry)> = migrated
                .iter()
                .map(|e| (crate::store::catalog::db_key(&e.key()), e.clone()))
                .collect();
            let old_keys: Vec<String> = migrated.iter().map(|e| e.name.clone()).collect();
            db_writes.submit(crate::store::db::Write::catalog(&rows, &old_keys));
            tracing::info!(
                "catalog: {} entries converted to this release's layout",
                rows.len()
            );
        }
        let node = Node {
            inner: Arc::new(Inner {
                cfg,
                identity,
                endpoint,
                key,
                db,
                state: Mutex::new(State {
                    table,
                    live,
                    links: HashMap::new(),
                    dialing: HashSet::new(),
                    last_dial: HashMap::new(),
                    observed: BTreeSet::new(),
                    members_dirty: true,
                    leaving: false,
                    catalog,
                    playlists,
                    hlc,
                    holdings: Default::default(),
                    holdings_seen: HashMap::new(),
                    holdings_pages: HashMap::new(),
                    holdings_asked: HashMap::new(),
                    held_seq: now_ms() << 20,
                    held_fp: crate::mesh::holdings::fingerprint(&held),
                    held,
                    held_pending: Default::default(),
                    protected: HashMap::new(),
                    in_flight: HashMap::new(),
                    peer_load: HashMap::new(),
                    repairing: HashSet::new(),
                    repair_dirty: HashSet::new(),
                    repair_view: None,
                    repair_full_at: None,
                    repair_queue: Default::default(),
                    repair_workers: 0,
                    relayed_for: HashMap::new(),
                    punched: HashMap::new(),
                    upgrade_tries: HashMap::new(),
                    dead_dials: HashMap::new(),
                    table_sent: HashMap::new(),
                    last_liveness_check: None,
                    pulling: None,
                    recon_workers: HashMap::new(),
                    corrupt_dropped: HashSet::new(),
                    corrupt_claims: HashMap::new(),
                    claim_check_running: false,
                    disk_full: false,
                    pull_backoff: HashMap::new(),
                }),
                shutdown: CancellationToken::new(),
                created_network,
                local_addr,
                blobs,
                upload_slots: peer_slots::PeerSlots::new(MAX_UPLOADS, MAX_UPLOADS_PER_PEER),
                store_slots: peer_slots::PeerSlots::new(MAX_STORES, MAX_STORES_PER_PEER),
                serving: std::sync::atomic::AtomicUsize::new(0),
                now_playing: Mutex::new(None),
                queue: Mutex::new(queue::Queue::default()),
                volume: std::sync::atomic::AtomicU8::new(100),
                relay_hub,
                boot: now_ms(),
                upload_pacer: cfg_upload_limit.map(Pacer::new),
                synced: tokio::sync::watch::Sender::new(alone && cfg_join_none),
                sync_deadline: Instant::now() + SYNC_WAIT,
                left: std::sync::OnceLock::new(),
                tasks: tokio_util::task::TaskTracker::new(),
                db_writes,
                held_news: tokio::sync::Notify::new(),
                _lock: lock,
            }),
        };
        node.spawn_accept_loop();
        node.spawn_maintenance();
        node.spawn_scrub();
        node.spawn_memory_trim();
        node.spawn_held_news();
        if upgraded {
            node.spawn_outboard_migration();
        }

        if let Some(join) = node.inner.cfg.join.clone() {
            let (addrs, expected) = match join {
                JoinTarget::Ticket(t) => (t.addrs, Some(t.id)),
                JoinTarget::Addr { addr, .. } => (vec![addr], None),
            };
            let dialed = node.dial(addrs, expected).await;
            // A restarted peer also redials the members it remembers: when that link won the
            // race, the join's own dial is refused as a duplicate and the join succeeded —
            // once the winning link finishes its handshake here too.
            let linked = || match expected {
                Some(id) => node.link_conn(&id).is_ok(),
                None => !node.state().links.is_empty(),
            };
            let mut joined = dialed.is_ok() || linked();
            if !joined
                && dialed
                    .as_ref()
                    .is_err_and(|e| format!("{e:#}").contains("duplicate"))
            {
                for _ in 0..50 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    if linked() {
                        joined = true;
                        break;
                    }
                }
            }
            if let (false, Err(e)) = (joined, dialed) {
                node.inner.endpoint.close(0u32.into(), b"join failed");
                node.inner.shutdown.cancel();
                return Err(e.context("cannot join the network"));
            }
            // Only a key that got us in belongs to this data dir.
            node.inner.db.put_meta("network_key", &node.inner.key)?;
        }
        Ok(node)
    }

    /// Returns once every database write queued so far is committed (an fsync): a command
    /// that changed something answers only then.
    pub async fn saved(&self) {
        let node = self.clone();
        let _ = tokio::task::spawn_blocking(move || node.inner.db_writes.flush()).await;
    }

    pub fn id(&self) -> PeerId {
        self.inner.identity.id
    }

    pub fn name(&self) -> &str {
        &self.inner.cfg.name
    }

    pub fn data_dir(&self) -> &std::path::Path {
        &self.inner.cfg.data_dir
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.inner.local_addr
    }

    pub fn network_key_hex(&self) -> String {
        data_encoding::HEXLOWER.encode(&self.inner.key)
    }

    pub fn created_network(&self) -> bool {
        self.inner.created_network
    }

    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // A poisoned lock means a panic elsewhere already broke an invariant; keep serving
        // with the data as it is rather than crash every other task too.
        self.inner.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn ticket(&self) -> Ticket {
        let st = self.state();
        let addrs = st
            .table
            .get(&self.id())
            .map(|r| r.addrs.clone())
            .unwrap_or_default();
        Ticket {
            key: self.inner.key,
            id: self.id(),
            addrs,
        }
    }

    /// Resolves when the node has stopped (after `leave`, or a fatal error).
    pub async fn stopped(&self) {
        self.inner.shutdown.cancelled().await
    }

    pub fn is_stopped(&self) -> bool {
        self.inner.shutdown.is_cancelled()
    }

    /// Spawns a background task of this node: it ends when the node stops, whatever it is
    /// waiting for, and `leave` waits for it.
    pub(crate) fn spawn_task(&self, fut: impl std::future::Future<Output = ()> + Send + 'static) {
        let stop = self.inner.shutdown.clone();
        self.inner.tasks.spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => {}
                _ = fut => {}
            }
        });
    }

    /// Background tasks of this node still running (0 once `leave` has returned).
    pub fn running_tasks(&self) -> usize {
        self.inner.tasks.len()
    }

    /// After a graceful leave: how many tracks it handed off.
    pub fn left_handing_off(&self) -> Option<usize> {
        self.inner.left.get().copied()
    }

    /// Whether the first catalog sync with the network is done.
    pub fn is_synced(&self) -> bool {
        *self.inner.synced.borrow()
    }

    /// Waits for the first catalog sync, but not past `SYNC_WAIT` after start; returns
    /// whether it is done.
    pub async fn wait_synced(&self) -> bool {
        let deadline = tokio::time::Instant::from_std(self.inner.sync_deadline);
        self.wait_synced_until(deadline).await
    }

    /// Waits for the first catalog sync with no deadline but the node's stop.
    pub async fn wait_synced_forever(&self) -> bool {
        let far = tokio::time::Instant::now() + Duration::from_secs(86400 * 365);
        self.wait_synced_until(far).await
    }

    async fn wait_synced_until(&self, deadline: tokio::time::Instant) -> bool {
        let mut rx = self.inner.synced.subscribe();
        tokio::select! {
            r = rx.wait_for(|s| *s) => r.is_ok(),
            _ = tokio::time::sleep_until(deadline) => self.is_synced(),
            _ = self.stopped() => self.is_synced(),
        }
    }

    pub(crate) fn mark_synced(&self) {
        self.inner
            .synced
            .send_if_modified(|s| !std::mem::replace(s, true));
    }
}

/// The addresses to advertise: every non-loopback interface address with our port.
fn local_addrs(bound: SocketAddr) -> Vec<SocketAddr> {
    let port = bound.port();
    if !bound.ip().is_unspecified() {
        return vec![bound];
    }
    let mut out: Vec<SocketAddr> = if_addrs::get_if_addrs()
        .unwrap_or_default()
        .into_iter()
        .filter(|i| !i.is_loopback() && i.ip().is_ipv4())
        .map(|i| SocketAddr::new(i.ip(), port))
        .collect();
    // Loopback only when there is nothing else: advertised to other machines it would make
    // them dial themselves.
    if out.is_empty() {
        out.push(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    out
}

/// Paces all uploads of this peer together to a byte rate (`--upload-limit`): each caller
/// reserves its bytes' slot in one shared schedule and waits for it.
pub struct Pacer {
    rate: u64,
    next: Mutex<Instant>,
}

impl Pacer {
    fn new(rate: u64) -> Self {
        Pacer {
            rate,
            next: Mutex::new(Instant::now()),
        }
    }

    pub async fn take(&self, bytes: usize) {
        let start = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(bytes as f64 / self.rate as f64);
            start
        };
        tokio::time::sleep_until(tokio::time::Instant::from_std(start)).await;
    }
}
