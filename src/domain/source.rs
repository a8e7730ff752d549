//! Source: a document that reports diplomatic activity (news report, communiqué, transcript).
//! Every other command cites one or more sources. Stream `source-<uuid>`. A wrong registration is
//! fixed by a correction naming the version it corrects.

use serde::{Deserialize, Serialize};

use super::common::{
    check_correction, SourceId, Validator, MAX_NAME_LEN, MAX_REASON_LEN, MAX_TITLE_LEN, MAX_URL_LEN,
};
use super::error::Rejection;
use crate::time::{OccurredAt, Precision, Timestamp};

/// Longest language tag, in bytes (BCP 47 tags are short; this is generous).
pub const MAX_LANGUAGE_LEN: usize = 35;

/// What is known about a source document. Unknown values stay `None`: nothing is guessed.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceDetails {
    /// Where the document can be found (`https://...`, `urn:...`, `file:...`).
    pub url: Option<String>,
    /// Who published it.
    pub publisher: Option<String>,
    /// Its title or headline.
    pub title: Option<String>,
    /// When it was published, if the document says.
    pub published_at: Option<OccurredAt>,
    /// When the recorder retrieved it (always known).
    pub retrieved_at: Timestamp,
    /// BCP 47 language tag of the text (`en`, `ar`, `fr`).
    pub language: String,
}

impl SourceDetails {
    /// Valid time of the source: its publication, else its retrieval (exact).
    pub fn occurred_at(&self) -> OccurredAt {
        self.published_at
            .unwrap_or(OccurredAt::new(self.retrieved_at, Precision::Exact))
    }
}

/// Commands on a source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// Registers a source document.
    RegisterSource {
        /// The source id.
        source_id: SourceId,
        /// What is known about the document.
        details: SourceDetails,
    },
    /// Replaces the details recorded by the event at `corrects_version`.
    CorrectSource {
        /// The source id.
        source_id: SourceId,
        /// Version of the `SourceRegistered` or `SourceCorrected` event in effect.
        corrects_version: u64,
        /// Why the earlier record was wrong.
        reason: String,
        /// The corrected details (all of them).
        details: SourceDetails,
    },
}

impl Command {
    /// The source the command targets.
    pub fn source_id(&self) -> SourceId {
        match self {
            Command::RegisterSource { source_id, .. } | Command::CorrectSource { source_id, .. } => {
                *source_id
            }
        }
    }

    /// The details the command carries.
    pub fn details(&self) -> &SourceDetails {
        match self {
            Command::RegisterSource { details, .. } | Command::CorrectSource { details, .. } => details,
        }
    }
}

/// A source was registered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceRegistered {
    /// The source id.
    pub source_id: SourceId,
    /// What is known about the document.
    pub details: SourceDetails,
}

/// A source's details were corrected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourceCorrected {
    /// The source id.
    pub source_id: SourceId,
    /// The version whose details this replaces.
    pub corrects_version: u64,
    /// Why the earlier record was wrong.
    pub reason: String,
    /// The corrected details.
    pub details: SourceDetails,
}

event_enum! {
    /// Events of a source stream.
    pub enum Event {
        /// See [`SourceRegistered`].
        SourceRegistered = 1,
        /// See [`SourceCorrected`].
        SourceCorrected = 1,
    }
}

impl Event {
    /// Tags: `source:<uuid>`.
    pub fn tags(&self) -> Vec<String> {
        match self {
            Event::SourceRegistered(event) => vec![event.source_id.tag()],
            Event::SourceCorrected(event) => vec![event.source_id.tag()],
        }
    }
}

/// A source as recorded. `Default` is "not registered yet". Serialized for read-model
/// snapshots.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct State {
    source_id: Option<SourceId>,
    /// Boxed: the enum of every entity's state is as large as its largest variant, and a
    /// party's or source's details inline would make every meeting's and commitment's state
    /// that large.
    details: Option<Box<SourceDetails>>,
    details_version: u64,
    event_types: crate::domain::event::EventTypes,
}

impl State {
    /// Whether the source has been registered.
    pub fn exists(&self) -> bool {
        self.source_id.is_some()
    }

    /// The source id, once registered.
    pub fn source_id(&self) -> Option<SourceId> {
        self.source_id
    }

    /// The details in effect (after corrections).
    pub fn details(&self) -> Option<&SourceDetails> {
        self.details.as_deref()
    }

    /// Number of events folded so far (the stream version).
    pub fn version(&self) -> u64 {
        self.event_types.len() as u64
    }
}

