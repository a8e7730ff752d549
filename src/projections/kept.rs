//! An entity's latest state as the read models keep it: decoded while it is hot (the runner
//! folded an event of it lately), packed into its encoded bytes once it is cold.
//!
//! Why: decoded, a state is a tree of allocations (details, party codes, topics, entries, each
//! a `String` or a `Vec`): ~500-950 bytes an entity, ~135 MB of the read models at 1,000,000
//! events. Packed it is one allocation of its encoding, ~150-300 bytes. The runner keeps the
//! last [`HOT_STATES`] states it folded decoded (see the runner's state map), so the next event
//! of a stream being written decodes nothing; a query of a cold entity decodes it (a few
//! microseconds) and does not keep the result.
//!
//! The packed form is `kind(1) state_len(4, little-endian) state reports`: `state` is the
//! state's snapshot encoding, so a snapshot copies it instead of encoding again; `reports` is
//! a commitment's progress reports (which its snapshot encoding leaves out, see
//! [`crate::domain::commitment::State`]), empty for the other kinds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use crate::domain::commitment::{self, Entry};
use crate::domain::{meeting, official, party, source, AggregateState};

/// Decoded states the runner keeps hot: the latest this many it folded (a stream written in a
/// burst, such as a meeting's statements, decodes its state once). ~1 KiB each at most.
pub const HOT_STATES: usize = 4_096;

const PARTY: u8 = 0;
const OFFICIAL: u8 = 1;
const SOURCE: u8 = 2;
const MEETING: u8 = 3;
const COMMITMENT: u8 = 4;
/// Bytes before the state in the packed form: its kind and its length.
const HEADER: usize = 5;
/// The bit of `Kept::version` that says a later state replaced this one (stream versions stay
/// far below it).
const SUPERSEDED: u64 = 1 << 63;

/// One entity's latest state, decoded or packed. Immutable in meaning: packing changes how it
/// is held, never what it holds. One lock over one form, so a reader sees exactly one of the
/// two whenever it looks.
#[derive(Debug)]
pub(crate) struct Kept {
    /// The state's stream version (events folded), with [`SUPERSEDED`] set once the runner
    /// holds a later state of the stream.
    version: AtomicU64,
    form: Mutex<Form>,
}

/// One per entity (~180,000 at 1,000,000 events): its version and one lock over one form,
/// 40 bytes, so with the `Arc`'s counts one 56-byte allocation.
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Kept>() <= 40);

#[derive(Debug)]
enum Form {
    Hot(Arc<AggregateState>),
    /// The packed form (the module's text gives its layout).
    Packed(Box<[u8]>),
}

impl Kept {
    /// A state kept decoded.
    pub(crate) fn hot(state: Arc<AggregateState>) -> Arc<Kept> {
        Arc::new(Kept {
            version: AtomicU64::new(state.version()),
            form: Mutex::new(Form::Hot(state)),
        })
    }

    /// A state kept packed (a restored one: it is cold until its stream is written again).
    pub(crate) fn cold(state: &AggregateState) -> Arc<Kept> {
        Arc::new(Kept {
            version: AtomicU64::new(state.version()),
            form: Mutex::new(Form::Packed(pack(state))),
        })
    }

    fn form(&self) -> std::sync::MutexGuard<'_, Form> {
        self.form.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The state, decoded (the kept one while hot; decoded afresh, and not kept, when cold).
    pub(crate) fn state(&self) -> Arc<AggregateState> {
        match &*self.form() {
            Form::Hot(state) => state.clone(),
            Form::Packed(packed) => Arc::new(unpack(packed)),
        }
    }

    /// Packs the state (unless it is) and drops its decoded form. The encoding is done outside
    /// the lock: only the runner packs, and a reader meanwhile gets the decoded form.
    pub(crate) fn cool(&self) {
        let hot = match &*self.form() {
            Form::Hot(state) => state.clone(),
            Form::Packed(_) => return,
        };
        let packed = pack(&hot);
        *self.form() = Form::Packed(packed);
    }

    /// The state's stream version (without decoding it).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed) & !SUPERSEDED
    }

    /// Marks the state replaced by a later one of its stream: the runner packs only current
    /// states (a replaced one is dropped once the read models let go of it). Lets the runner
    /// tell without a lookup in its map of every stream (a cache miss per event).
    pub(crate) fn supersede(&self) {
        self.version.fetch_or(SUPERSEDED, Ordering::Relaxed);
    }

    /// Whether [`Kept::supersede`] was called.
    pub(crate) fn superseded(&self) -> bool {
        self.version.load(Ordering::Relaxed) & SUPERSEDED != 0
    }

    /// Whether the decoded form is kept.
    #[cfg(any(test, feature = "test-hooks"))]
    pub(crate) fn is_hot(&self) -> bool {
        matches!(&*self.form(), Form::Hot(_))
    }

    /// The entity's snapshot value ([`Kept::write_snapshot_value`]'s bytes).
    #[cfg(test)]
    pub(crate) fn snapshot_value(&self, first_position: u64, last_position: u64) -> Vec<u8> {
        let mut value = Vec::new();
        self.write_snapshot_value(first_position, last_position, &mut value);
        value
    }

    /// Appends the entity's snapshot value to `out`: (first position, last position, state)
    /// encoded; the packed state's bytes are copied, not encoded again.
    pub(crate) fn write_snapshot_value(&self, first_position: u64, last_position: u64, out: &mut Vec<u8>) {
        crate::encoding::encode_into(&(first_position, last_position), out);
        let hot = match &*self.form() {
            Form::Packed(packed) => return out.extend_from_slice(state_bytes(packed)),
            Form::Hot(state) => state.clone(),
        };
        encode_state(&hot, out);
    }
}

