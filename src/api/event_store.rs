//! `EventStoreService`: ReadStream, ReadAll and Subscribe over the [`Log`] (docs/api.md);
//! ReadAccessLog, and Export (in `api::export`).
//!
//! Every sled read runs on tokio's blocking pool (`spawn_blocking`), never on a runtime worker.
//!
//! Subscriptions: each subscriber is a catch-up reader with its own cursor. Far from the head it
//! reads the log in pages of [`SUBSCRIPTION_PAGE_EVENTS`], sends each matching event into a
//! bounded channel of [`SUBSCRIPTION_CHANNEL_CAPACITY`] messages that feeds the response stream,
//! and when it reaches the head it sends `CaughtUp` (once) and waits for the head to move.
//!
//! Live feed: near the head, subscribers share one `LiveFeed` instead of each reading and
//! converting the same new records. One task per service (started by the first Subscribe) waits
//! on [`Log::watch_head`]; when the durable head moves it reads the new records once and encodes
//! each once as a `SubscribeResponse` with and once without the typed event, straight from the
//! record like every other read (`pages::event_frame`; [`Frame`]s, shared through an `Arc`), keeps the most recent
//! [`LIVE_FEED_EVENTS`] (and at most [`LIVE_FEED_BYTES`] encoded bytes) in a ring, and then
//! publishes how far it got. Subscribers wait on that publication. A subscriber whose cursor
//! lies inside the ring takes a page of up to [`SUBSCRIPTION_PAGE_EVENTS`] shared events from
//! it, applies its own filter, and sends the shared frame of each event it delivers (the one
//! without the typed body when it asked for `omit_typed_body`): nothing is copied or encoded
//! per subscriber. `api::frames` serves these frames as they are. A subscriber
//! whose cursor is older than the ring (it lagged behind by more than the ring holds) or not yet
//! in it reads the log itself as above, so the ring never waits for anyone and nothing is
//! skipped or repeated: the cursor advances over exactly the positions examined, whichever the
//! source. The feed is only an accelerator: when no subscription is open, or when the head jumps
//! by more than the ring holds, or a read of the feed fails, it restarts the ring at the head
//! (subscribers then read older positions from the log, and meet any read error themselves).
//!
//! There is no queue of events per subscriber beyond one page and that one channel: a client
//! that stops reading fills the channel (and HTTP/2 flow control windows), the reader then waits
//! on `send`, and the ring moves on without it; once the client reads again the subscriber
//! continues at its cursor, from the log if the ring has moved past it. Memory is therefore
//! bounded by construction: the ring (shared), plus per subscriber one page (at most 256 encoded
//! events, each its record's texts and payload (at most `MAX_RECORD_BYTES` = 80 KiB) plus its
//! typed body when asked for, or 256 shared ring entries) plus 64 messages plus the
//! transport's buffers, whatever the client does and however far behind it is. Events are never
//! lost or skipped, since the log itself is the buffer.
//!
//! A filtered subscription that examines events without delivering any sends
//! `Checkpoint{position}` every [`CHECKPOINT_INTERVAL`] examined events and whenever it is idle
//! at the head, so a client can resume (`after_position`) without rescanning.
//!
//! At most `max_subscriptions` (default [`MAX_SUBSCRIPTIONS`]) run at once; beyond that
//! Subscribe fails with RESOURCE_EXHAUSTED. Every subscription watches the server's shutdown
//! signal and, when it fires, ends its stream with UNAVAILABLE (never a clean end, which a
//! client could not tell from a stream that is over); a Subscribe asked for during shutdown is
//! UNAVAILABLE too.
//!
//! Longer than ~600 lines: the three RPCs share the subscription machinery (catch-up, the live
//! ring, checkpoints, limits), which reads best beside them.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::StreamExt as _;
use tonic::{Request, Response, Status};

use super::convert::{self, Violations};
use super::frames::Frame;
use super::pages;
use super::pb;
use super::pb::event_store_service_server::EventStoreService;
use super::status;
use super::wire::{put_bool, put_uint};
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, Envelope, EnvelopeRef, EventFilter, Log, LogError, RecordView};

