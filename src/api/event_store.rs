//! `EventStoreService`: ReadStream, ReadAll and Subscribe over the [`Log`] (DESIGN.md section 5).
//!
//! Every sled read runs on tokio's blocking pool (`spawn_blocking`), never on a runtime worker.
//!
//! Subscriptions: each subscriber is a catch-up reader with its own cursor. It reads the log in
//! pages of [`SUBSCRIPTION_PAGE_EVENTS`], sends each matching event into a bounded channel of
//! [`SUBSCRIPTION_CHANNEL_CAPACITY`] messages that feeds the response stream, and when it reaches
//! the head it sends `CaughtUp` (once) and waits on [`Log::watch_head`] for the durable head to
//! move, then reads the new range. There is no queue of events per subscriber beyond that one
//! page and that one channel: a client that stops reading fills the channel (and HTTP/2 flow
//! control windows), the reader then waits on `send`, and the log is read again from the cursor
//! once the client reads. Memory per subscriber is therefore bounded by construction:
//! one page (at most 256 records of at most `MAX_RECORD_BYTES` = 80 KiB) plus 64 messages plus
//! the transport's buffers, whatever the client does and however far behind it is. Events are
//! never lost or skipped, since the log itself is the buffer.
//!
//! A filtered subscription that examines events without delivering any sends
//! `Checkpoint{position}` every [`CHECKPOINT_INTERVAL`] examined events and whenever it is idle
//! at the head, so a client can resume (`after_position`) without rescanning.
//!
//! At most `max_subscriptions` (default [`MAX_SUBSCRIPTIONS`]) run at once; beyond that
//! Subscribe fails with RESOURCE_EXHAUSTED. Every subscription watches the server's shutdown
//! signal and ends its stream cleanly when it fires.

use std::pin::Pin;
use std::sync::Arc;

