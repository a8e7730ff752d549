//! The storage layout shared by every read model: multi-version rows, append-only index
//! entries, the checkpoint, and the write batch that carries them together.
//!
//! Key layout inside one projection tree (`proj-<name>`):
//! - `C` -> checkpoint: the last log position applied (u64 big-endian).
//! - `R` kind id 0x00 !position(8 BE) -> one immutable version of a row, written at
//!   `position`. The position is stored bit-inverted, so the versions of a row sort newest
//!   first and the row as of P (the newest version with position <= P) is the first entry of a
//!   *forward* range starting at !P (one forward range step; sled's reverse iteration is several
//!   times slower). Ids never contain 0x00 (party codes, UUIDs, slugs, validated names).
//! - `I` index 0x00 value 0x00 sort(8) id -> empty. Index entries are only ever added: an entry
//!   says "this row once had this value with this sort key"; a reader confirms it against the
//!   row version it reads, so one scan serves every as-of position.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::error::{ProjectionError, ProjectionResult};

/// Key of the checkpoint in every projection tree.
pub(crate) const CHECKPOINT_KEY: &[u8] = b"C";

/// Maps an i64 to 8 bytes whose byte order is the numeric order.
pub(crate) fn sortable(value: i64) -> [u8; 8] {
    ((value as u64) ^ (1 << 63)).to_be_bytes()
}

/// Inverse of [`sortable`].
pub(crate) fn unsortable(bytes: &[u8]) -> i64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    (u64::from_be_bytes(array) ^ (1 << 63)) as i64
}

/// The base key of a row: `R` kind 0x00 id 0x00.
pub(crate) fn row_base(kind: u8, id: &[u8]) -> Vec<u8> {
    let mut key = Vec::with_capacity(id.len() + 3);
    key.push(b'R');
    key.push(kind);
    key.extend_from_slice(id);
    key.push(0);
    key
}

fn version_key(base: &[u8], position: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(base.len() + 8);
    key.extend_from_slice(base);
    key.extend_from_slice(&(!position).to_be_bytes());
    key
}

/// The prefix of one index value: `I` index 0x00 value 0x00.
pub(crate) fn index_prefix(index: u8, value: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(value.len() + 3);
    key.push(b'I');
    key.push(index);
    key.extend_from_slice(value.as_bytes());
    key.push(0);
    key
}

/// A full index key.
pub(crate) fn index_key(index: u8, value: &str, sort: i64, id: &[u8]) -> Vec<u8> {
    let mut key = index_prefix(index, value);
    key.extend_from_slice(&sortable(sort));
    key.extend_from_slice(id);
    key
}

/// Decodes a stored row.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> ProjectionResult<T> {
    crate::encoding::decode(bytes)
        .map_err(|error| ProjectionError::DataLoss(format!("read-model row: {error}")))
}

/// The row version at `base` as of position `at` (newest version with position <= at).
pub(crate) fn row_at<T: DeserializeOwned>(
    tree: &sled::Tree,
    base: &[u8],
    at: u64,
) -> ProjectionResult<Option<T>> {
    // Versions sort newest first: the first at or after !at is the newest with position <= at.
    let start = version_key(base, at);
    let end = version_key(base, 0);
    match tree.range(start..=end).next() {
        Some(entry) => Ok(Some(decode(&entry?.1)?)),
        None => Ok(None),
    }
}

/// The checkpoint stored in a projection tree (0 if none).
pub(crate) fn read_checkpoint(tree: &sled::Tree) -> ProjectionResult<u64> {
    match tree.get(CHECKPOINT_KEY)? {
        Some(bytes) if bytes.len() == 8 => {
            let mut array = [0u8; 8];
            array.copy_from_slice(&bytes);
            Ok(u64::from_be_bytes(array))
        }
        Some(_) => Err(ProjectionError::DataLoss("malformed checkpoint".into())),
        None => Ok(0),
    }
}

/// Most aggregate rows (relation summaries, compliance, contacts) whose latest version a
/// projection keeps in memory across batches, so maintaining an aggregate does not read it back
/// from sled. Past this bound the cache is cleared (and refilled from the tree on demand).
pub const LATEST_AGGREGATES_CACHED: usize = 65_536;

/// The latest stored version (encoded) of aggregate rows, by row base. Owned by the runner's
/// slot of one projection; valid only for that projection's tree as committed.
pub(crate) type LatestCache = HashMap<Vec<u8>, Vec<u8>>;

