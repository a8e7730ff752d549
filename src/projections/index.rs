//! Index memberships of a read model: which items a list (an index and a value, such as "the
//! meetings of party FRA") holds, in (sort key, item id) order, each with the intervals of log
//! positions during which it held. Entries are never removed: a membership that ends is closed.
//!
//! Two tiers keep an entry small (an index holds a few entries per item, millions in all):
//! - a list's `slots`: a sorted vector of packed 41-byte [`Slot`]s (sort key, the last interval,
//!   item id), no node or pointer per entry. A short list (under [`SMALL_LIST_SLOTS`]) and an
//!   entry past a list's end are inserted here directly;
//! - `recent`: one ordered map shared by every list, for entries inserted into the middle of a
//!   long list. A list takes its recent entries into its slots in one merge once they pass a
//!   [`RECENT_SHARE`]th of it, so an entry is copied a bounded number of times on average
//!   (about `RECENT_SHARE + 1`) and `recent` holds at most about that share of the index.
//!
//! A membership that held, ended and held again keeps its earlier intervals in `earlier` (rare;
//! a slot says it has some with the top bit of its `from`).

use std::collections::BTreeMap;
use std::ops::Bound;

use super::error::{ProjectionError, ProjectionResult};
use super::store::{
    decode_resume, encode_token, page_size, sortable, token_prefix, unsortable, Changed, Dirty, Entry,
    Interner, ItemId, Map, Snapshot, MAX_SCANNED_PER_PAGE, OPEN,
};

/// A list shorter than this takes every insert into its slots (moving at most this many).
pub const SMALL_LIST_SLOTS: usize = 64;
/// A long list merges its recent entries once they are more than 1/this of its slots.
pub const RECENT_SHARE: usize = 8;
/// A list's slots grow by 1/this of their length (at least [`MIN_SLOT_GROWTH`]) when full: at
/// most that share of a list is spare capacity, instead of the half a doubling leaves.
pub const SLOT_GROWTH_SHARE: usize = 8;
/// The least a list's slots grow by when full.
pub const MIN_SLOT_GROWTH: usize = 4;
/// A list keeps the place of every this many slots in `fences`, and of every this many fences
/// in `tops`: a search halves `tops` (a few kilobytes, in the processor's cache), then walks
/// one run of this many fences and one run of this many slots, each contiguous, instead of
/// halving megabytes of slots with a cache miss at nearly every step.
pub const FENCE_EVERY: usize = 16;
/// The bit of a slot's `from` that says earlier intervals are kept in `earlier` (log positions
/// stay far below it).
const EARLIER: u64 = 1 << 63;

const _: () = assert!(
    SMALL_LIST_SLOTS >= RECENT_SHARE,
    "a list that merges is not short"
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

    fn place(&self) -> (i64, ItemId) {
        (self.sort, self.id)
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

/// The intervals `[from, to)` of log positions during which a membership held, ascending and
/// disjoint; the last one is open (`to == OPEN`) while it still holds. In `recent` only.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Validity {
    One((u64, u64)),
    Many(Vec<(u64, u64)>),
}

impl Validity {
    fn intervals(&self) -> &[(u64, u64)] {
        match self {
            Validity::One(interval) => std::slice::from_ref(interval),
            Validity::Many(intervals) => intervals,
        }
    }

    fn open(&mut self, position: u64) {
        if self.intervals().last().is_some_and(|&(_, to)| to == OPEN) {
            return;
        }
        match self {
            Validity::One(interval) => *self = Validity::Many(vec![*interval, (position, OPEN)]),
            Validity::Many(intervals) => intervals.push((position, OPEN)),
        }
    }

    fn close(&mut self, position: u64) {
        let last = match self {
            Validity::One(interval) => interval,
            Validity::Many(intervals) => intervals.last_mut().expect("a validity has an interval"),
        };
        if last.1 == OPEN {
            assert!(last.0 < position, "an interval closes after it opens");
            last.1 = position;
        }
    }
}

/// An entry in a list's slots: its place and its last interval, packed (41 bytes).
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

/// The intervals of one entry, wherever it is kept: the earlier ones and the last.
#[derive(Clone, Copy)]
struct Held<'a> {
    before: &'a [(u64, u64)],
    last: (u64, u64),
}

