//! `dipledger-bench workloads --target URI`: a load generator that drives a running server over gRPC and
//! reports each workload (bounded in count and in time) as JSON and as a table.
//!
//! Entities are parties `B0000`..; each command is a `CorrectParty` (one event, a row that does
//! not grow), naming the version whose details are in effect, so any number of commands can go
//! to one entity.
//!
//! - W1: 1 client, one event per request.
//! - W2: 16 clients, one event per request, over 1,000 entities.
//! - W3: 4 clients, `SubmitBatch` of 100 commands to one entity (`--w3-spread`: to 100).
//! - W4: replay of the whole log through `ReadAll` pages.
//! - W5: a subscriber's delivery latency while one writer appends 2,000 events/s: from the
//!   writer's acknowledgement to the subscriber's receipt (0 when the event arrived first).
//! - W6: 8 clients race `expected_version` on one entity; afterwards the entity's versions must
//!   be dense and unique and every acknowledged command present.
//!
//! Longer than ~600 lines because it holds six workloads, each with its load, its checks and its
//! report, and the live-subscriber harness they share; they are read and changed together.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde::Serialize;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;

use dipledger::api::pb;
use dipledger::api::pb::command_service_client::CommandServiceClient;
use dipledger::api::pb::event_store_service_client::EventStoreServiceClient;

/// Entities the workloads write to.
pub const ENTITIES: usize = 1_000;
/// Requests W5's writer keeps in flight at most.
pub const W5_IN_FLIGHT: usize = 16;
/// Longest any one workload runs before it stops and reports what it did.
pub const WORKLOAD_TIME_LIMIT: Duration = Duration::from_secs(60);

/// How big to make each workload.
#[derive(Debug, Clone, clap::Args)]
pub struct LoadConfig {
    /// The server to drive.
    #[arg(long, env = "DIPLEDGER_SERVER", default_value = "http://127.0.0.1:50051")]
    pub target: String,
    /// A bearer token to send (a server with authentication on).
    #[arg(long, env = "DIPLEDGER_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// The CA (PEM) of an https:// target.
    #[arg(long)]
    pub ca_cert: Option<std::path::PathBuf>,
    /// W1 requests.
    #[arg(long = "w1", default_value_t = 2_000)]
    pub w1_requests: usize,
    /// W2 requests (all clients together).
    #[arg(long = "w2", default_value_t = 20_000)]
    pub w2_requests: usize,
    /// W3 batches of 100 (all clients together).
    #[arg(long = "w3", default_value_t = 400)]
    pub w3_batches: usize,
    /// W3 sends each batch's 100 commands to 100 entities instead of one (the shape measured
    /// as W3 until 2026-12-04).
    #[arg(long)]
    pub w3_spread: bool,
    /// W5 events (appended at 2,000/s).
    #[arg(long = "w5", default_value_t = 4_000)]
    pub w5_events: usize,
    /// W6 successful commands.
    #[arg(long = "w6", default_value_t = 1_000)]
    pub w6_successes: usize,
    /// Idle subscribers held open during the run (memory check).
    #[arg(long = "subscribers", default_value_t = 0)]
    pub idle_subscribers: usize,
    /// Live subscribers, each on its own connection, reading every event from the head on
    /// during the whole run (checked to receive everything).
    #[arg(long, default_value_t = 0)]
    pub live_subscribers: usize,
    /// Only replay the log already there (W4, typed and raw), writing nothing: for repeated
    /// measurements of the read path on one server.
    #[arg(long)]
    pub replay_only: bool,
    /// The server's pid, to report its peak RSS (Linux).
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// One workload's result.
#[derive(Debug, Clone, Serialize)]
pub struct LoadResult {
    /// W1..W6 and a description.
    pub name: String,
    /// Events written or read.
    pub events: u64,
    /// Wall time in seconds.
    pub seconds: f64,
    /// Events per second.
    pub events_per_second: f64,
    /// Median latency (µs) of a request, or of delivery for W5.
    pub p50_micros: f64,
    /// 99th percentile latency (µs).
    pub p99_micros: f64,
    /// Anything else worth saying (conflicts, checks).
    pub note: String,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    /// Results in order.
    pub workloads: Vec<LoadResult>,
    /// Log head at the end.
    pub head: u64,
    /// Peak RSS of the server in MiB, if its pid was given.
    pub server_peak_rss_mib: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e6
}

fn result(name: &str, events: u64, seconds: f64, mut latencies: Vec<Duration>, note: String) -> LoadResult {
    latencies.sort_unstable();
    LoadResult {
        name: name.into(),
        events,
        seconds,
        events_per_second: events as f64 / seconds.max(1e-9),
        p50_micros: percentile(&latencies, 0.50),
        p99_micros: percentile(&latencies, 0.99),
        note,
    }
}

fn day() -> pb::OccurredAt {
    pb::OccurredAt {
        at: Some(prost_types::Timestamp {
            seconds: 1_736_899_200,
            nanos: 0,
        }),
        precision: pb::Precision::Day as i32,
    }
}

fn party_code(index: usize) -> String {
    format!("B{index:04}")
}

fn details(name: String) -> Option<pb::PartyDetails> {
    Some(pb::PartyDetails {
        kind: pb::PartyKind::State as i32,
        name,
        ..Default::default()
    })
}

/// The entities and what each client knows of their versions.
struct World {
    source_id: String,
    versions: Mutex<HashMap<String, u64>>,
}

impl World {
    fn correction(&self, code: &str, expected: Option<u64>) -> pb::CorrectPartyRequest {
        let version = self.versions.lock().expect("versions")[code];
        pb::CorrectPartyRequest {
            header: Some(pb::CommandHeader {
                expected_version: expected,
                ..pb::CommandHeader::with_provenance(day(), vec![pb::SourceCitation::of(&self.source_id)])
            }),
            code: code.to_owned(),
            corrects_version: version,
            reason: "load test".into(),
            details: details(format!("Party {code} v{}", version + 1)),
        }
    }

