//! `QueryService`: the read models over gRPC. Every handler converts the request (collecting
//! every malformed field), runs the query on tokio's blocking pool (read models live in sled,
//! and a `min_position` wait blocks), and converts the answer, which always carries
//! `based_on_position`.
//!
//! The wait for `min_position` (or for an as-of position the read model has not reached) is 90%
//! of the call's deadline (`grpc-timeout`), or `projections::consistency::DEFAULT_WAIT` without one,
//! capped at `MAX_WAIT`; past it the answer is UNAVAILABLE.

use std::sync::Arc;
use std::time::Duration;

use tonic::{Request, Response, Status};

use super::convert::{self, Violations};
use super::pb;
use super::status;
use crate::domain::common::{CommitmentId, MeetingId, OfficialId, SourceId};
use crate::projections::consistency::{DEFAULT_WAIT, MAX_WAIT};
use crate::projections::{
    AsOf, CommitmentFilter, MeetingFilter, PageRequest, ProjectionResult, Projections, ReadOptions,
};

/// The QueryService implementation.
#[derive(Clone)]
pub struct Query {
    projections: Arc<Projections>,
}

impl Query {
    /// Serves queries on `projections`.
    pub fn new(projections: Arc<Projections>) -> Query {
        Query { projections }
    }

    /// Runs a query on the blocking pool and maps its error.
    async fn run<T: Send + 'static>(
        &self,
        query: impl FnOnce(&Projections) -> ProjectionResult<T> + Send + 'static,
    ) -> Result<T, Status> {
        let projections = self.projections.clone();
        tokio::task::spawn_blocking(move || query(&projections))
            .await
            .map_err(status::from_join_error)?
            .map_err(status::from_projection_error)
    }
}

/// The wait a request allows: 90% of its `grpc-timeout` (so the UNAVAILABLE answer arrives
/// before the client gives up), else the default; at most MAX_WAIT.
fn deadline_of<T>(request: &Request<T>) -> Duration {
    let timeout = request
        .metadata()
        .get("grpc-timeout")
        .and_then(|value| value.to_str().ok())
        .and_then(|text| {
            let (digits, unit) = text.split_at(text.len().checked_sub(1)?);
            let amount: u64 = digits.parse().ok()?;
            Some(match unit {
                "H" => Duration::from_secs(amount.saturating_mul(3600)),
                "M" => Duration::from_secs(amount.saturating_mul(60)),
                "S" => Duration::from_secs(amount),
                "m" => Duration::from_millis(amount),
                "u" => Duration::from_micros(amount),
                "n" => Duration::from_nanos(amount),
                _ => return None,
            })
        });
    timeout
        .map(|timeout| timeout - timeout / 10)
        .unwrap_or(DEFAULT_WAIT)
        .min(MAX_WAIT)
}

fn read_options(
    options: Option<&pb::ReadOptions>,
    wait: Duration,
    violations: &mut Violations,
) -> ReadOptions {
    let Some(options) = options else {
        return ReadOptions::latest().wait(wait);
    };
    let as_of = match &options.as_of {
        None => AsOf::Latest,
        Some(pb::read_options::AsOf::AsOfPosition(0)) => {
            violations.add("options.as_of_position", "positions start at 1");
            AsOf::Latest
        }
        Some(pb::read_options::AsOf::AsOfPosition(position)) => AsOf::Position(*position),
        Some(pb::read_options::AsOf::AsOfTime(time)) => {
            AsOf::Time(convert::timestamp_from_pb(time, "options.as_of_time", violations))
        }
    };
    ReadOptions::latest()
        .min_position(options.min_position)
        .as_of(as_of)
        .wait(wait)
}

fn page_request(page: Option<&pb::PageRequest>) -> PageRequest {
    match page {
        None => PageRequest::first(0),
        Some(page) => PageRequest {
            limit: page.page_size as usize,
            token: (!page.page_token.is_empty()).then(|| page.page_token.clone()),
        },
    }
}

fn checked<T>(violations: Violations, value: T) -> Result<T, Status> {
    violations
        .finish(value)
        .map_err(|violations| status::invalid_argument(&violations))
}

fn required_text(value: &str, field: &str, violations: &mut Violations) -> String {
    if value.is_empty() {
        violations.add(field, "is required");
    }
    value.to_owned()
}

