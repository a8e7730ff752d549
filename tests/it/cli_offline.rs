//! The offline verbs of the real `dipledger` binary on a data directory: verify (exit codes),
//! export then restore (identical log), rebuild (identical query answers), bad arguments.

use std::path::Path;

use crate::support::cli::dipledger;
use dipledger::ledger::{CommandEnvelope, Ledger};
use dipledger::log::{Log, LogConfig};
use dipledger::projections::{PageRequest, Projections, ReadOptions};
use dipledger::sample::{meeting_id, news_report_commands};
use uuid::Uuid;

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A data directory holding the news report, with its read models caught up.
fn recorded(dir: &Path) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let log = Log::open(LogConfig::new(dir)).unwrap();
        let ledger = Ledger::new(log.clone());
        for command in news_report_commands() {
            ledger
                .handle(CommandEnvelope::new(Uuid::now_v7(), command, "cli-test"))
                .await
                .unwrap();
        }
        let projections = Projections::open_paused(log).unwrap();
        projections.catch_up().unwrap();
    });
}

fn answers(dir: &Path) -> (String, String) {
    let log = Log::open(LogConfig::new(dir)).unwrap();
    let projections = Projections::open_paused(log).unwrap();
    projections.catch_up().unwrap();
    let options = ReadOptions::latest();
    let meeting = projections.meeting(meeting_id(), &options).unwrap();
    let relation = projections
        .relation("LBY", "FRA", &PageRequest::first(100), &options)
        .unwrap();
    (
        format!("{:?}", meeting.value()),
        format!("{:?}", relation.value()),
    )
}

#[test]
fn verify_export_restore_and_rebuild_through_the_binary() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    recorded(&data);
    let data_arg = data.to_str().unwrap();

    let verified = dipledger(&["verify", "--data-dir", data_arg]);
    assert!(verified.status.success(), "{}", text(&verified.stderr));
    let report = text(&verified.stdout);
    assert!(report.starts_with("ok: 10 events"), "{report}");
    let chain = report.split_whitespace().last().unwrap().to_owned();

    let export = work.path().join("backup.jsonl");
    let exported = dipledger(&[
        "export",
        "--data-dir",
        data_arg,
        "--out",
        export.to_str().unwrap(),
    ]);
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let restored_dir = work.path().join("restored");
    let restored = dipledger(&[
        "restore",
        "--data-dir",
        restored_dir.to_str().unwrap(),
        "--from",
        export.to_str().unwrap(),
    ]);
    assert!(restored.status.success(), "{}", text(&restored.stderr));
    let again = dipledger(&["verify", "--data-dir", restored_dir.to_str().unwrap()]);
    assert!(
        text(&again.stdout).ends_with(&format!("{chain}\n")),
        "same head chain hash after restore"
    );

    let before = answers(&data);
    let rebuilt = dipledger(&["rebuild", "--data-dir", data_arg]);
    assert!(rebuilt.status.success(), "{}", text(&rebuilt.stderr));
    assert_eq!(
        text(&rebuilt.stdout).lines().count(),
        5,
        "every read model rebuilt"
    );
    assert_eq!(answers(&data), before, "identical answers after a rebuild");
    let restored_answers = answers(&restored_dir);
    assert_eq!(
        restored_answers, before,
        "the restored directory answers the same"
    );
}

#[test]
fn verify_exits_2_naming_a_damaged_record() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    recorded(&data);
    {
        let log = Log::open(LogConfig::new(&data)).unwrap();
        // Damage the chunk holding the first records (one byte in the middle).
        let (key, value) = log.raw_tree().scan_prefix(b"E").next().unwrap().unwrap();
        let mut bytes = value.to_vec();
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x20;
        log.raw_tree().insert(key, bytes).unwrap();
        log.raw_tree().flush().unwrap();
    }
    let verified = dipledger(&["verify", "--data-dir", data.to_str().unwrap()]);
    assert_eq!(
        verified.status.code(),
        Some(2),
        "{}{}",
        text(&verified.stdout),
        text(&verified.stderr)
    );
    assert!(
        text(&verified.stdout).starts_with("damaged: position "),
        "{}",
        text(&verified.stdout)
    );
}

#[test]
fn bad_arguments_exit_non_zero_with_a_message() {
    let work = tempfile::tempdir().unwrap();
    let missing = work.path().join("nothing-here");
    let verified = dipledger(&["verify", "--data-dir", missing.to_str().unwrap()]);
    assert_eq!(verified.status.code(), Some(1));
    assert!(text(&verified.stderr).contains("is not a dipledger data directory"));
    let unknown = dipledger(&[
        "rebuild",
        "--data-dir",
        missing.to_str().unwrap(),
        "--only",
        "nonsense",
    ]);
    assert!(!unknown.status.success());
    let no_verb = dipledger(&["frobnicate"]);
    assert_eq!(no_verb.status.code(), Some(2), "clap's usage error");
    assert!(text(&no_verb.stderr).contains("unrecognized subcommand"));
}