    /// A correction of the version `later` corrections after the one this client knows.
    fn correction_after(&self, code: &str, later: u64) -> pb::CorrectPartyRequest {
        let mut correction = self.correction(code, None);
        correction.corrects_version += later;
        correction
    }

    fn recorded(&self, code: &str, version: u64) {
        self.versions
            .lock()
            .expect("versions")
            .insert(code.to_owned(), version);
    }
}

/// The token and CA of the run (`--token`, `--ca-cert`), set once before any connection.
static CREDENTIALS: std::sync::OnceLock<Credentials> = std::sync::OnceLock::new();

/// The `authorization` value to send, and the CA of an https target.
type Credentials = (
    Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>,
    Option<Vec<u8>>,
);

/// Adds the run's bearer token to every call.
#[derive(Debug, Clone, Copy)]
pub struct Bearer;

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some((Some(token), _)) = CREDENTIALS.get() {
            request.metadata_mut().insert("authorization", token.clone());
        }
        Ok(request)
    }
}

/// A connection of the load generator: TLS when the CA is given, the token on every call.
pub type Conn = InterceptedService<Channel, Bearer>;

/// Reads `--token` and `--ca-cert` once.
fn set_credentials(config: &LoadConfig) -> anyhow::Result<()> {
    let token = config
        .token
        .as_deref()
        .map(|token| format!("Bearer {token}").parse())
        .transpose()
        .context("--token is not a token")?;
    let ca = config
        .ca_cert
        .as_deref()
        .map(|path| std::fs::read(path).with_context(|| format!("--ca-cert {}", path.display())))
        .transpose()?;
    let _ = CREDENTIALS.set((token, ca));
    Ok(())
}

