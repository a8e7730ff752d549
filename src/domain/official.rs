//! Official: a person and the offices they hold over time (post, party, from, to, accredited
//! to), so "who was France's ambassador to Libya on a date" has an answer. Stream
//! `official-<uuid>`. Each office is identified by its *tenure version*: the stream version of the
//! `OfficialAppointed` event that recorded it.
//!
//! Longer than ~600 lines as one aggregate whole: its commands, events, state, decide and evolve read
//! together; splitting them would separate a rule from the events it produces.

use serde::{Deserialize, Serialize};

use super::common::{
    check_correction, check_retraction, party_tag, OfficialId, Provenance, Validator, MAX_NAME_LEN,
    MAX_OFFICES_PER_COMMAND, MAX_POST_LEN, MAX_REASON_LEN,
};
use super::error::Rejection;
use crate::time::{OccurredAt, Timestamp};

/// An office as reported: the post, the party it serves, where accredited, and its dates.
/// Unknown dates stay `None`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct OfficeTerm {
    /// The post, e.g. "National Security Adviser", "Ambassador of France to Libya".
    pub post: String,
    /// Code of the party the official serves (`FRA`).
    pub party: String,
    /// Code of the party an envoy is accredited to (`LBY`), if any.
    pub accredited_to: Option<String>,
    /// When the tenure began, if known.
    pub from: Option<OccurredAt>,
    /// When the tenure ended, if it has and it is known.
    pub to: Option<OccurredAt>,
}

/// Commands on an official.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers a person, with the offices the source shows them holding (may be empty).
    RegisterOfficial {
        /// The official id.
        official_id: OfficialId,
        /// Full name as reported.
        name: String,
        /// Offices held (each becomes an `OfficialAppointed` event).
        offices: Vec<OfficeTerm>,
        /// Sources and valid time (when the source shows the person in office).
        provenance: Provenance,
    },
    /// Records that the official holds (or held) an office.
    AppointOfficial {
        /// The official id.
        official_id: OfficialId,
        /// The office.
        office: OfficeTerm,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Ends the tenure recorded at `tenure_version`.
    EndTenure {
        /// The official id.
        official_id: OfficialId,
        /// Version of the `OfficialAppointed` event of the office.
        tenure_version: u64,
        /// When the tenure ended.
        ended_at: OccurredAt,
        /// Why (resignation, recall, end of mission), if reported.
        reason: Option<String>,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Corrects the official's name recorded at `corrects_version`.
    CorrectOfficialName {
        /// The official id.
        official_id: OfficialId,
        /// Version of the `OfficialRegistered` or `OfficialNameCorrected` event in effect.
        corrects_version: u64,
        /// Why the earlier record was wrong.
        reason: String,
        /// The corrected name.
        name: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Retracts an `OfficialAppointed` or `TenureEnded` event recorded in error.
    RetractOfficialEvent {
        /// The official id.
        official_id: OfficialId,
        /// Version of the retracted event.
        retracts_version: u64,
        /// Why it was wrong.
        reason: String,
        /// Sources and valid time.
        provenance: Provenance,
    },
}

impl Command {
    /// The official the command targets.
    pub fn official_id(&self) -> OfficialId {
        match self {
            Command::RegisterOfficial { official_id, .. }
            | Command::AppointOfficial { official_id, .. }
            | Command::EndTenure { official_id, .. }
            | Command::CorrectOfficialName { official_id, .. }
            | Command::RetractOfficialEvent { official_id, .. } => *official_id,
        }
    }

    /// The command's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Command::RegisterOfficial { provenance, .. }
            | Command::AppointOfficial { provenance, .. }
            | Command::EndTenure { provenance, .. }
            | Command::CorrectOfficialName { provenance, .. }
            | Command::RetractOfficialEvent { provenance, .. } => provenance,
        }
    }

    /// Codes of every party the command names.
    pub fn party_codes(&self) -> Vec<&str> {
        let offices: Vec<&OfficeTerm> = match self {
            Command::RegisterOfficial { offices, .. } => offices.iter().collect(),
            Command::AppointOfficial { office, .. } => vec![office],
            _ => Vec::new(),
        };
        let mut codes = Vec::new();
        for office in offices {
            codes.push(office.party.as_str());
            codes.extend(office.accredited_to.as_deref());
        }
        codes
    }
}

/// A person was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialRegistered {
    /// The official id.
    pub official_id: OfficialId,
    /// Full name.
    pub name: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// An official was recorded holding an office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialAppointed {
    /// The official id.
    pub official_id: OfficialId,
    /// The office.
    pub office: OfficeTerm,
    /// Sources and valid time (when the source shows the person in office).
    pub provenance: Provenance,
}

