//! Client verbs over gRPC: `relation`, `history`, `tail`. Human output by default, `--json` for
//! scripts (one JSON document, or one object per line for `tail`).

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

/// Renders one entity: JSON (`{"based_on_position", kind: value}`) or a card.
fn render_one(kind: &str, value: Value, based_on_position: u64, json: bool) -> String {
    if json {
        let mut document = serde_json::Map::new();
        document.insert("based_on_position".into(), json!(based_on_position));
        document.insert(kind.into(), value);
        return format!("{:#}\n", Value::Object(document));
    }
    card(kind, &value, based_on_position)
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
    let mut out = format!("{} {kind} {}\n", rows.len(), as_of_note(based_on_position));
    for row in &rows {
        out.push_str(&format!("  {}\n", line(row)));
    }
    out
}

/// How often `tail` tries to reconnect after the connection drops, and how long it waits between
/// tries (it resumes after the last position it printed, so nothing is skipped or repeated).
pub const TAIL_RECONNECT_ATTEMPTS: usize = 30;
/// The wait between reconnection attempts.
pub const TAIL_RECONNECT_WAIT: Duration = Duration::from_secs(1);

use super::connect;

fn timestamp(value: Option<&prost_types::Timestamp>) -> Value {
    value.map_or(Value::Null, |t| {
        Value::String(
            Timestamp::from_unix_micros(t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000).to_rfc3339(),
        )
    })
}

