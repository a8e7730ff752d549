//! `relation --svg FILE`: the bilateral relation drawn as a briefing chart. The data is fetched
//! over gRPC (`fetch`), then drawn as plain SVG (`render`, no I/O) so that every mark can carry
//! a `<title>` (shown on hover) naming what it is, where and when.
//!
//! Colours are the Okabe-Ito palette (safe for the common colour-vision deficiencies); each
//! colour has one meaning, and every meaning also has its own shape. Axes, grid and text are
//! neutral greys.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use super::*;

/// Meeting held (filled circle).
pub const HELD: &str = "#0072B2";
/// Meeting proposed, scheduled or rescheduled (hollow circle).
pub const SCHEDULED: &str = "#56B4E9";
/// Meeting postponed without a new date (hollow diamond).
pub const POSTPONED: &str = "#E69F00";
/// Meeting cancelled (cross).
pub const CANCELLED: &str = "#CC79A7";
/// A commitment's span from made to due (bar; a dot where it was made, a tick where due).
pub const COMMITMENT: &str = "#000000";
/// A commitment fulfilled, at the date it was (triangle).
pub const FULFILLED: &str = "#009E73";
/// A commitment lapsed, withdrawn or superseded, at the date it was (square).
pub const LAPSED: &str = "#D55E00";
/// The Goldstein bars (monthly mean per event).
pub const GOLDSTEIN: &str = "#F0E442";

const WIDTH: f64 = 1060.0;
const PLOT_LEFT: f64 = 200.0;
const PLOT_RIGHT: f64 = 790.0;
const LEGEND_LEFT: f64 = 810.0;
const TOP_PANEL: (f64, f64) = (60.0, 240.0);
const LOWER_TOP: f64 = 270.0;
const MEETING_LANE: f64 = 44.0;
const ROW: f64 = 22.0;
const DAY_MICROS: f64 = 86_400_000_000.0;

/// What a meeting's state is, as the chart tells them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum MeetingState {
    /// Held.
    Held,
    /// Proposed, scheduled or rescheduled: still to happen.
    Scheduled,
    /// Postponed without a new date.
    Postponed,
    /// Cancelled.
    Cancelled,
}

impl MeetingState {
    fn word(self) -> &'static str {
        match self {
            MeetingState::Held => "held",
            MeetingState::Scheduled => "scheduled",
            MeetingState::Postponed => "postponed",
            MeetingState::Cancelled => "cancelled",
        }
    }
}

/// One meeting on the chart.
#[derive(Debug, Clone)]
pub struct Meeting {
    pub state: MeetingState,
    pub place: Option<String>,
    /// When it was held, or (not held) the start of its planned window; None: not known.
    pub day: Option<f64>,
}

/// One commitment on the chart; days are days since 1970-01-01 (UTC).
#[derive(Debug, Clone)]
pub struct Commitment {
    pub text: String,
    pub made: Option<f64>,
    pub due: Option<f64>,
    /// The closing state (`fulfilled`, `lapsed`, `withdrawn`, `superseded`) and its date.
    pub closed: Option<(String, Option<f64>)>,
}

/// One month of the Goldstein panel.
#[derive(Debug, Clone)]
pub struct Month {
    /// "YYYY-MM".
    pub month: String,
    /// Sum of the Goldstein scores of the month (as the relation answers it).
    pub sum: f64,
    /// Events the sum is drawn from: meetings held, commitments made, reaffirmations.
    pub events: usize,
}

/// Everything the chart shows.
#[derive(Debug, Clone, Default)]
pub struct RelationChart {
    /// (code, registered name; empty when not registered) of the two parties.
    pub parties: [(String, String); 2],
    pub position: u64,
    /// The `--as-of` asked for, if any.
    pub as_of: Option<String>,
    /// Distinct sources cited by the events of the meetings and commitments drawn.
    pub sources: usize,
    pub meetings: Vec<Meeting>,
    pub commitments: Vec<Commitment>,
    pub months: Vec<Month>,
}

