//! Requests the command-API tests build: a day of valid time, citations, parties and a held
//! meeting, a server seeded with LBY, FRA and one source, and the field paths of a refusal.

use crate::support::api::Harness;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use prost_types::Timestamp;
use tonic::transport::Channel;
use tonic_types::StatusExt;
use uuid::Uuid;

/// 2025-01-15T00:00:00Z, the Wednesday of the sample report, in Unix seconds.
pub const WEDNESDAY: i64 = 1_736_899_200;

/// That Wednesday as a valid time of day precision.
pub fn day() -> Option<pb::OccurredAt> {
    Some(pb::OccurredAt {
        at: Some(Timestamp {
            seconds: WEDNESDAY,
            nanos: 0,
        }),
        precision: pb::Precision::Day as i32,
    })
}

/// RegisterSource of a report titled `title`, retrieved on 2025-01-15, in English.
pub fn register_source(title: &str) -> pb::RegisterSourceRequest {
    pb::RegisterSourceRequest {
        header: Some(pb::CommandHeader::fresh()),
        details: Some(pb::SourceDetails {
            title: Some(title.into()),
            retrieved_at: Some(Timestamp {
                seconds: 1_736_899_200,
                nanos: 0,
            }),
            language: "en".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// One citation of `source`, without a quote.
pub fn cite(source: Uuid) -> Vec<pb::SourceCitation> {
    vec![pb::SourceCitation {
        source_id: source.to_string(),
        quote: None,
    }]
}

/// RegisterParty of `code` (a state named "Party <code>"), citing `source`.
pub fn register_party(code: &str, source: Uuid) -> pb::RegisterPartyRequest {
    pb::RegisterPartyRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            occurred_at: day(),
            sources: cite(source),
            ..Default::default()
        }),
        code: code.into(),
        details: Some(pb::PartyDetails {
            kind: pb::PartyKind::State as i32,
            name: format!("Party {code}"),
            ..Default::default()
        }),
    }
}

/// RecordMeetingHeld of a bilateral meeting of `parties` in Benghazi on that Wednesday.
pub fn meeting_held(source: Uuid, parties: [&str; 2]) -> pb::RecordMeetingHeldRequest {
    pb::RecordMeetingHeldRequest {
        header: Some(pb::CommandHeader {
            command_id: Uuid::now_v7().to_string(),
            occurred_at: day(),
            sources: cite(source),
            ..Default::default()
        }),
        details: Some(pb::MeetingDetails {
            format: pb::MeetingFormat::Bilateral as i32,
            participants: parties
                .iter()
                .map(|party| pb::Participant {
                    party: party.to_string(),
                    ..Default::default()
                })
                .collect(),
            location: Some(pb::Location {
                place: "Benghazi".into(),
                country: Some("LBY".into()),
            }),
            topics: vec!["security".into(), "regional-stability".into()],
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A server with parties LBY and FRA and one source registered. Returns the client and source.
pub async fn seeded(harness: &Harness) -> (CommandServiceClient<Channel>, Uuid) {
    let mut client = CommandServiceClient::new(harness.channel().await);
    let source = client
        .register_source(pb::RegisterSourceRequest {
            header: Some(pb::CommandHeader {
                command_id: Uuid::now_v7().to_string(),
                ..Default::default()
            }),
            details: Some(pb::SourceDetails {
                url: Some("https://example.org/news/libya-france".into()),
                title: Some("Libya and France discuss security".into()),
                retrieved_at: Some(Timestamp {
                    seconds: WEDNESDAY + 86_400,
                    nanos: 0,
                }),
                language: "en".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    let source_id: Uuid = source.source_id.parse().unwrap();
    for code in ["LBY", "FRA"] {
        client
            .register_party(register_party(code, source_id))
            .await
            .unwrap();
    }
    (client, source_id)
}

/// The field paths of a refusal's BadRequest details, in order.
pub fn fields(status: &tonic::Status) -> Vec<String> {
    status
        .get_details_bad_request()
        .unwrap_or_else(|| panic!("BadRequest details expected: {status:?}"))
        .field_violations
        .into_iter()
        .map(|violation| violation.field)
        .collect()
}
