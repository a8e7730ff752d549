//! `CommandService`: one RPC per domain command, plus SubmitBatch, over the [`Ledger`].
//!
//! Each RPC converts its request (`convert::CommandRequest`, which reports every malformed field),
//! hands the command to the ledger (validate, decide against the entity's state, append
//! durably), and answers with the entity id, stream version, positions, event ids and
//! `recorded_at`. Errors map to statuses in `status::from_ledger_error`.
//!
//! There is no authentication yet (docs/api.md, "Development mode"): every command is recorded by
//! [`DEVELOPMENT_PRINCIPAL`].

use tonic::{Request, Response, Status};

use super::convert::{self, CommandRequest};
use super::pb;
use super::pb::command_service_server::CommandService;
use super::status;
use crate::ledger::{CommandEnvelope, CommandOutcome, Ledger};

/// The principal recorded as `recorded_by` while the server has no authentication.
pub const DEVELOPMENT_PRINCIPAL: &str = "dev-unauthenticated";

/// The CommandService implementation.
#[derive(Clone)]
pub struct Commands {
    ledger: Ledger,
}

impl Commands {
    /// A service recording commands through `ledger`.
    pub fn new(ledger: Ledger) -> Commands {
        Commands { ledger }
    }

    async fn record(&self, request: impl CommandRequest) -> Result<(String, CommandOutcome), Status> {
        let envelope: CommandEnvelope = request
            .into_command(DEVELOPMENT_PRINCIPAL)
            .map_err(|violations| status::invalid_argument(&violations))?;
        let entity_id = convert::entity_id(&envelope.command);
        let outcome = self
            .ledger
            .handle(envelope)
            .await
            .map_err(status::from_ledger_error)?;
        Ok((entity_id, outcome))
    }
}

/// One RPC: convert, record, answer with the response type whose entity id field is `$id`.
macro_rules! rpcs {
    ($($method:ident($request:ident) -> $response:ident { $id:ident },)*) => {
        #[tonic::async_trait]
        impl CommandService for Commands {
            $(
                async fn $method(
                    &self,
                    request: Request<pb::$request>,
                ) -> Result<Response<pb::$response>, Status> {
                    let (entity_id, outcome) = self.record(request.into_inner()).await?;
                    let fields = convert::outcome_fields(&outcome);
                    Ok(Response::new(pb::$response {
                        $id: entity_id,
                        stream_id: fields.stream_id,
                        stream_version: fields.stream_version,
                        positions: fields.positions,
                        recorded_at: fields.recorded_at,
                        event_ids: fields.event_ids,
                    }))
                }
            )*

            async fn submit_batch(
                &self,
                request: Request<pb::SubmitBatchRequest>,
            ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
                let envelopes = convert::batch_from_pb(request.into_inner(), DEVELOPMENT_PRINCIPAL)
                    .map_err(|violations| status::invalid_argument(&violations))?;
                let entity_ids: Vec<String> = envelopes
                    .iter()
                    .map(|envelope| convert::entity_id(&envelope.command))
                    .collect();
                let outcomes = self
                    .ledger
                    .handle_batch(envelopes)
                    .await
                    .map_err(status::from_ledger_error)?;
                Ok(Response::new(pb::SubmitBatchResponse {
                    results: entity_ids
                        .into_iter()
                        .zip(&outcomes)
                        .map(|(entity_id, outcome)| convert::command_result_to_pb(entity_id, outcome))
                        .collect(),
                }))
            }
        }
    };
}

rpcs! {
    register_party(RegisterPartyRequest) -> RegisterPartyResponse { code },
    correct_party(CorrectPartyRequest) -> CorrectPartyResponse { code },
    register_source(RegisterSourceRequest) -> RegisterSourceResponse { source_id },
    correct_source(CorrectSourceRequest) -> CorrectSourceResponse { source_id },
    register_official(RegisterOfficialRequest) -> RegisterOfficialResponse { official_id },
    appoint_official(AppointOfficialRequest) -> AppointOfficialResponse { official_id },
    end_tenure(EndTenureRequest) -> EndTenureResponse { official_id },
    correct_official_name(CorrectOfficialNameRequest) -> CorrectOfficialNameResponse { official_id },
    retract_official_event(RetractOfficialEventRequest) -> RetractOfficialEventResponse { official_id },
    propose_meeting(ProposeMeetingRequest) -> ProposeMeetingResponse { meeting_id },
    schedule_meeting(ScheduleMeetingRequest) -> ScheduleMeetingResponse { meeting_id },
    reschedule_meeting(RescheduleMeetingRequest) -> RescheduleMeetingResponse { meeting_id },
    cancel_meeting(CancelMeetingRequest) -> CancelMeetingResponse { meeting_id },
    record_meeting_held(RecordMeetingHeldRequest) -> RecordMeetingHeldResponse { meeting_id },
    record_statement(RecordStatementRequest) -> RecordStatementResponse { meeting_id },
    correct_meeting(CorrectMeetingRequest) -> CorrectMeetingResponse { meeting_id },
    retract_meeting_event(RetractMeetingEventRequest) -> RetractMeetingEventResponse { meeting_id },
    record_commitment(RecordCommitmentRequest) -> RecordCommitmentResponse { commitment_id },
    reaffirm_commitment(ReaffirmCommitmentRequest) -> ReaffirmCommitmentResponse { commitment_id },
    report_commitment_progress(ReportCommitmentProgressRequest) -> ReportCommitmentProgressResponse { commitment_id },
    fulfil_commitment(FulfilCommitmentRequest) -> FulfilCommitmentResponse { commitment_id },
    mark_commitment_lapsed(MarkCommitmentLapsedRequest) -> MarkCommitmentLapsedResponse { commitment_id },
    withdraw_commitment(WithdrawCommitmentRequest) -> WithdrawCommitmentResponse { commitment_id },
    supersede_commitment(SupersedeCommitmentRequest) -> SupersedeCommitmentResponse { commitment_id },
    assess_compliance(AssessComplianceRequest) -> AssessComplianceResponse { commitment_id },
    correct_commitment(CorrectCommitmentRequest) -> CorrectCommitmentResponse { commitment_id },
    retract_commitment_event(RetractCommitmentEventRequest) -> RetractCommitmentEventResponse { commitment_id },
}
