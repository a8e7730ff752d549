//! `dipledger export`: offline on a data directory, or online from a running server
//! (`--server`, `EventStoreService.Export`); both write the same bytes. Progress on a terminal.

use std::io::Write;
use std::path::Path;

use anyhow::Context;
use dipledger::analyst::{self, ExportFormat};
use dipledger::api::pb;
use dipledger::api::pb::event_store_service_client::EventStoreServiceClient;
use dipledger::log::backup::ExportSelection;
use dipledger::log::{EventFilter, Log};

use super::progress::Progress;

/// Which events `export` writes: its `--from-position`, `--to-position`, `--type`, `--tag`.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct SelectionArgs {
    /// First position to export (default 1).
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    pub from_position: Option<u64>,
    /// Last position to export (default: the head when the export starts).
    #[arg(long)]
    pub to_position: Option<u64>,
    /// Only these event types (repeatable).
    #[arg(long = "type")]
    pub event_types: Vec<String>,
    /// Only events with one of these tags (repeatable).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
}

impl SelectionArgs {
    fn filter(&self) -> EventFilter {
        EventFilter {
            event_types: self.event_types.clone(),
            stream_prefixes: Vec::new(),
            tags: self.tags.clone(),
        }
    }

    /// The selection over `log`, refused when it names positions past its head.
    fn over(&self, log: &Log) -> anyhow::Result<ExportSelection> {
        let head = log.head();
        let to = self.to_position.unwrap_or(head);
        if to > head {
            anyhow::bail!("--to-position {to} is past the head of the log ({head})");
        }
        let from = self.from_position.unwrap_or(1);
        if self.from_position.is_some() && from > to {
            anyhow::bail!("--from-position {from} is after the last position exported ({to})");
        }
        Ok(ExportSelection {
            from,
            to,
            filter: self.filter(),
        })
    }
}

/// The output: a file, or standard output for `-`.
pub fn output(out: &Path) -> anyhow::Result<Box<dyn Write>> {
    Ok(if out.as_os_str() == "-" {
        Box::new(std::io::BufWriter::new(std::io::stdout().lock()))
    } else {
        let file = std::fs::File::create(out).with_context(|| format!("creating {}", out.display()))?;
        Box::new(std::io::BufWriter::new(file))
    })
}

/// The offline export of `log`; returns the number of lines or rows written.
pub fn offline(
    log: &Log,
    format: ExportFormat,
    selection: &SelectionArgs,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let selection = selection.over(log)?;
    let progress = Progress::new("exporting");
    let first = selection.from.saturating_sub(1);
    let written = analyst::write_export(log, format, &selection, out, &mut |done, to| {
        progress.update(done.saturating_sub(first), to.saturating_sub(first))
    })?;
    progress.finish();
    Ok(written)
}

/// The export from the server at `server`, written to `out` as it arrives; returns the number of
/// bytes. An export the server ends with an error is an error (the output is incomplete).
pub async fn online(
    server: &str,
    format: ExportFormat,
    selection: &SelectionArgs,
    out: &mut dyn Write,
) -> anyhow::Result<u64> {
    let mut store = EventStoreServiceClient::new(super::connect(server).await?)
        .max_decoding_message_size(dipledger::api::server::MAX_RESPONSE_BYTES);
    let request = pb::ExportRequest {
        format: match format {
            ExportFormat::Jsonl => pb::ExportFormat::Jsonl,
            ExportFormat::Coded(analyst::AnalystFormat::CameoTsv) => pb::ExportFormat::CameoTsv,
            ExportFormat::Coded(analyst::AnalystFormat::PloverJsonl) => pb::ExportFormat::Plover,
        } as i32,
        from_position: selection.from_position,
        to_position: selection.to_position,
        filter: Some(pb::EventFilter {
            event_types: selection.event_types.clone(),
            stream_prefixes: Vec::new(),
            tags: selection.tags.clone(),
        }),
    };
    let mut chunks = store.export(request).await.map_err(super::describe)?.into_inner();
    let progress = Progress::new("exporting");
    let first = selection.from_position.unwrap_or(1).saturating_sub(1);
    let mut bytes = 0u64;
    while let Some(chunk) = chunks
        .message()
        .await
        .map_err(|status| super::describe(status).context("the export is incomplete"))?
    {
        out.write_all(&chunk.data).context("writing the export")?;
        bytes += chunk.data.len() as u64;
        progress.update(
            chunk.examined_position.saturating_sub(first),
            chunk.to_position.saturating_sub(first),
        );
    }
    out.flush().context("writing the export")?;
    progress.finish();
    Ok(bytes)
}
