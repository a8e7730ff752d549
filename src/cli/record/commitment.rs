//! `dipledger commitment ...`: commitments from record to assessment.

use clap::{Args, Subcommand};
use dipledger::api::pb;

use super::*;

/// A commitment's details.
#[derive(Debug, Args)]
pub struct CommitmentDetailsArgs {
    /// new or reaffirmation.
    #[arg(long, default_value = "new")]
    kind: String,
    /// A committing party (repeatable).
    #[arg(long = "party", required = true)]
    parties: Vec<String>,
    /// An official (UUID) who voiced it (repeatable).
    #[arg(long = "voiced-by")]
    voiced_by: Vec<String>,
    /// A party it is made to (repeatable).
    #[arg(long = "counterparty")]
    counterparties: Vec<String>,
    /// The text, verbatim where possible.
    #[arg(long)]
    text: String,
    /// The text is a verbatim quote.
    #[arg(long)]
    verbatim: bool,
    /// A topic slug (repeatable).
    #[arg(long = "topic")]
    topics: Vec<String>,
    /// aspirational, specific or measurable.
    #[arg(long, default_value = "aspirational")]
    specificity: String,
    /// unspecified, material or diplomatic.
    #[arg(long, default_value = "unspecified")]
    cooperation: String,
    /// Due date, ISO 8601 with its precision.
    #[arg(long)]
    due_by: Option<String>,
    /// The meeting (UUID) it was made at.
    #[arg(long)]
    at_meeting: Option<String>,
}

