//! Party: a state, a government or an international organisation, keyed by its code
//! (stream `party-LBY`). Registered once; a wrong registration is fixed by a correction that
//! replaces the details and names the version it corrects.

use serde::{Deserialize, Serialize};

use super::common::{
    check_correction, party_stream_id, party_tag, Provenance, Validator, MAX_NAME_LEN, MAX_REASON_LEN,
};
use super::error::Rejection;

/// What kind of actor a party is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PartyKind {
    /// A sovereign state (Libya, France).
    State,
    /// A government, where it must be told apart from the state (rival governments).
    Government,
    /// An international organisation (EU, UN, African Union).
    InternationalOrganisation,
}

/// Descriptive values of a party (everything but its code).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PartyDetails {
    /// State, government or international organisation.
    pub kind: PartyKind,
    /// Common English name, e.g. "Libya".
    pub name: String,
    /// ISO 3166-1 alpha-2 code where it has one (`LY`).
    pub iso_alpha2: Option<String>,
    /// ISO 3166-1 alpha-3 code where it has one (`LBY`).
    pub iso_alpha3: Option<String>,
    /// Wikidata item where known (`Q1016`).
    pub wikidata_qid: Option<String>,
    /// CAMEO actor code where known (`LBY`, `IGOUNO`).
    pub cameo_code: Option<String>,
}

/// Commands on a party.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers a new party under its code.
    RegisterParty {
        /// The party code, e.g. `LBY` (the stream key).
        code: String,
        /// Name, kind and external codes.
        details: PartyDetails,
        /// Sources and valid time.
        provenance: Provenance,
    },
    /// Replaces the details recorded by the event at `corrects_version`.
    CorrectParty {
        /// The party code.
        code: String,
        /// Version of the `PartyRegistered` or `PartyCorrected` event whose details are in effect.
        corrects_version: u64,
        /// Why the earlier record was wrong.
        reason: String,
        /// The corrected details (all of them).
        details: PartyDetails,
        /// Sources and valid time.
        provenance: Provenance,
    },
}

impl Command {
    /// The party code the command targets.
    pub fn code(&self) -> &str {
        match self {
            Command::RegisterParty { code, .. } | Command::CorrectParty { code, .. } => code,
        }
    }

    /// The command's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Command::RegisterParty { provenance, .. } | Command::CorrectParty { provenance, .. } => {
                provenance
            }
        }
    }
}

/// A party was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyRegistered {
    /// The party code.
    pub code: String,
    /// Name, kind and external codes.
    pub details: PartyDetails,
    /// Sources and valid time.
    pub provenance: Provenance,
}

/// A party's details were corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartyCorrected {
    /// The party code.
    pub code: String,
    /// The version whose details this replaces.
    pub corrects_version: u64,
    /// Why the earlier record was wrong.
    pub reason: String,
    /// The corrected details.
    pub details: PartyDetails,
    /// Sources and valid time.
    pub provenance: Provenance,
}

event_enum! {
    /// Events of a party stream.
    pub enum Event {
        /// See [`PartyRegistered`]. Version 2 added `details.cameo_code`.
        PartyRegistered = 2,
        /// See [`PartyCorrected`].
        PartyCorrected = 1,
    }
}

impl Event {
    /// Tags: `party:<code>` and `source:<uuid>` of each cited source.
    pub fn tags(&self) -> Vec<String> {
        let (code, provenance) = match self {
            Event::PartyRegistered(event) => (&event.code, &event.provenance),
            Event::PartyCorrected(event) => (&event.code, &event.provenance),
        };
        let mut tags = vec![party_tag(code)];
        tags.extend(provenance.source_tags());
        tags
    }

    /// The event's provenance.
    pub fn provenance(&self) -> &Provenance {
        match self {
            Event::PartyRegistered(event) => &event.provenance,
            Event::PartyCorrected(event) => &event.provenance,
        }
    }
}

/// A party as recorded. `Default` is "not registered yet". Serialized for read-model
/// snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    code: Option<String>,
    /// Boxed: the enum of every entity's state is as large as its largest variant, and a
    /// party's or source's details inline would make every meeting's and commitment's state
    /// that large.
    details: Option<Box<PartyDetails>>,
    details_version: u64,
    event_types: crate::domain::event::EventTypes,
}

impl State {
    /// Whether the party has been registered.
    pub fn exists(&self) -> bool {
        self.code.is_some()
    }

    /// The party code, once registered.
    pub fn code(&self) -> Option<&str> {
        self.code.as_deref()
    }

    /// The details in effect (after corrections).
    pub fn details(&self) -> Option<&PartyDetails> {
        self.details.as_deref()
    }

    /// Number of events folded so far (the stream version).
    pub fn version(&self) -> u64 {
        self.event_types.len() as u64
    }

    /// Version of the event whose details are in effect.
    pub fn details_version(&self) -> u64 {
        self.details_version
    }
}