impl<'a> Held<'a> {
    fn of(validity: &'a Validity) -> Held<'a> {
        let (&last, before) = validity
            .intervals()
            .split_last()
            .expect("a validity has an interval");
        Held { before, last }
    }

    fn contains(&self, at: u64) -> bool {
        let within = |&(from, to): &(u64, u64)| from <= at && at < to;
        within(&self.last) || self.before.iter().any(within)
    }

    /// The intervals as (from, to) big-endian pairs (the snapshot's value).
    fn bytes(&self) -> Vec<u8> {
        let all = self.before.iter().chain(std::iter::once(&self.last));
        all.flat_map(|(from, to)| from.to_be_bytes().into_iter().chain(to.to_be_bytes()))
            .collect()
    }
}

/// One list's slots, sorted by place, the place of every [`FENCE_EVERY`]th slot (`fences`) and
/// of every [`FENCE_EVERY`]th fence (`tops`), and how many of its entries are in `recent`.
#[derive(Default)]
struct List {
    slots: Vec<Slot>,
    fences: Vec<Order>,
    tops: Vec<Order>,
    recent: usize,
}

impl List {
    /// Where `place` is in the slots (`Ok`), or where it would go (`Err`).
    fn find(&self, place: (i64, ItemId)) -> Result<usize, usize> {
        let at = self.first_at_or_after(order(place.0, &place.1));
        match self.slots.get(at) {
            Some(slot) if slot.place() == place => Ok(at),
            _ => Err(at),
        }
    }

    /// The index of the first slot at or after `at`.
    fn first_at_or_after(&self, at: Order) -> usize {
        self.first_where(|order| order < at)
    }

    /// The index of the first slot after `at`.
    fn first_after(&self, at: Order) -> usize {
        self.first_where(|order| order <= at)
    }

    /// The index of the first slot whose place is not `before`, for a `before` true of a prefix
    /// of the places. Each level says which run of [`FENCE_EVERY`] entries of the level below
    /// the prefix ends in: the runs before the last marker it holds for hold only such places,
    /// a run from a marker it does not hold for holds none.
    fn first_where(&self, before: impl Fn(Order) -> bool) -> usize {
        let top = self.tops.partition_point(|&order| before(order));
        let run = count_in_run(&self.fences, top, |&order| before(order));
        count_in_run(&self.slots, run, |slot| before(slot.order()))
    }

    /// Puts `slot` at `at`, growing the slots by a share of their length when full.
    fn insert(&mut self, at: usize, slot: Slot) {
        if self.slots.len() == self.slots.capacity() {
            let growth = (self.slots.len() / SLOT_GROWTH_SHARE).max(MIN_SLOT_GROWTH);
            self.slots.reserve_exact(growth);
        }
        self.slots.insert(at, slot);
        if at + 1 < self.slots.len() {
            return self.refence();
        }
        if at % FENCE_EVERY == 0 {
            self.fences.push(slot.order());
            if (self.fences.len() - 1) % FENCE_EVERY == 0 {
                self.tops.push(slot.order());
            }
        }
    }

