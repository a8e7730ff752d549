//! Meeting: who met whom, where, in what format, about what, and who said what. Stream
//! `meeting-<uuid>`.
//!
//! Lifecycle: Proposed -> Scheduled -> Rescheduled -> Held. A meeting not yet held may be
//! postponed (no new date: Postponed) or cancelled; a postponed or cancelled meeting may be
//! rescheduled with a new date, a cancelled one postponed again ("cancelled, to be
//! rescheduled"), and a postponed one held or cancelled. A meeting first learned of after it
//! happened starts directly as Held (and may also be first learned of as Scheduled). Statements
//! are recorded on held meetings. Details are fixed by `CorrectMeeting`; a wrongly recorded
//! statement is retracted.
//!
//! Longer than ~600 lines as one aggregate whole: its commands, events, state, decide and evolve read
//! together; splitting them would separate a rule from the events it produces.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::common::{
    check_correction, check_retraction, country_tag, party_tag, push_exact, push_unique, topic_tag,
    MeetingId, OfficialId, Provenance, TimeWindow, Validator, MAX_NAME_LEN, MAX_PARTICIPANTS, MAX_REASON_LEN,
    MAX_TEXT_LEN,
};
use super::error::Rejection;
use crate::time::{OccurredAt, Timestamp};

/// Most statements kept on one meeting (retracted ones count too).
pub const MAX_STATEMENTS_PER_MEETING: usize = 500;

/// How the meeting took place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MeetingFormat {
    /// In person, exactly two parties.
    Bilateral,
    /// In person, three or more parties.
    Multilateral,
    /// By telephone.
    Phone,
    /// By video conference.
    Virtual,
}

/// The part a participant plays. `None` on a participant when the source does not say.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ParticipantRole {
    /// Receives the others on its ground.
    Host,
    /// Travels to the host.
    Visitor,
    /// Present but neither host, visitor nor mediator.
    ThirdParty,
    /// Mediates between the others.
    Mediator,
}

/// One participant: a party, optionally the official representing it, and its role.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Participant {
    /// Code of the party represented.
    pub party: String,
    /// The official, when named.
    pub official_id: Option<OfficialId>,
    /// The role, when the source says.
    pub role: Option<ParticipantRole>,
}

/// Where the meeting takes place.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Location {
    /// Place name, e.g. "Benghazi".
    pub place: String,
    /// ISO 3166-1 alpha-3 code of the country the place is in, e.g. `LBY`. A place, not a
    /// party: it need not be registered.
    pub country: Option<String>,
}

/// What is known about a meeting (everything but its timing and statements).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MeetingDetails {
    /// Bilateral, multilateral, phone or virtual.
    pub format: MeetingFormat,
    /// One to [`MAX_PARTICIPANTS`] participants from at least two parties.
    pub participants: Vec<Participant>,
    /// Where, if known.
    pub location: Option<Location>,
    /// Topic slugs (`security`, `regional-stability`).
    pub topics: Vec<String>,
    /// Summary of the meeting as reported, at most [`MAX_TEXT_LEN`] bytes.
    pub summary: Option<String>,
    /// Whether the source describes the meeting as negotiations (CAMEO 046).
    pub negotiation: bool,
}

impl MeetingDetails {
    /// Distinct party codes of the participants, in order of first appearance.
    pub fn parties(&self) -> Vec<&str> {
        let mut parties: Vec<&str> = Vec::new();
        for participant in &self.participants {
            if !parties.contains(&participant.party.as_str()) {
                parties.push(&participant.party);
            }
        }
        parties
    }

    /// The location's country code, if given.
    pub fn location_country(&self) -> Option<&str> {
        self.location
            .as_ref()
            .and_then(|location| location.country.as_deref())
    }

    /// Officials named as participants.
    pub fn official_ids(&self) -> Vec<OfficialId> {
        self.participants
            .iter()
            .filter_map(|participant| participant.official_id)
            .collect()
    }

    fn push_tags(&self, tags: &mut Vec<String>) {
        for party in self.parties() {
            push_unique(tags, party_tag(party));
        }
        if let Some(country) = self.location_country() {
            push_unique(tags, country_tag(country));
        }
        for official_id in self.official_ids() {
            push_unique(tags, official_id.tag());
        }
        for topic in &self.topics {
            push_unique(tags, topic_tag(topic));
        }
    }
}

/// Who made a statement.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Speaker {
    /// Code of the party speaking.
    pub party: String,
    /// The official speaking, when named.
    pub official_id: Option<OfficialId>,
}

