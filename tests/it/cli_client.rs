//! The client verbs of the real `dipledger` binary (`relation`, `history`, `tail`) against a real
//! server on 127.0.0.1:0 holding the news report, in human and --json output.

use crate::support::api::*;
use crate::support::cli::dipledger_async as run;
use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::ledger::{CommandEnvelope, Ledger};
use dipledger::sample::{meeting_id, news_report_commands};
use uuid::Uuid;

fn args(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| s.to_string()).collect()
}

/// A server holding the news report, with its read models caught up.
async fn server_with_the_report() -> (Harness, u64) {
    let harness = Harness::start().await;
    let ledger = Ledger::new(harness.log.clone());
    let mut last = 0;
    for command in news_report_commands() {
        last = ledger
            .handle(CommandEnvelope::new(Uuid::now_v7(), command, "cli"))
            .await
            .unwrap()
            .last_position()
            .unwrap();
    }
    applied(&harness, last).await;
    (harness, last)
}

/// Waits (bounded by the server's own deadline) until the read models have applied `position`.
async fn applied(harness: &Harness, position: u64) {
    let mut queries = QueryServiceClient::new(harness.channel().await);
    queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "FRA".into(),
            page: None,
            options: Some(pb::ReadOptions {
                min_position: position,
                as_of: None,
            }),
        })
        .await
        .unwrap();
}

