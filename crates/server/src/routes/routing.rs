//! Routing (工单分配) and agent stress (压力管理): team queues and their settings, agents'
//! capacity, skills, availability and pauses, the skills a case needs, stress
//! assessments and the flags raised to supervisors.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, Params, if_match, with_etag};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::{Extension, Json};
use kefu_store::page::{Page, PageRequest};
use kefu_store::routing::*;
use kefu_store::users::Principal;
use serde::Deserialize;

/// A team's routing settings: strategy, automatic assignment, skills by case kind and
/// stress thresholds. The ETag is the version for `If-Match` (0 until first saved).
#[utoipa::path(get, path = "/api/v1/teams/{id}/routing", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = TeamRouting), (status = 404, body = ErrorBody)))]
pub async fn team_settings(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let settings = state.store.team_routing(&id).await?;
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

/// Replaces a team's routing settings. Turning `auto_assign` on routes the queue at once,
/// as far as the agents have room.
#[utoipa::path(put, path = "/api/v1/teams/{id}/routing", tag = "routing", request_body = TeamRoutingInput, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = TeamRouting), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_team_settings(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<TeamRoutingInput>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let settings = state
        .store
        .set_team_routing(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, settings.version, &settings))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct QueueQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// A team's queue (待分配): its open cases without an assignee, oldest first, with the
/// skills each needs.
#[utoipa::path(get, path = "/api/v1/teams/{id}/queue", tag = "routing", params(("id" = String, Path), QueueQuery),
    responses((status = 200, body = Page<QueuedCase>), (status = 404, body = ErrorBody)))]
pub async fn queue(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<QueueQuery>,
) -> ApiResult<Json<Page<QueuedCase>>> {
    Ok(Json(
        state
            .store
            .team_queue(
                &id,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Hands the oldest queued case someone can take to an agent, by the team's strategy,
/// whether or not the team assigns automatically. `null` when nobody can take any.
#[utoipa::path(post, path = "/api/v1/teams/{id}/queue/assign-next", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = Option<Assignment>), (status = 404, body = ErrorBody)))]
pub async fn assign_next(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<Option<Assignment>>> {
    Ok(Json(
        state.store.assign_next(&principal.actor(), &id).await?,
    ))
}

/// The routing profiles of a team's agents and supervisors: capacity, skills,
/// availability, pauses, open cases and stress level.
#[utoipa::path(get, path = "/api/v1/teams/{id}/agents", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = Vec<AgentProfile>), (status = 404, body = ErrorBody)))]
pub async fn team_agents(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<AgentProfile>>> {
    Ok(Json(state.store.team_agents(&id).await?))
}

/// An agent's routing profile. The ETag is the version for `If-Match`.
#[utoipa::path(get, path = "/api/v1/users/{id}/routing", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = AgentProfile), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn agent_profile(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let profile = state.store.agent_profile(&id).await?;
    Ok(with_etag(StatusCode::OK, profile.version, &profile))
}

/// Sets an agent's capacity (1–1000 open cases) and skills.
#[utoipa::path(put, path = "/api/v1/users/{id}/routing", tag = "routing", request_body = AgentProfileInput, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = AgentProfile), (status = 404, body = ErrorBody), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_agent_profile(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<AgentProfileInput>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let profile = state
        .store
        .set_agent_profile(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, profile.version, &profile))
}

/// Pauses routing to an agent (暂停分配), with the reason the agent is told. Their open
/// cases stay with them.
#[utoipa::path(post, path = "/api/v1/users/{id}/routing/pause", tag = "routing", request_body = PauseInput, params(("id" = String, Path)),
    responses((status = 200, body = AgentProfile), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<PauseInput>,
) -> ApiResult<Json<AgentProfile>> {
    Ok(Json(
        state
            .store
            .pause_agent(&principal.actor(), &id, body.value)
            .await?,
    ))
}

/// Resumes routing to a paused agent; the queue may give them cases at once.
#[utoipa::path(post, path = "/api/v1/users/{id}/routing/resume", tag = "routing", request_body = ResumeInput, params(("id" = String, Path)),
    responses((status = 200, body = AgentProfile), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<ResumeInput>,
) -> ApiResult<Json<AgentProfile>> {
    Ok(Json(
        state
            .store
            .resume_agent(&principal.actor(), &id, body.value)
            .await?,
    ))
}

/// An agent's stress now (压力评估): the facts, the level, the reasons, the thresholds of
/// their team and the flag raised for them, if any.
#[utoipa::path(get, path = "/api/v1/users/{id}/stress", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = StressReport), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn stress(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<StressReport>> {
    Ok(Json(state.store.assess_stress(&id).await?))
}

/// Sets the caller's own availability: `available` takes cases from the queue, `busy`
/// does not, `away` (a break) and `offline` end continuous time on duty.
#[utoipa::path(put, path = "/api/v1/me/availability", tag = "routing", request_body = AvailabilityInput,
    responses((status = 200, body = AgentProfile), (status = 422, body = ErrorBody)))]
pub async fn set_my_availability(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<AvailabilityInput>,
) -> ApiResult<Json<AgentProfile>> {
    Ok(Json(
        state
            .store
            .set_availability(
                &principal.actor(),
                &principal.user.id,
                body.value.availability,
            )
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct StressFlagQuery {
    /// `true`: not yet cleared; `false`: cleared.
    pub open: Option<bool>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Stress flags (压力预警), newest first.
#[utoipa::path(get, path = "/api/v1/stress-flags", tag = "routing", params(StressFlagQuery),
    responses((status = 200, body = Page<StressFlag>), (status = 400, body = ErrorBody)))]
pub async fn stress_flags(
    State(state): State<AppState>,
    Params(query): Params<StressFlagQuery>,
) -> ApiResult<Json<Page<StressFlag>>> {
    let filter = StressFlagFilter {
        open: query.open,
        user_id: query.user_id,
        team_id: query.team_id,
    };
    Ok(Json(
        state
            .store
            .stress_flags(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// A supervisor acknowledges a stress flag, saying what they did about it.
#[utoipa::path(post, path = "/api/v1/stress-flags/{id}/acknowledge", tag = "routing", request_body = AcknowledgeInput, params(("id" = String, Path)),
    responses((status = 200, body = StressFlag), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
pub async fn acknowledge_stress_flag(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<AcknowledgeInput>,
) -> ApiResult<Json<StressFlag>> {
    Ok(Json(
        state
            .store
            .acknowledge_stress_flag(&principal.actor(), &id, body.value)
            .await?,
    ))
}

/// How routing sees a case: the skills it needs, whether it waits in a queue and why.
#[utoipa::path(get, path = "/api/v1/cases/{id}/routing", tag = "routing", params(("id" = String, Path)),
    responses((status = 200, body = CaseRouting), (status = 404, body = ErrorBody)))]
pub async fn case_routing(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<CaseRouting>> {
    Ok(Json(state.store.case_routing(&id).await?))
}

/// Sets the skills a case needs (beyond those of its kind in its team). A queued case is
/// routed again at once when its team assigns automatically.
#[utoipa::path(put, path = "/api/v1/cases/{id}/skills", tag = "routing", request_body = CaseSkillsInput, params(("id" = String, Path)),
    responses((status = 200, body = CaseRouting), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn set_case_skills(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<CaseSkillsInput>,
) -> ApiResult<Json<CaseRouting>> {
    Ok(Json(
        state
            .store
            .set_case_skills(&principal.actor(), &id, body.value)
            .await?,
    ))
}