/// A tenure ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TenureEnded {
    /// The official id.
    pub official_id: OfficialId,
    /// Version of the `OfficialAppointed` event of the office.
    pub tenure_version: u64,
    /// When it ended.
    pub ended_at: OccurredAt,
    /// Why, if reported.
    pub reason: Option<String>,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// The official's name was corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialNameCorrected {
    /// The official id.
    pub official_id: OfficialId,
    /// The version whose name this replaces.
    pub corrects_version: u64,
    /// Why the earlier record was wrong.
    pub reason: String,
    /// The corrected name.
    pub name: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// An event of this official was retracted (history keeps it; state ignores it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfficialEventRetracted {
    /// The official id.
    pub official_id: OfficialId,
    /// Version of the retracted event.
    pub retracts_version: u64,
    /// Why it was wrong.
    pub reason: String,
    /// Sources and valid time.
    pub provenance: Provenance,
}

event_enum! {
    /// Events of an official stream.
    pub enum Event {
        /// See [`OfficialRegistered`].
        OfficialRegistered = 1,
        /// See [`OfficialAppointed`].
        OfficialAppointed = 1,
        /// See [`TenureEnded`].
        TenureEnded = 1,
        /// See [`OfficialNameCorrected`].
        OfficialNameCorrected = 1,
        /// See [`OfficialEventRetracted`].
        OfficialEventRetracted = 1,
    }
}

impl Event {
    /// The event's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Event::OfficialRegistered(event) => &event.provenance,
            Event::OfficialAppointed(event) => &event.provenance,
            Event::TenureEnded(event) => &event.provenance,
            Event::OfficialNameCorrected(event) => &event.provenance,
            Event::OfficialEventRetracted(event) => &event.provenance,
        }
    }

    /// The official the event is about.
    pub fn official_id(&self) -> OfficialId {
        match self {
            Event::OfficialRegistered(event) => event.official_id,
            Event::OfficialAppointed(event) => event.official_id,
            Event::TenureEnded(event) => event.official_id,
            Event::OfficialNameCorrected(event) => event.official_id,
            Event::OfficialEventRetracted(event) => event.official_id,
        }
    }

    /// Tags: `official:<uuid>`, `party:<code>` of an office's party and accreditation, and
    /// `source:<uuid>` of each cited source.
    pub fn tags(&self) -> Vec<String> {
        let mut tags = vec![self.official_id().tag()];
        if let Event::OfficialAppointed(event) = self {
            tags.push(party_tag(&event.office.party));
            if let Some(accredited_to) = &event.office.accredited_to {
                tags.push(party_tag(accredited_to));
            }
        }
        for tag in self.provenance().source_tags() {
            super::common::push_unique(&mut tags, tag);
        }
        tags
    }
}

/// An office held by the official, as currently recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Office {
    tenure_version: u64,
    term: OfficeTerm,
    attested_at: OccurredAt,
    ended: Option<(u64, OccurredAt)>,
}

impl Office {
    /// Version of the `OfficialAppointed` event: the id of this tenure within the official.
    pub fn tenure_version(&self) -> u64 {
        self.tenure_version
    }

    /// The post.
    pub fn post(&self) -> &str {
        &self.term.post
    }

    /// Code of the party served.
    pub fn party(&self) -> &str {
        &self.term.party
    }

    /// Code of the party the envoy is accredited to.
    pub fn accredited_to(&self) -> Option<&str> {
        self.term.accredited_to.as_deref()
    }

    /// Start of the tenure, if known.
    pub fn from(&self) -> Option<OccurredAt> {
        self.term.from
    }

    /// End of the tenure, if it ended and that is known.
    pub fn to(&self) -> Option<OccurredAt> {
        self.ended.map(|(_, ended_at)| ended_at).or(self.term.to)
    }

    /// When a source showed the official in this office (the appointment's valid time).
    pub fn attested_at(&self) -> OccurredAt {
        self.attested_at
    }

    /// Whether the official is *known* to hold the office at `instant`: from the start (or, if
    /// the start is unknown, from when a source shows them in office) until the recorded end.
    pub fn held_on(&self, instant: Timestamp) -> bool {
        let start = self.term.from.unwrap_or(self.attested_at).at();
        let before_end = self.to().is_none_or(|end| instant < end.at());
        start <= instant && before_end
    }
}

/// An official as recorded. `Default` is "not registered yet".
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    official_id: Option<OfficialId>,
    name: String,
    name_version: u64,
    offices: Vec<Office>,
    retracted_versions: Vec<u64>,
    event_types: crate::domain::event::EventTypes,
}

