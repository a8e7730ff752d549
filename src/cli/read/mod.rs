//! The reading verbs over gRPC: `relation`, `history`, `tail` here; the `show` and `list` verbs of
//! meetings, commitments and officials in `views.rs`; the relation's SVG timeline in `chart.rs`.
//! Human output by default, `--json` for scripts (one JSON document, or one object per line for
//! `tail`).

use std::time::Duration;

use anyhow::bail;
use dipledger::api::pb;
use dipledger::api::pb::event_store_service_client::EventStoreServiceClient;
use dipledger::api::pb::query_service_client::QueryServiceClient;
use dipledger::time::Timestamp;
use serde_json::{json, Value};

/// The flags every reading verb takes.
#[derive(Debug, clap::Args)]
pub struct ReadArgs {
    /// Answer as the ledger did at a log position or an ISO 8601 time (transaction time).
    #[arg(long)]
    pub as_of: Option<String>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// The server.
    #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
    pub server: String,
}

/// How a human answer states the position it is based on. At position 0 nothing was recorded
/// yet: say so, since an `--as-of` time before the first recording (a valid time mistaken for a
/// recording time, say) would otherwise look like an empty ledger.
fn as_of_note(position: u64) -> String {
    if position == 0 {
        "(as of position 0: nothing was recorded by then; --as-of is a recording time or position)".into()
    } else {
        format!("(as of position {position})")
    }
}

/// The singular of a listing's plural noun (`parties` -> `party`, `overdue commitments` ->
/// `overdue commitment`).
fn singular(plural: &str) -> String {
    if let Some(stem) = plural.strip_suffix("ies") {
        format!("{stem}y")
    } else {
        plural.strip_suffix('s').unwrap_or(plural).to_owned()
    }
}

/// An enum value's proto name in words for people: `MEETING_STATUS_HELD` -> `Held`,
/// `COMMITMENT_STATUS_IN_PROGRESS` -> `In progress`; any other text as it is.
pub fn in_words(name: &str) -> String {
    const PREFIXES: [&str; 7] = [
        "MEETING_STATUS_",
        "COMMITMENT_STATUS_",
        "MEETING_FORMAT_",
        "PARTY_KIND_",
        "ASSESSMENT_STAGE_",
        "PARTICIPANT_ROLE_",
        "COOPERATION_KIND_",
    ];
    let Some(rest) = PREFIXES.iter().find_map(|prefix| name.strip_prefix(prefix)) else {
        return name.to_owned();
    };
    let lower = rest.replace('_', " ").to_lowercase();
    let mut chars = lower.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// Renders one entity: JSON (`{"based_on_position", kind: value}`) or a card.
fn render_one(kind: &str, value: Value, based_on_position: u64, json: bool) -> String {
    if json {
        let mut document = serde_json::Map::new();
        document.insert("based_on_position".into(), json!(based_on_position));
        document.insert(kind.into(), value);
        return format!("{:#}\n", Value::Object(document));
    }
    views::card(kind, &value, based_on_position)
}

/// Renders one page of a list: JSON (`{"based_on_position", kind: rows, "next_page_token"}`) or
/// a count line and one `line(row)` per row.
fn render_list(
    kind: &str,
    rows: Vec<Value>,
    based_on_position: u64,
    next_page_token: &str,
    json: bool,
    line: impl Fn(&Value) -> String,
) -> String {
    if json {
        let mut document = serde_json::Map::new();
        document.insert("based_on_position".into(), json!(based_on_position));
        document.insert("next_page_token".into(), json!(next_page_token));
        document.insert(kind.into(), Value::Array(rows));
        return format!("{:#}\n", Value::Object(document));
    }
    let mut out = format!(
        "{} {} {}\n",
        rows.len(),
        if rows.len() == 1 {
            singular(kind)
        } else {
            kind.to_owned()
        },
        as_of_note(based_on_position)
    );
    for row in &rows {
        out.push_str(&format!("  {}\n", line(row)));
    }
    out
}

/// How often in a row `tail` tries to reconnect after the subscription ends (a server restart, a
/// dropped connection) before it gives up; it resumes after the last position it saw, so nothing
/// is skipped or repeated.
pub const TAIL_RECONNECT_ATTEMPTS: usize = 30;
/// The first wait before reconnecting; it doubles after each failed attempt.
pub const TAIL_RECONNECT_FIRST_WAIT: Duration = Duration::from_millis(100);
/// The longest wait between two attempts (30 attempts span about two minutes).
pub const TAIL_RECONNECT_MAX_WAIT: Duration = Duration::from_secs(5);

/// The wait before reconnection attempt `attempt` (1, 2, ...): doubling from
/// [`TAIL_RECONNECT_FIRST_WAIT`] up to [`TAIL_RECONNECT_MAX_WAIT`].
pub fn tail_backoff(attempt: usize) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16) as u32;
    (TAIL_RECONNECT_FIRST_WAIT * 2u32.pow(doublings)).min(TAIL_RECONNECT_MAX_WAIT)
}

