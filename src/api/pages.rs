//! ReadAll and ReadStream pages (and a subscription's catch-up events) written straight from the
//! stored records: each event is read in place
//! (`Log::scan_all`), its envelope encoded from the record's bytes (`convert::encode_envelope`)
//! and the page message written around them by hand, so a replay builds no message of owned
//! strings per event and encodes nothing twice. The bytes are exactly prost's encoding of the
//! `ReadAllResponse` built from `convert::envelope_into_pb` (tested against it).

use std::ops::ControlFlow;

use super::convert;
use super::event_store::MAX_PAGE_BYTES;
use super::frames::Frame;
use super::server::MAX_RESPONSE_BYTES;
use super::wire::{put_bool, put_field, put_uint};
use crate::log::limits::{MAX_READ_PAGE_EVENTS, MAX_RECORD_BYTES};
use crate::log::{Direction, EventFilter, Log, LogResult, RecordView};

// A page's first event is always taken, so the budget must hold the largest record; and a full
// page (budget, plus each event's field key and length, plus the page's own fields) must fit in
// the largest answer the server encodes.
const _: () = assert!(MAX_RECORD_BYTES <= MAX_PAGE_BYTES);
const _: () = assert!(MAX_PAGE_BYTES + MAX_READ_PAGE_EVENTS * 8 + 64 <= MAX_RESPONSE_BYTES);

/// Most bytes a page reserves up front from its first event's size; past it the page grows as
/// needed (a page's spare capacity is held until it is sent).
pub const PAGE_RESERVE_BYTES: usize = 2 * 1024 * 1024;
const _: () = assert!(PAGE_RESERVE_BYTES <= MAX_PAGE_BYTES);

/// What one ReadAll page asks for, validated.
#[derive(Debug, Clone)]
pub struct ReadAll {
    /// The first position to examine.
    pub from_position: u64,
    /// Which way.
    pub direction: Direction,
    /// Most events in the page.
    pub limit: usize,
    /// Which events.
    pub filter: EventFilter,
    /// With the typed event (false: `omit_typed_body`).
    pub typed: bool,
    /// With each event's leaf input (`include_leaf_input`).
    pub leaf_input: bool,
    /// Envelope bytes after which the page stops adding events: [`MAX_PAGE_BYTES`] on the
    /// server.
    pub max_bytes: usize,
}

/// The events of one page as they are written: field 1 of the page message, one per event,
/// until the next would take the envelopes past `max_bytes` (a page always holds at least one).
struct PageEvents {
    out: Vec<u8>,
    envelope: Vec<u8>,
    bytes: usize,
    taken: usize,
    typed: bool,
    leaf_input: bool,
    max_bytes: usize,
    /// Events the first one's size is taken to stand for when sizing the page (0: none).
    expected: usize,
}

impl PageEvents {
    fn new(typed: bool, leaf_input: bool, max_bytes: usize, expected: usize) -> PageEvents {
        PageEvents {
            out: Vec::new(),
            envelope: Vec::with_capacity(1_024),
            bytes: 0,
            taken: 0,
            typed,
            leaf_input,
            max_bytes,
            expected,
        }
    }

    /// Adds `record`'s envelope; `Break` when it would take the page past its budget (left out:
    /// the page ends before it).
    fn push(&mut self, record: &RecordView<'_>) -> ControlFlow<()> {
        self.envelope.clear();
        convert::encode_envelope(record, self.typed, self.leaf_input, &mut self.envelope);
        let len = self.envelope.len();
        if self.taken > 0 && self.bytes + len > self.max_bytes {
            return ControlFlow::Break(());
        }
        if self.taken == 0 {
            // The first event's size stands for the expected others: one allocation for the
            // page instead of a doubling (and a copy of everything so far) every few events.
            self.out
                .reserve(self.expected.saturating_mul(len + 4).min(PAGE_RESERVE_BYTES));
        }
        self.bytes += len;
        self.taken += 1;
        put_field(1, &self.envelope, &mut self.out);
        ControlFlow::Continue(())
    }
}

