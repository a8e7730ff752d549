//! Commitments, both directions: their details, assessment stages and scores, the commitment
//! requests (from a client, and as a client sends them), the commitment events, and the
//! commitment view with its status.

use uuid::Uuid;

use super::common::{
    command_request, entity_id_from_pb, entity_ids, ids_to_pb, new_entity_id, occurred_at_to_pb,
    optional_entity_id, optional_occurred_at, party_code_from_pb, party_codes_from_pb, provenance_to_pb,
    request_to_pb, required, Violations,
};
use crate::api::pb;
use crate::domain::commitment::{
    self, AssessmentStage, CommitmentDetails, CommitmentKind, CooperationKind, PartyScore, Specificity,
};
use crate::domain::common::CommitmentId;
use crate::domain::DomainCommand;
use crate::projections::{CommitmentRow, CommitmentStatusView};

fn commitment_details_to_pb(details: &CommitmentDetails) -> pb::CommitmentDetails {
    pb::CommitmentDetails {
        kind: match details.kind {
            CommitmentKind::New => pb::CommitmentKind::New,
            CommitmentKind::Reaffirmation => pb::CommitmentKind::Reaffirmation,
        } as i32,
        committing_parties: details.committing_parties.clone(),
        voiced_by: ids_to_pb(&details.voiced_by),
        counterparties: details.counterparties.clone(),
        text: details.text.clone(),
        verbatim: details.verbatim,
        topics: details.topics.clone(),
        specificity: match details.specificity {
            Specificity::Aspirational => pb::Specificity::Aspirational,
            Specificity::Specific => pb::Specificity::Specific,
            Specificity::Measurable => pb::Specificity::Measurable,
        } as i32,
        cooperation: match details.cooperation {
            CooperationKind::Unspecified => pb::CooperationKind::Unspecified,
            CooperationKind::Material => pb::CooperationKind::Material,
            CooperationKind::Diplomatic => pb::CooperationKind::Diplomatic,
        } as i32,
        due_by: details.due_by.map(occurred_at_to_pb),
        made_at_meeting: details.made_at_meeting.map(|id| id.to_string()),
    }
}

fn commitment_details_from_pb(
    details: Option<&pb::CommitmentDetails>,
    field: &str,
    violations: &mut Violations,
) -> CommitmentDetails {
    let default = pb::CommitmentDetails::default();
    let details = required(details, field, violations).unwrap_or(&default);
    let kind = match pb::CommitmentKind::try_from(details.kind) {
        Ok(pb::CommitmentKind::New) => CommitmentKind::New,
        Ok(pb::CommitmentKind::Reaffirmation) => CommitmentKind::Reaffirmation,
        Ok(pb::CommitmentKind::Unspecified) | Err(_) => {
            violations.add(format!("{field}.kind"), "is required (NEW or REAFFIRMATION)");
            CommitmentKind::New
        }
    };
    let specificity = match pb::Specificity::try_from(details.specificity) {
        Ok(pb::Specificity::Aspirational) => Specificity::Aspirational,
        Ok(pb::Specificity::Specific) => Specificity::Specific,
        Ok(pb::Specificity::Measurable) => Specificity::Measurable,
        Ok(pb::Specificity::Unspecified) | Err(_) => {
            violations.add(
                format!("{field}.specificity"),
                "is required (ASPIRATIONAL, SPECIFIC or MEASURABLE)",
            );
            Specificity::Aspirational
        }
    };
    let cooperation = match pb::CooperationKind::try_from(details.cooperation) {
        Ok(pb::CooperationKind::Unspecified) => CooperationKind::Unspecified,
        Ok(pb::CooperationKind::Material) => CooperationKind::Material,
        Ok(pb::CooperationKind::Diplomatic) => CooperationKind::Diplomatic,
        Err(_) => {
            violations.add(
                format!("{field}.cooperation"),
                format!("unknown cooperation kind {}", details.cooperation),
            );
            CooperationKind::Unspecified
        }
    };
    CommitmentDetails {
        kind,
        committing_parties: party_codes_from_pb(&details.committing_parties),
        voiced_by: entity_ids(&details.voiced_by, &format!("{field}.voiced_by"), violations),
        counterparties: party_codes_from_pb(&details.counterparties),
        text: details.text.clone(),
        verbatim: details.verbatim,
        topics: details.topics.clone(),
        specificity,
        cooperation,
        due_by: optional_occurred_at(details.due_by.as_ref(), &format!("{field}.due_by"), violations),
        made_at_meeting: optional_entity_id(
            details.made_at_meeting.as_deref(),
            &format!("{field}.made_at_meeting"),
            violations,
        ),
    }
}