/// Commands on a meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// One party, or several jointly, propose a meeting.
    ProposeMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Codes of the proposing parties (one, or several for a joint proposal).
        proposed_by: Vec<String>,
        /// The proposed meeting.
        details: MeetingDetails,
        /// The proposed time, if any.
        proposed_window: Option<TimeWindow>,
        /// Sources and valid time (when the proposal was made).
        provenance: Provenance,
    },
    /// The meeting is scheduled (first learned of as scheduled, or a proposal accepted).
    ScheduleMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// The meeting as scheduled.
        details: MeetingDetails,
        /// When it is planned.
        window: TimeWindow,
        /// Sources and valid time (when it was scheduled).
        provenance: Provenance,
    },
    /// A meeting gets a new date: a scheduled one moves, a postponed or cancelled one comes back.
    RescheduleMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// The new time.
        window: TimeWindow,
        /// Why, if reported.
        reason: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// A meeting that has not happened is put off without a new date.
    PostponeMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Why, if reported.
        reason: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// A meeting that has not happened is called off.
    CancelMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Codes of the parties that called it off (empty: the source does not say).
        cancelled_by: Vec<String>,
        /// Why, if reported.
        reason: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// The meeting took place at `provenance.occurred_at` (may be the first event).
    RecordMeetingHeld {
        /// The meeting id.
        meeting_id: MeetingId,
        /// The meeting as it happened.
        details: MeetingDetails,
        /// When it ended, if known.
        ended_at: Option<Timestamp>,
        /// Sources and valid time (when it was held).
        provenance: Provenance,
    },
    /// Someone at a held meeting said something.
    RecordStatement {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Who spoke (must be a participant).
        speaker: Speaker,
        /// What was said.
        text: String,
        /// Whether `text` is a verbatim quote (otherwise a reported paraphrase).
        verbatim: bool,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Replaces the details recorded at `corrects_version`.
    CorrectMeeting {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Version of the event whose details are in effect.
        corrects_version: u64,
        /// Why the earlier record was wrong.
        reason: String,
        /// The corrected details (all of them).
        details: MeetingDetails,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Retracts a `StatementRecorded` recorded in error.
    RetractMeetingEvent {
        /// The meeting id.
        meeting_id: MeetingId,
        /// Version of the retracted event.
        retracts_version: u64,
        /// Why it was wrong.
        reason: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
}

impl Command {
    /// The meeting the command targets.
    pub fn meeting_id(&self) -> MeetingId {
        match self {
            Command::ProposeMeeting { meeting_id, .. }
            | Command::ScheduleMeeting { meeting_id, .. }
            | Command::RescheduleMeeting { meeting_id, .. }
            | Command::PostponeMeeting { meeting_id, .. }
            | Command::CancelMeeting { meeting_id, .. }
            | Command::RecordMeetingHeld { meeting_id, .. }
            | Command::RecordStatement { meeting_id, .. }
            | Command::CorrectMeeting { meeting_id, .. }
            | Command::RetractMeetingEvent { meeting_id, .. } => *meeting_id,
        }
    }

    /// The command's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Command::ProposeMeeting { provenance, .. }
            | Command::ScheduleMeeting { provenance, .. }
            | Command::RescheduleMeeting { provenance, .. }
            | Command::PostponeMeeting { provenance, .. }
            | Command::CancelMeeting { provenance, .. }
            | Command::RecordMeetingHeld { provenance, .. }
            | Command::RecordStatement { provenance, .. }
            | Command::CorrectMeeting { provenance, .. }
            | Command::RetractMeetingEvent { provenance, .. } => provenance,
        }
    }

    /// The details the command carries, if any.
    pub fn details(&self) -> Option<&MeetingDetails> {
        match self {
            Command::ProposeMeeting { details, .. }
            | Command::ScheduleMeeting { details, .. }
            | Command::RecordMeetingHeld { details, .. }
            | Command::CorrectMeeting { details, .. } => Some(details),
            _ => None,
        }
    }

    /// Every party code the command names (the location's country is a place, not a party).
    pub fn party_codes(&self) -> Vec<&str> {
        let mut codes = self.details().map(MeetingDetails::parties).unwrap_or_default();
        match self {
            Command::ProposeMeeting { proposed_by, .. } => {
                codes.extend(proposed_by.iter().map(String::as_str))
            }
            Command::CancelMeeting { cancelled_by, .. } => {
                codes.extend(cancelled_by.iter().map(String::as_str))
            }
            Command::RecordStatement { speaker, .. } => codes.push(&speaker.party),
            _ => {}
        }
        codes
    }

    /// Every official the command names.
    pub fn official_ids(&self) -> Vec<OfficialId> {
        let mut officials = self
            .details()
            .map(MeetingDetails::official_ids)
            .unwrap_or_default();
        if let Command::RecordStatement { speaker, .. } = self {
            officials.extend(speaker.official_id);
        }
        officials
    }
}

