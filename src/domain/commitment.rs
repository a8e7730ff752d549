//! Commitment, following G7/G20 Research Group practice: a discrete, publicly expressed
//! statement of intent to act, by one or more committing parties. Stream `commitment-<uuid>`.
//!
//! Lifecycle: Made -> Reaffirmed* -> InProgress -> Fulfilled | Lapsed | Withdrawn | Superseded.
//! The status is derived: a terminal event wins; otherwise any (unretracted) progress report means
//! InProgress; otherwise any (unretracted) reaffirmation means Reaffirmed; otherwise Made.
//! Compliance is assessed per committing party (-1, 0, +1), interim or final, at any time.
//!
//! Longer than ~600 lines as one aggregate whole: its commands, events, state, decide and evolve read
//! together; splitting them would separate a rule from the events it produces.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use super::common::{
    check_correction, check_retraction, party_tag, push_exact, push_unique, topic_tag, CommitmentId,
    MeetingId, OfficialId, Provenance, Validator, MAX_NAME_LEN, MAX_OFFICIALS_PER_LIST, MAX_REASON_LEN,
    MAX_TEXT_LEN,
};
use super::error::Rejection;
use crate::time::OccurredAt;

/// Most progress reports kept on one commitment (retracted ones count too).
pub const MAX_PROGRESS_REPORTS_PER_COMMITMENT: usize = 500;
/// Most reaffirmations kept on one commitment (retracted ones count too): a commitment's state,
/// and its answer, hold every one with its text.
pub const MAX_REAFFIRMATIONS_PER_COMMITMENT: usize = 500;
/// Most compliance assessments kept on one commitment (retracted ones count too), for the same
/// reason.
pub const MAX_ASSESSMENTS_PER_COMMITMENT: usize = 500;

/// Whether the commitment is first made in the recorded source or restates an earlier one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommitmentKind {
    /// A new commitment.
    New,
    /// A reaffirmation of an earlier commitment (not necessarily recorded in the ledger).
    Reaffirmation,
}

/// How specific the commitment is (G7/G20 Research Group: specific, measurable commitments are
/// the ones that can be assessed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Specificity {
    /// A general intent ("work closely to combat regional instability").
    Aspirational,
    /// Names a concrete action.
    Specific,
    /// A concrete action with a measurable target or deadline.
    Measurable,
}

/// What kind of cooperation is promised (selects CAMEO 030/031/032).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CooperationKind {
    /// Not specified (CAMEO 030).
    Unspecified,
    /// Material cooperation: resources, joint operations (CAMEO 031 when specific).
    Material,
    /// Diplomatic cooperation: policy support (CAMEO 032 when specific).
    Diplomatic,
}

/// What was committed to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct CommitmentDetails {
    /// New or reaffirmation.
    pub kind: CommitmentKind,
    /// Codes of the committing parties (at least one).
    pub committing_parties: Vec<String>,
    /// Officials who voiced it, when the source names them.
    pub voiced_by: Vec<OfficialId>,
    /// Codes of the parties it is made to, if any (none of them committing).
    pub counterparties: Vec<String>,
    /// The commitment text, verbatim where possible.
    pub text: String,
    /// Whether `text` is verbatim from the source.
    pub verbatim: bool,
    /// Topic slugs.
    pub topics: Vec<String>,
    /// How specific it is.
    pub specificity: Specificity,
    /// What kind of cooperation it promises.
    pub cooperation: CooperationKind,
    /// Deadline, if one was stated.
    pub due_by: Option<OccurredAt>,
    /// The meeting where it was made, if recorded.
    pub made_at_meeting: Option<MeetingId>,
}

impl CommitmentDetails {
    fn push_tags(&self, tags: &mut Vec<String>) {
        for party in self.committing_parties.iter().chain(&self.counterparties) {
            push_unique(tags, party_tag(party));
        }
        for official_id in &self.voiced_by {
            push_unique(tags, official_id.tag());
        }
        for topic in &self.topics {
            push_unique(tags, topic_tag(topic));
        }
        if let Some(meeting_id) = self.made_at_meeting {
            push_unique(tags, meeting_id.tag());
        }
    }
}

/// Interim or final compliance assessment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum AssessmentStage {
    /// During the compliance period.
    Interim,
    /// At its end.
    Final,
}

/// One party's compliance score: -1 (no compliance), 0 (partial), +1 (full).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartyScore {
    /// Code of the assessed (committing) party.
    pub party: String,
    /// -1, 0 or +1.
    pub score: i8,
}