/// Appends the snapshot encoding of `state` (the kind's own state, no enum tag).
fn encode_state(state: &AggregateState, out: &mut Vec<u8>) {
    match state {
        AggregateState::Party(state) => crate::encoding::encode_into(state, out),
        AggregateState::Official(state) => crate::encoding::encode_into(state, out),
        AggregateState::Source(state) => crate::encoding::encode_into(state, out),
        AggregateState::Meeting(state) => crate::encoding::encode_into(state, out),
        AggregateState::Commitment(state) => crate::encoding::encode_into(state, out),
    }
}

fn kind(state: &AggregateState) -> u8 {
    match state {
        AggregateState::Party(_) => PARTY,
        AggregateState::Official(_) => OFFICIAL,
        AggregateState::Source(_) => SOURCE,
        AggregateState::Meeting(_) => MEETING,
        AggregateState::Commitment(_) => COMMITMENT,
    }
}

/// The packed form of `state` (the module's text gives its layout).
fn pack(state: &AggregateState) -> Box<[u8]> {
    let mut out = vec![kind(state), 0, 0, 0, 0];
    encode_state(state, &mut out);
    let state_len = u32::try_from(out.len() - HEADER).expect("a state encodes in far less than 4 GiB");
    out[1..HEADER].copy_from_slice(&state_len.to_le_bytes());
    if let AggregateState::Commitment(state) = state {
        let reports: Vec<&Entry> = state.progress_reports().iter().map(|report| &**report).collect();
        crate::encoding::encode_into(&reports, &mut out);
    }
    out.into_boxed_slice()
}

fn state_bytes(packed: &[u8]) -> &[u8] {
    let state_len = u32::from_le_bytes(packed[1..HEADER].try_into().expect("4 bytes")) as usize;
    &packed[HEADER..HEADER + state_len]
}