/// A meeting was proposed (schema version 2: several proposers; windows with an end precision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingProposed {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// Codes of the proposing parties.
    pub proposed_by: Vec<String>,
    /// The proposed meeting.
    pub details: MeetingDetails,
    /// The proposed time, if any.
    pub proposed_window: Option<TimeWindow>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting was scheduled (schema version 2: the window's end has a precision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingScheduled {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// The meeting as scheduled.
    pub details: MeetingDetails,
    /// When it is planned.
    pub window: TimeWindow,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting got a new date (schema version 2: the window's end has a precision).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingRescheduled {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// The new time.
    pub window: TimeWindow,
    /// Why, if reported.
    pub reason: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting was put off without a new date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingPostponed {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// Why, if reported.
    pub reason: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting was called off (schema version 2: who called it off).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingCancelled {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// Codes of the parties that called it off (empty: not reported).
    pub cancelled_by: Vec<String>,
    /// Why, if reported.
    pub reason: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting took place (at `provenance.occurred_at`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingHeld {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// The meeting as it happened.
    pub details: MeetingDetails,
    /// When it ended, if known.
    pub ended_at: Option<Timestamp>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// Someone said something at a held meeting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementRecorded {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// Who spoke.
    pub speaker: Speaker,
    /// What was said.
    pub text: String,
    /// Whether `text` is verbatim.
    pub verbatim: bool,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A meeting's details were corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingCorrected {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// The version whose details this replaces.
    pub corrects_version: u64,
    /// Why the earlier record was wrong.
    pub reason: String,
    /// The corrected details.
    pub details: MeetingDetails,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// An event of this meeting was retracted (history keeps it; state drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MeetingEventRetracted {
    /// The meeting id.
    pub meeting_id: MeetingId,
    /// Version of the retracted event.
    pub retracts_version: u64,
    /// Why it was wrong.
    pub reason: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

event_enum! {
    /// Events of a meeting stream.
    pub enum Event {
        /// See [`MeetingProposed`].
        MeetingProposed = 2,
        /// See [`MeetingScheduled`].
        MeetingScheduled = 2,
        /// See [`MeetingRescheduled`].
        MeetingRescheduled = 2,
        /// See [`MeetingCancelled`].
        MeetingCancelled = 2,
        /// See [`MeetingHeld`].
        MeetingHeld = 1,
        /// See [`StatementRecorded`].
        StatementRecorded = 1,
        /// See [`MeetingCorrected`].
        MeetingCorrected = 1,
        /// See [`MeetingEventRetracted`].
        MeetingEventRetracted = 1,
        /// See [`MeetingPostponed`].
        MeetingPostponed = 1,
    }
}

impl Event {
    /// The meeting the event is about.
    pub fn meeting_id(&self) -> MeetingId {
        match self {
            Event::MeetingProposed(event) => event.meeting_id,
            Event::MeetingScheduled(event) => event.meeting_id,
            Event::MeetingRescheduled(event) => event.meeting_id,
            Event::MeetingCancelled(event) => event.meeting_id,
            Event::MeetingHeld(event) => event.meeting_id,
            Event::StatementRecorded(event) => event.meeting_id,
            Event::MeetingCorrected(event) => event.meeting_id,
            Event::MeetingEventRetracted(event) => event.meeting_id,
            Event::MeetingPostponed(event) => event.meeting_id,
        }
    }

    /// The event's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Event::MeetingProposed(event) => &event.provenance,
            Event::MeetingScheduled(event) => &event.provenance,
            Event::MeetingRescheduled(event) => &event.provenance,
            Event::MeetingCancelled(event) => &event.provenance,
            Event::MeetingHeld(event) => &event.provenance,
            Event::StatementRecorded(event) => &event.provenance,
            Event::MeetingCorrected(event) => &event.provenance,
            Event::MeetingEventRetracted(event) => &event.provenance,
            Event::MeetingPostponed(event) => &event.provenance,
        }
    }

    /// Tags: `meeting:<uuid>`; for events with details, `party:` of every participant,
    /// `country:` of the location, `official:` of every named participant, `topic:` of every
    /// topic; the proposers', cancelling parties' and speaker's party/official; `source:` of each
    /// cited source.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![self.meeting_id().tag()];
        match self {
            Event::MeetingProposed(event) => {
                for party in &event.proposed_by {
                    push_unique(&mut tags, party_tag(party));
                }
                event.details.push_tags(&mut tags);
            }
            Event::MeetingCancelled(event) => {
                for party in &event.cancelled_by {
                    push_unique(&mut tags, party_tag(party));
                }
            }
            Event::MeetingScheduled(event) => event.details.push_tags(&mut tags),
            Event::MeetingHeld(event) => event.details.push_tags(&mut tags),
            Event::MeetingCorrected(event) => event.details.push_tags(&mut tags),
            Event::StatementRecorded(event) => {
                push_unique(&mut tags, party_tag(&event.speaker.party));
                if let Some(official_id) = event.speaker.official_id {
                    push_unique(&mut tags, official_id.tag());
                }
            }
            Event::MeetingRescheduled(_) | Event::MeetingPostponed(_) | Event::MeetingEventRetracted(_) => {}
        }
        for tag in self.provenance().source_tags() {
            push_unique(&mut tags, tag);
        }
        tags
    }
}

/// Where a meeting is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum MeetingStatus {
    /// Proposed, not yet scheduled.
    Proposed,
    /// Scheduled.
    Scheduled,
    /// Given a new date after being scheduled, postponed or cancelled.
    Rescheduled,
    /// Took place.
    Held,
    /// Called off.
    Cancelled,
    /// Put off without a new date.
    Postponed,
}

impl MeetingStatus {
    /// The status in words (`held`, `postponed`), as messages and exports write it.
    pub fn as_str(self) -> &'static str {
        match self {
            MeetingStatus::Proposed => "proposed",
            MeetingStatus::Scheduled => "scheduled",
            MeetingStatus::Rescheduled => "rescheduled",
            MeetingStatus::Held => "held",
            MeetingStatus::Cancelled => "cancelled",
            MeetingStatus::Postponed => "postponed",
        }
    }
}

/// A meeting as recorded. `Default` is "no meeting yet". Statements are not kept here: their
/// texts stay in the log, and which of them are in effect follows from the event types and the
/// retractions ([`State::statement_versions`]); a read model reads their texts from the log.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    meeting_id: Option<MeetingId>,
    status: Option<MeetingStatus>,
    proposed_by: Vec<String>,
    /// Behind an `Arc`: folding an event into a clone of the state shares them (most events
    /// do not change them), and comparing two states' details is a pointer comparison then.
    details: Option<Arc<MeetingDetails>>,
    details_version: u64,
    window: Option<TimeWindow>,
    held_at: Option<OccurredAt>,
    ended_at: Option<Timestamp>,
    /// What few meetings have (a reason to be put off, retractions), boxed: every meeting's
    /// state, one per meeting in the read models, would otherwise carry its 96 bytes. `None`
    /// whenever all of it is empty, so equal states compare equal.
    rare: crate::domain::common::Rarely<Rare>,
    statements_recorded: usize,
    event_types: crate::domain::event::EventTypes,
}

