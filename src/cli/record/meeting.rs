//! `dipledger meeting ...`: meetings from proposal to statements.

use clap::{Args, Subcommand};
use dipledger::api::pb;

use super::*;

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
    /// ISO 3166-1 alpha-3 code of the country the place is in (a place: it need not be a
    /// registered party).
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

/// A time window.
#[derive(Debug, Args)]
pub struct WindowArgs {
    /// Start, ISO 8601 with its precision (`2025-02-24` is a day).
    #[arg(long = "start")]
    start: String,
    /// End, ISO 8601 with its precision (`--start 2025-02-24 --end 2025-02-27`: 24 to 27 February).
    #[arg(long = "end")]
    end: Option<String>,
    /// The meeting happens at some time between start and end, the report does not say when
    /// ("between the 16th and the 17th"); without it the meeting lasts from start to end.
    #[arg(long, requires = "end")]
    within: bool,
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
        read: crate::cli::read::ReadArgs,
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
        /// Only meetings in this state: proposed, scheduled, rescheduled, held, postponed, cancelled.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// A party, or several jointly, propose a meeting.
    Propose {
        /// The meeting id (a UUID); made up when absent.
        #[arg(long)]
        meeting_id: Option<String>,
        /// Code of a proposing party (repeat for a joint proposal).
        #[arg(long, required = true)]
        proposed_by: Vec<String>,
        #[command(flatten)]
        details: MeetingDetailsArgs,
        /// Start of the proposed window, ISO 8601 with its precision.
        #[arg(long)]
        window_start: Option<String>,
        /// End of the proposed window, ISO 8601 with its precision.
        #[arg(long, requires = "window_start")]
        window_end: Option<String>,
        /// The meeting would happen at some time between the window's start and end.
        #[arg(long, requires = "window_end")]
        window_within: bool,
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
    /// A meeting gets a new date (a scheduled one moves; a postponed or cancelled one comes back).
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
    /// A meeting is postponed without a new date.
    Postpone {
        /// The meeting id (a UUID).
        meeting_id: String,
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
        /// Code of a party that called it off (repeatable; leave out when the source does not say).
        #[arg(long)]
        cancelled_by: Vec<String>,
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

impl WindowArgs {
    fn to_pb(&self) -> anyhow::Result<pb::TimeWindow> {
        Ok(pb::TimeWindow {
            start: Some(pb_occurred(&self.start, "start")?),
            end: self
                .end
                .as_deref()
                .map(|end| pb_occurred(end, "end"))
                .transpose()?,
            kind: if self.within {
                pb::WindowKind::Within
            } else {
                pb::WindowKind::Span
            } as i32,
        })
    }
}

/// Runs a `meeting` verb.
pub async fn meeting(verb: MeetingVerb) -> anyhow::Result<String> {
    Ok(match verb {
        MeetingVerb::Show { meeting_id, read } => {
            crate::cli::read::meeting_show(&read.server, &meeting_id, read.as_of.as_deref(), read.json)
                .await?
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
            crate::cli::read::meeting_list(&read.server, filter, read.as_of.as_deref(), read.json).await?
        }
        MeetingVerb::Propose {
            meeting_id,
            proposed_by,
            details,
            window_start,
            window_end,
            window_within,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let window = match window_start {
                Some(start) => Some(
                    WindowArgs {
                        start,
                        end: window_end,
                        within: window_within,
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
                })
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
                })
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
                })
            )
        }
        MeetingVerb::Postpone {
            meeting_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                postpone_meeting,
                request!(PostponeMeetingRequest {
                    meeting_id: meeting_id,
                    reason: reason
                })
            )
        }
        MeetingVerb::Cancel {
            meeting_id,
            cancelled_by,
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
                    cancelled_by: cancelled_by,
                    reason: reason
                })
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
                })
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
                })
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
                })
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
                })
            )
        }
    })
}
