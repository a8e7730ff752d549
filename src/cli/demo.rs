//! `dipledger demo`: an embedded server on a temporary directory, the sample news report and a
//! few illustrative scenarios recorded, then the Libya-France relation and the audit trail of the
//! Benghazi meeting read back over gRPC, as a newcomer would.
//!
//! The news report's facts come from `dipledger::sample`. The other scenarios are **illustrative**
//! (a rescheduled meeting, a cancelled one, commitments fulfilled, lapsed and corrected): they
//! cite a source that says so, and are not facts from any report.

use std::fmt::Write as _;

use anyhow::Context;
use uuid::Uuid;

use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::api::server::{RunningServer, ServerOptions};
use dipledger::domain::commitment::{self, CommitmentDetails, CommitmentKind, CooperationKind, Specificity};
use dipledger::domain::common::{
    CommitmentId, MeetingId, Provenance, SourceCitation, SourceId, TimeWindow, WindowKind,
};
use dipledger::domain::meeting::{self, Location, MeetingDetails};
use dipledger::domain::source::{self, SourceDetails};
use dipledger::domain::DomainCommand;
use dipledger::ledger::{CommandEnvelope, Ledger};
use dipledger::log::{Log, LogConfig};
use dipledger::sample::{self, day, held_details};
use dipledger::time::Timestamp;

fn illustrative_source() -> SourceId {
    SourceId::from_uuid(Uuid::from_u128(0xD0))
}

fn cite_illustration(offset_days: i64) -> Provenance {
    Provenance {
        occurred_at: day(offset_days),
        sources: vec![SourceCitation {
            source_id: illustrative_source(),
            quote: None,
        }],
    }
}

fn in_paris() -> MeetingDetails {
    let mut details = held_details();
    details.location = Some(Location {
        place: "Paris".into(),
        country: Some("FRA".into()),
    });
    details.topics = vec!["migration".into()];
    details.summary = Some("Illustrative follow-up talks on migration.".into());
    details
}

fn commitment_details(text: &str, topic: &str, due_in_days: Option<i64>) -> CommitmentDetails {
    CommitmentDetails {
        kind: CommitmentKind::New,
        committing_parties: vec!["LBY".into(), "FRA".into()],
        voiced_by: vec![],
        counterparties: vec![],
        text: text.into(),
        verbatim: false,
        topics: vec![topic.into()],
        specificity: Specificity::Specific,
        cooperation: CooperationKind::Diplomatic,
        due_by: due_in_days.map(day),
        made_at_meeting: None,
    }
}