/// Default most concurrent subscriptions per server.
pub const MAX_SUBSCRIPTIONS: usize = 1_024;
/// Messages buffered between a subscription's reader and its response stream.
pub const SUBSCRIPTION_CHANNEL_CAPACITY: usize = 64;
/// Events a subscription reads from the log per page.
pub const SUBSCRIPTION_PAGE_EVENTS: usize = 256;
/// A filtered subscription sends a Checkpoint at least every this many examined events.
pub const CHECKPOINT_INTERVAL: u64 = 2_048;
/// Events per ReadStream/ReadAll page when the request gives no limit.
pub const DEFAULT_PAGE_EVENTS: usize = 100;
/// A ReadStream/ReadAll page stops adding events once its encoded size reaches this many bytes
/// (the client continues from `next_position` / `next_version`). Below `MAX_RESPONSE_BYTES`.
pub const MAX_PAGE_BYTES: usize = 16 * 1024 * 1024;

/// Most recent events the shared live feed keeps converted for subscribers near the head.
/// A subscriber further behind reads the log itself.
pub const LIVE_FEED_EVENTS: usize = 4_096;
/// The live feed also keeps at most this many bytes of encoded answers (both forms of each
/// event: with and without its typed body), dropping the oldest first (never the newest one).
pub const LIVE_FEED_BYTES: usize = 32 * 1024 * 1024;

/// The EventStoreService implementation.
#[derive(Clone)]
pub struct EventStore {
    log: Log,
    feed: Arc<LiveFeed>,
    subscriptions: Arc<Semaphore>,
    max_subscriptions: usize,
    exports: Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
}

/// Counters of where subscriptions took their events from, for tests and diagnostics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LiveFeedStats {
    /// Records the live feed read and converted (each once, whatever the number of subscribers).
    pub converted: u64,
    /// Events subscriptions examined from the live feed's ring (summed over subscriptions).
    pub taken_from_feed: u64,
    /// Events subscriptions examined by reading the log themselves (catch-up, or a subscriber
    /// that lagged behind the ring).
    pub read_from_log: u64,
}

impl EventStore {
    /// A service over `log` allowing `max_subscriptions` concurrent subscriptions; every
    /// subscription ends when `shutdown` becomes true.
    pub fn new(log: Log, max_subscriptions: usize, shutdown: watch::Receiver<bool>) -> EventStore {
        // One reading of the head for both: the feed's task continues from what it publishes,
        // so the ring must start right after it.
        let head = log.head();
        let (publisher, published) = watch::channel(head);
        EventStore {
            feed: Arc::new(LiveFeed {
                ring: RwLock::new(Ring::starting_at(head + 1)),
                published,
                publisher: Mutex::new(Some(publisher)),
                converted: AtomicU64::new(0),
                taken_from_feed: AtomicU64::new(0),
                read_from_log: AtomicU64::new(0),
            }),
            log,
            subscriptions: Arc::new(Semaphore::new(max_subscriptions)),
            max_subscriptions,
            exports: Arc::new(Semaphore::new(super::export::MAX_EXPORTS)),
            shutdown,
        }
    }

    /// Resolves once every subscription and export has ended. After shutdown begins each ends
    /// soon, with UNAVAILABLE, once its client has taken what was sent before (the server keeps
    /// accepting calls until then, answering each new one UNAVAILABLE itself; see
    /// `server::serve`). Only for shutdown: it holds every permit while it waits.
    pub async fn streams_ended(&self) {
        let all = |permits: usize| u32::try_from(permits).unwrap_or(u32::MAX);
        let _ = self.subscriptions.acquire_many(all(self.max_subscriptions)).await;
        let _ = self.exports.acquire_many(all(super::export::MAX_EXPORTS)).await;
    }

    /// Subscriptions open now.
    pub fn open_subscriptions(&self) -> usize {
        self.max_subscriptions - self.subscriptions.available_permits()
    }

    /// Exports running now.
    pub fn running_exports(&self) -> usize {
        super::export::MAX_EXPORTS - self.exports.available_permits()
    }

    /// Where this service's subscriptions have taken their events from so far.
    pub fn live_feed_stats(&self) -> LiveFeedStats {
        LiveFeedStats {
            converted: self.feed.converted.load(Ordering::Relaxed),
            taken_from_feed: self.feed.taken_from_feed.load(Ordering::Relaxed),
            read_from_log: self.feed.read_from_log.load(Ordering::Relaxed),
        }
    }