/// The fields of a meeting's [`State`] that most meetings never set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Rare {
    cancellation_reason: Option<String>,
    cancelled_by: Vec<String>,
    postponement_reason: Option<String>,
    retracted_versions: Vec<u64>,
}

/// What a meeting without [`Rare`] fields reads.
static NO_RARE: Rare = Rare {
    cancellation_reason: None,
    cancelled_by: Vec::new(),
    postponement_reason: None,
    retracted_versions: Vec::new(),
};

impl crate::domain::common::Sparse for Rare {
    fn empty() -> &'static Rare {
        &NO_RARE
    }
}

impl State {
    /// Whether the meeting exists.
    pub fn exists(&self) -> bool {
        self.meeting_id.is_some()
    }

    /// The meeting id.
    pub fn meeting_id(&self) -> Option<MeetingId> {
        self.meeting_id
    }

    /// Lifecycle status; `None` before the first event.
    pub fn status(&self) -> Option<MeetingStatus> {
        self.status
    }

    /// Codes of the proposing parties (empty unless the meeting was proposed).
    pub fn proposed_by(&self) -> &[String] {
        &self.proposed_by
    }

    /// The details in effect (latest of proposal, schedule, held record or correction).
    pub fn details(&self) -> Option<&MeetingDetails> {
        self.details.as_deref()
    }

    /// Whether `other` has the same details: a pointer comparison when `other` was folded from
    /// this state by events that kept them (most events), field by field otherwise.
    pub fn same_details(&self, other: &State) -> bool {
        self.details == other.details
    }

    /// Version of the event whose details are in effect.
    pub fn details_version(&self) -> u64 {
        self.details_version
    }

    /// The planned time (proposal, schedule or latest reschedule); for a postponed meeting, the
    /// time it was postponed from (it places the meeting on timelines).
    pub fn window(&self) -> Option<TimeWindow> {
        self.window
    }

    /// When it was held.
    pub fn held_at(&self) -> Option<OccurredAt> {
        self.held_at
    }

    /// When it ended, if known.
    pub fn ended_at(&self) -> Option<Timestamp> {
        self.ended_at
    }

    /// Why it was cancelled, if it is cancelled and the reason was reported.
    pub fn cancellation_reason(&self) -> Option<&str> {
        self.rare.get().cancellation_reason.as_deref()
    }

    /// Who cancelled it, if it is cancelled (empty: not reported).
    pub fn cancelled_by(&self) -> &[String] {
        &self.rare.get().cancelled_by
    }

    /// Why it was postponed, if it is postponed and the reason was reported.
    pub fn postponement_reason(&self) -> Option<&str> {
        self.rare.get().postponement_reason.as_deref()
    }

