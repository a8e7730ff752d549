//! Fuzz targets on stable Rust (proptest) for the request conversions, the fourth family beside
//! the record, journal frame and export decoders (`log_fuzz`): every gRPC request message the
//! server reads — each command, SubmitBatch, each query, ReadAll and Subscribe.
//!
//! - Arbitrary bytes, decoded as the request's message (prost, as tonic does), then taken through
//!   what the server does with it before the log: a command's inbound conversion
//!   (`CommandRequest::into_command`, or `batch_from_pb` with the command table's
//!   `batch_command`) and the domain's field checks; a query, ReadAll or Subscribe answered by
//!   the service itself, in-process, over an empty log. Bytes that do not decode become the
//!   status the server's decode layer sends (`status::from_codec_error`).
//! - Well-typed requests with random field values (codes, names, ids, timestamps, filter lists,
//!   page tokens of random lengths and contents) through the same paths.
//!
//! Each answer is a value or a clean refusal: a status with a code that blames the request
//! (INVALID_ARGUMENT, NOT_FOUND, OUT_OF_RANGE, ...; never INTERNAL or UNKNOWN) whose message and
//! details stay within `status::MAX_STATUS_BYTES`; never a panic.
//!
//! `cargo test` runs a few seconds of each; `PROPTEST_CASES=N` runs N cases of every target
//! (docs/operations.md, "Fuzzing", says how many make ten minutes).

use std::sync::Arc;

use dipledger::api::commands::batch_command;
use dipledger::api::convert::{self, CommandRequest};
use dipledger::api::event_store::EventStore;
use dipledger::api::pb;
use dipledger::api::pb::event_store_service_server::EventStoreService;
use dipledger::api::pb::query_service_server::QueryService;
use dipledger::api::query::Query;
use dipledger::api::server::MAX_REQUEST_BYTES;
use dipledger::api::status::{self, status_bytes, MAX_STATUS_BYTES};
use dipledger::domain::{decide_command, AggregateState};
use dipledger::ledger::LedgerError;
use dipledger::projections::Projections;
use proptest::prelude::*;
use prost::Message;
use tonic::{Code, Request, Response, Status};

use crate::support::log::temp_log;

/// Cases per target: `PROPTEST_CASES`, else `default` (a few seconds in `cargo test`).
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(default)
}

/// The codes a refused request may be answered with: each says what is wrong with the request
/// (or that what it names is absent), none blames the server.
const CLEAN_CODES: &[Code] = &[
    Code::InvalidArgument,
    Code::NotFound,
    Code::FailedPrecondition,
    Code::AlreadyExists,
    Code::OutOfRange,
    Code::ResourceExhausted,
];

/// A refusal is clean: a request-blaming code (or the documented UNAVAILABLE of a read model
/// that did not reach `min_position` by the deadline) and a bounded size.
fn check_status(status: &Status) -> Result<(), TestCaseError> {
    let behind = status.code() == Code::Unavailable && status.message().ends_with("by the deadline");
    prop_assert!(
        CLEAN_CODES.contains(&status.code()) || behind,
        "not a clean refusal: {status:?}"
    );
    prop_assert!(
        status_bytes(status) <= MAX_STATUS_BYTES,
        "a status of {} bytes, over {MAX_STATUS_BYTES}",
        status_bytes(status)
    );
    Ok(())
}

fn answered<T>(answer: Result<Response<T>, Status>) -> Result<(), TestCaseError> {
    match answer {
        Ok(_) => Ok(()),
        Err(status) => check_status(&status),
    }
}

/// What the client gets for bytes that are not the request's message: tonic's decode error
/// (INTERNAL, "failed to decode Protobuf message: ..."), remapped by the server's layer.
fn undecodable(error: prost::DecodeError) -> Result<(), TestCaseError> {
    let tonic_status = Status::internal(error.to_string());
    match status::from_codec_error(&tonic_status, MAX_REQUEST_BYTES) {
        Some(status) => {
            prop_assert_eq!(status.code(), Code::InvalidArgument);
            check_status(&status)
        }
        None => {
            prop_assert!(false, "a decode error the layer does not remap: {tonic_status:?}");
            Ok(())
        }
    }
}