fn micros(t: Option<&prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

fn day(t: Option<&prost_types::Timestamp>) -> Option<f64> {
    micros(t).map(|m| m as f64 / DAY_MICROS)
}

fn month_of_day(day: f64) -> String {
    let (year, month, _) = Timestamp::from_unix_micros((day * DAY_MICROS) as i64).civil_date();
    format!("{year:04}-{month:02}")
}

fn date(day: f64) -> String {
    let (year, month, date) = Timestamp::from_unix_micros((day * DAY_MICROS) as i64).civil_date();
    format!("{year:04}-{month:02}-{date:02}")
}

fn month_start(month: &str) -> Option<f64> {
    Timestamp::parse_iso8601(&format!("{month}-01"))
        .ok()
        .map(|t| t.at().unix_micros() as f64 / DAY_MICROS)
}

/// The first day of the month after the one `day` falls in.
fn next_month(day: f64) -> f64 {
    let (year, month, _) = Timestamp::from_unix_micros((day * DAY_MICROS) as i64).civil_date();
    let (year, month) = if month == 12 {
        (year + 1, 1)
    } else {
        (year, month + 1)
    };
    month_start(&format!("{year:04}-{month:02}")).unwrap_or(day + 31.0)
}

/// Fetch the relation (every timeline page), the parties' names and the sources cited, all as
/// of the one position the relation answers from.
pub async fn fetch(server: &str, a: &str, b: &str, as_of: Option<&str>) -> anyhow::Result<RelationChart> {
    let mut queries = QueryServiceClient::new(connect(server).await?);
    let mut token = String::new();
    let mut options = read_options(as_of)?;
    let mut first = None;
    let mut timeline = Vec::new();
    loop {
        let page = queries
            .get_bilateral_relation(pb::GetBilateralRelationRequest {
                party_a: a.into(),
                party_b: b.into(),
                page: super::full_page(token),
                options,
            })
            .await
            .map_err(describe)?
            .into_inner();
        // Later pages and the other calls read at the position of the first answer.
        options = Some(pb::ReadOptions {
            min_position: 0,
            as_of: Some(pb::read_options::AsOf::AsOfPosition(page.based_on_position)),
        });
        timeline.extend(page.timeline.iter().filter_map(|i| i.item.clone()));
        token = page.next_page_token.clone();
        if first.is_none() {
            first = Some(page);
        }
        if token.is_empty() {
            break;
        }
    }
    let relation = first.expect("one page at least");
    let mut chart = RelationChart {
        position: relation.based_on_position,
        as_of: as_of.map(str::to_owned),
        ..RelationChart::default()
    };
    for (slot, code) in chart.parties.iter_mut().zip([a, b]) {
        let name = match queries
            .get_party(pb::GetPartyRequest {
                code: code.into(),
                options,
            })
            .await
        {
            Ok(answer) => answer
                .into_inner()
                .party
                .and_then(|p| p.details)
                .map(|d| d.name)
                .unwrap_or_default(),
            Err(status) if status.code() == tonic::Code::NotFound => String::new(),
            Err(status) => return Err(describe(status)),
        };
        *slot = (code.to_owned(), name);
    }
    let mut events_by_month: BTreeMap<String, usize> = BTreeMap::new();
    let mut count = |day: Option<f64>| {
        if let Some(day) = day {
            *events_by_month.entry(month_of_day(day)).or_insert(0) += 1;
        }
    };
    let mut ids = Vec::new();
    for item in &timeline {
        match item {
            pb::timeline_item_view::Item::Meeting(m) => {
                let status = pb::MeetingStatus::try_from(m.status).unwrap_or(pb::MeetingStatus::Unspecified);
                let state = match status {
                    pb::MeetingStatus::Held => MeetingState::Held,
                    pb::MeetingStatus::Postponed => MeetingState::Postponed,
                    pb::MeetingStatus::Cancelled => MeetingState::Cancelled,
                    _ => MeetingState::Scheduled,
                };
                let held = day(m.held_at.as_ref().and_then(|h| h.at.as_ref()));
                let planned = day(m
                    .window
                    .as_ref()
                    .and_then(|w| w.start.as_ref())
                    .and_then(|s| s.at.as_ref()));
                if state == MeetingState::Held {
                    count(held);
                }
                chart.meetings.push(Meeting {
                    state,
                    place: m
                        .details
                        .as_ref()
                        .and_then(|d| d.location.as_ref())
                        .map(|l| l.place.clone())
                        .filter(|p| !p.is_empty()),
                    day: held.or(planned),
                });
                ids.push(m.meeting_id.clone());
            }
            pb::timeline_item_view::Item::Commitment(c) => {
                let status =
                    pb::CommitmentStatus::try_from(c.status).unwrap_or(pb::CommitmentStatus::Unspecified);
                let made = day(c.made_at.as_ref().and_then(|m| m.at.as_ref()));
                count(made);
                for entry in &c.reaffirmations {
                    count(day(entry.occurred_at.as_ref().and_then(|o| o.at.as_ref())));
                }
                let closed_at = day(c.closed_at.as_ref().and_then(|o| o.at.as_ref()));
                let closed = match status {
                    pb::CommitmentStatus::Fulfilled => Some("fulfilled"),
                    pb::CommitmentStatus::Lapsed => Some("lapsed"),
                    pb::CommitmentStatus::Withdrawn => Some("withdrawn"),
                    pb::CommitmentStatus::Superseded => Some("superseded"),
                    _ => None,
                };
                chart.commitments.push(Commitment {
                    text: c.details.as_ref().map(|d| d.text.clone()).unwrap_or_default(),
                    made,
                    due: day(c
                        .details
                        .as_ref()
                        .and_then(|d| d.due_by.as_ref())
                        .and_then(|d| d.at.as_ref())),
                    closed: closed.map(|word| (word.to_owned(), closed_at)),
                });
                ids.push(c.commitment_id.clone());
            }
        }
    }
    chart.months = relation
        .goldstein_tenths_by_month
        .iter()
        .map(|(month, tenths)| Month {
            month: month.clone(),
            sum: *tenths as f64 / 10.0,
            events: events_by_month.get(month).copied().unwrap_or(0),
        })
        .collect();
    chart.months.sort_by(|x, y| x.month.cmp(&y.month));
    let mut sources = BTreeSet::new();
    for id in ids {
        let mut token = String::new();
        loop {
            let page = queries
                .get_entity_history(pb::GetEntityHistoryRequest {
                    stream_id: id.clone(),
                    page: super::full_history_page(token),
                    options,
                })
                .await
                .map_err(describe)?
                .into_inner();
            for entry in &page.entries {
                sources.extend(
                    entry
                        .sources
                        .iter()
                        .filter_map(|s| s.citation.as_ref())
                        .map(|c| c.source_id.clone()),
                );
            }
            token = page.next_page_token;
            if token.is_empty() {
                break;
            }
        }
    }
    chart.sources = sources.len();
    Ok(chart)
}

/// `dipledger relation A B --svg FILE`: draw the chart into FILE.
pub async fn relation_svg(
    server: &str,
    a: &str,
    b: &str,
    as_of: Option<&str>,
    path: &std::path::Path,
) -> anyhow::Result<String> {
    let chart = fetch(server, a, b, as_of).await?;
    std::fs::write(path, render(&chart))
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    Ok(format!(
        "wrote {} ({} months of Goldstein sums, {} meetings, {} commitments, {} sources, as of position {})\n",
        path.display(),
        chart.months.len(),
        chart.meetings.len(),
        chart.commitments.len(),
        chart.sources,
        chart.position
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn short(text: &str, at: usize) -> String {
    if text.chars().count() <= at {
        text.to_owned()
    } else {
        format!("{}…", text.chars().take(at - 1).collect::<String>().trim_end())
    }
}

fn party(party: &(String, String)) -> String {
    if party.1.is_empty() {
        party.0.clone()
    } else {
        format!("{} ({})", party.1, party.0)
    }
}

/// The mark of a meeting state centred at (x, y).
fn meeting_mark(state: MeetingState, x: f64, y: f64) -> String {
    match state {
        MeetingState::Held => format!(r#"<circle cx="{x:.1}" cy="{y:.1}" r="6" fill="{HELD}"/>"#),
        MeetingState::Scheduled => format!(
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="5.5" fill="white" stroke="{SCHEDULED}" stroke-width="2.5"/>"#
        ),
        MeetingState::Postponed => format!(
            r#"<path d="M{:.1} {y:.1} L{x:.1} {:.1} L{:.1} {y:.1} L{x:.1} {:.1} Z" fill="white" stroke="{POSTPONED}" stroke-width="2.5"/>"#,
            x - 7.0,
            y - 7.0,
            x + 7.0,
            y + 7.0
        ),
        MeetingState::Cancelled => format!(
            r#"<path d="M{:.1} {:.1} L{:.1} {:.1} M{:.1} {:.1} L{:.1} {:.1}" stroke="{CANCELLED}" stroke-width="3"/>"#,
            x - 5.5,
            y - 5.5,
            x + 5.5,
            y + 5.5,
            x - 5.5,
            y + 5.5,
            x + 5.5,
            y - 5.5
        ),
    }
}

fn fulfilled_mark(x: f64, y: f64) -> String {
    format!(
        r#"<path d="M{x:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="{FULFILLED}"/>"#,
        y - 7.0,
        x + 7.0,
        y + 5.0,
        x - 7.0,
        y + 5.0
    )
}

fn lapsed_mark(x: f64, y: f64) -> String {
    format!(
        r#"<rect x="{:.1}" y="{:.1}" width="11" height="11" fill="{LAPSED}"/>"#,
        x - 5.5,
        y - 5.5
    )
}

/// The chart as an SVG document.
pub fn render(chart: &RelationChart) -> String {
    // The date axis: whole months around everything dated.
    let days: Vec<f64> = chart
        .meetings
        .iter()
        .filter_map(|m| m.day)
        .chain(chart.commitments.iter().flat_map(|c| {
            [c.made, c.due, c.closed.as_ref().and_then(|(_, d)| *d)]
                .into_iter()
                .flatten()
        }))
        .chain(chart.months.iter().filter_map(|m| month_start(&m.month)))
        .collect();
    let (start, end) = if days.is_empty() {
        (0.0, 31.0)
    } else {
        let lo = days.iter().copied().fold(f64::MAX, f64::min);
        let hi = days.iter().copied().fold(f64::MIN, f64::max);
        (month_start(&month_of_day(lo)).unwrap_or(lo), next_month(hi))
    };
    let x_of = |day: f64| PLOT_LEFT + (day - start) / (end - start) * (PLOT_RIGHT - PLOT_LEFT);
    let rows = chart.commitments.len().clamp(1, 16);
    let lower = (LOWER_TOP, LOWER_TOP + MEETING_LANE + rows as f64 * ROW + 10.0);
    let height = lower.1 + 100.0;
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="DejaVu Sans, Arial, sans-serif" font-size="12" fill="#333333">"##
    );
    let title = format!(
        "{} and {}: meetings, commitments and Goldstein tone",
        party(&chart.parties[0]),
        party(&chart.parties[1])
    );
    let _ = writeln!(svg, "<title>{}</title>", escape(&title));
    let _ = writeln!(svg, r#"<rect width="{WIDTH}" height="{height}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text id="chart-title" x="{}" y="30" font-size="17" font-weight="bold">{}</text>"#,
        PLOT_LEFT - 180.0,
        escape(&title)
    );
    // Panels (their frames carry ids, so tests find them).
    for (id, (top, bottom)) in [("goldstein-panel", TOP_PANEL), ("events-panel", lower)] {
        let _ = writeln!(
            svg,
            r##"<rect id="{id}" x="{PLOT_LEFT}" y="{top}" width="{}" height="{}" fill="none" stroke="#BBBBBB"/>"##,
            PLOT_RIGHT - PLOT_LEFT,
            bottom - top
        );
    }
    // Month grid and the shared date axis.
    let months = ((end - start) / 30.4).round().max(1.0) as usize;
    let every = match months {
        0..=14 => 1,
        15..=36 => 3,
        37..=96 => 12,
        _ => 24,
    };
    let mut tick = start;
    let mut index = 0;
    while tick < end - 1.0 {
        let x = x_of(tick);
        if index % every == 0 {
            for (top, bottom) in [TOP_PANEL, lower] {
                let _ = writeln!(
                    svg,
                    r##"<line x1="{x:.1}" y1="{top}" x2="{x:.1}" y2="{bottom}" stroke="#E5E5E5"/>"##
                );
            }
            let _ = writeln!(
                svg,
                r#"<text x="{x:.1}" y="{}" text-anchor="middle" font-size="11">{}</text>"#,
                lower.1 + 16.0,
                month_of_day(tick + 1.0)
            );
        }
        tick = next_month(tick);
        index += 1;
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">Date (UTC; meetings when held, else when planned)</text>"#,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        lower.1 + 34.0
    );

    // The Goldstein panel: -10..+10, a bar per month with its event count.
    // A CAMEO code scores -10..+10; an event with several codings between the two can score
    // more, so the scale grows (in steps of 5) to hold the largest monthly mean.
    let mean = |month: &Month| month.sum / month.events.max(1) as f64;
    let scale = chart
        .months
        .iter()
        .map(|m| (mean(m).abs() / 5.0).ceil() * 5.0)
        .fold(10.0, f64::max);
    let y_of = |value: f64| {
        let (top, bottom) = TOP_PANEL;
        let middle = (top + bottom) / 2.0;
        middle - value / scale * ((bottom - top) / 2.0 - 8.0)
    };
    for value in [-scale, -scale / 2.0, 0.0, scale / 2.0, scale] {
        let y = y_of(value);
        let _ = writeln!(
            svg,
            r##"<line x1="{}" y1="{y:.1}" x2="{PLOT_LEFT}" y2="{y:.1}" stroke="#888888"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11">{}</text>"##,
            PLOT_LEFT - 4.0,
            PLOT_LEFT - 7.0,
            y + 4.0,
            if value == 0.0 {
                "0".to_owned()
            } else {
                format!("{value:+}")
            }
        );
    }
    let _ = writeln!(
        svg,
        r##"<line x1="{PLOT_LEFT}" y1="{0:.1}" x2="{PLOT_RIGHT}" y2="{0:.1}" stroke="#888888" stroke-dasharray="4 3"/>"##,
        y_of(0.0)
    );
    let axis_y = (TOP_PANEL.0 + TOP_PANEL.1) / 2.0;
    let _ = writeln!(
        svg,
        r#"<text id="goldstein-axis-label" transform="translate({},{axis_y}) rotate(-90)" text-anchor="middle">Goldstein score, mean per event</text>"#,
        PLOT_LEFT - 45.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" font-size="11">(-10 conflict … +10 cooperation; n = events)</text>"#,
        PLOT_LEFT + 6.0,
        TOP_PANEL.0 + 14.0
    );
    for month in &chart.months {
        let Some(from) = month_start(&month.month) else {
            continue;
        };
        let to = next_month(from + 1.0);
        let (x0, x1) = (x_of(from), x_of(to));
        let width = ((x1 - x0) * 0.6).clamp(4.0, 36.0);
        let centre = (x0 + x1) / 2.0;
        let mean = mean(month);
        let (y0, y1) = (y_of(mean.max(0.0)), y_of(mean.min(0.0)));
        let label_y = if mean >= 0.0 { y0 - 4.0 } else { y1 + 12.0 };
        let _ = writeln!(
            svg,
            r##"<g class="goldstein-month"><title>{}: mean {mean:+.1} over {} events (sum {:+.1})</title><rect x="{:.1}" y="{y0:.1}" width="{width:.1}" height="{:.1}" fill="{GOLDSTEIN}" stroke="#7A7000"/><text x="{centre:.1}" y="{label_y:.1}" text-anchor="middle" font-size="10">n={}</text></g>"##,
            month.month,
            month.events,
            month.sum,
            centre - width / 2.0,
            (y1 - y0).max(1.0),
            month.events
        );
    }

    // The events panel: a lane of meetings, then a row per commitment.
    let meeting_y = lower.0 + MEETING_LANE / 2.0 + 4.0;
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{:.1}" text-anchor="end" font-weight="bold">Meetings</text>"#,
        PLOT_LEFT - 7.0,
        meeting_y + 4.0
    );
    let mut undated = 0;
    let mut last_label: Option<f64> = None;
    let mut meetings: Vec<&Meeting> = chart.meetings.iter().collect();
    meetings.sort_by(|x, y| x.day.unwrap_or(f64::MAX).total_cmp(&y.day.unwrap_or(f64::MAX)));
    for meeting in meetings {
        let Some(day) = meeting.day else {
            undated += 1;
            continue;
        };
        let x = x_of(day);
        let place = meeting
            .place
            .clone()
            .unwrap_or_else(|| "place not reported".into());
        // Labels of meetings close together alternate above and below the lane.
        let above = last_label.is_none_or(|previous| x - previous > 70.0);
        last_label = if above { Some(x) } else { None };
        let label_y = if above { meeting_y - 10.0 } else { meeting_y + 19.0 };
        let _ = writeln!(
            svg,
            r#"<g class="meeting" data-state="{}"><title>Meeting {}: {} on {}</title>{}<text x="{x:.1}" y="{label_y:.1}" text-anchor="middle" font-size="10">{}</text></g>"#,
            meeting.state.word(),
            meeting.state.word(),
            escape(&place),
            date(day),
            meeting_mark(meeting.state, x, meeting_y),
            escape(&short(&place, 18))
        );
    }
    for (index, commitment) in chart.commitments.iter().enumerate() {
        let y = lower.0 + MEETING_LANE + (index % rows) as f64 * ROW + ROW / 2.0;
        let mut title = format!("Commitment: {}", commitment.text);
        for (what, when) in [("made", commitment.made), ("due", commitment.due)] {
            let _ = write!(title, "; {what} {}", when.map_or("date not known".into(), date));
        }
        match &commitment.closed {
            Some((word, when)) => {
                let _ = write!(title, "; {word} {}", when.map_or("date not known".into(), date));
            }
            None => title.push_str("; open"),
        }
        let mut marks = String::new();
        let made = commitment.made.map(x_of);
        let due = commitment.due.map(x_of);
        let closed = commitment
            .closed
            .as_ref()
            .and_then(|(word, when)| when.map(|d| (word.as_str(), x_of(d))));
        if let (Some(from), Some(to)) = (made, due) {
            let _ = write!(
                marks,
                r#"<line x1="{from:.1}" y1="{y:.1}" x2="{to:.1}" y2="{y:.1}" stroke="{COMMITMENT}" stroke-width="3"/>"#
            );
        } else if let Some(from) = made {
            // No due date: dashed to where it closed, or to the end of the axis.
            let to = closed.map_or(PLOT_RIGHT, |(_, x)| x);
            let _ = write!(
                marks,
                r#"<line x1="{from:.1}" y1="{y:.1}" x2="{to:.1}" y2="{y:.1}" stroke="{COMMITMENT}" stroke-width="1.5" stroke-dasharray="5 3"/>"#
            );
        }
        if let Some(x) = made {
            let _ = write!(
                marks,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="3.5" fill="{COMMITMENT}"/>"#
            );
        }
        if let Some(x) = due {
            let _ = write!(
                marks,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="{COMMITMENT}" stroke-width="2"/>"#,
                y - 6.0,
                y + 6.0
            );
        }
        if let Some((word, x)) = closed {
            marks.push_str(&if word == "fulfilled" {
                fulfilled_mark(x, y)
            } else {
                lapsed_mark(x, y)
            });
        }
        let _ = writeln!(
            svg,
            r#"<g class="commitment"><title>{}</title><text x="{}" y="{:.1}" text-anchor="end" font-size="10">{}</text>{marks}</g>"#,
            escape(&title),
            PLOT_LEFT - 7.0,
            y + 3.5,
            escape(&short(&commitment.text, 30))
        );
    }

    // The legend: one entry per meaning present.
    let mut entries: Vec<(String, String)> = Vec::new();
    let states: BTreeSet<MeetingState> = chart.meetings.iter().map(|m| m.state).collect();
    for state in states {
        entries.push((format!("Meeting {}", state.word()), meeting_mark(state, 0.0, 0.0)));
    }
    if chart
        .commitments
        .iter()
        .any(|c| c.made.is_some() && c.due.is_some())
    {
        entries.push((
            "Commitment, made to due".into(),
            format!(
                r#"<circle cx="-8" cy="0" r="3.5" fill="{COMMITMENT}"/><line x1="-8" y1="0" x2="8" y2="0" stroke="{COMMITMENT}" stroke-width="3"/><line x1="8" y1="-6" x2="8" y2="6" stroke="{COMMITMENT}" stroke-width="2"/>"#
            ),
        ));
    }
    if chart
        .commitments
        .iter()
        .any(|c| c.made.is_some() && c.due.is_none())
    {
        entries.push((
            "Commitment, no due date".into(),
            format!(
                r#"<circle cx="-8" cy="0" r="3.5" fill="{COMMITMENT}"/><line x1="-8" y1="0" x2="10" y2="0" stroke="{COMMITMENT}" stroke-width="1.5" stroke-dasharray="5 3"/>"#
            ),
        ));
    }
    let closings: BTreeSet<&str> = chart
        .commitments
        .iter()
        .filter_map(|c| c.closed.as_ref().map(|(w, _)| w.as_str()))
        .collect();
    if closings.contains("fulfilled") {
        entries.push(("Commitment fulfilled".into(), fulfilled_mark(0.0, 0.0)));
    }
    let ended: Vec<&str> = closings.iter().copied().filter(|w| *w != "fulfilled").collect();
    if !ended.is_empty() {
        entries.push((format!("Commitment {}", ended.join(" / ")), lapsed_mark(0.0, 0.0)));
    }
    if !chart.months.is_empty() {
        entries.push((
            "Goldstein mean per event".into(),
            format!(r##"<rect x="-6" y="-7" width="12" height="14" fill="{GOLDSTEIN}" stroke="#7A7000"/>"##),
        ));
    }
    let _ = writeln!(
        svg,
        r#"<g id="legend"><text x="{LEGEND_LEFT}" y="{}" font-weight="bold">Legend</text>"#,
        TOP_PANEL.0 + 4.0
    );
    for (index, (label, mark)) in entries.iter().enumerate() {
        let y = TOP_PANEL.0 + 26.0 + index as f64 * 22.0;
        let _ = writeln!(
            svg,
            r#"<g class="legend-entry"><g transform="translate({},{y})">{mark}</g><text x="{}" y="{}">{}</text></g>"#,
            LEGEND_LEFT + 12.0,
            LEGEND_LEFT + 28.0,
            y + 4.0,
            escape(label)
        );
    }
    svg.push_str("</g>\n");

    // The footer: where the answer stands and what it rests on.
    let position = match &chart.as_of {
        Some(as_of) => format!("As of ledger position {} (--as-of {as_of})", chart.position),
        None => format!("As of ledger position {} (latest)", chart.position),
    };
    let mut footer = format!(
        "{position} · {} source{} cited by these meetings and commitments",
        chart.sources,
        if chart.sources == 1 { "" } else { "s" }
    );
    if undated > 0 {
        let _ = write!(footer, " · {undated} meeting(s) without a date not drawn");
    }
    let _ = writeln!(
        svg,
        r#"<text id="footer" x="{}" y="{}" font-size="11">{}</text>"#,
        PLOT_LEFT - 180.0,
        height - 30.0,
        escape(&footer)
    );
    let _ = writeln!(
        svg,
        r##"<text x="{}" y="{}" font-size="10" fill="#666666">Dates are valid time (when things happened); the position is transaction time (what the ledger had recorded). Drawn by dipledger.</text>"##,
        PLOT_LEFT - 180.0,
        height - 14.0
    );
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day_of(text: &str) -> f64 {
        Timestamp::parse_iso8601(text).unwrap().at().unix_micros() as f64 / DAY_MICROS
    }

    fn sample() -> RelationChart {
        RelationChart {
            parties: [("LBY".into(), "Libya".into()), ("FRA".into(), "France".into())],
            position: 22,
            as_of: None,
            sources: 3,
            meetings: vec![
                Meeting {
                    state: MeetingState::Held,
                    place: Some("Benghazi".into()),
                    day: Some(day_of("2025-01-15")),
                },
                Meeting {
                    state: MeetingState::Cancelled,
                    place: Some("Paris & Tripoli".into()),
                    day: Some(day_of("2025-03-02")),
                },
            ],
            commitments: vec![
                Commitment {
                    text: "to reopen the consulate".into(),
                    made: Some(day_of("2025-01-15")),
                    due: Some(day_of("2025-06-30")),
                    closed: Some(("fulfilled".into(), Some(day_of("2025-05-20")))),
                },
                Commitment {
                    text: "to hold elections".into(),
                    made: Some(day_of("2025-01-15")),
                    due: Some(day_of("2025-04-01")),
                    closed: Some(("lapsed".into(), Some(day_of("2025-04-01")))),
                },
            ],
            months: vec![Month {
                month: "2025-01".into(),
                sum: 10.0,
                events: 3,
            }],
        }
    }

    fn legend(svg: &str) -> Vec<String> {
        svg.split(r#"<g class="legend-entry">"#)
            .skip(1)
            .map(|entry| {
                let text = entry.split("<text ").nth(1).unwrap();
                let text = text.split_once("\">").unwrap().1;
                text.split("</text>").next().unwrap().to_owned()
            })
            .collect()
    }

    #[test]
    fn the_legend_has_an_entry_per_state_present_and_none_for_the_absent() {
        let svg = render(&sample());
        assert_eq!(
            legend(&svg),
            [
                "Meeting held",
                "Meeting cancelled",
                "Commitment, made to due",
                "Commitment fulfilled",
                "Commitment lapsed",
                "Goldstein mean per event"
            ]
        );
        let mut chart = sample();
        chart.meetings[0].state = MeetingState::Scheduled;
        chart.meetings[1].state = MeetingState::Postponed;
        let svg = render(&chart);
        let entries = legend(&svg);
        assert!(entries.contains(&"Meeting scheduled".to_owned()), "{entries:?}");
        assert!(entries.contains(&"Meeting postponed".to_owned()), "{entries:?}");
        assert!(!entries.contains(&"Meeting held".to_owned()), "{entries:?}");
    }

    #[test]
    fn every_meeting_has_a_title_naming_its_state_place_and_date() {
        let svg = render(&sample());
        assert!(
            svg.contains("<title>Meeting held: Benghazi on 2025-01-15</title>"),
            "{svg}"
        );
        assert!(
            svg.contains("<title>Meeting cancelled: Paris &amp; Tripoli on 2025-03-02</title>"),
            "{svg}"
        );
        assert_eq!(svg.matches(r#"<g class="meeting""#).count(), 2);
    }

    #[test]
    fn commitments_carry_made_due_and_the_date_they_closed() {
        let svg = render(&sample());
        assert!(svg.contains(
            "<title>Commitment: to reopen the consulate; made 2025-01-15; due 2025-06-30; fulfilled 2025-05-20</title>"
        ), "{svg}");
        assert!(svg.contains("; lapsed 2025-04-01</title>"), "{svg}");
        assert_eq!(
            svg.matches(&format!(r#"fill="{FULFILLED}""#)).count(),
            2,
            "mark and legend"
        );
        assert_eq!(
            svg.matches(&format!(r#"fill="{LAPSED}""#)).count(),
            2,
            "mark and legend"
        );
    }

    #[test]
    fn the_title_names_both_parties_and_the_footer_the_position_and_sources() {
        let svg = render(&sample());
        assert!(svg.contains(
            r#"<text id="chart-title" x="20" y="30" font-size="17" font-weight="bold">Libya (LBY) and France (FRA): "#
        ), "{svg}");
        assert!(
            svg.contains("As of ledger position 22 (latest) · 3 sources cited"),
            "{svg}"
        );
        let mut chart = sample();
        chart.as_of = Some("4".into());
        chart.position = 4;
        chart.parties[1].1.clear();
        let svg = render(&chart);
        assert!(svg.contains("Libya (LBY) and FRA: "), "{svg}");
        assert!(svg.contains("As of ledger position 4 (--as-of 4)"), "{svg}");
    }

    #[test]
    fn the_goldstein_panel_is_a_labelled_monthly_mean_with_event_counts() {
        let svg = render(&sample());
        assert!(
            svg.contains(r#"<text id="goldstein-axis-label" transform="translate(155,150) rotate(-90)" text-anchor="middle">Goldstein score, mean per event</text>"#),
            "{svg}"
        );
        assert!(
            svg.contains("<title>2025-01: mean +3.3 over 3 events (sum +10.0)</title>"),
            "{svg}"
        );
        assert!(svg.contains(">n=3</text>"), "{svg}");
    }

    #[test]
    fn the_goldstein_scale_grows_to_hold_a_mean_beyond_ten() {
        let mut chart = sample();
        chart.months[0].sum = 24.0;
        chart.months[0].events = 2;
        let svg = render(&chart);
        assert!(
            svg.contains(">+15</text>") && svg.contains(">-15</text>"),
            "{svg}"
        );
        assert!(!svg.contains(">+10</text>"), "{svg}");
        let (_, top, _, _) = panel(&svg, "goldstein-panel");
        let bar = svg.split(r#"<g class="goldstein-month">"#).nth(1).unwrap();
        let y: f64 = bar
            .split(r#" y=""#)
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        assert!(y >= top as f64, "the bar stays inside the panel: {y} < {top}");
    }

    #[test]
    fn no_colour_has_two_meanings() {
        let colours = [
            HELD, SCHEDULED, POSTPONED, CANCELLED, COMMITMENT, FULFILLED, LAPSED, GOLDSTEIN,
        ];
        let distinct: BTreeSet<_> = colours.iter().map(|c| c.to_ascii_uppercase()).collect();
        assert_eq!(distinct.len(), colours.len());
    }

    /// The frame `<rect id=...>` of a panel: (x, y, width, height).
    fn panel(svg: &str, id: &str) -> (u32, u32, u32, u32) {
        let tag = svg.split(&format!(r#"<rect id="{id}""#)).nth(1).unwrap();
        let tag = tag.split("/>").next().unwrap();
        let value = |name: &str| -> u32 {
            let v = tag.split(&format!(r#" {name}=""#)).nth(1).unwrap();
            v.split('"').next().unwrap().parse::<f64>().unwrap() as u32
        };
        (value("x"), value("y"), value("width"), value("height"))
    }

    #[test]
    fn it_renders_to_a_png_with_marks_in_both_panels() {
        let svg = render(&sample());
        let mut options = resvg::usvg::Options::default();
        options.fontdb_mut().load_system_fonts();
        let tree = resvg::usvg::Tree::from_str(&svg, &options).unwrap();
        let size = tree.size().to_int_size();
        let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
        resvg::render(
            &tree,
            resvg::tiny_skia::Transform::default(),
            &mut pixmap.as_mut(),
        );
        let pixel = |x: u32, y: u32| {
            let p = pixmap.pixel(x, y).unwrap();
            (p.red(), p.green(), p.blue())
        };
        for id in ["goldstein-panel", "events-panel"] {
            let (x, y, w, h) = panel(&svg, id);
            let mut colours = BTreeSet::new();
            // Inside the frame (1 px in), so its stroke does not count.
            for py in y + 2..y + h - 2 {
                for px in x + 2..x + w - 2 {
                    colours.insert(pixel(px, py));
                }
            }
            colours.remove(&(255, 255, 255));
            assert!(colours.len() >= 3, "{id}: {colours:?}");
        }
        let all: BTreeSet<_> = (0..size.height())
            .flat_map(|y| (0..size.width()).map(move |x| (x, y)))
            .map(|(x, y)| pixel(x, y))
            .collect();
        assert!(all.len() > 20, "{} colours", all.len());
    }
}
