//! `QueryService`: the read models over gRPC. Every handler has one shape (`Query::query`): it
//! converts the request (collecting every malformed field), runs the query on tokio's blocking
//! pool (a `min_position` wait blocks, and an as-of read may fold a stream from the log), and
//! converts the answer, which always carries `based_on_position`.
//!
//! A query naming a party (relation, compliance, officials, the party filter of meetings and
//! commitments) answers NOT_FOUND when the code, well formed, names no party registered as of
//! the position its answer is based on (`require_parties`); a malformed code is INVALID_ARGUMENT
//! first.
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
use crate::projections::history::MAX_HISTORY_PAGE;
use crate::projections::store::MAX_PAGE_SIZE;
use crate::projections::{
    AsOf, CommitmentFilter, MeetingFilter, Page, PageRequest, ProjectionError, Projections, ReadOptions,
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

    /// One query, the shape of every handler: the request's own fields are read by `parse`
    /// (every malformed field collected, then its read options'), the query runs on the
    /// blocking pool at those options, and `answer` builds the response.
    async fn query<
        R: ReadRequest,
        P: Send + 'static,
        A: Send + 'static,
        T,
        E: Into<QueryError> + Send + 'static,
    >(
        &self,
        request: Request<R>,
        parse: impl FnOnce(R, &mut Violations) -> P,
        query: impl FnOnce(&Projections, P, &ReadOptions) -> Result<A, E> + Send + 'static,
        answer: impl FnOnce(A) -> T,
    ) -> Result<Response<T>, Status> {
        let wait = deadline_of(&request);
        let mut request = request.into_inner();
        let options = request.take_options();
        let mut violations = Violations::new();
        let parsed = parse(request, &mut violations);
        let options = read_options(options.as_ref(), wait, &mut violations);
        checked(violations, ())?;
        let found = self.run(move |p| query(p, parsed, &options)).await?;
        Ok(Response::new(answer(found)))
    }

    /// Runs a query on the blocking pool and maps its error.
    async fn run<T: Send + 'static, E: Into<QueryError> + Send + 'static>(
        &self,
        query: impl FnOnce(&Projections) -> Result<T, E> + Send + 'static,
    ) -> Result<T, Status> {
        let projections = self.projections.clone();
        tokio::task::spawn_blocking(move || query(&projections))
            .await
            .map_err(status::from_join_error)?
            .map_err(|error| match error.into() {
                QueryError::ReadModel(error) => status::from_projection_error(request_paths(error)),
                QueryError::Answer(status) => status,
            })
    }
}

/// Why a query has no answer: a read model's error, or an answer decided here.
enum QueryError {
    ReadModel(ProjectionError),
    Answer(Status),
}

impl From<ProjectionError> for QueryError {
    fn from(error: ProjectionError) -> QueryError {
        QueryError::ReadModel(error)
    }
}

/// NOT_FOUND unless every party in `codes` is registered as of `position`, the position the
/// query's answer is based on: an unknown code is not a party with nothing recorded.
fn require_parties(
    projections: &Projections,
    codes: &[&str],
    position: u64,
    options: &ReadOptions,
) -> Result<(), QueryError> {
    for code in codes {
        let found = if position == 0 {
            false
        } else {
            match projections.party(code, &options.as_of(AsOf::Position(position))) {
                Ok(_) => true,
                Err(ProjectionError::NotFound { .. }) => false,
                Err(error) => return Err(error.into()),
            }
        };
        if !found {
            return Err(QueryError::Answer(status::party_not_found(code, position)));
        }
    }
    Ok(())
}

/// A read model's error with the paging arguments it names (`limit`, `page_token`) named by the
/// request's own path (`page.page_size`, `page.page_token`).
fn request_paths(error: ProjectionError) -> ProjectionError {
    match error {
        ProjectionError::InvalidArgument { field, reason } => ProjectionError::InvalidArgument {
            field: match field {
                "limit" => "page.page_size",
                "page_token" => "page.page_token",
                other => other,
            },
            reason,
        },
        other => other,
    }
}