/// The changes one projection makes for a run of events, written with its checkpoint in one
/// sled batch. Reads of aggregates written earlier in the same run see the pending versions;
/// reads of aggregates written in earlier runs come from the slot's [`LatestCache`].
pub(crate) struct Txn {
    batch: sled::Batch,
    /// Newest pending version of each aggregate row base.
    pending: HashMap<Vec<u8>, Vec<u8>>,
    /// Latest committed versions (taken from the slot, given back on commit).
    cache: LatestCache,
}

impl Txn {
    /// A transaction starting from the committed latest versions in `cache`.
    pub(crate) fn with_cache(cache: LatestCache) -> Txn {
        Txn {
            batch: sled::Batch::default(),
            pending: HashMap::new(),
            cache,
        }
    }

    /// Writes a new version of the row at `base`, effective from `position`.
    pub(crate) fn put_row<T: Serialize>(&mut self, base: &[u8], position: u64, row: &T) {
        let bytes = crate::encoding::encode(row);
        self.batch.insert(version_key(base, position), bytes);
    }

    /// Writes a new version of the aggregate row at `base` effective from `position`, unless
    /// it is byte-for-byte the latest version already (then the latest version answers every
    /// as-of position from its own on, so nothing is lost by not writing it).
    pub(crate) fn put_aggregate<T: Serialize>(&mut self, base: Vec<u8>, position: u64, row: &T) {
        let bytes = crate::encoding::encode(row);
        let latest = self.pending.get(&base).or_else(|| self.cache.get(&base));
        if latest == Some(&bytes) {
            return;
        }
        self.batch.insert(version_key(&base, position), bytes.clone());
        self.pending.insert(base, bytes);
    }

    /// Adds an index entry (idempotent).
    pub(crate) fn put_index(&mut self, key: Vec<u8>) {
        self.batch.insert(key, &[][..]);
    }

    /// The newest version of the aggregate row at `base`: pending in this batch, else cached,
    /// else stored (then cached).
    pub(crate) fn latest_aggregate<T: DeserializeOwned>(
        &mut self,
        tree: &sled::Tree,
        base: &[u8],
    ) -> ProjectionResult<Option<T>> {
        if let Some(bytes) = self.pending.get(base).or_else(|| self.cache.get(base)) {
            return Ok(Some(decode(bytes)?));
        }
        let start = version_key(base, u64::MAX);
        let end = version_key(base, 0);
        match tree.range(start..=end).next() {
            Some(entry) => {
                let bytes = entry?.1.to_vec();
                let row = decode(&bytes)?;
                self.cache.insert(base.to_vec(), bytes);
                Ok(Some(row))
            }
            None => Ok(None),
        }
    }

    /// Applies the changes and the new checkpoint atomically; returns the latest-version cache
    /// brought up to date (bounded by [`LATEST_AGGREGATES_CACHED`]).
    pub(crate) fn commit(mut self, tree: &sled::Tree, checkpoint: u64) -> ProjectionResult<LatestCache> {
        self.batch.insert(CHECKPOINT_KEY, &checkpoint.to_be_bytes()[..]);
        tree.apply_batch(self.batch)?;
        let mut cache = self.cache;
        cache.extend(self.pending);
        if cache.len() > LATEST_AGGREGATES_CACHED {
            cache.clear();
        }
        Ok(cache)
    }

    /// Gives the cache back without writing (nothing was applied).
    pub(crate) fn into_cache(self) -> LatestCache {
        self.cache
    }
}

/// Adds the index entries of `new` that `old` did not have. Entries are (index, value, sort).
pub(crate) fn add_index_entries(
    txn: &mut Txn,
    id: &[u8],
    old: &[(u8, String, i64)],
    new: &[(u8, String, i64)],
) {
    for entry in new {
        if !old.contains(entry) {
            txn.put_index(index_key(entry.0, &entry.1, entry.2, id));
        }
    }
}

/// Most rows one list page returns (a larger `limit` is an invalid argument).
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when the caller gives none (limit 0).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most index entries one list page examines before it returns (possibly short) with a token,
/// so a selective filter or an old as-of position cannot make one query scan without bound.
pub const MAX_SCANNED_PER_PAGE: usize = 20_000;
/// Longest page token accepted, in characters.
pub const MAX_PAGE_TOKEN_CHARS: usize = 1_024;