/// The typed event of an envelope in the proto3 JSON mapping (what a JSON client of Subscribe
/// sees), through the API's descriptors; null when the envelope has none.
fn event_body_json(event: Option<&pb::Event>) -> Value {
    use prost::Message as _;
    use std::sync::OnceLock;
    static EVENT: OnceLock<Option<prost_reflect::MessageDescriptor>> = OnceLock::new();
    let descriptor = EVENT.get_or_init(|| {
        prost_reflect::DescriptorPool::decode(pb::FILE_DESCRIPTOR_SET)
            .ok()?
            .get_message_by_name("dipledger.v1.Event")
    });
    let (Some(event), Some(descriptor)) = (event, descriptor) else {
        return Value::Null;
    };
    prost_reflect::DynamicMessage::decode(descriptor.clone(), event.encode_to_vec().as_slice())
        .ok()
        .and_then(|message| serde_json::to_value(&message).ok())
        .unwrap_or(Value::Null)
}

use super::{connect, describe};

fn timestamp(value: Option<&prost_types::Timestamp>) -> Value {
    value.map_or(Value::Null, |t| {
        Value::String(
            Timestamp::from_unix_micros(t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000).to_rfc3339(),
        )
    })
}

/// `--as-of`: a log position (digits) or an ISO 8601 instant (transaction time); with
/// `--min-position`, the position the read models must have applied first.
pub fn read_options(as_of: Option<&str>) -> anyhow::Result<Option<pb::ReadOptions>> {
    let min_position = super::min_position();
    let Some(as_of) = as_of else {
        return Ok((min_position > 0).then_some(pb::ReadOptions {
            min_position,
            as_of: None,
        }));
    };
    let as_of = if let Ok(position) = as_of.parse::<u64>() {
        pb::read_options::AsOf::AsOfPosition(position)
    } else {
        let at = match Timestamp::parse_iso8601(as_of) {
            Ok(at) => at,
            Err(reason) => bail!(
                "--as-of {as_of:?} is neither a position nor an ISO 8601 time such as 2025-01-15T12:00:00Z ({reason})"
            ),
        };
        let micros = at.at().unix_micros();
        pb::read_options::AsOf::AsOfTime(prost_types::Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
        })
    };
    Ok(Some(pb::ReadOptions {
        min_position,
        as_of: Some(as_of),
    }))
}