#[tonic::async_trait]
impl pb::query_service_server::QueryService for Query {
    async fn get_meeting(
        &self,
        request: Request<pb::GetMeetingRequest>,
    ) -> Result<Response<pb::GetMeetingResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = convert::entity_id_from_pb::<MeetingId>(&request.meeting_id, "meeting_id", &mut violations);
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.meeting(id, &options)).await?;
        Ok(Response::new(pb::GetMeetingResponse {
            meeting: Some(convert::meeting_to_pb(answer.value())),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let filter = MeetingFilter {
            party: request.party.as_deref().map(convert::party_code_from_pb),
            official: convert::optional_entity_id(
                request.official_id.as_deref(),
                "official_id",
                &mut violations,
            ),
            topic: request.topic.clone(),
            place: request.place.clone(),
            country: request.country.clone(),
            status: convert::meeting_status_from_pb(request.status, "status", &mut violations),
            occurred_from: convert::optional_timestamp(
                request.occurred_from.as_ref(),
                "occurred_from",
                &mut violations,
            ),
            occurred_to: convert::optional_timestamp(
                request.occurred_to.as_ref(),
                "occurred_to",
                &mut violations,
            ),
        };
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self.run(move |p| p.meetings(&filter, &page, &options)).await?;
        Ok(Response::new(pb::ListMeetingsResponse {
            meetings: page.items().iter().map(convert::meeting_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn get_commitment(
        &self,
        request: Request<pb::GetCommitmentRequest>,
    ) -> Result<Response<pb::GetCommitmentResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = convert::entity_id_from_pb::<CommitmentId>(
            &request.commitment_id,
            "commitment_id",
            &mut violations,
        );
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.commitment(id, &options)).await?;
        Ok(Response::new(pb::GetCommitmentResponse {
            commitment: Some(convert::commitment_to_pb(answer.value())),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn list_commitments(
        &self,
        request: Request<pb::ListCommitmentsRequest>,
    ) -> Result<Response<pb::ListCommitmentsResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let filter = CommitmentFilter {
            party: request.party.as_deref().map(convert::party_code_from_pb),
            status: convert::commitment_status_from_pb(request.status, "status", &mut violations),
            topic: request.topic.clone(),
            made_from: convert::optional_timestamp(request.made_from.as_ref(), "made_from", &mut violations),
            made_to: convert::optional_timestamp(request.made_to.as_ref(), "made_to", &mut violations),
        };
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self.run(move |p| p.commitments(&filter, &page, &options)).await?;
        Ok(Response::new(pb::ListCommitmentsResponse {
            commitments: page.items().iter().map(convert::commitment_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn list_overdue_commitments(
        &self,
        request: Request<pb::ListOverdueCommitmentsRequest>,
    ) -> Result<Response<pb::ListOverdueCommitmentsResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let on = convert::required_timestamp(request.on.as_ref(), "on", &mut violations);
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self
            .run(move |p| p.overdue_commitments(on, &page, &options))
            .await?;
        Ok(Response::new(pb::ListOverdueCommitmentsResponse {
            commitments: page.items().iter().map(convert::commitment_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn get_compliance(
        &self,
        request: Request<pb::GetComplianceRequest>,
    ) -> Result<Response<pb::GetComplianceResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let party = required_text(
            &convert::party_code_from_pb(&request.party),
            "party",
            &mut violations,
        );
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.compliance(&party, &options)).await?;
        let row = answer.value();
        Ok(Response::new(pb::GetComplianceResponse {
            party: row.party.clone(),
            assessed_commitments: row.assessed_commitments,
            score_sum: row.score_sum,
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn get_bilateral_relation(
        &self,
        request: Request<pb::GetBilateralRelationRequest>,
    ) -> Result<Response<pb::GetBilateralRelationResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let a = required_text(
            &convert::party_code_from_pb(&request.party_a),
            "party_a",
            &mut violations,
        );
        let b = required_text(
            &convert::party_code_from_pb(&request.party_b),
            "party_b",
            &mut violations,
        );
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.relation(&a, &b, &page, &options)).await?;
        let relation = answer.value();
        let summary = &relation.summary;
        Ok(Response::new(pb::GetBilateralRelationResponse {
            pair: relation.pair.clone(),
            meetings: summary.meetings,
            meetings_held_by_month: summary.meetings_held_by_month.clone().into_iter().collect(),
            commitments: summary.commitments,
            commitments_open: summary.commitments_open,
            commitments_fulfilled: summary.commitments_fulfilled,
            commitments_closed_otherwise: summary.commitments_closed_otherwise,
            topics: summary.topics.clone().into_iter().collect(),
            goldstein_tenths_by_month: summary.goldstein_tenths_by_month.clone().into_iter().collect(),
            timeline: relation
                .timeline
                .iter()
                .map(convert::timeline_item_to_pb)
                .collect(),
            next_page_token: relation.next_page_token.clone().unwrap_or_default(),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn get_official(
        &self,
        request: Request<pb::GetOfficialRequest>,
    ) -> Result<Response<pb::GetOfficialResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id =
            convert::entity_id_from_pb::<OfficialId>(&request.official_id, "official_id", &mut violations);
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.official(id, &options)).await?;
        Ok(Response::new(pb::GetOfficialResponse {
            official: Some(convert::official_to_pb(answer.value())),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn list_officials(
        &self,
        request: Request<pb::ListOfficialsRequest>,
    ) -> Result<Response<pb::ListOfficialsResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let party = required_text(
            &convert::party_code_from_pb(&request.party),
            "party",
            &mut violations,
        );
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self
            .run(move |p| p.officials_of_party(&party, &page, &options))
            .await?;
        Ok(Response::new(pb::ListOfficialsResponse {
            officials: page.items().iter().map(convert::official_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn list_post_holders(
        &self,
        request: Request<pb::ListPostHoldersRequest>,
    ) -> Result<Response<pb::ListPostHoldersResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let post = required_text(&request.post, "post", &mut violations);
        let on = convert::required_timestamp(request.on.as_ref(), "on", &mut violations);
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self
            .run(move |p| p.post_holders(&post, on, &page, &options))
            .await?;
        Ok(Response::new(pb::ListPostHoldersResponse {
            holders: page.items().iter().map(convert::post_holder_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn get_contacts(
        &self,
        request: Request<pb::GetContactsRequest>,
    ) -> Result<Response<pb::GetContactsResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id =
            convert::entity_id_from_pb::<OfficialId>(&request.official_id, "official_id", &mut violations);
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.contacts(id, &options)).await?;
        Ok(Response::new(pb::GetContactsResponse {
            met: answer.value().met.clone().into_iter().collect(),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn get_party(
        &self,
        request: Request<pb::GetPartyRequest>,
    ) -> Result<Response<pb::GetPartyResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let code = required_text(
            &convert::party_code_from_pb(&request.code),
            "code",
            &mut violations,
        );
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.party(&code, &options)).await?;
        Ok(Response::new(pb::GetPartyResponse {
            party: Some(convert::party_to_pb(answer.value())),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn list_parties(
        &self,
        request: Request<pb::ListPartiesRequest>,
    ) -> Result<Response<pb::ListPartiesResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self.run(move |p| p.parties(&page, &options)).await?;
        Ok(Response::new(pb::ListPartiesResponse {
            parties: page.items().iter().map(convert::party_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn get_source(
        &self,
        request: Request<pb::GetSourceRequest>,
    ) -> Result<Response<pb::GetSourceResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let id = convert::entity_id_from_pb::<SourceId>(&request.source_id, "source_id", &mut violations);
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let answer = self.run(move |p| p.source(id, &options)).await?;
        Ok(Response::new(pb::GetSourceResponse {
            source: Some(convert::source_to_pb(answer.value())),
            based_on_position: answer.based_on_position(),
        }))
    }

    async fn list_sources(
        &self,
        request: Request<pb::ListSourcesRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self.run(move |p| p.sources(&page, &options)).await?;
        Ok(Response::new(pb::ListSourcesResponse {
            sources: page.items().iter().map(convert::source_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }

    async fn get_entity_history(
        &self,
        request: Request<pb::GetEntityHistoryRequest>,
    ) -> Result<Response<pb::GetEntityHistoryResponse>, Status> {
        let wait = deadline_of(&request);
        let request = request.into_inner();
        let mut violations = Violations::new();
        let stream_id = required_text(&request.stream_id, "stream_id", &mut violations);
        let page = page_request(request.page.as_ref());
        let options = read_options(request.options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let page = self.run(move |p| p.history(&stream_id, &page, &options)).await?;
        Ok(Response::new(pb::GetEntityHistoryResponse {
            entries: page.items().iter().map(convert::history_entry_to_pb).collect(),
            next_page_token: page.next_page_token().unwrap_or_default().to_owned(),
            based_on_position: page.based_on_position(),
        }))
    }
}
