//! `/api/v1/cases`: cases with their messages, status transitions, transfers, merges
//! and attachments.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{JsonBody, Params, idempotent, if_match, with_etag};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kefu_domain::cases::*;
use kefu_store::cases::*;
use kefu_store::page::{Page, PageRequest};
use kefu_store::users::Principal;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseQuery {
    pub status: Option<CaseStatus>,
    /// `true`: only cases that still need work; `false`: only finished ones.
    pub open: Option<bool>,
    pub kind: Option<CaseKind>,
    pub priority: Option<Priority>,
    pub team_id: Option<String>,
    /// A user's id, or `me`.
    pub assignee_id: Option<String>,
    pub customer_id: Option<String>,
    /// Text in the subject.
    pub q: Option<String>,
    /// `created`, `updated`, `number`; prefix `-` for descending. Default `-created`.
    pub sort: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists cases.
#[utoipa::path(get, path = "/api/v1/cases", tag = "cases", params(CaseQuery), responses((status = 200, body = Page<Case>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<CaseQuery>,
) -> ApiResult<Json<Page<Case>>> {
    let assignee_id = match query.assignee_id.as_deref() {
        Some("me") => Some(principal.user.id.clone()),
        other => other.map(str::to_string),
    };
    let filter = CaseFilter {
        status: query.status,
        open: query.open,
        kind: query.kind,
        priority: query.priority,
        team_id: query.team_id,
        assignee_id,
        customer_id: query.customer_id,
        q: query.q,
        sort: query.sort,
    };
    Ok(Json(
        state
            .store
            .cases(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Opens a case with its first message. Only `customer_id`, `kind`, `subject` and
/// `body` are required. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/cases", tag = "cases", request_body = NewCase,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    responses((status = 201, body = Case), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: JsonBody<NewCase>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        "cases",
        &body.hash,
        async move { Ok(store.create_case(&actor, body.value).await?) },
    )
    .await
}

/// One case. The ETag is the version for `If-Match`.
#[utoipa::path(get, path = "/api/v1/cases/{id}", tag = "cases", params(("id" = String, Path)), responses((status = 200, body = Case), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let case = state.store.case(&id).await?;
    Ok(with_etag(StatusCode::OK, case.version, &case))
}

/// Changes the subject, classification, priority or assignee.
#[utoipa::path(patch, path = "/api/v1/cases/{id}", tag = "cases", request_body = CasePatch, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Case), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CasePatch>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let case = state
        .store
        .update_case(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, case.version, &case))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The conversation, oldest first, with attachments.
#[utoipa::path(get, path = "/api/v1/cases/{id}/messages", tag = "cases", params(("id" = String, Path), PageQuery), responses((status = 200, body = Page<Message>)))]
pub async fn messages(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<PageQuery>,
) -> ApiResult<Json<Page<Message>>> {
    Ok(Json(
        state
            .store
            .messages(
                &id,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Adds a message from the customer, a reply to them, or an internal note.
#[utoipa::path(post, path = "/api/v1/cases/{id}/messages", tag = "cases", request_body = NewMessage, params(("id" = String, Path)),
    responses((status = 201, body = Message), (status = 409, body = ErrorBody)))]
pub async fn add_message(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<NewMessage>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        &format!("messages {id}"),
        &body.hash,
        async move { Ok(store.add_message(&actor, &id, body.value).await?) },
    )
    .await
}

/// The status history.
#[utoipa::path(get, path = "/api/v1/cases/{id}/transitions", tag = "cases", params(("id" = String, Path)), responses((status = 200, body = Vec<StatusChangeRecord>)))]
pub async fn transitions(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<StatusChangeRecord>>> {
    Ok(Json(state.store.status_changes(&id).await?))
}

/// Changes the status; an illegal change answers 409 with the allowed ones.
#[utoipa::path(post, path = "/api/v1/cases/{id}/transitions", tag = "cases", request_body = StatusChange, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Case), (status = 409, body = ErrorBody), (status = 412, body = ErrorBody)))]
pub async fn transition(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<StatusChange>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let case = state
        .store
        .change_case_status(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, case.version, &case))
}

/// The transfers, oldest first.
#[utoipa::path(get, path = "/api/v1/cases/{id}/transfers", tag = "cases", params(("id" = String, Path)), responses((status = 200, body = Vec<Transfer>)))]
pub async fn transfers(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Transfer>>> {
    Ok(Json(state.store.transfers(&id).await?))
}

/// Transfers the case to another team and/or person, with a reason (转接).
#[utoipa::path(post, path = "/api/v1/cases/{id}/transfers", tag = "cases", request_body = NewTransfer, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Case), (status = 422, body = ErrorBody)))]
pub async fn transfer(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<NewTransfer>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let case = state
        .store
        .transfer_case(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, case.version, &case))
}

/// Merges this case into another of the same customer; answers with the target.
#[utoipa::path(post, path = "/api/v1/cases/{id}/merge", tag = "cases", request_body = MergeRequest, params(("id" = String, Path)),
    responses((status = 200, body = Case), (status = 409, body = ErrorBody)))]