fn validate_details(validator: &mut Validator, details: &PartyDetails) {
    validator.required_text("details.name", &details.name, MAX_NAME_LEN);
    check_optional_code(
        validator,
        "details.iso_alpha2",
        details.iso_alpha2.as_deref(),
        2,
        2,
    );
    check_optional_code(
        validator,
        "details.iso_alpha3",
        details.iso_alpha3.as_deref(),
        3,
        3,
    );
    check_optional_code(
        validator,
        "details.cameo_code",
        details.cameo_code.as_deref(),
        3,
        15,
    );
    if let Some(qid) = details.wikidata_qid.as_deref() {
        let digits = qid.strip_prefix('Q').unwrap_or("");
        let well_formed = !digits.is_empty()
            && digits.len() <= 12
            && !digits.starts_with('0')
            && digits.chars().all(|character| character.is_ascii_digit());
        if !well_formed {
            validator.violation("details.wikidata_qid", "must be Q followed by digits (Q1016)");
        }
    }
}

fn check_optional_code(validator: &mut Validator, field: &str, code: Option<&str>, min: usize, max: usize) {
    let Some(code) = code else { return };
    let well_formed =
        (min..=max).contains(&code.len()) && code.chars().all(|character| character.is_ascii_uppercase());
    if !well_formed {
        validator.violation(field, format!("must be {min} to {max} upper-case letters A-Z"));
    }
}

/// Decides which events a party command produces.
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let mut validator = Validator::new();
    validator.party_code("code", command.code());
    validator.provenance(command.provenance());
    match command {
        Command::RegisterParty {
            code,
            details,
            provenance,
        } => {
            validate_details(&mut validator, details);
            validator.finish()?;
            if state.exists() {
                return Err(Rejection::AlreadyExists {
                    stream_id: party_stream_id(code),
                });
            }
            Ok(vec![Event::PartyRegistered(PartyRegistered {
                code: code.clone(),
                details: details.clone(),
                provenance: provenance.clone(),
            })])
        }
        Command::CorrectParty {
            code,
            corrects_version,
            reason,
            details,
            provenance,
        } => {
            validate_details(&mut validator, details);
            validator.required_text("reason", reason, MAX_REASON_LEN);
            validator.finish()?;
            if !state.exists() {
                return Err(Rejection::NotFound {
                    stream_id: party_stream_id(code),
                });
            }
            check_correction(
                &state.event_types,
                *corrects_version,
                state.details_version,
                &["PartyRegistered", "PartyCorrected"],
            )?;
            Ok(vec![Event::PartyCorrected(PartyCorrected {
                code: code.clone(),
                corrects_version: *corrects_version,
                reason: reason.clone(),
                details: details.clone(),
                provenance: provenance.clone(),
            })])
        }
    }
}

/// Folds one event into the party state.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.event_types.push(event.event_type());
    let version = state.version();
    match event {
        Event::PartyRegistered(event) => {
            state.code = Some(event.code.clone());
            state.details = Some(Box::new(event.details.clone()));
            state.details_version = version;
        }
        Event::PartyCorrected(event) => {
            state.details = Some(Box::new(event.details.clone()));
            state.details_version = version;
        }
    }
    state
}

/// Older schema versions of party events, kept so stored payloads can be upcast.
pub mod legacy {
    use serde::{Deserialize, Serialize};

    use super::{PartyDetails, PartyKind, PartyRegistered};
    use crate::domain::common::Provenance;

    /// `PartyRegistered` schema version 1: the details had no `cameo_code`.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PartyRegisteredV1 {
        /// The party code.
        pub code: String,
        /// Name, kind and external codes (version 1 fields).
        pub details: PartyDetailsV1,
        /// Sources and valid time.
        pub provenance: Provenance,
    }

    /// `PartyDetails` as of `PartyRegistered` version 1.
    #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
    pub struct PartyDetailsV1 {
        /// State, government or international organisation.
        pub kind: PartyKind,
        /// Common English name.
        pub name: String,
        /// ISO 3166-1 alpha-2.
        pub iso_alpha2: Option<String>,
        /// ISO 3166-1 alpha-3.
        pub iso_alpha3: Option<String>,
        /// Wikidata item.
        pub wikidata_qid: Option<String>,
    }

    impl PartyRegisteredV1 {
        /// Upcasts to the current version: the CAMEO actor code was not recorded, so it is
        /// `None` (never guessed from the ISO code).
        pub fn upcast(self) -> PartyRegistered {
            PartyRegistered {
                code: self.code,
                details: PartyDetails {
                    kind: self.details.kind,
                    name: self.details.name,
                    iso_alpha2: self.details.iso_alpha2,
                    iso_alpha3: self.details.iso_alpha3,
                    wikidata_qid: self.details.wikidata_qid,
                    cameo_code: None,
                },
                provenance: self.provenance,
            }
        }
    }
}