impl State {
    /// Whether the official has been registered.
    pub fn exists(&self) -> bool {
        self.official_id.is_some()
    }

    /// The id, once registered.
    pub fn official_id(&self) -> Option<OfficialId> {
        self.official_id
    }

    /// The name in effect (after corrections); empty before registration.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Offices recorded and not retracted, in the order recorded.
    pub fn offices(&self) -> &[Office] {
        &self.offices
    }

    /// Offices the official is known to hold at `instant`.
    pub fn offices_held_on(&self, instant: Timestamp) -> impl Iterator<Item = &Office> {
        self.offices.iter().filter(move |office| office.held_on(instant))
    }

    /// Versions of events retracted so far.
    pub fn retracted_versions(&self) -> &[u64] {
        &self.retracted_versions
    }

    /// Number of events folded so far (the stream version).
    pub fn version(&self) -> u64 {
        self.event_types.len() as u64
    }
}

fn validate_office(validator: &mut Validator, field: &str, office: &OfficeTerm) {
    validator.required_text(&format!("{field}.post"), &office.post, MAX_POST_LEN);
    validator.party_code(&format!("{field}.party"), &office.party);
    if let Some(accredited_to) = &office.accredited_to {
        validator.party_code(&format!("{field}.accredited_to"), accredited_to);
        if *accredited_to == office.party {
            validator.violation(
                format!("{field}.accredited_to"),
                "must differ from the party served",
            );
        }
    }
    if let (Some(from), Some(to)) = (office.from, office.to) {
        if to.at() < from.at() {
            validator.violation(format!("{field}.to"), "is before from");
        }
    }
}

fn not_found(official_id: OfficialId) -> Rejection {
    Rejection::NotFound {
        stream_id: official_id.stream_id(),
    }
}

/// Decides which events an official command produces.
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let mut validator = Validator::new();
    validator.provenance(command.provenance());
    let official_id = command.official_id();
    let provenance = command.provenance().clone();
    match command {
        Command::RegisterOfficial { name, offices, .. } => {
            decide_register_official(state, validator, official_id, name, offices, provenance)
        }
        Command::AppointOfficial { office, .. } => {
            decide_appoint_official(state, validator, official_id, office, provenance)
        }
        Command::EndTenure {
            tenure_version,
            ended_at,
            reason,
            ..
        } => decide_end_tenure(
            state,
            validator,
            official_id,
            *tenure_version,
            *ended_at,
            reason.as_deref(),
            provenance,
        ),
        Command::CorrectOfficialName {
            corrects_version,
            reason,
            name,
            ..
        } => decide_correct_official_name(
            state,
            validator,
            official_id,
            *corrects_version,
            reason,
            name,
            provenance,
        ),
        Command::RetractOfficialEvent {
            retracts_version,
            reason,
            ..
        } => decide_retract_official_event(
            state,
            validator,
            official_id,
            *retracts_version,
            reason,
            provenance,
        ),
    }
}

/// Registers an official: a name, at most [`MAX_OFFICES_PER_COMMAND`] valid offices; not registered yet.
fn decide_register_official(
    state: &State,
    mut validator: Validator,
    official_id: OfficialId,
    name: &str,
    offices: &[OfficeTerm],
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.required_text("name", name, MAX_NAME_LEN);
    validator.list_len("offices", offices.len(), 0, MAX_OFFICES_PER_COMMAND);
    for (index, office) in offices.iter().enumerate() {
        validate_office(&mut validator, &format!("offices[{index}]"), office);
    }
    validator.finish()?;
    if state.exists() {
        return Err(Rejection::AlreadyExists {
            stream_id: official_id.stream_id(),
        });
    }
    let mut events = vec![Event::OfficialRegistered(OfficialRegistered {
        official_id,
        name: name.to_owned(),
        provenance: provenance.clone(),
    })];
    for office in offices {
        events.push(Event::OfficialAppointed(OfficialAppointed {
            official_id,
            office: office.clone(),
            provenance: provenance.clone(),
        }));
    }
    Ok(events)
}

/// Appoints a registered official to an office: a valid office.
fn decide_appoint_official(
    state: &State,
    mut validator: Validator,
    official_id: OfficialId,
    office: &OfficeTerm,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validate_office(&mut validator, "office", office);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(official_id));
    }
    Ok(vec![Event::OfficialAppointed(OfficialAppointed {
        official_id,
        office: office.clone(),
        provenance,
    })])
}

