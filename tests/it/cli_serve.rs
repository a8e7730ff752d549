//! `dipledger serve` as a process: its log lines (text and JSON, filtered by `RUST_LOG`, one
//! line per request at debug), the start-up banner with absolute paths.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;

use crate::support::api::{within, TIMEOUT};
use dipledger::api::pb;
use dipledger::api::pb::query_service_client::QueryServiceClient;

/// A `dipledger serve` child on a free loopback port, its standard error read line by line.
pub struct Served {
    child: Child,
    pub uri: String,
    /// Every line of standard error so far (the banner included).
    pub lines: Vec<String>,
    more: mpsc::Receiver<String>,
}

impl Served {
    /// Starts `serve` in `cwd` with `args` (and `--listen 127.0.0.1:0` unless they listen) and `env`, and
    /// waits for the banner's address.
    pub fn start(cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Served {
        let mut command = Command::new(env!("CARGO_BIN_EXE_dipledger"));
        command.arg("serve");
        if !args.contains(&"--listen") {
            command.args(["--listen", "127.0.0.1:0"]);
        }
        command
            .args(args)
            .current_dir(cwd)
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (name, value) in env {
            command.env(name, value);
        }
        let mut child = command.spawn().expect("start dipledger serve");
        let stderr = child.stderr.take().expect("stderr");
        let (sender, more) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if sender.send(line).is_err() {
                    break;
                }
            }
        });
        let mut lines = Vec::new();
        let address = loop {
            let line = more
                .recv_timeout(TIMEOUT)
                .expect("the server printed its address");
            let address = line
                .split("listening on ")
                .nth(1)
                .map(|rest| rest.split_whitespace().next().expect("address").to_owned());
            lines.push(line);
            if let Some(address) = address {
                break address;
            }
        };
        Served {
            child,
            uri: format!("http://{address}"),
            lines,
            more,
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits (at most [`TIMEOUT`]) for a line of standard error holding `needle`; returns it.
    pub fn wait_for_line(&mut self, needle: &str) -> String {
        loop {
            let line = self
                .more
                .recv_timeout(TIMEOUT)
                .unwrap_or_else(|_| panic!("no line with {needle:?} in {:?}", self.lines));
            self.lines.push(line.clone());
            if line.contains(needle) {
                return line;
            }
        }
    }

    /// Stops the server with SIGINT and returns every line it wrote.
    pub fn stop(mut self) -> Vec<String> {
        // SAFETY: kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let status = self.child.wait().expect("wait for the server");
        assert!(status.success(), "{status:?}");
        self.lines.extend(self.more.try_iter());
        while let Ok(line) = self.more.recv_timeout(TIMEOUT) {
            self.lines.push(line);
        }
        self.lines
    }
}

