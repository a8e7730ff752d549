//! Entity states folded from their streams, with a bounded cache that is never stale: a cached
//! state is used only after checking that the stream has not moved past it, and it is brought
//! forward by folding just the newer events.

use std::collections::HashMap;
use std::sync::Mutex;

use super::LedgerError;
use crate::domain::{decode_event, evolve_state, AggregateState};
use crate::log::{Direction, Log};

pub(super) struct StateCache {
    capacity: usize,
    states: Mutex<HashMap<String, AggregateState>>,
}

impl StateCache {
    pub(super) fn new(capacity: usize) -> StateCache {
        StateCache {
            capacity,
            states: Mutex::new(HashMap::new()),
        }
    }

    /// The current state of `stream_id`, starting from `empty` when nothing is cached.
    pub(super) fn load(
        &self,
        log: &Log,
        stream_id: &str,
        empty: AggregateState,
    ) -> Result<AggregateState, LedgerError> {
        // Taken out, not cloned (a state can be large): commands to one entity are serialised by
        // the ledger's lock stripes, and the state is put back once its append succeeded.
        let cached = self.states.lock().expect("state cache").remove(stream_id);
        let mut state = cached.unwrap_or(empty);
        if state.version() > 0 && log.applied_stream_version(stream_id) == Some(state.version()) {
            // Current as far as sled holds the stream (an event staged past it fails the append
            // with a conflict), so no read of the stream index.
            return Ok(state);
        }
        loop {
            let page = log.read_stream(stream_id, state.version() + 1, Direction::Forwards, usize::MAX)?;
            if page.is_empty() {
                break;
            }
            for recorded in page {
                let envelope = recorded.envelope();
                let event = decode_event(&envelope.event_type, envelope.schema_version, &envelope.payload)
                    .map_err(|error| LedgerError::Undecodable {
                        position: envelope.position,
                        reason: error.to_string(),
                    })?;
                state = evolve_state(state, &event);
            }
        }
        Ok(state)
    }

    /// Caches the state of `stream_id` after a successful append.
    pub(super) fn put(&self, stream_id: String, state: AggregateState) {
        let mut states = self.states.lock().expect("state cache");
        if states.len() >= self.capacity {
            states.clear();
        }
        states.insert(stream_id, state);
    }

    pub(super) fn forget(&self, stream_id: &str) {
        self.states.lock().expect("state cache").remove(stream_id);
    }
}