/// A command request through what CommandService does before the ledger: the conversion, then
/// the domain's field checks (the ledger's first step; an empty state stands for the entity).
fn command(request: impl CommandRequest) -> Result<(), TestCaseError> {
    match request.into_command("fuzz@test") {
        Err(violations) => check_status(&status::invalid_argument(&violations)),
        Ok(envelope) => {
            let state = AggregateState::empty_for(&envelope.command);
            match decide_command(&state, &envelope.command) {
                Ok(_) => Ok(()),
                Err(rejection) => check_status(&status::from_ledger_error(LedgerError::Rejected(rejection))),
            }
        }
    }
}

/// A SubmitBatch request through its conversion (each command by the command table).
fn batch(request: pb::SubmitBatchRequest) -> Result<(), TestCaseError> {
    match convert::batch_from_pb(request, |command| batch_command(command, "fuzz@test")) {
        Ok(_) => Ok(()),
        Err(violations) => check_status(&status::invalid_argument(&violations)),
    }
}

/// The reading services over an empty log, called in-process (one set per test thread).
struct Readers {
    runtime: tokio::runtime::Runtime,
    query: Query,
    store: EventStore,
    _stop: tokio::sync::watch::Sender<bool>,
    /// Last: removed once the log and read models over it are closed.
    _dir: tempfile::TempDir,
}

impl Readers {
    fn new() -> Readers {
        let (dir, log) = temp_log();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let projections = Arc::new(Projections::open_paused(log.clone()).expect("read models"));
        let (stop, stopping) = tokio::sync::watch::channel(false);
        let store = runtime.block_on(async { EventStore::new(log, 4, stopping) });
        Readers {
            _dir: dir,
            runtime,
            query: Query::new(projections),
            store,
            _stop: stop,
        }
    }
}

thread_local!(static READERS: Readers = Readers::new());

/// A request with a short deadline (a query waits at most that for its read model).
fn timed<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    request
        .metadata_mut()
        .insert("grpc-timeout", "20m".parse().expect("metadata"));
    request
}