    /// Starts the live feed's task, once (on the first Subscribe, inside the runtime).
    fn start_feed(&self) {
        let publisher = self.feed.publisher.lock().expect("feed starter lock").take();
        if let Some(publisher) = publisher {
            let feed = LiveFeedTask {
                feed: self.feed.clone(),
                log: self.log.clone(),
                publisher,
                subscriptions: self.subscriptions.clone(),
                max_subscriptions: self.max_subscriptions,
                shutdown: self.shutdown.clone(),
            };
            tokio::spawn(feed.run());
        }
    }
}

/// One event of the live feed: read, converted and encoded once, shared by every subscriber.
struct FeedEvent {
    /// The log envelope without its payload: what subscription filters examine.
    key: Envelope,
    /// The encoded answer carrying the envelope with its typed event.
    typed: Frame,
    /// The same without the typed event (`omit_typed_body`).
    untyped: Frame,
    /// Both frames' bytes, counted against [`LIVE_FEED_BYTES`].
    bytes: usize,
}

impl FeedEvent {
    fn new(record: &RecordView<'_>) -> FeedEvent {
        let typed = pages::event_frame(record, true);
        let untyped = pages::event_frame(record, false);
        FeedEvent {
            bytes: typed.bytes().len() + untyped.bytes().len(),
            key: EnvelopeRef {
                payload: &[],
                ..record.envelope.clone()
            }
            .to_owned(),
            typed,
            untyped,
        }
    }
}

/// The most recent converted events: positions `first .. first + events.len()`, contiguous.
struct Ring {
    first: u64,
    events: VecDeque<Arc<FeedEvent>>,
    bytes: usize,
}

/// The live feed shared by a service's subscriptions (see the module docs).
struct LiveFeed {
    ring: RwLock<Ring>,
    /// The position the feed has examined up to: every durable event up to it is in the ring
    /// or was dropped from it. Subscribers wait on this.
    published: watch::Receiver<u64>,
    /// Taken by the first Subscribe to start the feed's task.
    publisher: Mutex<Option<watch::Sender<u64>>>,
    converted: AtomicU64,
    taken_from_feed: AtomicU64,
    read_from_log: AtomicU64,
}

impl LiveFeed {
    /// Up to `max` shared events from position `cursor` on, when the ring holds `cursor`.
    fn take(&self, cursor: u64, max: usize) -> Option<Vec<Arc<FeedEvent>>> {
        let ring = self.ring.read().expect("live feed lock");
        if cursor < ring.first || cursor >= ring.end() {
            return None;
        }
        let start = (cursor - ring.first) as usize;
        let batch: Vec<_> = ring.events.range(start..).take(max).cloned().collect();
        drop(ring);
        self.taken_from_feed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Some(batch)
    }

    /// Empties the ring; it continues at position `first`.
    fn restart(&self, first: u64) {
        self.ring.write().expect("live feed lock").restart(first);
    }

    /// Appends the events following the ring's last one, dropping the oldest beyond the bounds.
    fn push(&self, events: Vec<FeedEvent>) {
        let mut ring = self.ring.write().expect("live feed lock");
        for event in events {
            ring.push(event);
        }
    }
}

impl Ring {
    fn starting_at(first: u64) -> Ring {
        Ring {
            first,
            events: VecDeque::new(),
            bytes: 0,
        }
    }

    /// The position the next event must have.
    fn end(&self) -> u64 {
        self.first + self.events.len() as u64
    }

    fn restart(&mut self, first: u64) {
        *self = Ring::starting_at(first);
    }