/// Commands on a commitment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Records a commitment as made (or reaffirmed, if first learned of as a reaffirmation).
    RecordCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// What was committed to.
        details: CommitmentDetails,
        /// Sources and valid time (when it was made).
        provenance: Provenance,
    },
    /// Some committing parties restate the commitment.
    ReaffirmCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Codes of the reaffirming parties (committing parties).
        reaffirmed_by: Vec<String>,
        /// Officials who voiced it.
        voiced_by: Vec<OfficialId>,
        /// The meeting where it was reaffirmed, if recorded.
        at_meeting: Option<MeetingId>,
        /// The words used, if reported.
        text: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Reports steps taken towards the commitment.
    ReportCommitmentProgress {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// What was done.
        summary: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// The commitment was fulfilled.
    FulfilCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// How.
        summary: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// The commitment lapsed unfulfilled (not before its due date, if it has one).
    MarkCommitmentLapsed {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Why it is considered lapsed.
        reason: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// The committing parties withdrew it.
    WithdrawCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Why, as reported.
        reason: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Another commitment replaced it.
    SupersedeCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// The replacing commitment (must exist, must differ).
        superseded_by: CommitmentId,
        /// Why, as reported.
        reason: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// An assessor scores each committing party's compliance.
    AssessCompliance {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Interim or final.
        stage: AssessmentStage,
        /// Who assessed (person or organisation).
        assessor: String,
        /// Why these scores.
        rationale: String,
        /// Scores per party (each a committing party, at most once).
        scores: Vec<PartyScore>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Replaces the details recorded at `corrects_version`.
    CorrectCommitment {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Version of the `CommitmentRecorded` or `CommitmentCorrected` event in effect.
        corrects_version: u64,
        /// Why the earlier record was wrong.
        reason: String,
        /// The corrected details (all of them).
        details: CommitmentDetails,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Retracts a reaffirmation, progress report or assessment recorded in error.
    RetractCommitmentEvent {
        /// The commitment id.
        commitment_id: CommitmentId,
        /// Version of the retracted event.
        retracts_version: u64,
        /// Why it was wrong.
        reason: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
}

impl Command {
    /// The commitment the command targets.
    pub fn commitment_id(&self) -> CommitmentId {
        match self {
            Command::RecordCommitment { commitment_id, .. }
            | Command::ReaffirmCommitment { commitment_id, .. }
            | Command::ReportCommitmentProgress { commitment_id, .. }
            | Command::FulfilCommitment { commitment_id, .. }
            | Command::MarkCommitmentLapsed { commitment_id, .. }
            | Command::WithdrawCommitment { commitment_id, .. }
            | Command::SupersedeCommitment { commitment_id, .. }
            | Command::AssessCompliance { commitment_id, .. }
            | Command::CorrectCommitment { commitment_id, .. }
            | Command::RetractCommitmentEvent { commitment_id, .. } => *commitment_id,
        }
    }

    /// The command's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Command::RecordCommitment { provenance, .. }
            | Command::ReaffirmCommitment { provenance, .. }
            | Command::ReportCommitmentProgress { provenance, .. }
            | Command::FulfilCommitment { provenance, .. }
            | Command::MarkCommitmentLapsed { provenance, .. }
            | Command::WithdrawCommitment { provenance, .. }
            | Command::SupersedeCommitment { provenance, .. }
            | Command::AssessCompliance { provenance, .. }
            | Command::CorrectCommitment { provenance, .. }
            | Command::RetractCommitmentEvent { provenance, .. } => provenance,
        }
    }

    /// The details the command carries, if any.
    pub fn details(&self) -> Option<&CommitmentDetails> {
        match self {
            Command::RecordCommitment { details, .. } | Command::CorrectCommitment { details, .. } => {
                Some(details)
            }
            _ => None,
        }
    }

    /// Every party code the command names.
    pub fn party_codes(&self) -> Vec<&str> {
        let mut codes: Vec<&str> = Vec::new();
        if let Some(details) = self.details() {
            codes.extend(details.committing_parties.iter().map(String::as_str));
            codes.extend(details.counterparties.iter().map(String::as_str));
        }
        match self {
            Command::ReaffirmCommitment { reaffirmed_by, .. } => {
                codes.extend(reaffirmed_by.iter().map(String::as_str));
            }
            Command::AssessCompliance { scores, .. } => {
                codes.extend(scores.iter().map(|score| score.party.as_str()));
            }
            _ => {}
        }
        codes
    }

    /// Every official the command names.
    pub fn official_ids(&self) -> Vec<OfficialId> {
        match self {
            Command::ReaffirmCommitment { voiced_by, .. } => voiced_by.clone(),
            _ => self
                .details()
                .map(|details| details.voiced_by.clone())
                .unwrap_or_default(),
        }
    }

    /// Every meeting the command names.
    pub fn meeting_ids(&self) -> Vec<MeetingId> {
        match self {
            Command::ReaffirmCommitment { at_meeting, .. } => at_meeting.iter().copied().collect(),
            _ => self
                .details()
                .and_then(|details| details.made_at_meeting)
                .into_iter()
                .collect(),
        }
    }

    /// Every other commitment the command names.
    pub fn other_commitment_ids(&self) -> Vec<CommitmentId> {
        match self {
            Command::SupersedeCommitment { superseded_by, .. } => vec![*superseded_by],
            _ => Vec::new(),
        }
    }
}

/// A commitment was recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRecorded {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// What was committed to.
    pub details: CommitmentDetails,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment was reaffirmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentReaffirmed {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// Codes of the reaffirming parties.
    pub reaffirmed_by: Vec<String>,
    /// Officials who voiced it.
    pub voiced_by: Vec<OfficialId>,
    /// The meeting, if recorded.
    pub at_meeting: Option<MeetingId>,
    /// The words used, if reported.
    pub text: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// Progress towards a commitment was reported.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentProgressReported {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// What was done.
    pub summary: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment was fulfilled.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentFulfilled {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// How.
    pub summary: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment lapsed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentLapsed {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// Why.
    pub reason: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment was withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentWithdrawn {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// Why.
    pub reason: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment was superseded by another.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentSuperseded {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// The replacing commitment.
    pub superseded_by: CommitmentId,
    /// Why, if reported.
    pub reason: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// Compliance with a commitment was assessed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComplianceAssessed {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// Interim or final.
    pub stage: AssessmentStage,
    /// Who assessed.
    pub assessor: String,
    /// Why these scores.
    pub rationale: String,
    /// Scores per party.
    pub scores: Vec<PartyScore>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A commitment's details were corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentCorrected {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// The version whose details this replaces.
    pub corrects_version: u64,
    /// Why the earlier record was wrong.
    pub reason: String,
    /// The corrected details.
    pub details: CommitmentDetails,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// An event of this commitment was retracted (history keeps it; state drops it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentEventRetracted {
    /// The commitment id.
    pub commitment_id: CommitmentId,
    /// Version of the retracted event.
    pub retracts_version: u64,
    /// Why it was wrong.
    pub reason: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

event_enum! {
    /// Events of a commitment stream.
    pub enum Event {
        /// See [`CommitmentRecorded`].
        CommitmentRecorded = 1,
        /// See [`CommitmentReaffirmed`].
        CommitmentReaffirmed = 1,
        /// See [`CommitmentProgressReported`].
        CommitmentProgressReported = 1,
        /// See [`CommitmentFulfilled`].
        CommitmentFulfilled = 1,
        /// See [`CommitmentLapsed`].
        CommitmentLapsed = 1,
        /// See [`CommitmentWithdrawn`].
        CommitmentWithdrawn = 1,
        /// See [`CommitmentSuperseded`].
        CommitmentSuperseded = 1,
        /// See [`ComplianceAssessed`].
        ComplianceAssessed = 1,
        /// See [`CommitmentCorrected`].
        CommitmentCorrected = 1,
        /// See [`CommitmentEventRetracted`].
        CommitmentEventRetracted = 1,
    }
}

impl Event {
    /// The commitment the event is about.
    pub fn commitment_id(&self) -> CommitmentId {
        match self {
            Event::CommitmentRecorded(event) => event.commitment_id,
            Event::CommitmentReaffirmed(event) => event.commitment_id,
            Event::CommitmentProgressReported(event) => event.commitment_id,
            Event::CommitmentFulfilled(event) => event.commitment_id,
            Event::CommitmentLapsed(event) => event.commitment_id,
            Event::CommitmentWithdrawn(event) => event.commitment_id,
            Event::CommitmentSuperseded(event) => event.commitment_id,
            Event::ComplianceAssessed(event) => event.commitment_id,
            Event::CommitmentCorrected(event) => event.commitment_id,
            Event::CommitmentEventRetracted(event) => event.commitment_id,
        }
    }

    /// The event's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Event::CommitmentRecorded(event) => &event.provenance,
            Event::CommitmentReaffirmed(event) => &event.provenance,
            Event::CommitmentProgressReported(event) => &event.provenance,
            Event::CommitmentFulfilled(event) => &event.provenance,
            Event::CommitmentLapsed(event) => &event.provenance,
            Event::CommitmentWithdrawn(event) => &event.provenance,
            Event::CommitmentSuperseded(event) => &event.provenance,
            Event::ComplianceAssessed(event) => &event.provenance,
            Event::CommitmentCorrected(event) => &event.provenance,
            Event::CommitmentEventRetracted(event) => &event.provenance,
        }
    }

    /// Tags: `commitment:<uuid>`; for recorded/corrected details, `party:` of committing parties
    /// and counterparties, `official:` of voices, `topic:` of topics, `meeting:` where made;
    /// reaffirmations tag their parties, officials and meeting; supersession tags the replacing
    /// commitment; assessments tag the assessed parties; `source:` of each cited source.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![self.commitment_id().tag()];
        match self {
            Event::CommitmentRecorded(event) => event.details.push_tags(&mut tags),
            Event::CommitmentCorrected(event) => event.details.push_tags(&mut tags),
            Event::CommitmentReaffirmed(event) => {
                for party in &event.reaffirmed_by {
                    push_unique(&mut tags, party_tag(party));
                }
                for official_id in &event.voiced_by {
                    push_unique(&mut tags, official_id.tag());
                }
                if let Some(meeting_id) = event.at_meeting {
                    push_unique(&mut tags, meeting_id.tag());
                }
            }
            Event::CommitmentSuperseded(event) => {
                push_unique(&mut tags, event.superseded_by.tag());
            }
            Event::ComplianceAssessed(event) => {
                for score in &event.scores {
                    push_unique(&mut tags, party_tag(&score.party));
                }
            }
            Event::CommitmentProgressReported(_)
            | Event::CommitmentFulfilled(_)
            | Event::CommitmentLapsed(_)
            | Event::CommitmentWithdrawn(_)
            | Event::CommitmentEventRetracted(_) => {}
        }
        for tag in self.provenance().source_tags() {
            push_unique(&mut tags, tag);
        }
        tags
    }
}

/// Where a commitment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CommitmentStatus {
    /// Recorded, nothing since.
    Made,
    /// Reaffirmed at least once.
    Reaffirmed,
    /// Progress reported.
    InProgress,
    /// Fulfilled (terminal).
    Fulfilled,
    /// Lapsed (terminal).
    Lapsed,
    /// Withdrawn (terminal).
    Withdrawn,
    /// Superseded by another commitment (terminal).
    Superseded,
}

impl CommitmentStatus {
    /// The status in words (`fulfilled`, `in progress`), as messages write it.
    pub fn as_str(self) -> &'static str {
        match self {
            CommitmentStatus::Made => "made",
            CommitmentStatus::Reaffirmed => "reaffirmed",
            CommitmentStatus::InProgress => "in progress",
            CommitmentStatus::Fulfilled => "fulfilled",
            CommitmentStatus::Lapsed => "lapsed",
            CommitmentStatus::Withdrawn => "withdrawn",
            CommitmentStatus::Superseded => "superseded",
        }
    }

    /// Whether nothing but assessments, corrections and retractions can follow.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            CommitmentStatus::Fulfilled
                | CommitmentStatus::Lapsed
                | CommitmentStatus::Withdrawn
                | CommitmentStatus::Superseded
        )
    }
}

