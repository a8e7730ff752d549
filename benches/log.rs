//! Criterion benchmarks of the log's hot paths: record encoding and decoding, a full page read,
//! and one durable append (flush + fsync). Throughput workloads with concurrency are in
//! `dipledger bench-log` (src/benchmark.rs).

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dipledger::log::codec::{decode_record, encode_record, GENESIS_CHAIN_HASH};
use dipledger::log::{
    AppendRequest, Direction, Envelope, EventDraft, EventFilter, ExpectedVersion, Log, LogConfig,
};
use dipledger::time::{OccurredAt, Precision, Timestamp};
use uuid::Uuid;

fn envelope() -> Envelope {
    Envelope {
        position: 42,
        stream_id: "meeting-0190a0b0-0000-7000-8000-000000000000".into(),
        stream_version: 3,
        event_id: Uuid::now_v7(),
        event_type: "MeetingHeld".into(),
        schema_version: 1,
        command_id: Uuid::now_v7(),
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(1), Precision::Day),
        recorded_at: Timestamp::from_unix_micros(2),
        recorded_by: "recorder".into(),
        correlation_id: None,
        causation_id: None,
        tags: vec!["party:LBY".into(), "party:FRA".into(), "topic:security".into()],
        payload: vec![7; 400],
    }
}

fn draft() -> EventDraft {
    EventDraft {
        event_type: "BenchEvent".into(),
        schema_version: 1,
        occurred_at: OccurredAt::new(Timestamp::from_unix_micros(1), Precision::Exact),
        tags: vec!["bench:1".into()],
        payload: vec![1; 400],
    }
}

fn codec(c: &mut Criterion) {
    let envelope = envelope();
    let (record, _) = encode_record(&envelope, &GENESIS_CHAIN_HASH).unwrap();
    let mut group = c.benchmark_group("codec");
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode_record_400B", |b| {
        b.iter(|| encode_record(&envelope, &GENESIS_CHAIN_HASH).unwrap())
    });
    group.bench_function("decode_record_400B", |b| {
        b.iter(|| decode_record(42, &record).unwrap())
    });
    group.finish();
}

fn reads(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(LogConfig::new(dir.path())).unwrap();
    for _ in 0..40 {
        let events = (0..500).map(|_| draft()).collect();
        log.append_blocking(AppendRequest::new(
            Uuid::now_v7(),
            "bench",
            ExpectedVersion::Any,
            "bench",
            events,
        ))
        .unwrap();
    }
    let mut group = c.benchmark_group("read");
    group.throughput(Throughput::Elements(4096));
    group.bench_function("read_all_page_4096", |b| {
        b.iter(|| {
            log.read_all(1, Direction::Forwards, 4096, &EventFilter::default())
                .unwrap()
        })
    });
    group.finish();
}

fn durable_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let log = Log::open(LogConfig::new(dir.path())).unwrap();
    let mut group = c.benchmark_group("append");
    group.sample_size(20);
    group.throughput(Throughput::Elements(1));
    group.bench_function("one_event_durable", |b| {
        b.iter_batched(
            || {
                AppendRequest::new(
                    Uuid::now_v7(),
                    "bench",
                    ExpectedVersion::Any,
                    "bench",
                    vec![draft()],
                )
            },
            |request| log.append_blocking(request).unwrap(),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, codec, reads, durable_append);
criterion_main!(benches);
