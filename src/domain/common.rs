//! Values shared by every aggregate: entity ids, provenance (sources and valid time), limits on
//! every text field and list, and the [`Validator`] that turns malformed input into
//! [`FieldViolation`]s.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::error::{FieldViolation, Rejection};
use crate::time::OccurredAt;

/// Longest name (party, official, publisher, place), in UTF-8 bytes.
pub const MAX_NAME_LEN: usize = 200;
/// Longest free text (summary, statement, commitment text, rationale), in UTF-8 bytes.
pub const MAX_TEXT_LEN: usize = 4_000;
/// Longest quote from a source, in UTF-8 bytes.
pub const MAX_QUOTE_LEN: usize = 1_000;
/// Longest reason given for a correction, retraction, cancellation or lapse, in UTF-8 bytes.
pub const MAX_REASON_LEN: usize = 1_000;
/// Longest URL, in bytes.
pub const MAX_URL_LEN: usize = 2_048;
/// Longest title of a source, in UTF-8 bytes.
pub const MAX_TITLE_LEN: usize = 500;
/// Longest post (office title such as "Ambassador of France to Libya"), in UTF-8 bytes.
pub const MAX_POST_LEN: usize = 200;
/// Longest topic slug, in bytes.
pub const MAX_TOPIC_LEN: usize = 48;
/// Most topics on one meeting or commitment.
pub const MAX_TOPICS: usize = 16;
/// Most source citations on one command.
pub const MAX_SOURCES_PER_COMMAND: usize = 8;
/// Most participants in one meeting.
pub const MAX_PARTICIPANTS: usize = 32;
/// Most parties in one list (committing parties, counterparties, assessed parties).
pub const MAX_PARTIES_PER_LIST: usize = 32;
/// Most officials in one list (voiced by).
pub const MAX_OFFICIALS_PER_LIST: usize = 32;
/// Most offices given when registering an official.
pub const MAX_OFFICES_PER_COMMAND: usize = 8;
/// Shortest and longest party code (`EU`, `LBY`, `UNSC`, ...).
pub const PARTY_CODE_LEN: std::ops::RangeInclusive<usize> = 2..=12;

/// An entity identified by a UUID, whose stream is `<STREAM_PREFIX>-<uuid>`.
pub trait EntityId: Sized {
    /// The stream id's prefix: `meeting` for `meeting-<uuid>`.
    const STREAM_PREFIX: &'static str;
    /// Wraps a UUID.
    fn from_uuid(uuid: Uuid) -> Self;
}

/// The prefix of a party's stream id (`party-LBY`).
pub const PARTY_STREAM_PREFIX: &str = "party";

macro_rules! entity_id {
    ($(#[$meta:meta])* $name:ident, $prefix:literal) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Uuid);

        impl $name {
            /// Wraps a UUID (the ledger assigns a v7 UUID when the client gave none).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The UUID.
            pub const fn uuid(&self) -> Uuid {
                self.0
            }

            /// The stream holding this entity's events, e.g. `meeting-<uuid>`.
            pub fn stream_id(&self) -> String {
                format!("{}-{}", $prefix, self.0)
            }

            /// The tag naming this entity on events, e.g. `meeting:<uuid>`.
            pub fn tag(&self) -> String {
                format!("{}:{}", $prefix, self.0)
            }
        }

        impl EntityId for $name {
            const STREAM_PREFIX: &'static str = $prefix;
            fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(formatter)
            }
        }
    };
}

entity_id!(
    /// Identifies an official (stream `official-<uuid>`).
    OfficialId,
    "official"
);
entity_id!(
    /// Identifies a source document (stream `source-<uuid>`).
    SourceId,
    "source"
);
entity_id!(
    /// Identifies a meeting (stream `meeting-<uuid>`).
    MeetingId,
    "meeting"
);
entity_id!(
    /// Identifies a commitment (stream `commitment-<uuid>`).
    CommitmentId,
    "commitment"
);

/// The stream of a party, keyed by its code: `party-LBY`.
pub fn party_stream_id(code: &str) -> String {
    format!("{PARTY_STREAM_PREFIX}-{code}")
}

/// The tag naming a party on events: `party:LBY`.
pub fn party_tag(code: &str) -> String {
    format!("party:{code}")
}

