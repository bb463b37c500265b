//! Follow-ups and satisfaction: the follow-up tasks made when a case is solved, the CSAT
//! request and its answer — by the customer through their link, or by an agent.

use crate::error::{ApiError, ApiResult, ErrorBody};
use crate::extract::{JsonBody, Params};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form, Json};
use kefu_store::page::{Page, PageRequest};
use kefu_store::satisfaction::*;
use kefu_store::users::Principal;
use serde::Deserialize;

/// The CSAT requests of a case, newest first, with their answers.
#[utoipa::path(get, path = "/api/v1/cases/{id}/satisfaction", tag = "satisfaction", params(("id" = String, Path)), responses((status = 200, body = Vec<SatisfactionRequest>), (status = 404, body = ErrorBody)))]
pub async fn case_satisfaction(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<SatisfactionRequest>>> {
    Ok(Json(state.store.case_satisfaction(&id).await?))
}

/// Records the answer a customer gave an agent (phone, visit).
#[utoipa::path(post, path = "/api/v1/cases/{id}/satisfaction", tag = "satisfaction", request_body = SatisfactionAnswer, params(("id" = String, Path)),
    responses((status = 200, body = SatisfactionRequest), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn record_satisfaction(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<SatisfactionAnswer>,
) -> ApiResult<Json<SatisfactionRequest>> {
    Ok(Json(
        state
            .store
            .record_satisfaction(&principal.actor(), &id, body.value)
            .await?,
    ))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct FollowUpQuery {
    /// A user's id, or `me`.
    pub owner_id: Option<String>,
    /// `open`, `done` or `cancelled`.
    pub status: Option<String>,
    /// Only open follow-ups that are due.
    pub due: Option<bool>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Follow-up tasks (回访), soonest due first.
#[utoipa::path(get, path = "/api/v1/follow-ups", tag = "satisfaction", params(FollowUpQuery), responses((status = 200, body = Page<FollowUp>)))]
pub async fn follow_ups(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<FollowUpQuery>,
) -> ApiResult<Json<Page<FollowUp>>> {
    let owner_id = match query.owner_id.as_deref() {
        Some("me") => Some(principal.user.id.clone()),
        other => other.map(str::to_string),
    };
    Ok(Json(
        state
            .store
            .follow_ups(
                &FollowUpFilter {
                    owner_id,
                    status: query.status,
                    due: query.due.unwrap_or(false),
                },
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Completes a follow-up with what the customer said.
#[utoipa::path(post, path = "/api/v1/follow-ups/{id}/done", tag = "satisfaction", request_body = FollowUpDone, params(("id" = String, Path)),
    responses((status = 200, body = FollowUp), (status = 409, body = ErrorBody)))]
pub async fn complete_follow_up(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<FollowUpDone>,
) -> ApiResult<Json<FollowUp>> {
    Ok(Json(
        state
            .store
            .complete_follow_up(&principal.actor(), &id, body.value)
            .await?,
    ))
}

/// The survey behind a CSAT link (no login; the token is the key).
#[utoipa::path(get, path = "/api/v1/survey/{token}", tag = "satisfaction", security(()), params(("token" = String, Path)), responses((status = 200, body = SurveyView), (status = 404, body = ErrorBody)))]
pub async fn survey(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> ApiResult<Json<SurveyView>> {
    Ok(Json(state.store.survey(&token).await?))
}

/// The customer's answer through their CSAT link; once, before it expires.
#[utoipa::path(post, path = "/api/v1/survey/{token}", tag = "satisfaction", security(()), request_body = SatisfactionAnswer, params(("token" = String, Path)),
    responses((status = 200, body = SurveyView), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn answer_survey(
    State(state): State<AppState>,
    Path(token): Path<String>,
    body: JsonBody<SatisfactionAnswer>,
) -> ApiResult<Json<SurveyView>> {
    Ok(Json(state.store.answer_survey(&token, body.value).await?))
}

#[derive(Debug, Deserialize)]
pub struct LangQuery {
    pub lang: Option<String>,
}

fn page(status: StatusCode, html: String) -> Response {
    let mut response = (status, Html(html)).into_response();
    crate::routes::complaints::no_store(&mut response);
    response
}

/// The customer's survey page: five choices and a reason, no script.
pub async fn survey_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    axum::extract::Query(query): axum::extract::Query<LangQuery>,
    headers: HeaderMap,
) -> Response {
    let english = crate::tracking_page::wants_english(query.lang.as_deref(), &headers);
    match state.store.survey(&token).await {
        Ok(view) => page(
            StatusCode::OK,
            crate::tracking_page::survey(&view, english, None),
        ),
        Err(kefu_store::StoreError::NotFound { .. }) => page(
            StatusCode::NOT_FOUND,
            crate::tracking_page::not_found(english),
        ),
        Err(error) => ApiError::from(error).into_response(),
    }
}

#[derive(Debug, Deserialize)]
pub struct SurveyForm {
    pub score: Option<String>,
    pub reason: Option<String>,
}

/// The survey form's submission (a plain HTML form post).
pub async fn survey_submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    axum::extract::Query(query): axum::extract::Query<LangQuery>,
    headers: HeaderMap,
    Form(form): Form<SurveyForm>,
) -> Response {
    let english = crate::tracking_page::wants_english(query.lang.as_deref(), &headers);
    let score = form
        .score
        .as_deref()
        .and_then(|s| s.trim().parse::<i64>().ok())
        .unwrap_or(0);
    let answer = SatisfactionAnswer {
        score,
        reason: form.reason,
    };
    match state.store.answer_survey(&token, answer).await {
        Ok(view) => page(
            StatusCode::OK,
            crate::tracking_page::survey(&view, english, None),
        ),
        Err(kefu_store::StoreError::NotFound { .. }) => page(
            StatusCode::NOT_FOUND,
            crate::tracking_page::not_found(english),
        ),
        Err(kefu_store::StoreError::Invalid(_)) => match state.store.survey(&token).await {
            Ok(view) => page(
                StatusCode::UNPROCESSABLE_ENTITY,
                crate::tracking_page::survey(
                    &view,
                    english,
                    Some(if english {
                        "Please choose a score from 1 to 5."
                    } else {
                        "请选择 1 到 5 分。"
                    }),
                ),
            ),
            Err(error) => ApiError::from(error).into_response(),
        },
        Err(kefu_store::StoreError::Conflict { .. }) => match state.store.survey(&token).await {
            Ok(view) => page(
                StatusCode::CONFLICT,
                crate::tracking_page::survey(&view, english, None),
            ),
            Err(error) => ApiError::from(error).into_response(),
        },
        Err(error) => ApiError::from(error).into_response(),
    }
}