    /// Stream versions of the statements in effect (recorded and not retracted), ascending.
    pub fn statement_versions(&self) -> impl Iterator<Item = u64> + '_ {
        self.statements_in_effect().map(|(_, version)| version)
    }

    /// The statements in effect as (ordinal among every statement recorded, retracted ones
    /// included; stream version), ascending: what a reader that kept one entry per
    /// `StatementRecorded` looks up.
    pub fn statements_in_effect(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.event_types
            .iter()
            .zip(1u64..)
            .filter(|(event_type, _)| *event_type == "StatementRecorded")
            .enumerate()
            .filter(|(_, (_, version))| !self.rare.get().retracted_versions.contains(version))
            .map(|(ordinal, (_, version))| (ordinal, version))
    }

    /// Forgets why the meeting was last postponed or cancelled (it has moved on; history keeps it).
    fn clear_put_off(&mut self) {
        if self.rare.is_empty() {
            return;
        }
        self.rare.change(|rare| {
            rare.cancellation_reason = None;
            rare.cancelled_by.clear();
            rare.postponement_reason = None;
        });
    }

    /// Versions of events retracted so far.
    pub fn retracted_versions(&self) -> &[u64] {
        &self.rare.get().retracted_versions
    }

    /// Number of events folded so far (the stream version).
    pub fn version(&self) -> u64 {
        self.event_types.len() as u64
    }
}

fn validate_details(validator: &mut Validator, details: &MeetingDetails) {
    let participants = &details.participants;
    validator.list_len("details.participants", participants.len(), 1, MAX_PARTICIPANTS);
    for (index, participant) in participants.iter().enumerate() {
        validator.party_code(
            &format!("details.participants[{index}].party"),
            &participant.party,
        );
        if let Some(official_id) = participant.official_id {
            let repeated = participants[..index]
                .iter()
                .any(|earlier| earlier.official_id == Some(official_id));
            if repeated {
                validator.violation(
                    format!("details.participants[{index}].official_id"),
                    format!("{official_id} is listed twice"),
                );
            }
        }
    }
    let party_count = details.parties().len();
    let parties_problem = match details.format {
        _ if party_count == 0 => None,
        MeetingFormat::Bilateral if party_count != 2 => {
            Some("a bilateral meeting needs participants from exactly two parties")
        }
        MeetingFormat::Multilateral if party_count < 3 => {
            Some("a multilateral meeting needs participants from at least three parties")
        }
        _ if party_count < 2 => Some("a meeting needs participants from at least two parties"),
        _ => None,
    };
    if let Some(problem) = parties_problem {
        validator.violation("details.participants", problem);
    }
    if let Some(location) = &details.location {
        validator.required_text("details.location.place", &location.place, MAX_NAME_LEN);
        if let Some(country) = &location.country {
            validator.country_code("details.location.country", country);
        }
    }
    validator.topics("details.topics", &details.topics);
    validator.optional_text("details.summary", details.summary.as_deref(), MAX_TEXT_LEN);
}

fn not_found(meeting_id: MeetingId) -> Rejection {
    Rejection::NotFound {
        stream_id: meeting_id.stream_id(),
    }
}

/// A lifecycle refusal: "the meeting is held; it cannot be cancelled".
fn status_rule(code: &'static str, status: Option<MeetingStatus>, what: &str) -> Rejection {
    let status = status.map_or("not recorded yet", MeetingStatus::as_str);
    Rejection::rule(code, format!("the meeting is {status}; it cannot be {what}"))
}

/// Decides which events a meeting command produces.
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let mut validator = Validator::new();
    validator.provenance(command.provenance());
    if let Some(details) = command.details() {
        validate_details(&mut validator, details);
    }
    let meeting_id = command.meeting_id();
    let provenance = command.provenance().clone();
    let status = state.status;
    match command {
        Command::ProposeMeeting {
            proposed_by,
            details,
            proposed_window,
            ..
        } => decide_propose_meeting(
            state,
            validator,
            meeting_id,
            proposed_by,
            details,
            proposed_window.as_ref(),
            provenance,
        ),
        Command::ScheduleMeeting { details, window, .. } => {
            decide_schedule_meeting(status, validator, meeting_id, details, window, provenance)
        }
        Command::RescheduleMeeting { window, reason, .. } => decide_reschedule_meeting(
            status,
            validator,
            meeting_id,
            window,
            reason.as_deref(),
            provenance,
        ),
        Command::PostponeMeeting { reason, .. } => {
            decide_postpone_meeting(status, validator, meeting_id, reason.as_deref(), provenance)
        }
        Command::CancelMeeting {
            cancelled_by, reason, ..
        } => decide_cancel_meeting(
            status,
            validator,
            meeting_id,
            cancelled_by,
            reason.as_deref(),
            provenance,
        ),
        Command::RecordMeetingHeld {
            details, ended_at, ..
        } => decide_record_meeting_held(status, validator, meeting_id, details, *ended_at, provenance),
        Command::RecordStatement {
            speaker,
            text,
            verbatim,
            ..
        } => decide_record_statement(state, validator, meeting_id, speaker, text, *verbatim, provenance),
        Command::CorrectMeeting {
            corrects_version,
            reason,
            details,
            ..
        } => decide_correct_meeting(
            state,
            validator,
            meeting_id,
            *corrects_version,
            reason,
            details,
            provenance,
        ),
        Command::RetractMeetingEvent {
            retracts_version,
            reason,
            ..
        } => decide_retract_meeting_event(
            state,
            validator,
            meeting_id,
            *retracts_version,
            reason,
            provenance,
        ),
    }
}

