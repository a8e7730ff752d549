//! Every bound the log enforces, in one place. Each is checked before anything is queued or
//! written; going over one is an error naming the limit, never a truncation.

/// Largest event payload (the domain's encoded event), in bytes.
pub const MAX_EVENT_PAYLOAD_BYTES: usize = 64 * 1024;
/// Most events one append request may carry.
pub const MAX_EVENTS_PER_APPEND: usize = 1_000;
/// Most append requests one transaction may carry (all committed together or none).
pub const MAX_REQUESTS_PER_TRANSACTION: usize = 1_000;
/// Largest total payload of one append request or transaction, in bytes.
pub const MAX_APPEND_PAYLOAD_BYTES: usize = 4 * 1024 * 1024;
/// Longest stream id, in bytes. Stream ids are ASCII graphic characters (no spaces, no 0x00).
pub const MAX_STREAM_ID_BYTES: usize = 128;
/// Longest event type name, in bytes.
pub const MAX_EVENT_TYPE_BYTES: usize = 64;
/// Most tags on one event.
pub const MAX_TAGS_PER_EVENT: usize = 64;
/// Longest tag, in bytes.
pub const MAX_TAG_BYTES: usize = 128;
/// Longest `recorded_by` principal name, in bytes.
pub const MAX_PRINCIPAL_BYTES: usize = 128;
/// Largest stored record (header, envelope, hashes, checksum). Derived from the limits above
/// with headroom; the writer asserts it before writing and readers reject anything larger.
/// Internal: no request reaches it (the limits above refuse first; asserted at compile time);
/// it bounds what a reader accepts from damaged bytes (the record fuzz target, `log_fuzz`).
pub const MAX_RECORD_BYTES: usize = 80 * 1024;

/// Group commit: most events written by one commit (one sled batch, one fsync).
pub const MAX_EVENTS_PER_COMMIT: usize = 20_000;
/// Largest journal frame (one write + one fdatasync; holds one or more group commits). A
/// transaction's records must fit in one frame (see `AppendRequest::frame_bytes_bound`).
pub const MAX_FRAME_BYTES: usize = 16 * 1024 * 1024;
/// Per event, a bound of the record bytes besides payload, texts and tags (fixed envelope fields,
/// varint lengths, hashes, checksum, frame length prefix), for `frame_bytes_bound`.
pub const ENVELOPE_OVERHEAD_BOUND_BYTES: usize = 512;
/// Subdirectory of the data directory holding the journal's segment files.
pub const JOURNAL_DIR: &str = "journal";
/// Size of each journal segment file, preallocated and zeroed when created.
pub const DEFAULT_JOURNAL_SEGMENT_BYTES: u64 = 32 * 1024 * 1024;
/// Smallest journal segment a `LogConfig` may ask for.
pub const MIN_JOURNAL_SEGMENT_BYTES: u64 = 256 * 1024;
/// Segment files that may exist before the writer checkpoints inline to reuse one.
pub const DEFAULT_JOURNAL_MAX_SEGMENTS: usize = 8;
/// The checkpointer flushes sled at least this often while there is something to flush.
pub const CHECKPOINT_INTERVAL: std::time::Duration = std::time::Duration::from_secs(2);
/// ... and sooner once this many journal bytes were written since it was last woken, so that
/// replay after a crash stays short and segments are freed before the writer needs them.
pub const CHECKPOINT_JOURNAL_BYTES: u64 = DEFAULT_JOURNAL_SEGMENT_BYTES / 2;
/// Answered commits whose command records and head metadata may wait for the late writer
/// thread; the writer waits for room beyond it (back-pressure). Bounds how far `applied` (what
/// a checkpoint may declare durable) trails the head readers see, and the answered commits'
/// command ids held in memory meanwhile.
pub const LATE_COMMITS_QUEUED: usize = 4;
/// The late writer thread's nice value: on a saturated machine it yields to the writer and the
/// request threads; once LATE_COMMITS_QUEUED commits wait for it, the writer waits too.
pub const LATE_WRITER_NICE: i32 = 5;
/// Rounds in a row that must each have committed a lone op (one op, nothing queued after it)
/// before an appender commits its own op on its own thread instead of waking the writer thread
/// (src/log/writer.rs, `Pipeline`): a single client then pays no thread hand-over, and a burst
/// of concurrent appenders goes back to the writer thread at its first shared round.
pub const LONE_ROUNDS_TO_LEAD: u32 = 8;
/// Command ids the writer keeps of those it staged most recently (src/log/writer.rs,
/// `RecentCommands`): an id between their floor and the command ceiling that is not among them
/// is new without a sled lookup. ~40 bytes each: ~2.6 MiB. More than two commits' worth, so an
/// id leaves only after its commit was answered.
pub const RECENT_COMMAND_IDS: usize = 65_536;
const _: () = assert!(RECENT_COMMAND_IDS >= 2 * MAX_EVENTS_PER_COMMIT);
/// Appends that may wait in the writer's queue; further callers wait for room (back-pressure).
pub const WRITE_QUEUE_CAPACITY: usize = 4_096;

