//! Automation rules (自动化规则): "when an event and conditions hold, run actions",
//! edited by admins, and the firings that explain what a rule did to a case.

use crate::error::{ApiResult, ErrorBody};
use crate::state::AppState;
use axum::Json;
use axum::extract::State;

/// Automation rules (自动化规则), in the order they run.
#[utoipa::path(get, path = "/api/v1/automations", tag = "automations", responses((status = 200, body = Vec<kefu_store::automations::AutomationRule>)))]
pub async fn automations(
    State(state): State<AppState>,
) -> ApiResult<Json<Vec<kefu_store::automations::AutomationRule>>> {
    Ok(Json(state.store.automation_rules().await?))
}

/// Creates a rule: `{"name", "trigger", "conditions": [{"field", "operator", "value": [..]}],
/// "actions": [{"action": "set_priority", "priority": "urgent"}, …]}`. Unknown fields,
/// values outside a field's vocabulary and actions that cannot apply are refused.
#[utoipa::path(post, path = "/api/v1/automations", tag = "automations", request_body = kefu_domain::automation::RuleSpec,
    responses((status = 201, body = kefu_store::automations::AutomationRule), (status = 422, body = ErrorBody)))]
pub async fn create_automation(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<kefu_store::users::Principal>,
    body: crate::extract::JsonBody<kefu_domain::automation::RuleSpec>,
) -> ApiResult<axum::response::Response> {
    let rule = state
        .store
        .create_automation_rule(&principal.actor(), body.value)
        .await?;
    Ok(crate::extract::with_etag(
        axum::http::StatusCode::CREATED,
        rule.version,
        &rule,
    ))
}

/// Replaces a rule (`If-Match` for the version).
#[utoipa::path(put, path = "/api/v1/automations/{id}", tag = "automations", request_body = kefu_domain::automation::RuleSpec, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = kefu_store::automations::AutomationRule), (status = 412, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update_automation(
    State(state): State<AppState>,
    axum::Extension(principal): axum::Extension<kefu_store::users::Principal>,
    axum::extract::Path(id): axum::extract::Path<String>,
    headers: axum::http::HeaderMap,
    body: crate::extract::JsonBody<kefu_domain::automation::RuleSpec>,
) -> ApiResult<axum::response::Response> {
    let expected = crate::extract::if_match(&headers)?;
    let rule = state
        .store
        .update_automation_rule(&principal.actor(), &id, body.value, expected)
        .await?;
    Ok(crate::extract::with_etag(
        axum::http::StatusCode::OK,
        rule.version,
        &rule,
    ))
}

/// The rules that fired on a case, with why and what they did.
#[utoipa::path(get, path = "/api/v1/cases/{id}/automations", tag = "automations", params(("id" = String, Path)), responses((status = 200, body = Vec<kefu_store::automations::Firing>), (status = 404, body = ErrorBody)))]
pub async fn case_firings(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> ApiResult<Json<Vec<kefu_store::automations::Firing>>> {
    Ok(Json(state.store.case_firings(&id).await?))
}