/// Ends a tenure: a valid reason if given; the office recorded, not yet ended, not ending before it began.
fn decide_end_tenure(
    state: &State,
    mut validator: Validator,
    official_id: OfficialId,
    tenure_version: u64,
    ended_at: OccurredAt,
    reason: Option<&str>,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.optional_text("reason", reason, MAX_REASON_LEN);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(official_id));
    }
    let Some(office) = state
        .offices
        .iter()
        .find(|office| office.tenure_version == tenure_version)
    else {
        return Err(Rejection::rule(
            "tenure.not_found",
            format!("no office recorded at version {tenure_version}"),
        ));
    };
    if office.to().is_some() {
        return Err(Rejection::rule(
            "tenure.already_ended",
            "the tenure has already ended",
        ));
    }
    if office.term.from.is_some_and(|from| ended_at.at() < from.at()) {
        return Err(Rejection::rule(
            "tenure.end_before_start",
            "ended_at is before the start of the tenure",
        ));
    }
    Ok(vec![Event::TenureEnded(TenureEnded {
        official_id,
        tenure_version,
        ended_at,
        reason: reason.map(str::to_owned),
        provenance,
    })])
}

/// Corrects an official's name: a reason and a name; the target a name version still in effect.
fn decide_correct_official_name(
    state: &State,
    mut validator: Validator,
    official_id: OfficialId,
    corrects_version: u64,
    reason: &str,
    name: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.required_text("name", name, MAX_NAME_LEN);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(official_id));
    }
    check_correction(
        &state.event_types,
        corrects_version,
        state.name_version,
        &["OfficialRegistered", "OfficialNameCorrected"],
    )?;
    Ok(vec![Event::OfficialNameCorrected(OfficialNameCorrected {
        official_id,
        corrects_version,
        reason: reason.to_owned(),
        name: name.to_owned(),
        provenance,
    })])
}

/// Retracts an appointment or a tenure end: a reason; the target not already retracted.
fn decide_retract_official_event(
    state: &State,
    mut validator: Validator,
    official_id: OfficialId,
    retracts_version: u64,
    reason: &str,
    provenance: Provenance,
) -> Result<Vec<Event>, Rejection> {
    validator.reason("reason", reason);
    validator.finish()?;
    if !state.exists() {
        return Err(not_found(official_id));
    }
    check_retraction(
        &state.event_types,
        &state.retracted_versions,
        retracts_version,
        &["OfficialAppointed", "TenureEnded"],
    )?;
    Ok(vec![Event::OfficialEventRetracted(OfficialEventRetracted {
        official_id,
        retracts_version,
        reason: reason.to_owned(),
        provenance,
    })])
}

/// Folds one event into the official state.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.event_types.push(event.event_type());
    let version = state.version();
    match event {
        Event::OfficialRegistered(event) => {
            state.official_id = Some(event.official_id);
            state.name = event.name.clone();
            state.name_version = version;
        }
        Event::OfficialAppointed(event) => crate::domain::common::push_exact(
            &mut state.offices,
            Office {
                tenure_version: version,
                term: event.office.clone(),
                attested_at: event.provenance.occurred_at,
                ended: None,
            },
        ),
        Event::TenureEnded(event) => {
            if let Some(office) = state
                .offices
                .iter_mut()
                .find(|office| office.tenure_version == event.tenure_version)
            {
                office.ended = Some((version, event.ended_at));
            }
        }
        Event::OfficialNameCorrected(event) => {
            state.name = event.name.clone();
            state.name_version = version;
        }
        Event::OfficialEventRetracted(event) => {
            crate::domain::common::push_exact(&mut state.retracted_versions, event.retracts_version);
            let retracted_type = usize::try_from(event.retracts_version)
                .ok()
                .and_then(|version| version.checked_sub(1))
                .and_then(|index| state.event_types.get(index));
            match retracted_type {
                Some("OfficialAppointed") => state
                    .offices
                    .retain(|office| office.tenure_version != event.retracts_version),
                // A retracted end reopens the tenure (unless the appointment itself gave `to`).
                Some("TenureEnded") => {
                    for office in &mut state.offices {
                        if office
                            .ended
                            .is_some_and(|(ended_version, _)| ended_version == event.retracts_version)
                        {
                            office.ended = None;
                        }
                    }
                }
                _ => {}
            }
        }
    }
    state
}

/// Officials (from several official states) known to hold a post for `party`, accredited to
/// `accredited_to`, at `instant`: "who was France's ambassador to Libya on that date".
pub fn holders_on<'a>(
    officials: impl IntoIterator<Item = &'a State>,
    party: &'a str,
    accredited_to: Option<&'a str>,
    instant: Timestamp,
) -> impl Iterator<Item = (&'a State, &'a Office)> {
    officials.into_iter().flat_map(move |official| {
        official
            .offices_held_on(instant)
            .filter(move |office| office.party() == party && office.accredited_to() == accredited_to)
            .map(move |office| (official, office))
    })
}
