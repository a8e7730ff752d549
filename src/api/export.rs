//! `EventStoreService.Export`: the offline `dipledger export`, streamed by a running server.
//!
//! The export runs on tokio's blocking pool with the library's one export function
//! (`analyst::write_export`), writing into a [`ChunkWriter`] that cuts the output into chunks of
//! at most [`EXPORT_CHUNK_BYTES`] and hands them over a channel of [`EXPORT_CHANNEL_CHUNKS`]; a
//! small task forwards them to the response stream and, at shutdown, ends it with UNAVAILABLE
//! (never a clean end: a client must not take half an export for a whole one). A client that
//! stops reading stops the export at the full channel (memory: at most the channel's chunks plus
//! one being cut); a client that goes away ends it at the next chunk. At most [`MAX_EXPORTS`]
//! run at once (each holds a thread of the blocking pool); beyond that RESOURCE_EXHAUSTED.
//!
//! The bytes are exactly those the offline export writes for the same format and selection,
//! since both run the same function over the same log (a test compares them byte for byte).

use std::io::Write;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::sync::{mpsc, watch, Semaphore};
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;

use super::convert::{self, Violations};
use super::pb;
use super::status;
use crate::analyst::{self, AnalystFormat, ExportFormat};
use crate::log::backup::ExportSelection;
use crate::log::Log;

/// Most exports a server runs at once.
pub const MAX_EXPORTS: usize = 4;
/// Most bytes of the export in one chunk.
pub const EXPORT_CHUNK_BYTES: usize = 64 * 1024;
/// Chunks buffered between the export and the response stream.
pub const EXPORT_CHANNEL_CHUNKS: usize = 16;

/// The response stream of Export.
pub type ExportStream = Pin<Box<dyn tokio_stream::Stream<Item = Result<pb::ExportChunk, Status>> + Send>>;

type Chunks = mpsc::Sender<Result<pb::ExportChunk, Status>>;

/// Checks `request`, takes one of `permits` and starts the export of `log`; the stream ends
/// with UNAVAILABLE when `shutdown` becomes true first.
pub fn start(
    log: &Log,
    permits: &Arc<Semaphore>,
    shutdown: watch::Receiver<bool>,
    request: pb::ExportRequest,
) -> Result<ExportStream, Status> {
    let (format, selection) = parse(request, log.head())?;
    if *shutdown.borrow() {
        return Err(status::shutting_down());
    }
    let permit = permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| status::too_many_exports(MAX_EXPORTS))?;
    let (chunks, received) = mpsc::channel(EXPORT_CHANNEL_CHUNKS);
    let (responses, stream) = mpsc::channel(1);
    let log = log.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        run(&log, format, &selection, chunks);
    });
    tokio::spawn(forward(received, responses, shutdown));
    Ok(Box::pin(ReceiverStream::new(stream)))
}

/// The format and selection a request asks for, or INVALID_ARGUMENT / OUT_OF_RANGE naming the
/// request's field.
fn parse(request: pb::ExportRequest, head: u64) -> Result<(ExportFormat, ExportSelection), Status> {
    let mut violations = Violations::new();
    let format = match pb::ExportFormat::try_from(request.format) {
        Ok(pb::ExportFormat::Jsonl) => Some(ExportFormat::Jsonl),
        Ok(pb::ExportFormat::CameoTsv) => Some(ExportFormat::Coded(AnalystFormat::CameoTsv)),
        Ok(pb::ExportFormat::Plover) => Some(ExportFormat::Coded(AnalystFormat::PloverJsonl)),
        Ok(pb::ExportFormat::Unspecified) | Err(_) => {
            violations.add(
                "format",
                "is required: EXPORT_FORMAT_JSONL, EXPORT_FORMAT_CAMEO_TSV or EXPORT_FORMAT_PLOVER",
            );
            None
        }
    };
    if request.from_position == Some(0) {
        violations.add("from_position", "positions start at 1");
    }
    if let (Some(from), Some(to)) = (request.from_position, request.to_position) {
        if from > to {
            violations.add("from_position", format!("{from} is after to_position {to}"));
        }
    }
    let filter = convert::filter_from_pb(request.filter, "filter", &mut violations);
    violations.finish(()).map_err(|v| status::invalid_argument(&v))?;
    let past_head = match (request.from_position, request.to_position) {
        (_, Some(to)) if to > head => Some(("to_position", to)),
        (Some(from), None) if from > head + 1 => Some(("from_position", from)),
        _ => None,
    };
    if let Some((field, requested)) = past_head {
        return Err(status::out_of_range_field(
            field,
            format!("{requested} is past the head of the log ({head})"),
        ));
    }
    let selection = ExportSelection {
        from: request.from_position.unwrap_or(1),
        to: request.to_position.unwrap_or(head),
        filter,
    };
    Ok((format.expect("checked above"), selection))
}

