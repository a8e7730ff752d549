//! Consistency and limits: read-your-writes through `min_position`, the bounded wait and its
//! UNAVAILABLE error, as-of bounds, and every named limit.

use std::time::Duration;

use crate::support::projections::*;
use dipledger::domain::party::{self, PartyDetails, PartyKind};
use dipledger::domain::{DomainCommand, DomainEvent};
use dipledger::projections::consistency::MAX_WAIT;
use dipledger::projections::history::MAX_HISTORY_PAGE;
use dipledger::projections::store::{MAX_PAGE_SIZE, MAX_PAGE_TOKEN_CHARS};
use dipledger::projections::{
    AsOf, MeetingFilter, PageRequest, ProjectionError, ProjectionName, Projections, ReadOptions,
};

/// A log holding the source every command cites.
fn log_with_source() -> (tempfile::TempDir, dipledger::log::Log) {
    let (dir, log) = temp_log();
    let command = DomainCommand::Source(dipledger::domain::source::Command::RegisterSource {
        source_id: source_id(),
        details: dipledger::domain::source::SourceDetails {
            url: Some("https://example.org/report".into()),
            publisher: None,
            title: None,
            published_at: None,
            retrieved_at: dipledger::time::Timestamp::from_unix_micros(WEDNESDAY_MICROS),
            language: "en".into(),
        },
    });
    record(&log, &command, "tester").expect("source");
    (dir, log)
}

fn register(log: &dipledger::log::Log, code: &str) -> u64 {
    let command = DomainCommand::Party(party::Command::RegisterParty {
        code: code.into(),
        details: PartyDetails {
            kind: PartyKind::State,
            name: format!("State {code}"),
            iso_alpha2: None,
            iso_alpha3: None,
            wikidata_qid: None,
            cameo_code: None,
        },
        provenance: cite_on(day(0), None),
    });
    record(log, &command, "tester").expect("accepted")
}

#[test]
fn a_client_reads_its_own_write() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open(log.clone()).expect("open");
    for (index, code) in ["AAA", "BBB", "CCC"].iter().enumerate() {
        let position = register(&log, code);
        let options = ReadOptions::latest()
            .min_position(position)
            .wait(Duration::from_secs(10));
        let answer = projections.party(code, &options).expect("own write visible");
        assert!(answer.based_on_position() >= position);
        let parties = projections
            .parties(&PageRequest::default(), &options)
            .expect("parties");
        assert_eq!(parties.items().len(), index + 1);
    }
}

#[test]
fn async_wait_for_a_position() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open(log.clone()).expect("open");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let position = register(&log, "AAA");
    let reached = runtime
        .block_on(projections.wait_for(ProjectionName::Directory, position, Duration::from_secs(10)))
        .expect("reached");
    assert!(reached >= position);
    let unreachable = runtime.block_on(projections.wait_for(
        ProjectionName::Directory,
        position + 100,
        Duration::from_millis(20),
    ));
    assert!(matches!(
        unreachable,
        Err(ProjectionError::Unavailable { wanted, .. }) if wanted == position + 100
    ));
}

#[test]
fn a_query_waits_for_the_read_model_within_its_deadline() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open_paused(log.clone()).expect("open");
    let position = register(&log, "AAA");
    // Not applied and nobody applying: UNAVAILABLE once the wait is over, saying how far it got.
    let short = ReadOptions::latest()
        .min_position(position)
        .wait(Duration::from_millis(20));
    match projections.party("AAA", &short) {
        Err(ProjectionError::Unavailable {
            projection,
            wanted,
            reached,
        }) => {
            assert_eq!((projection, wanted, reached), ("directory", position, 0));
        }
        other => panic!("expected unavailable, got {other:?}"),
    }
    // A waiting query is released as soon as the runner applies the position.
    std::thread::scope(|scope| {
        let waiter = scope.spawn(|| {
            let options = ReadOptions::latest()
                .min_position(position)
                .wait(Duration::from_secs(10));
            projections.party("AAA", &options)
        });
        projections.catch_up().expect("catch up");
        let answer = waiter.join().expect("waiter").expect("answered");
        assert_eq!(answer.based_on_position(), position);
    });
}

