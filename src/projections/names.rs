//! Names of the officials and parties an answer's rows refer to, read from the same model at
//! the same position as the rows, so a view shows "Ibrahim Bushnaf, National Security Adviser of
//! LBY" beside the ids without one more call per row. Bounded by the page: at most one lookup
//! per distinct official and party on it.

use std::collections::{BTreeSet, HashMap};

use super::error::ProjectionResult;
use super::meetings::MeetingRow;
use super::officials::{OfficeRow, OfficialRow};
use super::relations::TimelineItem;
use super::runner::Model;
use crate::domain::common::OfficialId;
use crate::log::Log;
use crate::time::Timestamp;

/// Officials and parties by id, as of one position. A missing entry means the ledger did not
/// know the official or party at that position.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Names {
    officials: HashMap<OfficialId, OfficialRow>,
    parties: HashMap<String, String>,
}

/// The officials and parties a set of rows names (deduplicated, in a stable order).
#[derive(Debug, Default)]
pub(crate) struct Refs {
    officials: BTreeSet<OfficialId>,
    parties: BTreeSet<String>,
}

impl Refs {
    /// Everyone a meeting names: participants and their officials.
    pub(crate) fn meeting(&mut self, row: &MeetingRow) {
        for participant in &row.details.participants {
            self.parties.insert(participant.party.clone());
            self.officials.extend(participant.official_id);
        }
    }

    /// Everyone the meetings of a timeline name.
    pub(crate) fn timeline(&mut self, items: &[TimelineItem]) {
        for item in items {
            if let TimelineItem::Meeting(row) = item {
                self.meeting(row);
            }
        }
    }

    /// An official by id.
    pub(crate) fn official(&mut self, official_id: OfficialId) {
        self.officials.insert(official_id);
    }
}

impl Names {
    /// Looks up every referred official and party in `model` as of `at`.
    pub(crate) fn resolve(model: &Model, log: &Log, at: u64, refs: Refs) -> ProjectionResult<Names> {
        let mut names = Names::default();
        for official_id in refs.officials {
            if let Some(row) = model.officials.get(log, official_id, at)? {
                names.officials.insert(official_id, row);
            }
        }
        for code in refs.parties {
            if let Some(row) = model.directory.party(log, &code, at)? {
                names.parties.insert(code, row.details.name);
            }
        }
        Ok(names)
    }

    /// The official, as of the answer's position.
    pub fn official(&self, official_id: OfficialId) -> Option<&OfficialRow> {
        self.officials.get(&official_id)
    }

    /// The official's name, if known.
    pub fn official_name(&self, official_id: OfficialId) -> Option<&str> {
        self.official(official_id).map(|row| row.name.as_str())
    }

    /// The offices the official held on `on` (valid time); none when the date is unknown.
    pub fn offices_on(&self, official_id: OfficialId, on: Option<Timestamp>) -> Vec<&OfficeRow> {
        match (self.official(official_id), on) {
            (Some(row), Some(on)) => row.offices.iter().filter(|office| office.held_on(on)).collect(),
            _ => Vec::new(),
        }
    }

    /// The party's registered name, if known.
    pub fn party_name(&self, code: &str) -> Option<&str> {
        self.parties.get(code).map(String::as_str)
    }
}