/// The illustrative scenarios, after the news report.
fn scenarios() -> Vec<DomainCommand> {
    let (rescheduled, cancelled) = (
        MeetingId::from_uuid(Uuid::from_u128(0xE1)),
        MeetingId::from_uuid(Uuid::from_u128(0xE2)),
    );
    let (fulfilled, lapsed, corrected) = (
        CommitmentId::from_uuid(Uuid::from_u128(0xF1)),
        CommitmentId::from_uuid(Uuid::from_u128(0xF2)),
        CommitmentId::from_uuid(Uuid::from_u128(0xF3)),
    );
    let window = |offset: i64| TimeWindow {
        start: day(offset),
        end: None,
        kind: WindowKind::Span,
    };
    let mut wrong = commitment_details("hold a joint border-security workshop", "security", Some(60));
    wrong.committing_parties = vec!["LBY".into()];
    vec![
        DomainCommand::Source(source::Command::RegisterSource {
            source_id: illustrative_source(),
            details: SourceDetails {
                url: None,
                publisher: None,
                title: Some("dipledger demo: illustrative scenarios, not a real report".into()),
                published_at: None,
                retrieved_at: Timestamp::from_unix_micros(sample::WEDNESDAY_MICROS),
                language: "en".into(),
            },
        }),
        DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
            meeting_id: rescheduled,
            details: in_paris(),
            window: window(30),
            provenance: cite_illustration(1),
        }),
        DomainCommand::Meeting(meeting::Command::RescheduleMeeting {
            meeting_id: rescheduled,
            window: window(37),
            reason: Some("illustrative: postponed by a week".into()),
            provenance: cite_illustration(20),
        }),
        DomainCommand::Meeting(meeting::Command::RecordMeetingHeld {
            meeting_id: rescheduled,
            details: in_paris(),
            ended_at: None,
            provenance: cite_illustration(37),
        }),
        DomainCommand::Meeting(meeting::Command::ScheduleMeeting {
            meeting_id: cancelled,
            details: in_paris(),
            window: window(60),
            provenance: cite_illustration(40),
        }),
        DomainCommand::Meeting(meeting::Command::CancelMeeting {
            meeting_id: cancelled,
            cancelled_by: Vec::new(),
            reason: Some("illustrative: cancelled".into()),
            provenance: cite_illustration(55),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: fulfilled,
            details: commitment_details(
                "reopen the consular section in Benghazi",
                "consular-affairs",
                Some(90),
            ),
            provenance: cite_illustration(37),
        }),
        DomainCommand::Commitment(commitment::Command::FulfilCommitment {
            commitment_id: fulfilled,
            summary: "illustrative: the section reopened".into(),
            provenance: cite_illustration(80),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: lapsed,
            details: commitment_details("sign a readmission protocol", "migration", Some(45)),
            provenance: cite_illustration(37),
        }),
        DomainCommand::Commitment(commitment::Command::MarkCommitmentLapsed {
            commitment_id: lapsed,
            reason: "illustrative: the due date passed without a protocol".into(),
            provenance: cite_illustration(50),
        }),
        DomainCommand::Commitment(commitment::Command::RecordCommitment {
            commitment_id: corrected,
            details: wrong,
            provenance: cite_illustration(37),
        }),
        DomainCommand::Commitment(commitment::Command::CorrectCommitment {
            commitment_id: corrected,
            corrects_version: 1,
            reason: "illustrative: both parties committed, not only Libya".into(),
            details: commitment_details("hold a joint border-security workshop", "security", Some(60)),
            provenance: cite_illustration(38),
        }),
    ]
}

/// The command id of the demo's `index`-th command: fixed, so running the demo again against the
/// same server is an idempotent retry (the original results come back, nothing is recorded twice).
fn demo_command_id(index: usize) -> Uuid {
    Uuid::from_u128(0xDE40_0000_0000_0000_0000_0000_0000_0000 + index as u128)
}

/// The head of the server's log now.
async fn head_of(connection: super::Connection) -> anyhow::Result<u64> {
    let mut store = pb::event_store_service_client::EventStoreServiceClient::new(connection);
    let page = store
        .read_all(pb::ReadAllRequest {
            direction: pb::Direction::Backwards as i32,
            limit: 1,
            omit_typed_body: true,
            ..Default::default()
        })
        .await
        .map_err(super::describe)?
        .into_inner();
    Ok(page.head)
}