/// The tag naming the country a meeting took place in: `country:LBY`.
pub fn country_tag(code: &str) -> String {
    format!("country:{code}")
}

/// The tag naming a topic on events: `topic:security`.
pub fn topic_tag(topic: &str) -> String {
    format!("topic:{topic}")
}

/// A source that reports what a command records, optionally with the passage relied on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SourceCitation {
    /// The source document (must exist).
    pub source_id: SourceId,
    /// The passage of the source relied on, verbatim (at most [`MAX_QUOTE_LEN`] bytes).
    pub quote: Option<String>,
}

/// Where a recorded fact comes from and when it happened in the world.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Provenance {
    /// Valid time: when it happened, with the precision the sources give.
    pub occurred_at: OccurredAt,
    /// One to [`MAX_SOURCES_PER_COMMAND`] citations.
    pub sources: Vec<SourceCitation>,
}

impl Provenance {
    /// The tags `source:<uuid>` of the cited sources (deduplicated, in citation order).
    pub fn source_tags(&self) -> Vec<String> {
        let mut tags = Vec::new();
        for citation in &self.sources {
            push_unique(&mut tags, citation.source_id.tag());
        }
        tags
    }
}

/// A period as a report gives it: a start and an optional end, each with its own precision
/// ("24 to 27 February" is a day at both ends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TimeWindow {
    /// Start, with its precision.
    pub start: OccurredAt,
    /// End, if known, with its precision; never before `start`.
    pub end: Option<OccurredAt>,
    /// Whether the meeting fills the window or happens somewhere inside it.
    pub kind: WindowKind,
}

/// How a meeting sits in its window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WindowKind {
    /// It lasts from the start to the end ("from 24 to 27 February").
    Span,
    /// It happens at some time between the start and the end, the report does not say when
    /// ("between the 16th and the 17th"). Needs an end.
    Within,
}

/// Pushes `value` unless already present (keeps first-seen order, used for tags).
pub(crate) fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

/// Collects every malformed field of a command, then fails with all of them at once.
#[derive(Debug, Default)]
pub struct Validator {
    violations: Vec<FieldViolation>,
}

impl Validator {
    /// An empty validator.
    pub fn new() -> Validator {
        Validator::default()
    }

