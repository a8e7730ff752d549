//! `dipledger relation A B --svg FILE` through the real binary on the demo's ledger: the chart
//! names the parties, draws every meeting and commitment with a hover title, has a legend and
//! a footer, and renders (resvg) to a picture with marks in both panels.
//!
//! `DIPLEDGER_CHART_DOCS=1 cargo test --test it cli_chart` also writes the rendered example
//! kept in docs/ (docs/relation-chart.svg and .png).

use std::collections::BTreeSet;

use crate::support::api::Harness;

/// Runs the binary with `args` against `server`; its standard output and error (it must
/// succeed).
async fn run(server: &str, args: &[&str]) -> String {
    let output = crate::support::cli::dipledger_async(&[args, &["--server", server]].concat()).await;
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "{args:?}: {out}");
    out
}

/// The frame `<rect id=...>` of a panel: (x, y, width, height) in pixels.
fn panel(svg: &str, id: &str) -> (u32, u32, u32, u32) {
    let tag = svg
        .split(&format!(r#"<rect id="{id}""#))
        .nth(1)
        .unwrap_or_else(|| panic!("no {id} in {svg}"));
    let tag = tag.split("/>").next().unwrap();
    let value = |name: &str| -> u32 {
        let v = tag.split(&format!(r#" {name}=""#)).nth(1).unwrap();
        v.split('"').next().unwrap().parse::<f64>().unwrap() as u32
    };
    (value("x"), value("y"), value("width"), value("height"))
}

fn to_png(svg: &str) -> resvg::tiny_skia::Pixmap {
    let mut options = resvg::usvg::Options::default();
    options.fontdb_mut().load_system_fonts();
    let tree = resvg::usvg::Tree::from_str(svg, &options).expect("valid SVG");
    let size = tree.size().to_int_size();
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.width(), size.height()).unwrap();
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::default(),
        &mut pixmap.as_mut(),
    );
    pixmap
}

/// The distinct non-white colours inside a panel's frame.
fn colours_in(
    pixmap: &resvg::tiny_skia::Pixmap,
    (x, y, w, h): (u32, u32, u32, u32),
) -> BTreeSet<(u8, u8, u8)> {
    let mut colours = BTreeSet::new();
    for py in y + 2..y + h - 2 {
        for px in x + 2..x + w - 2 {
            let p = pixmap.pixel(px, py).unwrap();
            colours.insert((p.red(), p.green(), p.blue()));
        }
    }
    colours.remove(&(255, 255, 255));
    colours
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relation_chart_of_the_demo_ledger_is_a_briefing_chart() {
    let harness = Harness::start().await;
    let uri = harness.server.uri();
    run(&uri, &["demo"]).await;
    assert_eq!(harness.log.head(), 22);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lby-fra.svg");
    let said = run(&uri, &["relation", "LBY", "FRA", "--svg", path.to_str().unwrap()]).await;
    let svg = std::fs::read_to_string(&path).unwrap();
    assert!(
        said.contains(
            "(2 months of Goldstein sums, 3 meetings, 4 commitments, 2 sources, as of position 22)"
        ),
        "{said}"
    );
    assert!(
        svg.contains(">Libya (LBY) and France (FRA): meetings, commitments and Goldstein tone</text>"),
        "the title names both parties: {svg}"
    );
    for meeting in [
        "Meeting held: Benghazi on 2025-01-15",
        "Meeting held: Paris on 2025-02-21",
        "Meeting cancelled: Paris on 2025-03-16",
    ] {
        assert!(
            svg.contains(&format!("<title>{meeting}</title>")),
            "{meeting}: {svg}"
        );
    }
    assert_eq!(svg.matches(r#"<g class="meeting""#).count(), 3, "{svg}");
    assert!(
        svg.contains("made 2025-02-21; due 2025-04-15; fulfilled 2025-04-05</title>"),
        "{svg}"
    );
    assert!(
        svg.contains("made 2025-02-21; due 2025-03-01; lapsed 2025-03-06</title>"),
        "{svg}"
    );
    let legend: Vec<&str> = svg
        .split(r#"<g class="legend-entry">"#)
        .skip(1)
        .map(|entry| entry.split("</text>").next().unwrap().rsplit('>').next().unwrap())
        .collect();
    assert_eq!(
        legend,
        [
            "Meeting held",
            "Meeting cancelled",
            "Commitment, made to due",
            "Commitment, no due date",
            "Commitment fulfilled",
            "Commitment lapsed",
            "Goldstein mean per event"
        ],
        "one entry per state present (none scheduled or postponed in the demo)"
    );
    assert!(
        svg.contains("<title>2025-02: mean +7.2 over 4 events (sum +29.0)</title>"),
        "{svg}"
    );
    assert!(
        svg.contains(
            ">As of ledger position 22 (latest) · 2 sources cited by these meetings and commitments</text>"
        ),
        "the footer states the position and the sources: {svg}"
    );
    // As of an earlier position, the footer says so and the chart shows only what was recorded.
    let then = dir.path().join("then.svg");
    run(
        &uri,
        &[
            "relation",
            "LBY",
            "FRA",
            "--svg",
            then.to_str().unwrap(),
            "--as-of",
            "12",
        ],
    )
    .await;
    let then = std::fs::read_to_string(&then).unwrap();
    assert!(
        then.contains(">As of ledger position 12 (--as-of 12) · "),
        "{then}"
    );
    assert!(
        then.matches(r#"<g class="meeting""#).count() < 3,
        "not every meeting was recorded by position 12: {then}"
    );
    let pixmap = to_png(&svg);
    if std::env::var_os("DIPLEDGER_CHART_DOCS").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs");
        std::fs::write(docs.join("relation-chart.svg"), &svg).unwrap();
        pixmap.save_png(docs.join("relation-chart.png")).unwrap();
    }
    for id in ["goldstein-panel", "events-panel"] {
        let colours = colours_in(&pixmap, panel(&svg, id));
        assert!(colours.len() >= 3, "{id} looks blank: {colours:?}");
    }
}
