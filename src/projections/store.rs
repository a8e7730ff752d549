//! The in-memory structures every read model is built from: entity states, index memberships
//! with validity intervals, tallies with deltas, and the page tokens and limits of a list.
//!
//! Nothing here touches sled. Exactness as of any position P comes from three rules:
//! - an entity as of P is its latest state if its last event is at or before P, else its stream
//!   folded up to P from the log ([`state_at`]);
//! - an index membership carries the intervals `[from, to)` of positions during which it held
//!   ([`super::index`]), so a list as of P takes the entries whose interval contains P;
//! - an aggregate is a [`Tally`] of signed counts changed by deltas at positions, with the full
//!   value kept every [`TALLY_CHECKPOINT_EVERY`] deltas, so as of P is a binary search plus at
//!   most that many additions.
//!
//! Longer than ~600 lines because every read model uses these pieces together and they share one
//! vocabulary (item ids, positions, validity intervals); split, that vocabulary would be scattered.

use std::collections::{BTreeMap, HashMap, HashSet};

/// The hash map of the read models: foldhash (a fast hash seeded per process) instead of
/// SipHash, which was a few percent of a rebuild. Keys are ids, codes and index values.
pub(crate) type Map<K, V> = HashMap<K, V, foldhash::fast::RandomState>;
/// The hash set of the read models (see [`Map`]).
pub(crate) type Set<K> = HashSet<K, foldhash::fast::RandomState>;
use std::sync::Arc;

use super::error::{ProjectionError, ProjectionResult};
use super::kept::Kept;
use crate::domain::{evolve_state, AggregateState};
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, Log};

/// The `to` of an interval that still holds.
pub(crate) const OPEN: u64 = u64::MAX;

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

/// Strings stored once, referred to by number (index values, tally components).
#[derive(Default)]
pub(crate) struct Interner {
    ids: Map<Box<str>, u32>,
    names: Vec<Box<str>>,
}

impl Interner {
    /// The number of `name`, assigned on first use.
    pub(crate) fn intern(&mut self, name: &str) -> u32 {
        if let Some(id) = self.ids.get(name) {
            return *id;
        }
        let id = u32::try_from(self.names.len()).expect("fewer than 2^32 distinct names");
        self.names.push(name.into());
        self.ids.insert(name.into(), id);
        id
    }

    /// The number of `name`, if it was ever interned.
    pub(crate) fn get(&self, name: &str) -> Option<u32> {
        self.ids.get(name).copied()
    }

    /// The name of a number.
    pub(crate) fn name(&self, id: u32) -> &str {
        &self.names[id as usize]
    }
}

/// The id of an indexed item: a kind byte (0 when an index holds one kind) and a UUID.
pub(crate) type ItemId = [u8; 17];

/// The [`ItemId`] of a UUID of kind `kind`.
pub(crate) fn item_id(kind: u8, uuid: &uuid::Uuid) -> ItemId {
    let mut id = [0u8; 17];
    id[0] = kind;
    id[1..].copy_from_slice(uuid.as_bytes());
    id
}

/// The UUID of an [`ItemId`].
pub(crate) fn item_uuid(id: &ItemId) -> uuid::Uuid {
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&id[1..]);
    uuid::Uuid::from_bytes(bytes)
}

/// One index membership a row has: (index, value, sort key).
pub(crate) type Entry = (u8, String, i64);

/// A big-endian u64 from the first 8 bytes.
pub(crate) fn u64_at(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(array)
}

/// Pushes `item` onto the last of `blocks`, or onto a new block of `capacity` when the last is
/// full (a list that grows a block at a time: nothing it holds is copied, and at most one block
/// has room unused). True when a block was started.
pub(crate) fn push_blocked<T>(blocks: &mut Vec<Vec<T>>, item: T, capacity: usize) -> bool {
    match blocks.last_mut() {
        Some(block) if block.len() < capacity => {
            block.push(item);
            false
        }
        _ => {
            let mut block = Vec::with_capacity(capacity);
            block.push(item);
            blocks.push(block);
            true
        }
    }
}