    /// Records a violation of `field`.
    pub fn violation(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.violations.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// `Ok` if nothing was recorded, otherwise [`Rejection::Invalid`] with every violation.
    pub fn finish(self) -> Result<(), Rejection> {
        if self.violations.is_empty() {
            return Ok(());
        }
        Err(Rejection::Invalid(self.violations))
    }

    /// A required text: not blank, at most `max` bytes, no control characters except newlines.
    pub fn required_text(&mut self, field: &str, value: &str, max: usize) {
        if value.trim().is_empty() {
            self.violation(field, "must not be empty");
            return;
        }
        self.optional_text(field, Some(value), max);
    }

    /// An optional text: if present, like [`Validator::required_text`].
    pub fn optional_text(&mut self, field: &str, value: Option<&str>, max: usize) {
        let Some(value) = value else { return };
        if value.trim().is_empty() {
            self.violation(field, "must not be blank when given");
            return;
        }
        if value.len() > max {
            self.violation(field, format!("is {} bytes, the limit is {max}", value.len()));
            return;
        }
        if value
            .chars()
            .any(|character| character.is_control() && character != '\n' && character != '\t')
        {
            self.violation(field, "must not contain control characters");
        }
    }

    /// A list length between `min` and `max` inclusive.
    pub fn list_len(&mut self, field: &str, len: usize, min: usize, max: usize) {
        if len < min {
            self.violation(field, format!("needs at least {min} item(s)"));
        } else if len > max {
            self.violation(field, format!("has {len} items, the limit is {max}"));
        }
    }

    /// A party code: 2 to 12 characters, upper-case ASCII letters, digits or `-`, starting with
    /// a letter (`LBY`, `FRA`, `EU`, `UN`).
    pub fn party_code(&mut self, field: &str, code: &str) {
        if let Err(description) = check_party_code(code) {
            self.violation(field, description);
        }
    }

    /// A list of party codes: each valid, no duplicates, length within bounds.
    pub fn party_codes(&mut self, field: &str, codes: &[String], min: usize) {
        self.list_len(field, codes.len(), min, MAX_PARTIES_PER_LIST);
        for (index, code) in codes.iter().enumerate() {
            self.party_code(&format!("{field}[{index}]"), code);
            if codes[..index].contains(code) {
                self.violation(
                    format!("{field}[{index}]"),
                    format!("{} is listed twice", quoted(code)),
                );
            }
        }
    }

    /// A list of topics: each a lower-case slug (`security`, `regional-stability`), no
    /// duplicates, at most [`MAX_TOPICS`].
    pub fn topics(&mut self, field: &str, topics: &[String]) {
        self.list_len(field, topics.len(), 0, MAX_TOPICS);
        for (index, topic) in topics.iter().enumerate() {
            let item = format!("{field}[{index}]");
            if let Err(description) = check_topic(topic) {
                self.violation(&item, description);
            } else if topics[..index].contains(topic) {
                self.violation(&item, format!("{} is listed twice", quoted(topic)));
            }
        }
    }

    /// Provenance: one to [`MAX_SOURCES_PER_COMMAND`] citations, quotes within limits, no
    /// source cited twice.
    pub fn provenance(&mut self, provenance: &Provenance) {
        let sources = &provenance.sources;
        self.list_len("provenance.sources", sources.len(), 1, MAX_SOURCES_PER_COMMAND);
        for (index, citation) in sources.iter().enumerate() {
            self.optional_text(
                &format!("provenance.sources[{index}].quote"),
                citation.quote.as_deref(),
                MAX_QUOTE_LEN,
            );
            if sources[..index]
                .iter()
                .any(|earlier| earlier.source_id == citation.source_id)
            {
                self.violation(
                    format!("provenance.sources[{index}].source_id"),
                    "cites the same source twice",
                );
            }
        }
    }

    /// A time window whose end is not before its start; a `Within` window has an end.
    pub fn window(&mut self, field: &str, window: &TimeWindow) {
        match window.end {
            Some(end) if end.at() < window.start.at() => {
                self.violation(
                    format!("{field}.end"),
                    format!(
                        "is {}, before the start {}",
                        end.at().to_rfc3339(),
                        window.start.at().to_rfc3339()
                    ),
                );
            }
            None if window.kind == WindowKind::Within => {
                self.violation(
                    format!("{field}.end"),
                    "is required when the meeting happens somewhere within the window",
                );
            }
            _ => {}
        }
    }

    /// A country code in ISO 3166-1 alpha-3 form: three upper-case letters (`LBY`).
    pub fn country_code(&mut self, field: &str, code: &str) {
        if code.len() != 3 || !code.bytes().all(|byte| byte.is_ascii_uppercase()) {
            self.violation(
                field,
                format!(
                    "{} is not an ISO 3166-1 alpha-3 country code (three upper-case letters, e.g. LBY)",
                    quoted(code)
                ),
            );
        }
    }

    /// A reason for a correction or retraction: required, at most [`MAX_REASON_LEN`] bytes.
    pub fn reason(&mut self, field: &str, reason: &str) {
        self.required_text(field, reason, MAX_REASON_LEN);
    }
}

/// Checks a party code; the error names the value, the problem and what is valid.
pub fn check_party_code(code: &str) -> Result<(), String> {
    let problem = if !PARTY_CODE_LEN.contains(&code.len()) {
        format!("is {} characters", code.chars().count())
    } else if !code.starts_with(|character: char| character.is_ascii_uppercase()) {
        "does not start with an upper-case letter".to_owned()
    } else if !code
        .chars()
        .all(|character| character.is_ascii_uppercase() || character.is_ascii_digit() || character == '-')
    {
        "has a character other than A-Z, 0-9 and '-'".to_owned()
    } else {
        return Ok(());
    };
    Err(format!(
        "{} {problem}: a party code is {} to {} upper-case letters, digits or '-', starting with a letter (e.g. LBY)",
        quoted(code),
        PARTY_CODE_LEN.start(),
        PARTY_CODE_LEN.end()
    ))
}

/// Most characters of a value an error message repeats (the API's `status::MAX_ECHOED_CHARS`).
pub const MAX_QUOTED_CHARS: usize = 64;

/// The first `max_chars` characters of `text`, or None when it is no longer than that.
fn head(text: &str, max_chars: usize) -> Option<&str> {
    text.char_indices().nth(max_chars).map(|(end, _)| &text[..end])
}

/// `text` whole up to `max_chars` characters, else its first `max_chars` and `… (N bytes)`:
/// the one way an error repeats a value, so an answer never echoes a huge input.
pub fn cut(text: &str, max_chars: usize) -> std::borrow::Cow<'_, str> {
    match head(text, max_chars) {
        None => std::borrow::Cow::Borrowed(text),
        Some(head) => std::borrow::Cow::Owned(format!("{head}… ({} bytes)", text.len())),
    }
}