/// Runs the demo and returns what it prints: on an embedded server over a temporary directory,
/// or, with `server`, through the CommandService of a running server.
pub async fn run(server: Option<String>) -> anyhow::Result<String> {
    let mut out = String::new();
    let commands: Vec<_> = sample::news_report_commands()
        .into_iter()
        .chain(scenarios())
        .collect();
    let mut last = 0;
    let mut nothing_new = false;
    let (uri, embedded) = match server {
        Some(uri) => {
            writeln!(out, "dipledger demo: recording through {uri}\n")?;
            let connection = super::connect(&uri).await?;
            let head_before = head_of(connection.clone()).await?;
            let mut client = pb::command_service_client::CommandServiceClient::new(connection);
            let mut new_events = 0;
            for (index, command) in commands.iter().enumerate() {
                let request = pb::SubmitBatchRequest {
                    commands: vec![dipledger::api::convert::command_to_pb(
                        command,
                        demo_command_id(index),
                    )],
                };
                let response = client
                    .submit_batch(request)
                    .await
                    .map_err(super::describe)?
                    .into_inner();
                let positions: Vec<u64> = response
                    .results
                    .iter()
                    .flat_map(|r| r.result.iter().flat_map(|r| r.positions.iter().copied()))
                    .collect();
                // A command recorded before (an earlier run) answers its original positions.
                new_events += positions
                    .iter()
                    .filter(|position| **position > head_before)
                    .count();
                last = positions.into_iter().fold(last, u64::max);
            }
            nothing_new = new_events == 0;
            if nothing_new {
                writeln!(
                    out,
                    "nothing new was recorded: this server already holds every command of the demo \
                     (its command ids were recorded by an earlier run; positions up to {last})\n"
                )?;
            }
            (uri, None)
        }
        None => {
            let dir = tempfile::tempdir().context("creating a temporary directory")?;
            let log = Log::open(LogConfig::new(dir.path()))?;
            let server =
                RunningServer::start(log.clone(), "127.0.0.1:0".parse()?, ServerOptions::default()).await?;
            writeln!(
                out,
                "dipledger demo: embedded server on {} (data in a temporary directory)\n",
                server.uri()
            )?;
            let ledger = Ledger::new(log.clone());
            for (index, command) in commands.iter().enumerate() {
                let envelope = CommandEnvelope::new(demo_command_id(index), command.clone(), "demo");
                last = ledger.handle(envelope).await?.last_position().unwrap_or(last);
            }
            (server.uri(), Some((server, dir)))
        }
    };
    if !nothing_new {
        writeln!(
            out,
            "recorded the Libya-France news report and illustrative scenarios: {last} events\n"
        )?;
    }

    let mut queries = QueryServiceClient::connect(uri).await?;
    let options = Some(pb::ReadOptions {
        min_position: last,
        as_of: None,
    });
    let relation = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: "LBY".into(),
            party_b: "FRA".into(),
            page: None,
            options,
        })
        .await?
        .into_inner();
    writeln!(
        out,
        "Libya-France relation (as of position {})",
        relation.based_on_position
    )?;
    writeln!(
        out,
        "  meetings: {} (held {}, planned {}, postponed {}, cancelled {})   commitments: {} (open {}, fulfilled {}, lapsed/withdrawn/superseded {})",
        relation.meetings,
        relation.meetings_held,
        relation.meetings_planned,
        relation.meetings_postponed,
        relation.meetings_cancelled,
        relation.commitments,
        relation.commitments_open,
        relation.commitments_fulfilled,
        relation.commitments_closed_otherwise
    )?;
    let mut topics: Vec<_> = relation.topics.iter().collect();
    topics.sort();
    writeln!(
        out,
        "  topics: {}",
        topics
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    )?;
    let mut months: Vec<_> = relation.goldstein_tenths_by_month.iter().collect();
    months.sort();
    for (month, tenths) in months {
        writeln!(out, "  Goldstein {month}: {:+.1}", *tenths as f64 / 10.0)?;
    }
    writeln!(out, "  timeline:")?;
    for item in &relation.timeline {
        match &item.item {
            Some(pb::timeline_item_view::Item::Meeting(m)) => {
                let place = m
                    .details
                    .as_ref()
                    .and_then(|d| d.location.as_ref())
                    .map_or("?", |l| l.place.as_str());
                let status = pb::MeetingStatus::try_from(m.status).map_or("?".into(), |s| format!("{s:?}"));
                writeln!(out, "    meeting    {status:<12} {place}")?;
            }
            Some(pb::timeline_item_view::Item::Commitment(c)) => {
                let status =
                    pb::CommitmentStatus::try_from(c.status).map_or("?".into(), |s| format!("{s:?}"));
                let text = c.details.as_ref().map_or("", |d| d.text.as_str());
                let short: String = text.chars().take(60).collect();
                writeln!(out, "    commitment {status:<12} {short}")?;
            }
            None => {}
        }
    }

    let history = queries
        .get_entity_history(pb::GetEntityHistoryRequest {
            stream_id: sample::meeting_id().stream_id(),
            page: None,
            options,
        })
        .await?
        .into_inner();
    writeln!(
        out,
        "\naudit trail of the Benghazi meeting ({})",
        sample::meeting_id().stream_id()
    )?;
    for entry in history.entries {
        let sources: Vec<String> = entry
            .sources
            .iter()
            .map(|s| {
                s.url
                    .clone()
                    .or(s.title.clone())
                    .unwrap_or_else(|| "unknown source".into())
            })
            .collect();
        writeln!(
            out,
            "  v{} {:<18} position {:<3} recorded by {} from {}",
            entry.stream_version,
            entry.event_type,
            entry.position,
            entry.recorded_by,
            sources.join(", ")
        )?;
    }
    if let Some((server, _dir)) = embedded {
        server.shutdown().await?;
    }
    Ok(out)
}