/// One entry per request message: decodes bytes as it and takes the request where the server
/// takes it.
type Target = (&'static str, fn(&[u8]) -> Result<(), TestCaseError>);

macro_rules! targets {
    (
        commands: [$($command:ident),* $(,)?],
        queries: [$($query:ident($query_request:ident)),* $(,)?],
        store: [$($read:ident($read_request:ident)),* $(,)?],
    ) => {
        &[
            $((stringify!($command), |bytes: &[u8]| match pb::$command::decode(bytes) {
                Ok(request) => command(request),
                Err(error) => undecodable(error),
            }),)*
            ("SubmitBatchRequest", |bytes: &[u8]| match pb::SubmitBatchRequest::decode(bytes) {
                Ok(request) => batch(request),
                Err(error) => undecodable(error),
            }),
            $((stringify!($query_request), |bytes: &[u8]| match pb::$query_request::decode(bytes) {
                Ok(request) => READERS.with(|readers| {
                    readers.runtime.block_on(async {
                        answered(QueryService::$query(&readers.query, timed(request)).await)
                    })
                }),
                Err(error) => undecodable(error),
            }),)*
            $((stringify!($read_request), |bytes: &[u8]| match pb::$read_request::decode(bytes) {
                Ok(request) => READERS.with(|readers| {
                    readers.runtime.block_on(async {
                        answered(EventStoreService::$read(&readers.store, timed(request)).await)
                    })
                }),
                Err(error) => undecodable(error),
            }),)*
        ]
    };
}

const TARGETS: &[Target] = targets! {
    commands: [
        RegisterPartyRequest, CorrectPartyRequest, RegisterSourceRequest, CorrectSourceRequest,
        RegisterOfficialRequest, AppointOfficialRequest, EndTenureRequest,
        CorrectOfficialNameRequest, RetractOfficialEventRequest, ProposeMeetingRequest,
        ScheduleMeetingRequest, RescheduleMeetingRequest, PostponeMeetingRequest,
        CancelMeetingRequest, RecordMeetingHeldRequest, RecordStatementRequest,
        CorrectMeetingRequest, RetractMeetingEventRequest, RecordCommitmentRequest,
        ReaffirmCommitmentRequest, ReportCommitmentProgressRequest, FulfilCommitmentRequest,
        MarkCommitmentLapsedRequest, WithdrawCommitmentRequest, SupersedeCommitmentRequest,
        AssessComplianceRequest, CorrectCommitmentRequest, RetractCommitmentEventRequest,
    ],
    queries: [
        get_meeting(GetMeetingRequest), list_meetings(ListMeetingsRequest),
        get_commitment(GetCommitmentRequest), list_commitments(ListCommitmentsRequest),
        list_overdue_commitments(ListOverdueCommitmentsRequest),
        get_compliance(GetComplianceRequest), get_bilateral_relation(GetBilateralRelationRequest),
        get_official(GetOfficialRequest), list_officials(ListOfficialsRequest),
        list_post_holders(ListPostHoldersRequest), get_contacts(GetContactsRequest),
        get_party(GetPartyRequest), list_parties(ListPartiesRequest), get_source(GetSourceRequest),
        list_sources(ListSourcesRequest), get_entity_history(GetEntityHistoryRequest),
    ],
    store: [
        read_stream(ReadStreamRequest), read_all(ReadAllRequest), subscribe(SubscribeRequest),
    ],
};

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(10_000), ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_as_any_request_are_answered_cleanly(
        target in any::<prop::sample::Index>(),
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
    ) {
        let (_name, feed) = TARGETS[target.index(TARGETS.len())];
        feed(&bytes)?;
    }

    /// Bytes that are a valid message with damage: a well-formed request, re-encoded, with
    /// bytes flipped (prost reaches far deeper into these than into random bytes).
    #[test]
    fn damaged_encodings_of_real_requests_are_answered_cleanly(
        request in typed_request(),
        other_target in proptest::option::weighted(0.2, any::<prop::sample::Index>()),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 0..4),
    ) {
        let mut bytes = request.encode_to_vec();
        if !bytes.is_empty() {
            for (at, mask) in flips {
                let at = at.index(bytes.len());
                bytes[at] ^= mask;
            }
        }
        // Mostly as its own message; sometimes as another's (the wire types then disagree).
        let (_name, feed) = match other_target {
            Some(target) => TARGETS[target.index(TARGETS.len())],
            None => *TARGETS
                .iter()
                .find(|(name, _)| *name == request.message_name())
                .expect("every typed request has its target"),
        };
        feed(&bytes)?;
    }
}

// ---- well-typed requests with random field values -------------------------------------------

/// Text of random length and content: empty, short, ASCII, any Unicode, or long (past the
/// limits of the fields it is put in).
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        Just(String::new()),
        "[A-Z]{1,14}",
        "[ -~]{0,80}",
        any::<String>(),
        (1usize..5_000, any::<char>()).prop_map(|(len, c)| c.to_string().repeat(len)),
    ]
    .boxed()
}

/// An id: a UUID, or any text.
fn id() -> BoxedStrategy<String> {
    prop_oneof![
        any::<u128>().prop_map(|n| uuid::Uuid::from_u128(n).to_string()),
        text(),
    ]
    .boxed()
}

/// Any timestamp, in or out of the protobuf range, nanos in or out of range.
fn timestamp() -> BoxedStrategy<prost_types::Timestamp> {
    (any::<i64>(), any::<i32>(), any::<bool>())
        .prop_map(|(seconds, nanos, near)| {
            if near {
                prost_types::Timestamp {
                    seconds: seconds % 300_000_000_000,
                    nanos: nanos.rem_euclid(1_100_000_000),
                }
            } else {
                prost_types::Timestamp { seconds, nanos }
            }
        })
        .boxed()
}

fn header() -> BoxedStrategy<Option<pb::CommandHeader>> {
    (
        id(),
        proptest::option::of(any::<u64>()),
        proptest::option::of((proptest::option::of(timestamp()), any::<i32>())),
        proptest::collection::vec((id(), proptest::option::of(text())), 0..12),
        proptest::option::of(id()),
    )
        .prop_map(
            |(command_id, expected_version, occurred_at, sources, correlation_id)| {
                Some(pb::CommandHeader {
                    command_id,
                    expected_version,
                    occurred_at: occurred_at.map(|(at, precision)| pb::OccurredAt { at, precision }),
                    sources: sources
                        .into_iter()
                        .map(|(source_id, quote)| pb::SourceCitation { source_id, quote })
                        .collect(),
                    correlation_id,
                    ..Default::default()
                })
            },
        )
        .boxed()
}

