//! `audit`: verifiable history at scale. Fills a log in process, serves it on 127.0.0.1:0 and
//! times inclusion and consistency proofs over gRPC at random positions, then exports the log
//! and times the offline `verify_export` against the server's signed checkpoint.

use std::io::BufReader;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use dipledger::api::pb;
use dipledger::api::pb::audit_service_client::AuditServiceClient;
use dipledger::api::server::{RunningServer, ServerOptions};
use dipledger::audit::LedgerKeys;
use dipledger::log::{Log, LogConfig};
use serde::Serialize;

/// What the audit benchmark measured.
#[derive(Debug, Serialize)]
pub struct AuditReport {
    pub events: u64,
    pub fill_seconds: f64,
    pub tree_nanos_per_event: f64,
    pub queries: usize,
    pub in_process_leaf_p50_micros: f64,
    pub in_process_leaf_p99_micros: f64,
    pub in_process_proof_p50_micros: f64,
    pub in_process_proof_p99_micros: f64,
    pub inclusion_p50_micros: f64,
    pub inclusion_p99_micros: f64,
    pub consistency_p50_micros: f64,
    pub consistency_p99_micros: f64,
    pub export_seconds: f64,
    pub export_bytes: u64,
    pub verify_export_seconds: f64,
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[index].as_secs_f64() * 1e6
}

/// xorshift64*: fixed-seed positions.
fn next(state: &mut u64) -> u64 {
    *state ^= *state >> 12;
    *state ^= *state << 25;
    *state ^= *state >> 27;
    state.wrapping_mul(0x2545_f491_4f6c_dd1d)
}

/// Runs the benchmark in `dir` (a fresh directory).
pub async fn run(dir: &Path, events: u64, queries: usize) -> anyhow::Result<AuditReport> {
    let log = Log::open(LogConfig::new(dir))?;
    let started = Instant::now();
    let filler = log.clone();
    tokio::task::spawn_blocking(move || {
        super::log::append_workload(&filler, "fill", 4, (events / 400) as usize, 100, 1_000)
    })
    .await??;
    let fill_seconds = started.elapsed().as_secs_f64();
    let stats = log.stats();
    let head = log.head();
    // The same work in process, without gRPC: the record read and check, then the proof.
    let mut seed = 0x2545_f491u64;
    let (mut leaf_times, mut proof_times) = (Vec::new(), Vec::new());
    for _ in 0..queries {
        let position = next(&mut seed) % head + 1;
        let begun = Instant::now();
        log.leaf(position)?;
        leaf_times.push(begun.elapsed());
        let begun = Instant::now();
        log.inclusion_proof(position, head)?;
        proof_times.push(begun.elapsed());
    }
    leaf_times.sort_unstable();
    proof_times.sort_unstable();
    let server = RunningServer::start(log.clone(), "127.0.0.1:0".parse()?, ServerOptions::default()).await?;
    let mut client = AuditServiceClient::connect(server.uri()).await?;
    let checkpoint = client
        .get_checkpoint(pb::GetCheckpointRequest {
            at_or_after_position: head,
        })
        .await?
        .into_inner();
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let (mut inclusion, mut consistency) = (Vec::new(), Vec::new());
    for _ in 0..queries {
        let position = next(&mut seed) % head + 1;
        let begun = Instant::now();
        client
            .get_inclusion_proof(pb::GetInclusionProofRequest {
                position,
                tree_size: head,
            })
            .await?;
        inclusion.push(begun.elapsed());
        let first = next(&mut seed) % head + 1;
        let begun = Instant::now();
        client
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                first_size: first,
                second_size: head,
            })
            .await?;
        consistency.push(begun.elapsed());
    }
    inclusion.sort_unstable();
    consistency.sort_unstable();
    server.shutdown().await?;
    let export_path = dir.join("export.jsonl");
    let begun = Instant::now();
    let exporter = log.clone();
    let export = export_path.clone();
    tokio::task::spawn_blocking(move || -> anyhow::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&export)?);
        dipledger::log::backup::export_jsonl(&exporter, &mut out, &mut |_, _| {})?;
        Ok(())
    })
    .await??;
    let export_seconds = begun.elapsed().as_secs_f64();
    let verifier = LedgerKeys::open(dir, None)?.verifier();
    let begun = Instant::now();
    let file = std::fs::File::open(&export_path)?;
    let mut input = BufReader::with_capacity(1 << 20, file);
    dipledger::audit::verify::verify_export(&mut input, &checkpoint.note, &verifier, &mut |_| {})
        .context("verify-export")?;
    let verify_export_seconds = begun.elapsed().as_secs_f64();
    Ok(AuditReport {
        events: head,
        fill_seconds,
        tree_nanos_per_event: stats.tree_nanos as f64 / stats.events.max(1) as f64,
        queries,
        in_process_leaf_p50_micros: percentile(&leaf_times, 0.50),
        in_process_leaf_p99_micros: percentile(&leaf_times, 0.99),
        in_process_proof_p50_micros: percentile(&proof_times, 0.50),
        in_process_proof_p99_micros: percentile(&proof_times, 0.99),
        inclusion_p50_micros: percentile(&inclusion, 0.50),
        inclusion_p99_micros: percentile(&inclusion, 0.99),
        consistency_p50_micros: percentile(&consistency, 0.50),
        consistency_p99_micros: percentile(&consistency, 0.99),
        export_seconds,
        export_bytes: std::fs::metadata(&export_path)?.len(),
        verify_export_seconds,
    })
}