/// A dated entry kept in the commitment state (reaffirmation or progress report).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    version: u64,
    occurred_at: OccurredAt,
    text: Option<String>,
    parties: Vec<String>,
}

impl Entry {
    /// Version of the event that recorded it.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// When it happened.
    pub fn occurred_at(&self) -> OccurredAt {
        self.occurred_at
    }

    /// Its text (reaffirmation words or progress summary), if any.
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }

    /// Parties involved (reaffirming parties; empty for progress reports).
    pub fn parties(&self) -> &[String] {
        &self.parties
    }
}

/// A compliance assessment kept in the commitment state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assessment {
    version: u64,
    stage: AssessmentStage,
    assessor: String,
    rationale: String,
    scores: Vec<PartyScore>,
    occurred_at: OccurredAt,
}

impl Assessment {
    /// Version of the `ComplianceAssessed` event.
    pub fn version(&self) -> u64 {
        self.version
    }

    /// Interim or final.
    pub fn stage(&self) -> AssessmentStage {
        self.stage
    }

    /// Who assessed.
    pub fn assessor(&self) -> &str {
        &self.assessor
    }

    /// Why.
    pub fn rationale(&self) -> &str {
        &self.rationale
    }

    /// Scores per party.
    pub fn scores(&self) -> &[PartyScore] {
        &self.scores
    }