    /// Appends `event`, then drops the oldest events beyond [`LIVE_FEED_EVENTS`] and
    /// [`LIVE_FEED_BYTES`]. An event that does not follow the last one restarts the ring at it
    /// (reported: the feed's task reads pages that follow the ring, so this is not expected):
    /// the ring stays contiguous whatever happens, and a subscriber before its new first
    /// position reads from the log. Nothing here panics, as the ring's lock would be poisoned
    /// for every subscriber (a `debug_assert` here once did that in a test run).
    fn push(&mut self, event: FeedEvent) {
        let position = event.key.position;
        if position != self.end() {
            tracing::error!(
                expected = self.end(),
                position,
                "live feed: a gap in the ring, restarted"
            );
            self.restart(position);
        }
        self.bytes += event.bytes;
        self.events.push_back(Arc::new(event));
        while self.events.len() > LIVE_FEED_EVENTS || (self.bytes > LIVE_FEED_BYTES && self.events.len() > 1)
        {
            // Both bounds leave at least one event; `break` rather than spin if that changed.
            let Some(oldest) = self.events.pop_front() else {
                break;
            };
            self.bytes = self.bytes.saturating_sub(oldest.bytes);
            self.first += 1;
        }
    }
}

/// The task that feeds a [`LiveFeed`] from the log.
struct LiveFeedTask {
    feed: Arc<LiveFeed>,
    log: Log,
    publisher: watch::Sender<u64>,
    subscriptions: Arc<Semaphore>,
    max_subscriptions: usize,
    shutdown: watch::Receiver<bool>,
}

impl LiveFeedTask {
    /// Follows the durable head until shutdown; dropping the publisher on return wakes every
    /// subscriber waiting on it.
    async fn run(mut self) {
        let mut head_watch = self.log.watch_head();
        // Continue from where the ring stood when the service was created (subscriptions may
        // already wait on that), catching up below like after any move of the head.
        let mut fed = *self.publisher.borrow();
        loop {
            loop {
                if *self.shutdown.borrow() {
                    return;
                }
                let head = *head_watch.borrow_and_update();
                if fed >= head {
                    break;
                }
                let idle = self.subscriptions.available_permits() >= self.max_subscriptions;
                if idle {
                    // Nobody to feed: convert nothing, start afresh at the head.
                    fed = head;
                    self.feed.restart(fed + 1);
                    self.publisher.send_replace(fed);
                    continue;
                }
                if head - fed > LIVE_FEED_EVENTS as u64 {
                    // Only the newest LIVE_FEED_EVENTS would stay: skip straight to them.
                    fed = head - LIVE_FEED_EVENTS as u64;
                    self.feed.restart(fed + 1);
                }
                let log = self.log.clone();
                let from = fed + 1;
                let page = blocking(move || {
                    let mut events = Vec::new();
                    log.scan_all(
                        (from, Direction::Forwards),
                        SUBSCRIPTION_PAGE_EVENTS,
                        &EventFilter::default(),
                        &mut |record| {
                            events.push(FeedEvent::new(record));
                            ControlFlow::Continue(())
                        },
                    )
                    .map_err(status::from_log_error)?;
                    Ok(events)
                })
                .await;
                match page {
                    Ok(events) if !events.is_empty() => {
                        let last = events[events.len() - 1].key.position;
                        self.feed
                            .converted
                            .fetch_add(events.len() as u64, Ordering::Relaxed);
                        self.feed.push(events);
                        fed = last;
                    }
                    _ => {
                        // The subscribers read these positions from the log themselves (and
                        // report any error there); the feed starts again at the head.
                        fed = head;
                        self.feed.restart(fed + 1);
                    }
                }
                self.publisher.send_replace(fed);
            }
            tokio::select! {
                changed = head_watch.changed() => {
                    if changed.is_err() {
                        return;
                    }
                }
                _ = self.shutdown.wait_for(|stopping| *stopping) => return,
            }
        }
    }
}

/// Runs a blocking log read on the blocking pool.
async fn blocking<T, F>(function: F) -> Result<T, Status>
where
    F: FnOnce() -> Result<T, Status> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(function)
        .await
        .map_err(status::from_join_error)?
}

/// The events a ReadStream/ReadAll page may return: 0 means [`DEFAULT_PAGE_EVENTS`]; over
/// `MAX_READ_PAGE_EVENTS` is refused (INVALID_ARGUMENT naming `limit`), like a query's page size.
fn page_limit(limit: u32, violations: &mut Violations) -> usize {
    match limit as usize {
        0 => DEFAULT_PAGE_EVENTS,
        limit if limit > MAX_READ_PAGE_EVENTS => {
            violations.add(
                "limit",
                format!("{limit} is over the limit of {MAX_READ_PAGE_EVENTS}"),
            );
            MAX_READ_PAGE_EVENTS
        }
        limit => limit,
    }
}

type SubscribeStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

/// A subscription's answers, encoded (served by `api::frames`).
pub type FrameStream = ReceiverStream<Result<Frame, Status>>;

/// Most access-log entries a ReadAccessLog answers when the request says 0.
pub const DEFAULT_ACCESS_READ: usize = 100;

#[tonic::async_trait]
impl EventStoreService for EventStore {
    async fn read_access_log(
        &self,
        request: Request<pb::ReadAccessLogRequest>,
    ) -> Result<Response<pb::ReadAccessLogResponse>, Status> {
        use crate::auth::access_log::{self, AccessLogError, MAX_ACCESS_READ};
        let request = request.into_inner();
        let limit = match request.limit as usize {
            0 => DEFAULT_ACCESS_READ,
            limit if limit > MAX_ACCESS_READ => {
                return Err(status::invalid_field(
                    "limit",
                    format!("{limit} is over the limit of {MAX_ACCESS_READ}"),
                ))
            }
            limit => limit,
        };
        let dir = self.log.data_dir().to_owned();
        let entries = blocking(move || {
            access_log::read(&dir, request.after_seq, limit).map_err(|error| match error {
                AccessLogError::Damaged { .. } => Status::data_loss(error.to_string()),
                AccessLogError::Io(_) => status::internal("reading the access log", error),
            })
        })
        .await?;
        let entries = entries
            .into_iter()
            .map(|entry| pb::AccessLogEntry {
                seq: entry.seq,
                at: Some(convert::timestamp_to_pb(entry.at)),
                principal: entry.principal,
                action: entry.action,
                outcome: entry.outcome,
                detail: entry.detail,
                prev_hash: entry.prev,
                hash: entry.hash,
            })
            .collect();
        Ok(Response::new(pb::ReadAccessLogResponse { entries }))
    }

    /// The server answers ReadStream through `api::frames` (the page encoded straight from the
    /// stored records); this is the same page decoded back, for a generated
    /// `EventStoreServiceServer` used directly.
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let frame = self.read_stream_frame(request.into_inner()).await?;
        Ok(Response::new(frame.decode_as()?))
    }

    /// The server answers ReadAll through `api::frames` (the page encoded straight from the
    /// stored records); this is the same page decoded back, for a generated
    /// `EventStoreServiceServer` used directly.
    async fn read_all(
        &self,
        request: Request<pb::ReadAllRequest>,
    ) -> Result<Response<pb::ReadAllResponse>, Status> {
        let frame = self.read_all_frame(request.into_inner()).await?;
        Ok(Response::new(frame.decode_as()?))
    }

    type ExportStream = super::export::ExportStream;

    async fn export(
        &self,
        request: Request<pb::ExportRequest>,
    ) -> Result<Response<Self::ExportStream>, Status> {
        let stream = super::export::start(
            &self.log,
            &self.exports,
            self.shutdown.clone(),
            request.into_inner(),
        )?;
        Ok(Response::new(stream))
    }

    type SubscribeStream = SubscribeStream;

    /// The server answers Subscribe through `api::frames` (each live event encoded once for all
    /// subscribers); this is the same subscription with each answer decoded back, for a
    /// generated `EventStoreServiceServer` used directly.
    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<SubscribeStream>, Status> {
        let frames = self.subscribe_frames(request.into_inner())?;
        Ok(Response::new(Box::pin(
            frames.map(|frame| frame.and_then(|frame| frame.decode())),
        )))
    }
}

