//! `dipledger party ...`: register and correct parties.

use clap::{Args, Subcommand};
use dipledger::api::pb;

use super::*;

/// A party's details.
#[derive(Debug, Args)]
pub struct PartyDetailsArgs {
    /// The name, e.g. Libya.
    #[arg(long)]
    name: String,
    /// state, government or international-organisation.
    #[arg(long, default_value = "state")]
    kind: String,
    /// ISO 3166 alpha-2.
    #[arg(long)]
    iso2: Option<String>,
    /// ISO 3166 alpha-3.
    #[arg(long)]
    iso3: Option<String>,
    /// Wikidata QID.
    #[arg(long)]
    wikidata: Option<String>,
    /// CAMEO actor code.
    #[arg(long)]
    cameo: Option<String>,
}

/// `dipledger party ...`
#[derive(Debug, Subcommand)]
pub enum PartyVerb {
    /// Show one party: name, kind, codes.
    #[command(after_help = "Example:\n  dipledger party show LBY")]
    Show {
        /// The party code, e.g. LBY.
        code: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// List the registered parties.
    List {
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Register a party (a state, government or international organisation).
    #[command(
        after_help = "Example:\n  dipledger party register LBY --name Libya --iso2 LY --iso3 LBY --occurred-at 2025-01-15 --source <source-id>"
    )]
    Register {
        /// The party code, e.g. LBY.
        code: String,
        #[command(flatten)]
        details: PartyDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a party's details (name the version whose details are in effect).
    Correct {
        /// The party code, e.g. LBY.
        code: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: PartyDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
}

impl PartyDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::PartyDetails> {
        Ok(pb::PartyDetails {
            kind: enum_value("PARTY_KIND", &self.kind, "kind", |n| {
                pb::PartyKind::from_str_name(n).map(|v| v as i32)
            })?,
            name: self.name.clone(),
            iso_alpha2: self.iso2.clone(),
            iso_alpha3: self.iso3.clone(),
            wikidata_qid: self.wikidata.clone(),
            cameo_code: self.cameo.clone(),
        })
    }
}

/// Runs a `party` verb.
pub async fn party(verb: PartyVerb) -> anyhow::Result<String> {
    Ok(match verb {
        PartyVerb::Show { code, read } => {
            crate::cli::read::party_show(&read.server, &code, read.as_of.as_deref(), read.json).await?
        }
        PartyVerb::List { read } => {
            crate::cli::read::party_list(&read.server, read.as_of.as_deref(), read.json).await?
        }
        PartyVerb::Register {
            code,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                register_party,
                request!(RegisterPartyRequest {
                    code: code,
                    details: Some(details.to_pb()?)
                })
            )
        }
        PartyVerb::Correct {
            code,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_party,
                request!(CorrectPartyRequest {
                    code: code,
                    corrects_version: corrects_version,
                    reason: reason,
                    details: Some(details.to_pb()?)
                })
            )
        }
    })
}
