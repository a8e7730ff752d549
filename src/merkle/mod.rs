//! The Merkle tree of RFC 9162 section 2.1 over the log: hashes, roots, inclusion and
//! consistency proofs, and their verification. Pure (no IO): the log supplies the hashes of
//! perfect subtrees from its tiles through [`Nodes`]; the offline verifiers use only the
//! `verify_*` functions and [`NaiveNodes`].
//!
//! - leaf hash = SHA-256(0x00 ‖ leaf input), node hash = SHA-256(0x01 ‖ left ‖ right);
//! - the tree of n > 1 leaves splits at k, the largest power of two smaller than n;
//! - the empty tree's root is SHA-256 of nothing.
//!
//! Leaf i is the record at position i + 1 (its leaf input is the record's body, see
//! docs/storage.md). Proofs list hashes from the leaf's side up to the root, as RFC 9162 does.

pub mod tile;

use sha2::{Digest, Sha256};

/// A SHA-256 hash.
pub type Hash = [u8; 32];

/// The most hashes a proof for a tree of up to 2^64 leaves can hold (inclusion: 64,
/// consistency: 65); a longer proof is refused before any hashing.
pub const MAX_PROOF_HASHES: usize = 65;

/// RFC 9162 leaf hash.
pub fn leaf_hash(input: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([0u8]);
    hasher.update(input);
    hasher.finalize().into()
}

/// RFC 9162 interior node hash.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([1u8]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree: SHA-256 of nothing.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The largest power of two smaller than `n` (n >= 2): where RFC 9162 splits a tree of n leaves.
fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// The root of `leaves` (hashes of a perfect subtree, so their count is a power of two; also
/// used for any count by the naive reference).
pub fn root_of_hashes(leaves: &[Hash]) -> Hash {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split(n as u64) as usize;
            node_hash(&root_of_hashes(&leaves[..k]), &root_of_hashes(&leaves[k..]))
        }
    }
}

/// The root of a tree grown one leaf at a time, holding only the roots of its perfect subtrees
/// (at most 64 hashes, whatever the size): for a verifier that streams leaves it cannot keep.
#[derive(Debug, Clone, Default)]
pub struct CompactRange {
    /// (leaves, root) of each perfect subtree, largest first; sizes strictly decreasing.
    subtrees: Vec<(u64, Hash)>,
}

impl CompactRange {
    /// Appends the leaf whose hash is `leaf`.
    pub fn push(&mut self, leaf: Hash) {
        let mut top = (1u64, leaf);
        while let Some(&(size, hash)) = self.subtrees.last() {
            if size != top.0 {
                break;
            }
            self.subtrees.pop();
            top = (size * 2, node_hash(&hash, &top.1));
        }
        self.subtrees.push(top);
    }

    /// Leaves pushed.
    pub fn size(&self) -> u64 {
        self.subtrees.iter().map(|(size, _)| size).sum()
    }

    /// RFC 9162's root of the leaves pushed: the perfect subtrees folded from the smallest.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(&(_, mut root)) = subtrees.next() else {
            return empty_root();
        };
        for (_, hash) in subtrees {
            root = node_hash(hash, &root);
        }
        root
    }
}

/// Where the hashes of perfect subtrees come from.
pub trait Nodes {
    /// Why a hash could not be read.
    type Error;
    /// The root of the perfect subtree of 2^height leaves starting at leaf `index << height`.
    fn perfect(&self, height: u32, index: u64) -> Result<Hash, Self::Error>;
}

/// Every leaf hash in memory: the reference the tiled tree is tested against, and what the
/// offline verifiers use when they hold all leaves (an export).
pub struct NaiveNodes<'a>(pub &'a [Hash]);

impl Nodes for NaiveNodes<'_> {
    type Error = std::convert::Infallible;
    fn perfect(&self, height: u32, index: u64) -> Result<Hash, Self::Error> {
        let start = (index << height) as usize;
        Ok(root_of_hashes(&self.0[start..start + (1usize << height)]))
    }
}

/// The root of leaves [lo, hi) as RFC 9162 defines it (lo < hi, lo aligned as the split leaves it).
pub fn range_root<N: Nodes>(nodes: &N, lo: u64, hi: u64) -> Result<Hash, N::Error> {
    debug_assert!(lo < hi);
    let n = hi - lo;
    if n.is_power_of_two() && lo % n == 0 {
        return nodes.perfect(n.trailing_zeros(), lo >> n.trailing_zeros());
    }
    let k = split(n);
    Ok(node_hash(
        &range_root(nodes, lo, lo + k)?,
        &range_root(nodes, lo + k, hi)?,
    ))
}

