//! `dipledger csv`: the read models as CSV for pandas and spreadsheets (meetings, commitments,
//! parties), paged through QueryService, so corrections and retractions are applied as the read
//! models apply them. Dates are ISO 8601 days (`2025-01-15`), ids are one column each and unique
//! per row, lists are joined with `;`, statuses are lower-case words (`held`, `in_progress`).
//! Columns and the dtypes to read them with are in docs/operations.md ("CSV for pandas").

use std::io::Write;

use super::*;

/// Which read model `dipledger csv` writes.
#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum CsvTable {
    /// One row per meeting.
    Meetings,
    /// One row per commitment.
    Commitments,
    /// One row per party.
    Parties,
}

/// The header of each table.
pub const MEETINGS_HEADER: &str = "meeting_id,status,date,date_precision,planned_start,planned_end,place,country,parties,participants,topics,summary,stream_version";
/// See [`MEETINGS_HEADER`].
pub const COMMITMENTS_HEADER: &str = "commitment_id,status,made_on,due_by,closed_on,committing_parties,counterparties,topics,text,reaffirmations,stream_version";
/// See [`MEETINGS_HEADER`].
pub const PARTIES_HEADER: &str = "code,name,kind,iso_alpha2,iso_alpha3,wikidata_qid,cameo_code";

/// One CSV field, quoted when it holds a comma, a quote or a line break (RFC 4180).
fn field(value: &str) -> String {
    if value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_owned()
    }
}

