//! `dipledger token create|list|revoke` through the real binary, against a running server: the
//! first token turns authentication on, the CLI's `--token` is sent as a bearer token and the
//! server records its principal, a revoked token is refused.

use std::time::{Duration, Instant};

use crate::support::api::*;
use crate::support::cli::dipledger_async as dipledger;
use serde_json::Value;

/// Runs `args` until its exit status is `success` (the server re-reads the token file within
/// its reload interval), at most a few seconds; returns the last output. Each run is a whole
/// process and a round trip to the server, which paces the loop: nothing sleeps.
async fn until(success: bool, args: &[&str]) -> std::process::Output {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let output = dipledger(args).await;
        if output.status.success() == success || Instant::now() > deadline {
            return output;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_token_is_required_sent_recorded_and_revoked() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    let data_dir = harness.dir.path().to_str().unwrap().to_owned();
    let created = dipledger(&[
        "token",
        "create",
        "--data-dir",
        &data_dir,
        "--name",
        "ops-desk",
        "--role",
        "recorder",
        "--expires",
        "90d",
    ])
    .await;
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(stdout.contains("for ops-desk (recorder)"), "{stdout}");
    let token = stdout.lines().last().unwrap().to_owned();
    assert!(token.starts_with("dpl_") && token.len() == 68, "{token}");

    let register = [
        "source",
        "register",
        "--title",
        "Report",
        "--retrieved-at",
        "2025-01-17",
        "--json",
        "--server",
        &server,
    ];
    let refused = until(false, &register).await;
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("UNAUTHENTICATED"), "{stderr}");
    let with_token: Vec<&str> = register.iter().copied().chain(["--token", &token]).collect();
    let recorded = dipledger(&with_token).await;
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let document: Value = serde_json::from_slice(&recorded.stdout).unwrap();
    let position = document["positions"][0].as_u64().expect("a position");
    assert_eq!(
        harness.log.read_event(position).unwrap().envelope().recorded_by,
        "ops-desk"
    );

    let listed = dipledger(&["token", "list", "--data-dir", &data_dir, "--json"]).await;
    let listed: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(listed["auth_enabled"], true);
    assert_eq!(listed["tokens"][0]["principal"], "ops-desk");
    assert_eq!(listed["tokens"][0]["roles"][0], "recorder");
    assert!(
        !listed.to_string().contains(&token),
        "the token itself is never listed"
    );
    let id = listed["tokens"][0]["id"].as_str().unwrap().to_owned();

    let revoked = dipledger(&["token", "revoke", &id, "--data-dir", &data_dir]).await;
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let refused = until(false, &with_token).await;
    assert!(String::from_utf8_lossy(&refused.stderr).contains("revoked"));
    let written = dipledger::auth::access_log::read(harness.dir.path(), 0, 1_000).unwrap();
    let actions: Vec<(&str, &str)> = written
        .iter()
        .map(|entry| (entry.action.as_str(), entry.outcome.as_str()))
        .collect();
    assert_eq!(actions.first(), Some(&("token.create", "OK")), "{actions:?}");
    assert!(actions.contains(&("token.revoke", "OK")), "{actions:?}");
    assert!(
        actions.contains(&("/dipledger.v1.CommandService/RegisterSource", "UNAUTHENTICATED")),
        "{actions:?}"
    );
    let bad_role = dipledger(&[
        "token",
        "create",
        "--data-dir",
        &data_dir,
        "--name",
        "x",
        "--role",
        "root",
    ])
    .await;
    assert!(String::from_utf8_lossy(&bad_role.stderr).contains("--role \"root\" is not one of"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_backup_carries_the_tokens_to_a_restored_directory() {
    let original = tempfile::tempdir().unwrap();
    let data_dir = original.path().to_str().unwrap().to_owned();
    let created = dipledger(&[
        "token",
        "create",
        "--data-dir",
        &data_dir,
        "--name",
        "archivist",
        "--role",
        "recorder",
    ])
    .await;
    let token = String::from_utf8_lossy(&created.stdout)
        .lines()
        .last()
        .unwrap()
        .to_owned();
    let harness = Harness::start_in(original, Default::default()).await;
    let register = [
        "source",
        "register",
        "--title",
        "Report",
        "--retrieved-at",
        "2025-01-17",
        "--server",
    ];
    let server = harness.server.uri();
    let with_token: Vec<&str> = register
        .iter()
        .copied()
        .chain([server.as_str(), "--token", &token])
        .collect();
    let recorded = until(true, &with_token).await;
    assert!(
        recorded.status.success(),
        "{}",
        String::from_utf8_lossy(&recorded.stderr)
    );
    let Harness {
        dir: original,
        log,
        server,
    } = harness;
    server.shutdown().await.unwrap();
    drop(log);

    // The procedure of docs/operations.md: export the events, restore them, copy the token file
    // and the access log beside them.
    let backup = original.path().join("backup.jsonl");
    let exported = dipledger(&[
        "export",
        "--data-dir",
        &data_dir,
        "--out",
        backup.to_str().unwrap(),
    ])
    .await;
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    let restored = tempfile::tempdir().unwrap();
    let restored_dir = restored.path().to_str().unwrap().to_owned();
    let loaded = dipledger(&[
        "restore",
        "--data-dir",
        &restored_dir,
        "--from",
        backup.to_str().unwrap(),
    ])
    .await;
    assert!(
        loaded.status.success(),
        "{}",
        String::from_utf8_lossy(&loaded.stderr)
    );
    for file in ["tokens.json", "access.jsonl"] {
        std::fs::copy(original.path().join(file), restored.path().join(file)).unwrap();
    }

    let harness = Harness::start_in(restored, Default::default()).await;
    let server = harness.server.uri();
    let without: Vec<&str> = register.iter().copied().chain([server.as_str()]).collect();
    let refused = dipledger(&without).await;
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("UNAUTHENTICATED"),
        "authentication is still on"
    );
    let with_token: Vec<&str> = register
        .iter()
        .copied()
        .chain([server.as_str(), "--token", &token])
        .collect();
    let recorded = dipledger(&with_token).await;
    assert!(
        recorded.status.success(),
        "the old token works on the restored directory"
    );
    assert_eq!(harness.log.head(), 2, "the restored event and the new one");
}