    /// When assessed.
    pub fn occurred_at(&self) -> OccurredAt {
        self.occurred_at
    }
}

/// A commitment as recorded. `Default` is "no commitment yet". Serialized for read-model
/// snapshots *without its progress reports*, which a snapshot keeps one per key;
/// [`State::with_progress_reports`] puts them back.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    commitment_id: Option<CommitmentId>,
    /// Behind an `Arc`: folding an event into a clone of the state shares them (most events
    /// do not change them), and comparing two states' details is a pointer comparison then.
    details: Option<Arc<CommitmentDetails>>,
    details_version: u64,
    made_at: Option<OccurredAt>,
    reaffirmations: Vec<Entry>,
    /// Each report behind an `Arc`: a clone of the state copies pointers, not summaries.
    #[serde(skip)]
    progress: Vec<Arc<Entry>>,
    assessments: Vec<Assessment>,
    /// What only closed commitments, or those with a retraction, have (the terminal status, a
    /// closing text, a successor, retractions), boxed: every commitment's state would
    /// otherwise carry its 96 bytes. `None` whenever all of it is empty, so equal states
    /// compare equal.
    rare: crate::domain::common::Rarely<Rare>,
    event_types: crate::domain::event::EventTypes,
}

/// The fields of a commitment's [`State`] that most commitments never set.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
struct Rare {
    terminal: Option<(CommitmentStatus, OccurredAt)>,
    superseded_by: Option<CommitmentId>,
    closing_text: Option<String>,
    retracted_versions: Vec<u64>,
}

