//! Model-based property test: random appends (random streams, expected versions, new and
//! reused command ids) and reopenings, against a plain in-memory model. The log and the model
//! must agree on every result and on every read.

use std::collections::HashMap;

use crate::support::log::{draft, reopen, temp_log};
use dipledger::log::{AppendRequest, Direction, EventFilter, ExpectedVersion, LogError};
use proptest::prelude::*;
use uuid::Uuid;

#[derive(Debug, Clone)]
enum Op {
    Append {
        stream: usize,
        expected: ExpectedKind,
        events: usize,
        reuse: Option<(usize, bool)>,
    },
    Reopen,
}

#[derive(Debug, Clone, Copy)]
enum ExpectedKind {
    Any,
    NoStream,
    StreamExists,
    ExactCurrent,
    ExactOff(u64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (0..4usize, expected(), 1..4usize, proptest::option::weighted(0.25, (0..64usize, any::<bool>())))
            .prop_map(|(stream, expected, events, reuse)| Op::Append { stream, expected, events, reuse }),
        1 => Just(Op::Reopen),
    ]
}

fn expected() -> impl Strategy<Value = ExpectedKind> {
    prop_oneof![
        Just(ExpectedKind::Any),
        Just(ExpectedKind::NoStream),
        Just(ExpectedKind::StreamExists),
        Just(ExpectedKind::ExactCurrent),
        (1..3u64).prop_map(ExpectedKind::ExactOff),
    ]
}

#[derive(Debug, Clone, PartialEq)]
struct ModelEvent {
    stream: String,
    version: u64,
    command_id: Uuid,
    payload: Vec<u8>,
}

#[derive(Default)]
struct Model {
    events: Vec<ModelEvent>,
    versions: HashMap<String, u64>,
    /// command id -> (request, first position, first version, count)
    commands: HashMap<Uuid, (AppendRequest, u64, u64, usize)>,
    history: Vec<AppendRequest>,
}

#[derive(Debug, PartialEq)]
enum Outcome {
    Appended {
        first_position: u64,
        first_version: u64,
        count: usize,
    },
    Conflict {
        current: u64,
    },
    Reused,
}

impl Model {
    fn apply(&mut self, request: &AppendRequest) -> Outcome {
        if let Some((original, first_position, first_version, count)) =
            self.commands.get(&request.command_id())
        {
            if original.fingerprint() != request.fingerprint() {
                return Outcome::Reused;
            }
            return Outcome::Appended {
                first_position: *first_position,
                first_version: *first_version,
                count: *count,
            };
        }
        let current = self.versions.get(request.stream_id()).copied().unwrap_or(0);
        if !request.expected().admits(current) {
            return Outcome::Conflict { current };
        }
        let first_position = self.events.len() as u64 + 1;
        for (offset, event) in request.events().iter().enumerate() {
            self.events.push(ModelEvent {
                stream: request.stream_id().to_owned(),
                version: current + 1 + offset as u64,
                command_id: request.command_id(),
                payload: event.payload.clone(),
            });
        }
        let count = request.events().len();
        self.versions
            .insert(request.stream_id().to_owned(), current + count as u64);
        self.commands.insert(
            request.command_id(),
            (request.clone(), first_position, current + 1, count),
        );
        Outcome::Appended {
            first_position,
            first_version: current + 1,
            count,
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn log_agrees_with_the_model(ops in proptest::collection::vec(op(), 1..40)) {
        let (dir, mut log) = temp_log();
        let mut model = Model::default();
        for (step, op) in ops.into_iter().enumerate() {
            match op {
                Op::Reopen => {
                    drop(log);
                    log = reopen(&dir);
                }
                Op::Append { stream, expected, events, reuse } => {
                    let stream_id = format!("stream-{stream}");
                    let current = model.versions.get(&stream_id).copied().unwrap_or(0);
                    let expected = match expected {
                        ExpectedKind::Any => ExpectedVersion::Any,
                        ExpectedKind::NoStream => ExpectedVersion::NoStream,
                        ExpectedKind::StreamExists => ExpectedVersion::StreamExists,
                        ExpectedKind::ExactCurrent => ExpectedVersion::Exact(current),
                        ExpectedKind::ExactOff(off) => ExpectedVersion::Exact(current + off),
                    };
                    let drafts = (0..events).map(|i| draft((step * 10 + i) as u64, 8 + i)).collect();
                    let fresh = AppendRequest::new(Uuid::now_v7(), stream_id, expected, "model", drafts);
                    let request = match reuse {
                        Some((index, same)) if !model.history.is_empty() => {
                            let earlier = model.history[index % model.history.len()].clone();
                            if same {
                                earlier
                            } else {
                                AppendRequest::new(earlier.command_id(), fresh.stream_id(), fresh.expected(), "model", fresh.events().to_vec())
                            }
                        }
                        _ => fresh,
                    };
                    model.history.push(request.clone());
                    let expected_outcome = model.apply(&request);
                    let actual = match log.append_blocking(request) {
                        Ok(result) => Outcome::Appended {
                            first_position: result.first_position(),
                            first_version: result.first_version(),
                            count: result.event_ids().len(),
                        },
                        Err(LogError::WrongExpectedVersion { current, .. }) => Outcome::Conflict { current },
                        Err(LogError::CommandIdReused { .. }) => Outcome::Reused,
                        Err(other) => panic!("unexpected error {other}"),
                    };
                    prop_assert_eq!(actual, expected_outcome, "step {}", step);
                }
            }
            // Every read agrees with the model.
            prop_assert_eq!(log.head(), model.events.len() as u64);
            let page = log.read_all(1, Direction::Forwards, usize::MAX, &EventFilter::default()).unwrap();
            let stored: Vec<ModelEvent> = page.events.iter().map(|e| {
                let envelope = e.envelope();
                ModelEvent { stream: envelope.stream_id.clone(), version: envelope.stream_version, command_id: envelope.command_id, payload: envelope.payload.clone() }
            }).collect();
            prop_assert_eq!(&stored, &model.events);
            for stream in 0..4 {
                let stream_id = format!("stream-{stream}");
                let from_log: Vec<u64> = log.read_stream(&stream_id, 1, Direction::Forwards, usize::MAX).unwrap().iter().map(|e| e.position()).collect();
                let from_model: Vec<u64> = model.events.iter().enumerate().filter(|(_, e)| e.stream == stream_id).map(|(i, _)| i as u64 + 1).collect();
                prop_assert_eq!(from_log, from_model);
                prop_assert_eq!(log.stream_version(&stream_id).unwrap(), model.versions.get(&stream_id).copied().unwrap_or(0));
            }
        }
        let verified = log.verify(&mut |_, _| ()).is_ok();
        prop_assert!(verified);
    }
}
