//! The log's Merkle tree (RFC 9162, see `crate::merkle`) stored as C2SP tiles of height 8 in the
//! log's sled tree: key `T` + tile level (u8) + tile index (u64 BE), value the tile's 256
//! hashes (8 KiB). Only full tiles are stored; they never change.
//!
//! The writer's stager appends each commit's leaf hashes to [`TreeState`] and puts the tiles
//! they complete into the commit's sled batch, so tiles and records land together. In memory
//! the state keeps every hash of tile levels 1 and up (one per 256 leaves: 0.125 bytes per
//! event) and the level-0 hashes not yet in a stored tile. Journal replay after a crash writes
//! records only; [`load`] rebuilds the missing tiles from the records' leaf hashes on open.

use std::sync::Mutex;

use super::error::{LogError, LogResult};
use super::keys::{self, tile_key, TILE_PREFIX};
use crate::merkle::tile::{TileSource, Tiled, TILE_BYTES, TILE_WIDTH};
use crate::merkle::{self, root_of_hashes, Hash};

/// A full tile completed by an append: (level, index, 8 KiB of hashes).
pub(crate) type NewTile = (u32, u64, Vec<u8>);

/// The tree as far as the writer has applied it.
#[derive(Debug, Default)]
pub(crate) struct TreeState {
    size: u64,
    /// First leaf held in `level0` (a multiple of 256: the leaves below are in stored tiles).
    level0_start: u64,
    level0: Vec<Hash>,
    /// `upper[L - 1]`: every hash of tile level L.
    upper: Vec<Vec<Hash>>,
}

fn concat(hashes: &[Hash]) -> Vec<u8> {
    hashes.iter().flat_map(|hash| hash.iter().copied()).collect()
}

impl TreeState {
    /// Leaves in the tree.
    pub(crate) fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf; the full tiles it completes are pushed to `tiles`.
    pub(crate) fn push(&mut self, leaf: Hash, tiles: &mut Vec<NewTile>) {
        self.level0.push(leaf);
        self.size += 1;
        if self.size % TILE_WIDTH != 0 {
            return;
        }
        let full = &self.level0[(self.size - TILE_WIDTH - self.level0_start) as usize..];
        tiles.push((0, self.size / TILE_WIDTH - 1, concat(full)));
        let root = root_of_hashes(full);
        self.push_upper(1, root, tiles);
    }

    fn push_upper(&mut self, level: u32, hash: Hash, tiles: &mut Vec<NewTile>) {
        if self.upper.len() < level as usize {
            self.upper.push(Vec::new());
        }
        let entries = &mut self.upper[level as usize - 1];
        entries.push(hash);
        let width = entries.len() as u64;
        if width % TILE_WIDTH != 0 {
            return;
        }
        let full = &entries[(width - TILE_WIDTH) as usize..];
        tiles.push((level, width / TILE_WIDTH - 1, concat(full)));
        let root = root_of_hashes(full);
        self.push_upper(level + 1, root, tiles);
    }

    /// Forgets the level-0 hashes of full tiles now stored in sled (all leaves up to `stored_head`,
    /// the writer's visible head: tiles are written with a commit's records).
    pub(crate) fn trim(&mut self, stored_head: u64) {
        let stored = stored_head.min(self.size) / TILE_WIDTH * TILE_WIDTH;
        if stored > self.level0_start {
            self.level0.drain(..(stored - self.level0_start) as usize);
            self.level0_start = stored;
        }
    }

    /// Hashes `start..start + count` of tile level `level` if memory holds them.
    fn in_memory(&self, level: u32, start: u64, count: u64) -> Option<Vec<Hash>> {
        let (hashes, first) = if level == 0 {
            (&self.level0, self.level0_start)
        } else {
            (self.upper.get(level as usize - 1)?, 0)
        };
        if start < first {
            return None;
        }
        let from = (start - first) as usize;
        hashes.get(from..from + count as usize).map(<[Hash]>::to_vec)
    }
}

/// The hashes of the tree for proofs: memory first, stored tiles for the rest. Made per
/// request: it keeps the last stored tile it read, since one proof asks for up to eight runs
/// of hashes from the same level-0 tile.
pub(crate) struct TreeReader<'a> {
    tree: &'a sled::Tree,
    state: &'a Mutex<TreeState>,
    last_tile: std::cell::RefCell<Option<(u32, u64, Vec<Hash>)>>,
}