/// `--as-of`: a log position (digits) or an ISO 8601 instant (transaction time).
pub fn read_options(as_of: Option<&str>) -> anyhow::Result<Option<pb::ReadOptions>> {
    let Some(as_of) = as_of else { return Ok(None) };
    let as_of = if let Ok(position) = as_of.parse::<u64>() {
        pb::read_options::AsOf::AsOfPosition(position)
    } else {
        let Some(at) = Timestamp::parse_iso8601(as_of) else {
            bail!(
                "--as-of {as_of:?} is neither a position nor an ISO 8601 time such as 2025-01-15T12:00:00Z"
            );
        };
        let micros = at.at().unix_micros();
        pb::read_options::AsOf::AsOfTime(prost_types::Timestamp {
            seconds: micros.div_euclid(1_000_000),
            nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
        })
    };
    Ok(Some(pb::ReadOptions {
        min_position: 0,
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
            page: Some(pb::PageRequest {
                page_size: 500,
                page_token: String::new(),
            }),
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
            })),
            Some(pb::timeline_item_view::Item::Commitment(c)) => Some(json!({
                "kind": "commitment",
                "id": c.commitment_id,
                "status": pb::CommitmentStatus::try_from(c.status).map(|s| s.as_str_name()).unwrap_or("?"),
                "text": c.details.as_ref().map(|d| d.text.clone()),
                "made_at": timestamp(c.made_at.as_ref().and_then(|m| m.at.as_ref())),
            })),
            None => None,
        })
        .collect();
    let document = json!({
        "pair": relation.pair,
        "based_on_position": relation.based_on_position,
        "meetings": relation.meetings,
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
        "{} {}\n  meetings {}, commitments {} (open {}, fulfilled {}, otherwise closed {})\n",
        relation.pair,
        as_of_note(relation.based_on_position),
        relation.meetings,
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
    for item in timeline {
        out.push_str(&format!(
            "  {:<10} {:<28} {}\n",
            item["kind"].as_str().unwrap_or(""),
            item["status"].as_str().unwrap_or(""),
            item["place"].as_str().or(item["text"].as_str()).unwrap_or("")
        ));
    }
    Ok(out)
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
                page: Some(pb::PageRequest {
                    page_size: 500,
                    page_token: token,
                }),
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
                eprintln!("dipledger tail: {error:#}; retrying ({attempts}/{TAIL_RECONNECT_ATTEMPTS})");
                tokio::time::sleep(TAIL_RECONNECT_WAIT).await;
                continue;
            }
            Err(error) => return Err(error),
        };
        attempts = 0;
        loop {
            let message = match stream.message().await {
                Ok(Some(message)) => message,
                Ok(None) => bail!("the server ended the subscription (shutting down?)"),
                Err(status) => {
                    eprintln!("dipledger tail: connection lost ({}); resuming", status.message());
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

fn describe(status: tonic::Status) -> anyhow::Error {
    anyhow::anyhow!("{:?}: {}", status.code(), status.message())
}

fn meeting_json(m: &pb::MeetingView) -> Value {
    let details = m.details.clone().unwrap_or_default();
    json!({
        "meeting_id": m.meeting_id,
        "status": pb::MeetingStatus::try_from(m.status).map(|s| s.as_str_name()).unwrap_or("?"),
        "format": pb::MeetingFormat::try_from(details.format).map(|f| f.as_str_name()).unwrap_or("?"),
        "participants": details.participants.iter().map(|p| json!({"party": p.party, "official_id": p.official_id})).collect::<Vec<_>>(),
        "place": details.location.as_ref().map(|l| l.place.clone()),
        "country": details.location.as_ref().and_then(|l| l.country.clone()),
        "topics": details.topics,
        "summary": details.summary,
        "held_at": timestamp(m.held_at.as_ref().and_then(|h| h.at.as_ref())),
        "window_start": timestamp(m.window.as_ref().and_then(|w| w.start.as_ref()).and_then(|s| s.at.as_ref())),
        "cancellation_reason": m.cancellation_reason,
        "statements": m.statements.iter().map(|s| json!({
            "version": s.version,
            "party": s.speaker.as_ref().map(|sp| sp.party.clone()),
            "text": s.text,
            "verbatim": s.verbatim,
        })).collect::<Vec<_>>(),
        "stream_version": m.stream_version,
    })
}

fn commitment_json(c: &pb::CommitmentView) -> Value {
    let details = c.details.clone().unwrap_or_default();
    json!({
        "commitment_id": c.commitment_id,
        "status": pb::CommitmentStatus::try_from(c.status).map(|s| s.as_str_name()).unwrap_or("?"),
        "committing_parties": details.committing_parties,
        "counterparties": details.counterparties,
        "text": details.text,
        "topics": details.topics,
        "due_by": timestamp(details.due_by.as_ref().and_then(|d| d.at.as_ref())),
        "made_at": timestamp(c.made_at.as_ref().and_then(|d| d.at.as_ref())),
        "reaffirmations": c.reaffirmations.len(),
        "assessments": c.assessments.iter().map(|a| json!({
            "stage": pb::AssessmentStage::try_from(a.stage).map(|s| s.as_str_name()).unwrap_or("?"),
            "assessor": a.assessor,
            "scores": a.scores.iter().map(|s| (s.party.clone(), json!(s.score))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "stream_version": c.stream_version,
    })
}

fn card(title: &str, value: &Value, based_on: u64) -> String {
    let mut out = format!("{title} {}\n", as_of_note(based_on));
    if let Some(fields) = value.as_object() {
        for (key, field) in fields {
            let shown = match field {
                Value::Null => continue,
                Value::String(text) => text.clone(),
                Value::Array(items) if items.is_empty() => continue,
                other => other.to_string(),
            };
            out.push_str(&format!("  {key:<20} {shown}\n"));
        }
    }
    out
}

/// `dipledger meeting show ID`.
pub async fn meeting_show(server: &str, id: &str, as_of: Option<&str>, json: bool) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_meeting(pb::GetMeetingRequest {
            meeting_id: id.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let value = meeting_json(&answer.meeting.unwrap_or_default());
    Ok(render_one("meeting", value, answer.based_on_position, json))
}

/// `dipledger meeting list`.
pub async fn meeting_list(
    server: &str,
    filter: pb::ListMeetingsRequest,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_meetings(pb::ListMeetingsRequest {
            options: read_options(as_of)?,
            ..filter
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows: Vec<Value> = answer.meetings.iter().map(meeting_json).collect();
    Ok(render_list(
        "meetings",
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        |row| {
            let topics = row["topics"]
                .as_array()
                .map(|t| t.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(","));
            format!(
                "{}  {:<28} {:<14} {}",
                row["meeting_id"].as_str().unwrap_or(""),
                row["status"].as_str().unwrap_or(""),
                row["place"].as_str().unwrap_or("-"),
                topics.unwrap_or_default()
            )
        },
    ))
}

/// `dipledger commitment show ID`.
pub async fn commitment_show(
    server: &str,
    id: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_commitment(pb::GetCommitmentRequest {
            commitment_id: id.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let value = commitment_json(&answer.commitment.unwrap_or_default());
    Ok(render_one("commitment", value, answer.based_on_position, json))
}

/// `dipledger commitment list`.
pub async fn commitment_list(
    server: &str,
    filter: pb::ListCommitmentsRequest,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .list_commitments(pb::ListCommitmentsRequest {
            options: read_options(as_of)?,
            ..filter
        })
        .await
        .map_err(describe)?
        .into_inner();
    let rows: Vec<Value> = answer.commitments.iter().map(commitment_json).collect();
    Ok(render_list(
        "commitments",
        rows,
        answer.based_on_position,
        &answer.next_page_token,
        json,
        |row| {
            let text: String = row["text"].as_str().unwrap_or("").chars().take(60).collect();
            format!(
                "{}  {:<28} {text}",
                row["commitment_id"].as_str().unwrap_or(""),
                row["status"].as_str().unwrap_or("")
            )
        },
    ))
}

/// `dipledger official show ID`.
pub async fn official_show(
    server: &str,
    id: &str,
    as_of: Option<&str>,
    json: bool,
) -> anyhow::Result<String> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let answer = queries
        .get_official(pb::GetOfficialRequest {
            official_id: id.into(),
            options: read_options(as_of)?,
        })
        .await
        .map_err(describe)?
        .into_inner();
    let official = answer.official.unwrap_or_default();
    let value = json!({
        "official_id": official.official_id,
        "name": official.name,
        "offices": official.offices.iter().map(|o| json!({
            "post": o.post,
            "party": o.party,
            "accredited_to": o.accredited_to,
            "from": timestamp(o.from.as_ref().and_then(|f| f.at.as_ref())),
            "to": timestamp(o.to.as_ref().and_then(|t| t.at.as_ref())),
        })).collect::<Vec<_>>(),
        "stream_version": official.stream_version,
    });
    Ok(render_one("official", value, answer.based_on_position, json))
}

/// `dipledger relation A B --svg FILE`: a timeline picture of the relation. Top: the Goldstein
/// sum by month (a line, 0 dashed). Bottom: meetings (circles, filled when held) and commitments
/// (squares, coloured by state) at their dates.
pub async fn relation_svg(
    server: &str,
    a: &str,
    b: &str,
    as_of: Option<&str>,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    use plotters::prelude::*;
    let document: Value = serde_json::from_str(&relation(server, a, b, as_of, true).await?)?;
    let day_of =
        |text: &str| Timestamp::parse_iso8601(text).map(|t| t.at().unix_micros() as f64 / 86_400_000_000.0);
    let month_day = |month: &str| day_of(&format!("{month}-15"));
    let mut goldstein: Vec<(f64, f64)> = document["goldstein_by_month"]
        .as_object()
        .map(|months| {
            months
                .iter()
                .filter_map(|(m, v)| Some((month_day(m)?, v.as_f64()?)))
                .collect()
        })
        .unwrap_or_default();
    goldstein.sort_by(|x, y| x.0.total_cmp(&y.0));
    let mut meetings = Vec::new();
    let mut commitments = Vec::new();
    for item in document["timeline"].as_array().into_iter().flatten() {
        let status = item["status"].as_str().unwrap_or("");
        match item["kind"].as_str() {
            Some("meeting") => {
                if let Some(day) = item["held_at"].as_str().and_then(day_of) {
                    meetings.push((day, status.ends_with("HELD")));
                }
            }
            Some("commitment") => {
                commitments.push((item["made_at"].as_str().and_then(day_of), status.to_owned()))
            }
            _ => {}
        }
    }
    let days: Vec<f64> = goldstein
        .iter()
        .map(|(d, _)| *d)
        .chain(meetings.iter().map(|(d, _)| *d))
        .chain(commitments.iter().filter_map(|(d, _)| *d))
        .collect();
    let (first, last) = days
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), d| (lo.min(*d), hi.max(*d)));
    let (first, last) = if days.is_empty() {
        (0.0, 30.0)
    } else {
        (first - 20.0, last + 20.0)
    };
    let top = goldstein.iter().map(|(_, v)| v.abs()).fold(1.0f64, f64::max) * 1.1;
    {
        let root = SVGBackend::new(path, (900, 460)).into_drawing_area();
        root.fill(&WHITE)?;
        let root = root.titled(
            &format!("{a}-{b}: Goldstein sum by month; meetings and commitments"),
            ("sans-serif", 16),
        )?;
        let (upper, lower) = root.split_vertically(250);
        let mut chart = ChartBuilder::on(&upper)
            .margin(20)
            .x_label_area_size(0)
            .y_label_area_size(90)
            .build_cartesian_2d(first..last, -top..top)?;
        chart.configure_mesh().disable_x_mesh().draw()?;
        chart.draw_series(LineSeries::new(vec![(first, 0.0), (last, 0.0)], BLACK.mix(0.3)))?;
        chart.draw_series(LineSeries::new(goldstein.clone(), BLUE.stroke_width(2)))?;
        chart.draw_series(
            goldstein
                .iter()
                .map(|(d, v)| Circle::new((*d, *v), 3, BLUE.filled())),
        )?;
        // Lanes: meetings on top, then commitments by state (open, fulfilled, closed otherwise).
        let date_label = |day: &f64| {
            let (year, month, date) =
                Timestamp::from_unix_micros((*day * 86_400_000_000.0) as i64).civil_date();
            format!("{year:04}-{month:02}-{date:02}")
        };
        let lane_label = |lane: &f64| {
            match lane.round() as i64 {
                4 => "meetings",
                3 => "open",
                2 => "fulfilled",
                1 => "lapsed/other",
                _ => "",
            }
            .to_owned()
        };
        let mut marks = ChartBuilder::on(&lower)
            .margin(20)
            .margin_top(0)
            .x_label_area_size(30)
            .y_label_area_size(90)
            .build_cartesian_2d(first..last, 0.5..4.5)?;
        marks
            .configure_mesh()
            .disable_mesh()
            .x_labels(6)
            .x_label_formatter(&date_label)
            .y_labels(5)
            .y_label_formatter(&lane_label)
            .draw()?;
        marks.draw_series(meetings.iter().map(|(d, held)| {
            let style = if *held {
                GREEN.filled()
            } else {
                GREEN.stroke_width(2)
            };
            Circle::new((*d, 4.0), 6, style)
        }))?;
        let step = (last - first) / (commitments.len() as f64 + 1.0);
        let half = (last - first) / 200.0;
        let mut per_lane_day: std::collections::HashMap<(i64, i64), usize> = std::collections::HashMap::new();
        marks.draw_series(commitments.iter().enumerate().map(|(i, (day, status))| {
            let (lane, colour) = if status.ends_with("FULFILLED") {
                (2.0, GREEN)
            } else if status.ends_with("LAPSED")
                || status.ends_with("WITHDRAWN")
                || status.ends_with("SUPERSEDED")
            {
                (1.0, RED)
            } else {
                (3.0, RGBColor(230, 150, 0))
            };
            let x = day.unwrap_or(first + step * (i as f64 + 1.0));
            // Commitments of one lane on one day sit side by side.
            let slot = per_lane_day.entry((lane as i64, x as i64)).or_insert(0);
            let x = x + *slot as f64 * 3.0 * half;
            *slot += 1;
            Rectangle::new(
                [(x - half, lane - 0.25), (x + half, lane + 0.25)],
                colour.filled(),
            )
        }))?;
        root.present()?;
    }
    Ok(format!(
        "wrote {} ({} months of Goldstein sums, {} meetings, {} commitments)\n",
        path.display(),
        goldstein.len(),
        meetings.len(),
        commitments.len()
    ))
}
