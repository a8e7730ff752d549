//! The recording verbs of the real `dipledger` binary: the news report recorded verb by verb
//! against a real server, read back with `relation`; a scripted retry with --command-id records
//! nothing twice; bad arguments fail with a clear message.

use crate::support::api::*;
use crate::support::cli::dipledger_async as dipledger;
use serde_json::Value;

async fn recorded(server: &str, args: &[&str]) -> Value {
    let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
    all.extend(["--json".to_string(), "--server".to_string(), server.to_string()]);
    let output = dipledger(&all).await;
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_news_report_recorded_with_verbs_reads_back() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    let source = recorded(
        &server,
        &[
            "source",
            "register",
            "--url",
            "file:data/news-libya-france-benghazi.txt",
            "--retrieved-at",
            "2025-01-17",
        ],
    )
    .await;
    let source_id = source["entity_id"].as_str().unwrap().to_owned();
    let cite = |quote: &str| format!("{source_id}={quote}");
    let on_wednesday = ["--occurred-at", "2025-01-15"];
    for (code, name, iso2) in [("LBY", "Libya", "LY"), ("FRA", "France", "FR")] {
        let mut args = vec![
            "party", "register", code, "--name", name, "--iso2", iso2, "--iso3", code, "--source",
        ];
        let quote = cite("Libya and France");
        args.push(&quote);
        args.extend(on_wednesday);
        recorded(&server, &args).await;
    }
    let quote = cite("Libya's National Security Adviser Ibrahim Bushnaf");
    let bushnaf = recorded(
        &server,
        &[
            "official",
            "register",
            "--name",
            "Ibrahim Bushnaf",
            "--post",
            "National Security Adviser",
            "--party",
            "LBY",
            "--source",
            &quote,
            "--occurred-at",
            "2025-01-15",
        ],
    )
    .await;
    let quote = cite("the French Ambassador to Libya, Mostafa Mihraje");
    let mihraje = recorded(
        &server,
        &[
            "official",
            "register",
            "--name",
            "Mostafa Mihraje",
            "--post",
            "Ambassador of France to Libya",
            "--party",
            "FRA",
            "--accredited-to",
            "LBY",
            "--source",
            &quote,
            "--occurred-at",
            "2025-01-15",
        ],
    )
    .await;
    let (bushnaf, mihraje) = (
        bushnaf["entity_id"].as_str().unwrap().to_owned(),
        mihraje["entity_id"].as_str().unwrap().to_owned(),
    );
    let (lby, fra) = (format!("LBY:{bushnaf}"), format!("FRA:{mihraje}"));
    let quote = cite("met with the French Ambassador to Libya, Mostafa Mihraje, in Benghazi");
    let meeting = recorded(
        &server,
        &[
            "meeting",
            "held",
            "--participant",
            &lby,
            "--participant",
            &fra,
            "--place",
            "Benghazi",
            "--country",
            "LBY",
            "--topic",
            "security",
            "--topic",
            "regional-stability",
            "--source",
            &quote,
            "--occurred-at",
            "2025-01-15",
        ],
    )
    .await;
    let meeting_id = meeting["entity_id"].as_str().unwrap().to_owned();
    let quote = cite("Bushnaf emphasized the importance of enhanced bilateral collaboration");
    recorded(
        &server,
        &[
            "meeting",
            "statement",
            &meeting_id,
            "--party",
            "LBY",
            "--official",
            &bushnaf,
            "--text",
            "Emphasized enhanced bilateral collaboration.",
            "--source",
            &quote,
            "--occurred-at",
            "2025-01-15",
        ],
    )
    .await;
    let quote = cite("The two nations reaffirmed their commitment to work closely");
    let commitment = recorded(
        &server,
        &[
            "commitment",
            "record",
            "--kind",
            "reaffirmation",
            "--party",
            "LBY",
            "--party",
            "FRA",
            "--text",
            "work closely to combat regional instability",
            "--topic",
            "terrorism",
            "--topic",
            "migration",
            "--at-meeting",
            &meeting_id,
            "--source",
            &quote,
            "--occurred-at",
            "2025-01-15",
        ],
    )
    .await;
    let last = commitment["positions"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .as_u64()
        .unwrap();
    assert_eq!(last, 10);

    // Read back (wait for the read models with a bounded query first).
    let mut queries =
        dipledger::api::pb::query_service_client::QueryServiceClient::new(harness.channel().await);
    queries
        .get_party(dipledger::api::pb::GetPartyRequest {
            code: "LBY".into(),
            options: Some(dipledger::api::pb::ReadOptions {
                min_position: last,
                as_of: None,
            }),
        })
        .await
        .unwrap();
    let relation = dipledger(&[
        "relation".into(),
        "LBY".into(),
        "FRA".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    let text = String::from_utf8_lossy(&relation.stdout);
    assert!(
        text.contains("meetings 1 (held 1, planned 0, postponed 0, cancelled 0), commitments 1"),
        "{text}"
    );
    assert!(text.contains("Benghazi"), "{text}");

    // A scripted retry: the same --command-id records nothing new and answers the same.
    let retry = [
        "commitment",
        "progress",
        commitment["entity_id"].as_str().unwrap(),
        "--summary",
        "talks continue",
        "--command-id",
        "0190c1d2-3e4f-7a5b-8c6d-7e8f90a1b2c3",
        "--source",
        &source_id,
        "--occurred-at",
        "2025-02",
    ];
    let first = recorded(&server, &retry).await;
    let second = recorded(&server, &retry).await;
    assert_eq!(first, second);
    assert_eq!(first["positions"].as_array().unwrap().len(), 1);

    // Human output names the generated command id.
    let human = dipledger(&[
        "party".into(),
        "register".into(),
        "ESP".into(),
        "--name".into(),
        "Spain".into(),
        "--source".into(),
        source_id.clone(),
        "--occurred-at".into(),
        "2025".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(
        text.contains("recorded 1 event for party-ESP") && text.contains("command id: "),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_arguments_and_rejections_fail_with_a_message() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    let bad_date = dipledger(&[
        "party".into(),
        "register".into(),
        "LBY".into(),
        "--name".into(),
        "Libya".into(),
        "--occurred-at".into(),
        "on Wednesday".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    assert!(!bad_date.status.success());
    assert!(String::from_utf8_lossy(&bad_date.stderr).contains("is not a valid ISO 8601 time"));
    let bad_kind = dipledger(&[
        "party".into(),
        "register".into(),
        "LBY".into(),
        "--name".into(),
        "Libya".into(),
        "--kind".into(),
        "empire".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    assert!(String::from_utf8_lossy(&bad_kind.stderr)
        .contains("--kind \"empire\" is not one of the allowed values"));
    // No source registered: the server says which reference is missing.
    let missing = dipledger(&[
        "party".into(),
        "register".into(),
        "LBY".into(),
        "--name".into(),
        "Libya".into(),
        "--source".into(),
        uuid::Uuid::now_v7().to_string(),
        "--occurred-at".into(),
        "2025".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    assert!(!missing.status.success());
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("NOT_FOUND"),
        "{}",
        String::from_utf8_lossy(&missing.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postponed_then_cancelled_meeting_comes_back_and_impossible_dates_are_refused() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    let source = recorded(
        &server,
        &[
            "source",
            "register",
            "--title",
            "Report",
            "--retrieved-at",
            "2025-02-01",
        ],
    )
    .await;
    let source_id = source["entity_id"].as_str().unwrap().to_owned();
    let cited = |args: &[&str]| -> Vec<String> {
        let mut all: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        all.extend(["--source".into(), source_id.clone()]);
        all
    };
    for code in ["LBY", "FRA"] {
        let args = cited(&[
            "party",
            "register",
            code,
            "--name",
            code,
            "--occurred-at",
            "2025-01",
        ]);
        recorded(&server, &args.iter().map(String::as_str).collect::<Vec<_>>()).await;
    }
    let run = |args: Vec<String>| {
        let server = server.clone();
        async move { recorded(&server, &args.iter().map(String::as_str).collect::<Vec<_>>()).await }
    };
    // "From 24 to 27 February", announced at 10:00 Paris time.
    let meeting = run(cited(&[
        "meeting",
        "schedule",
        "--participant",
        "LBY",
        "--participant",
        "FRA",
        "--start",
        "2025-02-24",
        "--end",
        "2025-02-27",
        "--occurred-at",
        "2025-02-01T10:00+01:00",
    ]))
    .await;
    let id = meeting["entity_id"].as_str().unwrap().to_owned();
    run(cited(&[
        "meeting",
        "postpone",
        &id,
        "--reason",
        "the minister fell ill",
        "--occurred-at",
        "2025-02-20",
    ]))
    .await;
    run(cited(&[
        "meeting",
        "cancel",
        &id,
        "--cancelled-by",
        "FRA",
        "--occurred-at",
        "2025-02-22",
    ]))
    .await;
    run(cited(&[
        "meeting",
        "reschedule",
        &id,
        "--start",
        "2025-03-16",
        "--end",
        "2025-03-17",
        "--within",
        "--occurred-at",
        "2025-03-01",
    ]))
    .await;
    // Wait for the read models with a bounded query first.
    let mut queries =
        dipledger::api::pb::query_service_client::QueryServiceClient::new(harness.channel().await);
    queries
        .get_meeting(dipledger::api::pb::GetMeetingRequest {
            meeting_id: id.clone(),
            options: Some(dipledger::api::pb::ReadOptions {
                min_position: harness.log.head(),
                as_of: None,
            }),
        })
        .await
        .unwrap();
    let shown = dipledger(&[
        "meeting".into(),
        "show".into(),
        id.clone(),
        "--json".into(),
        "--server".into(),
        server.clone(),
    ])
    .await;
    let shown: Value = serde_json::from_slice(&shown.stdout).unwrap();
    let shown = &shown["meeting"];
    assert_eq!(shown["status"], "MEETING_STATUS_RESCHEDULED", "{shown}");
    assert_eq!(shown["window"]["kind"], "WITHIN");
    assert_eq!(shown["window"]["start"]["at"], "2025-03-16T00:00:00.000000Z");
    assert_eq!(shown["window"]["end"]["precision"], "DAY");

    // 30 February does not exist: refused by the CLI with the reason, nothing sent.
    let head = harness.log.head();
    let impossible = dipledger(&cited(&[
        "meeting",
        "postpone",
        &id,
        "--occurred-at",
        "2025-02-30",
        "--server",
        &server,
    ]))
    .await;
    assert!(!impossible.status.success());
    let stderr = String::from_utf8_lossy(&impossible.stderr);
    assert!(stderr.contains("2025-02 has days 1 to 28, not 30"), "{stderr}");
    assert_eq!(harness.log.head(), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_command_names_every_field_violation() {
    let harness = Harness::start().await;
    let server = harness.server.uri();
    // Two malformed fields at once: a lower-case code and an empty name.
    let output = dipledger(
        [
            "party",
            "register",
            "lby",
            "--name",
            "",
            "--occurred-at",
            "2025",
            "--source",
            &uuid::Uuid::now_v7().to_string(),
            "--server",
            &server,
        ]
        .map(String::from)
        .as_ref(),
    )
    .await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr,
        "error: INVALID_ARGUMENT: invalid request:\n  code: \"lby\" does not start with an upper-case letter: a party code is 2 to 12 upper-case letters, digits or '-', starting with a letter (e.g. LBY)\n  details.name: must not be empty\n",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_names_the_address_and_how_to_start_a_server() {
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let server = format!("http://127.0.0.1:{port}");
    for verb in [
        vec!["relation", "LBY", "FRA"],
        vec![
            "party",
            "register",
            "LBY",
            "--name",
            "Libya",
            "--occurred-at",
            "2025",
        ],
    ] {
        let mut args: Vec<String> = verb.iter().map(|arg| arg.to_string()).collect();
        args.extend(["--server".to_owned(), server.clone()]);
        let output = dipledger(&args).await;
        assert!(!output.status.success(), "{verb:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(
            stderr,
            format!(
                "error: no dipledger server at {server} (connection refused): start one with `dipledger serve`, \
                 or give the address of a running one with --server (or DIPLEDGER_SERVER)\n"
            ),
            "{verb:?}"
        );
    }
}