#[test]
fn the_analyst_exports_code_the_news_report() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    recorded(&data);
    let tsv = dipledger(&[
        "export",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "cameo-tsv",
    ]);
    assert!(tsv.status.success(), "{}", text(&tsv.stderr));
    let tsv = text(&tsv.stdout);
    let mut lines = tsv.lines();
    assert_eq!(lines.next(), Some(dipledger::analyst::TSV_HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|line| line.split('\t').collect()).collect();
    let pick = |code: &str| -> Vec<(String, String)> {
        let mut dyads: Vec<(String, String)> = rows
            .iter()
            .filter(|r| r[8] == code)
            .map(|r| (r[4].to_owned(), r[6].to_owned()))
            .collect();
        dyads.sort();
        dyads
    };
    // The meeting: consult (no host stated), both directions, in Benghazi, on the assumed day.
    assert_eq!(
        pick("040"),
        vec![("FRA".into(), "LBY".into()), ("LBY".into(), "FRA".into())]
    );
    let consult = rows.iter().find(|r| r[8] == "040").unwrap();
    assert_eq!(
        (consult[2], consult[3], consult[9], consult[10], consult[11]),
        ("20250115", "Day", "04", "1", "1.0")
    );
    assert_eq!(
        (consult[12], consult[13], consult[15]),
        ("Benghazi", "LBY", "CONSULT")
    );
    assert_eq!(consult[14], "file:data/news-libya-france-benghazi.txt");
    let from_libya = rows.iter().find(|r| r[8] == "040" && r[4] == "LBY").unwrap();
    assert_eq!(
        (from_libya[5], from_libya[6], from_libya[7]),
        ("LBY", "FRA", "FRA"),
        "ISO alpha-3 of both actors"
    );
    // The reaffirmed commitment: 030 intent to cooperate, PLOVER AGREE, one row per party.
    let commitment: Vec<&Vec<&str>> = rows.iter().filter(|r| r[8] == "030").collect();
    assert_eq!(commitment.len(), 2);
    assert!(commitment.iter().all(|r| r[11] == "4.0" && r[15] == "AGREE"));

    let plover = dipledger(&[
        "export",
        "--data-dir",
        data.to_str().unwrap(),
        "--format",
        "plover",
    ]);
    let plover = text(&plover.stdout);
    let objects: Vec<serde_json::Value> = plover
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    assert_eq!(objects.len(), rows.len());
    assert!(objects
        .iter()
        .any(|o| o["plover_type"] == "CONSULT" && o["place"] == "Benghazi"));
    assert!(objects
        .iter()
        .any(|o| o["plover_type"] == "AGREE" && o["cameo_code"] == "030"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_a_running_server_holds_is_named_as_such() {
    let harness = crate::support::api::Harness::start().await;
    let dir = harness.dir.path().to_str().unwrap().to_owned();
    let expected = |verb: &str| {
        if verb == "serve" {
            format!(
                "error: a dipledger server is already running on {dir} (its data directory is locked); \
                 stop it first, or serve another --data-dir\n"
            )
        } else if verb == "export" {
            format!(
                "error: a dipledger server is running on {dir} (its data directory is locked); \
                 `dipledger export` needs the directory to itself: stop the server first, \
                 or export from the running server with --server URL\n"
            )
        } else {
            format!(
                "error: a dipledger server is running on {dir} (its data directory is locked); \
                 `dipledger {verb}` needs the directory to itself: stop the server first\n"
            )
        }
    };
    for (verb, extra) in [
        ("verify", vec![]),
        ("export", vec!["--out", "-"]),
        ("serve", vec!["--listen", "127.0.0.1:0"]),
    ] {
        let mut args = vec![verb.to_owned(), "--data-dir".to_owned(), dir.clone()];
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let output = tokio::task::spawn_blocking(move || {
            let arguments: Vec<&str> = args.iter().map(String::as_str).collect();
            dipledger(&arguments)
        })
        .await
        .unwrap();
        assert_eq!(output.status.code(), Some(1), "{verb}");
        let stderr = text(&output.stderr);
        assert!(stderr.ends_with(&expected(verb)), "{verb}: {stderr}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_from_a_running_server_writes_what_the_offline_export_writes() {
    let harness = crate::support::api::Harness::start().await;
    let ledger = Ledger::new(harness.log.clone());
    for command in news_report_commands() {
        ledger
            .handle(CommandEnvelope::new(Uuid::now_v7(), command, "cli-test"))
            .await
            .unwrap();
    }
    drop(ledger);
    let work = tempfile::tempdir().unwrap();
    let formats = ["jsonl", "cameo-tsv", "plover"];
    for format in formats {
        let out = work.path().join(format!("online.{format}"));
        let args = [
            "export".to_owned(),
            "--server".to_owned(),
            harness.server.uri(),
            "--format".to_owned(),
            format.to_owned(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            dipledger(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        assert!(output.status.success(), "{format}: {}", text(&output.stderr));
        assert!(
            text(&output.stderr).starts_with("exported "),
            "{}",
            text(&output.stderr)
        );
    }
    // The server stopped, the directory to itself: the offline export writes the same bytes.
    let crate::support::api::Harness { dir, log, server } = harness;
    server.shutdown().await.unwrap();
    drop(log);
    for format in formats {
        let out = work.path().join(format!("offline.{format}"));
        let args = [
            "export".to_owned(),
            "--data-dir".to_owned(),
            dir.path().to_str().unwrap().to_owned(),
            "--format".to_owned(),
            format.to_owned(),
            "--out".to_owned(),
            out.to_str().unwrap().to_owned(),
        ];
        let output = tokio::task::spawn_blocking(move || {
            dipledger(&args.iter().map(String::as_str).collect::<Vec<_>>())
        })
        .await
        .unwrap();
        assert!(output.status.success(), "{format}: {}", text(&output.stderr));
        let online = std::fs::read(work.path().join(format!("online.{format}"))).unwrap();
        let offline = std::fs::read(&out).unwrap();
        assert!(!online.is_empty());
        assert_eq!(online, offline, "{format}");
    }
}