fn read_options() -> BoxedStrategy<Option<pb::ReadOptions>> {
    proptest::option::of(
        (
            any::<u64>(),
            prop_oneof![
                Just(None),
                any::<u64>().prop_map(|p| Some(pb::read_options::AsOf::AsOfPosition(p))),
                timestamp().prop_map(|t| Some(pb::read_options::AsOf::AsOfTime(t))),
            ],
        )
            .prop_map(|(min_position, as_of)| pb::ReadOptions {
                // Mostly 0: a nonzero one is mostly past the head (OUT_OF_RANGE at once).
                min_position: if min_position % 16 == 0 { min_position } else { 0 },
                as_of,
            }),
    )
    .boxed()
}

fn page() -> BoxedStrategy<Option<pb::PageRequest>> {
    proptest::option::of((any::<u32>(), prop_oneof![text(), "[0-9a-f]{0,1100}"]).prop_map(
        |(page_size, page_token)| pb::PageRequest {
            page_size,
            page_token,
        },
    ))
    .boxed()
}

fn filter() -> BoxedStrategy<Option<pb::EventFilter>> {
    let list = || {
        prop_oneof![
            proptest::collection::vec(text(), 0..8),
            (0usize..300, text()).prop_map(|(len, entry)| vec![entry; len]),
        ]
    };
    proptest::option::of(
        (list(), list(), list()).prop_map(|(event_types, stream_prefixes, tags)| pb::EventFilter {
            event_types,
            stream_prefixes,
            tags,
        }),
    )
    .boxed()
}

/// A well-typed request of one of the kinds below, as the message to feed and encode.
#[derive(Debug, Clone)]
enum Typed {
    RegisterParty(pb::RegisterPartyRequest),
    RecordStatement(pb::RecordStatementRequest),
    Batch(pb::SubmitBatchRequest),
    GetParty(pb::GetPartyRequest),
    ListParties(pb::ListPartiesRequest),
    GetCompliance(pb::GetComplianceRequest),
    ReadAll(pb::ReadAllRequest),
    Subscribe(pb::SubscribeRequest),
}

impl Typed {
    /// The name of its message in [`TARGETS`].
    fn message_name(&self) -> &'static str {
        match self {
            Typed::RegisterParty(_) => "RegisterPartyRequest",
            Typed::RecordStatement(_) => "RecordStatementRequest",
            Typed::Batch(_) => "SubmitBatchRequest",
            Typed::GetParty(_) => "GetPartyRequest",
            Typed::ListParties(_) => "ListPartiesRequest",
            Typed::GetCompliance(_) => "GetComplianceRequest",
            Typed::ReadAll(_) => "ReadAllRequest",
            Typed::Subscribe(_) => "SubscribeRequest",
        }
    }

    fn encode_to_vec(&self) -> Vec<u8> {
        match self {
            Typed::RegisterParty(request) => request.encode_to_vec(),
            Typed::RecordStatement(request) => request.encode_to_vec(),
            Typed::Batch(request) => request.encode_to_vec(),
            Typed::GetParty(request) => request.encode_to_vec(),
            Typed::ListParties(request) => request.encode_to_vec(),
            Typed::GetCompliance(request) => request.encode_to_vec(),
            Typed::ReadAll(request) => request.encode_to_vec(),
            Typed::Subscribe(request) => request.encode_to_vec(),
        }
    }

    /// Takes the request where the server takes it.
    fn feed(self) -> Result<(), TestCaseError> {
        match self {
            Typed::RegisterParty(request) => command(request),
            Typed::RecordStatement(request) => command(request),
            Typed::Batch(request) => batch(request),
            Typed::GetParty(request) => READERS.with(|readers| {
                readers.runtime.block_on(async {
                    answered(QueryService::get_party(&readers.query, timed(request)).await)
                })
            }),
            Typed::ListParties(request) => READERS.with(|readers| {
                readers.runtime.block_on(async {
                    answered(QueryService::list_parties(&readers.query, timed(request)).await)
                })
            }),
            Typed::GetCompliance(request) => READERS.with(|readers| {
                readers.runtime.block_on(async {
                    answered(QueryService::get_compliance(&readers.query, timed(request)).await)
                })
            }),
            Typed::ReadAll(request) => READERS.with(|readers| {
                readers.runtime.block_on(async {
                    answered(EventStoreService::read_all(&readers.store, timed(request)).await)
                })
            }),
            Typed::Subscribe(request) => READERS.with(|readers| {
                readers.runtime.block_on(async {
                    answered(EventStoreService::subscribe(&readers.store, timed(request)).await)
                })
            }),
        }
    }
}