/// Proposes a meeting: one or more valid proposing parties, a valid window, no meeting with
/// this id yet.
fn decide_propose_meeting(
    state: &State,
    mut validator: Validator,
    meeting_id: MeetingId,
    proposed_by: &[String],
    details: &MeetingDetails,
    proposed_window: Option<&TimeWindow>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.party_codes("proposed_by", proposed_by, 1);
    if let Some(window) = proposed_window {
        validator.window("proposed_window", window);
    }
    validator.finish()?;
    if state.exists() {
        return Err(Rejection::AlreadyExists {
            stream_id: meeting_id.stream_id(),
        });
    }
    Ok(vec![Event::MeetingProposed(MeetingProposed {
        meeting_id,
        proposed_by: proposed_by.to_vec(),
        details: details.clone(),
        proposed_window: proposed_window.copied(),
        provenance,
    })])
}

/// Schedules a meeting: a valid window; the meeting new or only proposed.
fn decide_schedule_meeting(
    status: Option<MeetingStatus>,
    mut validator: Validator,
    meeting_id: MeetingId,
    details: &MeetingDetails,
    window: &TimeWindow,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.window("window", window);
    validator.finish()?;
    if !matches!(status, None | Some(MeetingStatus::Proposed)) {
        return Err(status_rule("meeting.not_schedulable", status, "scheduled"));
    }
    Ok(vec![Event::MeetingScheduled(MeetingScheduled {
        meeting_id,
        details: details.clone(),
        window: *window,
        provenance,
    })])
}

/// Reschedules a meeting: a valid window and reason; the meeting scheduled, rescheduled,
/// postponed or cancelled (a cancelled meeting can come back).
fn decide_reschedule_meeting(
    status: Option<MeetingStatus>,
    mut validator: Validator,
    meeting_id: MeetingId,
    window: &TimeWindow,
    reason: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.window("window", window);
    validator.optional_text("reason", reason, MAX_REASON_LEN);
    validator.finish()?;
    if status.is_none() {
        return Err(not_found(meeting_id));
    }
    match status {
        Some(MeetingStatus::Proposed) => {
            return Err(status_rule(
                "meeting.not_reschedulable",
                status,
                "rescheduled (schedule it instead)",
            ))
        }
        Some(MeetingStatus::Held) => return Err(status_rule("meeting.already_held", status, "rescheduled")),
        _ => {}
    }
    Ok(vec![Event::MeetingRescheduled(MeetingRescheduled {
        meeting_id,
        window: *window,
        reason: reason.map(str::to_owned),
        provenance,
    })])
}

/// Postpones a meeting without a new date: a valid reason if given; the meeting recorded,
/// neither held nor already postponed (a cancelled one may be postponed: "to be rescheduled").
fn decide_postpone_meeting(
    status: Option<MeetingStatus>,
    mut validator: Validator,
    meeting_id: MeetingId,
    reason: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.optional_text("reason", reason, MAX_REASON_LEN);
    validator.finish()?;
    match status {
        None => return Err(not_found(meeting_id)),
        Some(MeetingStatus::Held) => return Err(status_rule("meeting.already_held", status, "postponed")),
        Some(MeetingStatus::Postponed) => {
            return Err(status_rule(
                "meeting.already_postponed",
                status,
                "postponed again",
            ))
        }
        Some(_) => {}
    }
    Ok(vec![Event::MeetingPostponed(MeetingPostponed {
        meeting_id,
        reason: reason.map(str::to_owned),
        provenance,
    })])
}

/// Cancels a meeting: valid cancelling parties and reason if given; the meeting recorded,
/// neither held nor cancelled.
fn decide_cancel_meeting(
    status: Option<MeetingStatus>,
    mut validator: Validator,
    meeting_id: MeetingId,
    cancelled_by: &[String],
    reason: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.party_codes("cancelled_by", cancelled_by, 0);
    validator.optional_text("reason", reason, MAX_REASON_LEN);
    validator.finish()?;
    match status {
        None => return Err(not_found(meeting_id)),
        Some(MeetingStatus::Held) => return Err(status_rule("meeting.already_held", status, "cancelled")),
        Some(MeetingStatus::Cancelled) => {
            return Err(status_rule("meeting.already_cancelled", status, "cancelled"))
        }
        Some(_) => {}
    }
    Ok(vec![Event::MeetingCancelled(MeetingCancelled {
        meeting_id,
        cancelled_by: cancelled_by.to_vec(),
        reason: reason.map(str::to_owned),
        provenance,
    })])
}

