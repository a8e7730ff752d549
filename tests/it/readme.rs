//! The README's tour runs verbatim: every `sh` block after a `<!-- tour -->` marker, in order,
//! against a real server on a fresh data directory, with `cargo run -q --release --` standing for
//! the `dipledger` binary under test. Each block must exit 0 and say what the README says it does.

use crate::support::api::*;
use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;

/// The tour's blocks: the `sh` code after each `<!-- tour -->` marker.
fn tour_blocks() -> Vec<String> {
    let readme = include_str!("../../README.md");
    readme
        .split("<!-- tour -->")
        .skip(1)
        .map(|after| {
            let code = after
                .split_once("```sh\n")
                .expect("a sh block after the marker")
                .1;
            code.split_once("```").expect("a closed block").0.to_owned()
        })
        .collect()
}

/// Runs one block with bash, the binary standing in for `cargo run -q --release --`.
async fn run_block(block: &str, server: &str, dir: &std::path::Path) -> String {
    let script = format!(
        "set -euo pipefail\n{}",
        block.replace("cargo run -q --release --", "\"$DIPLEDGER\"")
    );
    let (server, dir) = (server.to_owned(), dir.to_owned());
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new("bash")
            .arg("-c")
            .arg(script)
            .env("DIPLEDGER", env!("CARGO_BIN_EXE_dipledger"))
            .env("DIPLEDGER_SERVER", server)
            .current_dir(dir)
            .output()
            .expect("run bash")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "block failed:\n{block}\nstdout:\n{stdout}\nstderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_tour_runs_verbatim_on_a_fresh_data_directory() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    let blocks = tour_blocks();
    assert_eq!(blocks.len(), 2, "the tour records, then reads");
    let recorded = run_block(&blocks[0], &server, harness.dir.path()).await;
    assert!(recorded.contains("entity: party-LBY"), "{recorded}");
    assert!(
        recorded.contains("entity: meeting-0190c1d2-3e4f-7a5b-8c6d-7e8f90a1b2c4"),
        "{recorded}"
    );
    // The reads follow at a human's pace in the README; here, wait (server-side, bounded) until
    // the read models have applied everything recorded.
    let mut queries = QueryServiceClient::new(harness.channel().await);
    queries
        .get_party(pb::GetPartyRequest {
            code: "FRA".into(),
            options: Some(pb::ReadOptions {
                min_position: harness.log.head(),
                as_of: None,
            }),
        })
        .await
        .expect("read models caught up");
    // The reader's shell still holds the first block's variables (`S=...`).
    let variables: String = blocks[0]
        .lines()
        .filter(|line| {
            line.split_once('=')
                .is_some_and(|(name, _)| name.chars().all(|c| c.is_ascii_uppercase()))
        })
        .map(|line| format!("{line}\n"))
        .collect();
    let read = run_block(&format!("{variables}{}", blocks[1]), &server, harness.dir.path()).await;
    assert!(read.contains("Benghazi"), "{read}");
    assert!(read.contains("meetings 1"), "{read}");
    assert!(read.contains("PartyRegistered"), "the history of LBY: {read}");
    assert!(
        read.contains("entity: meeting-0190c1d2"),
        "the retraction: {read}"
    );
    let events = read.lines().filter(|line| line.starts_with('{')).count();
    assert_eq!(events, 6, "tail --limit 6 prints the six events: {read}");
}
