//! `show` and `list`: one meeting, commitment or official, or a page of them.

use super::*;

fn meeting_json(m: &pb::MeetingView) -> Value {
    let details = m.details.clone().unwrap_or_default();
    json!({
        "meeting_id": m.meeting_id,
        "status": pb::MeetingStatus::try_from(m.status).map(|s| s.as_str_name()).unwrap_or("?"),
        "format": pb::MeetingFormat::try_from(details.format).map(|f| f.as_str_name()).unwrap_or("?"),
        "participants": m.participants.iter().map(|p| json!({
            "party": p.party,
            "party_name": p.party_name,
            "official_id": p.official_id,
            "official_name": p.official_name,
            "posts": p.posts,
        })).collect::<Vec<_>>(),
        "place": details.location.as_ref().map(|l| l.place.clone()),
        "country": details.location.as_ref().and_then(|l| l.country.clone()),
        "topics": details.topics,
        "summary": details.summary,
        "held_at": timestamp(m.held_at.as_ref().and_then(|h| h.at.as_ref())),
        "proposed_by": m.proposed_by,
        "window": m.window.as_ref().map(window_json),
        "cancellation_reason": m.cancellation_reason,
        "cancelled_by": m.cancelled_by,
        "postponement_reason": m.postponement_reason,
        "statements": m.statements.iter().map(|s| json!({
            "version": s.version,
            "party": s.speaker.as_ref().map(|sp| sp.party.clone()),
            "text": s.text,
            "verbatim": s.verbatim,
        })).collect::<Vec<_>>(),
        "statement_count": m.statement_count,
        "stream_version": m.stream_version,
    })
}

/// A valid time as `{"at", "precision"}` (`"DAY"`, `"MONTH"`, ...).
fn occurred_json(value: Option<&pb::OccurredAt>) -> Value {
    value.map_or(Value::Null, |value| {
        json!({
            "at": timestamp(value.at.as_ref()),
            "precision": pb::Precision::try_from(value.precision)
                .map(|p| p.as_str_name().trim_start_matches("PRECISION_"))
                .unwrap_or("?"),
        })
    })
}

/// A window as `{"start", "end", "kind"}`, each end with its precision.
fn window_json(window: &pb::TimeWindow) -> Value {
    json!({
        "start": occurred_json(window.start.as_ref()),
        "end": occurred_json(window.end.as_ref()),
        "kind": pb::WindowKind::try_from(window.kind)
            .map(|k| k.as_str_name().trim_start_matches("WINDOW_KIND_"))
            .unwrap_or("?"),
    })
}

pub(super) fn commitment_json(c: &pb::CommitmentView) -> Value {
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
        "progress_reports": c.progress_report_count,
        "assessments": c.assessments.iter().map(|a| json!({
            "stage": pb::AssessmentStage::try_from(a.stage).map(|s| s.as_str_name()).unwrap_or("?"),
            "assessor": a.assessor,
            "scores": a.scores.iter().map(|s| (s.party.clone(), json!(s.score))).collect::<serde_json::Map<_, _>>(),
        })).collect::<Vec<_>>(),
        "stream_version": c.stream_version,
    })
}

pub(super) fn card(title: &str, value: &Value, based_on: u64) -> String {
    let mut out = format!("{title} {}\n", as_of_note(based_on));
    if let Some(fields) = value.as_object() {
        for (key, field) in fields {
            let shown = match field {
                Value::Null => continue,
                Value::String(text) => in_words(text),
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
                "{}  {:<12} {:<14} {}",
                row["meeting_id"].as_str().unwrap_or(""),
                in_words(row["status"].as_str().unwrap_or("")),
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
        commitment_line,
    ))
}

/// One commitment in a listing: id, status in words, who commits, due date, the text's start.
pub(super) fn commitment_line(row: &Value) -> String {
    let text: String = row["text"].as_str().unwrap_or("").chars().take(60).collect();
    let parties: Vec<&str> = row["committing_parties"]
        .as_array()
        .map(|parties| parties.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let due = row["due_by"]
        .as_str()
        .map(|due| format!("due {}", due.get(..10).unwrap_or(due)));
    format!(
        "{}  {:<12} {:<8} {:<14} {text}",
        row["commitment_id"].as_str().unwrap_or(""),
        in_words(row["status"].as_str().unwrap_or("")),
        parties.join(","),
        due.unwrap_or_else(|| "no due date".into())
    )
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
