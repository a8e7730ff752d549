//! What the log proves about itself: tree roots, inclusion and consistency proofs, tiles, and
//! the leaf input of a record checked against the tree. Every size is at most the durable head.

use super::error::{LogError, LogResult};
use super::keys::{checkpoint_key, CHECKPOINT_PREFIX};
use super::tree::TreeReader;
use super::{codec, reader, Log};
use crate::merkle::tile::{level_width, Tiled, TILE_WIDTH};
use crate::merkle::{self, Hash};

/// A record's leaf input (the canonical envelope bytes) and its leaf hash, checked three ways:
/// the record's checksum, the leaf hash recomputed from the bytes, and the tree's leaf.
#[derive(Debug, Clone)]
pub struct Leaf {
    /// The leaf input: the record's body, exactly as hashed.
    pub input: Vec<u8>,
    /// SHA-256(0x00 ‖ input).
    pub hash: Hash,
}

impl Log {
    pub(super) fn tree_reader(&self) -> TreeReader<'_> {
        TreeReader::new(&self.inner.tree, &self.inner.shared.tree)
    }

    fn check_size(&self, size: u64) -> LogResult<()> {
        let head = self.head();
        if size > head {
            return Err(LogError::OutOfRange {
                requested: size,
                head,
            });
        }
        Ok(())
    }

    /// The root of the tree of the first `size` records (size <= head).
    pub fn tree_root(&self, size: u64) -> LogResult<Hash> {
        self.check_size(size)?;
        self.tree_reader().root(size)
    }

    /// The inclusion proof of the record at `position` in the tree of `size` records.
    pub fn inclusion_proof(&self, position: u64, size: u64) -> LogResult<Vec<Hash>> {
        self.check_in_tree(position, size)?;
        merkle::inclusion_proof(&Tiled(&self.tree_reader()), position - 1, size)
    }

    /// `position` is in the tree of `size` records, and that tree is durable.
    fn check_in_tree(&self, position: u64, size: u64) -> LogResult<()> {
        self.check_size(size)?;
        if position == 0 || position > size {
            return Err(LogError::OutOfRange {
                requested: position,
                head: size,
            });
        }
        Ok(())
    }

    /// The consistency proof from the tree of `first` records to that of `second`.
    pub fn consistency_proof(&self, first: u64, second: u64) -> LogResult<Vec<Hash>> {
        self.check_size(second)?;
        if first > second {
            return Err(LogError::Invalid {
                field: "first_size".into(),
                reason: format!("{first} is past the second size {second}"),
            });
        }
        merkle::consistency_proof(&Tiled(&self.tree_reader()), first, second)
    }

    /// The first `width` hashes (1..=256) of tile `level`/`index`, as C2SP tlog-tiles serves
    /// them; they must exist in the tree of the durable head.
    pub fn tile(&self, level: u32, index: u64, width: u64) -> LogResult<Vec<u8>> {
        let available = level_width(self.head(), level);
        let end = index.saturating_mul(TILE_WIDTH).saturating_add(width);
        if width == 0 || width > TILE_WIDTH || end > available {
            return Err(LogError::OutOfRange {
                requested: end,
                head: available,
            });
        }
        use crate::merkle::tile::TileSource;
        let hashes = self.tree_reader().entries(level, index * TILE_WIDTH, width)?;
        Ok(hashes.iter().flat_map(|hash| hash.iter().copied()).collect())
    }

    /// The leaf input of the record at `position`, checked against its checksum, its stored
    /// leaf hash and the tree's leaf; any disagreement is `DataLoss` at the position.
    pub fn leaf(&self, position: u64) -> LogResult<Leaf> {
        self.leaf_in(&self.tree_reader(), position)
    }

    /// The record at `position` and its inclusion proof in the tree of `size` records, through
    /// one tree reader (the leaf's tile is read once for both).
    pub fn inclusion(&self, position: u64, size: u64) -> LogResult<(Leaf, Vec<Hash>)> {
        self.check_in_tree(position, size)?;
        let reader = self.tree_reader();
        let leaf = self.leaf_in(&reader, position)?;
        let proof = merkle::inclusion_proof(&Tiled(&reader), position - 1, size)?;
        Ok((leaf, proof))
    }

    fn leaf_in(&self, tree: &TreeReader<'_>, position: u64) -> LogResult<Leaf> {
        self.check_size(position)?;
        if position == 0 {
            return Err(LogError::OutOfRange {
                requested: 0,
                head: self.head(),
            });
        }
        let bytes = reader::RecordCursor::new(&self.inner.tree).raw(position)?;
        let checked = codec::check_record(position, &bytes)?;
        let hash = codec::leaf_hash(checked.body);
        let damaged = |reason: &str| LogError::DataLoss {
            position,
            reason: reason.into(),
        };
        if hash != checked.leaf_hash {
            return Err(damaged("the record's leaf hash does not match its bytes"));
        }
        use crate::merkle::tile::TileSource;
        let in_tree = tree.entries(0, position - 1, 1)?;
        if in_tree[0] != hash {
            return Err(damaged("the record's hash disagrees with the Merkle tree"));
        }
        Ok(Leaf {
            input: checked.body.to_vec(),
            hash,
        })
    }
}

fn checkpoint_entry(entry: sled::Result<(sled::IVec, sled::IVec)>) -> LogResult<(u64, String)> {
    let (key, value) = entry?;
    let size = super::keys::decode_u64(&key[1..], 0, "checkpoint key")?;
    let note = String::from_utf8(value.to_vec()).map_err(|_| LogError::DataLoss {
        position: size,
        reason: "a stored checkpoint is not UTF-8".into(),
    })?;
    Ok((size, note))
}

impl Log {
    /// Keeps a signed checkpoint of the tree of `size` records (not an event: it is made
    /// again from the log if lost).
    pub fn store_checkpoint(&self, size: u64, note: &str) -> LogResult<()> {
        self.inner.tree.insert(checkpoint_key(size), note.as_bytes())?;
        Ok(())
    }

    /// The last stored checkpoint.
    pub fn latest_checkpoint(&self) -> LogResult<Option<(u64, String)>> {
        self.inner
            .tree
            .scan_prefix([CHECKPOINT_PREFIX])
            .next_back()
            .map(checkpoint_entry)
            .transpose()
    }

    /// The smallest stored checkpoint of a tree of at least `size` records.
    pub fn checkpoint_at_or_after(&self, size: u64) -> LogResult<Option<(u64, String)>> {
        self.inner
            .tree
            .range(checkpoint_key(size)..=checkpoint_key(u64::MAX))
            .next()
            .map(checkpoint_entry)
            .transpose()
    }
}
