//! Crash safety (docs/ARCHITECTURE.md, log invariants 1-6): the real `dipledger` process appends
//! from several threads (every other round from one thread, whose rounds it leads itself once
//! they are lone: `Pipeline` in src/log/writer.rs) and is killed with SIGKILL at random moments,
//! 24 times on the same data directory. After each kill the log is reopened and checked.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::support::log::XorShift;
use dipledger::log::{Direction, EventFilter, Hash, Log, LogConfig};
use uuid::Uuid;

const KILLS: usize = 24;

#[test]
fn sigkill_at_random_moments_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let mut acknowledged: HashMap<Uuid, (u64, u64, Uuid)> = HashMap::new();
    let mut tried: HashSet<Uuid> = HashSet::new();
    let mut seen_chain: HashMap<u64, Hash> = HashMap::new();
    for round in 0..KILLS {
        let mut child = Command::new(env!("CARGO_BIN_EXE_dipledger-bench"))
            .args(["append-loop", "--threads", if round % 2 == 1 { "1" } else { "4" }])
            .arg("--data-dir")
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start dipledger-bench append-loop");
        let stdout = child.stdout.take().unwrap();
        // Kill after a random number of acknowledgements: a random moment for the writer,
        // whose other threads keep appending, with no sleeping.
        let kill_after = 1 + (rng.next_u32() % 300) as usize;
        let mut acks_this_round = 0;
        let mut lines = BufReader::new(stdout).lines();
        while acks_this_round < kill_after {
            let Some(line) = lines.next() else { break };
            let line = line.unwrap();
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["try", id] => {
                    tried.insert(id.parse().unwrap());
                }
                ["ack", id, first, count, event_id] => {
                    let id: Uuid = id.parse().unwrap();
                    acknowledged.insert(
                        id,
                        (
                            first.parse().unwrap(),
                            count.parse().unwrap(),
                            event_id.parse().unwrap(),
                        ),
                    );
                    acks_this_round += 1;
                }
                other => panic!("unexpected line {other:?}"),
            }
        }
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines printed before the kill may still sit in the pipe: an ack there is an ack.
        for line in lines.map_while(Result::ok) {
            let parts: Vec<&str> = line.split_whitespace().collect();
            match parts.as_slice() {
                ["try", id] => {
                    tried.insert(id.parse().unwrap());
                }
                ["ack", id, first, count, event_id] => {
                    acknowledged.insert(
                        id.parse().unwrap(),
                        (
                            first.parse().unwrap(),
                            count.parse().unwrap(),
                            event_id.parse().unwrap(),
                        ),
                    );
                }
                _ => {} // a torn last line
            }
        }
        assert!(
            acks_this_round > 0,
            "round {round}: the child acknowledged nothing"
        );
        check_after_crash(&dir, &acknowledged, &tried, &mut seen_chain, round);
    }
}

fn check_after_crash(
    dir: &tempfile::TempDir,
    acknowledged: &HashMap<Uuid, (u64, u64, Uuid)>,
    tried: &HashSet<Uuid>,
    seen_chain: &mut HashMap<u64, Hash>,
    round: usize,
) {
    let log =
        Log::open(LogConfig::new(dir.path())).unwrap_or_else(|e| panic!("round {round}: reopen failed: {e}"));
    let report = log
        .verify(&mut |_, _| {})
        .unwrap_or_else(|e| panic!("round {round}: verify failed: {e}"));
    assert_eq!(report.events, log.head());
    // 2: every acknowledged append is there, with the same positions and event ids.
    for (command_id, (first, count, event_id)) in acknowledged {
        let (_, result) = log
            .find_command(*command_id)
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: acknowledged {command_id} lost"));
        assert_eq!(
            (result.first_position(), result.event_ids().len() as u64),
            (*first, *count)
        );
        assert_eq!(result.event_ids()[0], *event_id);
    }
    // 1, 3, 5: positions dense, every record from a tried command, each command recorded once
    // and whole; a position keeps its bytes across restarts.
    let mut position = 1;
    let mut per_command: HashMap<Uuid, u64> = HashMap::new();
    loop {
        let page = log
            .read_all(position, Direction::Forwards, usize::MAX, &EventFilter::default())
            .unwrap();
        for event in &page.events {
            assert_eq!(event.position(), position, "round {round}: positions are dense");
            let envelope = event.envelope();
            assert!(
                tried.contains(&envelope.command_id),
                "round {round}: record of a command never tried"
            );
            *per_command.entry(envelope.command_id).or_default() += 1;
            if let Some(previous) = seen_chain.insert(position, *event.chain_hash()) {
                assert_eq!(
                    &previous,
                    event.chain_hash(),
                    "round {round}: position {position} changed"
                );
            }
            position += 1;
        }
        if page.reached_end {
            break;
        }
    }
    for (command_id, count) in per_command {
        let (_, result) = log.find_command(command_id).unwrap().unwrap();
        assert_eq!(
            result.event_ids().len() as u64,
            count,
            "round {round}: command recorded whole, once"
        );
    }
}