/// Runs the export into `chunks` (on the blocking pool); an error ends the stream with its
/// status, unless the stream is gone.
fn run(log: &Log, format: ExportFormat, selection: &ExportSelection, chunks: Chunks) {
    let mut writer = ChunkWriter {
        chunks,
        buffer: Vec::with_capacity(EXPORT_CHUNK_BYTES),
        examined: Arc::new(AtomicU64::new(selection.from.saturating_sub(1))),
        to: selection.to,
        gone: false,
    };
    let examined = writer.examined.clone();
    let result = analyst::write_export(log, format, selection, &mut writer, &mut |done, _| {
        examined.store(done, Ordering::Relaxed)
    });
    if let Err(error) = result {
        if !writer.gone {
            let _ = writer.chunks.blocking_send(Err(status::from_log_error(error)));
        }
    }
}

/// Forwards chunks to the response stream until the export ends, the client goes away or the
/// server shuts down (then UNAVAILABLE).
async fn forward(
    mut chunks: mpsc::Receiver<Result<pb::ExportChunk, Status>>,
    responses: Chunks,
    mut shutdown: watch::Receiver<bool>,
) {
    let stopping = async move { drop(shutdown.wait_for(|stopping| *stopping).await) };
    tokio::pin!(stopping);
    let complete = loop {
        let chunk = tokio::select! {
            chunk = chunks.recv() => chunk,
            _ = &mut stopping => break false,
        };
        // The export's end: its last chunk, or its error, was forwarded before.
        let Some(chunk) = chunk else { break true };
        tokio::select! {
            sent = responses.send(chunk) => if sent.is_err() { return },
            _ = &mut stopping => break false,
        }
    };
    if !complete {
        // Stop the export first, then say why the stream ends early.
        drop(chunks);
        let _ = responses.send(Err(status::shutting_down())).await;
    }
}

/// An `io::Write` that cuts what is written into chunks on the channel.
struct ChunkWriter {
    chunks: Chunks,
    buffer: Vec<u8>,
    /// The last position examined (from the export's progress).
    examined: Arc<AtomicU64>,
    to: u64,
    /// The stream was dropped (the client went away or the server stopped).
    gone: bool,
}

impl ChunkWriter {
    fn send(&mut self, data: Vec<u8>) -> std::io::Result<()> {
        let chunk = pb::ExportChunk {
            data,
            examined_position: self.examined.load(Ordering::Relaxed),
            to_position: self.to,
        };
        if self.chunks.blocking_send(Ok(chunk)).is_err() {
            self.gone = true;
            return Err(std::io::Error::new(
                std::io::ErrorKind::BrokenPipe,
                "the export's stream is gone",
            ));
        }
        Ok(())
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let room = EXPORT_CHUNK_BYTES - self.buffer.len();
        let taken = bytes.len().min(room);
        self.buffer.extend_from_slice(&bytes[..taken]);
        if self.buffer.len() == EXPORT_CHUNK_BYTES {
            let full = std::mem::replace(&mut self.buffer, Vec::with_capacity(EXPORT_CHUNK_BYTES));
            self.send(full)?;
        }
        Ok(taken)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buffer.is_empty() {
            let rest = std::mem::take(&mut self.buffer);
            self.send(rest)?;
        }
        Ok(())
    }
}