fn register_party() -> BoxedStrategy<pb::RegisterPartyRequest> {
    (
        header(),
        text(),
        any::<i32>(),
        text(),
        proptest::option::of(text()),
        proptest::option::of(text()),
        proptest::option::of(text()),
    )
        .prop_map(
            |(header, code, kind, name, iso_alpha2, iso_alpha3, wikidata_qid)| pb::RegisterPartyRequest {
                header,
                code,
                details: Some(pb::PartyDetails {
                    kind,
                    name,
                    iso_alpha2,
                    iso_alpha3,
                    wikidata_qid,
                    cameo_code: None,
                }),
            },
        )
        .boxed()
}

fn record_statement() -> BoxedStrategy<pb::RecordStatementRequest> {
    (
        header(),
        id(),
        text(),
        proptest::option::of(id()),
        text(),
        any::<bool>(),
    )
        .prop_map(
            |(header, meeting_id, party, official_id, text, verbatim)| pb::RecordStatementRequest {
                header,
                meeting_id,
                speaker: Some(pb::Speaker { party, official_id }),
                text,
                verbatim,
            },
        )
        .boxed()
}

fn typed_request() -> BoxedStrategy<Typed> {
    prop_oneof![
        register_party().prop_map(Typed::RegisterParty),
        record_statement().prop_map(Typed::RecordStatement),
        proptest::collection::vec(
            prop_oneof![
                register_party().prop_map(|r| Some(pb::batch_command::Command::RegisterParty(r))),
                record_statement().prop_map(|r| Some(pb::batch_command::Command::RecordStatement(r))),
                Just(None),
            ],
            0..6,
        )
        .prop_map(|commands| Typed::Batch(pb::SubmitBatchRequest {
            commands: commands
                .into_iter()
                .map(|command| pb::BatchCommand { command })
                .collect(),
        })),
        (text(), read_options())
            .prop_map(|(code, options)| Typed::GetParty(pb::GetPartyRequest { code, options })),
        (page(), read_options())
            .prop_map(|(page, options)| Typed::ListParties(pb::ListPartiesRequest { page, options })),
        (text(), read_options())
            .prop_map(|(party, options)| Typed::GetCompliance(pb::GetComplianceRequest { party, options })),
        (
            proptest::option::of(any::<u64>()),
            any::<i32>(),
            any::<u32>(),
            filter()
        )
            .prop_map(|(from_position, direction, limit, filter)| Typed::ReadAll(
                pb::ReadAllRequest {
                    from_position,
                    direction,
                    limit,
                    filter,
                    ..Default::default()
                }
            )),
        (
            prop_oneof![
                Just(None),
                Just(Some(pb::subscribe_request::Start::FromStart(
                    pb::SubscribeFromStart {}
                ))),
                Just(Some(pb::subscribe_request::Start::FromEnd(
                    pb::SubscribeFromEnd {}
                ))),
                any::<u64>().prop_map(|p| Some(pb::subscribe_request::Start::AfterPosition(p))),
            ],
            filter(),
            any::<bool>(),
        )
            .prop_map(
                |(start, filter, omit_typed_body)| Typed::Subscribe(pb::SubscribeRequest {
                    start,
                    filter,
                    omit_typed_body,
                })
            ),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(2_000), ..ProptestConfig::default() })]

    #[test]
    fn well_typed_requests_with_random_values_are_answered_cleanly(request in typed_request()) {
        request.feed()?;
    }
}