impl<'a> TreeReader<'a> {
    /// A reader over the stored tiles of `tree` and the in-memory `state`.
    pub(crate) fn new(tree: &'a sled::Tree, state: &'a Mutex<TreeState>) -> TreeReader<'a> {
        TreeReader {
            tree,
            state,
            last_tile: Default::default(),
        }
    }
}

impl TileSource for TreeReader<'_> {
    type Error = LogError;
    fn entries(&self, level: u32, start: u64, count: u64) -> LogResult<Vec<Hash>> {
        if let Some(hashes) = self
            .state
            .lock()
            .expect("tree lock")
            .in_memory(level, start, count)
        {
            return Ok(hashes);
        }
        // Not in memory: below `level0_start`, so in a stored full tile (trimmed only after
        // the batch holding the tile was applied).
        let index = start / TILE_WIDTH;
        let from = (start % TILE_WIDTH) as usize;
        let mut last = self.last_tile.borrow_mut();
        if !matches!(&*last, Some((l, i, _)) if *l == level && *i == index) {
            *last = Some((level, index, read_tile(self.tree, level, index)?));
        }
        let (_, _, tile) = last.as_ref().expect("tile just read");
        Ok(tile[from..from + count as usize].to_vec())
    }
}

impl TreeReader<'_> {
    /// The root of the tree of `size` leaves (size at most what was applied).
    pub(crate) fn root(&self, size: u64) -> LogResult<Hash> {
        merkle::root(&Tiled(self), size)
    }
}

impl TileSource for &TreeReader<'_> {
    type Error = LogError;
    fn entries(&self, level: u32, start: u64, count: u64) -> LogResult<Vec<Hash>> {
        (*self).entries(level, start, count)
    }
}

/// The stored full tile `level`/`index`, checked for its size.
pub(crate) fn read_tile(tree: &sled::Tree, level: u32, index: u64) -> LogResult<Vec<Hash>> {
    // The first position the tile covers.
    let first = index
        .saturating_mul(TILE_WIDTH.saturating_pow(level + 1))
        .saturating_add(1);
    let damaged = |reason: String| LogError::DataLoss {
        position: first,
        reason,
    };
    let bytes = tree
        .get(tile_key(level, index))?
        .ok_or_else(|| damaged(format!("tile {level}/{index} is missing")))?;
    if bytes.len() != TILE_BYTES {
        return Err(damaged(format!(
            "tile {level}/{index} is {} bytes, not {TILE_BYTES}",
            bytes.len()
        )));
    }
    Ok(bytes
        .chunks_exact(32)
        .map(|hash| hash.try_into().expect("32 bytes"))
        .collect())
}

/// How many full tiles level `level` has stored (they are written in order, so the last key
/// tells).
fn stored_tiles(tree: &sled::Tree, level: u32) -> LogResult<u64> {
    let prefix = [TILE_PREFIX, level as u8];
    match tree.scan_prefix(prefix).next_back() {
        None => Ok(0),
        Some(entry) => {
            let (key, _) = entry?;
            let index = keys::decode_u64(&key[2..], 0, "tile key")?;
            Ok(index + 1)
        }
    }
}

/// Rebuilds the tree of a log of `head` records on open: stored tiles where they exist,
/// then the records' leaf hashes (`leaf_at(position)`) past the last stored level-0 tile.
/// Returns the state and the full tiles that were missing (to store).
pub(crate) fn load(
    tree: &sled::Tree,
    head: u64,
    mut leaf_at: impl FnMut(u64) -> LogResult<Hash>,
) -> LogResult<(TreeState, Vec<NewTile>)> {
    let full0 = stored_tiles(tree, 0)?.min(head / TILE_WIDTH);
    let mut state = TreeState {
        size: full0 * TILE_WIDTH,
        level0_start: full0 * TILE_WIDTH,
        ..TreeState::default()
    };
    let mut missing = Vec::new();
    // Level L >= 1 has one hash per full tile of level L - 1.
    let mut below = full0;
    let mut level = 1;
    while below > 0 {
        let mut entries: Vec<Hash> = Vec::with_capacity(below as usize);
        let stored = stored_tiles(tree, level)?.min(below / TILE_WIDTH);
        for index in 0..stored {
            entries.extend(read_tile(tree, level, index)?);
        }
        for index in entries.len() as u64..below {
            let hashes = match level {
                1 => read_tile(tree, 0, index)?,
                _ => state.upper[level as usize - 2]
                    [(index * TILE_WIDTH) as usize..((index + 1) * TILE_WIDTH) as usize]
                    .to_vec(),
            };
            entries.push(root_of_hashes(&hashes));
        }
        for index in stored..below / TILE_WIDTH {
            let tile = &entries[(index * TILE_WIDTH) as usize..((index + 1) * TILE_WIDTH) as usize];
            missing.push((level, index, concat(tile)));
        }
        below = entries.len() as u64 / TILE_WIDTH;
        state.upper.push(entries);
        level += 1;
    }
    for position in state.size + 1..=head {
        state.push(leaf_at(position)?, &mut missing);
    }
    Ok((state, missing))
}

