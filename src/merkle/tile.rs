//! C2SP tlog-tiles: the tree stored as tiles of height 8. The tile at level L, index N holds
//! up to 256 consecutive hashes of level 8L of the tree (level 0: leaf hashes; level L > 0:
//! roots of perfect subtrees of 256^L leaves), concatenated. A full tile never changes; a
//! partial tile of width W holds the first W hashes of the full tile it becomes.

use super::{root_of_hashes, Hash, Nodes};

/// Tree levels per tile (C2SP: 8).
pub const TILE_HEIGHT: u32 = 8;
/// Hashes in a full tile.
pub const TILE_WIDTH: u64 = 1 << TILE_HEIGHT;
/// Bytes of a full tile.
pub const TILE_BYTES: usize = TILE_WIDTH as usize * 32;

const _: () = assert!(TILE_WIDTH == 256 && TILE_BYTES == 8192);

/// Reads consecutive hashes of one tile level: [start, start + count) lies in one tile.
pub trait TileSource {
    /// Why hashes could not be read.
    type Error;
    /// Hashes `start..start + count` of tile level `level`.
    fn entries(&self, level: u32, start: u64, count: u64) -> Result<Vec<Hash>, Self::Error>;
}

/// The tree's perfect subtrees from its tiles: a subtree of 2^h leaves is the root of
/// 2^(h mod 8) consecutive hashes at tile level h / 8 (at most 128 hashes of work).
pub struct Tiled<S>(pub S);

impl<S: TileSource> Nodes for Tiled<S> {
    type Error = S::Error;
    fn perfect(&self, height: u32, index: u64) -> Result<Hash, S::Error> {
        let level = height / TILE_HEIGHT;
        let within = height % TILE_HEIGHT;
        let hashes = self.0.entries(level, index << within, 1 << within)?;
        debug_assert_eq!(hashes.len(), 1 << within);
        Ok(root_of_hashes(&hashes))
    }
}

/// How many hashes tile level `level` has in a tree of `size` leaves.
pub fn level_width(size: u64, level: u32) -> u64 {
    match level.checked_mul(TILE_HEIGHT) {
        Some(shift) if shift < 64 => size >> shift,
        _ => 0,
    }
}

/// The C2SP path of a tile: `tile/<L>/<N>[.p/<W>]`, N in groups of three digits, all but the
/// last prefixed with `x` (index 1234067 is `x001/x234/067`).
pub fn tile_path(level: u32, index: u64, width: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let partial = if width < TILE_WIDTH {
        format!(".p/{width}")
    } else {
        String::new()
    };
    format!("tile/{level}/{}{partial}", groups.join("/"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tile_paths_follow_c2sp() {
        assert_eq!(tile_path(0, 1234067, 256), "tile/0/x001/x234/067");
        assert_eq!(tile_path(1, 0, 12), "tile/1/000.p/12");
        assert_eq!(tile_path(2, 1000, 256), "tile/2/x001/000");
    }

    #[test]
    fn level_widths() {
        assert_eq!(level_width(70_000, 0), 70_000);
        assert_eq!(level_width(70_000, 1), 273);
        assert_eq!(level_width(70_000, 2), 1);
        assert_eq!(level_width(70_000, 8), 0);
    }
}