/// A big-endian u32 from the first 4 bytes.
pub(crate) fn u32_at(bytes: &[u8]) -> u32 {
    u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"))
}

/// The first `n` bytes of `reader`, which moves past them (None, and `reader` unmoved, when it
/// holds fewer): how snapshot records are read.
pub(crate) fn take_bytes<'a>(reader: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    if reader.len() < n {
        return None;
    }
    let (taken, rest) = reader.split_at(n);
    *reader = rest;
    Some(taken)
}

/// A length (u32 BE) and that many bytes from `reader`, which moves past them.
pub(crate) fn take_sized<'a>(reader: &mut &'a [u8]) -> Option<&'a [u8]> {
    let length = u32_at(take_bytes(reader, 4)?) as usize;
    take_bytes(reader, length)
}

/// Where a read model writes its snapshot records: (key, value) puts and removes in a key space
/// of its own (each key gets the read model's letter in front), appended to the snapshot's
/// record stream ([`super::snapshot`]).
pub(crate) struct Snapshot<'a> {
    pub(crate) letter: u8,
    pub(crate) records: &'a mut super::snapshot_writer::Records,
}

impl Snapshot<'_> {
    /// Puts `key` (after the letter) -> `value` (copied into the records).
    pub(crate) fn put(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.records.put(self.letter, key.as_ref(), value.as_ref());
    }

    /// Puts `key` (after the letter) -> the entity's snapshot value, encoded later, on the
    /// snapshot's writer thread (the state is an immutable `Arc`, so what is encoded is what was current).
    pub(crate) fn put_entity(&mut self, key: super::snapshot_writer::EntityKey, current: &Current) {
        self.records.defer(super::snapshot_writer::Deferred::Entity {
            letter: self.letter,
            key,
            current: current.clone(),
        });
    }

    /// Puts a commitment's progress reports after version `saved` (and removes the ones at or
    /// before it retracted since), read from `state` on the snapshot's writer thread.
    pub(crate) fn put_reports(&mut self, uuid: uuid::Uuid, state: &Arc<Kept>, saved: u64) {
        self.records.defer(super::snapshot_writer::Deferred::Reports {
            letter: self.letter,
            uuid,
            state: state.clone(),
            saved,
        });
    }

    /// Removes `key` (after the letter).
    pub(crate) fn remove(&mut self, key: Vec<u8>) {
        self.records.remove(self.letter, &key);
    }
}

/// Full values a [`Tally`] keeps: one after every this many deltas. As of a position a tally
/// adds at most this many deltas to a full value (a few components each: microseconds);
/// a full value of a relation holds every month and topic, so fewer of them is less memory.
pub const TALLY_CHECKPOINT_EVERY: usize = 128;

/// A growing vector of the read models (an index chunk, a tally's arrays) grows by 1/this of
/// its length when full (at least [`MIN_GROWTH`] elements): at most about an eighth of it is
/// spare, instead of up to the half a doubling leaves. The cost: a full vector is copied every
/// eighth of its length instead of at every doubling, about 8 copies of each element in all
/// instead of 2 (a few bytes each).
pub const GROWTH_SHARE: usize = 8;
/// The least a vector of the read models grows by when full.
pub const MIN_GROWTH: usize = 4;
const _: () = assert!(GROWTH_SHARE >= 2 && MIN_GROWTH >= 1);

/// Makes room for one more element in `vector` as [`GROWTH_SHARE`] says.
pub(crate) fn reserve_one<T>(vector: &mut Vec<T>) {
    if vector.len() == vector.capacity() {
        vector.reserve_exact((vector.len() / GROWTH_SHARE).max(MIN_GROWTH));
    }
}

/// Components and amounts in parallel arrays (12 bytes a component), cut into values by the
/// end offsets kept beside them: no allocation per delta or per full value.
#[derive(Default)]
struct Flat {
    components: Vec<u32>,
    amounts: Vec<i64>,
    /// `ends[i]` is one past the last component of value `i`.
    ends: Vec<u32>,
}