/// Checks a page size: 0 means [`DEFAULT_PAGE_SIZE`]; above [`MAX_PAGE_SIZE`] is invalid.
pub(crate) fn page_size(limit: usize) -> ProjectionResult<usize> {
    if limit > MAX_PAGE_SIZE {
        return Err(ProjectionError::InvalidArgument {
            field: "limit",
            reason: format!("{limit} is over the limit of {MAX_PAGE_SIZE}"),
        });
    }
    Ok(if limit == 0 { DEFAULT_PAGE_SIZE } else { limit })
}

/// Encodes a resume key as a page token (hex).
pub(crate) fn encode_token(key: &[u8]) -> String {
    key.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes a page token.
pub(crate) fn decode_token(token: &str) -> ProjectionResult<Vec<u8>> {
    let invalid = |reason: &str| ProjectionError::InvalidArgument {
        field: "page_token",
        reason: reason.into(),
    };
    if token.len() > MAX_PAGE_TOKEN_CHARS {
        return Err(invalid("too long"));
    }
    if token.len() % 2 != 0 {
        return Err(invalid("malformed"));
    }
    (0..token.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(&token[index..index + 2], 16).map_err(|_| invalid("malformed")))
        .collect()
}

/// One index scan: entries of (`index`, `value`) with sort keys in `from..=to`, resuming after
/// `token`. `accept(id, sort)` loads and checks the row as of the query position and returns
/// it if the entry is confirmed. Returns the rows and the token of the next page.
#[allow(clippy::too_many_arguments)] // an index value, a range, a page and a row check
pub(crate) fn scan_index<T>(
    tree: &sled::Tree,
    index: u8,
    value: &str,
    from: i64,
    to: i64,
    token: Option<&str>,
    limit: usize,
    mut accept: impl FnMut(&[u8], i64) -> ProjectionResult<Option<T>>,
) -> ProjectionResult<(Vec<T>, Option<String>)> {
    let limit = page_size(limit)?;
    let prefix = index_prefix(index, value);
    let mut start = prefix.clone();
    start.extend_from_slice(&sortable(from));
    let mut end = prefix.clone();
    end.extend_from_slice(&sortable(to));
    end.push(0xFF);
    if let Some(token) = token {
        let mut resume = decode_token(token)?;
        if !resume.starts_with(&prefix) {
            return Err(ProjectionError::InvalidArgument {
                field: "page_token",
                reason: "belongs to another query".into(),
            });
        }
        resume.push(0); // strictly after the last key returned
        if resume > start {
            start = resume;
        }
    }
    let mut rows = Vec::new();
    let mut scanned = 0;
    for entry in tree.range(start..end) {
        let (key, _) = entry?;
        scanned += 1;
        let rest = &key[prefix.len()..];
        if rest.len() < 8 {
            return Err(ProjectionError::DataLoss("malformed index key".into()));
        }
        let sort = unsortable(rest);
        if let Some(row) = accept(&rest[8..], sort)? {
            rows.push(row);
        }
        if rows.len() == limit || scanned == MAX_SCANNED_PER_PAGE {
            return Ok((rows, Some(encode_token(&key))));
        }
    }
    Ok((rows, None))
}

/// The calendar month (`YYYY-MM`, UTC) of an instant in microseconds since the epoch.
pub fn month_of(micros: i64) -> String {
    let (year, month, _) = crate::domain::time::Timestamp::from_unix_micros(micros).civil_date();
    format!("{year:04}-{month:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sortable_orders_like_numbers() {
        let values = [i64::MIN, -5, -1, 0, 1, 7, i64::MAX];
        for pair in values.windows(2) {
            assert!(sortable(pair[0]) < sortable(pair[1]));
            assert_eq!(unsortable(&sortable(pair[0])), pair[0]);
        }
    }

    #[test]
    fn months() {
        assert_eq!(month_of(0), "1970-01");
        assert_eq!(month_of(1_736_899_200_000_000), "2025-01");
        assert_eq!(month_of(951_782_400_000_000), "2000-02"); // 2000-02-29
        assert_eq!(month_of(-1), "1969-12");
    }

    #[test]
    fn tokens_round_trip_and_limits() {
        assert_eq!(
            decode_token(&encode_token(&[0, 1, 255])).unwrap(),
            vec![0, 1, 255]
        );
        assert!(decode_token("abc").is_err());
        assert!(decode_token(&"00".repeat(MAX_PAGE_TOKEN_CHARS)).is_err());
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(MAX_PAGE_SIZE).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(MAX_PAGE_SIZE + 1).is_err());
    }
}