use prost::Message as _;
use tokio::sync::{mpsc, watch, OwnedSemaphorePermit, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::convert::{self, Violations};
use super::pb;
use super::pb::event_store_service_server::EventStoreService;
use super::status;
use crate::log::limits::MAX_READ_PAGE_EVENTS;
use crate::log::{Direction, EventFilter, Log, LogError, RecordedEvent};

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

/// The EventStoreService implementation.
#[derive(Clone)]
pub struct EventStore {
    log: Log,
    subscriptions: Arc<Semaphore>,
    max_subscriptions: usize,
    shutdown: watch::Receiver<bool>,
}

impl EventStore {
    /// A service over `log` allowing `max_subscriptions` concurrent subscriptions; every
    /// subscription ends when `shutdown` becomes true.
    pub fn new(log: Log, max_subscriptions: usize, shutdown: watch::Receiver<bool>) -> EventStore {
        EventStore {
            log,
            subscriptions: Arc::new(Semaphore::new(max_subscriptions)),
            max_subscriptions,
            shutdown,
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

fn page_limit(limit: u32) -> usize {
    match limit {
        0 => DEFAULT_PAGE_EVENTS,
        limit => (limit as usize).min(MAX_READ_PAGE_EVENTS),
    }
}

/// Converts events until the page reaches [`MAX_PAGE_BYTES`] (always at least one). Returns the
/// envelopes and whether the page was cut short.
fn convert_page(events: &[RecordedEvent]) -> (Vec<pb::EventEnvelope>, bool) {
    let mut bytes = 0;
    let mut out = Vec::with_capacity(events.len());
    for event in events {
        let envelope = convert::envelope_to_pb(event);
        let len = envelope.encoded_len();
        if !out.is_empty() && bytes + len > MAX_PAGE_BYTES {
            return (out, true);
        }
        bytes += len;
        out.push(envelope);
    }
    (out, false)
}

type SubscribeStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::SubscribeResponse, Status>> + Send>>;

#[tonic::async_trait]
impl EventStoreService for EventStore {
    async fn read_stream(
        &self,
        request: Request<pb::ReadStreamRequest>,
    ) -> Result<Response<pb::ReadStreamResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let direction = convert::direction_from_pb(request.direction, "direction", &mut violations);
        if request.from_version == Some(0) {
            violations.add("from_version", "versions start at 1");
        }
        if request.stream_id.is_empty() {
            violations.add("stream_id", "is required");
        }
        violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
        let limit = page_limit(request.limit);
        let log = self.log.clone();
        let response = blocking(move || {
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
            let events = log
                .read_stream(&stream_id, from, direction, limit)
                .map_err(status::from_log_error)?;
            let (envelopes, _) = convert_page(&events);
            let next_version = match (envelopes.last(), direction) {
                (Some(last), Direction::Forwards) => last.stream_version + 1,
                (Some(last), Direction::Backwards) => last.stream_version - 1,
                (None, _) => from,
            };
            let reached_end = match direction {
                Direction::Forwards => next_version > current,
                Direction::Backwards => next_version == 0,
            };
            Ok(pb::ReadStreamResponse {
                events: envelopes,
                stream_version: current,
                next_version: if reached_end && direction == Direction::Forwards {
                    current + 1
                } else {
                    next_version
                },
                reached_end,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    async fn read_all(
        &self,
        request: Request<pb::ReadAllRequest>,
    ) -> Result<Response<pb::ReadAllResponse>, Status> {
        let request = request.into_inner();
        let mut violations = Violations::new();
        let direction = convert::direction_from_pb(request.direction, "direction", &mut violations);
        let filter = convert::filter_from_pb(request.filter, "filter", &mut violations);
        violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
        let limit = page_limit(request.limit);
        let log = self.log.clone();
        let response = blocking(move || {
            let from = match (request.from_position, direction) {
                (Some(from), _) => from,
                (None, Direction::Forwards) => 1,
                (None, Direction::Backwards) => log.head(),
            };
            let page = log
                .read_all(from, direction, limit, &filter)
                .map_err(status::from_log_error)?;
            let (events, cut_short) = convert_page(&page.events);
            let (next_position, reached_end) = if cut_short {
                // Continue at the first event left out of the page.
                (page.events[events.len()].position(), false)
            } else {
                (page.next_position, page.reached_end)
            };
            Ok(pb::ReadAllResponse {
                events,
                next_position,
                head: page.head,
                reached_end,
            })
        })
        .await?;
        Ok(Response::new(response))
    }

    type SubscribeStream = SubscribeStream;

    async fn subscribe(
        &self,
        request: Request<pb::SubscribeRequest>,
    ) -> Result<Response<SubscribeStream>, Status> {
        let request = request.into_inner();
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
        let subscription = Subscription {
            log: self.log.clone(),
            filter,
            cursor: after + 1,
            reported: after,
            sender,
            shutdown: self.shutdown.clone(),
            _permit: permit,
        };
        tokio::spawn(subscription.run());
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }
}

/// Why a subscription stopped early.
enum Stop {
    /// The client went away or the server is shutting down: end quietly.
    Quiet,
    /// A read failed: send this status, then end.
    Failed(Status),
}

/// One subscriber: a catch-up reader at its own cursor.
struct Subscription {
    log: Log,
    filter: EventFilter,
    /// The next position to examine.
    cursor: u64,
    /// The highest position the client has been told about (event, checkpoint or caught-up).
    reported: u64,
    sender: mpsc::Sender<Result<pb::SubscribeResponse, Status>>,
    shutdown: watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
}

impl Subscription {
    async fn run(mut self) {
        if let Err(Stop::Failed(status)) = self.serve().await {
            let _ = self.sender.send(Err(status)).await;
        }
    }

    async fn serve(&mut self) -> Result<(), Stop> {
        let mut head_watch = self.log.watch_head();
        let mut caught_up = false;
        loop {
            let mut head = *head_watch.borrow_and_update();
            while self.cursor <= head {
                if *self.shutdown.borrow() {
                    return Err(Stop::Quiet);
                }
                let (log, filter, cursor) = (self.log.clone(), self.filter.clone(), self.cursor);
                let page = blocking(move || {
                    // An unfiltered page examines exactly SUBSCRIPTION_PAGE_EVENTS records (the
                    // log's own filtered pages may scan far more before returning), so the
                    // checkpoint cadence and the work per page stay bounded.
                    let page = log
                        .read_all(
                            cursor,
                            Direction::Forwards,
                            SUBSCRIPTION_PAGE_EVENTS,
                            &EventFilter::default(),
                        )
                        .map_err(status::from_log_error)?;
                    let events: Vec<_> = page
                        .events
                        .iter()
                        .filter(|event| filter.matches(event.envelope()))
                        .map(convert::envelope_to_pb)
                        .collect();
                    Ok((events, page.next_position, page.head))
                })
                .await
                .map_err(Stop::Failed)?;
                let (events, next_position, page_head) = page;
                for event in events {
                    let position = event.position;
                    self.send(pb::subscribe_response::Message::Event(event)).await?;
                    self.reported = position;
                }
                self.cursor = next_position;
                head = head.max(page_head);
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
            // Idle at the head: wait for it to move, the client to leave, or shutdown.
            tokio::select! {
                changed = head_watch.changed() => {
                    if changed.is_err() {
                        return Err(Stop::Failed(status::shutting_down()));
                    }
                }
                _ = self.sender.closed() => return Err(Stop::Quiet),
                _ = self.shutdown.wait_for(|stopping| *stopping) => return Err(Stop::Quiet),
            }
        }
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

    /// Sends one message, waiting for room (back-pressure) unless the server shuts down.
    async fn send(&mut self, message: pb::subscribe_response::Message) -> Result<(), Stop> {
        let response = pb::SubscribeResponse {
            message: Some(message),
        };
        tokio::select! {
            sent = self.sender.send(Ok(response)) => sent.map_err(|_| Stop::Quiet),
            _ = self.shutdown.wait_for(|stopping| *stopping) => Err(Stop::Quiet),
        }
    }
}