impl Flat {
    fn push(&mut self, value: impl Iterator<Item = (u32, i64)>) {
        for (component, amount) in value {
            reserve_one(&mut self.components);
            self.components.push(component);
            reserve_one(&mut self.amounts);
            self.amounts.push(amount);
        }
        let end = u32::try_from(self.components.len()).expect("fewer than 2^32 tally components");
        reserve_one(&mut self.ends);
        self.ends.push(end);
    }

    fn get(&self, index: usize) -> impl Iterator<Item = (u32, i64)> + '_ {
        let start = index
            .checked_sub(1)
            .map_or(0, |before| self.ends[before] as usize);
        let end = self.ends[index] as usize;
        self.components[start..end]
            .iter()
            .copied()
            .zip(self.amounts[start..end].iter().copied())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.ends.len()
    }
}

/// Signed counts by component, changed by deltas at log positions.
#[derive(Default)]
pub(crate) struct Tally {
    latest: BTreeMap<u32, i64>,
    /// Position of each delta, in log order.
    positions: Vec<u64>,
    /// The deltas: nonzero amounts by component, ascending by component.
    deltas: Flat,
    /// Value `i` is the full value after the first `(i + 1) * TALLY_CHECKPOINT_EVERY` deltas.
    checkpoints: Flat,
    /// Deltas already in a snapshot.
    saved: usize,
}

fn add_into(value: &mut BTreeMap<u32, i64>, delta: impl Iterator<Item = (u32, i64)>) {
    for (component, amount) in delta {
        let entry = value.entry(component).or_insert(0);
        *entry += amount;
        if *entry == 0 {
            value.remove(&component);
        }
    }
}

impl Tally {
    /// Adds `after - before` at `position` (nothing when they are equal).
    pub(crate) fn change(&mut self, position: u64, before: &BTreeMap<u32, i64>, after: &BTreeMap<u32, i64>) {
        let mut delta: BTreeMap<u32, i64> = after.clone();
        for (component, amount) in before {
            *delta.entry(*component).or_insert(0) -= amount;
        }
        delta.retain(|_, amount| *amount != 0);
        if delta.is_empty() {
            return;
        }
        self.push(position, &delta);
    }

    fn push(&mut self, position: u64, delta: &BTreeMap<u32, i64>) {
        assert!(
            self.positions.last().is_none_or(|last| *last <= position),
            "tally deltas come in log order"
        );
        add_into(&mut self.latest, delta.iter().map(|(c, v)| (*c, *v)));
        reserve_one(&mut self.positions);
        self.positions.push(position);
        self.deltas.push(delta.iter().map(|(c, v)| (*c, *v)));
        if self.positions.len() % TALLY_CHECKPOINT_EVERY == 0 {
            self.checkpoints.push(self.latest.iter().map(|(c, v)| (*c, *v)));
        }
    }

    /// The value as of `at`.
    pub(crate) fn at(&self, at: u64) -> BTreeMap<u32, i64> {
        let applied = self.positions.partition_point(|position| *position <= at);
        if applied == self.positions.len() {
            return self.latest.clone();
        }
        let whole = applied / TALLY_CHECKPOINT_EVERY;
        let mut value: BTreeMap<u32, i64> = match whole {
            0 => BTreeMap::new(),
            _ => self.checkpoints.get(whole - 1).collect(),
        };
        for index in whole * TALLY_CHECKPOINT_EVERY..applied {
            add_into(&mut value, self.deltas.get(index));
        }
        value
    }

    /// Marks every delta unsaved.
    pub(crate) fn unsave(&mut self) {
        self.saved = 0;
    }

    /// Whether deltas were added since the last snapshot.
    pub(crate) fn unsaved(&self) -> bool {
        self.saved < self.positions.len()
    }