#[test]
fn as_of_bounds_and_not_found() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open_paused(log.clone()).expect("open");
    let first = register(&log, "AAA");
    let second = register(&log, "BBB");
    projections.catch_up().expect("catch up");
    let at_first = ReadOptions::latest().as_of(AsOf::Position(first));
    assert!(projections.party("AAA", &at_first).is_ok());
    assert!(matches!(
        projections.party("BBB", &at_first),
        Err(ProjectionError::NotFound { .. })
    ));
    assert!(projections.party("BBB", &ReadOptions::latest()).is_ok());
    assert!(matches!(
        projections.party("AAA", &ReadOptions::latest().as_of(AsOf::Position(second + 1))),
        Err(ProjectionError::OutOfRange { field: "as_of_position", requested, head })
            if requested == second + 1 && head == second
    ));
    // A min_position past the head is no position a client was given: refused at once, not
    // waited for (the wait here would be a minute).
    let beyond = ReadOptions::latest()
        .min_position(second + 1)
        .wait(Duration::from_secs(60));
    let started = std::time::Instant::now();
    assert!(matches!(
        projections.party("AAA", &beyond),
        Err(ProjectionError::OutOfRange { field: "min_position", requested, head })
            if requested == second + 1 && head == second
    ));
    assert!(started.elapsed() < Duration::from_secs(30), "not waited for");
    // as_of_time before anything was recorded: nothing existed.
    let before_all = ReadOptions::latest().as_of(AsOf::Time(dipledger::time::Timestamp::EPOCH));
    let parties = projections
        .parties(&PageRequest::default(), &before_all)
        .expect("parties");
    assert_eq!(parties.based_on_position(), 0);
    assert!(parties.items().is_empty());
}

#[test]
fn limits_are_enforced() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open_paused(log.clone()).expect("open");
    register(&log, "AAA");
    projections.catch_up().expect("catch up");
    let options = ReadOptions::latest();
    fn invalid<T>(result: Result<T, ProjectionError>) -> bool {
        matches!(result, Err(ProjectionError::InvalidArgument { .. }))
    }
    let filter = MeetingFilter::default();
    assert!(projections
        .meetings(&filter, &PageRequest::first(MAX_PAGE_SIZE), &options)
        .is_ok());
    assert!(invalid(projections.meetings(
        &filter,
        &PageRequest::first(MAX_PAGE_SIZE + 1),
        &options
    )));
    assert!(invalid(
        projections.parties(&PageRequest::first(MAX_PAGE_SIZE + 1), &options)
    ));
    let token = |token: String| PageRequest {
        limit: 10,
        token: Some(token),
    };
    assert!(invalid(projections.parties(&token("zz".into()), &options)));
    assert!(invalid(
        projections.parties(&token("0".repeat(MAX_PAGE_TOKEN_CHARS + 2)), &options)
    ));
    // A token of another list is refused, not misread.
    assert!(invalid(projections.parties(&token("4961".into()), &options)));
    assert!(invalid(
        projections.party("AAA", &options.wait(MAX_WAIT + Duration::from_secs(1)))
    ));
    assert!(projections.party("AAA", &options.wait(MAX_WAIT)).is_ok());
    assert!(invalid(projections.history(
        "party-AAA",
        &PageRequest::first(MAX_HISTORY_PAGE + 1),
        &options
    )));
    assert_eq!(
        projections
            .history("party-AAA", &PageRequest::first(MAX_HISTORY_PAGE), &options)
            .expect("history")
            .items()
            .len(),
        1
    );
    assert!(invalid(projections.relation(
        "AAA",
        "AAA",
        &PageRequest::default(),
        &options
    )));
}

