//! `/api/v1/customers`: the customer archive.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::{JsonBody, Params, idempotent, if_match, with_etag};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kefu_domain::customers::*;
use kefu_store::customers::*;
use kefu_store::page::{Page, PageRequest};
use kefu_store::timeline::{NewTouchpoint, TimelineEntry};
use kefu_store::users::Principal;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CustomerQuery {
    /// Text in the name or any contact (Chinese or Latin, width- and case-insensitive).
    pub q: Option<String>,
    pub lifecycle: Option<LifecycleState>,
    pub value_class: Option<ValueClass>,
    pub position: Option<Position>,
    pub kind: Option<CustomerKind>,
    pub lead_source: Option<LeadSource>,
    pub supply_chain_role: Option<SupplyChainRole>,
    /// `name` (pinyin order), `created`, `updated`, `lifecycle_changed`; prefix `-` for
    /// descending. Default `-created`.
    pub sort: Option<String>,
    /// 1–200, default 50.
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// Lists customers.
#[utoipa::path(get, path = "/api/v1/customers", tag = "customers", params(CustomerQuery),
    responses((status = 200, body = Page<Customer>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Params(query): Params<CustomerQuery>,
) -> ApiResult<Json<Page<Customer>>> {
    let filter = CustomerFilter {
        q: query.q,
        lifecycle: query.lifecycle,
        value_class: query.value_class,
        position: query.position,
        kind: query.kind,
        lead_source: query.lead_source,
        supply_chain_role: query.supply_chain_role,
        sort: query.sort,
    };
    Ok(Json(
        state
            .store
            .customers(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}

/// Creates a customer; only `name` is required. Honours `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/customers", tag = "customers", request_body = NewCustomer,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retry-safe creation")),
    responses((status = 201, body = Customer), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: JsonBody<NewCustomer>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        "customers",
        &body.hash,
        async move { Ok(store.create_customer(&actor, body.value).await?) },
    )
    .await
}

/// One customer with its card, referral chain, lifecycle history and communication
/// strategy. The ETag is the version for `If-Match`.
#[utoipa::path(get, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = CustomerDetail), (status = 404, body = ErrorBody)))]
pub async fn get(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let detail = state.store.customer_detail(&id).await?;
    Ok(with_etag(StatusCode::OK, detail.customer.version, &detail))
}

/// Changes some fields. Send `If-Match` with the ETag to refuse stale edits.
#[utoipa::path(patch, path = "/api/v1/customers/{id}", tag = "customers", request_body = CustomerPatch,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Customer), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<CustomerPatch>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let customer = state
        .store
        .update_customer(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(with_etag(StatusCode::OK, customer.version, &customer))
}

/// Deletes a customer who has no cases.
#[utoipa::path(delete, path = "/api/v1/customers/{id}", tag = "customers", params(("id" = String, Path)),
    responses((status = 204), (status = 409, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state.store.delete_customer(&principal.actor(), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds a contact (email, phone, IM handle); addresses are unique per channel.
#[utoipa::path(post, path = "/api/v1/customers/{id}/contacts", tag = "customers", request_body = NewContact, params(("id" = String, Path)),
    responses((status = 201, body = Customer), (status = 409, body = ErrorBody)))]
pub async fn add_contact(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<NewContact>,
) -> ApiResult<Response> {
    let customer = state
        .store
        .add_contact(&principal.actor(), &id, body.value)
        .await?;
    Ok(with_etag(StatusCode::CREATED, customer.version, &customer))
}

/// Removes a contact.
#[utoipa::path(delete, path = "/api/v1/customers/{id}/contacts/{contact_id}", tag = "customers",
    params(("id" = String, Path), ("contact_id" = String, Path)), responses((status = 200, body = Customer)))]
pub async fn remove_contact(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path((id, contact_id)): Path<(String, String)>,
) -> ApiResult<Response> {
    let customer = state
        .store
        .remove_contact(&principal.actor(), &id, &contact_id)
        .await?;
    Ok(with_etag(StatusCode::OK, customer.version, &customer))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LifecycleChange {
    pub to: LifecycleState,
    /// Why; required when the customer is lost.
    #[serde(default)]
    pub reason: String,
}

/// Moves the customer along the lifecycle (potential → target → current → lost).
#[utoipa::path(post, path = "/api/v1/customers/{id}/lifecycle", tag = "customers", request_body = LifecycleChange,
    params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Customer), (status = 409, body = ErrorBody, description = "invalid_transition, with the allowed states")))]
pub async fn transition(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<LifecycleChange>,
) -> ApiResult<Response> {
    let expected = if_match(&headers)?;
    let customer = state
        .store
        .transition_customer(
            &principal.actor(),
            &id,
            body.value.to,
            &body.value.reason,
            expected,
        )
        .await?;
    Ok(with_etag(StatusCode::OK, customer.version, &customer))
}

/// The lifecycle history, newest first.
#[utoipa::path(get, path = "/api/v1/customers/{id}/lifecycle", tag = "customers", params(("id" = String, Path)),
    responses((status = 200, body = Vec<LifecycleTransition>)))]
pub async fn lifecycle_history(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<Vec<LifecycleTransition>>> {
    Ok(Json(state.store.lifecycle_history(&id).await?))
}

/// Records a purchase on the current card.
#[utoipa::path(post, path = "/api/v1/customers/{id}/transactions", tag = "customers", request_body = NewTransaction, params(("id" = String, Path)),
    responses((status = 201, body = CustomerTransaction)))]
pub async fn add_transaction(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<NewTransaction>,
) -> ApiResult<Response> {
    let transaction = state
        .store
        .add_transaction(&principal.actor(), &id, body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(transaction)).into_response())
}

/// Records an attempt to win back a lost customer.
#[utoipa::path(post, path = "/api/v1/customers/{id}/win-back-attempts", tag = "customers", request_body = NewWinBackAttempt, params(("id" = String, Path)),
    responses((status = 201, body = WinBackAttempt), (status = 409, body = ErrorBody)))]
pub async fn add_win_back_attempt(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<NewWinBackAttempt>,
) -> ApiResult<Response> {
    let attempt = state
        .store
        .add_win_back_attempt(&principal.actor(), &id, body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(attempt)).into_response())
}

/// Records a touchpoint by hand: a visit, a call, a letter, a note.
#[utoipa::path(post, path = "/api/v1/customers/{id}/timeline", tag = "timeline", request_body = NewTouchpoint, params(("id" = String, Path)),
    responses((status = 201, body = TimelineEntry), (status = 422, body = ErrorBody)))]
pub async fn record_touchpoint(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    body: JsonBody<NewTouchpoint>,
) -> ApiResult<Response> {
    let entry = state
        .store
        .record_touchpoint(&principal.actor(), &id, body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(entry)).into_response())
}

/// The custom fields defined for customers.
#[utoipa::path(get, path = "/api/v1/custom-fields", tag = "customers", responses((status = 200, body = Vec<CustomFieldDefinition>)))]
pub async fn custom_fields(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<CustomFieldDefinition>>> {
    Ok(Json(state.store.custom_fields().await?))
}

/// Defines a custom field.
#[utoipa::path(post, path = "/api/v1/custom-fields", tag = "customers", request_body = CustomFieldDefinition,
    responses((status = 201, body = CustomFieldDefinition), (status = 409, body = ErrorBody)))]
pub async fn define_custom_field(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<CustomFieldDefinition>,
) -> ApiResult<Response> {
    let definition = state
        .store
        .define_custom_field(&principal.actor(), body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(definition)).into_response())
}
