//! `dipledger source ...`: register and correct sources.

use clap::{Args, Subcommand};
use dipledger::api::pb;

use super::*;

/// A source's details.
#[derive(Debug, Args)]
pub struct SourceDetailsArgs {
    /// URL of the document.
    #[arg(long)]
    url: Option<String>,
    /// Publisher.
    #[arg(long)]
    publisher: Option<String>,
    /// Title.
    #[arg(long)]
    title: Option<String>,
    /// Publication time, ISO 8601 with its precision.
    #[arg(long)]
    published_at: Option<String>,
    /// When it was retrieved, ISO 8601 (default: now).
    #[arg(long)]
    retrieved_at: Option<String>,
    /// Language tag, e.g. en.
    #[arg(long, default_value = "en")]
    language: String,
}

/// `dipledger source ...`
#[derive(Debug, Subcommand)]
pub enum SourceVerb {
    /// Show one source: title, URL, publisher, dates.
    Show {
        /// The source id (a UUID).
        source_id: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// List the registered sources.
    List {
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Register a document that reports activity.
    #[command(
        after_help = "Example:\n  dipledger source register --url https://example.org/news/1 --title \"Libya and France\" --published-at 2025-01-16"
    )]
    Register {
        /// The source id (a UUID); made up when absent.
        #[arg(long)]
        source_id: Option<String>,
        #[command(flatten)]
        details: SourceDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a source's details.
    Correct {
        /// The source id (a UUID).
        source_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: SourceDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
}

impl SourceDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::SourceDetails> {
        let retrieved = match &self.retrieved_at {
            Some(text) => pb_time(text, "retrieved-at")?,
            None => {
                let now = dipledger::log::Clock::now(&dipledger::log::SystemClock).unix_micros();
                prost_types::Timestamp {
                    seconds: now.div_euclid(1_000_000),
                    nanos: (now.rem_euclid(1_000_000) * 1_000) as i32,
                }
            }
        };
        Ok(pb::SourceDetails {
            url: self.url.clone(),
            publisher: self.publisher.clone(),
            title: self.title.clone(),
            published_at: optional_occurred(&self.published_at, "published-at")?,
            retrieved_at: Some(retrieved),
            language: self.language.clone(),
        })
    }
}

/// Runs a `source` verb.
pub async fn source(verb: SourceVerb) -> anyhow::Result<String> {
    Ok(match verb {
        SourceVerb::Show { source_id, read } => {
            crate::cli::read::source_show(&read.server, &source_id, read.as_of.as_deref(), read.json).await?
        }
        SourceVerb::List { read } => {
            crate::cli::read::source_list(&read.server, read.as_of.as_deref(), read.json).await?
        }
        SourceVerb::Register {
            source_id,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let request = pb::RegisterSourceRequest {
                source_id: source_id.unwrap_or_default(),
                details: Some(details.to_pb()?),
                ..Default::default()
            };
            send!(c, common, register_source, request)
        }
        SourceVerb::Correct {
            source_id,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let request = pb::CorrectSourceRequest {
                source_id,
                corrects_version,
                reason,
                details: Some(details.to_pb()?),
                ..Default::default()
            };
            send!(c, common, correct_source, request)
        }
    })
}
