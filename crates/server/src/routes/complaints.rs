//! Complaint handling: the complaint record on a case, its steps through the core flow
//! and escalation, appeals, the rule set, promises, tracking links and notifications.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{JsonBody, Params, idempotent, if_match, with_etag};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Json};
use kefu_domain::complaints::*;
use kefu_store::complaints::*;
use kefu_store::page::{Page, PageRequest};
use kefu_store::promises::*;
use kefu_store::tracking::{TrackedCase, TrackingLink};
use kefu_store::users::Principal;
use serde::{Deserialize, Serialize};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ComplaintQuery {
    pub stage: Option<ComplaintStage>,
    /// `true`: still being handled; `false`: closed or legal action advised.
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    pub cause: Option<Cause>,
    pub behaviour: Option<Behaviour>,
    /// 1: reviewed internally or beyond; 2: external review or beyond; 3: legal advice.
    pub min_escalation_level: Option<i64>,
    /// The employee named; `me` for the caller.
    pub subject_user_id: Option<String>,
    /// The accountable first-contact owner (首问负责人); `me` for the caller.
    pub first_owner_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

fn me(principal: &Principal, id: Option<String>) -> Option<String> {
    match id.as_deref() {
        Some("me") => Some(principal.user.id.clone()),
        _ => id,
    }
}

/// Lists complaints, newest first.
#[utoipa::path(get, path = "/api/v1/complaints", tag = "complaints", params(ComplaintQuery), responses((status = 200, body = Page<Complaint>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<ComplaintQuery>,
) -> ApiResult<Json<Page<Complaint>>> {
    let filter = ComplaintFilter {
        stage: query.stage,
        open: query.open,
        severity: query.severity,
        cause: query.cause,
        behaviour: query.behaviour,
        min_escalation_level: query.min_escalation_level,
        subject_user_id: me(&principal, query.subject_user_id),
        first_owner_id: me(&principal, query.first_owner_id),
    };
    Ok(Json(
        state
            .store
            .complaints(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Records the complaint on a case of kind `complaint` (受理登记). Serious complaints,
/// reputation risks and cases that passed through several teams escalate at once when
/// the rule set says so. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/complaint", tag = "complaints", request_body = NewComplaint, params(("id" = String, Path)),
    responses((status = 201, body = ComplaintDetail), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<NewComplaint>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        &format!("complaint {id}"),
        &body.hash,
        async move { Ok(store.record_complaint(&actor, &id, body.value).await?) },
    )
    .await
}

/// The complaint with its steps, reviews, compensation and appeals. The ETag is the
/// version for `If-Match`.
#[utoipa::path(get, path = "/api/v1/cases/{id}/complaint", tag = "complaints", params(("id" = String, Path)), responses((status = 200, body = ComplaintDetail), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let detail = state.store.complaint(&id).await?;
    Ok(with_etag(StatusCode::OK, detail.complaint.version, &detail))
}

/// Changes the record (classification, key points, validity, the employee named).
#[utoipa::path(patch, path = "/api/v1/cases/{id}/complaint", tag = "complaints", request_body = ComplaintPatch, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ComplaintDetail), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<ComplaintPatch>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let detail = state
        .store
        .update_complaint(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, detail.complaint.version, &detail))
}

/// Moves the complaint one step: `{"stage": "authority_check"}`, with the fields the
/// step needs (a `proposal` for `solution_proposed`, a `body` for `external_review`, a
/// `decision` when a review ends, a `note` when asking for information or escalating).
/// An out-of-order step is 409 `invalid_transition` with the allowed ones; a review
/// decision by an agent is 403 `role_required`; compensation above the caller's limit
/// is 403 `authority_exceeded`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/complaint/steps", tag = "complaints", request_body = StepInput, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = ComplaintDetail), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn step(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<StepInput>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    if expected.is_none() && body.value.from.is_none() {
        return Err(ApiError::new(
            ErrorCode::PreconditionRequired,
            "say which stage you are moving from: send `from` in the body or If-Match with the complaint's version, so that a concurrent step is refused instead of stacked",
        )
        .field("from"));
    }
    let detail = state
        .store
        .complaint_step(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, detail.complaint.version, &detail))
}

/// The employee the complaint names appeals it (申诉).
#[utoipa::path(post, path = "/api/v1/cases/{id}/complaint/appeals", tag = "complaints", request_body = NewAppeal, params(("id" = String, Path)),
    responses((status = 201, body = Appeal), (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn appeal(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<NewAppeal>,
) -> ApiResult<Response> {
    let appeal = state
        .store
        .file_appeal(&principal.actor(), &id, body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(appeal)).into_response())
}

/// Appeals awaiting a decision, oldest first.
#[utoipa::path(get, path = "/api/v1/appeals", tag = "complaints", responses((status = 200, body = Vec<Appeal>)))]
pub async fn appeals(State(state): State<AppState>) -> ApiResult<Json<Vec<Appeal>>> {
    Ok(Json(state.store.pending_appeals().await?))
}

/// Decides an appeal; the employee is notified of the decision and its reason.
#[utoipa::path(post, path = "/api/v1/appeals/{id}/decision", tag = "complaints", request_body = AppealDecision, params(("id" = String, Path)),
    responses((status = 200, body = Appeal), (status = 409, body = ErrorBody)))]
