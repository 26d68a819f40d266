//! A blob's outboard: the BLAKE3 hash tree of its 16 KiB pieces, kept beside the blob (not in
//! the replicated catalog), as iroh-blobs does with bao. The tree's root is the blob's BLAKE3,
//! its address, so a reader that knows only the address checks any piece it is sent, from
//! any offset, with the few parent hashes on the way down sent before it.
//!
//! bao-tree gives the tree's shape, the order a range is sent in and where a node's hashes
//! lie in a post-order outboard; the two small state machines here (building an outboard as
//! bytes stream in, checking a range as it streams in) are push-based so the async shell
//! can feed them from a QUIC stream or a file without a thread per transfer.

use bao_tree::blake3::hazmat::{
    ChainingValue, HasherExt, Mode, merge_subtrees_non_root, merge_subtrees_root,
};
use bao_tree::iter::{BaoChunk, PostOrderChunkIter, ResponseIter};
use bao_tree::{BaoTree, BlockSize, ChunkNum, ChunkRanges};

/// The verification piece: a stream can hand its first bytes on after this many.
pub const PIECE_BYTES: u64 = 16 * 1024;
const GROUP: BlockSize = BlockSize::from_chunk_log(4);
const CHUNK_BYTES: u64 = 1024;
/// Bytes of one parent node in an outboard or a range encoding: its two children's hashes.
pub const PAIR_BYTES: usize = 64;

pub fn tree(size: u64) -> BaoTree {
    BaoTree::new(size, GROUP)
}

/// The start of the piece holding byte `offset`: where a fetch from `offset` begins.
pub fn piece_start(offset: u64) -> u64 {
    offset / PIECE_BYTES * PIECE_BYTES
}

/// Bytes of the outboard of a blob of `size` bytes (none for a blob of one piece).
pub fn outboard_len(size: u64) -> u64 {
    tree(size).outboard_size()
}

fn from_piece(offset: u64) -> ChunkRanges {
    ChunkRanges::from(ChunkNum(offset / CHUNK_BYTES)..)
}

fn hash_piece(start_chunk: ChunkNum, data: &[u8], is_root: bool) -> [u8; 32] {
    if is_root {
        *bao_tree::blake3::hash(data).as_bytes()
    } else {
        let mut h = bao_tree::blake3::Hasher::new();
        h.set_input_offset(start_chunk.0 * CHUNK_BYTES);
        h.update(data);
        h.finalize_non_root()
    }
}

fn parent(left: &ChainingValue, right: &ChainingValue, is_root: bool) -> [u8; 32] {
    if is_root {
        *merge_subtrees_root(left, right, Mode::Hash).as_bytes()
    } else {
        merge_subtrees_non_root(left, right, Mode::Hash)
    }
}

fn split_pair(pair: &[u8; PAIR_BYTES]) -> ([u8; 32], [u8; 32]) {
    let mut l = [0u8; 32];
    let mut r = [0u8; 32];
    l.copy_from_slice(&pair[..32]);
    r.copy_from_slice(&pair[32..]);
    (l, r)
}

/// Builds a post-order outboard from a blob's bytes fed in any pieces, in the one pass that
/// stores them; `finish` gives the root, which must be the blob's address.
pub struct OutboardBuilder {
    items: PostOrderChunkIter,
    /// The leaf waiting for its bytes: (start chunk, size, is root).
    leaf: Option<(ChunkNum, usize, bool)>,
    buf: Vec<u8>,
    stack: Vec<[u8; 32]>,
    outboard: Vec<u8>,
    fed: u64,
    size: u64,
}

impl OutboardBuilder {
    pub fn new(size: u64) -> Self {
        let mut b = OutboardBuilder {
            items: tree(size).post_order_chunks_iter(),
            leaf: None,
            buf: Vec::with_capacity(PIECE_BYTES.min(size) as usize),
            stack: Vec::new(),
            outboard: Vec::with_capacity(outboard_len(size).min(64 << 20) as usize),
            fed: 0,
            size,
        };
        b.advance();
        b
    }

    /// Runs the parents that follow a finished leaf, up to the next leaf.
    fn advance(&mut self) {
        self.leaf = None;
        for item in self.items.by_ref() {
            match item {
                BaoChunk::Parent { is_root, .. } => {
                    let (Some(r), Some(l)) = (self.stack.pop(), self.stack.pop()) else {
                        return;
                    };
                    self.outboard.extend_from_slice(&l);
                    self.outboard.extend_from_slice(&r);
                    self.stack.push(parent(&l, &r, is_root));
                }
                BaoChunk::Leaf {
                    start_chunk,
                    size,
                    is_root,
                    ..
                } => {
                    self.leaf = Some((start_chunk, size, is_root));
                    return;
                }
            }
        }
    }

