//! The analyst's reading verbs through the real binary, on the demo's ledger (recorded with
//! `dipledger demo --server`, fixed ids): `party show|list`, `source show|list`, `official
//! list|contacts`, `commitment overdue|compliance`, in text (names, posts, statuses in words,
//! plural forms right) and `--json`.

use std::process::Command;

use crate::support::api::Harness;

/// The demo's ids (src/cli/demo.rs, src/sample.rs).
const AMBASSADOR: &str = "00000000-0000-0000-0000-0000000000b1";
const REPORT: &str = "00000000-0000-0000-0000-000000000050";

/// Runs the binary with `args` against `server`; its standard output (it must succeed).
async fn run(server: &str, args: &[&str]) -> String {
    let mut arguments: Vec<String> = args.iter().map(|arg| arg.to_string()).collect();
    arguments.extend(["--server".to_owned(), server.to_owned()]);
    let output = tokio::task::spawn_blocking(move || {
        Command::new(env!("CARGO_BIN_EXE_dipledger"))
            .args(&arguments)
            .env_remove("DIPLEDGER_SERVER")
            .output()
            .expect("run dipledger")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{args:?}: {stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

async fn json(server: &str, args: &[&str]) -> serde_json::Value {
    let mut args = args.to_vec();
    args.push("--json");
    serde_json::from_str(&run(server, &args).await).expect("one JSON document")
}

/// A server holding the demo's ledger.
async fn demo_ledger() -> Harness {
    let harness = Harness::start().await;
    run(&harness.server.uri(), &["demo"]).await;
    assert_eq!(harness.log.head(), 22);
    harness
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn party_show_and_list_name_the_parties_and_their_kind_in_words() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let listed = run(&uri, &["party", "list"]).await;
    assert!(listed.starts_with("2 parties (as of position 22)\n"), "{listed}");
    assert!(listed.contains("LBY      Libya"), "{listed}");
    assert!(listed.contains("France") && listed.contains("State"), "{listed}");
    assert!(!listed.contains("PARTY_KIND_"), "{listed}");
    let document = json(&uri, &["party", "list"]).await;
    assert_eq!(document["based_on_position"], 22);
    assert_eq!(document["parties"].as_array().unwrap().len(), 2);
    assert_eq!(document["parties"][0]["kind"], "PARTY_KIND_STATE");

    let shown = run(&uri, &["party", "show", "LBY"]).await;
    assert!(shown.starts_with("party (as of position 22)\n"), "{shown}");
    assert!(shown.contains("  name                 Libya\n"), "{shown}");
    assert!(shown.contains("  kind                 State\n"), "{shown}");
    let document = json(&uri, &["party", "show", "LBY"]).await;
    assert_eq!(document["party"]["name"], "Libya");
    assert_eq!(document["party"]["iso_alpha2"], "LY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn source_show_and_list_give_titles_and_dates() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let listed = run(&uri, &["source", "list"]).await;
    assert!(listed.starts_with("2 sources (as of position 22)\n"), "{listed}");
    assert!(
        listed.contains(&format!(
            "{REPORT}  2025-01-17  file:data/news-libya-france-benghazi.txt"
        )),
        "{listed}"
    );
    let document = json(&uri, &["source", "list"]).await;
    assert_eq!(document["sources"].as_array().unwrap().len(), 2);

    let shown = run(&uri, &["source", "show", REPORT]).await;
    assert!(shown.starts_with("source (as of position 22)\n"), "{shown}");
    assert!(
        shown.contains("file:data/news-libya-france-benghazi.txt"),
        "{shown}"
    );
    let document = json(&uri, &["source", "show", REPORT]).await;
    assert_eq!(document["source"]["source_id"], REPORT);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_list_and_contacts_give_names_and_posts_with_singulars_right() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let listed = run(&uri, &["official", "list", "--party", "FRA"]).await;
    assert_eq!(
        listed,
        format!("1 official (as of position 22)\n  {AMBASSADOR}  Mostafa Mihraje              Ambassador of France to Libya\n")
    );
    let document = json(&uri, &["official", "list", "--party", "FRA"]).await;
    assert_eq!(document["officials"][0]["name"], "Mostafa Mihraje");
    assert_eq!(document["officials"][0]["offices"][0]["accredited_to"], "LBY");

    let contacts = run(&uri, &["official", "contacts", AMBASSADOR]).await;
    assert!(
        contacts.starts_with("1 contact (as of position 22)\n"),
        "{contacts}"
    );
    assert!(
        contacts.contains("Ibrahim Bushnaf") && contacts.contains("National Security Adviser"),
        "{contacts}"
    );
    assert!(contacts.trim_end().ends_with("2 meetings"), "{contacts}");
    let document = json(&uri, &["official", "contacts", AMBASSADOR]).await;
    assert_eq!(document["contacts"][0]["meetings"], 2);
    assert_eq!(document["contacts"][0]["posts"][0], "National Security Adviser");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commitment_overdue_and_compliance_answer_in_words() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let overdue = run(&uri, &["commitment", "overdue", "--on", "2030-01-01"]).await;
    assert!(
        overdue.starts_with("1 overdue commitment (as of position 22)\n"),
        "{overdue}"
    );
    assert!(
        overdue.contains("Made         LBY,FRA  due 2025-03-16 hold a joint border-security workshop"),
        "{overdue}"
    );
    let document = json(&uri, &["commitment", "overdue", "--on", "2030-01-01"]).await;
    assert_eq!(document["commitments"].as_array().unwrap().len(), 1);
    assert_eq!(document["commitments"][0]["status"], "COMMITMENT_STATUS_MADE");
    let none = run(&uri, &["commitment", "overdue", "--on", "2025-01-01"]).await;
    assert_eq!(none, "0 overdue commitments (as of position 22)\n");

    let compliance = run(&uri, &["commitment", "compliance", "LBY"]).await;
    assert_eq!(
        compliance,
        "LBY (as of position 22)\n  0 assessed commitments, score sum +0 (each latest score -1, 0 or +1)\n"
    );
    let document = json(&uri, &["commitment", "compliance", "LBY"]).await;
    assert_eq!(document["party"], "LBY");
    assert_eq!(document["assessed_commitments"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listings_and_the_relation_give_statuses_in_words_dates_and_the_goldstein_line() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let meetings = run(&uri, &["meeting", "list", "--party", "LBY"]).await;
    assert!(meetings.contains("  Held         Benghazi"), "{meetings}");
    assert!(!meetings.contains("MEETING_STATUS_"), "{meetings}");
    let relation = run(&uri, &["relation", "LBY", "FRA"]).await;
    assert!(
        relation.contains(
            "  commitment Fulfilled    2025-02-21  reopen the consular section in Benghazi (due 2025-04-15)"
        ),
        "{relation}"
    );
    assert!(
        relation.contains("  meeting    Held         2025-01-15  Benghazi\n"),
        "{relation}"
    );
    assert!(
        relation.contains("  Goldstein by month: 2025-01 +10.0, 2025-02 +29.0\n"),
        "{relation}"
    );
    assert!(!relation.contains("_STATUS_"), "{relation}");
}