impl EventStore {
    /// One ReadStream page (docs/api.md, ReadStream), encoded.
    pub async fn read_stream_frame(&self, request: pb::ReadStreamRequest) -> Result<Frame, Status> {
        let mut violations = Violations::new();
        let direction = convert::direction_from_pb(request.direction, "direction", &mut violations);
        if request.from_version == Some(0) {
            violations.add("from_version", "versions start at 1");
        }
        if request.stream_id.is_empty() {
            violations.add("stream_id", "is required");
        }
        let limit = page_limit(request.limit, &mut violations);
        violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
        let log = self.log.clone();
        blocking(move || {
            let stream_id = request.stream_id;
            let current = log.stream_version(&stream_id).map_err(status::from_log_error)?;
            if current == 0 {
                return Err(status::not_found(&stream_id));
            }
            let from = match (request.from_version, direction) {
                (Some(from), _) => from,
                (None, Direction::Forwards) => 1,
                (None, Direction::Backwards) => current,
            };
            let past_end = match direction {
                Direction::Forwards => from > current + 1,
                Direction::Backwards => from > current,
            };
            if past_end {
                return Err(status::version_out_of_range(&stream_id, from, current));
            }
            let page = pages::ReadStream {
                stream_id: &stream_id,
                from_version: from,
                up_to_version: current,
                direction,
                limit,
                typed: !request.omit_typed_body,
                leaf_input: request.include_leaf_input,
                max_bytes: MAX_PAGE_BYTES,
            };
            let (mut out, last) = pages::stream_events(&log, &page).map_err(status::from_log_error)?;
            // The page holds no version past `current`, so forwards it ends at `current + 1`.
            let next_version = match (last, direction) {
                (Some(last), Direction::Forwards) => last + 1,
                (Some(last), Direction::Backwards) => last - 1,
                (None, _) => from,
            };
            let reached_end = match direction {
                Direction::Forwards => next_version > current,
                Direction::Backwards => next_version == 0,
            };
            put_uint(2, current, &mut out);
            put_uint(3, next_version, &mut out);
            put_bool(4, reached_end, &mut out);
            Ok(Frame::from_encoded(out))
        })
        .await
    }

    /// One ReadAll page (docs/api.md, ReadAll), encoded.
    pub async fn read_all_frame(&self, request: pb::ReadAllRequest) -> Result<Frame, Status> {
        let mut violations = Violations::new();
        let direction = convert::direction_from_pb(request.direction, "direction", &mut violations);
        let filter = convert::filter_from_pb(request.filter, "filter", &mut violations);
        let limit = page_limit(request.limit, &mut violations);
        violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
        let log = self.log.clone();
        blocking(move || {
            let from_position = match (request.from_position, direction) {
                (Some(from), _) => from,
                (None, Direction::Forwards) => 1,
                (None, Direction::Backwards) => log.head(),
            };
            let page = pages::ReadAll {
                from_position,
                direction,
                limit,
                filter,
                typed: !request.omit_typed_body,
                leaf_input: request.include_leaf_input,
                max_bytes: MAX_PAGE_BYTES,
            };
            pages::read_all_page(&log, &page)
                .map(Frame::from_encoded)
                .map_err(status::from_log_error)
        })
        .await
    }

    /// Starts a subscription (docs/api.md, Subscribe): its answers, encoded.
    pub fn subscribe_frames(&self, request: pb::SubscribeRequest) -> Result<FrameStream, Status> {
        let mut violations = Violations::new();
        let filter = convert::filter_from_pb(request.filter, "filter", &mut violations);
        violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
        if *self.shutdown.borrow() {
            return Err(status::shutting_down());
        }
        let head = self.log.head();
        let after = match request.start {
            None | Some(pb::subscribe_request::Start::FromStart(_)) => 0,
            Some(pb::subscribe_request::Start::FromEnd(_)) => head,
            Some(pb::subscribe_request::Start::AfterPosition(position)) => {
                if position > head {
                    return Err(status::from_log_error(LogError::OutOfRange {
                        requested: position,
                        head,
                    }));
                }
                position
            }
        };
        let permit = self
            .subscriptions
            .clone()
            .try_acquire_owned()
            .map_err(|_| status::too_many_subscriptions(self.max_subscriptions))?;
        let (sender, receiver) = mpsc::channel(SUBSCRIPTION_CHANNEL_CAPACITY);
        self.start_feed();
        let subscription = Subscription {
            log: self.log.clone(),
            feed: self.feed.clone(),
            filter,
            typed: !request.omit_typed_body,
            cursor: after + 1,
            reported: after,
            sender,
            shutdown: self.shutdown.clone(),
            _permit: permit,
        };
        tokio::spawn(subscription.run());
        Ok(ReceiverStream::new(receiver))
    }
}