/// A value as domain messages quote it: in double quotes, cut as [`cut`] does after
/// [`MAX_QUOTED_CHARS`] characters.
pub fn quoted(value: &str) -> String {
    match head(value, MAX_QUOTED_CHARS) {
        None => format!("{value:?}"),
        Some(head) => format!("{head:?}… ({} bytes)", value.len()),
    }
}

/// Checks a topic slug (`regional-stability`); the error describes the problem.
pub fn check_topic(topic: &str) -> Result<(), String> {
    if topic.is_empty() || topic.len() > MAX_TOPIC_LEN {
        return Err(format!("must be 1 to {MAX_TOPIC_LEN} characters"));
    }
    let well_formed = topic.split('-').all(|word| {
        !word.is_empty()
            && word
                .chars()
                .all(|character| character.is_ascii_lowercase() || character.is_ascii_digit())
    });
    if !well_formed {
        return Err("must be lower-case words of a-z and 0-9 joined by '-'".into());
    }
    Ok(())
}

/// Checks that `version` names an existing event of the stream whose type is one of `allowed`
/// (used by corrections and retractions).
pub(crate) fn check_target_version(
    event_types: &crate::domain::event::EventTypes,
    version: u64,
    allowed: &[&str],
    what: &str,
) -> Result<&'static str, Rejection> {
    let index = usize::try_from(version)
        .ok()
        .and_then(|version| version.checked_sub(1));
    let Some(event_type) = index.and_then(|index| event_types.get(index)) else {
        return Err(Rejection::rule(
            "version.not_found",
            format!(
                "version {version} does not exist (the stream has {} events)",
                event_types.len()
            ),
        ));
    };
    if !allowed.contains(&event_type) {
        return Err(Rejection::rule(
            "version.not_targetable",
            format!("version {version} is a {event_type}, which cannot be {what}"),
        ));
    }
    Ok(event_type)
}

/// Checks a correction's target, the one rule every aggregate's correction shares: version
/// `corrects_version` must exist, be one of the `allowed` event types (those that set the
/// values), and be the version whose values are in effect (`in_effect`), else
/// `correction.superseded` (a correction always replaces what is current, never an older value).
pub(crate) fn check_correction(
    event_types: &crate::domain::event::EventTypes,
    corrects_version: u64,
    in_effect: u64,
    allowed: &[&str],
) -> Result<(), Rejection> {
    check_target_version(event_types, corrects_version, allowed, "corrected")?;
    if corrects_version != in_effect {
        return Err(Rejection::rule(
            "correction.superseded",
            format!("version {corrects_version} is no longer in effect; correct version {in_effect}"),
        ));
    }
    Ok(())
}

/// Checks a retraction's target, the rule every aggregate with retractions shares: version
/// `retracts_version` must exist, be one of the `allowed` event types, and not be among
/// `retracted` already (`retraction.already_retracted`).
pub(crate) fn check_retraction(
    event_types: &crate::domain::event::EventTypes,
    retracted: &[u64],
    retracts_version: u64,
    allowed: &[&str],
) -> Result<(), Rejection> {
    check_target_version(event_types, retracts_version, allowed, "retracted")?;
    if retracted.contains(&retracts_version) {
        return Err(Rejection::rule(
            "retraction.already_retracted",
            format!("version {retracts_version} is already retracted"),
        ));
    }
    Ok(())
}

/// Appends `item` with room for exactly it. A state's lists are pushed once per event folded
/// into a fresh clone of the state (whose lists have no spare room), and the read models keep
/// that state: an amortized push left up to half of every list's allocation unused (heaptrack:
/// ~40 MB of the read models' memory at 1,000,000 events).
pub(crate) fn push_exact<T>(list: &mut Vec<T>, item: T) {
    list.reserve_exact(1);
    list.push(item);
}