/// The wait a request allows: 90% of its `grpc-timeout` (so the UNAVAILABLE answer arrives
/// before the client gives up), else the default; at most MAX_WAIT.
pub(crate) fn deadline_of<T>(request: &Request<T>) -> Duration {
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

/// A list's page: `page.page_size` 0 means the default; over `max` (`MAX_PAGE_SIZE`, for the
/// history `MAX_HISTORY_PAGE`) is refused, naming `page.page_size`.
fn page_request(page: Option<&pb::PageRequest>, max: usize, violations: &mut Violations) -> PageRequest {
    match page {
        None => PageRequest::first(0),
        Some(page) => {
            let size = page.page_size as usize;
            if size > max {
                violations.add("page.page_size", format!("{size} is over the limit of {max}"));
            }
            PageRequest {
                limit: size.min(max),
                token: (!page.page_token.is_empty()).then(|| page.page_token.clone()),
            }
        }
    }
}

/// A list page of a read model: at most `MAX_PAGE_SIZE` rows.
fn list_page(page: Option<&pb::PageRequest>, violations: &mut Violations) -> PageRequest {
    page_request(page, MAX_PAGE_SIZE, violations)
}

/// A query request: it carries read options (consistency and as-of).
trait ReadRequest {
    /// Takes the request's read options out of it.
    fn take_options(&mut self) -> Option<pb::ReadOptions>;
}

macro_rules! read_requests {
    ($($request:ident),* $(,)?) => {
        $(impl ReadRequest for pb::$request {
            fn take_options(&mut self) -> Option<pb::ReadOptions> {
                self.options.take()
            }
        })*
    };
}

read_requests!(
    GetMeetingRequest,
    ListMeetingsRequest,
    GetCommitmentRequest,
    ListCommitmentsRequest,
    ListOverdueCommitmentsRequest,
    GetComplianceRequest,
    GetBilateralRelationRequest,
    GetOfficialRequest,
    ListOfficialsRequest,
    ListPostHoldersRequest,
    GetContactsRequest,
    GetPartyRequest,
    ListPartiesRequest,
    GetSourceRequest,
    ListSourcesRequest,
    GetEntityHistoryRequest,
);

/// A page of rows as its three response fields: the rows, the next page token, the position.
/// The server's clock, for "posts held today".
fn today() -> crate::time::Timestamp {
    use crate::log::Clock;
    crate::log::SystemClock.now()
}

fn page_parts<T, U>(page: &Page<T>, row: impl Fn(&T) -> U) -> (Vec<U>, String, u64) {
    let rows = page.items().iter().map(row).collect();
    (
        rows,
        page.next_page_token().unwrap_or_default().to_owned(),
        page.based_on_position(),
    )
}

/// A party code, bare or as its stream id, that must be given and well formed (a lower-case or
/// malformed code names no party: INVALID_ARGUMENT, not an empty answer). The description
/// quotes the value given, cut (`domain::common::quoted`).
fn required_party(value: &str, field: &str, violations: &mut Violations) -> String {
    let code = convert::party_code_from_pb(value);
    if code.is_empty() {
        violations.add(field, "is required");
    } else if let Err(reason) = crate::domain::common::check_party_code(&code) {
        violations.add(field, reason);
    }
    code
}

/// An optional party filter (absent or empty: none), bare or as its stream id, well formed
/// when given.
fn optional_party(value: Option<&str>, field: &str, violations: &mut Violations) -> Option<String> {
    match value {
        None | Some("") => None,
        Some(value) => Some(required_party(value, field, violations)),
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
        self.query(
            request,
            |r, v| convert::entity_id_from_pb::<MeetingId>(&r.meeting_id, "meeting_id", v),
            |p, id, options| p.named_meeting(id, options),
            |(answer, names)| pb::GetMeetingResponse {
                meeting: Some(convert::meeting_to_pb(answer.value(), &names)),
                based_on_position: answer.based_on_position(),
            },
        )
        .await
    }

    async fn list_meetings(
        &self,
        request: Request<pb::ListMeetingsRequest>,
    ) -> Result<Response<pb::ListMeetingsResponse>, Status> {
        let parse = |r: pb::ListMeetingsRequest, v: &mut Violations| {
            let filter = MeetingFilter {
                party: optional_party(r.party.as_deref(), "party", v),
                official: convert::optional_entity_id(r.official_id.as_deref(), "official_id", v),
                topic: r.topic,
                place: r.place,
                country: r.country,
                status: convert::meeting_status_from_pb(r.status, "status", v),
                occurred_from: convert::optional_timestamp(r.occurred_from.as_ref(), "occurred_from", v),
                occurred_to: convert::optional_timestamp(r.occurred_to.as_ref(), "occurred_to", v),
            };
            (filter, list_page(r.page.as_ref(), v))
        };
        self.query(
            request,
            parse,
            |p, (filter, page), options| {
                let (page, names) = p.named_meetings(&filter, &page, options)?;
                let parties: Vec<&str> = filter.party.as_deref().into_iter().collect();
                require_parties(p, &parties, page.based_on_position(), options)?;
                Ok::<_, QueryError>((page, names))
            },
            |(page, names)| {
                let (meetings, next_page_token, based_on_position) =
                    page_parts(&page, |row| convert::meeting_to_pb(row, &names));
                pb::ListMeetingsResponse {
                    meetings,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn get_commitment(
        &self,
        request: Request<pb::GetCommitmentRequest>,
    ) -> Result<Response<pb::GetCommitmentResponse>, Status> {
        self.query(
            request,
            |r, v| convert::entity_id_from_pb::<CommitmentId>(&r.commitment_id, "commitment_id", v),
            |p, id, options| p.commitment(id, options),
            |answer| pb::GetCommitmentResponse {
                commitment: Some(convert::commitment_to_pb(answer.value())),
                based_on_position: answer.based_on_position(),
            },
        )
        .await
    }

    async fn list_commitments(
        &self,
        request: Request<pb::ListCommitmentsRequest>,
    ) -> Result<Response<pb::ListCommitmentsResponse>, Status> {
        let parse = |r: pb::ListCommitmentsRequest, v: &mut Violations| {
            let filter = CommitmentFilter {
                party: optional_party(r.party.as_deref(), "party", v),
                status: convert::commitment_status_from_pb(r.status, "status", v),
                topic: r.topic,
                made_from: convert::optional_timestamp(r.made_from.as_ref(), "made_from", v),
                made_to: convert::optional_timestamp(r.made_to.as_ref(), "made_to", v),
            };
            (filter, list_page(r.page.as_ref(), v))
        };
        self.query(
            request,
            parse,
            |p, (filter, page), options| {
                let page = p.commitments(&filter, &page, options)?;
                let parties: Vec<&str> = filter.party.as_deref().into_iter().collect();
                require_parties(p, &parties, page.based_on_position(), options)?;
                Ok::<_, QueryError>(page)
            },
            |page| {
                let (commitments, next_page_token, based_on_position) =
                    page_parts(&page, convert::commitment_to_pb);
                pb::ListCommitmentsResponse {
                    commitments,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn list_overdue_commitments(
        &self,
        request: Request<pb::ListOverdueCommitmentsRequest>,
    ) -> Result<Response<pb::ListOverdueCommitmentsResponse>, Status> {
        self.query(
            request,
            |r, v| {
                let on = convert::required_timestamp(r.on.as_ref(), "on", v);
                (on, list_page(r.page.as_ref(), v))
            },
            |p, (on, page), options| p.overdue_commitments(on, &page, options),
            |page| {
                let (commitments, next_page_token, based_on_position) =
                    page_parts(&page, convert::commitment_to_pb);
                pb::ListOverdueCommitmentsResponse {
                    commitments,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn get_compliance(
        &self,
        request: Request<pb::GetComplianceRequest>,
    ) -> Result<Response<pb::GetComplianceResponse>, Status> {
        self.query(
            request,
            |r, v| required_party(&r.party, "party", v),
            |p, party, options| {
                let answer = p.compliance(&party, options)?;
                require_parties(p, &[&party], answer.based_on_position(), options)?;
                Ok::<_, QueryError>(answer)
            },
            |answer| {
                let row = answer.value();
                pb::GetComplianceResponse {
                    party: row.party.clone(),
                    assessed_commitments: row.assessed_commitments,
                    score_sum: row.score_sum,
                    based_on_position: answer.based_on_position(),
                }
            },
        )
        .await
    }

    async fn get_bilateral_relation(
        &self,
        request: Request<pb::GetBilateralRelationRequest>,
    ) -> Result<Response<pb::GetBilateralRelationResponse>, Status> {
        let parse = |r: pb::GetBilateralRelationRequest, v: &mut Violations| {
            let a = required_party(&r.party_a, "party_a", v);
            let b = required_party(&r.party_b, "party_b", v);
            (a, b, list_page(r.page.as_ref(), v))
        };
        self.query(
            request,
            parse,
            |p, (a, b, page), options| {
                let (answer, names) = p.named_relation(&a, &b, &page, options)?;
                require_parties(p, &[&a, &b], answer.based_on_position(), options)?;
                Ok::<_, QueryError>((answer, names))
            },
            |(answer, names)| {
                let relation = answer.value();
                let summary = &relation.summary;
                pb::GetBilateralRelationResponse {
                    pair: relation.pair.clone(),
                    meetings: summary.meetings,
                    meetings_planned: summary.meetings_planned,
                    meetings_held: summary.meetings_held,
                    meetings_postponed: summary.meetings_postponed,
                    meetings_cancelled: summary.meetings_cancelled,
                    meetings_held_by_month: summary.meetings_held_by_month.clone().into_iter().collect(),
                    commitments: summary.commitments,
                    commitments_open: summary.commitments_open,
                    commitments_fulfilled: summary.commitments_fulfilled,
                    commitments_closed_otherwise: summary.commitments_closed_otherwise,
                    topics: summary.topics.clone().into_iter().collect(),
                    goldstein_tenths_by_month: summary
                        .goldstein_tenths_by_month
                        .clone()
                        .into_iter()
                        .collect(),
                    timeline: relation
                        .timeline
                        .iter()
                        .map(|item| convert::timeline_item_to_pb(item, &names))
                        .collect(),
                    next_page_token: relation.next_page_token.clone().unwrap_or_default(),
                    based_on_position: answer.based_on_position(),
                }
            },
        )
        .await
    }

    async fn get_official(
        &self,
        request: Request<pb::GetOfficialRequest>,
    ) -> Result<Response<pb::GetOfficialResponse>, Status> {
        self.query(
            request,
            |r, v| convert::entity_id_from_pb::<OfficialId>(&r.official_id, "official_id", v),
            |p, id, options| p.official(id, options),
            |answer| pb::GetOfficialResponse {
                official: Some(convert::official_to_pb(answer.value())),
                based_on_position: answer.based_on_position(),
            },
        )
        .await
    }

    async fn list_officials(
        &self,
        request: Request<pb::ListOfficialsRequest>,
    ) -> Result<Response<pb::ListOfficialsResponse>, Status> {
        self.query(
            request,
            |r, v| {
                (
                    required_party(&r.party, "party", v),
                    list_page(r.page.as_ref(), v),
                )
            },
            |p, (party, page), options| {
                let page = p.officials_of_party(&party, &page, options)?;
                require_parties(p, &[&party], page.based_on_position(), options)?;
                Ok::<_, QueryError>(page)
            },
            |page| {
                let (officials, next_page_token, based_on_position) =
                    page_parts(&page, convert::official_to_pb);
                pb::ListOfficialsResponse {
                    officials,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn list_post_holders(
        &self,
        request: Request<pb::ListPostHoldersRequest>,
    ) -> Result<Response<pb::ListPostHoldersResponse>, Status> {
        let parse = |r: pb::ListPostHoldersRequest, v: &mut Violations| {
            let post = required_text(&r.post, "post", v);
            let on = convert::required_timestamp(r.on.as_ref(), "on", v);
            (post, on, list_page(r.page.as_ref(), v))
        };
        self.query(
            request,
            parse,
            |p, (post, on, page), options| p.post_holders(&post, on, &page, options),
            |page| {
                let (holders, next_page_token, based_on_position) =
                    page_parts(&page, convert::post_holder_to_pb);
                pb::ListPostHoldersResponse {
                    holders,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn get_contacts(
        &self,
        request: Request<pb::GetContactsRequest>,
    ) -> Result<Response<pb::GetContactsResponse>, Status> {
        self.query(
            request,
            |r, v| convert::entity_id_from_pb::<OfficialId>(&r.official_id, "official_id", v),
            |p, id, options| p.named_contacts(id, options),
            |(answer, names)| pb::GetContactsResponse {
                met: answer.value().met.clone().into_iter().collect(),
                based_on_position: answer.based_on_position(),
                contacts: convert::contacts_to_pb(answer.value(), &names, today()),
            },
        )
        .await
    }

    async fn get_party(
        &self,
        request: Request<pb::GetPartyRequest>,
    ) -> Result<Response<pb::GetPartyResponse>, Status> {
        self.query(
            request,
            |r, v| required_party(&r.code, "code", v),
            |p, code, options| p.party(&code, options),
            |answer| pb::GetPartyResponse {
                party: Some(convert::party_to_pb(answer.value())),
                based_on_position: answer.based_on_position(),
            },
        )
        .await
    }

    async fn list_parties(
        &self,
        request: Request<pb::ListPartiesRequest>,
    ) -> Result<Response<pb::ListPartiesResponse>, Status> {
        self.query(
            request,
            |r, v| list_page(r.page.as_ref(), v),
            |p, page, options| p.parties(&page, options),
            |page| {
                let (parties, next_page_token, based_on_position) = page_parts(&page, convert::party_to_pb);
                pb::ListPartiesResponse {
                    parties,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn get_source(
        &self,
        request: Request<pb::GetSourceRequest>,
    ) -> Result<Response<pb::GetSourceResponse>, Status> {
        self.query(
            request,
            |r, v| convert::entity_id_from_pb::<SourceId>(&r.source_id, "source_id", v),
            |p, id, options| p.source(id, options),
            |answer| pb::GetSourceResponse {
                source: Some(convert::source_to_pb(answer.value())),
                based_on_position: answer.based_on_position(),
            },
        )
        .await
    }

    async fn list_sources(
        &self,
        request: Request<pb::ListSourcesRequest>,
    ) -> Result<Response<pb::ListSourcesResponse>, Status> {
        self.query(
            request,
            |r, v| list_page(r.page.as_ref(), v),
            |p, page, options| p.sources(&page, options),
            |page| {
                let (sources, next_page_token, based_on_position) = page_parts(&page, convert::source_to_pb);
                pb::ListSourcesResponse {
                    sources,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }

    async fn get_entity_history(
        &self,
        request: Request<pb::GetEntityHistoryRequest>,
    ) -> Result<Response<pb::GetEntityHistoryResponse>, Status> {
        self.query(
            request,
            |r, v| {
                (
                    required_text(&r.stream_id, "stream_id", v),
                    page_request(r.page.as_ref(), MAX_HISTORY_PAGE, v),
                )
            },
            |p, (stream_id, page), options| p.history(&stream_id, &page, options),
            |page| {
                let (entries, next_page_token, based_on_position) =
                    page_parts(&page, convert::history_entry_to_pb);
                pb::GetEntityHistoryResponse {
                    entries,
                    next_page_token,
                    based_on_position,
                }
            },
        )
        .await
    }
}
