//! `CommandService`: one RPC per domain command, plus SubmitBatch, over the [`Ledger`].
//!
//! Each RPC converts its request (`convert::CommandRequest`, which reads the `CommandHeader` and
//! reports every malformed field), hands the command to the ledger (validate, decide against the
//! entity's state, append durably), and answers with a `CommandResult` (stream, version,
//! positions, event ids, `recorded_at`) and the entity id. Errors map to statuses in
//! `status::from_ledger_error`. The RPCs and the batch dispatch come from one table,
//! [`commands!`](self), which names each command once.
//!
//! Each command is recorded by the principal the authorization layer authenticated
//! (`auth::layer`), or by [`DEVELOPMENT_PRINCIPAL`] in development mode.

use tonic::{Request, Response, Status};

use super::convert::{self, CommandRequest};
use super::pb;
use super::pb::command_service_server::CommandService;
use super::status;
use crate::domain::FieldViolation;
use crate::ledger::{CommandEnvelope, CommandOutcome, Ledger};

/// The principal recorded as `recorded_by` in development mode (no token ever created).
pub const DEVELOPMENT_PRINCIPAL: &str = "dev-unauthenticated";

/// Who a request acts as: the authenticated principal, else [`DEVELOPMENT_PRINCIPAL`].
fn recorded_by<T>(request: &Request<T>) -> String {
    request
        .extensions()
        .get::<crate::auth::Principal>()
        .map_or(DEVELOPMENT_PRINCIPAL, |principal| principal.name.as_str())
        .to_owned()
}

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

    async fn record(
        &self,
        request: impl CommandRequest,
        recorded_by: &str,
    ) -> Result<(String, CommandOutcome), Status> {
        let envelope: CommandEnvelope = request
            .into_command(recorded_by)
            .map_err(|violations| status::invalid_argument(&violations))?;
        let entity_id = convert::entity_id(&envelope.command);
        let outcome = self
            .ledger
            .handle(envelope)
            .await
            .map_err(status::from_ledger_error)?;
        Ok((entity_id, outcome))
    }

    async fn record_batch(
        &self,
        request: pb::SubmitBatchRequest,
        recorded_by: &str,
    ) -> Result<pb::SubmitBatchResponse, Status> {
        let envelopes = convert::batch_from_pb(request, |command| batch_command(command, recorded_by))
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
        let results = entity_ids
            .into_iter()
            .zip(&outcomes)
            .map(|(entity_id, outcome)| pb::BatchResult {
                result: Some(convert::command_result_to_pb(outcome)),
                entity_id,
            })
            .collect();
        Ok(pb::SubmitBatchResponse { results })
    }
}

/// The one list of commands. Each line names a command once: its batch variant, its RPC, its
/// request and response, and the response's entity id field. From it come the CommandService
/// methods (convert, record, answer) and the batch dispatch.
macro_rules! commands {
    ($($variant:ident: $method:ident($request:ident) -> $response:ident { $id:ident },)*) => {
        #[tonic::async_trait]
        impl CommandService for Commands {
            $(
                async fn $method(
                    &self,
                    request: Request<pb::$request>,
                ) -> Result<Response<pb::$response>, Status> {
                    let principal = recorded_by(&request);
                    let (entity_id, outcome) = self.record(request.into_inner(), &principal).await?;
                    Ok(Response::new(pb::$response {
                        result: Some(convert::command_result_to_pb(&outcome)),
                        $id: entity_id,
                    }))
                }
            )*

            async fn submit_batch(
                &self,
                request: Request<pb::SubmitBatchRequest>,
            ) -> Result<Response<pb::SubmitBatchResponse>, Status> {
                let principal = recorded_by(&request);
                self.record_batch(request.into_inner(), &principal).await.map(Response::new)
            }
        }

        /// One command of a batch, converted by its request type (public for the request
        /// fuzz target, tests/it/api_fuzz.rs).
        pub fn batch_command(
            command: pb::batch_command::Command,
            recorded_by: &str,
        ) -> Result<CommandEnvelope, Vec<FieldViolation>> {
            use pb::batch_command::Command as C;
            match command {
                $(C::$variant(request) => request.into_command(recorded_by),)*
            }
        }
    };
}