/// Why a subscription stopped early.
enum Stop {
    /// The client went away: end quietly.
    Quiet,
    /// A read failed (DATA_LOSS, ...) or the server is shutting down (UNAVAILABLE, never a
    /// clean end, so the client knows to resume elsewhere or later): send this status, then end.
    Failed(Status),
}

/// One subscriber: a catch-up reader at its own cursor, taking from the live feed when it can.
struct Subscription {
    log: Log,
    feed: Arc<LiveFeed>,
    filter: EventFilter,
    /// Whether envelopes carry the typed event (false: `omit_typed_body`).
    typed: bool,
    /// The next position to examine.
    cursor: u64,
    /// The highest position the client has been told about (event, checkpoint or caught-up).
    reported: u64,
    sender: mpsc::Sender<Result<Frame, Status>>,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    async fn run(mut self) {
        if let Err(Stop::Failed(status)) = self.serve().await {
            // After whatever the client has not read yet; not if it has gone away.
            tokio::select! {
                _ = self.sender.send(Err(status)) => {}
                _ = self.sender.closed() => {}
            }
        }
    }

    async fn serve(&mut self) -> Result<(), Stop> {
        // The feed publishes how far it has examined the log; it is never past the durable head.
        let mut published = self.feed.published.clone();
        let mut head = self.log.head();
        let mut caught_up = false;
        loop {
            head = head.max(*published.borrow_and_update());
            while self.cursor <= head {
                if *self.shutdown.borrow() {
                    return Err(Stop::Failed(status::shutting_down()));
                }
                if let Some(batch) = self.feed.take(self.cursor, SUBSCRIPTION_PAGE_EVENTS) {
                    // Inside the ring: the shared frames, encoded once by the feed.
                    for event in &batch {
                        if !self.filter.matches(&event.key) {
                            continue;
                        }
                        let frame = if self.typed { &event.typed } else { &event.untyped };
                        self.send_frame(frame.clone()).await?;
                        self.reported = event.key.position;
                    }
                    self.cursor = batch[batch.len() - 1].key.position + 1;
                } else {
                    let page_head = self.read_page().await?;
                    head = head.max(page_head);
                }
                // Examined without a matching event since the client last heard from us.
                if self.cursor - 1 - self.reported >= CHECKPOINT_INTERVAL {
                    self.checkpoint().await?;
                }
            }
            if !caught_up {
                caught_up = true;
                let position = self.cursor - 1;
                self.send(pb::subscribe_response::Message::CaughtUp(pb::CaughtUp {
                    position,
                }))
                .await?;
                self.reported = position;
            } else if self.cursor - 1 > self.reported {
                self.checkpoint().await?;
            }
            // Idle at the head: wait for the feed to move, the client to leave, or shutdown.
            let feed_ended = tokio::select! {
                changed = published.changed() => changed.is_err(),
                _ = self.sender.closed() => return Err(Stop::Quiet),
                _ = self.shutdown.wait_for(|stopping| *stopping) => {
                    return Err(Stop::Failed(status::shutting_down()))
                }
            };
            if feed_ended {
                // The feed ends only at shutdown (or when the log closes).
                return Err(Stop::Failed(status::shutting_down()));
            }
        }
    }

    /// Reads and sends one page from the log at the cursor (outside the live feed's ring).
    /// Returns the log's head when the page was read.
    async fn read_page(&mut self) -> Result<u64, Stop> {
        let (log, filter, cursor, typed) = (self.log.clone(), self.filter.clone(), self.cursor, self.typed);
        let page = blocking(move || {
            // An unfiltered page examines exactly SUBSCRIPTION_PAGE_EVENTS records (the log's own
            // filtered pages may scan far more before returning), so the checkpoint cadence and
            // the work per page stay bounded. Each matching event is encoded from the record read
            // in place (`pages::event_frame`).
            let read = |limit: usize| {
                let mut frames = Vec::new();
                let end = log.scan_all(
                    (cursor, Direction::Forwards),
                    limit,
                    &EventFilter::default(),
                    &mut |record| {
                        if filter.matches_ref(&record.envelope) {
                            frames.push((record.envelope.position, pages::event_frame(record, typed)));
                        }
                        ControlFlow::Continue(())
                    },
                )?;
                Ok((frames, end))
            };
            // Damage inside the page: deliver the intact events before it first; the next page
            // starts at the damage and ends the subscription with DATA_LOSS naming it.
            match read(SUBSCRIPTION_PAGE_EVENTS) {
                Err(LogError::DataLoss { position, .. }) if position > cursor => {
                    read((position - cursor) as usize)
                }
                other => other,
            }
            .map_err(status::from_log_error)
        })
        .await
        .map_err(Stop::Failed)?;
        let (frames, end) = page;
        self.feed
            .read_from_log
            .fetch_add(end.next_position - cursor, Ordering::Relaxed);
        for (position, frame) in frames {
            self.send_frame(frame).await?;
            self.reported = position;
        }
        self.cursor = end.next_position;
        Ok(end.head)
    }

