//! `dipledger official ...`: officials and their offices.

use clap::{Args, Subcommand};
use dipledger::api::pb;

use super::*;

/// An office.
#[derive(Debug, Args)]
pub struct OfficeArgs {
    /// The post, e.g. "Ambassador of France to Libya".
    #[arg(long)]
    post: String,
    /// Code of the party the office belongs to.
    #[arg(long)]
    party: String,
    /// Code of the party the holder is accredited to.
    #[arg(long)]
    accredited_to: Option<String>,
    /// Start of the tenure, ISO 8601.
    #[arg(long)]
    from: Option<String>,
    /// End of the tenure, ISO 8601.
    #[arg(long)]
    to: Option<String>,
}

/// `dipledger official ...`
#[derive(Debug, Subcommand)]
pub enum OfficialVerb {
    /// List the officials of a party, with the posts they hold.
    #[command(after_help = "Example:\n  dipledger official list --party FRA")]
    List {
        /// The party, e.g. FRA.
        #[arg(long)]
        party: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Whom an official met: names, posts held today, meetings, most first.
    Contacts {
        /// The official id (a UUID).
        official_id: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Show one official with the offices held over time.
    Show {
        /// The official id (a UUID).
        official_id: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Register an official with the office they hold.
    #[command(
        after_help = "Example:\n  dipledger official register --name \"Mostafa Mihraje\" --post \"Ambassador of France to Libya\" --party FRA --accredited-to LBY --occurred-at 2025-01-15 --source <id>"
    )]
    Register {
        /// The official id (a UUID); made up when absent.
        #[arg(long)]
        official_id: Option<String>,
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        office: OfficeArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Record that an official took up an office.
    Appoint {
        /// The official id (a UUID).
        official_id: String,
        #[command(flatten)]
        office: OfficeArgs,
        #[command(flatten)]
        common: Common,
    },
    /// End a tenure (name the version of the appointment).
    EndTenure {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version of the appointment (see `dipledger history`).
        #[arg(long)]
        tenure_version: u64,
        /// When it ended, ISO 8601.
        #[arg(long)]
        ended_at: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Correct an official's name.
    CorrectName {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        /// The name.
        #[arg(long)]
        name: String,
        #[command(flatten)]
        common: Common,
    },
    /// Retract one of the official's events.
    Retract {
        /// The official id (a UUID).
        official_id: String,
        /// The stream version of the event to retract (see `dipledger history`).
        #[arg(long)]
        retracts_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
}

impl OfficeArgs {
    fn to_pb(&self) -> anyhow::Result<pb::OfficeTerm> {
        Ok(pb::OfficeTerm {
            post: self.post.clone(),
            party: self.party.clone(),
            accredited_to: self.accredited_to.clone(),
            from: optional_occurred(&self.from, "from")?,
            to: optional_occurred(&self.to, "to")?,
        })
    }
}

/// Runs an `official` verb.
pub async fn official(verb: OfficialVerb) -> anyhow::Result<String> {
    Ok(match verb {
        OfficialVerb::List { party, read } => {
            crate::cli::read::official_list(&read.server, &party, read.as_of.as_deref(), read.json).await?
        }
        OfficialVerb::Contacts { official_id, read } => {
            crate::cli::read::official_contacts(&read.server, &official_id, read.as_of.as_deref(), read.json)
                .await?
        }
        OfficialVerb::Show { official_id, read } => {
            crate::cli::read::official_show(&read.server, &official_id, read.as_of.as_deref(), read.json)
                .await?
        }
        OfficialVerb::Register {
            official_id,
            name,
            office,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                register_official,
                request!(RegisterOfficialRequest {
                    official_id: official_id.unwrap_or_default(),
                    name: name,
                    offices: vec![office.to_pb()?]
                })
            )
        }
        OfficialVerb::Appoint {
            official_id,
            office,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                appoint_official,
                request!(AppointOfficialRequest {
                    official_id: official_id,
                    office: Some(office.to_pb()?)
                })
            )
        }
        OfficialVerb::EndTenure {
            official_id,
            tenure_version,
            ended_at,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                end_tenure,
                request!(EndTenureRequest {
                    official_id: official_id,
                    tenure_version: tenure_version,
                    ended_at: Some(pb_occurred(&ended_at, "ended-at")?),
                    reason: reason
                })
            )
        }
        OfficialVerb::CorrectName {
            official_id,
            corrects_version,
            reason,
            name,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_official_name,
                request!(CorrectOfficialNameRequest {
                    official_id: official_id,
                    corrects_version: corrects_version,
                    reason: reason,
                    name: name
                })
            )
        }
        OfficialVerb::Retract {
            official_id,
            retracts_version,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                retract_official_event,
                request!(RetractOfficialEventRequest {
                    official_id: official_id,
                    retracts_version: retracts_version,
                    reason: reason
                })
            )
        }
    })
}