/// What a commitment without [`Rare`] fields reads.
static NO_RARE: Rare = Rare {
    terminal: None,
    superseded_by: None,
    closing_text: None,
    retracted_versions: Vec::new(),
};

impl crate::domain::common::Sparse for Rare {
    fn empty() -> &'static Rare {
        &NO_RARE
    }
}

impl State {
    /// Whether the commitment exists.
    pub fn exists(&self) -> bool {
        self.commitment_id.is_some()
    }

    /// The commitment id.
    pub fn commitment_id(&self) -> Option<CommitmentId> {
        self.commitment_id
    }

    /// The details in effect (after corrections).
    pub fn details(&self) -> Option<&CommitmentDetails> {
        self.details.as_deref()
    }

    /// Whether `other` has the same details: a pointer comparison when `other` was folded from
    /// this state by events that kept them (most events), field by field otherwise.
    pub fn same_details(&self, other: &State) -> bool {
        self.details == other.details
    }

    /// When it was made.
    pub fn made_at(&self) -> Option<OccurredAt> {
        self.made_at
    }

    /// Lifecycle status (derived, see the module docs); `None` before it is recorded.
    pub fn status(&self) -> Option<CommitmentStatus> {
        if !self.exists() {
            return None;
        }
        if let Some((status, _)) = self.rare.get().terminal {
            return Some(status);
        }
        if !self.progress.is_empty() {
            return Some(CommitmentStatus::InProgress);
        }
        if !self.reaffirmations.is_empty() {
            return Some(CommitmentStatus::Reaffirmed);
        }
        Some(CommitmentStatus::Made)
    }

    /// When it reached its terminal status.
    pub fn closed_at(&self) -> Option<OccurredAt> {
        self.rare.get().terminal.map(|(_, occurred_at)| occurred_at)
    }

    /// The fulfilment summary or lapse/withdrawal/supersession reason.
    pub fn closing_text(&self) -> Option<&str> {
        self.rare.get().closing_text.as_deref()
    }

    /// The commitment that superseded this one.
    pub fn superseded_by(&self) -> Option<CommitmentId> {
        self.rare.get().superseded_by
    }

    /// Reaffirmations not retracted.
    pub fn reaffirmations(&self) -> &[Entry] {
        &self.reaffirmations
    }

    /// Progress reports not retracted.
    pub fn progress_reports(&self) -> &[Arc<Entry>] {
        &self.progress
    }

    /// The state with `reports` in effect (a snapshot's progress reports, read back in version
    /// order, after the rest of the state was deserialized).
    pub fn with_progress_reports(mut self, reports: Vec<Entry>) -> State {
        self.progress = reports.into_iter().map(Arc::new).collect();
        self
    }

