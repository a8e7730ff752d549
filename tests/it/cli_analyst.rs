//! The analyst's reading verbs through the real binary, on the demo's ledger (recorded with
//! `dipledger demo --server`, fixed ids): `party show|list`, `source show|list`, `official
//! list|contacts`, `commitment overdue|compliance`, in text (names, posts, statuses in words,
//! plural forms right) and `--json`.

use crate::support::api::Harness;

/// The demo's ids (src/cli/demo.rs, src/sample.rs).
const AMBASSADOR: &str = "00000000-0000-0000-0000-0000000000b1";
const REPORT: &str = "00000000-0000-0000-0000-000000000050";

/// Runs the binary with `args` against `server`; its standard output (it must succeed).
async fn run(server: &str, args: &[&str]) -> String {
    let output = crate::support::cli::dipledger_async(&[args, &["--server", server]].concat()).await;
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

/// Rows of a CSV text (RFC 4180 quoting), the header first.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                field.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (c, _) => field.push(c),
        }
    }
    rows
}

/// The column `name` of every data row.
fn column<'a>(rows: &'a [Vec<String>], name: &str) -> Vec<&'a str> {
    let index = rows[0].iter().position(|header| header == name).expect(name);
    rows[1..].iter().map(|row| row[index].as_str()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_tables_carry_iso_dates_words_and_unique_ids_for_pandas() {
    let harness = demo_ledger().await;
    let uri = harness.server.uri();
    let meetings = parse_csv(&run(&uri, &["csv", "meetings"]).await);
    assert_eq!(meetings[0].join(","), dipledger_meetings_header());
    assert_eq!(meetings.len(), 4, "a header and three meetings");
    assert!(meetings.iter().all(|row| row.len() == meetings[0].len()));
    let mut statuses = column(&meetings, "status");
    statuses.sort();
    assert_eq!(statuses, ["cancelled", "held", "held"]);
    assert!(column(&meetings, "date").contains(&"2025-01-15"));
    let ids = column(&meetings, "meeting_id");
    let mut unique = ids.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), ids.len(), "one row per meeting");

    let commitments = parse_csv(&run(&uri, &["csv", "commitments"]).await);
    assert_eq!(commitments.len(), 5, "a header and four commitments");
    assert!(column(&commitments, "due_by").contains(&"2025-04-15"));
    assert!(column(&commitments, "status").contains(&"fulfilled"));
    // A text with commas is one quoted field.
    assert!(column(&commitments, "text")
        .iter()
        .any(|text| text.contains("regional instability, promote peace")));
    // By valid time: only the commitments made from February on.
    let later = parse_csv(&run(&uri, &["csv", "commitments", "--from", "2025-02-01"]).await);
    assert_eq!(column(&later, "made_on"), ["2025-02-21"; 3]);

    let parties = parse_csv(&run(&uri, &["csv", "parties"]).await);
    assert_eq!(
        parties[0].join(","),
        "code,name,kind,iso_alpha2,iso_alpha3,wikidata_qid,cameo_code"
    );
    let mut codes = column(&parties, "code");
    codes.sort();
    assert_eq!(codes, ["FRA", "LBY"]);
    assert_eq!(column(&parties, "kind"), ["state", "state"]);
}

fn dipledger_meetings_header() -> &'static str {
    "meeting_id,status,date,date_precision,planned_start,planned_end,place,country,parties,participants,topics,summary,stream_version"
}