/// HTTP/2 flow-control windows and largest frame this client accepts: room for the replay's
/// read-ahead pages in flight at once (hyper's defaults, 5 MiB and 2 MiB, hold about one; a raw
/// page of 4,096 events is ~1.2 MB), and pages sent in frames of up to 1 MiB instead of 16 KiB.
const REPLAY_CONNECTION_WINDOW: u32 = 64 * 1024 * 1024;
const REPLAY_STREAM_WINDOW: u32 = 16 * 1024 * 1024;
const REPLAY_MAX_FRAME: u32 = 1024 * 1024;

async fn connect(target: &str) -> anyhow::Result<Conn> {
    let mut endpoint = Channel::from_shared(target.to_owned())?
        .connect_timeout(Duration::from_secs(10))
        .initial_connection_window_size(REPLAY_CONNECTION_WINDOW)
        .initial_stream_window_size(REPLAY_STREAM_WINDOW)
        .max_frame_size(REPLAY_MAX_FRAME);
    if let Some((_, Some(ca))) = CREDENTIALS.get() {
        let tls = tonic::transport::ClientTlsConfig::new()
            .ca_certificate(tonic::transport::Certificate::from_pem(ca));
        endpoint = endpoint.tls_config(tls)?;
    }
    let channel = endpoint
        .connect()
        .await
        .with_context(|| format!("connecting to {target}"))?;
    Ok(InterceptedService::new(channel, Bearer))
}

async fn set_up(channel: Conn) -> anyhow::Result<World> {
    let mut commands = CommandServiceClient::new(channel);
    let source = commands
        .register_source(pb::RegisterSourceRequest {
            header: Some(pb::CommandHeader::fresh()),
            details: Some(pb::SourceDetails {
                url: Some("https://example.org/load-test".into()),
                retrieved_at: Some(prost_types::Timestamp {
                    seconds: 1_736_899_200,
                    nanos: 0,
                }),
                language: "en".into(),
                ..Default::default()
            }),
            ..Default::default()
        })
        .await?
        .into_inner();
    let world = World {
        source_id: source.source_id,
        versions: Mutex::new(HashMap::new()),
    };
    for chunk in (0..ENTITIES).collect::<Vec<_>>().chunks(100) {
        let batch = chunk
            .iter()
            .map(|index| pb::BatchCommand {
                command: Some(pb::batch_command::Command::RegisterParty(
                    pb::RegisterPartyRequest {
                        header: Some(pb::CommandHeader::with_provenance(
                            day(),
                            vec![pb::SourceCitation::of(&world.source_id)],
                        )),
                        code: party_code(*index),
                        details: details(format!("Party {}", party_code(*index))),
                    },
                )),
            })
            .collect();
        let results = commands
            .submit_batch(pb::SubmitBatchRequest { commands: batch })
            .await?
            .into_inner();
        for (index, result) in chunk.iter().zip(results.results) {
            world.recorded(
                &party_code(*index),
                result.result.as_ref().expect("result").stream_version,
            );
        }
    }
    Ok(world)
}