    /// Compliance assessments not retracted.
    pub fn assessments(&self) -> &[Assessment] {
        &self.assessments
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

fn validate_officials(validator: &mut Validator, field: &str, officials: &[OfficialId]) {
    validator.list_len(field, officials.len(), 0, MAX_OFFICIALS_PER_LIST);
    for (index, official_id) in officials.iter().enumerate() {
        if officials[..index].contains(official_id) {
            validator.violation(
                format!("{field}[{index}]"),
                format!("{official_id} is listed twice"),
            );
        }
    }
}

fn validate_details(validator: &mut Validator, details: &CommitmentDetails) {
    validator.party_codes("details.committing_parties", &details.committing_parties, 1);
    validator.party_codes("details.counterparties", &details.counterparties, 0);
    for (index, party) in details.counterparties.iter().enumerate() {
        if details.committing_parties.contains(party) {
            validator.violation(
                format!("details.counterparties[{index}]"),
                "is also a committing party",
            );
        }
    }
    validate_officials(validator, "details.voiced_by", &details.voiced_by);
    validator.required_text("details.text", &details.text, MAX_TEXT_LEN);
    validator.topics("details.topics", &details.topics);
}

fn not_found(commitment_id: CommitmentId) -> Rejection {
    Rejection::NotFound {
        stream_id: commitment_id.stream_id(),
    }
}

/// Rejects another event of `event_type` once the commitment has `limit` of them (retracted
/// ones count too), with the rule `code` naming them as `what`.
fn below_limit(
    state: &State,
    event_type: &str,
    limit: usize,
    (code, what): (&'static str, &str),
) -> Result<(), Rejection> {
    let recorded = state
        .event_types
        .iter()
        .filter(|name| *name == event_type)
        .count();
    if recorded >= limit {
        return Err(Rejection::rule(
            code,
            format!("a commitment keeps at most {limit} {what}"),
        ));
    }
    Ok(())
}

/// Rejects unless the commitment exists and is open (not terminal).
fn require_open(state: &State, commitment_id: CommitmentId, what: &str) -> Result<(), Rejection> {
    let Some(status) = state.status() else {
        return Err(not_found(commitment_id));
    };
    if status.is_terminal() {
        return Err(Rejection::rule(
            "commitment.closed",
            format!("the commitment is {}; it cannot be {what}", status.as_str()),
        ));
    }
    Ok(())
}

/// Decides which events a commitment command produces.
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let mut validator = Validator::new();
    validator.provenance(command.provenance());
    if let Some(details) = command.details() {
        validate_details(&mut validator, details);
    }
    let commitment_id = command.commitment_id();
    let provenance = command.provenance().clone();
    match command {
        Command::RecordCommitment { details, .. } => {
            decide_record_commitment(state, validator, commitment_id, details, provenance)
        }
        Command::ReaffirmCommitment {
            reaffirmed_by,
            voiced_by,
            at_meeting,
            text,
            ..
        } => decide_reaffirm_commitment(
            state,
            validator,
            commitment_id,
            reaffirmed_by,
            voiced_by,
            *at_meeting,
            text.as_deref(),
            provenance,
        ),
        Command::ReportCommitmentProgress { summary, .. } => {
            decide_report_commitment_progress(state, validator, commitment_id, summary, provenance)
        }
        Command::FulfilCommitment { summary, .. } => {
            decide_fulfil_commitment(state, validator, commitment_id, summary, provenance)
        }
        Command::MarkCommitmentLapsed { reason, .. } => {
            decide_mark_commitment_lapsed(state, validator, commitment_id, reason, provenance)
        }
        Command::WithdrawCommitment { reason, .. } => {
            decide_withdraw_commitment(state, validator, commitment_id, reason, provenance)
        }
        Command::SupersedeCommitment {
            superseded_by,
            reason,
            ..
        } => decide_supersede_commitment(
            state,
            validator,
            commitment_id,
            *superseded_by,
            reason.as_deref(),
            provenance,
        ),
        Command::AssessCompliance {
            stage,
            assessor,
            rationale,
            scores,
            ..
        } => decide_assess_compliance(
            state,
            validator,
            commitment_id,
            *stage,
            assessor,
            rationale,
            scores,
            provenance,
        ),
        Command::CorrectCommitment {
            corrects_version,
            reason,
            details,
            ..
        } => decide_correct_commitment(
            state,
            validator,
            commitment_id,
            *corrects_version,
            reason,
            details,
            provenance,
        ),
        Command::RetractCommitmentEvent {
            retracts_version,
            reason,
            ..
        } => decide_retract_commitment_event(
            state,
            validator,
            commitment_id,
            *retracts_version,
            reason,
            provenance,
        ),
    }
}

/// Records a commitment: details valid (checked in `decide`), no commitment with this id yet.
fn decide_record_commitment(
    state: &State,
    validator: Validator,
    commitment_id: CommitmentId,
    details: &CommitmentDetails,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.finish()?;
    if state.exists() {
        return Err(Rejection::AlreadyExists {
            stream_id: commitment_id.stream_id(),
        });
    }
    Ok(vec![Event::CommitmentRecorded(CommitmentRecorded {
        commitment_id,
        details: details.clone(),
        provenance,
    })])
}

/// Reaffirms an open commitment: valid parties, each committing; officials listed once; valid text.
#[allow(clippy::too_many_arguments)] // the state, the validator, the id, four fields, the provenance
fn decide_reaffirm_commitment(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    reaffirmed_by: &[String],
    voiced_by: &[OfficialId],
    at_meeting: Option<MeetingId>,
    text: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.party_codes("reaffirmed_by", reaffirmed_by, 1);
    validate_officials(&mut validator, "voiced_by", voiced_by);
    validator.optional_text("text", text, MAX_TEXT_LEN);
    validator.finish()?;
    require_open(state, commitment_id, "reaffirmed")?;
    below_limit(
        state,
        "CommitmentReaffirmed",
        MAX_REAFFIRMATIONS_PER_COMMITMENT,
        ("commitment.too_many_reaffirmations", "reaffirmations"),
    )?;
    let committing = state
        .details
        .as_ref()
        .map(|details| details.committing_parties.as_slice())
        .unwrap_or_default();
    if let Some(outsider) = reaffirmed_by.iter().find(|party| !committing.contains(party)) {
        return Err(Rejection::rule(
            "commitment.not_committing_party",
            format!("{outsider} is not a committing party"),
        ));
    }
    Ok(vec![Event::CommitmentReaffirmed(CommitmentReaffirmed {
        commitment_id,
        reaffirmed_by: reaffirmed_by.to_vec(),
        voiced_by: voiced_by.to_vec(),
        at_meeting,
        text: text.map(str::to_owned),
        provenance,
    })])
}

/// Reports progress on an open commitment: a summary; at most [`MAX_PROGRESS_REPORTS_PER_COMMITMENT`].
fn decide_report_commitment_progress(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    summary: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.required_text("summary", summary, MAX_TEXT_LEN);
    validator.finish()?;
    require_open(state, commitment_id, "progressed")?;
    below_limit(
        state,
        "CommitmentProgressReported",
        MAX_PROGRESS_REPORTS_PER_COMMITMENT,
        ("commitment.too_many_progress_reports", "progress reports"),
    )?;
    Ok(vec![Event::CommitmentProgressReported(
        CommitmentProgressReported {
            commitment_id,
            summary: summary.to_owned(),
            provenance,
        },
    )])
}

/// Fulfils an open commitment: a summary.
fn decide_fulfil_commitment(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    summary: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.required_text("summary", summary, MAX_TEXT_LEN);
    validator.finish()?;
    require_open(state, commitment_id, "fulfilled")?;
    Ok(vec![Event::CommitmentFulfilled(CommitmentFulfilled {
        commitment_id,
        summary: summary.to_owned(),
        provenance,
    })])
}

/// Marks an open commitment lapsed: a reason; not before its due date, if it has one.
fn decide_mark_commitment_lapsed(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    reason: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    require_open(state, commitment_id, "marked lapsed")?;
    let due_by = state.details.as_ref().and_then(|details| details.due_by);
    if let Some(due_by) = due_by {
        if provenance.occurred_at.at() < due_by.at() {
            return Err(Rejection::rule(
                "commitment.not_yet_due",
                "a commitment cannot lapse before its due date",
            ));
        }
    }
    Ok(vec![Event::CommitmentLapsed(CommitmentLapsed {
        commitment_id,
        reason: reason.to_owned(),
        provenance,
    })])
}

/// Withdraws an open commitment: a reason.
fn decide_withdraw_commitment(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    reason: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    require_open(state, commitment_id, "withdrawn")?;
    Ok(vec![Event::CommitmentWithdrawn(CommitmentWithdrawn {
        commitment_id,
        reason: reason.to_owned(),
        provenance,
    })])
}

/// Supersedes an open commitment by another (not itself), with a valid reason if given.
fn decide_supersede_commitment(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    superseded_by: CommitmentId,
    reason: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    if superseded_by == commitment_id {
        validator.violation("superseded_by", "a commitment cannot supersede itself");
    }
    validator.optional_text("reason", reason, MAX_REASON_LEN);
    validator.finish()?;
    require_open(state, commitment_id, "superseded")?;
    Ok(vec![Event::CommitmentSuperseded(CommitmentSuperseded {
        commitment_id,
        superseded_by,
        reason: reason.map(str::to_owned),
        provenance,
    })])
}

/// Assesses a commitment, even closed: assessor, rationale, committing parties scored once each, -1, 0 or +1.
#[allow(clippy::too_many_arguments)] // the state, the validator, the id, four fields, the provenance
fn decide_assess_compliance(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    stage: AssessmentStage,
    assessor: &str,
    rationale: &str,
    scores: &[PartyScore],
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.required_text("assessor", assessor, MAX_NAME_LEN);
    validator.required_text("rationale", rationale, MAX_TEXT_LEN);
    let parties: Vec<String> = scores.iter().map(|score| score.party.clone()).collect();
    validator.party_codes("scores", &parties, 1);
    for (index, score) in scores.iter().enumerate() {
        if !(-1..=1).contains(&score.score) {
            validator.violation(
                format!("scores[{index}].score"),
                format!("{} is not a score: must be -1, 0 or 1", score.score),
            );
        }
    }
    validator.finish()?;
    let Some(details) = &state.details else {
        return Err(not_found(commitment_id));
    };
    below_limit(
        state,
        "ComplianceAssessed",
        MAX_ASSESSMENTS_PER_COMMITMENT,
        ("commitment.too_many_assessments", "assessments"),
    )?;
    if let Some(outsider) = scores
        .iter()
        .find(|score| !details.committing_parties.contains(&score.party))
    {
        return Err(Rejection::rule(
            "commitment.not_committing_party",
            format!("{} is not a committing party", outsider.party),
        ));
    }
    Ok(vec![Event::ComplianceAssessed(ComplianceAssessed {
        commitment_id,
        stage,
        assessor: assessor.to_owned(),
        rationale: rationale.to_owned(),
        scores: scores.to_vec(),
        provenance,
    })])
}

/// Corrects a commitment's details: a reason; the target a recorded or corrected version still in effect.
fn decide_correct_commitment(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    corrects_version: u64,
    reason: &str,
    details: &CommitmentDetails,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(commitment_id));
    }
    check_correction(
        &state.event_types,
        corrects_version,
        state.details_version,
        &["CommitmentRecorded", "CommitmentCorrected"],
    )?;
    Ok(vec![Event::CommitmentCorrected(CommitmentCorrected {
        commitment_id,
        corrects_version,
        reason: reason.to_owned(),
        details: details.clone(),
        provenance,
    })])
}