    /// Writes the deltas added since the last snapshot: `key` seq(8) -> (position, [(component
    /// name, amount)]).
    pub(crate) fn save(&mut self, out: &mut Snapshot<'_>, key: &[u8], names: &Interner) {
        // A base puts every delta of every tally: from buffers made once, not three
        // allocations each.
        let (mut named, mut key_bytes, mut value) = (Vec::new(), Vec::new(), Vec::new());
        for seq in self.saved..self.positions.len() {
            named.clear();
            named.extend(self.deltas.get(seq).map(|(c, v)| (names.name(c), v)));
            key_bytes.clear();
            key_bytes.extend_from_slice(key);
            key_bytes.extend_from_slice(&(seq as u64).to_be_bytes());
            value.clear();
            crate::encoding::encode_into(&(self.positions[seq], &named), &mut value);
            out.put(&key_bytes, &value);
        }
        self.saved = self.positions.len();
    }

    /// Restores the delta number `seq` written by [`Tally::save`].
    pub(crate) fn restore(&mut self, seq: u64, value: &[u8], names: &mut Interner) -> ProjectionResult<()> {
        let (position, named): (u64, Vec<(String, i64)>) =
            crate::encoding::decode(value).map_err(|error| {
                ProjectionError::DataLoss(format!("read-model snapshot: tally delta: {error}"))
            })?;
        let in_order = self.positions.last().is_none_or(|last| *last <= position);
        if seq != self.positions.len() as u64 || !in_order || named.iter().any(|(_, amount)| *amount == 0) {
            return Err(ProjectionError::DataLoss(
                "read-model snapshot: tally deltas out of order".into(),
            ));
        }
        let mut delta = BTreeMap::new();
        for (name, amount) in &named {
            if delta.insert(names.intern(name), *amount).is_some() {
                return Err(ProjectionError::DataLoss(
                    "read-model snapshot: a tally delta names a component twice".into(),
                ));
            }
        }
        self.push(position, &delta);
        self.saved = self.positions.len();
        Ok(())
    }

    /// The deltas as bytes: (position, then (component name, amount) pairs) per delta.
    pub(crate) fn dump(&self, names: &Interner) -> Vec<u8> {
        let deltas: Vec<(u64, Vec<(&str, i64)>)> = (0..self.positions.len())
            .map(|index| {
                let mut named: Vec<(&str, i64)> =
                    self.deltas.get(index).map(|(c, v)| (names.name(c), v)).collect();
                named.sort();
                (self.positions[index], named)
            })
            .collect();
        crate::encoding::encode(&deltas)
    }
}

/// The latest state of one entity, and where its events are in the log.
#[derive(Debug, Clone)]
pub(crate) struct Current {
    /// The state after its last event (shared with the runner's state map, which decides when
    /// it is packed).
    pub state: Arc<Kept>,
    /// Position of its first event.
    pub first_position: u64,
    /// Position of its last event.
    pub last_position: u64,
}

impl Current {
    /// The entity after one more event at `position`.
    pub(crate) fn advanced(previous: Option<&Current>, state: Arc<Kept>, position: u64) -> Current {
        Current {
            state,
            first_position: previous.map_or(position, |current| current.first_position),
            last_position: position,
        }
    }
}

/// What a read model changed since its last snapshot: some keys, or all of them (nothing of it
/// is saved yet, after `Projection::unsave` or before a first snapshot), in which case no key is
/// tracked one by one (during a rebuild that set would hold every entry).
#[derive(Debug)]
pub(crate) struct Dirty<K> {
    all: bool,
    keys: Set<K>,
}

impl<K> Default for Dirty<K> {
    fn default() -> Self {
        Dirty {
            all: false,
            keys: Set::default(),
        }
    }
}

/// What the next snapshot writes: everything, or these keys.
pub(crate) enum Changed<K> {
    All,
    Keys(Set<K>),
}

impl<K: Eq + std::hash::Hash> Dirty<K> {
    /// Notes that `key` changed.
    pub(crate) fn mark(&mut self, key: K) {
        if !self.all {
            self.keys.insert(key);
        }
    }