/// `clients` tasks sending single corrections round-robin over their share of the entities.
async fn singles(
    target: &str,
    world: &Arc<World>,
    name: &str,
    clients: usize,
    requests: usize,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let channel = connect(target).await?;
        let world = world.clone();
        let share = requests / clients;
        tasks.push(tokio::spawn(async move {
            let mut commands = CommandServiceClient::new(channel);
            let mut latencies = Vec::with_capacity(share);
            let entities: Vec<String> = (client..ENTITIES).step_by(clients).map(party_code).collect();
            for i in 0..share {
                if started.elapsed() > WORKLOAD_TIME_LIMIT {
                    break;
                }
                let code = &entities[i % entities.len()];
                let request = world.correction(code, None);
                let begun = Instant::now();
                let response = commands.correct_party(request).await?.into_inner();
                latencies.push(begun.elapsed());
                world.recorded(code, response.result.unwrap_or_default().stream_version);
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let events = latencies.len() as u64;
    Ok(result(
        name,
        events,
        started.elapsed().as_secs_f64(),
        latencies,
        format!("{clients} clients"),
    ))
}

/// W3: `clients` clients each send `SubmitBatch`es of 100 commands, one at a time. Each batch
/// goes to one entity (100 corrections in a row, as the peers' W3 appends 100 events to one
/// stream), the client's entities in turn; `spread` sends each batch's commands to 100
/// different entities instead (100 stream-index entries per batch rather than one).
async fn batches(
    target: &str,
    world: &Arc<World>,
    clients: usize,
    batches: usize,
    spread: bool,
) -> anyhow::Result<LoadResult> {
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..clients {
        let channel = connect(target).await?;
        let world = world.clone();
        let share = batches / clients;
        tasks.push(tokio::spawn(async move {
            let mut commands = CommandServiceClient::new(channel);
            let mut latencies = Vec::with_capacity(share);
            let entities: Vec<String> = (client..ENTITIES).step_by(clients).map(party_code).collect();
            for i in 0..share {
                if started.elapsed() > WORKLOAD_TIME_LIMIT {
                    break;
                }
                let codes: Vec<&String> = match spread {
                    true => (0..100)
                        .map(|k| &entities[(i * 100 + k) % entities.len()])
                        .collect(),
                    false => vec![&entities[i % entities.len()]; 100],
                };
                let batch = codes
                    .iter()
                    .enumerate()
                    .map(|(k, code)| pb::BatchCommand {
                        command: Some(pb::batch_command::Command::CorrectParty(
                            // On one entity the k-th correction corrects the one before it.
                            world.correction_after(code, if spread { 0 } else { k as u64 }),
                        )),
                    })
                    .collect();
                let begun = Instant::now();
                let response = commands
                    .submit_batch(pb::SubmitBatchRequest { commands: batch })
                    .await?
                    .into_inner();
                latencies.push(begun.elapsed());
                for (code, result) in codes.iter().zip(response.results) {
                    world.recorded(code, result.result.as_ref().expect("result").stream_version);
                }
            }
            anyhow::Ok(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        latencies.extend(task.await??);
    }
    let events = latencies.len() as u64 * 100;
    Ok(result(
        match spread {
            true => "W3 4 clients x batches of 100, spread",
            false => "W3 4 clients x batches of 100",
        },
        events,
        started.elapsed().as_secs_f64(),
        latencies,
        "latency per batch".into(),
    ))
}

/// Pages of an unfiltered replay requested ahead of the one being read: an unfiltered ReadAll page
/// of `REPLAY_PAGE_EVENTS` from position p ends at p + REPLAY_PAGE_EVENTS unless its bytes cut it
/// short, so the next pages can be asked for before the answer (the server reads page k+1 while
/// the client decodes page k); a page that ends elsewhere discards the guesses. 7 rather than 3:
/// the two cores then never wait for each other (raw +4-7%; 15 gained nothing: benchmarks 000y).
const REPLAY_READ_AHEAD: usize = 7;
const REPLAY_PAGE_EVENTS: u32 = 4_096;

async fn replay(channel: Conn, omit_typed_body: bool) -> anyhow::Result<(LoadResult, u64)> {
    let store = EventStoreServiceClient::new(channel).max_decoding_message_size(64 * 1024 * 1024);
    let request_page = |position: u64| {
        let mut store = store.clone();
        tokio::spawn(async move {
            store
                .read_all(pb::ReadAllRequest {
                    from_position: Some(position),
                    direction: pb::Direction::Forwards as i32,
                    limit: REPLAY_PAGE_EVENTS,
                    filter: None,
                    omit_typed_body,
                    include_leaf_input: false,
                })
                .await
                .map(tonic::Response::into_inner)
        })
    };
    let started = Instant::now();
    let mut events = 0u64;
    let mut in_flight = std::collections::VecDeque::new();
    let mut next_guess = 1u64;
    let head = loop {
        while in_flight.len() <= REPLAY_READ_AHEAD {
            in_flight.push_back((next_guess, request_page(next_guess)));
            next_guess += u64::from(REPLAY_PAGE_EVENTS);
        }
        let (_, page) = in_flight.pop_front().expect("a page in flight");
        let page = page.await??;
        events += page.events.len() as u64;
        if page.reached_end || started.elapsed() > WORKLOAD_TIME_LIMIT {
            break page.head;
        }
        if in_flight
            .front()
            .is_none_or(|(position, _)| *position != page.next_position)
        {
            for (_, guess) in in_flight.drain(..) {
                guess.abort();
            }
            next_guess = page.next_position;
        }
    };
    Ok((
        result(
            if omit_typed_body {
                "W4 replay through ReadAll, raw"
            } else {
                "W4 replay through ReadAll"
            },
            events,
            started.elapsed().as_secs_f64(),
            Vec::new(),
            String::new(),
        ),
        head,
    ))
}

/// The whole log through a subscription from the start, raw, until it reports CaughtUp.
async fn replay_by_subscription(channel: Conn) -> anyhow::Result<LoadResult> {
    let mut store = EventStoreServiceClient::new(channel);
    let started = Instant::now();
    let mut stream = store
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::FromStart(pb::SubscribeFromStart {})),
            filter: None,
            omit_typed_body: true,
        })
        .await?
        .into_inner();
    let mut events = 0u64;
    let mut last = 0u64;
    while let Some(answer) = stream.message().await? {
        match answer.message {
            Some(pb::subscribe_response::Message::Event(event)) => {
                if event.position != last + 1 {
                    bail!("subscription replay: position {} after {last}", event.position);
                }
                last = event.position;
                events += 1;
            }
            Some(pb::subscribe_response::Message::CaughtUp(_)) => break,
            _ => {}
        }
        if started.elapsed() > WORKLOAD_TIME_LIMIT {
            break;
        }
    }
    Ok(result(
        "W4 replay through Subscribe, raw",
        events,
        started.elapsed().as_secs_f64(),
        Vec::new(),
        String::new(),
    ))
}

async fn delivery_latency(target: &str, world: &Arc<World>, events: usize) -> anyhow::Result<LoadResult> {
    let mut store = EventStoreServiceClient::new(connect(target).await?);
    let mut stream = store
        .subscribe(pb::SubscribeRequest {
            start: Some(pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {})),
            filter: Some(pb::EventFilter {
                event_types: vec!["PartyCorrected".into()],
                ..Default::default()
            }),
            omit_typed_body: false,
        })
        .await?
        .into_inner();
    // Wait for CaughtUp so the subscription is live before writing.
    loop {
        match stream.message().await?.and_then(|message| message.message) {
            Some(pb::subscribe_response::Message::CaughtUp(_)) => break,
            Some(_) => continue,
            None => bail!("the subscription ended before it caught up"),
        }
    }
    let acknowledged: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let received: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let reader = {
        let received = received.clone();
        tokio::spawn(async move {
            let mut count = 0;
            while count < events {
                match stream.message().await {
                    Ok(Some(pb::SubscribeResponse {
                        message: Some(pb::subscribe_response::Message::Event(event)),
                    })) => {
                        received
                            .lock()
                            .expect("received")
                            .insert(event.command_id.clone(), Instant::now());
                        count += 1;
                    }
                    Ok(Some(_)) => {}
                    _ => break,
                }
            }
        })
    };
    // One writer at 2,000 events/s: a request every 500 µs, sent without waiting for the previous
    // answer (a durable commit takes longer than 500 µs), at most W5_IN_FLIGHT at a time.
    let commands = CommandServiceClient::new(connect(target).await?);
    let in_flight = Arc::new(tokio::sync::Semaphore::new(W5_IN_FLIGHT));
    let started = Instant::now();
    let mut pace = tokio::time::interval(Duration::from_micros(500));
    let mut sent = Vec::with_capacity(events);
    for i in 0..events {
        pace.tick().await;
        if started.elapsed() > WORKLOAD_TIME_LIMIT {
            break;
        }
        let permit = in_flight.clone().acquire_owned().await?;
        // Entity i % ENTITIES is touched again only ENTITIES requests later, long after this
        // answer, so the version named here is current.
        let code = party_code(i % ENTITIES);
        let request = world.correction(&code, None);
        let (mut commands, world, acknowledged) = (commands.clone(), world.clone(), acknowledged.clone());
        sent.push(tokio::spawn(async move {
            let command_id = request.header.as_ref().expect("header").command_id.clone();
            let response = commands.correct_party(request).await?.into_inner();
            acknowledged
                .lock()
                .expect("acknowledged")
                .insert(command_id, Instant::now());
            world.recorded(&code, response.result.unwrap_or_default().stream_version);
            drop(permit);
            anyhow::Ok(())
        }));
    }
    for request in sent {
        request.await??;
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), reader).await;
    let seconds = started.elapsed().as_secs_f64();
    let acknowledged = acknowledged.lock().expect("acknowledged");
    let received = received.lock().expect("received");
    let latencies: Vec<Duration> = acknowledged
        .iter()
        .filter_map(|(id, acked)| received.get(id).map(|got| got.saturating_duration_since(*acked)))
        .collect();
    let note = format!(
        "{} of {} acknowledged events delivered",
        latencies.len(),
        acknowledged.len()
    );
    Ok(result(
        "W5 delivery latency at 2,000 events/s",
        latencies.len() as u64,
        seconds,
        latencies,
        note,
    ))
}

async fn race(
    target: &str,
    world: &Arc<World>,
    clients: usize,
    successes: usize,
) -> anyhow::Result<LoadResult> {
    let code = party_code(0);
    let initial = world.versions.lock().expect("versions")[&code];
    let started = Instant::now();
    let won = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let mut commands = CommandServiceClient::new(connect(target).await?);
        let (world, won, code) = (world.clone(), won.clone(), code.clone());
        tasks.push(tokio::spawn(async move {
            let (mut mine, mut conflicts, mut latencies) = (Vec::new(), 0u64, Vec::new());
            let mut known = world.versions.lock().expect("versions")[&code];
            while won.load(std::sync::atomic::Ordering::Relaxed) < successes
                && started.elapsed() < WORKLOAD_TIME_LIMIT
            {
                let mut request = world.correction(&code, Some(known));
                request.corrects_version = known;
                let begun = Instant::now();
                match commands.correct_party(request).await {
                    Ok(response) => {
                        latencies.push(begun.elapsed());
                        let version = response.into_inner().result.unwrap_or_default().stream_version;
                        if version != known + 1 {
                            bail!("won at version {version} after expecting {known}");
                        }
                        known = version;
                        mine.push(known);
                        won.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    Err(status) if status.code() == tonic::Code::Aborted => {
                        use tonic_types::StatusExt;
                        conflicts += 1;
                        let current = status
                            .get_details_error_info()
                            .and_then(|info| info.metadata.get("current_version").cloned())
                            .and_then(|value| value.parse().ok())
                            .context("ABORTED without current_version")?;
                        if current <= known {
                            bail!("a conflict reported version {current}, not newer than {known}");
                        }
                        known = current;
                    }
                    Err(status) => return Err(status.into()),
                }
            }
            Ok((mine, conflicts, latencies))
        }));
    }
    let (mut versions, mut conflicts, mut latencies) = (Vec::new(), 0, Vec::new());
    for task in tasks {
        let (mine, lost, times) = task.await??;
        versions.extend(mine);
        conflicts += lost;
        latencies.extend(times);
    }
    let seconds = started.elapsed().as_secs_f64();
    versions.sort_unstable();
    let expected: Vec<u64> = (initial + 1..=initial + versions.len() as u64).collect();
    if versions != expected {
        bail!("W6: won versions are not dense and unique");
    }
    // Every acknowledged command is in the stream, and nothing else was written to it.
    let mut store =
        EventStoreServiceClient::new(connect(target).await?).max_decoding_message_size(64 * 1024 * 1024);
    let stream = store
        .read_stream(pb::ReadStreamRequest {
            stream_id: format!("party-{code}"),
            from_version: Some(initial + 1),
            direction: pb::Direction::Forwards as i32,
            limit: dipledger::log::limits::MAX_READ_PAGE_EVENTS as u32,
            omit_typed_body: false,
            include_leaf_input: false,
        })
        .await?
        .into_inner();
    let stored: Vec<u64> = stream.events.iter().map(|event| event.stream_version).collect();
    if stored.len() < versions.len() || stored[..versions.len()] != expected[..] {
        bail!("W6: the stream does not hold exactly the acknowledged versions");
    }
    world.recorded(&code, initial + versions.len() as u64);
    let note = format!(
        "{} won, {conflicts} conflicts, versions dense and unique, all present",
        versions.len()
    );
    Ok(result(
        "W6 8 clients race expected_version",
        versions.len() as u64,
        seconds,
        latencies,
        note,
    ))
}

/// Peak RSS (VmHWM) of a process in MiB.
pub fn peak_rss_of(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

/// Subscribers that read every event from the head on, each on its own connection.
struct LiveSubscribers {
    start: u64,
    tasks: Vec<tokio::task::JoinHandle<anyhow::Result<u64>>>,
    stop: tokio::sync::watch::Sender<u64>,
}

/// What the live subscribers received.
struct LiveReceived {
    expected: u64,
    all_complete: bool,
}

async fn live_subscribers(target: &str, count: usize) -> anyhow::Result<LiveSubscribers> {
    let (stop, stopped) = tokio::sync::watch::channel(0u64);
    let mut tasks = Vec::new();
    let mut start = 0;
    for _ in 0..count {
        let mut store = EventStoreServiceClient::new(connect(target).await?);
        let mut stream = store
            .subscribe(pb::SubscribeRequest {
                start: Some(pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {})),
                filter: None,
                omit_typed_body: false,
            })
            .await?
            .into_inner();
        // Live once CaughtUp arrives; the position it reports is where this one starts.
        loop {
            match stream.message().await?.and_then(|message| message.message) {
                Some(pb::subscribe_response::Message::CaughtUp(caught_up)) => {
                    start = start.max(caught_up.position);
                    break;
                }
                Some(_) => {}
                None => anyhow::bail!("a live subscription ended before CaughtUp"),
            }
        }
        let mut stopped = stopped.clone();
        tasks.push(tokio::spawn(async move {
            let mut last = 0u64;
            loop {
                let until = *stopped.borrow();
                if until > 0 && last >= until {
                    return Ok(last);
                }
                tokio::select! {
                    message = stream.message() => match message?.and_then(|message| message.message) {
                        Some(pb::subscribe_response::Message::Event(event)) => last = event.position,
                        Some(_) => {}
                        None => return Ok(last),
                    },
                    _ = stopped.changed() => {}
                }
            }
        }));
    }
    Ok(LiveSubscribers { start, tasks, stop })
}

impl LiveSubscribers {
    /// Waits until every live subscriber has received the head's event; true when all did
    /// (events arrive in order, so the last position received says everything before it came).
    async fn finish(self, channel: &Conn) -> anyhow::Result<LiveReceived> {
        let mut store = EventStoreServiceClient::new(channel.clone());
        let head = store
            .read_all(pb::ReadAllRequest {
                from_position: Some(1),
                direction: pb::Direction::Forwards as i32,
                limit: 1,
                filter: None,
                omit_typed_body: true,
                include_leaf_input: false,
            })
            .await?
            .into_inner()
            .head;
        let _ = self.stop.send(head.max(1));
        let mut all_complete = true;
        for task in self.tasks {
            let last = tokio::time::timeout(WORKLOAD_TIME_LIMIT, task).await???;
            all_complete &= last >= head;
        }
        Ok(LiveReceived {
            expected: head.saturating_sub(self.start),
            all_complete,
        })
    }
}

/// Runs W1..W6 against `config.target`.
pub async fn run(config: &LoadConfig) -> anyhow::Result<LoadReport> {
    set_credentials(config)?;
    let channel = connect(&config.target).await?;
    if config.replay_only {
        let (typed, head) = replay(channel.clone(), false).await?;
        let raw = replay(channel.clone(), true).await?.0;
        let subscribed = replay_by_subscription(channel).await?;
        return Ok(LoadReport {
            workloads: vec![typed, raw, subscribed],
            head,
            server_peak_rss_mib: config.server_pid.and_then(peak_rss_of),
        });
    }
    // Idle subscribers never read: they get a connection of their own, since HTTP/2 flow control
    // would otherwise stall every other stream on a shared one once their windows fill.
    let idle_channel = connect(&config.target).await?;
    let mut idle = Vec::new();
    for _ in 0..config.idle_subscribers {
        let mut store = EventStoreServiceClient::new(idle_channel.clone());
        idle.push(
            store
                .subscribe(pb::SubscribeRequest {
                    start: Some(pb::subscribe_request::Start::FromEnd(pb::SubscribeFromEnd {})),
                    filter: None,
                    omit_typed_body: false,
                })
                .await?
                .into_inner(),
        );
    }
    let live = live_subscribers(&config.target, config.live_subscribers).await?;
    let world = Arc::new(set_up(channel.clone()).await?);
    let mut workloads = vec![
        singles(
            &config.target,
            &world,
            "W1 1 client x 1 event",
            1,
            config.w1_requests,
        )
        .await?,
        singles(
            &config.target,
            &world,
            "W2 16 clients x 1 event",
            16,
            config.w2_requests,
        )
        .await?,
        batches(&config.target, &world, 4, config.w3_batches, config.w3_spread).await?,
    ];
    let (replayed, head) = replay(channel.clone(), false).await?;
    workloads.push(replayed);
    workloads.push(replay(channel.clone(), true).await?.0);
    let mut w5 = delivery_latency(&config.target, &world, config.w5_events).await?;
    let received = live.finish(&channel).await?;
    if config.live_subscribers > 0 {
        w5.note.push_str(&format!(
            "; {} live subscribers each received all {} events since they started: {}",
            config.live_subscribers, received.expected, received.all_complete
        ));
    }
    workloads.push(w5);
    workloads.push(race(&config.target, &world, 8, config.w6_successes).await?);
    drop(idle);
    Ok(LoadReport {
        workloads,
        head,
        server_peak_rss_mib: config.server_pid.and_then(peak_rss_of),
    })
}

/// A plain-text table of a report.
pub fn table(report: &LoadReport) -> String {
    let mut out = format!(
        "{:<40} {:>9} {:>9} {:>12} {:>10} {:>10}  note\n",
        "workload", "events", "seconds", "events/s", "p50 us", "p99 us"
    );
    for w in &report.workloads {
        out.push_str(&format!(
            "{:<40} {:>9} {:>9.2} {:>12.0} {:>10.0} {:>10.0}  {}\n",
            w.name, w.events, w.seconds, w.events_per_second, w.p50_micros, w.p99_micros, w.note
        ));
    }
    out.push_str(&format!("log head: {}", report.head));
    if let Some(rss) = report.server_peak_rss_mib {
        out.push_str(&format!(", server peak RSS: {rss:.1} MiB"));
    }
    out.push('\n');
    out
}