fn row(fields: &[String]) -> String {
    let mut line = fields
        .iter()
        .map(|value| field(value))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The day (`YYYY-MM-DD`) of a valid time, or empty.
fn day(value: Option<&pb::OccurredAt>) -> String {
    value
        .and_then(|value| value.at.as_ref())
        .map(day_of)
        .unwrap_or_default()
}

fn day_of(at: &prost_types::Timestamp) -> String {
    let text = Timestamp::from_unix_micros(at.seconds * 1_000_000).to_rfc3339();
    text.get(..10).unwrap_or(&text).to_owned()
}

/// An enum's proto name as a lower-case word: `MEETING_STATUS_HELD` -> `held`.
fn word(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_lowercase()
}

/// A date flag (`--from`, `--to`) as a timestamp.
fn date_flag(flag: &str, value: Option<&str>) -> anyhow::Result<Option<prost_types::Timestamp>> {
    value
        .map(|value| crate::cli::record::pb_time(value, flag))
        .transpose()
}

fn meeting_row(m: &pb::MeetingView) -> String {
    let details = m.details.clone().unwrap_or_default();
    let window = m.window.unwrap_or_default();
    let held = m.held_at.as_ref();
    let (date, precision) = match held.or(window.start.as_ref()) {
        Some(at) => (
            day(Some(at)),
            pb::Precision::try_from(at.precision)
                .map(|p| word(p.as_str_name(), "PRECISION_"))
                .unwrap_or_default(),
        ),
        None => (String::new(), String::new()),
    };
    // Each party once, in the order first named (participants A, B, A give A;B).
    let mut parties: Vec<&str> = Vec::with_capacity(m.participants.len());
    for participant in &m.participants {
        if !parties.contains(&participant.party.as_str()) {
            parties.push(&participant.party);
        }
    }
    let participants: Vec<String> = m
        .participants
        .iter()
        .map(|p| p.official_name.clone().unwrap_or_else(|| p.party_name.clone()))
        .collect();
    let location = details.location.unwrap_or_default();
    row(&[
        m.meeting_id.clone(),
        pb::MeetingStatus::try_from(m.status)
            .map(|s| word(s.as_str_name(), "MEETING_STATUS_"))
            .unwrap_or_default(),
        date,
        precision,
        day(window.start.as_ref()),
        day(window.end.as_ref()),
        location.place,
        location.country.unwrap_or_default(),
        parties.join(";"),
        participants.join(";"),
        details.topics.join(";"),
        details.summary.unwrap_or_default(),
        m.stream_version.to_string(),
    ])
}

fn commitment_row(c: &pb::CommitmentView) -> String {
    let details = c.details.clone().unwrap_or_default();
    row(&[
        c.commitment_id.clone(),
        pb::CommitmentStatus::try_from(c.status)
            .map(|s| word(s.as_str_name(), "COMMITMENT_STATUS_"))
            .unwrap_or_default(),
        day(c.made_at.as_ref()),
        day(details.due_by.as_ref()),
        day(c.closed_at.as_ref()),
        details.committing_parties.join(";"),
        details.counterparties.join(";"),
        details.topics.join(";"),
        details.text,
        c.reaffirmations.len().to_string(),
        c.stream_version.to_string(),
    ])
}

fn party_row(p: &pb::PartyView) -> String {
    let details = p.details.clone().unwrap_or_default();
    row(&[
        p.code.clone(),
        details.name,
        pb::PartyKind::try_from(details.kind)
            .map(|k| word(k.as_str_name(), "PARTY_KIND_"))
            .unwrap_or_default(),
        details.iso_alpha2.unwrap_or_default(),
        details.iso_alpha3.unwrap_or_default(),
        details.wikidata_qid.unwrap_or_default(),
        details.cameo_code.unwrap_or_default(),
    ])
}

/// Writes `table` from the server at `server` to `out`, every row as of one position (the
/// first page's); `from`/`to` filter by when things happened (meetings: held or planned;
/// commitments: made). Returns the number of rows.
pub async fn csv(
    server: &str,
    table: CsvTable,
    from: Option<&str>,
    to: Option<&str>,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let (from, to) = (date_flag("from", from)?, date_flag("to", to)?);
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let mut token = String::new();
    let mut rows = 0u64;
    let mut options: Option<pb::ReadOptions> = None;
    let header = match table {
        CsvTable::Meetings => MEETINGS_HEADER,
        CsvTable::Commitments => COMMITMENTS_HEADER,
        CsvTable::Parties => PARTIES_HEADER,
    };
    writeln!(out, "{header}")?;
    loop {
        let (lines, next, based_on): (Vec<String>, String, u64) = match table {
            CsvTable::Meetings => {
                let answer = queries
                    .list_meetings(pb::ListMeetingsRequest {
                        occurred_from: from,
                        occurred_to: to,
                        page: super::full_page(token),
                        options,
                        ..Default::default()
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                (
                    answer.meetings.iter().map(meeting_row).collect(),
                    answer.next_page_token,
                    answer.based_on_position,
                )
            }
            CsvTable::Commitments => {
                let answer = queries
                    .list_commitments(pb::ListCommitmentsRequest {
                        made_from: from,
                        made_to: to,
                        page: super::full_page(token),
                        options,
                        ..Default::default()
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                (
                    answer.commitments.iter().map(commitment_row).collect(),
                    answer.next_page_token,
                    answer.based_on_position,
                )
            }
            CsvTable::Parties => {
                let answer = queries
                    .list_parties(pb::ListPartiesRequest {
                        page: super::full_page(token),
                        options,
                    })
                    .await
                    .map_err(describe)?
                    .into_inner();
                (
                    answer.parties.iter().map(party_row).collect(),
                    answer.next_page_token,
                    answer.based_on_position,
                )
            }
        };
        for line in &lines {
            out.write_all(line.as_bytes())?;
        }
        rows += lines.len() as u64;
        if next.is_empty() {
            break;
        }
        token = next;
        // Every later page as of the first one's position: one consistent table.
        options = Some(pb::ReadOptions {
            min_position: 0,
            as_of: Some(pb::read_options::AsOf::AsOfPosition(based_on)),
        });
    }
    out.flush()?;
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_meeting_row_names_each_party_once_in_the_order_first_named() {
        let participant = |party: &str| pb::ParticipantView {
            party: party.into(),
            ..Default::default()
        };
        let meeting = pb::MeetingView {
            participants: vec![participant("FRA"), participant("LBY"), participant("FRA")],
            ..Default::default()
        };
        let fields: Vec<&str> = MEETINGS_HEADER.split(',').collect();
        let parties = fields.iter().position(|name| *name == "parties").unwrap();
        let row = meeting_row(&meeting);
        assert_eq!(row.trim_end().split(',').nth(parties), Some("FRA;LBY"), "{row}");
    }
}
