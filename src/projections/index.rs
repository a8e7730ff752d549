//! Index memberships of a read model: which items a list (an index and a value, such as "the
//! meetings of party FRA") holds, in (sort key, item id) order, each with the intervals of log
//! positions during which it held. Entries are never removed: a membership that ends is closed.
//!
//! Laid out for size (an index holds a few entries per item, millions in all): a list is a
//! sequence of sorted chunks of packed 41-byte [`Slot`]s (sort key, the last interval, item id),
//! at most [`CHUNK_SLOTS`] each, with the first place of every chunk in `firsts`: no node or
//! pointer per entry. An insert moves at most a chunk's slots; a full chunk splits in two, and
//! an entry past the list's end starts a new chunk instead (so a list that grows at its end,
//! as most do, keeps full chunks). A chunk's capacity grows by an eighth, not by doubling.
//!
//! A membership that held, ended and held again keeps its earlier intervals in `earlier` (rare;
//! a slot says it has some with the top bit of its `from`).
//!
//! Read models built aside (a rebuild from position 1, which no query sees until it is done)
//! defer their updates ([`Index::defer`]): each is pushed to a list, and every
//! [`MAX_DEFERRED_UPDATES`] (and when the build is done, [`Index::settle`]) they are sorted by
//! entry, stably so an entry's updates keep their log order, and merged into the lists in one
//! pass per list. Inserted one by one, a rebuild's entries land mid-list (sort keys are dates,
//! not log order): a search and a move of half a chunk each, most of a rebuild's applying time.

use std::ops::Bound;

use super::error::{ProjectionError, ProjectionResult};
use super::store::{
    decode_resume, encode_token, page_size, push_blocked, sortable, take_bytes, token_prefix, u32_at, u64_at,
    unsortable, Changed, Dirty, Entry, Interner, ItemId, Map, Snapshot, MAX_PAGE_BYTES, MAX_SCANNED_PER_PAGE,
    OPEN,
};

/// The most slots a chunk holds (10 KiB of slots): an insert moves at most this many, a search
/// halves at most this many after the list's `firsts`.
pub const CHUNK_SLOTS: usize = 256;
/// The bit of a slot's `from` that says earlier intervals are kept in `earlier` (log positions
/// stay far below it).
const EARLIER: u64 = 1 << 63;
/// The most updates a deferring index holds before it merges them into its lists (48 bytes
/// each: 24 MiB).
pub const MAX_DEFERRED_UPDATES: usize = 1 << 19;

const _: () = assert!(
    std::mem::size_of::<Deferred>() <= 48,
    "a deferred update is small"
);

const _: () = assert!(
    CHUNK_SLOTS >= 2,
    "a chunk that outgrows it splits into two non-empty halves"
);
const _: () = assert!(std::mem::size_of::<Slot>() == 41, "a slot is packed");

/// One entry of an index: the list (index, value) and the entry's place in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
struct IndexKey {
    index: u8,
    value: u32,
    sort: i64,
    id: ItemId,
}

impl IndexKey {
    fn list(&self) -> (u8, u32) {
        (self.index, self.value)
    }

    fn order(&self) -> Order {
        order(self.sort, &self.id)
    }

    /// The key at `place` of `list`.
    fn at((index, value): (u8, u32), (sort, id): (i64, ItemId)) -> IndexKey {
        IndexKey {
            index,
            value,
            sort,
            id,
        }
    }
}

/// A place as numbers that compare like it (sort key, the id's kind byte, the rest of the id
/// big-endian): a search compares these without a byte-wise comparison of ids.
type Order = (i64, u8, u128);

fn order(sort: i64, id: &ItemId) -> Order {
    let mut rest = [0u8; 16];
    rest.copy_from_slice(&id[1..]);
    (sort, id[0], u128::from_be_bytes(rest))
}

/// The last place a list can hold.
const LAST_PLACE: (i64, ItemId) = (i64::MAX, [0xFF; 17]);
/// The first place a list can hold.
const FIRST_PLACE: (i64, ItemId) = (i64::MIN, [0; 17]);

/// An entry in a list: its place and its last interval, packed (41 bytes).
#[repr(C, packed)]
#[derive(Clone, Copy)]
struct Slot {
    sort: i64,
    /// The last interval's start, with [`EARLIER`] set when earlier intervals exist.
    from: u64,
    to: u64,
    id: ItemId,
}

impl Slot {
    fn place(&self) -> (i64, ItemId) {
        (self.sort, self.id)
    }

    fn order(&self) -> Order {
        order(self.sort, &self.id)
    }

    /// Whether the slot's place is before `at` (`self.order() < at`, reading the rest of the
    /// place only when the sort keys are equal: a search mostly decides on them).
    fn precedes(&self, at: Order) -> bool {
        let sort = self.sort;
        sort < at.0 || (sort == at.0 && self.order() < at)
    }

    fn last(&self) -> (u64, u64) {
        (self.from & !EARLIER, self.to)
    }

    fn has_earlier(&self) -> bool {
        self.from & EARLIER != 0
    }

    /// The slot of `key` held during `intervals` (the earlier ones go to `earlier`).
    fn new(key: IndexKey, intervals: &[(u64, u64)], earlier: &mut Map<IndexKey, Vec<(u64, u64)>>) -> Slot {
        let (&(from, to), before) = intervals.split_last().expect("a membership has an interval");
        assert!(
            from < EARLIER && intervals.iter().all(|&(f, t)| f < t),
            "intervals are positions"
        );
        let mut slot = Slot {
            sort: key.sort,
            from,
            to,
            id: key.id,
        };
        if !before.is_empty() {
            earlier.insert(key, before.to_vec());
            slot.from |= EARLIER;
        }
        slot
    }
}

/// One update of an entry: its interval opened, or closed, at a log position.
#[derive(Clone, Copy)]
struct Deferred {
    key: IndexKey,
    position: u64,
    open: bool,
}

