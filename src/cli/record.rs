//! Recording verbs: one per command, grouped by entity (`dipledger party register`, `dipledger
//! meeting held`, ...). Each sends the CommandService RPC and prints what was recorded (or JSON
//! with --json). Without --command-id the CLI makes one (UUID v7) and prints it, so a scripted
//! retry can pass it back and never record twice.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::time::Timestamp;
use serde_json::json;
use tonic::transport::Channel;
use uuid::Uuid;

/// Flags every recording verb takes.
#[derive(Debug, Args)]
pub struct Common {
    /// Idempotency key (a UUID); made up and printed when absent.
    #[arg(long)]
    command_id: Option<String>,
    /// The entity must be at exactly this version (0: must not exist yet).
    #[arg(long)]
    expected_version: Option<u64>,
    /// When it happened, ISO 8601 with the precision written (2025-01-15 is a day).
    #[arg(long)]
    occurred_at: Option<String>,
    /// A cited source: `SOURCE_ID` or `SOURCE_ID=quote` (repeatable).
    #[arg(long = "source")]
    sources: Vec<String>,
    /// The server.
    #[arg(long, env = "DIPLEDGER_SERVER", default_value = "http://127.0.0.1:50051")]
    server: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A party's details.
#[derive(Debug, Args)]
pub struct PartyDetailsArgs {
    /// The name, e.g. Libya.
    #[arg(long)]
    name: String,
    /// state, government or international-organisation.
    #[arg(long, default_value = "state")]
    kind: String,
    /// ISO 3166 alpha-2.
    #[arg(long)]
    iso2: Option<String>,
    /// ISO 3166 alpha-3.
    #[arg(long)]
    iso3: Option<String>,
    /// Wikidata QID.
    #[arg(long)]
    wikidata: Option<String>,
    /// CAMEO actor code.
    #[arg(long)]
    cameo: Option<String>,
}

/// A source's details.
#[derive(Debug, Args)]
pub struct SourceDetailsArgs {
    /// URL of the document.
    #[arg(long)]
    url: Option<String>,
    /// Publisher.
    #[arg(long)]
    publisher: Option<String>,
    /// Title.
    #[arg(long)]
    title: Option<String>,
    /// Publication time, ISO 8601 with its precision.
    #[arg(long)]
    published_at: Option<String>,
    /// When it was retrieved, ISO 8601 (default: now).
    #[arg(long)]
    retrieved_at: Option<String>,
    /// Language tag, e.g. en.
    #[arg(long, default_value = "en")]
    language: String,
}

/// An office.
#[derive(Debug, Args)]
pub struct OfficeArgs {
    /// The post, e.g. "Ambassador of France to Libya".
    #[arg(long)]
    post: String,
    /// Code of the party the office belongs to.
    #[arg(long)]
    party: String,
    /// Code of the party the holder is accredited to.
    #[arg(long)]
    accredited_to: Option<String>,
    /// Start of the tenure, ISO 8601.
    #[arg(long)]
    from: Option<String>,
    /// End of the tenure, ISO 8601.
    #[arg(long)]
    to: Option<String>,
}

/// A meeting's details.
#[derive(Debug, Args)]
pub struct MeetingDetailsArgs {
    /// bilateral, multilateral, phone or virtual.
    #[arg(long, default_value = "bilateral")]
    format: String,
    /// `PARTY[:OFFICIAL_ID[:ROLE]]`, role host, visitor, third-party or mediator (repeatable).
    #[arg(long = "participant", required = true)]
    participants: Vec<String>,
    /// Where, e.g. Benghazi.
    #[arg(long)]
    place: Option<String>,
    /// Code of the country the place is in.
    #[arg(long)]
    country: Option<String>,
    /// A topic slug (repeatable).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// A short summary.
    #[arg(long)]
    summary: Option<String>,
    /// It was a negotiation.
    #[arg(long)]
    negotiation: bool,
}

/// A commitment's details.
#[derive(Debug, Args)]
pub struct CommitmentDetailsArgs {
    /// new or reaffirmation.
    #[arg(long, default_value = "new")]
    kind: String,
    /// A committing party (repeatable).
    #[arg(long = "party", required = true)]
    parties: Vec<String>,
    /// An official (UUID) who voiced it (repeatable).
    #[arg(long = "voiced-by")]
    voiced_by: Vec<String>,
    /// A party it is made to (repeatable).
    #[arg(long = "counterparty")]
    counterparties: Vec<String>,
    /// The text, verbatim where possible.
    #[arg(long)]
    text: String,
    /// The text is a verbatim quote.
    #[arg(long)]
    verbatim: bool,
    /// A topic slug (repeatable).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// aspirational, specific or measurable.
    #[arg(long, default_value = "aspirational")]
    specificity: String,
    /// unspecified, material or diplomatic.
    #[arg(long, default_value = "unspecified")]
    cooperation: String,
    /// Due date, ISO 8601 with its precision.
    #[arg(long)]
    due_by: Option<String>,
    /// The meeting (UUID) it was made at.
    #[arg(long)]
    at_meeting: Option<String>,
}

/// A time window.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Start, ISO 8601 with its precision.
    #[arg(long = "start")]
    start: String,
    /// End, ISO 8601.
    #[arg(long = "end")]
    end: Option<String>,
}