/// A group of a state's fields that most entities of its kind never set (see [`Rarely`]).
pub(crate) trait Sparse: Default + PartialEq + Sized + 'static {
    /// The group with nothing set.
    fn empty() -> &'static Self;
}

/// Fields of a state that most entities of its kind never set, boxed, and absent while all of
/// them are empty (so equal states compare and encode alike). Every entity's state is one
/// allocation in the read models; a group most never set costs them 8 bytes instead of its
/// size. Encoded as an `Option` of the group.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Rarely<T>(Option<Box<T>>);

impl<T: Sparse> Rarely<T> {
    /// The group (the empty one when absent).
    pub(crate) fn get(&self) -> &T {
        self.0.as_deref().unwrap_or(T::empty())
    }

    /// Whether nothing of the group is set.
    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_none()
    }

    /// Changes the group, boxing it only while something of it is set.
    pub(crate) fn change(&mut self, change: impl FnOnce(&mut T)) {
        let group = self.0.get_or_insert_with(Box::default);
        change(group);
        if **group == *T::empty() {
            self.0 = None;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_exact_leaves_no_spare_room_where_a_plain_push_would() {
        let mut exact: Vec<u64> = Vec::new();
        let mut plain: Vec<u64> = Vec::new();
        for value in 0..9 {
            push_exact(&mut exact, value);
            plain.push(value);
            assert_eq!(exact.capacity(), exact.len());
        }
        assert_eq!(exact, plain);
        assert!(plain.capacity() > plain.len(), "the amortized push this replaces");
    }

    #[test]
    fn party_codes() {
        for good in ["LBY", "FRA", "EU", "UN", "UNSC", "GNU-LBY", "G7"] {
            assert_eq!(check_party_code(good), Ok(()), "{good}");
        }
        for bad in ["", "L", "lby", "1AB", "LB Y", "ABCDEFGHIJKLM", "LBÝ"] {
            assert!(check_party_code(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_repeated_code_or_topic_is_quoted() {
        let mut validator = Validator::new();
        validator.party_codes("cancelled_by", &["LBY".into(), "FRA".into(), "LBY".into()], 0);
        validator.topics("details.topics", &["security".into(), "security".into()]);
        let Err(Rejection::Invalid(violations)) = validator.finish() else {
            panic!("refused");
        };
        let described: Vec<(&str, &str)> = violations
            .iter()
            .map(|violation| (violation.field.as_str(), violation.description.as_str()))
            .collect();
        assert_eq!(
            described,
            [
                ("cancelled_by[2]", "\"LBY\" is listed twice"),
                ("details.topics[1]", "\"security\" is listed twice")
            ]
        );
    }

    #[test]
    fn topics() {
        for good in ["security", "regional-stability", "g20", "cross-border-crime"] {
            assert_eq!(check_topic(good), Ok(()), "{good}");
        }
        for bad in ["", "Security", "a--b", "-a", "a-", "a b", &"x".repeat(49)] {
            assert!(check_topic(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn text_limits_and_blank() {
        let mut validator = Validator::new();
        validator.required_text("name", "  ", MAX_NAME_LEN);
        validator.required_text("title", &"x".repeat(MAX_TITLE_LEN + 1), MAX_TITLE_LEN);
        validator.required_text("ok", &"x".repeat(MAX_TITLE_LEN), MAX_TITLE_LEN);
        validator.optional_text("bell", Some("a\u{7}b"), MAX_NAME_LEN);
        let rejection = validator.finish().unwrap_err();
        let fields: Vec<_> = rejection
            .violations()
            .iter()
            .map(|violation| violation.field.as_str())
            .collect();
        assert_eq!(fields, ["name", "title", "bell"]);
    }

    #[test]
    fn target_version_checks() {
        let mut types = crate::domain::event::EventTypes::default();
        types.push("MeetingHeld");
        types.push("StatementRecorded");
        assert!(check_target_version(&types, 0, &["StatementRecorded"], "retracted").is_err());
        assert!(check_target_version(&types, 3, &["StatementRecorded"], "retracted").is_err());
        assert!(check_target_version(&types, 1, &["StatementRecorded"], "retracted").is_err());
        assert_eq!(
            check_target_version(&types, 2, &["StatementRecorded"], "retracted"),
            Ok("StatementRecorded")
        );
    }
}