    /// Notes that nothing is saved: the next snapshot writes everything.
    pub(crate) fn mark_all(&mut self) {
        self.all = true;
        self.keys = Set::default();
    }

    /// What changed, and starts afresh (the snapshot takes it).
    pub(crate) fn take(&mut self) -> Changed<K> {
        let keys = std::mem::take(&mut self.keys);
        if std::mem::take(&mut self.all) {
            Changed::All
        } else {
            Changed::Keys(keys)
        }
    }

    /// The keys a snapshot writes: every one of `every` when all changed, else the marked ones.
    pub(crate) fn take_ids(&mut self, every: impl Iterator<Item = K>) -> Vec<K> {
        match self.take() {
            Changed::All => every.collect(),
            Changed::Keys(keys) => keys.into_iter().collect(),
        }
    }
}

/// Decodes an entity's snapshot value, (first position, last position, state) as
/// [`Kept::write_snapshot_value`] writes it, into a [`Current`] (checked: positions
/// in order and the state's entity present).
pub(crate) fn restore_entity<S: serde::de::DeserializeOwned>(
    value: &[u8],
    wrap: impl FnOnce(S) -> AggregateState,
) -> ProjectionResult<Current> {
    let (first_position, last_position, state): (u64, u64, S) = crate::encoding::decode_state(value)
        .map_err(|error| ProjectionError::DataLoss(format!("read-model snapshot: entity: {error}")))?;
    let state = wrap(state);
    if first_position == 0 || first_position > last_position || !state.exists() {
        return Err(ProjectionError::DataLoss(
            "read-model snapshot: malformed entity".into(),
        ));
    }
    Ok(Current {
        state: Kept::cold(&state),
        first_position,
        last_position,
    })
}

/// Splits a snapshot key `name seq(8)` of a tally delta.
pub(crate) fn tally_key(key: &[u8]) -> ProjectionResult<(&[u8], u64)> {
    if key.len() < 8 {
        return Err(ProjectionError::DataLoss(
            "read-model snapshot: malformed tally key".into(),
        ));
    }
    let (name, seq) = key.split_at(key.len() - 8);
    Ok((name, u64_at(seq)))
}

/// A UUID from snapshot key bytes.
pub(crate) fn uuid_key(bytes: &[u8]) -> ProjectionResult<uuid::Uuid> {
    uuid::Uuid::from_slice(bytes)
        .map_err(|_| ProjectionError::DataLoss("read-model snapshot: malformed id".into()))
}

/// The state of the entity of `stream_id` as of `at` and the position of its last event at or
/// before `at`: the latest state when nothing later happened to it, else its stream folded up
/// to `at` from the log. None if it did not exist at `at`.
pub(crate) fn state_at(
    log: &Log,
    stream_id: &str,
    current: Option<&Current>,
    at: u64,
) -> ProjectionResult<Option<(Arc<AggregateState>, u64)>> {
    let Some(current) = current else { return Ok(None) };
    if current.last_position <= at {
        return Ok(Some((current.state.state(), current.last_position)));
    }
    if current.first_position > at {
        return Ok(None);
    }
    Ok(fold_stream(log, stream_id, u64::MAX, at)?.map(|(state, last)| (Arc::new(state), last)))
}

/// Folds the events of `stream_id` with versions up to `up_to_version` and positions up to
/// `up_to_position`; the state and the position of its last event, None if no event qualifies.
/// The one place the read models fold a stream from the log (as-of reads, and the runner when
/// its state map misses).
pub(crate) fn fold_stream(
    log: &Log,
    stream_id: &str,
    up_to_version: u64,
    up_to_position: u64,
) -> ProjectionResult<Option<(AggregateState, u64)>> {
    let mut folded: Option<(AggregateState, u64)> = None;
    let mut next = 1;
    while next <= up_to_version {
        let limit = (up_to_version - next + 1).min(MAX_READ_PAGE_EVENTS as u64) as usize;
        let events = log.read_stream(stream_id, next, Direction::Forwards, limit)?;
        if events.is_empty() {
            break;
        }
        for recorded in &events {
            let envelope = recorded.envelope();
            if envelope.position > up_to_position {
                return Ok(folded);
            }
            let event = super::runner::decode(envelope)?;
            let state = match folded.take() {
                Some((state, _)) => state,
                None => AggregateState::empty_for_event(&event),
            };
            folded = Some((evolve_state(state, &event), envelope.position));
            next = envelope.stream_version + 1;
        }
    }
    Ok(folded)
}