/// Asserts that a CLI run exited with success, showing its standard error when it did not.
#[track_caller]
fn assert_succeeded(output: &std::process::Output) {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relation_and_history_in_human_and_json_output() {
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let human = run(&args(&["relation", "LBY", "FRA", "--server", &server])).await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert_succeeded(&human);
    assert!(text.contains(&format!("(as of position {last})")), "{text}");
    assert!(
        text.contains("meetings 1 (held 1, planned 0, postponed 0, cancelled 0), commitments 1"),
        "{text}"
    );
    assert!(text.contains("Benghazi"), "{text}");

    let json = run(&args(&["relation", "LBY", "FRA", "--json", "--server", &server])).await;
    let document: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(document["meetings"], 1);
    assert_eq!(document["goldstein_by_month"]["2025-01"], 10.0);
    assert_eq!(document["timeline"].as_array().unwrap().len(), 2);

    let before = run(&args(&[
        "relation", "LBY", "FRA", "--as-of", "7", "--json", "--server", &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&before.stdout).unwrap();
    assert_eq!(
        (
            document["based_on_position"].as_u64(),
            document["meetings"].as_i64()
        ),
        (Some(7), Some(0)),
        "before the meeting was recorded"
    );

    let history = run(&args(&[
        "history",
        &meeting_id().stream_id(),
        "--json",
        "--server",
        &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let entries = document["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2);
    assert_eq!(entries[0]["event_type"], "MeetingHeld");
    assert_eq!(entries[0]["recorded_by"], "cli");
    assert_eq!(
        entries[0]["sources"][0]["url"],
        "file:data/news-libya-france-benghazi.txt"
    );
    let human = run(&args(&[
        "history",
        &meeting_id().stream_id(),
        "--server",
        &server,
    ]))
    .await;
    assert!(String::from_utf8_lossy(&human.stdout).contains("StatementRecorded"));

    let bad = run(&args(&[
        "relation",
        "LBY",
        "FRA",
        "--as-of",
        "last tuesday",
        "--server",
        &server,
    ]))
    .await;
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("neither a position nor an ISO 8601 time"));
    let missing = run(&args(&["history", "meeting-nothing", "--server", &server])).await;
    assert!(!missing.status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_prints_history_and_resumes_after_a_position() {
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let all = run(&args(&[
        "tail",
        "--from",
        "start",
        "--limit",
        &last.to_string(),
        "--json",
        "--server",
        &server,
    ]))
    .await;
    assert_succeeded(&all);
    let positions: Vec<u64> = String::from_utf8_lossy(&all.stdout)
        .lines()
        .map(|line| {
            serde_json::from_str::<serde_json::Value>(line).unwrap()["position"]
                .as_u64()
                .unwrap()
        })
        .collect();
    assert_eq!(positions, (1..=last).collect::<Vec<_>>());
    let resumed = run(&args(&[
        "tail", "--from", "5", "--limit", "3", "--server", &server,
    ]))
    .await;
    let lines: Vec<String> = String::from_utf8_lossy(&resumed.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    let resumed_positions: Vec<u64> = lines
        .iter()
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(resumed_positions, vec![6, 7, 8]);
    let meetings = run(&args(&[
        "tail",
        "--from",
        "start",
        "--type",
        "MeetingHeld",
        "--limit",
        "1",
        "--server",
        &server,
    ]))
    .await;
    assert!(String::from_utf8_lossy(&meetings.stdout).contains("MeetingHeld"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn show_and_list_verbs_in_human_and_json_output() {
    use dipledger::sample::{commitment_id, official_b};
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let meeting = meeting_id().to_string();
    let shown = run(&args(&[
        "meeting", "show", &meeting, "--json", "--server", &server,
    ]))
    .await;
    assert_succeeded(&shown);
    let document: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    assert_eq!(document["based_on_position"], last);
    assert_eq!(document["meeting"]["place"], "Benghazi");
    assert_eq!(document["meeting"]["status"], "MEETING_STATUS_HELD");
    assert_eq!(document["meeting"]["statements"].as_array().unwrap().len(), 1);
    let card = run(&args(&["meeting", "show", &meeting, "--server", &server])).await;
    assert!(String::from_utf8_lossy(&card.stdout).contains("Benghazi"));
    let earlier = run(&args(&[
        "meeting", "show", &meeting, "--as-of", "3", "--server", &server,
    ]))
    .await;
    assert!(
        !earlier.status.success(),
        "the meeting did not exist at position 3"
    );

    let listed = run(&args(&[
        "meeting", "list", "--party", "LBY", "--topic", "security", "--status", "held", "--json", "--server",
        &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(document["meetings"].as_array().unwrap().len(), 1);
    let none = run(&args(&[
        "meeting", "list", "--topic", "trade", "--json", "--server", &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&none.stdout).unwrap();
    assert!(document["meetings"].as_array().unwrap().is_empty());

    let commitments = run(&args(&[
        "commitment",
        "list",
        "--party",
        "FRA",
        "--server",
        &server,
    ]))
    .await;
    let text = String::from_utf8_lossy(&commitments.stdout);
    assert!(
        text.starts_with("1 commitment (as of") && text.contains(&commitment_id().to_string()),
        "{text}"
    );
    let commitment = run(&args(&[
        "commitment",
        "show",
        &commitment_id().to_string(),
        "--json",
        "--server",
        &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&commitment.stdout).unwrap();
    assert_eq!(document["commitment"]["topics"].as_array().unwrap().len(), 4);

    let official = run(&args(&[
        "official",
        "show",
        &official_b().to_string(),
        "--json",
        "--server",
        &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&official.stdout).unwrap();
    assert_eq!(document["official"]["name"], "Mostafa Mihraje");
    assert_eq!(document["official"]["offices"][0]["accredited_to"], "LBY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relation_draws_an_svg_timeline() {
    let (harness, _) = server_with_the_report().await;
    let server = harness.server.uri();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lby-fra.svg");
    let drawn = run(&args(&[
        "relation",
        "LBY",
        "FRA",
        "--svg",
        path.to_str().unwrap(),
        "--server",
        &server,
    ]))
    .await;
    assert_succeeded(&drawn);
    assert!(String::from_utf8_lossy(&drawn.stderr)
        .contains("1 months of Goldstein sums, 1 meetings, 1 commitments"));
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(svg.starts_with("<svg"), "an SVG document");
    assert!(
        svg.matches("<circle").count() >= 2,
        "the Goldstein point and the meeting mark"
    );
    assert!(svg.contains("<rect"), "the commitment mark");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_sees_live_events() {
    use std::io::{BufRead, BufReader};
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let mut tail = std::process::Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .args([
            "tail", "--from", "end", "--limit", "1", "--json", "--server", &server,
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start tail");
    // Record until tail has printed (it may connect after the first command; retry a bounded
    // number of times, each a new event).
    let ledger = Ledger::new(harness.log.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let line = BufReader::new(tail.stdout.take().unwrap())
            .lines()
            .next()
            .unwrap()
            .unwrap();
        let status = tail.wait().unwrap();
        (line, status)
    });
    let mut recorded = Vec::new();
    for attempt in 0..50 {
        if reader.is_finished() {
            break;
        }
        let command =
            dipledger::domain::DomainCommand::Meeting(dipledger::domain::meeting::Command::RecordStatement {
                meeting_id: meeting_id(),
                speaker: dipledger::domain::meeting::Speaker {
                    party: "FRA".into(),
                    official_id: None,
                },
                text: format!("live statement {attempt}"),
                verbatim: false,
                provenance: dipledger::sample::cite(dipledger::sample::TEXT_TALKS),
            });
        let outcome = ledger
            .handle(CommandEnvelope::new(Uuid::now_v7(), command, "cli"))
            .await
            .unwrap();
        recorded.push(outcome.last_position().unwrap());
        tokio::task::yield_now().await;
        // Give tail a moment to subscribe between commands without depending on timing for
        // correctness: whichever event it sees first must be one recorded after `last`.
        let _ = tokio::time::timeout(std::time::Duration::from_millis(100), async {
            while !reader.is_finished() {
                tokio::task::yield_now().await;
            }
        })
        .await;
    }
    let (line, status) = within("tail", reader).await.unwrap();
    assert!(status.success());
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let position = event["position"].as_u64().unwrap();
    assert!(
        position > last && recorded.contains(&position),
        "a live event: {line}"
    );
    assert_eq!(event["event_type"], "StatementRecorded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retract_marks_an_event_as_withdrawn_and_history_shows_both() {
    use dipledger::sample::source_id;
    let (harness, _) = server_with_the_report().await;
    let server = harness.server.uri();
    // The meeting named by its bare UUID for `retract` and `history` (the stream id works too).
    let bare = meeting_id().to_string();
    let source = source_id().to_string();
    let retracted = run(&args(&[
        "retract",
        &bare,
        "--version",
        "2",
        "--reason",
        "misattributed",
        "--occurred-at",
        "2025-01-20",
        "--source",
        &source,
        "--server",
        &server,
    ]))
    .await;
    assert_succeeded(&retracted);
    let printed = String::from_utf8_lossy(&retracted.stdout);
    assert!(
        printed.contains(&format!("entity: {}", meeting_id().stream_id())),
        "recording prints the stream id"
    );
    let position: u64 = printed
        .split("at position ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("recording prints its position: {printed}"));
    // Read your own write: history waits until the read models have applied the retraction.
    let position_text = position.to_string();
    let history = run(&args(&[
        "history",
        &bare,
        "--json",
        "--min-position",
        &position_text,
        "--server",
        &server,
    ]))
    .await;
    let document: serde_json::Value = serde_json::from_slice(&history.stdout).unwrap();
    let entries = document["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 3);
    assert_eq!(
        entries[1]["retracted_by"], 3,
        "the statement is marked retracted by v3"
    );
    assert_eq!(entries[2]["retracts_version"], 2);
    assert_eq!(entries[2]["reason"], "misattributed");
    let party = run(&args(&[
        "retract",
        "party-LBY",
        "--version",
        "1",
        "--reason",
        "x",
        "--server",
        &server,
    ]))
    .await;
    assert!(!party.status.success());
    assert!(String::from_utf8_lossy(&party.stderr).contains("cannot be retracted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_verb_waits_for_its_min_position_and_names_it_when_it_is_not_reached() {
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let at = last.to_string();
    let reached = run(&args(&[
        "relation",
        "LBY",
        "FRA",
        "--json",
        "--min-position",
        &at,
        "--server",
        &server,
    ]))
    .await;
    assert_succeeded(&reached);
    let answer: serde_json::Value = serde_json::from_slice(&reached.stdout).unwrap();
    assert!(answer["based_on_position"].as_u64().unwrap() >= last, "{answer}");
    // Past the head it is no position the server gave: refused at once (OUT_OF_RANGE), naming
    // the field and the position.
    let beyond = (last + 1_000).to_string();
    let refused = run(&args(&[
        "history",
        "party-LBY",
        "--min-position",
        &beyond,
        "--server",
        &server,
    ]))
    .await;
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains(&format!("min_position {beyond} is past the head")),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relation_with_a_party_no_one_registered_fails_naming_it() {
    let (harness, last) = server_with_the_report().await;
    let server = harness.server.uri();
    let output = run(&args(&["relation", "LBY", "FRNC", "--server", &server])).await;
    assert!(!output.status.success(), "exit status {:?}", output.status);
    assert!(output.stdout.is_empty(), "no answer printed");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("party FRNC is not registered (as of position {last})")),
        "{stderr}"
    );
}