/// Most events one read returns (ReadStream and ReadAll pages).
pub const MAX_READ_PAGE_EVENTS: usize = 4_096;
/// Most records one filtered ReadAll page examines before it returns (possibly empty) with a
/// cursor to resume from, so a selective filter cannot make one read scan the whole log.
pub const MAX_SCANNED_PER_PAGE: usize = 65_536;
/// Most stream versions the log keeps in memory, as applied to sled (the writer's expected-version
/// checks, `Log::applied_stream_version`); past this the map is cleared and refilled from the
/// stream index on demand (about 60 bytes an entry: 12 MiB at the limit).
pub const STREAM_HEAD_CACHE_ENTRIES: usize = 200_000;
/// Records at the head that `Log::open` verifies in full (checksum, hashes, chain, indexes).
pub const DEFAULT_VERIFY_ON_OPEN: u64 = 1_024;
/// How long `Log::open` waits for sled's file lock before reporting that another handle holds
/// the data directory.
pub const OPEN_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);
/// Default minimum of free disk space under the data directory (`LogConfig::min_free_disk`,
/// `serve --min-free-disk`): below it writes are refused with `LogError::DiskFull` and
/// checkpoints wait, reads go on; opening (also for `verify` and `export`) is refused.
pub const DEFAULT_MIN_FREE_DISK_BYTES: u64 = 256 * 1024 * 1024;
/// How long a free-space reading answers for writes before it is taken again (`statvfs`), so
/// the check costs nothing per write and a disk that got space back is noticed this soon.
pub const FREE_DISK_RECHECK_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);
/// Default sled page-cache size of the log. sled's own default is 1 GiB; a small server wants
/// less. With the read-model snapshots' cache, the server's sled caches come to 128 MiB (checked
/// where both are known, `projections::snapshot`).
pub const DEFAULT_CACHE_CAPACITY_BYTES: u64 = 120 * 1024 * 1024;
/// Least sled page cache of the log (`serve --log-cache`): below a few leaves per cache shard
/// (sled has 256) every read of a stream run or command record goes to disk.
pub const MIN_CACHE_CAPACITY_BYTES: u64 = 8 * 1024 * 1024;
/// Largest sled page cache of the log (`serve --log-cache`).
pub const MAX_CACHE_CAPACITY_BYTES: u64 = 16 * 1024 * 1024 * 1024;
const _: () = assert!(MIN_CACHE_CAPACITY_BYTES <= DEFAULT_CACHE_CAPACITY_BYTES);
const _: () = assert!(DEFAULT_CACHE_CAPACITY_BYTES <= MAX_CACHE_CAPACITY_BYTES);
/// sled segment size. sled writes any page larger than a quarter of a segment to a separate
/// blob file that it never fsyncs; with 8 MiB segments that threshold is 2 MiB, above the largest
/// leaf page the log can build (sled splits leaves above 16 entries: 17 x MAX_STORED_CHUNK_BYTES).
pub const SLED_SEGMENT_SIZE_BYTES: usize = 8 * 1024 * 1024;

const _: () = assert!(MAX_EVENT_PAYLOAD_BYTES + 8 * 1024 <= MAX_RECORD_BYTES);
/// The largest value the writer stores under an event key: a packed chunk, or one record alone.
pub const MAX_STORED_CHUNK_BYTES: usize = if MAX_RECORD_BYTES > super::codec::MAX_CHUNK_BYTES {
    MAX_RECORD_BYTES
} else {
    super::codec::MAX_CHUNK_BYTES
};
const _: () = assert!(17 * MAX_STORED_CHUNK_BYTES < SLED_SEGMENT_SIZE_BYTES / 4);
const _: () = assert!(MAX_APPEND_PAYLOAD_BYTES < MAX_FRAME_BYTES);
const _: () = assert!(MAX_FRAME_BYTES as u64 + 32 <= DEFAULT_JOURNAL_SEGMENT_BYTES);
const _: () =
    assert!(MAX_RECORD_BYTES + ENVELOPE_OVERHEAD_BOUND_BYTES < MIN_JOURNAL_SEGMENT_BYTES as usize / 2);