/// The root of the tree of the first `size` leaves.
pub fn root<N: Nodes>(nodes: &N, size: u64) -> Result<Hash, N::Error> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_root(nodes, 0, size)
}

/// The inclusion proof of leaf `index` in the tree of `size` leaves (index < size): RFC 9162
/// PATH(index, D[size]).
pub fn inclusion_proof<N: Nodes>(nodes: &N, index: u64, size: u64) -> Result<Vec<Hash>, N::Error> {
    assert!(index < size, "leaf {index} is not in a tree of {size}");
    let mut proof = Vec::new();
    let (mut lo, mut hi) = (0, size);
    // Walk down, collecting siblings; the proof lists them from the leaf up.
    while hi - lo > 1 {
        let k = split(hi - lo);
        if index < lo + k {
            proof.push(range_root(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_root(nodes, lo, lo + k)?);
            lo += k;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// The consistency proof between the trees of `first` and `second` leaves: RFC 9162
/// PROOF(first, D[second]); empty when first is 0 or equals second.
pub fn consistency_proof<N: Nodes>(nodes: &N, first: u64, second: u64) -> Result<Vec<Hash>, N::Error> {
    assert!(first <= second, "consistency from {first} to {second}");
    let mut proof = Vec::new();
    if first == 0 || first == second {
        return Ok(proof);
    }
    let (mut lo, mut hi, mut whole) = (0, second, true);
    while first != hi {
        let k = split(hi - lo);
        if first <= lo + k {
            proof.push(range_root(nodes, lo + k, hi)?);
            hi = lo + k;
        } else {
            proof.push(range_root(nodes, lo, lo + k)?);
            lo += k;
            whole = false;
        }
    }
    if !whole {
        proof.push(range_root(nodes, lo, hi)?);
    }
    proof.reverse();
    Ok(proof)
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The sizes or index cannot hold (index past the tree, first past second).
    #[error("{0}")]
    BadInput(String),
    /// The proof has the wrong number of hashes for these sizes.
    #[error("the proof has the wrong length for these sizes")]
    WrongLength,
    /// The hashes do not lead to the expected root.
    #[error("the proof does not lead to the {0} root")]
    RootMismatch(&'static str),
}

/// Verifies that `leaf` (a leaf hash) is leaf `index` of the tree of `size` leaves with `root`
/// (RFC 9162 section 2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    size: u64,
    leaf: &Hash,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    if index >= size {
        return Err(ProofError::BadInput(format!(
            "leaf index {index} is not in a tree of {size}"
        )));
    }
    if proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength);
    }
    let (mut f, mut s) = (index, size - 1);
    let mut r = *leaf;
    for p in proof {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            r = node_hash(p, &r);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            r = node_hash(&r, p);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if r != *root {
        return Err(ProofError::RootMismatch("tree's"));
    }
    Ok(())
}

/// Verifies that the tree of `first` leaves with `first_root` is a prefix of the tree of
/// `second` leaves with `second_root` (RFC 9162 section 2.1.4.2).
pub fn verify_consistency(
    first: u64,
    second: u64,
    proof: &[Hash],
    first_root: &Hash,
    second_root: &Hash,
) -> Result<(), ProofError> {
    if first > second {
        return Err(ProofError::BadInput(format!(
            "the first size {first} is past the second {second}"
        )));
    }
    if first == second || first == 0 {
        if !proof.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if first == second && first_root != second_root {
            return Err(ProofError::RootMismatch("second"));
        }
        return Ok(());
    }
    if proof.is_empty() || proof.len() > MAX_PROOF_HASHES {
        return Err(ProofError::WrongLength);
    }
    let mut path: Vec<Hash> = Vec::with_capacity(proof.len() + 1);
    if first.is_power_of_two() {
        path.push(*first_root);
    }
    path.extend_from_slice(proof);
    let (mut f, mut s) = (first - 1, second - 1);
    while f & 1 == 1 {
        f >>= 1;
        s >>= 1;
    }
    let (mut fr, mut sr) = (path[0], path[0]);
    for c in &path[1..] {
        if s == 0 {
            return Err(ProofError::WrongLength);
        }
        if f & 1 == 1 || f == s {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f >>= 1;
        s >>= 1;
    }
    if s != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *first_root {
        return Err(ProofError::RootMismatch("first"));
    }
    if sr != *second_root {
        return Err(ProofError::RootMismatch("second"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