/// The encoded `ReadAllResponse` of one page. Events are added until the page holds `limit`,
/// or until the next would take the envelopes past `max_bytes` (a page always holds at least
/// one); then `next_position` is that event's position.
pub fn read_all_page(log: &Log, request: &ReadAll) -> LogResult<Vec<u8>> {
    // A filtered page may take a few events out of many: sized as it goes.
    let expected = if request.filter.is_empty() {
        request.limit
    } else {
        0
    };
    let mut events = PageEvents::new(request.typed, request.leaf_input, request.max_bytes, expected);
    let end = log.scan_all(
        (request.from_position, request.direction),
        request.limit,
        &request.filter,
        &mut |record| events.push(record),
    )?;
    let mut out = events.out;
    put_uint(2, end.next_position, &mut out);
    put_uint(3, end.head, &mut out);
    put_bool(4, end.reached_end, &mut out);
    Ok(out)
}

/// What one ReadStream page asks for, validated; the page's own fields (the stream's version,
/// where to continue) are the caller's.
#[derive(Debug, Clone)]
pub struct ReadStream<'a> {
    /// The stream.
    pub stream_id: &'a str,
    /// The first version to read.
    pub from_version: u64,
    /// The stream's version the answer states: an event after it (committed since it was
    /// read) ends the page, so the page never holds an event past the version it reports.
    pub up_to_version: u64,
    /// Which way.
    pub direction: Direction,
    /// Most events in the page.
    pub limit: usize,
    /// With the typed event (false: `omit_typed_body`).
    pub typed: bool,
    /// With each event's leaf input (`include_leaf_input`).
    pub leaf_input: bool,
    /// Envelope bytes after which the page stops adding events, as for ReadAll.
    pub max_bytes: usize,
}

/// A ReadStream page's events, encoded (field 1 of `ReadStreamResponse`, one per event, cut as
/// a ReadAll page is cut, and ended by an event past `up_to_version`), and the stream version of
/// the last one, if any. The page's own fields are the caller's to append.
pub fn stream_events(log: &Log, request: &ReadStream<'_>) -> LogResult<(Vec<u8>, Option<u64>)> {
    let mut events = PageEvents::new(
        request.typed,
        request.leaf_input,
        request.max_bytes,
        request.limit,
    );
    let mut last = None;
    log.scan_stream(
        request.stream_id,
        (request.from_version, request.direction),
        request.limit,
        &mut |record| {
            let version = record.envelope.stream_version;
            if version > request.up_to_version {
                return ControlFlow::Break(());
            }
            events.push(record)?;
            last = Some(version);
            ControlFlow::Continue(())
        },
    )?;
    Ok((events.out, last))
}

/// The encoded `SubscribeResponse` carrying `record`'s envelope (field 1 of its `message`), as
/// a subscription's catch-up sends it: written from the record like a ReadAll page's events.
pub fn event_frame(record: &RecordView<'_>, typed: bool) -> Frame {
    let mut envelope = Vec::with_capacity(record.body.len() + 160);
    convert::encode_envelope(record, typed, false, &mut envelope);
    let mut out = Vec::with_capacity(envelope.len() + 4);
    put_field(1, &envelope, &mut out);
    Frame::from_encoded(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::pb;
    use crate::log::codec::{encode_record, view_record, GENESIS_CHAIN_HASH};
    use crate::log::Envelope;
    use crate::time::{OccurredAt, Precision, Timestamp};

    #[test]
    fn an_event_frame_is_the_bytes_of_its_subscription_answer() {
        let envelope = Envelope {
            position: 9,
            stream_id: "party-LBY".into(),
            stream_version: 2,
            event_id: uuid::Uuid::from_u128(1),
            event_type: "PartyCorrected".into(),
            schema_version: 1,
            command_id: uuid::Uuid::from_u128(2),
            occurred_at: OccurredAt::new(Timestamp::from_unix_micros(7), Precision::Day),
            recorded_at: Timestamp::from_unix_micros(8),
            recorded_by: "alice".into(),
            correlation_id: None,
            causation_id: None,
            tags: vec!["party:LBY".into()],
            payload: vec![1, 2, 3],
        };
        let (bytes, _) = encode_record(&envelope, &GENESIS_CHAIN_HASH).unwrap();
        let view = view_record(9, &bytes).unwrap();
        for typed in [false, true] {
            let expected = Frame::encode(pb::subscribe_response::Message::Event(convert::envelope_into_pb(
                view.to_recorded(),
                typed,
            )));
            assert_eq!(event_frame(&view, typed), expected);
        }
    }
}
