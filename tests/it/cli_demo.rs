//! `dipledger demo` through the real binary: one command shows what the ledger does.

use std::process::Command;

#[test]
fn the_demo_records_the_report_and_shows_the_relation_and_the_audit_trail() {
    let output = Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .arg("demo")
        .output()
        .expect("run the demo");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.contains("recorded the Libya-France news report and illustrative scenarios: 22 events"),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "meetings: 3 (held 2, planned 0, postponed 0, cancelled 1)   commitments: 4 (open 2, fulfilled 1, lapsed/withdrawn/superseded 1)"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains("Goldstein 2025-01: +10.0"),
        "040 twice and 030 twice: {stdout}"
    );
    for line in [
        "meeting    Held         Benghazi",
        "commitment Fulfilled",
        "commitment Lapsed",
    ] {
        assert!(stdout.contains(line), "{line:?} missing from:\n{stdout}");
    }
    assert!(stdout.contains("v1 MeetingHeld        position 8   recorded by demo from file:data/news-libya-france-benghazi.txt"), "{stdout}");
    assert!(stdout.contains("v2 StatementRecorded"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_records_through_a_running_server_and_a_second_run_records_nothing() {
    let harness = crate::support::api::Harness::start().await;
    let uri = harness.server.uri();
    let run = |uri: String| {
        tokio::task::spawn_blocking(move || {
            Command::new(env!("CARGO_BIN_EXE_dipledger"))
                .args(["demo", "--server", &uri])
                .output()
                .expect("run demo")
        })
    };
    let first = run(uri.clone()).await.unwrap();
    let stdout = String::from_utf8_lossy(&first.stdout);
    assert!(
        first.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&first.stderr)
    );
    assert!(stdout.contains("recording through"), "{stdout}");
    assert!(
        stdout.contains("meetings: 3 (held 2, planned 0, postponed 0, cancelled 1)   commitments: 4"),
        "{stdout}"
    );
    assert!(stdout.contains("Benghazi"), "{stdout}");
    let head = harness.log.head();
    assert_eq!(head, 22);
    let second = run(uri).await.unwrap();
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        harness.log.head(),
        head,
        "the same command ids: nothing recorded twice"
    );
    let again = String::from_utf8_lossy(&second.stdout);
    assert!(
        again.contains(
            "nothing new was recorded: this server already holds every command of the demo \
             (its command ids were recorded by an earlier run; positions up to 22)"
        ),
        "{again}"
    );
    assert!(
        !again.contains("recorded the Libya-France news report"),
        "{again}"
    );
    assert!(stdout.contains("recorded the Libya-France news report and illustrative scenarios: 22 events"));
}