/// `dipledger commitment ...`
#[derive(Debug, Subcommand)]
pub enum CommitmentVerb {
    /// Commitments due before a date and not fulfilled or otherwise closed.
    #[command(after_help = "Example:\n  dipledger commitment overdue --on 2025-06-30")]
    Overdue {
        /// The date (ISO 8601); default now.
        #[arg(long)]
        on: Option<String>,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// A party's compliance: its assessed commitments and the sum of their latest scores.
    Compliance {
        /// The party, e.g. LBY.
        party: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Show one commitment.
    Show {
        /// The commitment id (a UUID).
        commitment_id: String,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// List commitments, filtered.
    #[command(after_help = "Example:\n  dipledger commitment list --party FRA --status fulfilled")]
    List {
        /// Only commitments this party makes or receives.
        #[arg(long)]
        party: Option<String>,
        /// Only commitments with this topic.
        #[arg(long)]
        topic: Option<String>,
        /// Only commitments in this state: made, reaffirmed, in-progress, fulfilled, lapsed, withdrawn, superseded.
        #[arg(long)]
        status: Option<String>,
        #[command(flatten)]
        read: crate::cli::read::ReadArgs,
    },
    /// Record a commitment (new or a reaffirmation of an earlier one).
    Record {
        /// The commitment id (a UUID); made up when absent.
        #[arg(long)]
        commitment_id: Option<String>,
        #[command(flatten)]
        details: CommitmentDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Parties reaffirm a recorded commitment.
    Reaffirm {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// A reaffirming party (repeatable).
        #[arg(long = "by", required = true)]
        reaffirmed_by: Vec<String>,
        /// An official (UUID) who voiced it (repeatable).
        #[arg(long = "voiced-by")]
        voiced_by: Vec<String>,
        /// The meeting (a UUID) at which it happened.
        #[arg(long)]
        at_meeting: Option<String>,
        /// The text.
        #[arg(long)]
        text: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Progress is reported.
    Progress {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// What happened.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment was fulfilled.
    Fulfil {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// What happened.
        #[arg(long)]
        summary: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment lapsed.
    Lapse {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// The commitment was withdrawn.
    Withdraw {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        common: Common,
    },
    /// Another commitment superseded it.
    Supersede {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// The superseding commitment (a UUID).
        #[arg(long)]
        by: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// A compliance assessment: `--score PARTY=-1|0|1` (repeatable).
    Assess {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// interim or final.
        #[arg(long, default_value = "interim")]
        stage: String,
        /// Who assessed.
        #[arg(long)]
        assessor: String,
        /// Why this score.
        #[arg(long)]
        rationale: String,
        /// A score `PARTY=-1|0|1` (repeatable).
        #[arg(long = "score", required = true)]
        scores: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
    /// Correct a commitment's details.
    Correct {
        /// The commitment id (a UUID).
        commitment_id: String,
        /// The stream version whose values are in effect (see `dipledger history`).
        #[arg(long)]
        corrects_version: u64,
        /// Why.
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        details: CommitmentDetailsArgs,
        #[command(flatten)]
        common: Common,
    },
    /// Retract one of the commitment's events.
    Retract {
        /// The commitment id (a UUID).
        commitment_id: String,
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

impl CommitmentDetailsArgs {
    fn to_pb(&self) -> anyhow::Result<pb::CommitmentDetails> {
        Ok(pb::CommitmentDetails {
            kind: enum_value("COMMITMENT_KIND", &self.kind, "kind", |n| {
                pb::CommitmentKind::from_str_name(n).map(|v| v as i32)
            })?,
            committing_parties: self.parties.clone(),
            voiced_by: self.voiced_by.clone(),
            counterparties: self.counterparties.clone(),
            text: self.text.clone(),
            verbatim: self.verbatim,
            topics: self.topics.clone(),
            specificity: enum_value("SPECIFICITY", &self.specificity, "specificity", |n| {
                pb::Specificity::from_str_name(n).map(|v| v as i32)
            })?,
            cooperation: enum_value("COOPERATION_KIND", &self.cooperation, "cooperation", |n| {
                pb::CooperationKind::from_str_name(n).map(|v| v as i32)
            })?,
            due_by: optional_occurred(&self.due_by, "due-by")?,
            made_at_meeting: self.at_meeting.clone(),
        })
    }
}

/// Runs a `commitment` verb.
pub async fn commitment(verb: CommitmentVerb) -> anyhow::Result<String> {
    Ok(match verb {
        CommitmentVerb::Overdue { on, read } => {
            crate::cli::read::commitment_overdue(
                &read.server,
                on.as_deref(),
                read.as_of.as_deref(),
                read.json,
            )
            .await?
        }
        CommitmentVerb::Compliance { party, read } => {
            crate::cli::read::commitment_compliance(&read.server, &party, read.as_of.as_deref(), read.json)
                .await?
        }
        CommitmentVerb::Show { commitment_id, read } => {
            crate::cli::read::commitment_show(&read.server, &commitment_id, read.as_of.as_deref(), read.json)
                .await?
        }
        CommitmentVerb::List {
            party,
            topic,
            status,
            read,
        } => {
            let status = match status {
                Some(status) => enum_value("COMMITMENT_STATUS", &status, "status", |n| {
                    pb::CommitmentStatus::from_str_name(n).map(|v| v as i32)
                })?,
                None => 0,
            };
            let filter = pb::ListCommitmentsRequest {
                party,
                topic,
                status,
                ..Default::default()
            };
            crate::cli::read::commitment_list(&read.server, filter, read.as_of.as_deref(), read.json).await?
        }
        CommitmentVerb::Record {
            commitment_id,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                record_commitment,
                request!(RecordCommitmentRequest {
                    commitment_id: commitment_id.unwrap_or_default(),
                    details: Some(details.to_pb()?)
                })
            )
        }
        CommitmentVerb::Reaffirm {
            commitment_id,
            reaffirmed_by,
            voiced_by,
            at_meeting,
            text,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                reaffirm_commitment,
                request!(ReaffirmCommitmentRequest {
                    commitment_id: commitment_id,
                    reaffirmed_by: reaffirmed_by,
                    voiced_by: voiced_by,
                    at_meeting: at_meeting,
                    text: text
                })
            )
        }
        CommitmentVerb::Progress {
            commitment_id,
            summary,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                report_commitment_progress,
                request!(ReportCommitmentProgressRequest {
                    commitment_id: commitment_id,
                    summary: summary
                })
            )
        }
        CommitmentVerb::Fulfil {
            commitment_id,
            summary,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                fulfil_commitment,
                request!(FulfilCommitmentRequest {
                    commitment_id: commitment_id,
                    summary: summary
                })
            )
        }
        CommitmentVerb::Lapse {
            commitment_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                mark_commitment_lapsed,
                request!(MarkCommitmentLapsedRequest {
                    commitment_id: commitment_id,
                    reason: reason
                })
            )
        }
        CommitmentVerb::Withdraw {
            commitment_id,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                withdraw_commitment,
                request!(WithdrawCommitmentRequest {
                    commitment_id: commitment_id,
                    reason: reason
                })
            )
        }
        CommitmentVerb::Supersede {
            commitment_id,
            by,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                supersede_commitment,
                request!(SupersedeCommitmentRequest {
                    commitment_id: commitment_id,
                    superseded_by: by,
                    reason: reason
                })
            )
        }
        CommitmentVerb::Assess {
            commitment_id,
            stage,
            assessor,
            rationale,
            scores,
            common,
        } => {
            let mut c = client(&common.server).await?;
            let scores = scores
                .iter()
                .map(|text| {
                    let (party, score) = text
                        .split_once('=')
                        .with_context(|| format!("--score {text:?} must be PARTY=-1|0|1"))?;
                    let score: i32 = score
                        .parse()
                        .with_context(|| format!("--score {text:?} must be PARTY=-1|0|1"))?;
                    anyhow::Ok(pb::PartyScore {
                        party: party.to_owned(),
                        score,
                    })
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let stage = enum_value("ASSESSMENT_STAGE", &stage, "stage", |n| {
                pb::AssessmentStage::from_str_name(n).map(|v| v as i32)
            })?;
            send!(
                c,
                common,
                assess_compliance,
                request!(AssessComplianceRequest {
                    commitment_id: commitment_id,
                    stage: stage,
                    assessor: assessor,
                    rationale: rationale,
                    scores: scores
                })
            )
        }
        CommitmentVerb::Correct {
            commitment_id,
            corrects_version,
            reason,
            details,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                correct_commitment,
                request!(CorrectCommitmentRequest {
                    commitment_id: commitment_id,
                    corrects_version: corrects_version,
                    reason: reason,
                    details: Some(details.to_pb()?)
                })
            )
        }
        CommitmentVerb::Retract {
            commitment_id,
            retracts_version,
            reason,
            common,
        } => {
            let mut c = client(&common.server).await?;
            send!(
                c,
                common,
                retract_commitment_event,
                request!(RetractCommitmentEventRequest {
                    commitment_id: commitment_id,
                    retracts_version: retracts_version,
                    reason: reason
                })
            )
        }
    })
}