fn assessment_stage_to_pb(stage: AssessmentStage) -> pb::AssessmentStage {
    match stage {
        AssessmentStage::Interim => pb::AssessmentStage::Interim,
        AssessmentStage::Final => pb::AssessmentStage::Final,
    }
}

fn stage_from_pb(value: i32, field: &str, violations: &mut Violations) -> AssessmentStage {
    match pb::AssessmentStage::try_from(value) {
        Ok(pb::AssessmentStage::Interim) => AssessmentStage::Interim,
        Ok(pb::AssessmentStage::Final) => AssessmentStage::Final,
        Ok(pb::AssessmentStage::Unspecified) | Err(_) => {
            violations.add(field, "is required (INTERIM or FINAL)");
            AssessmentStage::Interim
        }
    }
}

fn scores_from_pb(scores: &[pb::PartyScore], violations: &mut Violations) -> Vec<PartyScore> {
    scores
        .iter()
        .enumerate()
        .map(|(index, score)| PartyScore {
            party: party_code_from_pb(&score.party),
            score: i8::try_from(score.score).unwrap_or_else(|_| {
                violations.add(
                    format!("scores[{index}].score"),
                    format!("{} is not a score: must be -1, 0 or 1", score.score),
                );
                0
            }),
        })
        .collect()
}

fn commitment_id(value: &str, v: &mut Violations) -> CommitmentId {
    entity_id_from_pb(value, "commitment_id", v)
}

command_request!(pb::RecordCommitmentRequest, |r, v, id, provenance| {
    DomainCommand::Commitment(commitment::Command::RecordCommitment {
        commitment_id: new_entity_id(&r.commitment_id, id, "commitment_id", v),
        details: commitment_details_from_pb(r.details.as_ref(), "details", v),
        provenance,
    })
});
command_request!(pb::ReaffirmCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::ReaffirmCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        voiced_by: entity_ids(&r.voiced_by, "voiced_by", v),
        at_meeting: optional_entity_id(r.at_meeting.as_deref(), "at_meeting", v),
        reaffirmed_by: r.reaffirmed_by,
        text: r.text,
        provenance,
    })
});
command_request!(pb::ReportCommitmentProgressRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::ReportCommitmentProgress {
        commitment_id: commitment_id(&r.commitment_id, v),
        summary: r.summary,
        provenance,
    })
});
command_request!(pb::FulfilCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::FulfilCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        summary: r.summary,
        provenance,
    })
});
command_request!(pb::MarkCommitmentLapsedRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::MarkCommitmentLapsed {
        commitment_id: commitment_id(&r.commitment_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::WithdrawCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::WithdrawCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::SupersedeCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::SupersedeCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        superseded_by: entity_id_from_pb(&r.superseded_by, "superseded_by", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::AssessComplianceRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::AssessCompliance {
        commitment_id: commitment_id(&r.commitment_id, v),
        stage: stage_from_pb(r.stage, "stage", v),
        scores: scores_from_pb(&r.scores, v),
        assessor: r.assessor,
        rationale: r.rationale,
        provenance,
    })
});
command_request!(pb::CorrectCommitmentRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::CorrectCommitment {
        commitment_id: commitment_id(&r.commitment_id, v),
        corrects_version: r.corrects_version,
        details: commitment_details_from_pb(r.details.as_ref(), "details", v),
        reason: r.reason,
        provenance,
    })
});
command_request!(pb::RetractCommitmentEventRequest, |r, v, _id, provenance| {
    DomainCommand::Commitment(commitment::Command::RetractCommitmentEvent {
        commitment_id: commitment_id(&r.commitment_id, v),
        retracts_version: r.retracts_version,
        reason: r.reason,
        provenance,
    })
});