/// The slot of `key` after `updates` (in log order), from `slot` (None: not an entry yet). An
/// open of a closed entry keeps its last interval in `earlier`; a close of an entry that is not
/// there, or not open, changes nothing. None: still not an entry.
fn replay(
    earlier: &mut Map<IndexKey, Vec<(u64, u64)>>,
    key: IndexKey,
    mut slot: Option<Slot>,
    updates: &[Deferred],
) -> Option<Slot> {
    for update in updates {
        match (&mut slot, update.open) {
            (None, true) => slot = Some(Slot::new(key, &[(update.position, OPEN)], earlier)),
            (Some(held), true) if held.to != OPEN => {
                earlier.entry(key).or_default().push(held.last());
                *held = Slot {
                    from: update.position | EARLIER,
                    to: OPEN,
                    ..*held
                };
            }
            (Some(held), false) if held.to == OPEN => {
                assert!(
                    held.last().0 < update.position,
                    "an interval closes after it opens"
                );
                held.to = update.position;
            }
            _ => {}
        }
    }
    slot
}

/// The intervals of one entry: the earlier ones and the last.
#[derive(Clone, Copy)]
struct Held<'a> {
    before: &'a [(u64, u64)],
    last: (u64, u64),
}

impl Held<'_> {
    fn contains(&self, at: u64) -> bool {
        let within = |&(from, to): &(u64, u64)| from <= at && at < to;
        within(&self.last) || self.before.iter().any(within)
    }

    /// The intervals as (from, to) big-endian pairs (the snapshot's value).
    fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write(&mut bytes);
        bytes
    }

    /// Appends [`Held::bytes`] to `out`.
    fn write(&self, out: &mut Vec<u8>) {
        for (from, to) in self.before.iter().chain(std::iter::once(&self.last)) {
            out.extend_from_slice(&from.to_be_bytes());
            out.extend_from_slice(&to.to_be_bytes());
        }
    }
}

/// A slot's bytes in a snapshot's chunk record ([`Index::save_chunks`]).
const SLOT_BYTES: usize = 8 + 8 + 8 + 17;
const _: () = assert!(SLOT_BYTES == std::mem::size_of::<Slot>());

fn malformed_entry() -> ProjectionError {
    ProjectionError::DataLoss("read-model snapshot: malformed index entry".into())
}

/// `count` (from, to) big-endian pairs from `reader` (unchecked: see [`valid_intervals`]).
fn take_intervals(reader: &mut &[u8], count: usize) -> Option<Vec<(u64, u64)>> {
    let bytes = take_bytes(reader, count.checked_mul(16)?)?;
    let pairs = bytes.chunks_exact(16);
    Some(
        pairs
            .map(|pair| (u64_at(&pair[..8]), u64_at(&pair[8..])))
            .collect(),
    )
}

/// Whether `intervals` can be an entry's: at least one, each non-empty and below
/// [`EARLIER`], in order without overlap.
fn valid_intervals(intervals: &[(u64, u64)]) -> bool {
    !intervals.is_empty()
        && intervals.iter().all(|(from, to)| from < to && *from < EARLIER)
        && intervals.windows(2).all(|pair| pair[0].1 <= pair[1].0)
}

/// Where a slot is in a list: its chunk and its index in the chunk.
type At = (usize, usize);

/// One list's chunks (each sorted, non-empty, every one before the next) and the place of each
/// chunk's first slot.
#[derive(Default)]
struct List {
    chunks: Vec<Vec<Slot>>,
    firsts: Vec<Order>,
}

impl List {
    /// Where the first slot whose place is not `before` is (or would go), for a `before` true
    /// of a prefix of the places: the last chunk whose first place is `before` holds it, or its
    /// end does (or the first chunk, when none is).
    fn first_where(&self, before: impl Fn(Order) -> bool) -> At {
        let chunk = self
            .firsts
            .partition_point(|&first| before(first))
            .saturating_sub(1);
        let index = self
            .chunks
            .get(chunk)
            .map_or(0, |slots| slots.partition_point(|slot| before(slot.order())));
        (chunk, index)
    }

    /// Where `at` is (`Ok`), or where it would go (`Err`). The last chunk whose first place is
    /// before `at` is searched; the first slot at or after `at` may then be the next chunk's
    /// first, past the end of the chunk searched.
    fn find(&self, at: Order) -> Result<At, At> {
        let chunk = self.firsts.partition_point(|first| *first < at).saturating_sub(1);
        let index = self
            .chunks
            .get(chunk)
            .map_or(0, |slots| slots.partition_point(|slot| slot.precedes(at)));
        let next = match self.chunks.get(chunk) {
            Some(slots) if index == slots.len() && chunk + 1 < self.chunks.len() => (chunk + 1, 0),
            _ => (chunk, index),
        };
        match self.chunks.get(next.0).and_then(|slots| slots.get(next.1)) {
            Some(slot) if slot.order() == at => Ok(next),
            _ => Err((chunk, index)),
        }
    }

    fn slot_mut(&mut self, (chunk, index): At) -> &mut Slot {
        &mut self.chunks[chunk][index]
    }

    /// Puts `slot` at `at` (from [`List::find`]), splitting a chunk that outgrows
    /// [`CHUNK_SLOTS`]; past the end of a full last chunk it starts a new one.
    fn insert(&mut self, (chunk, index): At, slot: Slot) {
        let past_end = chunk + 1 >= self.chunks.len()
            && self
                .chunks
                .get(chunk)
                .is_none_or(|slots| index == slots.len() && slots.len() == CHUNK_SLOTS);
        if past_end {
            self.chunks.push(vec![slot]);
            self.firsts.push(slot.order());
            return;
        }
        let slots = &mut self.chunks[chunk];
        super::store::reserve_one(slots);
        slots.insert(index, slot);
        if index == 0 {
            self.firsts[chunk] = slot.order();
        }
        if slots.len() > CHUNK_SLOTS {
            let right = slots.split_off(slots.len() / 2);
            slots.shrink_to_fit();
            self.firsts.insert(chunk + 1, right[0].order());
            self.chunks.insert(chunk + 1, right);
        }
    }

    /// Appends `slot`, which follows every slot held, filling chunks to [`CHUNK_SLOTS`].
    fn push(&mut self, slot: Slot) {
        if let Some(last) = self.chunks.last().and_then(|slots| slots.last()) {
            assert!(last.order() < slot.order(), "a list is built in order");
        }
        if push_blocked(&mut self.chunks, slot, CHUNK_SLOTS) {
            self.firsts.push(slot.order());
        }
    }

    /// The slots from `at` on, in order.
    fn from(&self, (chunk, index): At) -> impl Iterator<Item = &Slot> + '_ {
        let chunks = self.chunks.get(chunk..).unwrap_or(&[]);
        let skip = chunks.first().map_or(0, |first| index.min(first.len()));
        chunks.iter().flatten().skip(skip)
    }
}