pub async fn merge(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<MergeRequest>,
) -> ApiResult<Response> {
    let target = state
        .store
        .merge_case(&principal.actor(), &id, body.value)
        .await?;
    Ok(with_etag(StatusCode::OK, target.version, &target))
}

/// The attachments of a case.
#[utoipa::path(get, path = "/api/v1/cases/{id}/attachments", tag = "cases", params(("id" = String, Path)), responses((status = 200, body = Vec<Attachment>)))]
pub async fn attachments(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<Attachment>>> {
    Ok(Json(state.store.attachments(&id).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    pub filename: String,
    /// Attach to this message of the case.
    pub message_id: Option<String>,
}

/// Uploads an attachment: the raw bytes as the body, the type as `Content-Type`.
#[utoipa::path(post, path = "/api/v1/cases/{id}/attachments", tag = "cases", params(("id" = String, Path), UploadQuery),
    request_body(content = Vec<u8>, content_type = "application/octet-stream"),
    responses((status = 201, body = Attachment), (status = 413, body = ErrorBody)))]
pub async fn upload(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    Params(query): Params<UploadQuery>,
    request: Request,
) -> ApiResult<Response> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    let bytes = Bytes::from_request(request, &state)
        .await
        .map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!(
                        "attachments are limited to {} MiB",
                        MAX_ATTACHMENT_BYTES / 1024 / 1024
                    ),
                )
            } else {
                ApiError::new(
                    ErrorCode::InvalidBody,
                    format!("the body could not be read: {rejection}"),
                )
            }
        })?;
    let attachment = state
        .store
        .add_attachment(
            &principal.actor(),
            &id,
            query.message_id.as_deref(),
            &query.filename,
            &content_type,
            bytes.to_vec(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(attachment)).into_response())
}

/// Downloads an attachment. It is always sent as a download, never rendered in place.
#[utoipa::path(get, path = "/api/v1/attachments/{id}", tag = "cases", params(("id" = String, Path)), responses((status = 200, content_type = "application/octet-stream")))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let (attachment, data) = state.store.attachment_data(&id).await?;
    let mut response = data.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&attachment.content_type)
            .unwrap_or(HeaderValue::from_static("application/octet-stream")),
    );
    let encoded: String = attachment
        .filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    if let Ok(value) = HeaderValue::from_str(&format!("attachment; filename*=UTF-8''{encoded}")) {
        headers.insert(header::CONTENT_DISPOSITION, value);
    }
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}

/// The case's sentiment trajectory (情绪轨迹): each message from the customer with its
/// score (−1 … +1), label (positive, neutral, negative, angry) and the rules that fired.
#[utoipa::path(get, path = "/api/v1/cases/{id}/sentiment", tag = "cases", params(("id" = String, Path)),
    responses((status = 200, body = Vec<kefu_store::sentiment::SentimentPoint>), (status = 404, body = ErrorBody)))]
pub async fn sentiment(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<kefu_store::sentiment::SentimentPoint>>> {
    Ok(Json(state.store.case_sentiment(&id).await?))
}
