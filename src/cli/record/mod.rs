//! Recording verbs: one per command, grouped by entity (`dipledger party register`, `dipledger
//! meeting held`, ...). Each sends the CommandService RPC and prints what was recorded (or JSON
//! with --json). Without --command-id the CLI makes one (UUID v7) and prints it, so a scripted
//! retry can pass it back and never record twice.
//!
//! One file per entity holds its verbs, its flags and how they become requests; this file holds
//! the flags every verb shares, the header, how an answer is printed, and `retract`.

use anyhow::{bail, Context};
use clap::Args;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::time::Timestamp;
use serde_json::json;
use uuid::Uuid;

// Macros first: they are visible in the entity modules declared after them.

/// Sends one command RPC and renders its answer. Every response carries a `CommandResult`; the
/// entity is printed as its stream id (`party-LBY`, `meeting-<uuid>`), the one form every verb
/// and RPC accepts (besides the bare id).
macro_rules! send {
    ($client:expr, $common:expr, $rpc:ident, $request:expr) => {{
        let header = $common.header()?;
        let command_id = header.command_id.clone();
        let mut request = $request;
        request.header = Some(header);
        let response = $client
            .$rpc(request)
            .await
            .map_err($crate::cli::describe)?
            .into_inner();
        Recorded {
            generated: $common.command_id.is_none(),
            command_id,
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

mod commitment;
mod meeting;
mod official;
mod party;
mod source;

pub use commitment::{commitment, CommitmentVerb};
pub use meeting::{meeting, MeetingVerb};
pub use official::{official, OfficialVerb};
pub use party::{party, PartyVerb};
pub use source::{source, SourceVerb};

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
    #[arg(long, env = "DIPLEDGER_SERVER", default_value = super::DEFAULT_SERVER)]
    server: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// A time flag (`--at`, `--from`, ...) as a protobuf timestamp, or an error naming the flag.
pub(crate) fn pb_time(text: &str, flag: &str) -> anyhow::Result<prost_types::Timestamp> {
    let at = Timestamp::parse_iso8601(text)
        .map_err(|reason| anyhow::anyhow!("--{flag} {text:?} is not a valid ISO 8601 time: {reason} (e.g. 2025-01-15 or 2025-01-15T10:00+01:00)"))?;
    let micros = at.at().unix_micros();
    Ok(prost_types::Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1_000) as i32,
    })
}

fn pb_occurred(text: &str, flag: &str) -> anyhow::Result<pb::OccurredAt> {
    let at = Timestamp::parse_iso8601(text)
        .map_err(|reason| anyhow::anyhow!("--{flag} {text:?} is not a valid ISO 8601 time: {reason} (e.g. 2025-01-15 or 2025-01-15T10:00+01:00)"))?;
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

/// What a recording verb prints.
struct Recorded {
    command_id: String,
    generated: bool,
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
                    "entity_id": stream_id,
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
        out.push_str(&format!("entity: {stream_id}\n"));
        if self.generated {
            out.push_str(&format!(
                "command id: {} (pass --command-id to retry safely)\n",
                self.command_id
            ));
        }
        out
    }
}

async fn client(server: &str) -> anyhow::Result<CommandServiceClient<super::Connection>> {
    Ok(CommandServiceClient::new(super::connect(server).await?))
}

/// `dipledger retract ENTITY`: retracts one event of any entity that supports retraction
/// (officials, meetings, commitments), named by its stream id (`meeting-<uuid>`) or its bare UUID,
/// with that entity's retract request.
pub async fn retract(entity: &str, version: u64, reason: String, common: Common) -> anyhow::Result<String> {
    let stream_id = match uuid::Uuid::parse_str(entity) {
        Ok(uuid) => retractable_stream(&common.server, uuid).await?,
        Err(_) => entity.to_owned(),
    };
    let Some((kind, id)) = stream_id.split_once('-') else {
        bail!("{entity:?} is neither a stream id such as meeting-<uuid> nor a UUID");
    };
    let id = id.to_owned();
    let mut c = client(&common.server).await?;
    Ok(match kind {
        "official" => send!(
            c,
            common,
            retract_official_event,
            request!(RetractOfficialEventRequest { official_id: id, retracts_version: version, reason: reason })
),
        "meeting" => send!(
            c,
            common,
            retract_meeting_event,
            request!(RetractMeetingEventRequest { meeting_id: id, retracts_version: version, reason: reason })
),
        "commitment" => send!(
            c,
            common,
            retract_commitment_event,
            request!(RetractCommitmentEventRequest { commitment_id: id, retracts_version: version, reason: reason })
),
        _ => bail!(
            "{kind} events cannot be retracted; parties and sources are corrected instead (`party correct`, `source correct`)"
        ),
    })
}

/// The stream of the official, meeting or commitment whose id is `uuid` (ids are unique across
/// kinds, so at most one of the three streams has events).
async fn retractable_stream(server: &str, uuid: uuid::Uuid) -> anyhow::Result<String> {
    use dipledger::api::pb::event_store_service_client::EventStoreServiceClient;
    let mut store = EventStoreServiceClient::new(super::connect(server).await?);
    for kind in ["official", "meeting", "commitment"] {
        let stream_id = format!("{kind}-{uuid}");
        let request = pb::ReadStreamRequest {
            stream_id: stream_id.clone(),
            limit: 1,
            ..Default::default()
        };
        match store.read_stream(request).await {
            Ok(_) => return Ok(stream_id),
            Err(status) if status.code() == tonic::Code::NotFound => continue,
            Err(status) => return Err(super::describe(status)),
        }
    }
    bail!("no official, meeting or commitment has the id {uuid}")
}