/// A commitment command as the request a client sends (its arm of [`command_to_pb`](super::command_to_pb)).
pub(super) fn command_to_pb(command: &commitment::Command, command_id: Uuid) -> pb::batch_command::Command {
    use pb::batch_command::Command as B;
    match command {
        commitment::Command::RecordCommitment {
            commitment_id,
            details,
            provenance,
        } => B::RecordCommitment(
            request_to_pb!(RecordCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), details: Some(commitment_details_to_pb(details)) }),
        ),
        commitment::Command::ReaffirmCommitment {
            commitment_id,
            reaffirmed_by,
            voiced_by,
            at_meeting,
            text,
            provenance,
        } => B::ReaffirmCommitment(
            request_to_pb!(ReaffirmCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), reaffirmed_by: reaffirmed_by.clone(), voiced_by: ids_to_pb(voiced_by), at_meeting: at_meeting.map(|id| id.to_string()), text: text.clone() }),
        ),
        commitment::Command::ReportCommitmentProgress {
            commitment_id,
            summary,
            provenance,
        } => B::ReportCommitmentProgress(
            request_to_pb!(ReportCommitmentProgressRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), summary: summary.clone() }),
        ),
        commitment::Command::FulfilCommitment {
            commitment_id,
            summary,
            provenance,
        } => B::FulfilCommitment(
            request_to_pb!(FulfilCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), summary: summary.clone() }),
        ),
        commitment::Command::MarkCommitmentLapsed {
            commitment_id,
            reason,
            provenance,
        } => B::MarkCommitmentLapsed(
            request_to_pb!(MarkCommitmentLapsedRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), reason: reason.clone() }),
        ),
        commitment::Command::WithdrawCommitment {
            commitment_id,
            reason,
            provenance,
        } => B::WithdrawCommitment(
            request_to_pb!(WithdrawCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), reason: reason.clone() }),
        ),
        commitment::Command::SupersedeCommitment {
            commitment_id,
            superseded_by,
            reason,
            provenance,
        } => B::SupersedeCommitment(
            request_to_pb!(SupersedeCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), superseded_by: superseded_by.to_string(), reason: reason.clone() }),
        ),
        commitment::Command::AssessCompliance {
            commitment_id,
            stage,
            assessor,
            rationale,
            scores,
            provenance,
        } => B::AssessCompliance(
            request_to_pb!(AssessComplianceRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), stage: assessment_stage_to_pb(*stage) as i32, assessor: assessor.clone(), rationale: rationale.clone(), scores: scores.iter().map(|s| pb::PartyScore { party: s.party.clone(), score: i32::from(s.score) }).collect() }),
        ),
        commitment::Command::CorrectCommitment {
            commitment_id,
            corrects_version,
            reason,
            details,
            provenance,
        } => B::CorrectCommitment(
            request_to_pb!(CorrectCommitmentRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), corrects_version: *corrects_version, reason: reason.clone(), details: Some(commitment_details_to_pb(details)) }),
        ),
        commitment::Command::RetractCommitmentEvent {
            commitment_id,
            retracts_version,
            reason,
            provenance,
        } => B::RetractCommitmentEvent(
            request_to_pb!(RetractCommitmentEventRequest, command_id, provenance, { commitment_id: commitment_id.to_string(), retracts_version: *retracts_version, reason: reason.clone() }),
        ),
    }
}