/// One GetParty call (NOT_FOUND on an empty ledger).
async fn get_party(uri: &str) -> tonic::Status {
    let mut client = QueryServiceClient::connect(uri.to_owned())
        .await
        .expect("connect");
    within(
        "GetParty",
        client.get_party(pb::GetPartyRequest {
            code: "LBY".into(),
            ..Default::default()
        }),
    )
    .await
    .expect_err("no party yet")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_carry_one_line_per_request_at_debug_with_principal_status_and_latency() {
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(
        work.path(),
        &["--data-dir", "data", "--log-format", "json"],
        &[("RUST_LOG", "info,dipledger::request=debug")],
    );
    assert_eq!(get_party(&served.uri).await.code(), tonic::Code::NotFound);
    let lines = tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
    // The banner stays, with the data directory as an absolute path.
    let absolute = std::fs::canonicalize(work.path().join("data")).unwrap();
    let banner = format!(
        "dipledger: data directory {}, head position 0",
        absolute.display()
    );
    assert!(lines.iter().any(|line| line.starts_with(&banner)), "{lines:#?}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("a JSON log line"))
        .collect();
    let request = events
        .iter()
        .find(|event| event["fields"]["method"] == "/dipledger.v1.QueryService/GetParty")
        .unwrap_or_else(|| panic!("no line for the request: {lines:#?}"));
    assert_eq!(request["level"], "DEBUG");
    assert_eq!(request["target"], "dipledger::request");
    assert_eq!(request["fields"]["status"], "NOT_FOUND");
    assert_eq!(request["fields"]["principal"], "-", "development mode");
    assert!(request["fields"]["latency_ms"].as_f64().unwrap() >= 0.0);
    let timestamp = request["timestamp"].as_str().expect("a timestamp");
    assert!(
        timestamp.starts_with("20") && timestamp.ends_with('Z'),
        "{timestamp}"
    );
    // Info lines pass the filter too: the read models' replay at start.
    assert!(events.iter().any(
        |event| event["level"] == "INFO" && event["fields"]["message"] == "read models replayed the log"
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_follow_rust_log_and_leave_requests_out_at_the_default_level() {
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(work.path(), &["--data-dir", "data"], &[]);
    get_party(&served.uri).await;
    let lines = tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
    let replayed = lines
        .iter()
        .find(|line| line.contains("read models replayed the log"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    // `<timestamp>  INFO <target>: <message> <fields>`
    let mut words = replayed.split_whitespace();
    assert!(words.next().unwrap().ends_with('Z'), "{replayed}");
    assert_eq!(words.next(), Some("INFO"), "{replayed}");
    assert!(
        !lines.iter().any(|line| line.contains("dipledger::request")),
        "requests are debug lines: {lines:#?}"
    );
    // RUST_LOG selects them.
    let served = Served::start(
        work.path(),
        &["--data-dir", "data"],
        &[("RUST_LOG", "warn,dipledger::request=debug")],
    );
    get_party(&served.uri).await;
    let lines = tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
    let request = lines
        .iter()
        .find(|line| line.contains("dipledger::request"))
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert!(request.contains(" DEBUG "), "{request}");
    assert!(
        request.contains("method=/dipledger.v1.QueryService/GetParty")
            && request.contains("status=\"NOT_FOUND\""),
        "{request}"
    );
    assert!(
        !lines.iter().any(|line| line.contains("read models replayed")),
        "info filtered out at warn: {lines:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_request_line_names_the_authenticated_principal() {
    use dipledger::auth::tokens;
    use dipledger::auth::Role;
    use dipledger::log::{Clock, SystemClock};

    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    std::fs::create_dir(&data).unwrap();
    let mut secret = String::new();
    tokens::update(&data, |file| {
        secret = file
            .create("desk-analyst", &[Role::Reader], None, SystemClock.now())?
            .1;
        Ok(())
    })
    .unwrap();
    let served = Served::start(
        work.path(),
        &["--data-dir", "data", "--log-format", "json"],
        &[("RUST_LOG", "warn,dipledger::request=debug")],
    );
    let mut client = QueryServiceClient::connect(served.uri.clone()).await.unwrap();
    let mut request = tonic::Request::new(pb::GetPartyRequest {
        code: "LBY".into(),
        ..Default::default()
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {secret}").parse().unwrap());
    let status = within("GetParty", client.get_party(request)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    let lines = tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
    let request: serde_json::Value = lines
        .iter()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .find(|event| event["fields"]["method"] == "/dipledger.v1.QueryService/GetParty")
        .unwrap_or_else(|| panic!("{lines:#?}"));
    assert_eq!(request["fields"]["principal"], "desk-analyst");
    assert_eq!(request["fields"]["status"], "NOT_FOUND");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_name_is_resolved_to_listen_on_localhost() {
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(
        work.path(),
        &["--data-dir", "data", "--listen", "localhost:0"],
        &[],
    );
    assert!(served.uri.starts_with("http://127.0.0.1:"), "{}", served.uri);
    assert_eq!(get_party(&served.uri).await.code(), tonic::Code::NotFound);
    tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
}

/// Runs `dipledger serve` with `args` to its end (a start that fails).
fn serve_fails(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .arg("serve")
        .args(args)
        .output()
        .expect("run dipledger serve");
    assert_eq!(output.status.code(), Some(1));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_failed_serve_leaves_no_data_directory_behind_and_keeps_an_existing_one() {
    let work = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().to_string();
    // The address is taken: the log was opened (creating the directory), then the bind failed.
    let fresh = work.path().join("fresh");
    let stderr = serve_fails(&["--listen", &port, "--data-dir", fresh.to_str().unwrap()]);
    assert!(
        stderr.contains(&format!("error: listening on {port}")),
        "{stderr}"
    );
    assert!(!fresh.exists(), "the directory this start created is gone");
    // Refused before anything is opened: a non-loopback address without TLS.
    let stderr = serve_fails(&["--listen", "0.0.0.0:0", "--data-dir", fresh.to_str().unwrap()]);
    assert!(stderr.contains("refusing to listen on 0.0.0.0:0"), "{stderr}");
    assert!(!fresh.exists());
    // A directory that existed before stays, with what it held.
    let existing = work.path().join("existing");
    std::fs::create_dir(&existing).unwrap();
    std::fs::write(existing.join("notes.txt"), "mine").unwrap();
    serve_fails(&["--listen", &port, "--data-dir", existing.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(existing.join("notes.txt")).unwrap(),
        "mine"
    );
    drop(taken);
}

/// Records `count` sources through the server at `uri`.
async fn record_sources(uri: &str, titles: std::ops::Range<u32>) {
    let mut commands = pb::command_service_client::CommandServiceClient::connect(uri.to_owned())
        .await
        .expect("connect");
    for index in titles {
        within(
            "record",
            commands.register_source(crate::support::commands::register_source(&format!(
                "Report {index}"
            ))),
        )
        .await
        .expect("recorded");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_resumes_across_a_server_restart_and_json_carries_the_event_body() {
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(work.path(), &["--data-dir", "data"], &[]);
    let uri = served.uri.clone();
    let address = uri.trim_start_matches("http://").to_owned();
    record_sources(&uri, 0..3).await;
    let mut tail = Command::new(env!("CARGO_BIN_EXE_dipledger"))
        .args([
            "tail", "--from", "start", "--json", "--limit", "6", "--server", &uri,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start tail");
    let (sender, printed) = mpsc::channel();
    let stdout = tail.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = sender.send(line);
        }
    });
    let mut lines: Vec<String> = (0..3)
        .map(|_| {
            printed
                .recv_timeout(TIMEOUT)
                .expect("an event before the restart")
        })
        .collect();
    // Stopped: tail's subscription ends; started again on the same address and directory.
    tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
    let restarted = Served::start(work.path(), &["--data-dir", "data", "--listen", &address], &[]);
    record_sources(&restarted.uri, 3..6).await;
    lines.extend((0..3).map(|_| printed.recv_timeout(TIMEOUT).expect("an event after the restart")));
    let status = tokio::task::spawn_blocking(move || tail.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "tail ends after --limit 6: {status:?}");
    let events: Vec<serde_json::Value> = lines
        .iter()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let positions: Vec<u64> = events
        .iter()
        .map(|event| event["position"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, [1, 2, 3, 4, 5, 6], "nothing skipped or repeated");
    for (index, event) in events.iter().enumerate() {
        assert_eq!(event["event_type"], "SourceRegistered");
        // The typed event, in the proto3 JSON mapping (lowerCamelCase fields).
        let body = &event["event"]["sourceRegistered"];
        assert_eq!(body["details"]["title"], format!("Report {index}"), "{event}");
    }
    tokio::task::spawn_blocking(move || restarted.stop())
        .await
        .unwrap();
}

#[test]
fn a_log_cache_outside_its_bounds_is_refused_naming_the_flag() {
    let work = tempfile::tempdir().unwrap();
    let data = work.path().join("data");
    for size in ["7MiB", "17GiB", "lots"] {
        let output = Command::new(env!("CARGO_BIN_EXE_dipledger"))
            .args(["serve", "--log-cache", size, "--data-dir", data.to_str().unwrap()])
            .output()
            .expect("run dipledger serve");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{stderr}");
        assert!(stderr.contains("--log-cache"), "{stderr}");
        assert!(stderr.contains("8 MiB to 16 GiB") || size == "lots", "{stderr}");
        assert!(!data.exists(), "nothing is opened before the flags are checked");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_runs_with_the_smallest_log_cache() {
    let work = tempfile::tempdir().unwrap();
    let served = Served::start(
        work.path(),
        &[
            "--data-dir",
            "data",
            "--listen",
            "127.0.0.1:0",
            "--log-cache",
            "8MiB",
        ],
        &[],
    );
    record_sources(&served.uri, 0..50).await;
    assert_eq!(get_party(&served.uri).await.code(), tonic::Code::NotFound);
    tokio::task::spawn_blocking(move || served.stop()).await.unwrap();
}
