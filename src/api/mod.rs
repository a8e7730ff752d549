//! The gRPC API (package `dipledger.v1`): the only module that knows prost and tonic.
//!
//! Thin by design: requests are converted to domain or log values, handed to the layer below,
//! and the results converted back. Files:
//! - [`pb`]: the generated messages, clients and servers (from `proto/dipledger/v1/*.proto`).
//! - [`convert`]: every conversion between proto messages and domain/log values (envelopes,
//!   domain events, command requests with validation into field violations).
//! - [`status`]: every mapping of an error to a `tonic::Status` (the table in docs/api.md).
//! - [`commands`]: `CommandService` (one RPC per domain command, SubmitBatch) over the ledger.
//! - [`event_store`]: `EventStoreService` (ReadStream, ReadAll, Subscribe) over the log.
//! - [`decode_errors`]: the layer that maps tonic's own request-decoding errors (a message over
//!   the size limit, bytes that are not protobuf) to RESOURCE_EXHAUSTED and INVALID_ARGUMENT.
//! - [`frames`]: Subscribe served with each live event encoded once for every subscriber, and
//!   ReadAll and ReadStream with pages encoded by [`pages`] (the rest of `EventStoreService`
//!   through the generated server).
//! - [`pages`]: ReadAll and ReadStream pages and catch-up events written straight from the stored
//!   records, with [`wire`] (protobuf fields written by hand, as prost writes them).
//! - [`export`]: `EventStoreService.Export`, the offline export streamed in chunks.
//! - [`health`]: gRPC health per service (commands NOT_SERVING while the writer is poisoned,
//!   queries while the read models replay).
//! - [`observe`]: the outermost layer: one log line per request (method, principal, status,
//!   latency).
//! - [`metrics`]: the Prometheus endpoint (`--metrics-listen`).
//! - [`monitor`]: warnings in the log for slow fsyncs and lagging read models.
//! - [`server`]: wiring (health, reflection, limits, graceful shutdown) and [`server::serve`].

pub mod audit;
pub mod commands;
pub mod convert;
pub mod decode_errors;
pub mod event_store;
pub mod export;
pub mod frames;
pub mod health;
pub mod metrics;
pub mod monitor;
pub mod observe;
pub mod pages;
pub mod query;
pub mod server;
pub mod status;
pub mod tls;
pub mod tokens;
pub mod wire;

/// The generated protobuf messages and gRPC services of package `dipledger.v1`.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod pb {
    tonic::include_proto!("dipledger.v1");

    /// The encoded file descriptor set of the API (with its imports), for server reflection.
    pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("dipledger_descriptor");

    impl CommandHeader {
        /// A header with a fresh command id (a UUID v7) and nothing else: what a source command
        /// takes.
        pub fn fresh() -> CommandHeader {
            CommandHeader {
                command_id: uuid::Uuid::now_v7().to_string(),
                ..CommandHeader::default()
            }
        }

        /// A header with a fresh command id, the valid time and the citations.
        pub fn with_provenance(occurred_at: OccurredAt, sources: Vec<SourceCitation>) -> CommandHeader {
            CommandHeader {
                occurred_at: Some(occurred_at),
                sources,
                ..CommandHeader::fresh()
            }
        }
    }

    impl SourceCitation {
        /// A citation of `source_id` without a quote.
        pub fn of(source_id: impl Into<String>) -> SourceCitation {
            SourceCitation {
                source_id: source_id.into(),
                quote: None,
            }
        }
    }
}