/// The state `packed` holds. The bytes were encoded by [`pack`] in this process: a failure to
/// decode them is a bug, not damaged input.
fn unpack(packed: &[u8]) -> AggregateState {
    let state = state_bytes(packed);
    let rest = &packed[HEADER + state.len()..];
    fn decoded<T: serde::de::DeserializeOwned>(bytes: &[u8]) -> T {
        crate::encoding::decode_state(bytes).expect("a packed state decodes")
    }
    let unpacked = match packed[0] {
        PARTY => AggregateState::Party(decoded::<party::State>(state)),
        OFFICIAL => AggregateState::Official(decoded::<official::State>(state)),
        SOURCE => AggregateState::Source(decoded::<source::State>(state)),
        MEETING => AggregateState::Meeting(decoded::<meeting::State>(state)),
        COMMITMENT => {
            let reports: Vec<Entry> = decoded(rest);
            let state: commitment::State = decoded(state);
            AggregateState::Commitment(state.with_progress_reports(reports))
        }
        other => unreachable!("packed state of unknown kind {other}"),
    };
    assert!(
        packed[0] == COMMITMENT || rest.is_empty(),
        "only a commitment packs more than its state"
    );
    unpacked
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::projections_bench::sample_streams;

    #[test]
    fn a_superseded_state_keeps_its_version_and_says_it_was_replaced() {
        for (_, events) in sample_streams() {
            let mut state = AggregateState::empty_for_event(&events[0]);
            for event in &events {
                state = crate::domain::evolve_state(state, event);
            }
            let version = state.version();
            for kept in [Kept::hot(Arc::new(state.clone())), Kept::cold(&state)] {
                assert!(!kept.superseded());
                kept.supersede();
                assert!(kept.superseded());
                assert_eq!(kept.version(), version, "the flag is not part of the version");
            }
        }
    }

    #[test]
    fn a_cooled_state_reads_back_equal_and_snapshots_byte_for_byte_like_a_hot_one() {
        let mut kinds = std::collections::BTreeSet::new();
        for (_, events) in sample_streams() {
            let mut state = AggregateState::empty_for_event(&events[0]);
            for event in &events {
                state = crate::domain::evolve_state(state, event);
            }
            kinds.insert(kind(&state));
            if let AggregateState::Commitment(commitment) = &state {
                assert!(
                    !commitment.progress_reports().is_empty(),
                    "the sample reports progress"
                );
            }
            let state = Arc::new(state);
            let kept = Kept::hot(state.clone());
            let hot_value = kept.snapshot_value(3, 9);
            let mut expected = crate::encoding::encode(&(3u64, 9u64));
            encode_state(&state, &mut expected);
            assert_eq!(hot_value, expected);
            kept.cool();
            assert!(!kept.is_hot());
            assert_eq!(*kept.state(), *state, "unpacked equal, progress reports included");
            assert_eq!(kept.snapshot_value(3, 9), hot_value);
            let restored = Kept::cold(&state);
            assert_eq!(*restored.state(), *state);
            assert_eq!(restored.snapshot_value(3, 9), hot_value);
        }
        assert!(kinds.contains(&MEETING) && kinds.contains(&COMMITMENT));
    }

    /// A commitment at every per-entity limit: 32 committing parties of 12 characters, 500
    /// reaffirmations, 500 assessments and 500 progress reports of the longest texts.
    fn largest_commitment() -> AggregateState {
        use crate::domain::commitment::{
            AssessmentStage, CommitmentDetails, CommitmentKind, CommitmentProgressReported,
            CommitmentReaffirmed, CommitmentRecorded, ComplianceAssessed, CooperationKind, Event, PartyScore,
            Specificity, MAX_ASSESSMENTS_PER_COMMITMENT, MAX_PROGRESS_REPORTS_PER_COMMITMENT,
            MAX_REAFFIRMATIONS_PER_COMMITMENT,
        };
        use crate::domain::common::{
            CommitmentId, MAX_NAME_LEN, MAX_PARTIES_PER_LIST, MAX_TEXT_LEN, PARTY_CODE_LEN,
        };
        let commitment_id = CommitmentId::from_uuid(uuid::Uuid::from_u128(7));
        let parties: Vec<String> = (0..MAX_PARTIES_PER_LIST)
            .map(|n| format!("P{n:0width$}", width = PARTY_CODE_LEN.end() - 1))
            .collect();
        let text = "x".repeat(MAX_TEXT_LEN);
        let provenance = crate::sample::cite("the source");
        let mut events = vec![Event::CommitmentRecorded(CommitmentRecorded {
            commitment_id,
            details: CommitmentDetails {
                kind: CommitmentKind::New,
                committing_parties: parties.clone(),
                voiced_by: vec![],
                counterparties: vec![],
                text: text.clone(),
                verbatim: false,
                topics: vec!["security".into()],
                specificity: Specificity::Specific,
                cooperation: CooperationKind::Diplomatic,
                due_by: None,
                made_at_meeting: None,
            },
            provenance: provenance.clone(),
        })];
        let reaffirmed = Event::CommitmentReaffirmed(CommitmentReaffirmed {
            commitment_id,
            reaffirmed_by: parties.clone(),
            voiced_by: vec![],
            at_meeting: None,
            text: Some(text.clone()),
            provenance: provenance.clone(),
        });
        let assessed = Event::ComplianceAssessed(ComplianceAssessed {
            commitment_id,
            stage: AssessmentStage::Interim,
            assessor: "a".repeat(MAX_NAME_LEN),
            rationale: text.clone(),
            scores: parties
                .iter()
                .map(|party| PartyScore {
                    party: party.clone(),
                    score: 1,
                })
                .collect(),
            provenance: provenance.clone(),
        });
        let reported = Event::CommitmentProgressReported(CommitmentProgressReported {
            commitment_id,
            summary: text,
            provenance,
        });
        events.extend(std::iter::repeat_n(reaffirmed, MAX_REAFFIRMATIONS_PER_COMMITMENT));
        events.extend(std::iter::repeat_n(assessed, MAX_ASSESSMENTS_PER_COMMITMENT));
        events.extend(std::iter::repeat_n(reported, MAX_PROGRESS_REPORTS_PER_COMMITMENT));
        let state = events
            .iter()
            .fold(commitment::State::default(), commitment::evolve);
        AggregateState::Commitment(state)
    }

    #[test]
    fn a_commitment_at_every_limit_packs_unpacks_and_restores_from_its_snapshot_value() {
        let state = Arc::new(largest_commitment());
        let kept = Kept::hot(state.clone());
        kept.cool();
        assert_eq!(*kept.state(), *state);
        let value = kept.snapshot_value(1, 1_501);
        assert!(
            value.len() > crate::encoding::MAX_DECODED_BYTES,
            "{} bytes: past the general decoding limit, which is why states have their own",
            value.len()
        );
        assert!(
            value.len() < crate::encoding::MAX_STATE_BYTES / 2,
            "{} bytes",
            value.len()
        );
        let restored = crate::projections::store::restore_entity(&value, AggregateState::Commitment).unwrap();
        let AggregateState::Commitment(expected) = &*state else {
            unreachable!()
        };
        let expected = expected.clone().with_progress_reports(Vec::new());
        assert_eq!(*restored.state.state(), AggregateState::Commitment(expected));
    }
}