    /// Recomputes the fences and tops from the slots.
    fn refence(&mut self) {
        self.fences = self.slots.iter().step_by(FENCE_EVERY).map(Slot::order).collect();
        self.tops = self.fences.iter().step_by(FENCE_EVERY).copied().collect();
    }
}

/// How many entries of `level` hold for `before` (a prefix), given that `markers` of the
/// entries at every [`FENCE_EVERY`]th place do: only the run after the last of them is walked.
fn count_in_run<T>(level: &[T], markers: usize, before: impl Fn(&T) -> bool) -> usize {
    let low = markers.saturating_sub(1) * FENCE_EVERY;
    let high = (markers * FENCE_EVERY).min(level.len());
    low + level[low..high].iter().take_while(|entry| before(entry)).count()
}

/// Index memberships of one read model, ordered by (index, value, sort key, item id), each with
/// its validity intervals (the module's text says how they are kept).
#[derive(Default)]
pub(crate) struct Index {
    lists: Map<(u8, u32), List>,
    recent: BTreeMap<IndexKey, Validity>,
    earlier: Map<IndexKey, Vec<(u64, u64)>>,
    values: Interner,
    /// Entries changed since the last snapshot.
    dirty: Dirty<IndexKey>,
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
            if self.close(key, position) {
                self.dirty.mark(key);
            }
        }
        for entry in new.iter().filter(|entry| !old.contains(entry)) {
            let key = IndexKey::at((entry.0, self.values.intern(&entry.1)), (entry.2, id));
            self.open(key, position);
            self.dirty.mark(key);
        }
    }

    /// Closes `key`'s open interval at `position`; false if there is no such entry.
    fn close(&mut self, key: IndexKey, position: u64) -> bool {
        let Some(list) = self.lists.get_mut(&key.list()) else {
            return false;
        };
        let Ok(at) = list.find(key.place()) else {
            let in_recent = (list.recent > 0).then(|| self.recent.get_mut(&key)).flatten();
            return in_recent.map(|validity| validity.close(position)).is_some();
        };
        let slot = &mut list.slots[at];
        if slot.to == OPEN {
            assert!(slot.last().0 < position, "an interval closes after it opens");
            slot.to = position;
        }
        true
    }

    /// Opens an interval of `key` at `position` (a new entry, or one that held before).
    fn open(&mut self, key: IndexKey, position: u64) {
        let list = self.lists.entry(key.list()).or_default();
        if let Some(validity) = (list.recent > 0).then(|| self.recent.get_mut(&key)).flatten() {
            validity.open(position);
            return;
        }
        match list.find(key.place()) {
            Ok(at) => {
                let slot = &mut list.slots[at];
                if slot.to != OPEN {
                    self.earlier.entry(key).or_default().push(slot.last());
                    *slot = Slot {
                        from: position | EARLIER,
                        to: OPEN,
                        ..*slot
                    };
                }
            }
            Err(at) => place(
                list,
                at,
                key,
                Validity::One((position, OPEN)),
                &mut self.recent,
                &mut self.earlier,
            ),
        }
    }

    /// Sets `key`'s intervals (a snapshot's record), adding the entry if it is new.
    fn set(&mut self, key: IndexKey, validity: Validity) {
        let list = self.lists.entry(key.list()).or_default();
        if let Some(held) = (list.recent > 0).then(|| self.recent.get_mut(&key)).flatten() {
            *held = validity;
            return;
        }
        match list.find(key.place()) {
            Ok(at) => {
                self.earlier.remove(&key);
                list.slots[at] = Slot::new(key, validity.intervals(), &mut self.earlier);
            }
            Err(at) => place(list, at, key, validity, &mut self.recent, &mut self.earlier),
        }
    }

    /// The intervals of `key`, if it is an entry.
    fn held(&self, key: &IndexKey) -> Option<Held<'_>> {
        let list = self.lists.get(&key.list())?;
        match list.find(key.place()) {
            Ok(at) => Some(self.held_in_slot(list.list_key(key.list(), at))),
            Err(_) => self.recent.get(key).map(Held::of),
        }
    }

    fn held_in_slot(&self, (key, slot): (IndexKey, &Slot)) -> Held<'_> {
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

    /// The entries of `list` from `start` to `end` (inclusive) in order, from both tiers.
    fn entries(
        &self,
        list: (u8, u32),
        start: Bound<(i64, ItemId)>,
        end: (i64, ItemId),
    ) -> impl Iterator<Item = (IndexKey, Held<'_>)> + '_ {
        let slots: &[Slot] = self.lists.get(&list).map_or(&[], |list| &list.slots);
        let first = match (self.lists.get(&list), start) {
            (None, _) => 0,
            (Some(list), Bound::Included(place)) => list.first_at_or_after(order(place.0, &place.1)),
            (Some(list), Bound::Excluded(place)) => list.first_after(order(place.0, &place.1)),
            (_, Bound::Unbounded) => unreachable!("a list's entries start at a place"),
        };
        let last = order(end.0, &end.1);
        let mut slots = slots[first..]
            .iter()
            .take_while(move |slot| slot.order() <= last)
            .map(move |slot| (IndexKey::at(list, slot.place()), slot))
            .peekable();
        let bounds = (
            start.map(|place| IndexKey::at(list, place)),
            Bound::Included(IndexKey::at(list, end)),
        );
        let mut recent = self.recent.range(bounds).peekable();
        std::iter::from_fn(move || {
            let take_slot = match (slots.peek(), recent.peek()) {
                (Some((slot_key, _)), Some((recent_key, _))) => slot_key < *recent_key,
                (slot, _) => slot.is_some(),
            };
            match take_slot {
                true => slots.next().map(|entry| (entry.0, self.held_in_slot(entry))),
                false => recent.next().map(|(key, validity)| (*key, Held::of(validity))),
            }
        })
    }

    /// Every entry, list by list.
    fn every(&self) -> impl Iterator<Item = (IndexKey, Held<'_>)> + '_ {
        self.lists
            .keys()
            .flat_map(|&list| self.entries(list, Bound::Included(FIRST_PLACE), LAST_PLACE))
    }

    fn key_bytes(&self, key: &IndexKey) -> Vec<u8> {
        let mut bytes = token_prefix(key.index, self.values.name(key.value));
        bytes.extend_from_slice(&sortable(key.sort));
        bytes.extend_from_slice(&key.id);
        bytes
    }

    /// Writes the entries changed since the last snapshot: `prefix` index value 0x00 sort(8)
    /// id(17) -> the intervals as (from, to) big-endian pairs.
    pub(crate) fn save(&mut self, out: &mut Snapshot<'_>, prefix: &[u8]) {
        match self.dirty.take() {
            Changed::All => {
                for (key, held) in self.every() {
                    out.put([prefix, &self.key_bytes(&key)].concat(), held.bytes());
                }
            }
            Changed::Keys(keys) => {
                for key in keys {
                    let held = self.held(&key).expect("a changed entry is held");
                    out.put([prefix, &self.key_bytes(&key)].concat(), held.bytes());
                }
            }
        }
    }

    /// Marks every entry unsaved.
    pub(crate) fn unsave(&mut self) {
        self.dirty.mark_all();
    }

    /// Restores one entry written by [`Index::save`] (`key` without its prefix).
    pub(crate) fn restore(&mut self, key: &[u8], value: &[u8]) -> ProjectionResult<()> {
        let malformed = || ProjectionError::DataLoss("read-model snapshot: malformed index entry".into());
        let (&index, rest) = key.split_first().ok_or_else(malformed)?;
        let end = rest.iter().position(|byte| *byte == 0).ok_or_else(malformed)?;
        let name = std::str::from_utf8(&rest[..end]).map_err(|_| malformed())?;
        let rest = &rest[end + 1..];
        if rest.len() != 8 + 17 || value.is_empty() || value.len() % 16 != 0 {
            return Err(malformed());
        }
        let mut id = [0u8; 17];
        id.copy_from_slice(&rest[8..]);
        let intervals: Vec<(u64, u64)> = value
            .chunks_exact(16)
            .map(|pair| (u64_at(&pair[..8]), u64_at(&pair[8..])))
            .collect();
        let ordered = intervals.iter().all(|(from, to)| from < to && *from < EARLIER)
            && intervals.windows(2).all(|pair| pair[0].1 <= pair[1].0);
        if !ordered {
            return Err(malformed());
        }
        let key = IndexKey::at((index, self.values.intern(name)), (unsortable(rest), id));
        let validity = match intervals.len() {
            1 => Validity::One(intervals[0]),
            _ => Validity::Many(intervals),
        };
        self.set(key, validity);
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
        (from, to): (i64, i64),
        at: u64,
        token: Option<&str>,
        limit: usize,
        mut accept: impl FnMut(&ItemId, i64) -> ProjectionResult<Option<T>>,
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
        let mut items = Vec::new();
        for (scanned, (key, held)) in self.entries((index, value_id), start, end).enumerate() {
            if held.contains(at) {
                if let Some(item) = accept(&key.id, key.sort)? {
                    items.push(item);
                }
            }
            if items.len() == limit || scanned + 1 == MAX_SCANNED_PER_PAGE {
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

    /// Asserts what the tiers keep true: slots strictly ordered, fences at every
    /// [`FENCE_EVERY`]th slot, each list's count of its recent entries, the earlier flags.
    #[cfg(test)]
    fn check(&self) {
        for (&of, list) in &self.lists {
            assert!(list
                .slots
                .windows(2)
                .all(|pair| pair[0].order() < pair[1].order()));
            let fences: Vec<Order> = list.slots.iter().step_by(FENCE_EVERY).map(Slot::order).collect();
            let tops: Vec<Order> = fences.iter().step_by(FENCE_EVERY).copied().collect();
            assert_eq!((&list.fences, &list.tops), (&fences, &tops));
            let range = IndexKey::at(of, FIRST_PLACE)..=IndexKey::at(of, LAST_PLACE);
            assert_eq!(self.recent.range(range).count(), list.recent);
            for slot in &list.slots {
                let key = IndexKey::at(of, slot.place());
                assert_eq!(slot.has_earlier(), self.earlier.contains_key(&key));
                assert!(!self.recent.contains_key(&key), "an entry is in one tier");
            }
        }
    }

    /// Entries held (one per membership ever gained).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lists.values().map(|list| list.slots.len()).sum::<usize>() + self.recent.len()
    }
}

impl List {
    /// The key and slot at `at` of this list, `list`.
    fn list_key(&self, list: (u8, u32), at: usize) -> (IndexKey, &Slot) {
        let slot = &self.slots[at];
        (IndexKey::at(list, slot.place()), slot)
    }
}

/// Adds the new entry `key` at `at` of its list's slots, or to `recent` (merging the list's
/// recent entries into its slots once they pass their share).
fn place(
    list: &mut List,
    at: usize,
    key: IndexKey,
    validity: Validity,
    recent: &mut BTreeMap<IndexKey, Validity>,
    earlier: &mut Map<IndexKey, Vec<(u64, u64)>>,
) {
    if at == list.slots.len() || list.slots.len() < SMALL_LIST_SLOTS {
        list.insert(at, Slot::new(key, validity.intervals(), earlier));
        return;
    }
    recent.insert(key, validity);
    list.recent += 1;
    if list.recent * RECENT_SHARE > list.slots.len() {
        merge(list, key.list(), recent, earlier);
    }
}

/// Moves the recent entries of `list` (whose key is `of`) into its slots, in order.
fn merge(
    list: &mut List,
    of: (u8, u32),
    recent: &mut BTreeMap<IndexKey, Validity>,
    earlier: &mut Map<IndexKey, Vec<(u64, u64)>>,
) {
    let range = IndexKey::at(of, FIRST_PLACE)..=IndexKey::at(of, LAST_PLACE);
    let keys: Vec<IndexKey> = recent.range(range).map(|(key, _)| *key).collect();
    assert_eq!(keys.len(), list.recent, "a list counts its recent entries");
    let mut merged = Vec::with_capacity(list.slots.len() + keys.len());
    let mut old = list.slots.iter().copied().peekable();
    for key in keys {
        let validity = recent.remove(&key).expect("a key just listed is held");
        let next = key.order();
        while let Some(slot) = old.next_if(|slot| slot.order() < next) {
            merged.push(slot);
        }
        merged.push(Slot::new(key, validity.intervals(), earlier));
    }
    merged.extend(old);
    list.slots = merged;
    list.refence();
    list.recent = 0;
}

fn u64_at(bytes: &[u8]) -> u64 {
    let mut array = [0u8; 8];
    array.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(array)
}

#[cfg(test)]
mod tests {
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

    #[test]
    fn both_tiers_answer_like_a_naive_index_through_merges_reopenings_and_restores() {
        let mut rng = 0x2545_F491_4F6C_DD1Du64;
        let mut next = move |below: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % below
        };
        let values = ["long", "other", "short"];
        let ids: Vec<ItemId> = (0..600u64)
            .map(|n| {
                let mut id = [0u8; 17];
                id[1..9].copy_from_slice(&n.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes());
                id
            })
            .collect();
        let (mut index, mut reference) = (Index::default(), Reference::default());
        let mut current: Vec<Vec<Entry>> = vec![Vec::new(); ids.len()];
        let mut recent_seen = 0;
        for position in 1..=6_000u64 {
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
            recent_seen = recent_seen.max(index.recent.len());
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
        assert!(recent_seen > 0, "inserts went to the recent tier");
        let long = &index.lists[&(b'x', index.values.get("long").unwrap())];
        assert!(
            long.slots.len() > SMALL_LIST_SLOTS,
            "the long list merged into its slots"
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
            let mut restored = Index::default();
            for (key, value) in &records {
                restored.restore(&key[1..], value).unwrap();
            }
            restored.check();
            let mut again = Vec::new();
            restored.dump(&mut again);
            assert_eq!(again, dumped);
            for value in values {
                for at in [1, 2_000, 5_999, OPEN - 1] {
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