/// `dipledger relation A B`.
pub async fn relation(
    server: &str,
    a: &str,
    b: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let relation = queries
        .get_bilateral_relation(pb::GetBilateralRelationRequest {
            party_a: a.into(),
            party_b: b.into(),
            page: full_page(String::new()),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let timeline: Vec<Value> = relation
        .timeline
        .iter()
        .filter_map(|item| match &item.item {
            Some(pb::timeline_item_view::Item::Meeting(m)) => Some(json!({
                "kind": "meeting",
                "id": m.meeting_id,
                "status": pb::MeetingStatus::try_from(m.status).map(|s| s.as_str_name()).unwrap_or("?"),
                "place": m.details.as_ref().and_then(|d| d.location.as_ref()).map(|l| l.place.clone()),
                "held_at": timestamp(m.held_at.as_ref().and_then(|h| h.at.as_ref())),
                "planned_from": timestamp(m.window.as_ref().and_then(|w| w.start.as_ref()).and_then(|s| s.at.as_ref())),
            })),
            Some(pb::timeline_item_view::Item::Commitment(c)) => Some(json!({
                "kind": "commitment",
                "id": c.commitment_id,
                "status": pb::CommitmentStatus::try_from(c.status).map(|s| s.as_str_name()).unwrap_or("?"),
                "text": c.details.as_ref().map(|d| d.text.clone()),
                "made_at": timestamp(c.made_at.as_ref().and_then(|m| m.at.as_ref())),
                "due_by": timestamp(c.details.as_ref().and_then(|d| d.due_by.as_ref()).and_then(|d| d.at.as_ref())),
            })),
            None => None,
        })
        .collect();
    let document = json!({
        "pair": relation.pair,
        "based_on_position": relation.based_on_position,
        "meetings": relation.meetings,
        "meetings_planned": relation.meetings_planned,
        "meetings_held": relation.meetings_held,
        "meetings_postponed": relation.meetings_postponed,
        "meetings_cancelled": relation.meetings_cancelled,
        "commitments": relation.commitments,
        "commitments_open": relation.commitments_open,
        "commitments_fulfilled": relation.commitments_fulfilled,
        "commitments_closed_otherwise": relation.commitments_closed_otherwise,
        "topics": relation.topics,
        "goldstein_by_month": relation.goldstein_tenths_by_month.iter().map(|(m, t)| (m.clone(), json!(*t as f64 / 10.0))).collect::<serde_json::Map<_, _>>(),
        "timeline": timeline,
    });
    if json {
        return Ok(format!("{document:#}\n"));
    }
    let mut out = format!(
        "{} {}\n  meetings {} (held {}, planned {}, postponed {}, cancelled {}), commitments {} (open {}, fulfilled {}, otherwise closed {})\n",
        relation.pair,
        as_of_note(relation.based_on_position),
        relation.meetings,
        relation.meetings_held,
        relation.meetings_planned,
        relation.meetings_postponed,
        relation.meetings_cancelled,
        relation.commitments,
        relation.commitments_open,
        relation.commitments_fulfilled,
        relation.commitments_closed_otherwise
    );
    let mut topics: Vec<_> = relation.topics.iter().collect();
    topics.sort();
    out.push_str(&format!(
        "  topics: {}\n",
        topics
            .iter()
            .map(|(t, n)| format!("{t} ({n})"))
            .collect::<Vec<_>>()
            .join(", ")
    ));
    out.push_str(&goldstein_line(&relation));
    for item in timeline {
        out.push_str(&timeline_line(&item));
    }
    Ok(out)
}

/// The relation's Goldstein line: the sum of each month, in month order.
fn goldstein_line(relation: &pb::GetBilateralRelationResponse) -> String {
    let mut months: Vec<_> = relation.goldstein_tenths_by_month.iter().collect();
    months.sort();
    if months.is_empty() {
        return "  Goldstein by month: none (no held meeting or commitment coded)\n".into();
    }
    let shown: Vec<String> = months
        .iter()
        .map(|(month, tenths)| format!("{month} {:+.1}", **tenths as f64 / 10.0))
        .collect();
    format!("  Goldstein by month: {}\n", shown.join(", "))
}

/// One timeline item: kind, status in words, its date (held, planned, made; a commitment's due
/// date), where or what.
fn timeline_line(item: &Value) -> String {
    let day = |key: &str| item[key].as_str().map(|at| at.get(..10).unwrap_or(at).to_owned());
    let date = day("held_at")
        .or_else(|| day("planned_from"))
        .or_else(|| day("made_at"))
        .unwrap_or_else(|| "-".into());
    let due = day("due_by")
        .map(|due| format!(" (due {due})"))
        .unwrap_or_default();
    format!(
        "  {:<10} {:<12} {date:<10}  {}{due}\n",
        item["kind"].as_str().unwrap_or(""),
        in_words(item["status"].as_str().unwrap_or("")),
        item["place"].as_str().or(item["text"].as_str()).unwrap_or("")
    )
}

/// `dipledger history STREAM`.
pub async fn history(
    server: &str,
    stream_id: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let mut entries = Vec::new();
    let mut token = String::new();
    let based_on = loop {
        let page = queries
            .get_entity_history(pb::GetEntityHistoryRequest {
                stream_id: stream_id.into(),
                page: full_history_page(token),
                options: read_options(as_of)?,
            })
            .await
            .map_err(describe)?
            .into_inner();
        entries.extend(page.entries.into_iter().map(|e| {
            json!({
                "position": e.position,
                "stream_version": e.stream_version,
                "event_type": e.event_type,
                "event_id": e.event_id,
                "occurred_at": timestamp(e.occurred_at.as_ref().and_then(|o| o.at.as_ref())),
                "recorded_at": timestamp(e.recorded_at.as_ref()),
                "recorded_by": e.recorded_by,
                "sources": e.sources.iter().map(|s| json!({
                    "source_id": s.citation.as_ref().map(|c| c.source_id.clone()),
                    "quote": s.citation.as_ref().and_then(|c| c.quote.clone()),
                    "url": s.url, "title": s.title,
                })).collect::<Vec<_>>(),
                "corrects_version": e.corrects_version,
                "retracts_version": e.retracts_version,
                "corrected_by": e.corrected_by,
                "retracted_by": e.retracted_by,
                "reason": e.reason,
            })
        }));
        if page.next_page_token.is_empty() {
            break page.based_on_position;
        }
        token = page.next_page_token;
    };
    if json {
        return Ok(format!(
            "{:#}\n",
            json!({ "stream_id": stream_id, "based_on_position": based_on, "entries": entries })
        ));
    }
    let mut out = format!("{stream_id} {}\n", as_of_note(based_on));
    for e in &entries {
        let sources: Vec<&str> = e["sources"]
            .as_array()
            .map(|s| {
                s.iter()
                    .filter_map(|s| s["url"].as_str().or(s["title"].as_str()))
                    .collect()
            })
            .unwrap_or_default();
        out.push_str(&format!(
            "  v{:<3} {:<24} position {:<6} {} by {} from {}{}\n",
            e["stream_version"],
            e["event_type"].as_str().unwrap_or(""),
            e["position"],
            e["recorded_at"].as_str().unwrap_or(""),
            e["recorded_by"].as_str().unwrap_or(""),
            if sources.is_empty() {
                "-".into()
            } else {
                sources.join(", ")
            },
            match (e["corrected_by"].as_u64(), e["retracted_by"].as_u64()) {
                (Some(v), _) => format!("  (corrected by v{v})"),
                (_, Some(v)) => format!("  (retracted by v{v})"),
                _ => String::new(),
            }
        ));
    }
    Ok(out)
}

/// Where `tail` starts.
#[derive(Debug, Clone, Copy)]
pub enum TailFrom {
    /// The first event.
    Start,
    /// Only new events.
    End,
    /// After this position.
    After(u64),
}

/// Where a resumed subscription starts, for messages.
fn resume_point(from: TailFrom) -> String {
    match from {
        TailFrom::Start => "the start".into(),
        TailFrom::End => "the head".into(),
        TailFrom::After(position) => format!("position {position}"),
    }
}

/// `dipledger tail`: prints events as they arrive until `limit` events were printed (or
/// forever), reconnecting after a dropped connection and resuming after the last position seen.
pub async fn tail(
    server: &str,
    mut from: TailFrom,
    event_types: Vec<String>,
    tags: Vec<String>,
    json: bool,
    limit: Option<u64>,
    print: &mut dyn FnMut(&str),
) -> anyhow::Result<()> {
    if limit == Some(0) {
        return Ok(());
    }
    let mut printed = 0u64;
    let mut attempts = 0;
    loop {
        let stream = async {
            let mut store = EventStoreServiceClient::new(connect(server).await?);
            let start = match from {
                TailFrom::Start => pb::subscribe_request::Start::FromStart(pb::SubscribeFromStart {}),
                TailFrom::End => pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {}),
                TailFrom::After(position) => pb::subscribe_request::Start::AfterPosition(position),
            };
            let filter = pb::EventFilter {
                event_types: event_types.clone(),
                stream_prefixes: vec![],
                tags: tags.clone(),
            };
            anyhow::Ok(
                store
                    .subscribe(pb::SubscribeRequest {
                        start: Some(start),
                        filter: Some(filter),
                        omit_typed_body: false,
                    })
                    .await
                    .map_err(describe)?
                    .into_inner(),
            )
        }
        .await;
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) if attempts < TAIL_RECONNECT_ATTEMPTS => {
                attempts += 1;
                let wait = tail_backoff(attempts);
                eprintln!(
                    "dipledger tail: {}; retrying in {wait:?} ({attempts}/{TAIL_RECONNECT_ATTEMPTS})",
                    crate::cli::render(&error)
                );
                tokio::time::sleep(wait).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        attempts = 0;
        loop {
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                // Subscriptions end with a status (a shutdown's UNAVAILABLE included), so a
                // clean end is unexpected: resume all the same.
                Ok(None) => {
                    eprintln!(
                        "dipledger tail: the server ended the subscription; resuming after {}",
                        resume_point(from)
                    );
                    break;
                }
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    eprintln!(
                        "dipledger tail: the server ended the subscription ({}); resuming after {}",
                        status.message(),
                        resume_point(from)
                    );
                    break;
                }
                Err(status) => {
                    eprintln!(
                        "dipledger tail: connection lost ({}); resuming after {}",
                        status.message(),
                        resume_point(from)
                    );
                    break;
                }
            };
            match message.message {
                Some(pb::subscribe_response::Message::Event(event)) => {
                    from = TailFrom::After(event.position);
                    let line = if json {
                        json!({
                            "position": event.position,
                            "stream_id": event.stream_id,
                            "stream_version": event.stream_version,
                            "event_type": event.event_type,
                            "event_id": event.event_id,
                            "occurred_at": timestamp(event.occurred_at.as_ref().and_then(|o| o.at.as_ref())),
                            "recorded_at": timestamp(event.recorded_at.as_ref()),
                            "recorded_by": event.recorded_by,
                            "tags": event.tags,
                            "event": event_body_json(event.event.as_ref()),
                        })
                        .to_string()
                    } else {
                        format!(
                            "{:>8}  {:<24} {:<48} v{}  {}",
                            event.position,
                            event.event_type,
                            event.stream_id,
                            event.stream_version,
                            event.tags.join(" ")
                        )
                    };
                    print(&line);
                    printed += 1;
                    if limit.is_some_and(|limit| printed >= limit) {
                        return Ok(());
                    }
                }
                Some(pb::subscribe_response::Message::Checkpoint(checkpoint)) => {
                    from = TailFrom::After(checkpoint.position);
                }
                Some(pb::subscribe_response::Message::CaughtUp(caught_up)) => {
                    from = TailFrom::After(caught_up.position);
                }
                None => {}
            }
        }
    }
}

