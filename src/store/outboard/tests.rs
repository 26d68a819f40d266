use super::*;
use bao_tree::io::outboard::PostOrderMemOutboard;
use proptest::prelude::*;

fn data_of(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[3] ^ seed)
        .collect()
}

/// The encoding of a range as a holder sends it, built from the blob and its outboard.
fn encode(data: &[u8], outboard: &[u8], offset: u64) -> Vec<u8> {
    let size = data.len() as u64;
    let mut out = Vec::new();
    for item in ResponseIter::new(tree(size), from_piece(offset)) {
        match item {
            BaoChunk::Parent { node, .. } => {
                out.extend_from_slice(&outboard_pair(size, outboard, node).unwrap())
            }
            BaoChunk::Leaf {
                start_chunk, size, ..
            } => {
                let at = (start_chunk.0 * CHUNK_BYTES) as usize;
                out.extend_from_slice(&data[at..at + size]);
            }
        }
    }
    out
}

/// Bytes a range encoding from `offset` to the end takes, by what a verifier expects.
fn encoded_len(size: u64, offset: u64) -> u64 {
    ResponseIter::new(tree(size), from_piece(piece_start(offset)))
        .take_while(|_| !(piece_start(offset) >= size && size > 0))
        .map(|item| match item {
            BaoChunk::Parent { .. } => PAIR_BYTES as u64,
            BaoChunk::Leaf { size, .. } => size as u64,
        })
        .sum()
}

/// Feeds an encoding to a verifier; the pieces it let through, or where it stopped.
fn verify(root: [u8; 32], size: u64, offset: u64, encoded: &[u8]) -> Result<Vec<u8>, usize> {
    let mut v = RangeVerifier::new(root, size, offset);
    let mut at = 0;
    let mut passed = Vec::new();
    while let Some(e) = v.expect() {
        let len = match e {
            Expect::Parent { .. } => PAIR_BYTES,
            Expect::Piece { len, .. } => len,
        };
        let Some(bytes) = encoded.get(at..at + len) else {
            return Err(at);
        };
        v.check(bytes).map_err(|_| at)?;
        if let Expect::Piece { .. } = e {
            passed.extend_from_slice(bytes);
        }
        at += len;
    }
    if at != encoded.len() {
        return Err(at);
    }
    Ok(passed)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Fed in any pieces, the builder makes bao-tree's own post-order outboard, and its root
    /// is the blob's BLAKE3 (the address the catalog already has).
    #[test]
    fn builds_what_bao_tree_builds(len in 0usize..300_000, cuts in prop::collection::vec(1usize..40_000, 0..12), seed: u8) {
        let data = data_of(len, seed);
        let mut b = OutboardBuilder::new(len as u64);
        let mut rest = &data[..];
        for c in cuts {
            let n = c.min(rest.len());
            b.update(&rest[..n]);
            rest = &rest[n..];
        }
        b.update(rest);
        let (root, outboard) = b.finish().unwrap();
        let theirs = PostOrderMemOutboard::create(&data, GROUP);
        prop_assert_eq!(root, *blake3::hash(&data).as_bytes());
        prop_assert_eq!(root, *theirs.root.as_bytes());
        prop_assert_eq!(outboard.len() as u64, outboard_len(len as u64));
        prop_assert_eq!(outboard, theirs.data);
    }

    /// From any piece start, the encoding is bao-tree's, it passes, and exactly the bytes from
    /// that piece on come through; its length is what `encoded_len` says.
    #[test]
    fn a_range_from_any_piece_verifies(len in 1usize..300_000, at in 0usize..300_000, seed: u8) {
        let data = data_of(len, seed);
        let (root, outboard) = outboard_of(&data);
        let offset = piece_start((at % len) as u64);
        let encoded = encode(&data, &outboard, offset);
        let theirs = PostOrderMemOutboard::create(&data, GROUP);
        let mut reference = Vec::new();
        bao_tree::io::sync::encode_ranges(&data[..], &theirs, &from_piece(offset), &mut reference).unwrap();
        prop_assert_eq!(&encoded, &reference);
        prop_assert_eq!(encoded.len() as u64, encoded_len(len as u64, offset));
        prop_assert_eq!(verify(root, len as u64, offset, &encoded), Ok(data[offset as usize..].to_vec()));
    }

    /// A flipped bit anywhere in an encoding is caught at the latest in the piece it is in
    /// or the hash pair above it: nothing after it passes, and no wrong byte ever does.
    #[test]
    fn a_flipped_bit_never_passes(len in 1usize..200_000, at in 0usize..200_000, flip in 0usize..400_000, bit in 0u8..8, seed: u8) {
        let data = data_of(len, seed);
        let (root, outboard) = outboard_of(&data);
        let offset = piece_start((at % len) as u64);
        let mut encoded = encode(&data, &outboard, offset);
        let flip = flip % encoded.len();
        encoded[flip] ^= 1 << bit;
        let stopped = verify(root, len as u64, offset, &encoded);
        prop_assert!(matches!(stopped, Err(at) if at <= flip), "{:?} (flip at {})", stopped.map(|v| v.len()), flip);
    }
}

#[test]
fn a_truncated_or_overlong_blob_builds_no_outboard() {
    let data = data_of(50_000, 1);
    let mut short = OutboardBuilder::new(50_001);
    short.update(&data);
    assert!(short.finish().is_none());
    let mut long = OutboardBuilder::new(49_999);
    long.update(&data);
    assert!(long.finish().is_none());
    let (root, outboard) = OutboardBuilder::new(0).finish().unwrap();
    assert_eq!(root, *blake3::hash(&[]).as_bytes());
    assert!(outboard.is_empty());
}

#[test]
fn a_small_blob_has_no_outboard_and_one_piece() {
    let data = data_of(PIECE_BYTES as usize, 3);
    let (root, outboard) = outboard_of(&data);
    assert!(outboard.is_empty());
    assert_eq!(encoded_len(data.len() as u64, 0), data.len() as u64);
    assert_eq!(
        verify(root, data.len() as u64, 0, &data),
        Ok(data.clone()),
        "a one-piece blob is checked by its address alone"
    );
    let mut wrong = data.clone();
    wrong[0] ^= 1;
    assert_eq!(verify(root, data.len() as u64, 0, &wrong), Err(0));
}

#[test]
fn from_the_end_nothing_is_sent() {
    for len in [PIECE_BYTES as usize, 2 * PIECE_BYTES as usize, 40_000] {
        let data = data_of(len, 2);
        let (root, _) = outboard_of(&data);
        let end = len as u64;
        let at_end = RangeVerifier::new(root, end, end);
        if end.is_multiple_of(PIECE_BYTES) {
            assert_eq!(at_end.expect(), None, "{len}");
            assert_eq!(encoded_len(end, end), 0);
        } else {
            // Inside the last piece: that piece is sent.
            assert_eq!(
                verify(
                    root,
                    end,
                    end,
                    &encode(&data, &outboard_of(&data).1, piece_start(end))
                ),
                Ok(data[piece_start(end) as usize..].to_vec())
            );
        }
        assert_eq!(
            RangeVerifier::new(root, end, end + PIECE_BYTES).expect(),
            None
        );
    }
}

#[test]
fn a_wrong_root_stops_at_the_first_pair() {
    let data = data_of(100_000, 5);
    let (_, outboard) = outboard_of(&data);
    let encoded = encode(&data, &outboard, 0);
    assert_eq!(verify([7; 32], data.len() as u64, 0, &encoded), Err(0));
}