pub async fn decide_appeal(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<AppealDecision>,
) -> ApiResult<Json<Appeal>> {
    Ok(Json(
        state
            .store
            .decide_appeal(&principal.actor(), &id, body.value)
            .await?,
    ))
}

/// The rule set in force and every earlier version.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RuleSets {
    pub current: RuleSet,
    /// Newest first.
    pub versions: Vec<RuleSet>,
}

/// The complaint rules (one set for everyone, versioned).
#[utoipa::path(get, path = "/api/v1/complaint-rules", tag = "complaints", responses((status = 200, body = RuleSets)))]
pub async fn rules(State(state): State<AppState>) -> ApiResult<Json<RuleSets>> {
    let current = state.store.complaint_rules().await?;
    let versions = state.store.rule_sets().await?;
    Ok(Json(RuleSets { current, versions }))
}

/// Publishes a new version of the rules; complaints keep the version they began under.
#[utoipa::path(post, path = "/api/v1/complaint-rules", tag = "complaints", request_body = NewRuleSet,
    responses((status = 201, body = RuleSet), (status = 422, body = ErrorBody)))]
pub async fn publish_rules(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<NewRuleSet>,
) -> ApiResult<Response> {
    let rules = state
        .store
        .publish_rules(&principal.actor(), body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(rules)).into_response())
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PromiseQuery {
    pub case_id: Option<String>,
    /// A user's id, or `me`.
    pub owner_id: Option<String>,
    pub status: Option<PromiseStatus>,
    /// Only open promises past their deadline.
    pub overdue: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Promises, soonest due first.
#[utoipa::path(get, path = "/api/v1/promises", tag = "complaints", params(PromiseQuery), responses((status = 200, body = Page<Promise>)))]
pub async fn promises(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<PromiseQuery>,
) -> ApiResult<Json<Page<Promise>>> {
    let filter = PromiseFilter {
        case_id: query.case_id,
        owner_id: me(&principal, query.owner_id),
        status: query.status,
        overdue: query.overdue.unwrap_or(false),
    };
    Ok(Json(
        state
            .store
            .promises(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Records a promise made to the customer (承诺), with its deadline and owner.
#[utoipa::path(post, path = "/api/v1/cases/{id}/promises", tag = "complaints", request_body = NewPromise, params(("id" = String, Path)),
    responses((status = 201, body = Promise), (status = 422, body = ErrorBody)))]
pub async fn add_promise(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<NewPromise>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        &format!("promise {id}"),
        &body.hash,
        async move { Ok(store.add_promise(&actor, &id, body.value).await?) },
    )
    .await
}

/// Settles a promise: `kept`, `broken` or `cancelled`.
#[utoipa::path(post, path = "/api/v1/promises/{id}/status", tag = "complaints", request_body = PromiseUpdate, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Promise), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn settle_promise(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<PromiseUpdate>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let promise = state
        .store
        .settle_promise(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, promise.version, &promise))
}

/// The case's tracking link for the customer, made on first request.
#[utoipa::path(post, path = "/api/v1/cases/{id}/tracking-link", tag = "complaints", params(("id" = String, Path)), responses((status = 200, body = TrackingLink)))]
pub async fn tracking_link(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<TrackingLink>> {
    Ok(Json(
        state.store.tracking_link(&principal.actor(), &id).await?,
    ))
}

/// Revokes the tracking link; the old link stops working at once.
#[utoipa::path(delete, path = "/api/v1/cases/{id}/tracking-link", tag = "complaints", params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn revoke_tracking_link(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .revoke_tracking_link(&principal.actor(), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// What the customer sees behind a tracking link (no login; the token is the key).
#[utoipa::path(get, path = "/api/v1/track/{token}", tag = "complaints", security(()), params(("token" = String, Path)), responses((status = 200, body = TrackedCase), (status = 404, body = ErrorBody)))]
pub async fn track(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Response> {
    let case = state.store.track(&token).await?;
    let mut response = Json(case).into_response();
    no_store(&mut response);
    Ok(response)
}

pub(crate) fn no_store(response: &mut Response) {
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, "no-store".parse().expect("static"));
    headers.insert(
        header::REFERRER_POLICY,
        "no-referrer".parse().expect("static"),
    );
    headers.insert("x-robots-tag", "noindex".parse().expect("static"));
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"
            .parse()
            .expect("static"),
    );
}

#[derive(Debug, Deserialize)]
pub struct TrackPageQuery {
    pub lang: Option<String>,
}