fn validate_details(validator: &mut Validator, details: &SourceDetails) {
    if details.url.is_none() && details.title.is_none() {
        validator.violation("details.url", "a url or a title is required");
    }
    if let Some(url) = details.url.as_deref() {
        validator.optional_text("details.url", Some(url), MAX_URL_LEN);
        if let Err(description) = check_url(url) {
            validator.violation("details.url", description);
        }
    }
    validator.optional_text("details.publisher", details.publisher.as_deref(), MAX_NAME_LEN);
    validator.optional_text("details.title", details.title.as_deref(), MAX_TITLE_LEN);
    if let Some(published_at) = details.published_at {
        if published_at.at() > details.retrieved_at {
            validator.violation("details.published_at", "is after retrieved_at");
        }
    }
    if let Err(description) = check_language(&details.language) {
        validator.violation("details.language", description);
    }
}

/// A URL needs a scheme (`[a-z][a-z0-9+.-]*:`) followed by something, and no whitespace.
fn check_url(url: &str) -> Result<(), &'static str> {
    let Some((scheme, rest)) = url.split_once(':') else {
        return Err("must start with a scheme such as https:");
    };
    let scheme_ok = scheme.starts_with(|character: char| character.is_ascii_lowercase())
        && scheme.chars().all(|character| {
            character.is_ascii_lowercase() || character.is_ascii_digit() || "+.-".contains(character)
        });
    if !scheme_ok || rest.is_empty() {
        return Err("must start with a scheme such as https:");
    }
    if url.chars().any(char::is_whitespace) {
        return Err("must not contain whitespace");
    }
    Ok(())
}

/// A BCP 47-shaped tag: a 2-3 letter lower-case primary language, then `-` subtags of 1-8
/// letters or digits.
fn check_language(language: &str) -> Result<(), &'static str> {
    const PROBLEM: &str = "must be a BCP 47 language tag such as en, ar or fr-FR";
    if language.len() > MAX_LANGUAGE_LEN {
        return Err(PROBLEM);
    }
    let mut subtags = language.split('-');
    let primary = subtags.next().unwrap_or("");
    if !(2..=3).contains(&primary.len()) || !primary.chars().all(|character| character.is_ascii_lowercase()) {
        return Err(PROBLEM);
    }
    let rest_ok = subtags.all(|subtag| {
        (1..=8).contains(&subtag.len()) && subtag.chars().all(|character| character.is_ascii_alphanumeric())
    });
    if !rest_ok {
        return Err(PROBLEM);
    }
    Ok(())
}

/// Decides which events a source command produces.
pub fn decide(state: &State, command: &Command) -> Result<Vec<Event>, Rejection> {
    let mut validator = Validator::new();
    validate_details(&mut validator, command.details());
    match command {
        Command::RegisterSource { source_id, details } => {
            validator.finish()?;
            if state.exists() {
                return Err(Rejection::AlreadyExists {
                    stream_id: source_id.stream_id(),
                });
            }
            Ok(vec![Event::SourceRegistered(SourceRegistered {
                source_id: *source_id,
                details: details.clone(),
            })])
        }
        Command::CorrectSource {
            source_id,
            corrects_version,
            reason,
            details,
        } => {
            validator.required_text("reason", reason, MAX_REASON_LEN);
            validator.finish()?;
            if !state.exists() {
                return Err(Rejection::NotFound {
                    stream_id: source_id.stream_id(),
                });
            }
            check_correction(
                &state.event_types,
                *corrects_version,
                state.details_version,
                &["SourceRegistered", "SourceCorrected"],
            )?;
            Ok(vec![Event::SourceCorrected(SourceCorrected {
                source_id: *source_id,
                corrects_version: *corrects_version,
                reason: reason.clone(),
                details: details.clone(),
            })])
        }
    }
}

/// Folds one event into the source state.
pub fn evolve(mut state: State, event: &Event) -> State {
    state.event_types.push(event.event_type());
    let version = state.version();
    match event {
        Event::SourceRegistered(event) => {
            state.source_id = Some(event.source_id);
            state.details = Some(Box::new(event.details.clone()));
            state.details_version = version;
        }
        Event::SourceCorrected(event) => {
            state.details = Some(Box::new(event.details.clone()));
            state.details_version = version;
        }
    }
    state
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_languages() {
        for good in ["https://example.org/a", "urn:x:y", "file:data/news.txt"] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in ["example.org", "https:", "Https://x", "https://a b", ":x"] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        for good in ["en", "ar", "fr-FR", "zh-Hant-TW"] {
            assert_eq!(check_language(good), Ok(()), "{good}");
        }
        for bad in ["", "e", "EN", "english", "en-", "en-toolongsubtag"] {
            assert!(check_language(bad).is_err(), "{bad}");
        }
    }
}