#[test]
fn list_pages_follow_tokens() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open_paused(log.clone()).expect("open");
    let codes = ["AAA", "BBB", "CCC", "DDD", "EEE"];
    for code in codes {
        register(&log, code);
    }
    projections.catch_up().expect("catch up");
    let mut request = PageRequest::first(2);
    let mut seen = Vec::new();
    let mut pages = 0;
    loop {
        let page = projections
            .parties(&request, &ReadOptions::latest())
            .expect("page");
        pages += 1;
        assert!(page.items().len() <= 2);
        seen.extend(page.items().iter().map(|party| party.code.clone()));
        match page.next_page_token() {
            Some(token) => request.token = Some(token.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, codes);
    assert_eq!(pages, 3);
}

/// A latest history is as of the directory read model's position, like every read-model
/// answer: it does not wait for the log's head (which a steady writer keeps moving), and
/// `min_position` still makes it wait for a client's own write.
#[test]
fn a_latest_history_reads_at_the_directory_and_waits_only_for_min_position() {
    let (_dir, log) = log_with_source();
    let projections = Projections::open_paused(log.clone()).expect("open");
    let registered = register(&log, "AAA");
    projections.catch_up().expect("catch up");
    let correction = DomainCommand::Party(party::Command::CorrectParty {
        code: "AAA".into(),
        corrects_version: 1,
        reason: "name".into(),
        details: PartyDetails {
            kind: PartyKind::State,
            name: "State AAA, corrected".into(),
            iso_alpha2: None,
            iso_alpha3: None,
            wikidata_qid: None,
            cameo_code: None,
        },
        provenance: cite_on(day(0), None),
    });
    let corrected = record(&log, &correction, "tester").expect("accepted");
    assert!(corrected > registered && log.head() == corrected);
    // The runner is paused: the directory is at `registered`, the log's head past it.
    let latest = ReadOptions::latest().wait(Duration::from_millis(50));
    let page = projections
        .history("party-AAA", &PageRequest::first(10), &latest)
        .expect("a latest history does not wait for the head");
    assert_eq!(page.based_on_position(), registered);
    assert_eq!(
        page.items().len(),
        1,
        "the correction is past the directory's position"
    );
    assert!(page.items()[0].corrected_by.is_none());
    let own_write = latest.min_position(corrected);
    assert!(matches!(
        projections.history("party-AAA", &PageRequest::first(10), &own_write),
        Err(ProjectionError::Unavailable { .. })
    ));
    projections.catch_up().expect("catch up");
    let page = projections
        .history("party-AAA", &PageRequest::first(10), &own_write)
        .expect("history");
    assert_eq!(page.based_on_position(), corrected);
    assert_eq!(page.items().len(), 2);
    assert_eq!(page.items()[0].corrected_by, Some(2));
}

/// A page of commitments ends, with a token, once its rows reach `MAX_PAGE_BYTES`, whatever the
/// page size asked: a commitment keeps up to 500 reaffirmations and 500 assessments with their
/// texts, and 500 such rows would be far past a response's limit.
#[test]
fn a_page_of_large_commitments_ends_at_max_page_bytes() {
    use dipledger::domain::commitment::{
        self, CommitmentDetails, CommitmentKind, CommitmentReaffirmed, CommitmentRecorded, CooperationKind,
        Specificity,
    };
    use dipledger::domain::common::{CommitmentId, MAX_TEXT_LEN};
    use dipledger::projections::store::MAX_PAGE_BYTES;
    use dipledger::projections::CommitmentFilter;
    let (_dir, log) = temp_log();
    let commitments = 4;
    for n in 0..commitments {
        let commitment_id = CommitmentId::from_uuid(uuid::Uuid::from_u128(0xC000 + n));
        let mut events = vec![DomainEvent::Commitment(commitment::Event::CommitmentRecorded(
            CommitmentRecorded {
                commitment_id,
                details: CommitmentDetails {
                    kind: CommitmentKind::New,
                    committing_parties: vec!["LBY".into(), "FRA".into()],
                    voiced_by: vec![],
                    counterparties: vec![],
                    text: "cooperate".into(),
                    verbatim: false,
                    topics: vec![],
                    specificity: Specificity::Specific,
                    cooperation: CooperationKind::Diplomatic,
                    due_by: None,
                    made_at_meeting: None,
                },
                provenance: cite_on(day(0), None),
            },
        ))];
        let reaffirmed =
            DomainEvent::Commitment(commitment::Event::CommitmentReaffirmed(CommitmentReaffirmed {
                commitment_id,
                reaffirmed_by: vec!["LBY".into()],
                voiced_by: vec![],
                at_meeting: None,
                text: Some("x".repeat(MAX_TEXT_LEN)),
                provenance: cite_on(day(0), None),
            }));
        events.extend(std::iter::repeat_n(reaffirmed, 400));
        dipledger::testing::projections_bench::append_entity(&log, commitment_id.stream_id(), &events)
            .expect("append");
    }
    let projections = Projections::open_paused(log.clone()).expect("open");
    projections.catch_up().expect("catch up");
    let filter = CommitmentFilter::default();
    let first = projections
        .commitments(&filter, &PageRequest::first(100), &ReadOptions::latest())
        .expect("list");
    let row_bytes = first.items()[0].approximate_bytes();
    assert!(row_bytes > 1_600_000, "{row_bytes}");
    let per_page = MAX_PAGE_BYTES.div_ceil(row_bytes);
    assert!(per_page < commitments as usize, "the rows do not fit one page");
    assert_eq!(
        first.items().len(),
        per_page,
        "the page ends at the first row past the bytes"
    );
    let token = first.next_page_token().expect("a token for the rest").to_owned();
    let rest = projections
        .commitments(
            &filter,
            &PageRequest {
                limit: 100,
                token: Some(token),
            },
            &ReadOptions::latest(),
        )
        .expect("next page");
    assert_eq!(first.items().len() + rest.items().len(), commitments as usize);
    assert!(rest.next_page_token().is_none());
    let mut ids: Vec<_> = first
        .items()
        .iter()
        .chain(rest.items())
        .map(|row| row.commitment_id)
        .collect();
    ids.sort_by_key(|id| id.uuid());
    ids.dedup();
    assert_eq!(ids.len(), commitments as usize, "every commitment once, in order");
}