/// Retracts a reaffirmation, progress report or assessment: a reason; not already retracted.
fn decide_retract_commitment_event(
    state: &State,
    mut validator: Validator,
    commitment_id: CommitmentId,
    retracts_version: u64,
    reason: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(commitment_id));
    }
    check_retraction(
        &state.event_types,
        state.retracted_versions(),
        retracts_version,
        &[
            "CommitmentReaffirmed",
            "CommitmentProgressReported",
            "ComplianceAssessed",
        ],
    )?;
    Ok(vec![Event::CommitmentEventRetracted(CommitmentEventRetracted {
        commitment_id,
        retracts_version,
        reason: reason.to_owned(),
        provenance,
    })])
}

/// Folds one event into the commitment state.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.event_types.push(event.event_type());
    let version = state.version();
    let occurred_at = event.provenance().occurred_at;
    state.commitment_id = Some(event.commitment_id());
    match event {
        Event::CommitmentRecorded(event) => {
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
            state.made_at = Some(occurred_at);
        }
        Event::CommitmentReaffirmed(event) => push_exact(
            &mut state.reaffirmations,
            Entry {
                version,
                occurred_at,
                text: event.text.clone(),
                parties: event.reaffirmed_by.clone(),
            },
        ),
        Event::CommitmentProgressReported(event) => push_exact(
            &mut state.progress,
            Arc::new(Entry {
                version,
                occurred_at,
                text: Some(event.summary.clone()),
                parties: Vec::new(),
            }),
        ),
        Event::CommitmentFulfilled(event) => {
            state.rare.change(|rare| {
                rare.terminal = Some((CommitmentStatus::Fulfilled, occurred_at));
                rare.closing_text = Some(event.summary.clone());
            });
        }
        Event::CommitmentLapsed(event) => {
            state.rare.change(|rare| {
                rare.terminal = Some((CommitmentStatus::Lapsed, occurred_at));
                rare.closing_text = Some(event.reason.clone());
            });
        }
        Event::CommitmentWithdrawn(event) => {
            state.rare.change(|rare| {
                rare.terminal = Some((CommitmentStatus::Withdrawn, occurred_at));
                rare.closing_text = Some(event.reason.clone());
            });
        }
        Event::CommitmentSuperseded(event) => {
            state.rare.change(|rare| {
                rare.terminal = Some((CommitmentStatus::Superseded, occurred_at));
                rare.superseded_by = Some(event.superseded_by);
                rare.closing_text = event.reason.clone();
            });
        }
        Event::ComplianceAssessed(event) => push_exact(
            &mut state.assessments,
            Assessment {
                version,
                stage: event.stage,
                assessor: event.assessor.clone(),
                rationale: event.rationale.clone(),
                scores: event.scores.clone(),
                occurred_at,
            },
        ),
        Event::CommitmentCorrected(event) => {
            state.details = Some(Arc::new(event.details.clone()));
            state.details_version = version;
        }
        Event::CommitmentEventRetracted(event) => {
            let retracted = event.retracts_version;
            state
                .rare
                .change(|rare| push_exact(&mut rare.retracted_versions, retracted));
            state.reaffirmations.retain(|entry| entry.version != retracted);
            state.progress.retain(|entry| entry.version != retracted);
            state
                .assessments
                .retain(|assessment| assessment.version != retracted);
        }
    }
    state
}