    pub fn update(&mut self, mut data: &[u8]) {
        self.fed += data.len() as u64;
        while let Some((start, size, is_root)) = self.leaf {
            if data.is_empty() && size > 0 {
                return;
            }
            // A whole piece in hand is hashed where it lies: only pieces cut across calls
            // are gathered in `buf`.
            if self.buf.is_empty() && data.len() >= size {
                let (piece, rest) = data.split_at(size);
                self.stack.push(hash_piece(start, piece, is_root));
                data = rest;
                self.advance();
                continue;
            }
            let take = (size - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..take]);
            data = &data[take..];
            if self.buf.len() < size {
                return;
            }
            self.stack.push(hash_piece(start, &self.buf, is_root));
            self.buf.clear();
            self.advance();
        }
    }

    /// The root and the outboard; None when the bytes fed were not `size` long.
    pub fn finish(mut self) -> Option<([u8; 32], Vec<u8>)> {
        if self.fed == 0 && self.size == 0 {
            self.update(&[]);
        }
        if self.fed != self.size || self.leaf.is_some() || self.stack.len() != 1 {
            return None;
        }
        let root = self.stack.pop()?;
        Some((root, self.outboard))
    }
}

/// The hashes of a parent node, read from a post-order outboard.
pub fn outboard_pair(
    size: u64,
    outboard: &[u8],
    node: bao_tree::TreeNode,
) -> Option<[u8; PAIR_BYTES]> {
    let at = tree(size).post_order_offset(node)?.value() as usize * PAIR_BYTES;
    outboard.get(at..at + PAIR_BYTES)?.try_into().ok()
}

/// What comes next in a range encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The two child hashes of `node`, [`PAIR_BYTES`] bytes.
    Parent { node: bao_tree::TreeNode },
    /// `len` bytes of the blob from `offset`.
    Piece { offset: u64, len: usize },
}

/// Checks a blob's range encoding (from a piece start to the end) against the blob's address
/// as it streams in: each piece is good before anyone sees it. A holder runs one too, over
/// what it reads from its disk: it checks the hash pairs it sends, and every piece when it
/// reads its own copy.
pub struct RangeVerifier {
    items: ResponseIter,
    next: Option<BaoChunk>,
    stack: Vec<[u8; 32]>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch(pub String);

impl std::fmt::Display for Mismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl RangeVerifier {
    /// `offset` is rounded down to its piece; from the end of a blob (or past it) nothing is
    /// expected (bao-tree would answer such a range with a proof of the last chunk, which an
    /// outboard of 16 KiB pieces does not hold).
    pub fn new(root: [u8; 32], size: u64, offset: u64) -> Self {
        let start = piece_start(offset);
        let mut items = ResponseIter::new(tree(size), from_piece(start));
        let next = if start >= size && size > 0 {
            None
        } else {
            items.next()
        };
        RangeVerifier {
            items,
            next,
            stack: vec![root],
        }
    }

    pub fn expect(&self) -> Option<Expect> {
        match self.next? {
            BaoChunk::Parent { node, .. } => Some(Expect::Parent { node }),
            BaoChunk::Leaf {
                start_chunk, size, ..
            } => Some(Expect::Piece {
                offset: start_chunk.0 * CHUNK_BYTES,
                len: size,
            }),
        }
    }

    /// Checks what [`expect`](Self::expect) asked for; after a mismatch nothing more passes.
    pub fn check(&mut self, bytes: &[u8]) -> Result<(), Mismatch> {
        let Some(item) = self.next else {
            return Err(Mismatch("more than the range".into()));
        };
        let Some(expected) = self.stack.pop() else {
            self.next = None;
            return Err(Mismatch("nothing left to check against".into()));
        };
        match item {
            BaoChunk::Parent {
                node,
                is_root,
                left,
                right,
                ..
            } => {
                let Ok(pair) = <&[u8; PAIR_BYTES]>::try_from(bytes) else {
                    return self.fail(format!("hash pair of {} bytes", bytes.len()));
                };
                let (l, r) = split_pair(pair);
                if parent(&l, &r, is_root) != expected {
                    return self.fail(format!(
                        "the hashes above byte {} do not match",
                        node.chunk_range().start.to_bytes()
                    ));
                }
                if right {
                    self.stack.push(r);
                }
                if left {
                    self.stack.push(l);
                }
            }
            BaoChunk::Leaf {
                start_chunk,
                size,
                is_root,
                ..
            } => {
                let at = start_chunk.0 * CHUNK_BYTES;
                if bytes.len() != size || hash_piece(start_chunk, bytes, is_root) != expected {
                    return self.fail(format!("the piece at byte {at} does not match its hash"));
                }
            }
        }
        self.next = self.items.next();
        Ok(())
    }

    /// Moves past the piece [`expect`](Self::expect) asked for without hashing it: for a
    /// holder whose reader checks every piece itself. Hash pairs are still checked.
    pub fn pass_piece(&mut self) -> Result<(), Mismatch> {
        match self.next {
            Some(BaoChunk::Leaf { .. }) if self.stack.pop().is_some() => {
                self.next = self.items.next();
                Ok(())
            }
            _ => self.fail("no piece was expected here".into()),
        }
    }

    fn fail(&mut self, why: String) -> Result<(), Mismatch> {
        self.next = None;
        self.stack.clear();
        Err(Mismatch(why))
    }
}

/// Builds the outboard of a whole blob held in memory (tests, small blobs).
pub fn outboard_of(data: &[u8]) -> ([u8; 32], Vec<u8>) {
    let mut b = OutboardBuilder::new(data.len() as u64);
    b.update(data);
    // A builder fed exactly `size` bytes always finishes.
    b.finish().unwrap_or_default()
}

#[cfg(test)]
mod tests;
