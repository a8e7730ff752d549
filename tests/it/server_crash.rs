//! Crash safety through the real server: `dipledger serve` takes commands from 16 concurrent
//! gRPC clients and is killed with SIGKILL at random moments, 30 times on the same data
//! directory. After each kill the directory is opened offline and checked: every acknowledged
//! command is there with the positions it was answered with, positions are dense, no command id
//! is recorded twice, and `verify` passes. Between kills nothing is checkpointed on purpose:
//! the kills land before, during and after checkpoints alike, so recovery replays the journal.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};

use crate::support::log::XorShift;
use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::log::{Direction, EventFilter, Log, LogConfig};
use dipledger::projections::{ProjectionName, Projections, SnapshotLoad};
use uuid::Uuid;

const KILLS: usize = 30;
const CLIENTS: usize = 16;

/// Starts `dipledger serve` on a free loopback port; returns the child and its URI.
fn start_server(dir: &std::path::Path) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--snapshot-interval-ms",
            "20",
            "--data-dir",
        ])
        .arg(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start dipledger serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let address = loop {
        let line = lines.next().expect("server printed its address").expect("line");
        if let Some(rest) = line.split("listening on ").nth(1) {
            break rest.split_whitespace().next().expect("address").to_owned();
        }
    };
    // Keep draining stderr so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    (child, format!("http://{address}"))
}

fn register_source(command_id: Uuid) -> pb::RegisterSourceRequest {
    pb::RegisterSourceRequest {
        header: Some(pb::CommandHeader {
            command_id: command_id.to_string(),
            ..Default::default()
        }),
        details: Some(pb::SourceDetails {
            url: Some("https://example.org/crash".into()),
            title: Some("Crash test source".into()),
            retrieved_at: Some(prost_types::Timestamp {
                seconds: 1_736_985_600,
                nanos: 0,
            }),
            language: "en".into(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn register_party(command_id: Uuid, code: &str, source: &str) -> pb::RegisterPartyRequest {
    pb::RegisterPartyRequest {
        header: Some(pb::CommandHeader {
            command_id: command_id.to_string(),
            occurred_at: Some(pb::OccurredAt {
                at: Some(prost_types::Timestamp {
                    seconds: 1_736_899_200,
                    nanos: 0,
                }),
                precision: pb::Precision::Day as i32,
            }),
            sources: vec![pb::SourceCitation::of(source)],
            ..Default::default()
        }),
        code: code.into(),
        details: Some(pb::PartyDetails {
            kind: pb::PartyKind::State as i32,
            name: format!("Party {code}"),
            ..Default::default()
        }),
    }
}

/// Acknowledged command id -> positions it was answered with.
type Acknowledged = Arc<Mutex<HashMap<Uuid, Vec<u64>>>>;

/// Runs 16 clients against `uri` until `kill_after` acknowledgements in all, then SIGKILLs the
/// server while the clients keep sending.
async fn load_and_kill(
    uri: String,
    mut server: Child,
    round: usize,
    kill_after: usize,
    acknowledged: Acknowledged,
) {
    let source_command = Uuid::from_u128(0x5);
    let mut client = CommandServiceClient::connect(uri.clone()).await.expect("connect");
    let source = client
        .register_source(register_source(source_command))
        .await
        .expect("register the source (idempotent across rounds)")
        .into_inner()
        .source_id;
    let (done, mut finished) = tokio::sync::mpsc::channel::<()>(CLIENTS);
    let acks = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    for client_number in 0..CLIENTS {
        let (uri, source, acknowledged, acks, done) = (
            uri.clone(),
            source.clone(),
            acknowledged.clone(),
            acks.clone(),
            done.clone(),
        );
        tokio::spawn(async move {
            let Ok(mut client) = CommandServiceClient::connect(uri).await else {
                return;
            };
            for n in 0.. {
                let command_id = Uuid::now_v7();
                let code = format!("R{round:02}C{client_number:02}N{n:04}");
                match client
                    .register_party(register_party(command_id, &code, &source))
                    .await
                {
                    Ok(response) => {
                        let positions = response.into_inner().result.expect("result").positions;
                        acknowledged.lock().unwrap().insert(command_id, positions);
                        if acks.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == kill_after {
                            let _ = done.send(()).await;
                        }
                    }
                    Err(_) => return, // the server is gone
                }
            }
        });
    }
    drop(done);
    let _ = finished.recv().await;
    server.kill().expect("SIGKILL"); // the clients are still sending
    server.wait().expect("reap");
}

fn check_after_crash(dir: &std::path::Path, acknowledged: &HashMap<Uuid, Vec<u64>>, round: usize) {
    let log = Log::open(LogConfig::new(dir))
        .unwrap_or_else(|error| panic!("round {round}: reopen failed: {error}"));
    let report = log
        .verify(&mut |_, _| {})
        .unwrap_or_else(|error| panic!("round {round}: verify failed: {error}"));
    assert_eq!(report.events, log.head());
    for (command_id, positions) in acknowledged {
        let (_, result) = log
            .find_command(*command_id)
            .unwrap()
            .unwrap_or_else(|| panic!("round {round}: acknowledged {command_id} lost"));
        let stored: Vec<u64> = (result.first_position()..=result.last_position()).collect();
        assert_eq!(&stored, positions, "round {round}: {command_id} moved");
    }
    let mut per_command: HashMap<Uuid, u64> = HashMap::new();
    let mut position = 1;
    loop {
        let page = log
            .read_all(position, Direction::Forwards, 4096, &EventFilter::default())
            .unwrap();
        for event in &page.events {
            assert_eq!(event.position(), position, "round {round}: positions are dense");
            *per_command.entry(event.envelope().command_id).or_default() += 1;
            position += 1;
        }
        if page.reached_end {
            break;
        }
    }
    for (command_id, count) in per_command {
        let (_, result) = log.find_command(command_id).unwrap().expect("command record");
        assert_eq!(
            result.event_ids().len() as u64,
            count,
            "round {round}: {command_id} recorded once, whole"
        );
    }
    // The read models: the snapshot the kill left (the server snapshots every 20 ms under
    // load) plus the replayed tail hold exactly what a rebuild from the log holds.
    let projections = Projections::open_paused(log.clone()).expect("open read models");
    assert!(
        !matches!(projections.snapshot_load(), SnapshotLoad::Discarded(_)),
        "round {round}: {:?}",
        projections.snapshot_load()
    );
    projections.catch_up().expect("catch up");
    let resumed: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| projections.dump(*name))
        .collect();
    for name in ProjectionName::ALL {
        projections.rebuild(name, &mut |_, _| {}).expect("rebuild");
    }
    let rebuilt: Vec<_> = ProjectionName::ALL
        .iter()
        .map(|name| projections.dump(*name))
        .collect();
    assert!(
        resumed == rebuilt,
        "round {round}: resumed read models differ from a rebuild"
    );
}

#[test]
fn sigkill_of_the_server_under_16_clients_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
    let acknowledged: Acknowledged = Arc::default();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    for round in 0..KILLS {
        let (server, uri) = start_server(&data);
        let kill_after = 1 + (rng.next_u32() % 400) as usize;
        runtime.block_on(load_and_kill(
            uri,
            server,
            round,
            kill_after,
            acknowledged.clone(),
        ));
        let snapshot = acknowledged.lock().unwrap().clone();
        assert!(
            snapshot.len() >= kill_after,
            "round {round}: the server acknowledged too little"
        );
        check_after_crash(&data, &snapshot, round);
    }
}