/// Index memberships of one read model, ordered by (index, value, sort key, item id), each with
/// its validity intervals (the module's text says how they are kept).
#[derive(Default)]
pub(crate) struct Index {
    lists: Map<(u8, u32), List>,
    earlier: Map<IndexKey, Vec<(u64, u64)>>,
    values: Interner,
    /// Entries changed since the last snapshot.
    dirty: Dirty<IndexKey>,
    /// Updates not applied yet, in log order, while the index defers them (see the module's
    /// text).
    deferred: Option<Vec<Deferred>>,
}

impl Index {
    /// Records that item `id` had the memberships `old` before `position` and has `new` from
    /// it on: the ones it lost are closed at `position`, the ones it gained opened.
    pub(crate) fn update(&mut self, id: ItemId, old: &[Entry], new: &[Entry], position: u64) {
        for entry in old.iter().filter(|entry| !new.contains(entry)) {
            let Some(value) = self.values.get(&entry.1) else {
                continue;
            };
            let key = IndexKey::at((entry.0, value), (entry.2, id));
            self.apply(Deferred {
                key,
                position,
                open: false,
            });
        }
        for entry in new.iter().filter(|entry| !old.contains(entry)) {
            let key = IndexKey::at((entry.0, self.values.intern(&entry.1)), (entry.2, id));
            self.apply(Deferred {
                key,
                position,
                open: true,
            });
        }
    }

    /// Applies `update` at once, or defers it (merging every deferred update once there are
    /// [`MAX_DEFERRED_UPDATES`]).
    fn apply(&mut self, update: Deferred) {
        if let Some(deferred) = &mut self.deferred {
            deferred.push(update);
            if deferred.len() >= MAX_DEFERRED_UPDATES {
                self.merge_deferred();
            }
            return;
        }
        let key = update.key;
        let list = self.lists.entry(key.list()).or_default();
        let updated = match list.find(key.order()) {
            Ok(at) => {
                let slot = replay(&mut self.earlier, key, Some(*list.slot_mut(at)), &[update]);
                *list.slot_mut(at) = slot.expect("an entry stays one");
                true
            }
            Err(at) => match replay(&mut self.earlier, key, None, &[update]) {
                Some(slot) => {
                    list.insert(at, slot);
                    true
                }
                None => false,
            },
        };
        if list.chunks.is_empty() {
            self.lists.remove(&key.list());
        }
        if updated {
            self.dirty.mark(key);
        }
    }

    /// From now on, updates are held back and merged in batches (for read models no query
    /// reads until [`Index::settle`]).
    pub(crate) fn defer(&mut self) {
        self.deferred.get_or_insert_with(Vec::new);
    }

    /// Merges every deferred update; later updates apply at once again.
    pub(crate) fn settle(&mut self) {
        self.merge_deferred();
        self.deferred = None;
    }

    /// Updates deferred and not merged yet.
    pub(crate) fn deferred_updates(&self) -> usize {
        self.deferred.as_ref().map_or(0, Vec::len)
    }

    /// Whether no update waits (reads need it).
    fn settled(&self) -> bool {
        self.deferred.as_ref().is_none_or(Vec::is_empty)
    }

    /// Sorts the deferred updates by entry (stably: an entry's stay in log order) and merges
    /// them into their lists, one pass per list.
    fn merge_deferred(&mut self) {
        let Some(deferred) = &mut self.deferred else {
            return;
        };
        let mut updates = std::mem::take(deferred);
        updates.sort_by_key(|update| (update.key.list(), update.key.order()));
        for run in updates.chunk_by(|a, b| a.key.list() == b.key.list()) {
            self.merge_list(run);
        }
    }

    /// Rebuilds one list from its slots and `run` (its updates, sorted by entry).
    fn merge_list(&mut self, run: &[Deferred]) {
        let of = run[0].key.list();
        let old = self.lists.remove(&of).unwrap_or_default();
        let mut slots = old.chunks.into_iter().flatten().peekable();
        let mut merged = List::default();
        for updates in run.chunk_by(|a, b| a.key == b.key) {
            let key = updates[0].key;
            let at = key.order();
            while let Some(slot) = slots.next_if(|slot| slot.precedes(at)) {
                merged.push(slot);
            }
            let found = slots.next_if(|slot| slot.order() == at);
            if let Some(slot) = replay(&mut self.earlier, key, found, updates) {
                merged.push(slot);
                self.dirty.mark(key);
            }
        }
        slots.for_each(|slot| merged.push(slot));
        // Every chunk but the last is full; the last keeps no room it does not use (most
        // lists are short).
        if let Some(last) = merged.chunks.last_mut() {
            last.shrink_to_fit();
            self.lists.insert(of, merged);
        }
    }

    /// Sets `key`'s intervals (a snapshot's record), adding the entry if it is new.
    fn set(&mut self, key: IndexKey, intervals: &[(u64, u64)]) {
        assert!(self.settled(), "a restore does not meet deferred updates");
        let list = self.lists.entry(key.list()).or_default();
        match list.find(key.order()) {
            Ok(at) => {
                self.earlier.remove(&key);
                *list.slot_mut(at) = Slot::new(key, intervals, &mut self.earlier);
            }
            Err(at) => list.insert(at, Slot::new(key, intervals, &mut self.earlier)),
        }
    }