/// The row of the entity of `stream_id` as of `at` (see [`state_at`]), built by `row` from its
/// state and the position of its last event.
pub(crate) fn row_at<T>(
    log: &Log,
    stream_id: &str,
    current: Option<&Current>,
    at: u64,
    row: impl FnOnce(&AggregateState, u64) -> Option<T>,
) -> ProjectionResult<Option<T>> {
    Ok(state_at(log, stream_id, current, at)?.and_then(|(state, last)| row(&state, last)))
}

/// Most rows one list page returns (a larger `limit` is an invalid argument).
pub const MAX_PAGE_SIZE: usize = 500;
/// Page size when the caller gives none (limit 0).
pub const DEFAULT_PAGE_SIZE: usize = 100;
/// Most index entries one list page examines before it returns (possibly short) with a token,
/// so a selective filter or an old as-of position cannot make one query scan without bound.
pub const MAX_SCANNED_PER_PAGE: usize = 20_000;
/// Most bytes of rows one list page of commitments (or a relation's timeline) holds, as the
/// rows estimate themselves: a page ends early, with a token, once it reaches them. A
/// commitment keeps up to 500 reaffirmations and 500 assessments with their texts (~4.4 MB at
/// every limit), so 500 such rows would be far past a response's 32 MiB
/// (`api::server::MAX_RESPONSE_BYTES`); a page is at most this plus one row.
pub const MAX_PAGE_BYTES: usize = 4 * 1024 * 1024;

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

/// The bytes every token of one list starts with: index, value, 0x00.
pub(crate) fn token_prefix(index: u8, value: &str) -> Vec<u8> {
    let mut prefix = Vec::with_capacity(value.len() + 2);
    prefix.push(index);
    prefix.extend_from_slice(value.as_bytes());
    prefix.push(0);
    prefix
}

/// A page token: the list's prefix, then the sort key and id of the last entry examined (hex).
pub(crate) fn encode_token(prefix: &[u8], sort: i64, id: &ItemId) -> String {
    let mut bytes = prefix.to_vec();
    bytes.extend_from_slice(&sortable(sort));
    bytes.extend_from_slice(id);
    encode_hex(&bytes)
}

/// Lowercase hex of bytes.
pub(crate) fn encode_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// Decodes a page token's hex.
pub(crate) fn decode_token(token: &str) -> ProjectionResult<Vec<u8>> {
    if token.len() > MAX_PAGE_TOKEN_CHARS {
        return Err(invalid_token("too long"));
    }
    // The log's byte-wise hex reader: slicing the string two bytes at a time panicked on a
    // multi-byte character (found by the request fuzzer).
    crate::log::backup::from_hex(token).ok_or_else(|| invalid_token("malformed"))
}

pub(crate) fn invalid_token(reason: &str) -> ProjectionError {
    ProjectionError::InvalidArgument {
        field: "page_token",
        reason: reason.into(),
    }
}

pub(crate) fn decode_resume(prefix: &[u8], token: &str) -> ProjectionResult<(i64, ItemId)> {
    let bytes = decode_token(token)?;
    let Some(rest) = bytes.strip_prefix(prefix) else {
        return Err(invalid_token("belongs to another query"));
    };
    if rest.len() != 8 + 17 {
        return Err(invalid_token("malformed"));
    }
    let mut id = [0u8; 17];
    id.copy_from_slice(&rest[8..]);
    Ok((unsortable(rest), id))
}