commands! {
    RegisterParty: register_party(RegisterPartyRequest) -> RegisterPartyResponse { code },
    CorrectParty: correct_party(CorrectPartyRequest) -> CorrectPartyResponse { code },
    RegisterSource: register_source(RegisterSourceRequest) -> RegisterSourceResponse { source_id },
    CorrectSource: correct_source(CorrectSourceRequest) -> CorrectSourceResponse { source_id },
    RegisterOfficial: register_official(RegisterOfficialRequest) -> RegisterOfficialResponse { official_id },
    AppointOfficial: appoint_official(AppointOfficialRequest) -> AppointOfficialResponse { official_id },
    EndTenure: end_tenure(EndTenureRequest) -> EndTenureResponse { official_id },
    CorrectOfficialName: correct_official_name(CorrectOfficialNameRequest) -> CorrectOfficialNameResponse { official_id },
    RetractOfficialEvent: retract_official_event(RetractOfficialEventRequest) -> RetractOfficialEventResponse { official_id },
    ProposeMeeting: propose_meeting(ProposeMeetingRequest) -> ProposeMeetingResponse { meeting_id },
    ScheduleMeeting: schedule_meeting(ScheduleMeetingRequest) -> ScheduleMeetingResponse { meeting_id },
    RescheduleMeeting: reschedule_meeting(RescheduleMeetingRequest) -> RescheduleMeetingResponse { meeting_id },
    PostponeMeeting: postpone_meeting(PostponeMeetingRequest) -> PostponeMeetingResponse { meeting_id },
    CancelMeeting: cancel_meeting(CancelMeetingRequest) -> CancelMeetingResponse { meeting_id },
    RecordMeetingHeld: record_meeting_held(RecordMeetingHeldRequest) -> RecordMeetingHeldResponse { meeting_id },
    RecordStatement: record_statement(RecordStatementRequest) -> RecordStatementResponse { meeting_id },
    CorrectMeeting: correct_meeting(CorrectMeetingRequest) -> CorrectMeetingResponse { meeting_id },
    RetractMeetingEvent: retract_meeting_event(RetractMeetingEventRequest) -> RetractMeetingEventResponse { meeting_id },
    RecordCommitment: record_commitment(RecordCommitmentRequest) -> RecordCommitmentResponse { commitment_id },
    ReaffirmCommitment: reaffirm_commitment(ReaffirmCommitmentRequest) -> ReaffirmCommitmentResponse { commitment_id },
    ReportCommitmentProgress: report_commitment_progress(ReportCommitmentProgressRequest) -> ReportCommitmentProgressResponse { commitment_id },
    FulfilCommitment: fulfil_commitment(FulfilCommitmentRequest) -> FulfilCommitmentResponse { commitment_id },
    MarkCommitmentLapsed: mark_commitment_lapsed(MarkCommitmentLapsedRequest) -> MarkCommitmentLapsedResponse { commitment_id },
    WithdrawCommitment: withdraw_commitment(WithdrawCommitmentRequest) -> WithdrawCommitmentResponse { commitment_id },
    SupersedeCommitment: supersede_commitment(SupersedeCommitmentRequest) -> SupersedeCommitmentResponse { commitment_id },
    AssessCompliance: assess_compliance(AssessComplianceRequest) -> AssessComplianceResponse { commitment_id },
    CorrectCommitment: correct_commitment(CorrectCommitmentRequest) -> CorrectCommitmentResponse { commitment_id },
    RetractCommitmentEvent: retract_commitment_event(RetractCommitmentEventRequest) -> RetractCommitmentEventResponse { commitment_id },
}