    /// The intervals of `key`, if it is an entry.
    fn held(&self, key: &IndexKey) -> Option<Held<'_>> {
        assert!(self.settled(), "an index is read once its updates are merged");
        let list = self.lists.get(&key.list())?;
        let (chunk, index) = list.find(key.order()).ok()?;
        Some(self.held_in_slot(*key, &list.chunks[chunk][index]))
    }

    fn held_in_slot(&self, key: IndexKey, slot: &Slot) -> Held<'_> {
        let before = match slot.has_earlier() {
            true => self
                .earlier
                .get(&key)
                .expect("a flagged slot has earlier intervals"),
            false => &[][..],
        };
        Held {
            before,
            last: slot.last(),
        }
    }

    /// The entries of `list` from `start` to `end` (inclusive) in order.
    fn entries(
        &self,
        list: (u8, u32),
        start: Bound<(i64, ItemId)>,
        end: (i64, ItemId),
    ) -> impl Iterator<Item = (IndexKey, Held<'_>)> + '_ {
        assert!(self.settled(), "an index is read once its updates are merged");
        let slots = self.lists.get(&list).map(|held| {
            let at = match start {
                Bound::Included((sort, id)) => {
                    let start = order(sort, &id);
                    held.first_where(|order| order < start)
                }
                Bound::Excluded((sort, id)) => {
                    let start = order(sort, &id);
                    held.first_where(|order| order <= start)
                }
                Bound::Unbounded => (0, 0),
            };
            held.from(at)
        });
        let last = order(end.0, &end.1);
        slots
            .into_iter()
            .flatten()
            .take_while(move |slot| slot.order() <= last)
            .map(move |slot| {
                let key = IndexKey::at(list, slot.place());
                (key, self.held_in_slot(key, slot))
            })
    }

    /// Every entry, list by list.
    fn every(&self) -> impl Iterator<Item = (IndexKey, Held<'_>)> + '_ {
        self.lists
            .keys()
            .flat_map(|&list| self.entries(list, Bound::Unbounded, LAST_PLACE))
    }

    fn key_bytes(&self, key: &IndexKey) -> Vec<u8> {
        let mut bytes = Vec::new();
        self.write_key(key, &mut bytes);
        bytes
    }

    /// Appends [`Index::key_bytes`] to `out`: index value 0x00 sort(8) id(17).
    fn write_key(&self, key: &IndexKey, out: &mut Vec<u8>) {
        self.write_list((key.index, key.value), out);
        out.extend_from_slice(&sortable(key.sort));
        out.extend_from_slice(&key.id);
    }

    /// Appends what every key of `list`'s records starts with: index value 0x00.
    fn write_list(&self, (index, value): (u8, u32), out: &mut Vec<u8>) {
        out.push(index);
        out.extend_from_slice(self.values.name(value).as_bytes());
        out.push(0);
    }

    /// Writes the entries changed since the last snapshot, each put from two buffers made
    /// once: `prefix` index value 0x00 sort(8) id(17) -> the intervals as (from, to)
    /// big-endian pairs. Everything (a base) is written a list chunk at a time instead
    /// ([`Index::save_chunks`]).
    pub(crate) fn save(&mut self, out: &mut Snapshot<'_>, prefix: &[u8]) {
        let keys = match self.dirty.take() {
            Changed::All => return self.save_chunks(out, prefix),
            Changed::Keys(keys) => keys,
        };
        let (mut key_bytes, mut value) = (Vec::new(), Vec::new());
        for key in keys {
            key_bytes.clear();
            key_bytes.extend_from_slice(prefix);
            self.write_key(&key, &mut key_bytes);
            value.clear();
            let held = self.held(&key).expect("a changed entry is held");
            held.write(&mut value);
            out.put(&key_bytes, &value);
        }
    }

    /// Writes every list, one record per chunk: `prefix` index value 0x00 ordinal(4) -> the
    /// slot count (u32), each slot as sort(8) from(8, with [`EARLIER`]) to(8) id(17), then
    /// for each slot flagged [`EARLIER`], in order, the count (u32) and (from, to) pairs of its
    /// earlier intervals; all big-endian. A base holds millions of entries: one record each
    /// was most of the model's lock hold after a rebuild (docs/benchmarks.md 000x).
    fn save_chunks(&self, out: &mut Snapshot<'_>, prefix: &[u8]) {
        let (mut key_bytes, mut value) = (Vec::new(), Vec::new());
        for (&of, list) in &self.lists {
            for (ordinal, slots) in list.chunks.iter().enumerate() {
                key_bytes.clear();
                key_bytes.extend_from_slice(prefix);
                self.write_list(of, &mut key_bytes);
                key_bytes.extend_from_slice(&(ordinal as u32).to_be_bytes());
                value.clear();
                value.extend_from_slice(&(slots.len() as u32).to_be_bytes());
                for slot in slots {
                    let (sort, from, to, id) = (slot.sort, slot.from, slot.to, slot.id);
                    value.extend_from_slice(&sortable(sort));
                    value.extend_from_slice(&from.to_be_bytes());
                    value.extend_from_slice(&to.to_be_bytes());
                    value.extend_from_slice(&id);
                }
                for slot in slots.iter().filter(|slot| slot.has_earlier()) {
                    let key = IndexKey::at(of, slot.place());
                    let earlier = &self.earlier[&key];
                    value.extend_from_slice(&(earlier.len() as u32).to_be_bytes());
                    for (from, to) in earlier {
                        value.extend_from_slice(&from.to_be_bytes());
                        value.extend_from_slice(&to.to_be_bytes());
                    }
                }
                out.put(&key_bytes, &value);
            }
        }
    }

    /// Marks every entry unsaved.
    pub(crate) fn unsave(&mut self) {
        self.dirty.mark_all();
    }

    /// Restores one record written by [`Index::save`] (`key` without its prefix): an entry, or
    /// a list's chunk.
    pub(crate) fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        let (&index, rest) = key.split_first().ok_or_else(malformed_entry)?;
        let end = rest
            .iter()
            .position(|byte| *byte == 0)
            .ok_or_else(malformed_entry)?;
        let name = std::str::from_utf8(&rest[..end]).map_err(|_| malformed_entry())?;
        let rest = &rest[end + 1..];
        let list = (index, self.values.intern(name));
        match rest.len() {
            4 => return self.restore_chunk(list, value),
            25 => {}
            _ => return Err(malformed_entry()),
        }
        let mut reader = value;
        let intervals = take_intervals(&mut reader, value.len() / 16).ok_or_else(malformed_entry)?;
        if !reader.is_empty() || !valid_intervals(&intervals) {
            return Err(malformed_entry());
        }
        let mut id = [0u8; 17];
        id.copy_from_slice(&rest[8..]);
        self.set(IndexKey::at(list, (unsortable(rest), id)), &intervals);
        Ok(())
    }

    /// Once every record is restored: each list's last chunk keeps no room it does not use
    /// (restored chunks are filled whole, as a merge fills them).
    pub(crate) fn finish_restore(&mut self) {
        for list in self.lists.values_mut() {
            if let Some(last) = list.chunks.last_mut() {
                last.shrink_to_fit();
            }
        }
    }

    /// Restores a chunk of `list` written by [`Index::save_chunks`]: appended when it follows
    /// the list's last entry (as a base's chunks do), else set entry by entry.
    fn restore_chunk(&mut self, list: (u8, u32), value: &[u8]) -> ProjectionResult<()> {
        let mut reader = value;
        let count = take_bytes(&mut reader, 4).map(|bytes| u32_at(bytes) as usize);
        let count = count.filter(|count| (1..=CHUNK_SLOTS).contains(count));
        let slots = count
            .and_then(|count| take_bytes(&mut reader, count * SLOT_BYTES))
            .ok_or_else(malformed_entry)?;
        let mut entries = Vec::with_capacity(slots.len() / SLOT_BYTES);
        for bytes in slots.chunks_exact(SLOT_BYTES) {
            let (from, to) = (u64_at(&bytes[8..16]), u64_at(&bytes[16..24]));
            let mut intervals = match from & EARLIER {
                0 => Vec::new(),
                _ => {
                    let count = take_bytes(&mut reader, 4).map(|bytes| u32_at(bytes) as usize);
                    let count = count.filter(|count| *count >= 1).ok_or_else(malformed_entry)?;
                    take_intervals(&mut reader, count).ok_or_else(malformed_entry)?
                }
            };
            intervals.push((from & !EARLIER, to));
            let mut id = [0u8; 17];
            id.copy_from_slice(&bytes[24..]);
            entries.push((IndexKey::at(list, (unsortable(bytes), id)), intervals));
        }
        let in_order = entries
            .windows(2)
            .all(|pair| pair[0].0.order() < pair[1].0.order());
        if !reader.is_empty() || !in_order || !entries.iter().all(|(_, held)| valid_intervals(held)) {
            return Err(malformed_entry());
        }
        let held = self.lists.entry(list).or_default();
        let last = held.chunks.last().and_then(|slots| slots.last()).map(Slot::order);
        if last.is_none_or(|last| last < entries[0].0.order()) {
            for (key, intervals) in &entries {
                held.push(Slot::new(*key, intervals, &mut self.earlier));
            }
        } else {
            for (key, intervals) in &entries {
                self.set(*key, intervals);
            }
        }
        Ok(())
    }

    /// One page of the items of (`index`, `value`) with sort keys in `from..=to` whose
    /// membership holds at `at`, resuming after `token`. `accept(id, sort)` builds the item (or
    /// refuses it). Returns the items and the token of the next page.
    #[allow(clippy::too_many_arguments)] // an index value, a range, a position, a page, a builder
    pub(crate) fn scan<T>(
        &self,
        index: u8,
        value: &str,
        range: (i64, i64),
        at: u64,
        token: Option<&str>,
        limit: usize,
        accept: impl FnMut(&ItemId, i64) -> ProjectionResult<Option<T>>,
    ) -> ProjectionResult<(Vec<T>, Option<String>)> {
        self.scan_weighed(index, value, range, at, token, limit, accept, |_| 0)
    }

    /// [`Index::scan`] for items whose size varies widely: `weigh` gives an item's approximate
    /// encoded bytes, and the page ends (with a token) once its items reach
    /// [`MAX_PAGE_BYTES`], whatever the page size asked.
    #[allow(clippy::too_many_arguments)] // an index value, a range, a position, a page, a builder
    pub(crate) fn scan_weighed<T>(
        &self,
        index: u8,
        value: &str,
        (from, to): (i64, i64),
        at: u64,
        token: Option<&str>,
        limit: usize,
        mut accept: impl FnMut(&ItemId, i64) -> ProjectionResult<Option<T>>,
        weigh: impl Fn(&T) -> usize,
    ) -> ProjectionResult<(Vec<T>, Option<String>)> {
        let limit = page_size(limit)?;
        let prefix = token_prefix(index, value);
        let resume = match token {
            Some(token) => Some(decode_resume(&prefix, token)?),
            None => None,
        };
        if from > to {
            return Ok((Vec::new(), None));
        }
        let Some(value_id) = self.values.get(value) else {
            return Ok((Vec::new(), None));
        };
        let mut start = Bound::Included((from, FIRST_PLACE.1));
        if let Some(place) = resume.filter(|&place| place >= (from, FIRST_PLACE.1)) {
            start = Bound::Excluded(place);
        }
        let end = (to, LAST_PLACE.1);
        if matches!(start, Bound::Excluded(place) if place >= end) {
            return Ok((Vec::new(), None));
        }
        let (mut items, mut bytes) = (Vec::new(), 0);
        for (scanned, (key, held)) in self.entries((index, value_id), start, end).enumerate() {
            if held.contains(at) {
                if let Some(item) = accept(&key.id, key.sort)? {
                    bytes += weigh(&item);
                    items.push(item);
                }
            }
            if items.len() == limit || scanned + 1 == MAX_SCANNED_PER_PAGE || bytes >= MAX_PAGE_BYTES {
                return Ok((items, Some(encode_token(&prefix, key.sort, &key.id))));
            }
        }
        Ok((items, None))
    }

    /// Every entry as (key, value) bytes, in key order: `I` index value 0x00 sort(8) id(17) ->
    /// the intervals as (from, to) big-endian pairs.
    pub(crate) fn dump(&self, out: &mut Vec<(Vec<u8>, Vec<u8>)>) {
        let mut entries: Vec<(Vec<u8>, Vec<u8>)> = self
            .every()
            .map(|(key, held)| ([&b"I"[..], &self.key_bytes(&key)].concat(), held.bytes()))
            .collect();
        entries.sort();
        out.extend(entries);
    }

    /// Asserts what the chunks keep true: non-empty, at most [`CHUNK_SLOTS`], strictly ordered
    /// within and across chunks, `firsts` their first places; the earlier flags.
    #[cfg(test)]
    fn check(&self) {
        for (&of, list) in &self.lists {
            assert_eq!(list.chunks.len(), list.firsts.len());
            assert!(list
                .chunks
                .iter()
                .all(|slots| !slots.is_empty() && slots.len() <= CHUNK_SLOTS));
            let firsts: Vec<Order> = list.chunks.iter().map(|slots| slots[0].order()).collect();
            assert_eq!(list.firsts, firsts);
            let all: Vec<Order> = list.chunks.iter().flatten().map(Slot::order).collect();
            assert!(all.windows(2).all(|pair| pair[0] < pair[1]));
            for slot in list.chunks.iter().flatten() {
                let key = IndexKey::at(of, slot.place());
                assert_eq!(slot.has_earlier(), self.earlier.contains_key(&key));
            }
        }
    }

    /// Entries held (one per membership ever gained).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lists
            .values()
            .map(|list| list.chunks.iter().map(Vec::len).sum::<usize>())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn listed(index: &Index, value: &str, at: u64) -> Vec<(i64, u8)> {
        index
            .scan(b'x', value, (i64::MIN, i64::MAX), at, None, 0, |id, sort| {
                Ok(Some((sort, id[0])))
            })
            .unwrap()
            .0
    }

    #[test]
    fn index_memberships_hold_exactly_in_their_intervals() {
        let mut index = Index::default();
        let entry = |value: &str, sort| (b'x', value.to_owned(), sort);
        // Item 1 joins "a" at 10 (sort 5), moves to sort 6 at 20, leaves "a" for "b" at 30,
        // comes back to "a" (sort 6) at 40.
        index.update([1; 17], &[], &[entry("a", 5)], 10);
        index.update([1; 17], &[entry("a", 5)], &[entry("a", 6)], 20);
        index.update([1; 17], &[entry("a", 6)], &[entry("b", 6)], 30);
        index.update([1; 17], &[entry("b", 6)], &[entry("a", 6)], 40);
        assert_eq!(listed(&index, "a", 9), vec![]);
        assert_eq!(listed(&index, "a", 10), vec![(5, 1)]);
        assert_eq!(listed(&index, "a", 19), vec![(5, 1)]);
        assert_eq!(listed(&index, "a", 20), vec![(6, 1)]);
        assert_eq!(listed(&index, "a", 30), vec![]);
        assert_eq!(listed(&index, "b", 35), vec![(6, 1)]);
        assert_eq!(listed(&index, "b", 40), vec![]);
        assert_eq!(listed(&index, "a", 40), vec![(6, 1)]);
        assert_eq!(listed(&index, "a", OPEN - 1), vec![(6, 1)]);
        assert_eq!(index.len(), 3);
        // Restored from its own records, the index holds the same intervals, the regained
        // membership's earlier one included.
        let mut dumped = Vec::new();
        index.dump(&mut dumped);
        let mut restored = Index::default();
        for (key, value) in &dumped {
            restored.restore(&key[1..], value).unwrap();
        }
        let mut again = Vec::new();
        restored.dump(&mut again);
        assert_eq!(again, dumped);
        for at in [9, 10, 19, 20, 29, 30, 35, 40, OPEN - 1] {
            assert_eq!(listed(&restored, "a", at), listed(&index, "a", at), "a at {at}");
            assert_eq!(listed(&restored, "b", at), listed(&index, "b", at), "b at {at}");
        }
    }

    /// An entry of the naive index: (index, value, sort key, item id).
    type NaiveKey = (u8, String, i64, ItemId);

    /// The index kept naively: every entry with all its intervals in one ordered map.
    #[derive(Default)]
    struct Reference {
        entries: BTreeMap<NaiveKey, Vec<(u64, u64)>>,
    }

    impl Reference {
        fn update(&mut self, id: ItemId, old: &[Entry], new: &[Entry], position: u64) {
            for (index, value, sort) in old.iter().filter(|entry| !new.contains(entry)) {
                let key = (*index, value.clone(), *sort, id);
                let last = self
                    .entries
                    .get_mut(&key)
                    .and_then(|intervals| intervals.last_mut());
                if let Some(last) = last.filter(|last| last.1 == OPEN) {
                    last.1 = position;
                }
            }
            for (index, value, sort) in new.iter().filter(|entry| !old.contains(entry)) {
                let intervals = self
                    .entries
                    .entry((*index, value.clone(), *sort, id))
                    .or_default();
                if intervals.last().is_none_or(|last| last.1 != OPEN) {
                    intervals.push((position, OPEN));
                }
            }
        }

        fn listed(&self, value: &str, at: u64) -> Vec<(i64, ItemId)> {
            let holds = |intervals: &Vec<(u64, u64)>| intervals.iter().any(|&(f, t)| f <= at && at < t);
            let entries = self
                .entries
                .iter()
                .filter(|((_, v, _, _), intervals)| v == value && holds(intervals));
            entries.map(|((_, _, sort, id), _)| (*sort, *id)).collect()
        }
    }

    /// Every item of `value` held at `at`, read in pages of 7 through page tokens.
    fn paged(index: &Index, value: &str, at: u64) -> Vec<(i64, ItemId)> {
        let (mut all, mut token) = (Vec::new(), None::<String>);
        loop {
            let accept = |id: &ItemId, sort| Ok(Some((sort, *id)));
            let range = (i64::MIN, i64::MAX);
            let (items, next) = index
                .scan(b'x', value, range, at, token.as_deref(), 7, accept)
                .unwrap();
            all.extend(items);
            match next {
                Some(next) => token = Some(next),
                None => return all,
            }
        }
    }

    /// A small deterministic generator: each call gives a number below its argument.
    fn generator(seed: u64) -> impl FnMut(u64) -> u64 {
        let mut rng = seed;
        move |below| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % below
        }
    }

    #[test]
    fn deferred_updates_merged_in_batches_equal_updates_applied_at_once() {
        let mut next = generator(0x9E37_79B9_7F4A_7C15u64);
        let ids: Vec<ItemId> = (0..800u64)
            .map(|n| {
                let mut id = [0u8; 17];
                id[0] = (n % 3) as u8;
                id[1..9].copy_from_slice(&n.wrapping_mul(0x2545_F491_4F6C_DD1D).to_be_bytes());
                id
            })
            .collect();
        let (mut at_once, mut deferred) = (Index::default(), Index::default());
        deferred.defer();
        let mut current: Vec<Vec<Entry>> = vec![Vec::new(); ids.len()];
        let (mut merges, mut last_merge) = (0, 0);
        for position in 1..=6_000u64 {
            let item = next(ids.len() as u64) as usize;
            // Few sort keys, few values: entries close, reopen and close again between merges.
            let mut new: Vec<Entry> = Vec::new();
            if next(4) != 0 {
                new.push((b'x', "all".into(), next(30) as i64));
            }
            if next(2) == 0 {
                new.push((b'y', ["a", "b", "c"][next(3) as usize].into(), next(3) as i64));
            }
            at_once.update(ids[item], &current[item], &new, position);
            deferred.update(ids[item], &current[item], &new, position);
            current[item] = new;
            // Merges after 1 to ~1,500 updates; the lists grow between them.
            if next(400) == 0 || position == 6_000 {
                deferred.merge_deferred();
                deferred.check();
                merges += 1;
                let (mut ours, mut theirs) = (Vec::new(), Vec::new());
                deferred.dump(&mut ours);
                at_once.dump(&mut theirs);
                assert_eq!(
                    ours, theirs,
                    "after the merge at {position} (the last at {last_merge})"
                );
                for value in ["all", "a", "b"] {
                    let of = if value == "all" { b'x' } else { b'y' };
                    for at in [1, position / 2, position - 1, position, OPEN - 1] {
                        let list = |index: &Index| {
                            let accept = |id: &ItemId, sort| Ok(Some((sort, *id)));
                            index
                                .scan(of, value, (i64::MIN, i64::MAX), at, None, 0, accept)
                                .unwrap()
                                .0
                        };
                        assert_eq!(list(&deferred), list(&at_once), "{value} at {at}");
                    }
                }
                last_merge = position;
            }
        }
        assert!(merges > 5, "several merges into lists already held");
        assert!(!deferred.earlier.is_empty(), "memberships were regained");
        deferred.settle();
        assert!(deferred.deferred.is_none());
        // Settled, it applies at once again, like the other.
        at_once.update(ids[0], &current[0], &[], 6_001);
        deferred.update(ids[0], &current[0], &[], 6_001);
        let (mut ours, mut theirs) = (Vec::new(), Vec::new());
        deferred.dump(&mut ours);
        at_once.dump(&mut theirs);
        assert_eq!(ours, theirs);
    }

    #[test]
    fn a_deferring_index_merges_once_it_holds_max_deferred_updates() {
        let mut index = Index::default();
        index.defer();
        let entries = |n: u64| -> Vec<Entry> {
            vec![
                (b'x', "all".into(), n as i64),
                (b'y', "kind".into(), (n % 7) as i64),
            ]
        };
        let id = |n: u64| {
            let mut id = [0u8; 17];
            id[1..9].copy_from_slice(&n.to_be_bytes());
            id
        };
        let items = (MAX_DEFERRED_UPDATES / 2) as u64;
        for n in 0..items - 1 {
            index.update(id(n), &[], &entries(n), n + 1);
        }
        assert_eq!(
            index.deferred.as_ref().map(Vec::len),
            Some(MAX_DEFERRED_UPDATES - 2)
        );
        assert!(index.lists.is_empty(), "nothing merged below the limit");
        index.update(id(items - 1), &[], &entries(items - 1), items);
        assert_eq!(
            index.deferred.as_ref().map(Vec::len),
            Some(0),
            "merged at the limit"
        );
        assert_eq!(index.len(), MAX_DEFERRED_UPDATES);
        index.settle();
        index.check();
    }

    /// An index restored from `records` (snapshot keys with their letter), checked.
    fn restored_from<'a>(records: impl IntoIterator<Item = &'a (Vec<u8>, Vec<u8>)>) -> Index {
        let mut index = Index::default();
        for (key, value) in records {
            index.restore(&key[1..], value).unwrap();
        }
        index.check();
        index
    }

    fn dump_of(index: &Index) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        index.dump(&mut out);
        out
    }

    /// The records `index.save` writes (everything after `unsave`, else what changed).
    fn saved(index: &mut Index) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut records = crate::projections::snapshot_writer::Records::collecting();
        index.save(
            &mut Snapshot {
                letter: b'm',
                records: &mut records,
            },
            b"I",
        );
        records.puts()
    }

    /// An index of several multi-chunk lists, with regained memberships (earlier intervals).
    fn sample_index(seed: u64, positions: u64) -> Index {
        let mut next = generator(seed);
        let mut index = Index::default();
        let mut current: Vec<Vec<Entry>> = vec![Vec::new(); 1_000];
        for position in 1..=positions {
            let item = next(1_000) as usize;
            let mut new: Vec<Entry> = Vec::new();
            if next(10) < 8 {
                new.push((b'x', "long".into(), next(40) as i64 - 20));
            }
            if next(3) == 0 {
                new.push((b'y', "short".into(), next(4) as i64));
            }
            let mut id = [7u8; 17];
            id[1..9].copy_from_slice(&(item as u64).to_be_bytes());
            index.update(id, &current[item], &new, position);
            current[item] = new;
        }
        index
    }

    #[test]
    fn a_base_writes_a_record_per_list_chunk_and_restores_the_same_entries() {
        let mut index = sample_index(0x9E37_79B9_7F4A_7C15, 6_000);
        assert!(!index.earlier.is_empty(), "memberships were regained");
        let mut dumped = Vec::new();
        index.dump(&mut dumped);
        saved(&mut index);
        index.unsave();
        let base = saved(&mut index);
        let chunks: usize = index.lists.values().map(|list| list.chunks.len()).sum();
        assert_eq!(base.len(), chunks, "one record per chunk");
        assert!(base.len() * 10 < dumped.len(), "far fewer records than entries");
        let mut restored = restored_from(&base);
        assert_eq!(dump_of(&restored), dumped);
        // Given again, a chunk no longer follows its list's last entry: set entry by entry.
        assert_eq!(dump_of(&restored_from(base.iter().chain(&base))), dumped);
        // Changes after the base are entries, restored over it.
        let entry = |sort| (b'x', "long".to_owned(), sort);
        index.update([9; 17], &[], &[entry(3)], 6_001);
        index.update([9; 17], &[entry(3)], &[entry(4)], 6_002);
        let changes = saved(&mut index);
        assert_eq!(changes.len(), 2, "one record per changed entry");
        for (key, value) in &changes {
            restored.restore(&key[1..], value).unwrap();
        }
        restored.check();
        assert_eq!(dump_of(&restored), dump_of(&index));
    }

    #[test]
    fn a_damaged_list_chunk_record_is_data_loss() {
        let mut index = sample_index(0x2545_F491_4F6C_DD1D, 3_000);
        index.unsave();
        let base = saved(&mut index);
        let (key, value) = base
            .iter()
            .find(|(_, value)| value.len() > 4 + 2 * SLOT_BYTES)
            .expect("a chunk of several slots");
        let count = u32_at(value) as usize;
        let mut damaged: Vec<Vec<u8>> = vec![
            value[..value.len() - 1].to_vec(),
            [&value[..], &[0]].concat(),
            [&0u32.to_be_bytes()[..], &value[4..]].concat(),
            [&((CHUNK_SLOTS + 1) as u32).to_be_bytes()[..], &value[4..]].concat(),
            [&((count + 1) as u32).to_be_bytes()[..], &value[4..]].concat(),
        ];
        // Two slots swapped: out of order.
        let mut swapped = value.clone();
        swapped[4..4 + 2 * SLOT_BYTES].copy_from_slice(
            &[
                &value[4 + SLOT_BYTES..4 + 2 * SLOT_BYTES],
                &value[4..4 + SLOT_BYTES],
            ]
            .concat(),
        );
        damaged.push(swapped);
        // An interval that ends where it starts.
        let mut empty_interval = value.clone();
        let from = value[4 + 8..4 + 16].to_vec();
        empty_interval[4 + 16..4 + 24].copy_from_slice(&from);
        damaged.push(empty_interval);
        // A slot flagged for earlier intervals that the record does not hold.
        let mut unflagged_earlier = value.clone();
        unflagged_earlier[4 + 8] |= 0x80;
        damaged.push(unflagged_earlier);
        for (n, bytes) in damaged.iter().enumerate() {
            let outcome = Index::default().restore(&key[1..], bytes);
            assert!(
                matches!(outcome, Err(ProjectionError::DataLoss(_))),
                "damage {n}: {outcome:?}"
            );
        }
        Index::default()
            .restore(&key[1..], value)
            .expect("the record itself restores");
        // One entry that held, ended and held again: its earlier interval follows its slot.
        let mut regained = Index::default();
        let entry = [(b'x', "a".to_owned(), 1)];
        regained.update([1; 17], &[], &entry, 1);
        regained.update([1; 17], &entry, &[], 2);
        regained.update([1; 17], &[], &entry, 3);
        regained.unsave();
        let base = saved(&mut regained);
        let [(key, value)] = &base[..] else {
            panic!("one chunk: {base:?}")
        };
        assert_eq!(value.len(), 4 + SLOT_BYTES + 4 + 16);
        let mut none = value.clone();
        none[4 + SLOT_BYTES..4 + SLOT_BYTES + 4].copy_from_slice(&0u32.to_be_bytes());
        let mut after_last = value.clone();
        after_last[4 + SLOT_BYTES + 4 + 8..].copy_from_slice(&4u64.to_be_bytes());
        for bytes in [value[..value.len() - 16].to_vec(), none, after_last] {
            let outcome = Index::default().restore(&key[1..], &bytes);
            assert!(
                matches!(outcome, Err(ProjectionError::DataLoss(_))),
                "{outcome:?}"
            );
        }
        let mut restored = Index::default();
        restored.restore(&key[1..], value).unwrap();
        assert_eq!(listed(&restored, "a", 1), vec![(1, 1)]);
        assert_eq!(listed(&restored, "a", 2), vec![]);
        assert_eq!(listed(&restored, "a", 3), vec![(1, 1)]);
    }

    #[test]
    fn chunked_lists_answer_like_a_naive_index_through_splits_reopenings_and_restores() {
        let mut next = generator(0x2545_F491_4F6C_DD1Du64);
        let values = ["long", "other", "short"];
        let ids: Vec<ItemId> = (0..1_500u64)
            .map(|n| {
                let mut id = [0u8; 17];
                id[1..9].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                id
            })
            .collect();
        let (mut index, mut reference) = (Index::default(), Reference::default());
        let mut current: Vec<Vec<Entry>> = vec![Vec::new(); ids.len()];
        for position in 1..=9_000u64 {
            let item = next(ids.len() as u64) as usize;
            // Sort keys from a small range: ties are ordered by item id, inserts land mid-list.
            let mut new: Vec<Entry> = Vec::new();
            if next(10) < 8 {
                new.push((b'x', "long".into(), next(40) as i64 - 20));
            }
            if next(3) == 0 {
                new.push((b'x', values[1 + next(2) as usize].into(), next(4) as i64));
            }
            index.update(ids[item], &current[item], &new, position);
            reference.update(ids[item], &current[item], &new, position);
            current[item] = new;
            if position % 100 == 0 {
                index.check();
            }
            if position % 1_000 == 0 {
                for value in values {
                    for at in [1, position / 3, position / 2, position - 1, position, OPEN - 1] {
                        assert_eq!(
                            paged(&index, value, at),
                            reference.listed(value, at),
                            "{value} at {at}"
                        );
                    }
                }
            }
        }
        let long = &index.lists[&(b'x', index.values.get("long").unwrap())];
        assert!(long.chunks.len() > 3, "the long list has several chunks");
        let (_, inner) = long.chunks.split_last().unwrap();
        assert!(
            inner.iter().any(|slots| slots.len() < CHUNK_SLOTS),
            "chunks were split in the middle, not only started at the end"
        );
        assert!(!index.earlier.is_empty(), "memberships were regained");
        let mut dumped = Vec::new();
        index.dump(&mut dumped);
        let expected: Vec<_> = reference
            .entries
            .iter()
            .map(|((i, v, s, id), intervals)| {
                let key = [&b"I"[..], &token_prefix(*i, v), &sortable(*s), id].concat();
                let value = intervals
                    .iter()
                    .flat_map(|(f, t)| f.to_be_bytes().into_iter().chain(t.to_be_bytes()));
                (key, value.collect::<Vec<u8>>())
            })
            .collect();
        assert_eq!(dumped, expected);
        // Restored in key order (a full snapshot) and in a scrambled order with every record
        // given twice (later chunks overwrite earlier ones), the index answers the same.
        let mut scrambled = dumped.clone();
        for n in (1..scrambled.len()).rev() {
            scrambled.swap(n, next(n as u64 + 1) as usize);
        }
        for records in [dumped.clone(), [scrambled.clone(), scrambled].concat()] {
            let restored = restored_from(&records);
            assert_eq!(dump_of(&restored), dumped);
            for value in values {
                for at in [1, 2_000, 8_999, OPEN - 1] {
                    assert_eq!(
                        paged(&restored, value, at),
                        reference.listed(value, at),
                        "{value} at {at}"
                    );
                }
            }
        }
    }
}