/// Records a meeting held: not ending before it began; the meeting neither held nor cancelled.
fn decide_record_meeting_held(
    status: Option<MeetingStatus>,
    mut validator: Validator,
    meeting_id: MeetingId,
    details: &MeetingDetails,
    ended_at: Option<Timestamp>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    if ended_at.is_some_and(|ended_at| ended_at < provenance.occurred_at.at()) {
        validator.violation("ended_at", "is before provenance.occurred_at");
    }
    validator.finish()?;
    match status {
        Some(MeetingStatus::Held) => return Err(status_rule("meeting.already_held", status, "held again")),
        Some(MeetingStatus::Cancelled) => {
            return Err(status_rule(
                "meeting.cancelled",
                status,
                "held (reschedule or postpone it first)",
            ))
        }
        _ => {}
    }
    Ok(vec![Event::MeetingHeld(MeetingHeld {
        meeting_id,
        details: details.clone(),
        ended_at,
        provenance,
    })])
}

/// Records a statement at a held meeting: a valid text, spoken by a participant, within the statement limit.
fn decide_record_statement(
    state: &State,
    mut validator: Validator,
    meeting_id: MeetingId,
    speaker: &Speaker,
    text: &str,
    verbatim: bool,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    let status = state.status;
    validator.party_code("speaker.party", &speaker.party);
    validator.required_text("text", text, MAX_TEXT_LEN);
    validator.finish()?;
    if status.is_none() {
        return Err(not_found(meeting_id));
    }
    if status != Some(MeetingStatus::Held) {
        return Err(status_rule(
            "meeting.not_held",
            status,
            "given statements (record it as held first)",
        ));
    }
    let participants = state
        .details
        .as_ref()
        .map(|details| details.participants.as_slice())
        .unwrap_or_default();
    let speaker_participates = participants.iter().any(|participant| {
        participant.party == speaker.party
            && (speaker.official_id.is_none() || participant.official_id == speaker.official_id)
    });
    if !speaker_participates {
        return Err(Rejection::rule(
            "statement.speaker_not_participant",
            "the speaker is not a participant of the meeting",
        ));
    }
    if state.statements_recorded >= MAX_STATEMENTS_PER_MEETING {
        return Err(Rejection::rule(
            "meeting.too_many_statements",
            format!("a meeting keeps at most {MAX_STATEMENTS_PER_MEETING} statements"),
        ));
    }
    Ok(vec![Event::StatementRecorded(StatementRecorded {
        meeting_id,
        speaker: speaker.clone(),
        text: text.to_owned(),
        verbatim,
        provenance,
    })])
}

/// Corrects a meeting's details: a reason; the target a version with details still in effect.
fn decide_correct_meeting(
    state: &State,
    mut validator: Validator,
    meeting_id: MeetingId,
    corrects_version: u64,
    reason: &str,
    details: &MeetingDetails,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(meeting_id));
    }
    check_correction(
        &state.event_types,
        corrects_version,
        state.details_version,
        &[
            "MeetingProposed",
            "MeetingScheduled",
            "MeetingHeld",
            "MeetingCorrected",
        ],
    )?;
    Ok(vec![Event::MeetingCorrected(MeetingCorrected {
        meeting_id,
        corrects_version,
        reason: reason.to_owned(),
        details: details.clone(),
        provenance,
    })])
}

/// Retracts a statement: a reason; the target a `StatementRecorded` not already retracted.
fn decide_retract_meeting_event(
    state: &State,
    mut validator: Validator,
    meeting_id: MeetingId,
    retracts_version: u64,
    reason: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(meeting_id));
    }
    check_retraction(
        &state.event_types,
        state.retracted_versions(),
        retracts_version,
        &["StatementRecorded"],
    )?;
    Ok(vec![Event::MeetingEventRetracted(MeetingEventRetracted {
        meeting_id,
        retracts_version,
        reason: reason.to_owned(),
        provenance,
    })])
}