mod analyst;
mod chart;
pub mod csv;
mod views;

pub use analyst::{
    commitment_compliance, commitment_overdue, official_contacts, official_list, party_list, party_show,
    source_list, source_show,
};

pub use chart::relation_svg;
pub use views::{commitment_list, commitment_show, meeting_list, meeting_show, official_show};

/// A page of as many items as a list answer holds (the server's `store::MAX_PAGE_SIZE`), from
/// `token` (empty: the first).
pub(crate) fn full_page(token: String) -> Option<pb::PageRequest> {
    Some(pb::PageRequest {
        page_size: dipledger::projections::store::MAX_PAGE_SIZE as u32,
        page_token: token,
    })
}

/// The same for GetEntityHistory (`history::MAX_HISTORY_PAGE`).
pub(crate) fn full_history_page(token: String) -> Option<pb::PageRequest> {
    Some(pb::PageRequest {
        page_size: dipledger::projections::history::MAX_HISTORY_PAGE as u32,
        page_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_backs_off_doubling_up_to_the_longest_wait() {
        assert_eq!(tail_backoff(1), TAIL_RECONNECT_FIRST_WAIT);
        assert_eq!(tail_backoff(2), TAIL_RECONNECT_FIRST_WAIT * 2);
        assert_eq!(tail_backoff(4), TAIL_RECONNECT_FIRST_WAIT * 8);
        assert_eq!(tail_backoff(TAIL_RECONNECT_ATTEMPTS), TAIL_RECONNECT_MAX_WAIT);
        let total: Duration = (1..=TAIL_RECONNECT_ATTEMPTS).map(tail_backoff).sum();
        assert!(
            total > Duration::from_secs(100) && total < Duration::from_secs(150),
            "{total:?}"
        );
    }
}