/// The calendar month (`YYYY-MM`, UTC) of an instant in microseconds since the epoch.
pub fn month_of(micros: i64) -> String {
    let (year, month, _) = crate::time::Timestamp::from_unix_micros(micros).civil_date();
    format!("{year:04}-{month:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn read_model_vectors_grow_by_an_eighth_and_keep_every_element() {
        let mut vector: Vec<u64> = Vec::new();
        let mut growths = 0;
        for value in 0..100_000u64 {
            let capacity = vector.capacity();
            reserve_one(&mut vector);
            if vector.capacity() != capacity {
                growths += 1;
                // Grown by an eighth of its length (or MIN_GROWTH), not doubled.
                assert!(
                    vector.capacity() <= capacity + (capacity / GROWTH_SHARE).max(MIN_GROWTH),
                    "{capacity} -> {}",
                    vector.capacity()
                );
            }
            vector.push(value);
            assert!(vector.capacity() - vector.len() <= vector.len() / GROWTH_SHARE + MIN_GROWTH);
        }
        assert!(vector.iter().copied().eq(0..100_000u64));
        assert!(growths > 20, "{growths} growths: doubling would take 17");
    }

    #[test]
    fn a_page_token_that_is_not_hex_is_an_invalid_argument() {
        for token in ["Mኼ", "ኼ1", "zz", "abc", "é0"] {
            assert!(
                matches!(
                    decode_token(token),
                    Err(ProjectionError::InvalidArgument {
                        field: "page_token",
                        ..
                    })
                ),
                "{token:?}"
            );
        }
        assert_eq!(decode_token("00ff").unwrap(), vec![0x00, 0xff]);
    }

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
        let prefix = token_prefix(b'p', "LBY");
        let token = encode_token(&prefix, -7, &[3; 17]);
        assert_eq!(decode_resume(&prefix, &token).unwrap(), (-7, [3; 17]));
        assert!(decode_resume(&token_prefix(b'p', "FRA"), &token).is_err());
        assert!(decode_token("abc").is_err());
        assert!(decode_token(&"00".repeat(MAX_PAGE_TOKEN_CHARS)).is_err());
        assert_eq!(page_size(0).unwrap(), DEFAULT_PAGE_SIZE);
        assert_eq!(page_size(MAX_PAGE_SIZE).unwrap(), MAX_PAGE_SIZE);
        assert!(page_size(MAX_PAGE_SIZE + 1).is_err());
    }

    #[test]
    fn page_tokens_are_read_at_max_page_token_chars_and_refused_one_past() {
        let at_max = "0".repeat(MAX_PAGE_TOKEN_CHARS);
        assert_eq!(decode_token(&at_max).unwrap().len(), MAX_PAGE_TOKEN_CHARS / 2);
        match decode_token(&"0".repeat(MAX_PAGE_TOKEN_CHARS + 1)) {
            Err(ProjectionError::InvalidArgument { field, reason }) => {
                assert_eq!((field, reason.as_str()), ("page_token", "too long"))
            }
            other => panic!("expected a refused page token, got {other:?}"),
        }
    }

    #[test]
    fn tallies_answer_every_position_exactly() {
        let mut names = Interner::default();
        let a = names.intern("a");
        let b = names.intern("b");
        let mut tally = Tally::default();
        let mut expected = vec![BTreeMap::new()];
        let mut value: BTreeMap<u32, i64> = BTreeMap::new();
        for position in 1..=(3 * TALLY_CHECKPOINT_EVERY as u64 + 50) {
            let mut next = value.clone();
            *next.entry(a).or_insert(0) += (position % 3) as i64 - 1;
            if position % 7 == 0 {
                *next.entry(b).or_insert(0) += 2;
            }
            next.retain(|_, amount| *amount != 0);
            tally.change(position, &value, &next);
            value = next;
            expected.push(value.clone());
        }
        for (position, value) in expected.iter().enumerate() {
            assert_eq!(&tally.at(position as u64), value, "at {position}");
        }
        assert!(
            tally.checkpoints.len() >= 2,
            "positions past more than one full value"
        );
    }
}