/// Folds one event into the meeting state.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.event_types.push(event.event_type());
    let version = state.version();
    state.meeting_id = Some(event.meeting_id());
    match event {
        Event::MeetingProposed(event) => {
            state.status = Some(MeetingStatus::Proposed);
            state.proposed_by = event.proposed_by.clone();
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
            state.window = event.proposed_window;
        }
        Event::MeetingScheduled(event) => {
            state.status = Some(MeetingStatus::Scheduled);
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
            state.window = Some(event.window);
        }
        Event::MeetingRescheduled(event) => {
            state.status = Some(MeetingStatus::Rescheduled);
            state.window = Some(event.window);
            state.clear_put_off();
        }
        Event::MeetingPostponed(event) => {
            state.status = Some(MeetingStatus::Postponed);
            state.clear_put_off();
            state
                .rare
                .change(|rare| rare.postponement_reason = event.reason.clone());
        }
        Event::MeetingCancelled(event) => {
            state.status = Some(MeetingStatus::Cancelled);
            state.clear_put_off();
            state.rare.change(|rare| {
                rare.cancellation_reason = event.reason.clone();
                rare.cancelled_by = event.cancelled_by.clone();
            });
        }
        Event::MeetingHeld(event) => {
            state.status = Some(MeetingStatus::Held);
            state.clear_put_off();
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
            state.held_at = Some(event.provenance.occurred_at);
            state.ended_at = event.ended_at;
        }
        Event::StatementRecorded(_) => {
            state.statements_recorded += 1;
        }
        Event::MeetingCorrected(event) => {
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
        }
        Event::MeetingEventRetracted(event) => {
            state
                .rare
                .change(|rare| push_exact(&mut rare.retracted_versions, event.retracts_version));
        }
    }
    state
}

/// Older schema versions of meeting events, kept so stored payloads can be upcast.
pub mod legacy {
    use serde::{Deserialize, Serialize};

    use super::{MeetingCancelled, MeetingDetails, MeetingProposed, MeetingRescheduled, MeetingScheduled};
    use crate::domain::common::{MeetingId, Provenance, TimeWindow, WindowKind};
    use crate::time::{OccurredAt, Precision, Timestamp};

    /// `TimeWindow` before schema version 2: the end was a bare instant.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
    pub struct TimeWindowV1 {
        /// Start, with its precision.
        pub start: OccurredAt,
        /// End, if known.
        pub end: Option<Timestamp>,
    }

    impl TimeWindowV1 {
        /// The window with its end read as an exact instant (what version 1 stored) and the
        /// meaning version 1 had: the meeting spans the window.
        pub fn upcast(self) -> TimeWindow {
            TimeWindow {
                start: self.start,
                end: self.end.map(|end| OccurredAt::new(end, Precision::Exact)),
                kind: WindowKind::Span,
            }
        }
    }

    /// `MeetingProposed` schema version 1: one proposer, a version 1 window.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MeetingProposedV1 {
        /// The meeting id.
        pub meeting_id: MeetingId,
        /// Code of the proposing party.
        pub proposed_by: String,
        /// The proposed meeting.
        pub details: MeetingDetails,
        /// The proposed time, if any.
        pub proposed_window: Option<TimeWindowV1>,
        /// Sources and valid time.
        pub provenance: Provenance,
    }

    impl MeetingProposedV1 {
        /// Upcasts: the one proposer becomes a list of one.
        pub fn upcast(self) -> MeetingProposed {
            MeetingProposed {
                meeting_id: self.meeting_id,
                proposed_by: vec![self.proposed_by],
                details: self.details,
                proposed_window: self.proposed_window.map(TimeWindowV1::upcast),
                provenance: self.provenance,
            }
        }
    }

    /// `MeetingScheduled` schema version 1: a version 1 window.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MeetingScheduledV1 {
        /// The meeting id.
        pub meeting_id: MeetingId,
        /// The meeting as scheduled.
        pub details: MeetingDetails,
        /// When it is planned.
        pub window: TimeWindowV1,
        /// Sources and valid time.
        pub provenance: Provenance,
    }

    impl MeetingScheduledV1 {
        /// Upcasts the window.
        pub fn upcast(self) -> MeetingScheduled {
            MeetingScheduled {
                meeting_id: self.meeting_id,
                details: self.details,
                window: self.window.upcast(),
                provenance: self.provenance,
            }
        }
    }

    /// `MeetingRescheduled` schema version 1: a version 1 window.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MeetingRescheduledV1 {
        /// The meeting id.
        pub meeting_id: MeetingId,
        /// The new time.
        pub window: TimeWindowV1,
        /// Why, if reported.
        pub reason: Option<String>,
        /// Sources and valid time.
        pub provenance: Provenance,
    }

    impl MeetingRescheduledV1 {
        /// Upcasts the window.
        pub fn upcast(self) -> MeetingRescheduled {
            MeetingRescheduled {
                meeting_id: self.meeting_id,
                window: self.window.upcast(),
                reason: self.reason,
                provenance: self.provenance,
            }
        }
    }

    /// `MeetingCancelled` schema version 1: who cancelled was not recorded.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct MeetingCancelledV1 {
        /// The meeting id.
        pub meeting_id: MeetingId,
        /// Why, if reported.
        pub reason: Option<String>,
        /// Sources and valid time.
        pub provenance: Provenance,
    }

    impl MeetingCancelledV1 {
        /// Upcasts with `cancelled_by` empty ("not reported"; never guessed).
        pub fn upcast(self) -> MeetingCancelled {
            MeetingCancelled {
                meeting_id: self.meeting_id,
                cancelled_by: Vec::new(),
                reason: self.reason,
                provenance: self.provenance,
            }
        }
    }
}