/// The customer's page behind a tracking link, in Chinese or English (from `?lang=`,
/// then `Accept-Language`; Chinese by default).
pub async fn track_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    axum::extract::Query(query): axum::extract::Query<TrackPageQuery>,
    headers: HeaderMap,
) -> Response {
    let english = crate::tracking_page::wants_english(query.lang.as_deref(), &headers);
    let (status, html) = match state.store.track(&token).await {
        Ok(case) => (StatusCode::OK, crate::tracking_page::render(&case, english)),
        Err(kefu_store::StoreError::NotFound { .. }) => (
            StatusCode::NOT_FOUND,
            crate::tracking_page::not_found(english),
        ),
        Err(error) => {
            let error = ApiError::from(error);
            return error.into_response();
        }
    };
    let mut response = (status, Html(html)).into_response();
    no_store(&mut response);
    response
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NotificationQuery {
    /// Only unread ones.
    pub unread: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The caller's notifications, newest first.
#[utoipa::path(get, path = "/api/v1/notifications", tag = "complaints", params(NotificationQuery), responses((status = 200, body = Page<Notification>)))]
pub async fn notifications(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<NotificationQuery>,
) -> ApiResult<Json<Page<Notification>>> {
    Ok(Json(
        state
            .store
            .notifications(
                principal.user.key,
                query.unread.unwrap_or(false),
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Marks one of the caller's notifications read.
#[utoipa::path(post, path = "/api/v1/notifications/{id}/read", tag = "complaints", params(("id" = String, Path)), responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn read_notification(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .mark_notification_read(principal.user.key, &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Business calendars (工作日历), by name.
#[utoipa::path(get, path = "/api/v1/calendars", tag = "sla", responses((status = 200, body = Vec<kefu_store::sla::BusinessCalendar>)))]
pub async fn calendars(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<kefu_store::sla::BusinessCalendar>>> {
    Ok(Json(state.store.calendars().await?))
}

/// Creates a calendar: a time zone, weekly hours, holidays (节假日) and make-up working
/// days (调休). Overlapping or malformed hours are refused with the entry named.
#[utoipa::path(post, path = "/api/v1/calendars", tag = "sla", request_body = kefu_store::sla::NewCalendar,
    responses((status = 201, body = kefu_store::sla::BusinessCalendar), (status = 422, body = ErrorBody)))]
pub async fn create_calendar(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<kefu_store::sla::NewCalendar>,
) -> ApiResult<Response> {
    let calendar = state
        .store
        .create_calendar(&principal.actor(), body.value)
        .await?;
    Ok(with_etag(StatusCode::CREATED, calendar.version, &calendar))
}

/// Replaces a calendar (`If-Match` for the version).
#[utoipa::path(put, path = "/api/v1/calendars/{id}", tag = "sla", request_body = kefu_store::sla::NewCalendar, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = kefu_store::sla::BusinessCalendar), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_calendar(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<kefu_store::sla::NewCalendar>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let calendar = state
        .store
        .update_calendar(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, calendar.version, &calendar))
}

/// Sets the calendar a team's SLA clocks count in (`null`: 24×7).
#[utoipa::path(put, path = "/api/v1/teams/{id}/calendar", tag = "sla", request_body = kefu_store::sla::TeamCalendar, params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_team_calendar(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<kefu_store::sla::TeamCalendar>,
) -> ApiResult<StatusCode> {
    state
        .store
        .set_team_calendar(&principal.actor(), &id, body.value)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// SLA policies, in the order they are tried.
#[utoipa::path(get, path = "/api/v1/sla-policies", tag = "sla", responses((status = 200, body = Vec<kefu_store::sla::SlaPolicy>)))]
pub async fn sla_policies(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<kefu_store::sla::SlaPolicy>>> {
    Ok(Json(state.store.sla_policies().await?))
}

/// Creates an SLA policy: conditions (case kind, priority, complaint severity) and
/// targets in minutes of working time.
#[utoipa::path(post, path = "/api/v1/sla-policies", tag = "sla", request_body = kefu_domain::sla::SlaPolicySpec,
    responses((status = 201, body = kefu_store::sla::SlaPolicy), (status = 422, body = ErrorBody)))]
pub async fn create_sla_policy(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<kefu_domain::sla::SlaPolicySpec>,
) -> ApiResult<Response> {
    let policy = state
        .store
        .create_sla_policy(&principal.actor(), body.value)
        .await?;
    Ok(with_etag(StatusCode::CREATED, policy.version, &policy))
}

/// The SLA clocks of a case: state, due time, working time used.
#[utoipa::path(get, path = "/api/v1/cases/{id}/sla", tag = "sla", params(("id" = String, Path)), responses((status = 200, body = Vec<kefu_store::sla::SlaClock>), (status = 404, body = ErrorBody)))]
pub async fn case_sla(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<kefu_store::sla::SlaClock>>> {
    Ok(Json(state.store.case_sla(&id).await?))
}