/// A commitment event as its typed message (its arm of [`event_to_pb`](super::event_to_pb)).
pub(super) fn event_to_pb(event: &commitment::Event) -> pb::event::Event {
    use pb::event::Event as E;
    match event {
        commitment::Event::CommitmentRecorded(e) => E::CommitmentRecorded(pb::CommitmentRecorded {
            commitment_id: e.commitment_id.to_string(),
            details: Some(commitment_details_to_pb(&e.details)),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentReaffirmed(e) => E::CommitmentReaffirmed(pb::CommitmentReaffirmed {
            commitment_id: e.commitment_id.to_string(),
            reaffirmed_by: e.reaffirmed_by.clone(),
            voiced_by: ids_to_pb(&e.voiced_by),
            at_meeting: e.at_meeting.map(|id| id.to_string()),
            text: e.text.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentProgressReported(e) => {
            E::CommitmentProgressReported(pb::CommitmentProgressReported {
                commitment_id: e.commitment_id.to_string(),
                summary: e.summary.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            })
        }
        commitment::Event::CommitmentFulfilled(e) => E::CommitmentFulfilled(pb::CommitmentFulfilled {
            commitment_id: e.commitment_id.to_string(),
            summary: e.summary.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentLapsed(e) => E::CommitmentLapsed(pb::CommitmentLapsed {
            commitment_id: e.commitment_id.to_string(),
            reason: e.reason.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentWithdrawn(e) => E::CommitmentWithdrawn(pb::CommitmentWithdrawn {
            commitment_id: e.commitment_id.to_string(),
            reason: e.reason.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentSuperseded(e) => E::CommitmentSuperseded(pb::CommitmentSuperseded {
            commitment_id: e.commitment_id.to_string(),
            superseded_by: e.superseded_by.to_string(),
            reason: e.reason.clone(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::ComplianceAssessed(e) => E::ComplianceAssessed(pb::ComplianceAssessed {
            commitment_id: e.commitment_id.to_string(),
            stage: assessment_stage_to_pb(e.stage) as i32,
            assessor: e.assessor.clone(),
            rationale: e.rationale.clone(),
            scores: e
                .scores
                .iter()
                .map(|score| pb::PartyScore {
                    party: score.party.clone(),
                    score: i32::from(score.score),
                })
                .collect(),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentCorrected(e) => E::CommitmentCorrected(pb::CommitmentCorrected {
            commitment_id: e.commitment_id.to_string(),
            corrects_version: e.corrects_version,
            reason: e.reason.clone(),
            details: Some(commitment_details_to_pb(&e.details)),
            provenance: Some(provenance_to_pb(&e.provenance)),
        }),
        commitment::Event::CommitmentEventRetracted(e) => {
            E::CommitmentEventRetracted(pb::CommitmentEventRetracted {
                commitment_id: e.commitment_id.to_string(),
                retracts_version: e.retracts_version,
                reason: e.reason.clone(),
                provenance: Some(provenance_to_pb(&e.provenance)),
            })
        }
    }
}

/// A commitment status to its proto enum.
pub fn commitment_status_to_pb(status: CommitmentStatusView) -> pb::CommitmentStatus {
    match status {
        CommitmentStatusView::Made => pb::CommitmentStatus::Made,
        CommitmentStatusView::Reaffirmed => pb::CommitmentStatus::Reaffirmed,
        CommitmentStatusView::InProgress => pb::CommitmentStatus::InProgress,
        CommitmentStatusView::Fulfilled => pb::CommitmentStatus::Fulfilled,
        CommitmentStatusView::Lapsed => pb::CommitmentStatus::Lapsed,
        CommitmentStatusView::Withdrawn => pb::CommitmentStatus::Withdrawn,
        CommitmentStatusView::Superseded => pb::CommitmentStatus::Superseded,
    }
}

/// A commitment status filter from its proto enum (UNSPECIFIED: any).
pub fn commitment_status_from_pb(
    value: i32,
    field: &str,
    violations: &mut Violations,
) -> Option<CommitmentStatusView> {
    match pb::CommitmentStatus::try_from(value) {
        Ok(pb::CommitmentStatus::Unspecified) => None,
        Ok(pb::CommitmentStatus::Made) => Some(CommitmentStatusView::Made),
        Ok(pb::CommitmentStatus::Reaffirmed) => Some(CommitmentStatusView::Reaffirmed),
        Ok(pb::CommitmentStatus::InProgress) => Some(CommitmentStatusView::InProgress),
        Ok(pb::CommitmentStatus::Fulfilled) => Some(CommitmentStatusView::Fulfilled),
        Ok(pb::CommitmentStatus::Lapsed) => Some(CommitmentStatusView::Lapsed),
        Ok(pb::CommitmentStatus::Withdrawn) => Some(CommitmentStatusView::Withdrawn),
        Ok(pb::CommitmentStatus::Superseded) => Some(CommitmentStatusView::Superseded),
        Err(_) => {
            violations.add(field, format!("unknown commitment status {value}"));
            None
        }
    }
}

/// A commitment row to its view.
pub fn commitment_to_pb(row: &CommitmentRow) -> pb::CommitmentView {
    let entry = |entry: &crate::projections::commitments::EntryRow| pb::CommitmentEntryView {
        version: entry.version,
        occurred_at: Some(occurred_at_to_pb(entry.occurred_at)),
        text: entry.text.clone(),
        parties: entry.parties.clone(),
    };
    pb::CommitmentView {
        commitment_id: row.commitment_id.to_string(),
        status: commitment_status_to_pb(row.status) as i32,
        details: Some(commitment_details_to_pb(&row.details)),
        made_at: row.made_at.map(occurred_at_to_pb),
        reaffirmations: row.reaffirmations.iter().map(entry).collect(),
        progress_reports: row.progress_reports.iter().map(entry).collect(),
        closed_at: row.closed_at.map(occurred_at_to_pb),
        closing_text: row.closing_text.clone(),
        superseded_by: row.superseded_by.map(|id| id.to_string()),
        assessments: row
            .assessments
            .iter()
            .map(|assessment| pb::AssessmentView {
                version: assessment.version,
                stage: assessment_stage_to_pb(assessment.stage) as i32,
                assessor: assessment.assessor.clone(),
                rationale: assessment.rationale.clone(),
                scores: assessment
                    .scores
                    .iter()
                    .map(|score| pb::PartyScore {
                        party: score.party.clone(),
                        score: i32::from(score.score),
                    })
                    .collect(),
                occurred_at: Some(occurred_at_to_pb(assessment.occurred_at)),
            })
            .collect(),
        retracted_versions: row.retracted_versions.clone(),
        stream_version: row.stream_version,
        last_position: row.last_position,
        progress_report_count: row.progress_report_count,
    }
}