/// `dipledger party ...`
#[derive(Debug, Subcommand)]
pub enum PartyVerb {
    /// Register a party (a state, government or international organisation).
    #[command(
        after_help = "Example:\n  dipledger party register LBY --name Libya --iso2 LY --iso3 LBY --occurred-at 2025-01-15 --source <source-id>"
    )]
    Register {
        /// The party code, e.g. LBY.
        code: String,
        #[command(flatten)]
        details: PartyDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a party's details (name the version whose details are in effect).
    Correct {
        /// The party code, e.g. LBY.
        code: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: PartyDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
}

/// `dipledger source ...`
#[derive(Debug, Subcommand)]
pub enum SourceVerb {
    /// Register a document that reports activity.
    #[command(
        after_help = "Example:\n  dipledger source register --url https://example.org/news/1 --title \"Libya and France\" --published-at 2025-01-16"
    )]
    Register {
        /// The source id (a UUID); made up when absent.
        #[arg(long)]
        source_id: Option<String>,
        #[command(flatten)]
        details: SourceDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a source's details.
    Correct {
        /// The source id (a UUID).
        source_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: SourceDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
}

/// `dipledger official ...`
#[derive(Debug, Subcommand)]
pub enum OfficialVerb {
    /// Show one official with the offices held over time.
    Show {
        /// The official id (a UUID).
        official_id: String,
        #[command(flatten)]
        read: super::client::ReadArgs,
    },
    /// Register an official with the office they hold.
    #[command(
        after_help = "Example:\n  dipledger official register --name \"Mostafa Mihraje\" --post \"Ambassador of France to Libya\" --party FRA --accredited-to LBY --occurred-at 2025-01-15 --source <id>"
    )]
    Register {
        /// The official id (a UUID); made up when absent.
        #[arg(long)]
        official_id: Option<String>,
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        office: OfficeArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Record that an official took up an office.
    Appoint {
        /// The official id (a UUID).
        official_id: String,
        #[command(flatten)]
        office: OfficeArgs,
        #[command(flatten)]
        common: Common,
    },
    /// End a tenure (name the version of the appointment).
    EndTenure {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version of the appointment (see `dipledger history`).
        #[arg(long)]
        tenure_version: u64,
        /// When it ended, ISO 8601.
        #[arg(long)]
        ended_at: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Correct an official's name.
    CorrectName {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Retract one of the official's events.
    Retract {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version of the event to retract (see `dipledger history`).
        #[arg(long)]
        retracts_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

/// `dipledger meeting ...`
#[derive(Debug, Subcommand)]
pub enum MeetingVerb {
    /// Show one meeting.
    #[command(after_help = "Example:\n  dipledger meeting show <meeting-id> --as-of 42")]
    Show {
        /// The meeting id (a UUID).
        meeting_id: String,
        #[command(flatten)]
        read: super::client::ReadArgs,
    },
    /// List meetings, filtered.
    #[command(after_help = "Example:\n  dipledger meeting list --party LBY --topic security --json")]
    List {
        /// Only meetings with this party.
        #[arg(long)]
        party: Option<String>,
        /// Only meetings with this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only meetings at this place.
        #[arg(long)]
        place: Option<String>,
        /// Only meetings in this state: proposed, scheduled, rescheduled, held, cancelled.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        read: super::client::ReadArgs,
    },
    /// A party proposes a meeting.
    Propose {
        /// The meeting id (a UUID); made up when absent.
        #[arg(long)]
        meeting_id: Option<String>,
        /// Code of the proposing party.
        #[arg(long)]
        proposed_by: String,
        #[command(flatten)]
        details: MeetingDetailsArgs,
        /// Start of the proposed window, ISO 8601 with its precision.
        #[arg(long)]
        window_start: Option<String>,
        /// End of the proposed window, ISO 8601.
        #[arg(long)]
        window_end: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A meeting is scheduled.
    Schedule {
        /// The meeting id (a UUID); made up when absent.
        #[arg(long)]
        meeting_id: Option<String>,
        #[command(flatten)]
        details: MeetingDetailsArgs,
        #[command(flatten)]
        window: WindowArgs,
        #[command(flatten)]
        common: Common,
    },
    /// A scheduled meeting moves.
    Reschedule {
        /// The meeting id (a UUID).
        meeting_id: String,
        #[command(flatten)]
        window: WindowArgs,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A meeting is cancelled.
    Cancel {
        /// The meeting id (a UUID).
        meeting_id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A meeting was held (also when first learned of afterwards).
    #[command(
        after_help = "Example:\n  dipledger meeting held --participant LBY:<official-id> --participant FRA:<official-id> --place Benghazi --country LBY --topic security --occurred-at 2025-01-15 --source <id>"
    )]
    Held {
        /// The meeting id (a UUID); made up when absent.
        #[arg(long)]
        meeting_id: Option<String>,
        #[command(flatten)]
        details: MeetingDetailsArgs,
        /// When it ended, ISO 8601.
        #[arg(long)]
        ended_at: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Someone said something at a held meeting.
    Statement {
        /// The meeting id (a UUID).
        meeting_id: String,
        /// Code of the speaker's party.
        #[arg(long)]
        party: String,
        /// The speaking official (a UUID).
        #[arg(long)]
        official: Option<String>,
        /// The text.
        #[arg(long)]
        text: String,
        /// The text is a verbatim quote.
        #[arg(long)]
        verbatim: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a meeting's details.
    Correct {
        /// The meeting id (a UUID).
        meeting_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: MeetingDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Retract one of the meeting's events.
    Retract {
        /// The meeting id (a UUID).
        meeting_id: String,
        /// The stream version of the event to retract (see `dipledger history`).
        #[arg(long)]
        retracts_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

/// `dipledger commitment ...`
#[derive(Debug, Subcommand)]
pub enum CommitmentVerb {
    /// Show one commitment.
    Show {
        /// The commitment id (a UUID).
        commitment_id: String,
        #[command(flatten)]
        read: super::client::ReadArgs,
    },
    /// List commitments, filtered.
    #[command(after_help = "Example:\n  dipledger commitment list --party FRA --status fulfilled")]
    List {
        /// Only commitments this party makes or receives.
        #[arg(long)]
        party: Option<String>,
        /// Only commitments with this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only commitments in this state: made, reaffirmed, in-progress, fulfilled, lapsed, withdrawn, superseded.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        read: super::client::ReadArgs,
    },
    /// Record a commitment (new or a reaffirmation of an earlier one).
    Record {
        /// The commitment id (a UUID); made up when absent.
        #[arg(long)]
        commitment_id: Option<String>,
        #[command(flatten)]
        details: CommitmentDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Parties reaffirm a recorded commitment.
    Reaffirm {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// A reaffirming party (repeatable).
        #[arg(long = "by", required = true)]
        reaffirmed_by: Vec<String>,
        /// An official (UUID) who voiced it (repeatable).
        #[arg(long = "voiced-by")]
        voiced_by: Vec<String>,
        /// The meeting (a UUID) at which it happened.
        #[arg(long)]
        at_meeting: Option<String>,
        /// The text.
        #[arg(long)]
        text: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Progress is reported.
    Progress {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// What happened.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment was fulfilled.
    Fulfil {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// What happened.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment lapsed.
    Lapse {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment was withdrawn.
    Withdraw {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Another commitment superseded it.
    Supersede {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// The superseding commitment (a UUID).
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A compliance assessment: `--score PARTY=-1|0|1` (repeatable).
    Assess {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// interim or final.
        #[arg(long, default_value = "interim")]
        stage: String,
        /// Who assessed.
        #[arg(long)]
        assessor: String,
        /// Why this score.
        #[arg(long)]
        rationale: String,
        /// A score `PARTY=-1|0|1` (repeatable).
        #[arg(long = "score", required = true)]
        scores: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a commitment's details.
    Correct {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: CommitmentDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Retract one of the commitment's events.
    Retract {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// The stream version of the event to retract (see `dipledger history`).
        #[arg(long)]
        retracts_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

fn pb_time(text: &str, flag: &str) -> anyhow::Result<prost_types::Timestamp> {
    let at = Timestamp::parse_iso8601(text)
        .with_context(|| format!("--{flag} {text:?} is not ISO 8601 (e.g. 2025-01-15)"))?;
    let micros = at.at().unix_micros();
    Ok(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

fn pb_occurred(text: &str, flag: &str) -> anyhow::Result<pb::OccurredAt> {
    let at = Timestamp::parse_iso8601(text)
        .with_context(|| format!("--{flag} {text:?} is not ISO 8601 (e.g. 2025-01-15)"))?;
    let precision = pb::Precision::from_str_name(&format!("PRECISION_{:?}", at.precision()).to_uppercase())
        .context("precision")?;
    Ok(pb::OccurredAt {
        at: Some(pb_time(text, flag)?),
        precision: precision as i32,
    })
}

fn optional_occurred(text: &Option<String>, flag: &str) -> anyhow::Result<Option<pb::OccurredAt>> {
    text.as_deref().map(|text| pb_occurred(text, flag)).transpose()
}

fn enum_value(prefix: &str, value: &str, flag: &str, parse: fn(&str) -> Option<i32>) -> anyhow::Result<i32> {
    let name = format!("{prefix}_{}", value.to_uppercase().replace('-', "_"));
    match parse(&name) {
        Some(value) if !name.ends_with("_UNSPECIFIED") || prefix == "COOPERATION_KIND" => Ok(value),
        _ => bail!("--{flag} {value:?} is not one of the allowed values (see --help)"),
    }
}

impl Common {
    /// The request header: the given or a fresh command id, the expected version, the valid
    /// time and the citations (a source command is refused by the server if given either).
    fn header(&self) -> anyhow::Result<pb::CommandHeader> {
        Ok(pb::CommandHeader {
            command_id: self
                .command_id
                .clone()
                .unwrap_or_else(|| Uuid::now_v7().to_string()),
            expected_version: self.expected_version,
            occurred_at: self.occurred_at()?,
            sources: self.sources(),
            correlation_id: None,
            causation_id: None,
        })
    }
    fn occurred_at(&self) -> anyhow::Result<Option<pb::OccurredAt>> {
        optional_occurred(&self.occurred_at, "occurred-at")
    }
    fn sources(&self) -> Vec<pb::SourceCitation> {
        self.sources
            .iter()
            .map(|source| match source.split_once('=') {
                Some((id, quote)) => pb::SourceCitation {
                    source_id: id.into(),
                    quote: Some(quote.into()),
                },
                None => pb::SourceCitation {
                    source_id: source.clone(),
                    quote: None,
                },
            })
            .collect()
    }
}

impl PartyDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::PartyDetails> {
        Ok(pb::PartyDetails {
            kind: enum_value("PARTY_KIND", &self.kind, "kind", |n| {
                pb::PartyKind::from_str_name(n).map(|v| v as i32)
            })?,
            name: self.name.clone(),
            iso_alpha2: self.iso2.clone(),
            iso_alpha3: self.iso3.clone(),
            wikidata_qid: self.wikidata.clone(),
            cameo_code: self.cameo.clone(),
        })
    }
}

impl SourceDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::SourceDetails> {
        let retrieved = match &self.retrieved_at {
            Some(text) => pb_time(text, "retrieved-at")?,
            None => {
                let now = dipledger::log::Clock::now(&dipledger::log::SystemClock).unix_micros();
                prost_types::Timestamp {
                    seconds: now.div_euclid(1_000_000),
                    nanos: (now.rem_euclid(1_000_000) * 1_000) as i32,
                }
            }
        };
        Ok(pb::SourceDetails {
            url: self.url.clone(),
            publisher: self.publisher.clone(),
            title: self.title.clone(),
            published_at: optional_occurred(&self.published_at, "published-at")?,
            retrieved_at: Some(retrieved),
            language: self.language.clone(),
        })
    }
}

impl OfficeArgs {
    fn to_pb(&self) -> anyhow::Result<pb::OfficeTerm> {
        Ok(pb::OfficeTerm {
            post: self.post.clone(),
            party: self.party.clone(),
            accredited_to: self.accredited_to.clone(),
            from: optional_occurred(&self.from, "from")?,
            to: optional_occurred(&self.to, "to")?,
        })
    }
}

impl MeetingDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::MeetingDetails> {
        let participants = self
            .participants
            .iter()
            .map(|text| {
                let mut parts = text.split(':');
                let party = parts.next().unwrap_or_default().to_owned();
                let official_id = parts.next().filter(|id| !id.is_empty()).map(str::to_owned);
                let role = match parts.next() {
                    Some(role) => enum_value("PARTICIPANT_ROLE", role, "participant", |n| {
                        pb::ParticipantRole::from_str_name(n).map(|v| v as i32)
                    })?,
                    None => pb::ParticipantRole::Unspecified as i32,
                };
                anyhow::Ok(pb::Participant {
                    party,
                    official_id,
                    role,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        Ok(pb::MeetingDetails {
            format: enum_value("MEETING_FORMAT", &self.format, "format", |n| {
                pb::MeetingFormat::from_str_name(n).map(|v| v as i32)
            })?,
            participants,
            location: self.place.as_ref().map(|place| pb::Location {
                place: place.clone(),
                country: self.country.clone(),
            }),
            topics: self.topics.clone(),
            summary: self.summary.clone(),
            negotiation: self.negotiation,
        })
    }
}

impl CommitmentDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::CommitmentDetails> {
        Ok(pb::CommitmentDetails {
            kind: enum_value("COMMITMENT_KIND", &self.kind, "kind", |n| {
                pb::CommitmentKind::from_str_name(n).map(|v| v as i32)
            })?,
            committing_parties: self.parties.clone(),
            voiced_by: self.voiced_by.clone(),
            counterparties: self.counterparties.clone(),
            text: self.text.clone(),
            verbatim: self.verbatim,
            topics: self.topics.clone(),
            specificity: enum_value("SPECIFICITY", &self.specificity, "specificity", |n| {
                pb::Specificity::from_str_name(n).map(|v| v as i32)
            })?,
            cooperation: enum_value("COOPERATION_KIND", &self.cooperation, "cooperation", |n| {
                pb::CooperationKind::from_str_name(n).map(|v| v as i32)
            })?,
            due_by: optional_occurred(&self.due_by, "due-by")?,
            made_at_meeting: self.at_meeting.clone(),
        })
    }
}

impl WindowArgs {
    fn to_pb(&self) -> anyhow::Result<pb::TimeWindow> {
        Ok(pb::TimeWindow {
            start: Some(pb_occurred(&self.start, "start")?),
            end: self.end.as_deref().map(|end| pb_time(end, "end")).transpose()?,
        })
    }
}

/// What a recording verb prints.
struct Recorded {
    command_id: String,
    generated: bool,
    entity_id: String,
    result: pb::CommandResult,
    json: bool,
}

impl Recorded {
    fn render(&self) -> String {
        let pb::CommandResult {
            stream_id,
            stream_version,
            positions,
            event_ids,
            ..
        } = &self.result;
        if self.json {
            return format!(
                "{}\n",
                json!({
                    "command_id": self.command_id,
                    "entity_id": self.entity_id,
                    "stream_id": stream_id,
                    "stream_version": stream_version,
                    "positions": positions,
                    "event_ids": event_ids,
                })
            );
        }
        let mut out = match (positions.first(), positions.last()) {
            (Some(first), Some(last)) if first != last => format!(
                "recorded {} events for {} (version {}) at positions {first}..{last}\n",
                positions.len(),
                stream_id,
                stream_version
            ),
            (Some(first), _) => format!(
                "recorded 1 event for {} (version {}) at position {first}\n",
                stream_id, stream_version
            ),
            _ => format!("nothing new for {} (version {})\n", stream_id, stream_version),
        };
        out.push_str(&format!("entity id: {}\n", self.entity_id));
        if self.generated {
            out.push_str(&format!(
                "command id: {} (pass --command-id to retry safely)\n",
                self.command_id
            ));
        }
        out
    }
}

/// Sends one command RPC and renders its answer. Every response has the same outcome fields;
/// `$id` names the response's entity id field.
macro_rules! send {
    ($client:expr, $common:expr, $rpc:ident, $request:expr, $id:ident) => {{
        let header = $common.header()?;
        let command_id = header.command_id.clone();
        let mut request = $request;
        request.header = Some(header);
        let response = $client
            .$rpc(request)
            .await
            .map_err(|status| anyhow::anyhow!("{:?}: {}", status.code(), status.message()))?
            .into_inner();
        Recorded {
            generated: $common.command_id.is_none(),
            command_id,
            entity_id: response.$id.to_string(),
            result: response.result.unwrap_or_default(),
            json: $common.json,
        }
        .render()
    }};
}

/// A request with its own fields; `send!` fills in the header.
macro_rules! request {
    ($message:ident { $($field:ident: $value:expr),* $(,)? }) => {
        pb::$message {
            $($field: $value,)*
            ..Default::default()
        }
    };
}

async fn client(server: &str) -> anyhow::Result<CommandServiceClient<Channel>> {
    let channel = Channel::from_shared(server.to_owned())
        .context("--server must be a URI such as http://127.0.0.1:50051")?
        .connect()
        .await
        .with_context(|| format!("connecting to {server}"))?;
    Ok(CommandServiceClient::new(channel))
}

/// Runs a `party` verb.
pub async fn party(verb: PartyVerb) -> anyhow::Result<String> {
    Ok(match verb {
        PartyVerb::Register {
            code,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                register_party,
                request!(RegisterPartyRequest {
                    code: code,
                    details: Some(details.to_pb()?)
                }),
                code
            )
        }
        PartyVerb::Correct {
            code,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_party,
                request!(CorrectPartyRequest {
                    code: code,
                    corrects_version: corrects_version,
                    reason: reason,
                    details: Some(details.to_pb()?)
                }),
                code
            )
        }
    })
}

/// Runs a `source` verb.
pub async fn source(verb: SourceVerb) -> anyhow::Result<String> {
    Ok(match verb {
        SourceVerb::Register {
            source_id,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let request = pb::RegisterSourceRequest {
                source_id: source_id.unwrap_or_default(),
                details: Some(details.to_pb()?),
                ..Default::default()
            };
            send!(c, common, register_source, request, source_id)
        }
        SourceVerb::Correct {
            source_id,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let request = pb::CorrectSourceRequest {
                source_id,
                corrects_version,
                reason,
                details: Some(details.to_pb()?),
                ..Default::default()
            };
            send!(c, common, correct_source, request, source_id)
        }
    })
}

/// Runs an `official` verb.
pub async fn official(verb: OfficialVerb) -> anyhow::Result<String> {
    Ok(match verb {
        OfficialVerb::Show { official_id, read } => {
            super::client::official_show(&read.server, &official_id, read.as_of.as_deref(), read.json).await?
        }
        OfficialVerb::Register {
            official_id,
            name,
            office,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                register_official,
                request!(RegisterOfficialRequest {
                    official_id: official_id.unwrap_or_default(),
                    name: name,
                    offices: vec![office.to_pb()?]
                }),
                official_id
            )
        }
        OfficialVerb::Appoint {
            official_id,
            office,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                appoint_official,
                request!(AppointOfficialRequest {
                    official_id: official_id,
                    office: Some(office.to_pb()?)
                }),
                official_id
            )
        }
        OfficialVerb::EndTenure {
            official_id,
            tenure_version,
            ended_at,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                end_tenure,
                request!(EndTenureRequest {
                    official_id: official_id,
                    tenure_version: tenure_version,
                    ended_at: Some(pb_occurred(&ended_at, "ended-at")?),
                    reason: reason
                }),
                official_id
            )
        }
        OfficialVerb::CorrectName {
            official_id,
            corrects_version,
            reason,
            name,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_official_name,
                request!(CorrectOfficialNameRequest {
                    official_id: official_id,
                    corrects_version: corrects_version,
                    reason: reason,
                    name: name
                }),
                official_id
            )
        }
        OfficialVerb::Retract {
            official_id,
            retracts_version,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                retract_official_event,
                request!(RetractOfficialEventRequest {
                    official_id: official_id,
                    retracts_version: retracts_version,
                    reason: reason
                }),
                official_id
            )
        }
    })
}

/// Runs a `meeting` verb.
pub async fn meeting(verb: MeetingVerb) -> anyhow::Result<String> {
    Ok(match verb {
        MeetingVerb::Show { meeting_id, read } => {
            super::client::meeting_show(&read.server, &meeting_id, read.as_of.as_deref(), read.json).await?
        }
        MeetingVerb::List {
            party,
            topic,
            place,
            status,
            read,
        } => {
            let status = match status {
                Some(status) => enum_value("MEETING_STATUS", &status, "status", |n| {
                    pb::MeetingStatus::from_str_name(n).map(|v| v as i32)
                })?,
                None => 0,
            };
            let filter = pb::ListMeetingsRequest {
                party,
                topic,
                place,
                status,
                ..Default::default()
            };
            super::client::meeting_list(&read.server, filter, read.as_of.as_deref(), read.json).await?
        }
        MeetingVerb::Propose {
            meeting_id,
            proposed_by,
            details,
            window_start,
            window_end,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let window = match window_start {
                Some(start) => Some(
                    WindowArgs {
                        start,
                        end: window_end,
                    }
                    .to_pb()?,
                ),
                None => None,
            };
            send!(
                c,
                common,
                propose_meeting,
                request!(ProposeMeetingRequest {
                    meeting_id: meeting_id.unwrap_or_default(),
                    proposed_by: proposed_by,
                    details: Some(details.to_pb()?),
                    proposed_window: window
                }),
                meeting_id
            )
        }
        MeetingVerb::Schedule {
            meeting_id,
            details,
            window,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                schedule_meeting,
                request!(ScheduleMeetingRequest {
                    meeting_id: meeting_id.unwrap_or_default(),
                    details: Some(details.to_pb()?),
                    window: Some(window.to_pb()?)
                }),
                meeting_id
            )
        }
        MeetingVerb::Reschedule {
            meeting_id,
            window,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                reschedule_meeting,
                request!(RescheduleMeetingRequest {
                    meeting_id: meeting_id,
                    window: Some(window.to_pb()?),
                    reason: reason
                }),
                meeting_id
            )
        }
        MeetingVerb::Cancel {
            meeting_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                cancel_meeting,
                request!(CancelMeetingRequest {
                    meeting_id: meeting_id,
                    reason: reason
                }),
                meeting_id
            )
        }
        MeetingVerb::Held {
            meeting_id,
            details,
            ended_at,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let ended_at = ended_at.as_deref().map(|t| pb_time(t, "ended-at")).transpose()?;
            send!(
                c,
                common,
                record_meeting_held,
                request!(RecordMeetingHeldRequest {
                    meeting_id: meeting_id.unwrap_or_default(),
                    details: Some(details.to_pb()?),
                    ended_at: ended_at
                }),
                meeting_id
            )
        }
        MeetingVerb::Statement {
            meeting_id,
            party,
            official,
            text,
            verbatim,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                record_statement,
                request!(RecordStatementRequest {
                    meeting_id: meeting_id,
                    speaker: Some(pb::Speaker {
                        party,
                        official_id: official
                    }),
                    text: text,
                    verbatim: verbatim
                }),
                meeting_id
            )
        }
        MeetingVerb::Correct {
            meeting_id,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_meeting,
                request!(CorrectMeetingRequest {
                    meeting_id: meeting_id,
                    corrects_version: corrects_version,
                    reason: reason,
                    details: Some(details.to_pb()?)
                }),
                meeting_id
            )
        }
        MeetingVerb::Retract {
            meeting_id,
            retracts_version,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                retract_meeting_event,
                request!(RetractMeetingEventRequest {
                    meeting_id: meeting_id,
                    retracts_version: retracts_version,
                    reason: reason
                }),
                meeting_id
            )
        }
    })
}

/// Runs a `commitment` verb.
pub async fn commitment(verb: CommitmentVerb) -> anyhow::Result<String> {
    Ok(match verb {
        CommitmentVerb::Show { commitment_id, read } => {
            super::client::commitment_show(&read.server, &commitment_id, read.as_of.as_deref(), read.json)
                .await?
        }
        CommitmentVerb::List {
            party,
            topic,
            status,
            read,
        } => {
            let status = match status {
                Some(status) => enum_value("COMMITMENT_STATUS", &status, "status", |n| {
                    pb::CommitmentStatus::from_str_name(n).map(|v| v as i32)
                })?,
                None => 0,
            };
            let filter = pb::ListCommitmentsRequest {
                party,
                topic,
                status,
                ..Default::default()
            };
            super::client::commitment_list(&read.server, filter, read.as_of.as_deref(), read.json).await?
        }
        CommitmentVerb::Record {
            commitment_id,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                record_commitment,
                request!(RecordCommitmentRequest {
                    commitment_id: commitment_id.unwrap_or_default(),
                    details: Some(details.to_pb()?)
                }),
                commitment_id
            )
        }
        CommitmentVerb::Reaffirm {
            commitment_id,
            reaffirmed_by,
            voiced_by,
            at_meeting,
            text,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                reaffirm_commitment,
                request!(ReaffirmCommitmentRequest {
                    commitment_id: commitment_id,
                    reaffirmed_by: reaffirmed_by,
                    voiced_by: voiced_by,
                    at_meeting: at_meeting,
                    text: text
                }),
                commitment_id
            )
        }
        CommitmentVerb::Progress {
            commitment_id,
            summary,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                report_commitment_progress,
                request!(ReportCommitmentProgressRequest {
                    commitment_id: commitment_id,
                    summary: summary
                }),
                commitment_id
            )
        }
        CommitmentVerb::Fulfil {
            commitment_id,
            summary,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                fulfil_commitment,
                request!(FulfilCommitmentRequest {
                    commitment_id: commitment_id,
                    summary: summary
                }),
                commitment_id
            )
        }
        CommitmentVerb::Lapse {
            commitment_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                mark_commitment_lapsed,
                request!(MarkCommitmentLapsedRequest {
                    commitment_id: commitment_id,
                    reason: reason
                }),
                commitment_id
            )
        }
        CommitmentVerb::Withdraw {
            commitment_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                withdraw_commitment,
                request!(WithdrawCommitmentRequest {
                    commitment_id: commitment_id,
                    reason: reason
                }),
                commitment_id
            )
        }
        CommitmentVerb::Supersede {
            commitment_id,
            by,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                supersede_commitment,
                request!(SupersedeCommitmentRequest {
                    commitment_id: commitment_id,
                    superseded_by: by,
                    reason: reason
                }),
                commitment_id
            )
        }
        CommitmentVerb::Assess {
            commitment_id,
            stage,
            assessor,
            rationale,
            scores,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let scores = scores
                .iter()
                .map(|text| {
                    let (party, score) = text
                        .split_once('=')
                        .with_context(|| format!("--score {text:?} must be PARTY=-1|0|1"))?;
                    let score: i32 = score
                        .parse()
                        .with_context(|| format!("--score {text:?} must be PARTY=-1|0|1"))?;
                    anyhow::Ok(pb::PartyScore {
                        party: party.to_owned(),
                        score,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let stage = enum_value("ASSESSMENT_STAGE", &stage, "stage", |n| {
                pb::AssessmentStage::from_str_name(n).map(|v| v as i32)
            })?;
            send!(
                c,
                common,
                assess_compliance,
                request!(AssessComplianceRequest {
                    commitment_id: commitment_id,
                    stage: stage,
                    assessor: assessor,
                    rationale: rationale,
                    scores: scores
                }),
                commitment_id
            )
        }
        CommitmentVerb::Correct {
            commitment_id,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_commitment,
                request!(CorrectCommitmentRequest {
                    commitment_id: commitment_id,
                    corrects_version: corrects_version,
                    reason: reason,
                    details: Some(details.to_pb()?)
                }),
                commitment_id
            )
        }
        CommitmentVerb::Retract {
            commitment_id,
            retracts_version,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                retract_commitment_event,
                request!(RetractCommitmentEventRequest {
                    commitment_id: commitment_id,
                    retracts_version: retracts_version,
                    reason: reason
                }),
                commitment_id
            )
        }
    })
}

/// `dipledger retract STREAM_ID`: retracts one event of any entity that supports retraction
/// (officials, meetings, commitments), chosen by the stream id's prefix.
pub async fn retract(
    stream_id: &str,
    version: u64,
    reason: String,
    common: Common,
) -> anyhow::Result<String> {
    let Some((kind, id)) = stream_id.split_once('-') else {
        bail!("{stream_id:?} is not a stream id such as meeting-<uuid>");
    };
    let (id, retracts_version) = (id.to_owned(), version);
    match kind {
        "official" => official(OfficialVerb::Retract { official_id: id, retracts_version, reason, common }).await,
        "meeting" => meeting(MeetingVerb::Retract { meeting_id: id, retracts_version, reason, common }).await,
        "commitment" => commitment(CommitmentVerb::Retract { commitment_id: id, retracts_version, reason, common }).await,
        _ => bail!("{kind} events cannot be retracted; parties and sources are corrected instead (`party correct`, `source correct`)"),
    }
}