    async fn checkpoint(&mut self) -> Result<(), Stop> {
        let position = self.cursor - 1;
        self.send(pb::subscribe_response::Message::Checkpoint(pb::Checkpoint {
            position,
        }))
        .await?;
        self.reported = position;
        Ok(())
    }

    /// Encodes and sends one message.
    async fn send(&mut self, message: pb::subscribe_response::Message) -> Result<(), Stop> {
        self.send_frame(Frame::encode(message)).await
    }

    /// Sends one encoded answer, waiting for room (back-pressure) unless the server shuts down.
    async fn send_frame(&mut self, frame: Frame) -> Result<(), Stop> {
        tokio::select! {
            sent = self.sender.send(Ok(frame)) => sent.map_err(|_| Stop::Quiet),
            _ = self.shutdown.wait_for(|stopping| *stopping) => Err(Stop::Failed(status::shutting_down())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::time::{OccurredAt, Precision, Timestamp};
    use uuid::Uuid;

    /// A feed event at `position` of `bytes` bytes (its frames are empty: only the ring's
    /// bookkeeping is under test).
    fn event(position: u64, bytes: usize) -> FeedEvent {
        FeedEvent {
            key: Envelope {
                position,
                stream_id: "meeting-1".into(),
                stream_version: position,
                event_id: Uuid::from_u128(position.into()),
                event_type: "MeetingHeld".into(),
                schema_version: 1,
                command_id: Uuid::from_u128(1),
                occurred_at: OccurredAt::new(Timestamp::from_unix_micros(5), Precision::Day),
                recorded_at: Timestamp::from_unix_micros(9),
                recorded_by: "alice".into(),
                correlation_id: None,
                causation_id: None,
                tags: Vec::new(),
                payload: Vec::new(),
            },
            typed: Frame::from_encoded(Vec::new()),
            untyped: Frame::from_encoded(Vec::new()),
            bytes,
        }
    }

    fn positions(ring: &Ring) -> Vec<u64> {
        ring.events.iter().map(|event| event.key.position).collect()
    }

    #[test]
    fn the_ring_stays_contiguous_through_a_gap_and_its_bounds() {
        let mut ring = Ring::starting_at(5);
        ring.push(event(5, 10));
        ring.push(event(6, 10));
        assert_eq!((ring.first, ring.end(), ring.bytes), (5, 7, 20));
        // A gap (never expected from the feed's task): the ring restarts at the event, so no
        // subscriber takes position 9 where it asked for 7.
        ring.push(event(9, 10));
        assert_eq!((ring.first, positions(&ring), ring.bytes), (9, vec![9], 10));
        // Going back restarts too.
        ring.push(event(3, 10));
        assert_eq!((ring.first, positions(&ring)), (3, vec![3]));
        // The byte bound drops the oldest but never the newest.
        ring.push(event(4, LIVE_FEED_BYTES));
        assert_eq!(
            (ring.first, positions(&ring), ring.bytes),
            (4, vec![4], LIVE_FEED_BYTES)
        );
        ring.push(event(5, LIVE_FEED_BYTES + 1));
        assert_eq!((ring.first, positions(&ring)), (5, vec![5]));
        // The event bound.
        let mut ring = Ring::starting_at(1);
        for position in 1..=LIVE_FEED_EVENTS as u64 + 3 {
            ring.push(event(position, 1));
        }
        assert_eq!(
            (ring.first, ring.end(), ring.bytes),
            (4, LIVE_FEED_EVENTS as u64 + 4, LIVE_FEED_EVENTS)
        );
    }
}