/// The sled entries (key, value) of new tiles, for a commit's batch.
pub(crate) fn tile_entries(tiles: Vec<NewTile>) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> {
    tiles
        .into_iter()
        .map(|(level, index, bytes)| (tile_key(level, index).to_vec(), bytes))
}

/// Writes tiles in one batch.
pub(crate) fn store_tiles(tree: &sled::Tree, tiles: Vec<NewTile>) -> LogResult<()> {
    let mut batch = sled::Batch::default();
    for (key, value) in tile_entries(tiles) {
        batch.insert(key, value);
    }
    tree.apply_batch(batch)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{inclusion_proof, leaf_hash, NaiveNodes};

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    fn temp_tree() -> (tempfile::TempDir, sled::Tree) {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::Config::new().path(dir.path()).open().unwrap();
        (dir, db.open_tree("log").unwrap())
    }

    /// Appends `leaves` as the writer does: tiles stored, then memory trimmed.
    fn append(tree: &sled::Tree, state: &Mutex<TreeState>, leaves: &[Hash]) {
        let mut tiles = Vec::new();
        let mut guard = state.lock().unwrap();
        for leaf in leaves {
            guard.push(*leaf, &mut tiles);
        }
        store_tiles(tree, tiles).unwrap();
        let size = guard.size();
        guard.trim(size);
    }

    #[test]
    fn the_tiled_tree_answers_like_the_naive_one_across_three_tile_levels() {
        let (_dir, tree) = temp_tree();
        let state = Mutex::new(TreeState::default());
        let all = leaves(70_000);
        for part in all.chunks(997) {
            append(&tree, &state, part);
        }
        let reader = TreeReader::new(&tree, &state);
        assert_eq!(state.lock().unwrap().upper.len(), 2, "levels 1 and 2");
        for size in [1, 255, 256, 257, 65_536, 65_537, 70_000] {
            assert_eq!(
                reader.root(size).unwrap(),
                merkle::root(&NaiveNodes(&all), size).unwrap()
            );
        }
        for (index, size) in [(0, 70_000), (65_535, 65_537), (69_999, 70_000), (300, 1000)] {
            assert_eq!(
                inclusion_proof(&Tiled(&reader), index, size).unwrap(),
                inclusion_proof(&NaiveNodes(&all), index, size).unwrap()
            );
        }
    }

    #[test]
    fn load_rebuilds_missing_tiles_from_the_records() {
        let (_dir, tree) = temp_tree();
        let all = leaves(66_000);
        let state = Mutex::new(TreeState::default());
        // Only the first 300 leaves' tiles were stored (the rest came back by journal replay).
        append(&tree, &state, &all[..300]);
        let (loaded, missing) = load(&tree, 66_000, |position| Ok(all[position as usize - 1])).unwrap();
        assert_eq!(missing.len(), 256 + 1, "level-0 tiles 1..=256 and level-1 tile 0");
        store_tiles(&tree, missing).unwrap();
        let state = Mutex::new(loaded);
        let reader = TreeReader::new(&tree, &state);
        assert_eq!(
            reader.root(66_000).unwrap(),
            merkle::root(&NaiveNodes(&all), 66_000).unwrap()
        );
        // A second load finds everything stored.
        let (again, missing) = load(&tree, 66_000, |position| Ok(all[position as usize - 1])).unwrap();
        assert!(missing.is_empty());
        assert_eq!(again.upper, state.lock().unwrap().upper);
    }
}
