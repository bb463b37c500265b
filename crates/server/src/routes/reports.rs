//! Reports (报表) as JSON for charts. Each covers cases created in a period: `since` and
//! `until` as RFC 3339 times; the last 90 days by default.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::Params;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use kefu_domain::Timestamp;
use kefu_store::reports::*;
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PeriodQuery {
    /// Cases created at or after this time; 90 days before `until` by default.
    pub since: Option<String>,
    /// Cases created before this time; now by default.
    pub until: Option<String>,
}

fn period(state: &AppState, query: &PeriodQuery) -> ApiResult<Period> {
    let until = match &query.until {
        Some(text) => Timestamp::parse("until", text)?.0,
        None => state.store.now_ms() + 1,
    };
    let since = match &query.since {
        Some(text) => Timestamp::parse("since", text)?.0,
        None => until - 90 * 86_400_000,
    };
    if since >= until {
        return Err(
            ApiError::new(ErrorCode::InvalidQuery, "`since` must be before `until`").field("since"),
        );
    }
    Ok(Period { since, until })
}

/// Complaints by severity, behaviour, purpose, cause, side at fault and kind of
/// dissatisfaction; escalation levels and rates; the top causes per product.
#[utoipa::path(get, path = "/api/v1/reports/complaints", tag = "reports", params(PeriodQuery), responses((status = 200, body = ComplaintReport), (status = 400, body = ErrorBody)))]
pub async fn complaints(
    State(state): State<AppState>,
    Params(query): Params<PeriodQuery>,
) -> ApiResult<Json<ComplaintReport>> {
    let period = period(&state, &query)?;
    Ok(Json(state.store.complaint_report(period).await?))
}

/// Time to first response and to resolution (histograms) and SLA attainment.
#[utoipa::path(get, path = "/api/v1/reports/response-times", tag = "reports", params(PeriodQuery), responses((status = 200, body = ResponseReport), (status = 400, body = ErrorBody)))]
pub async fn response_times(
    State(state): State<AppState>,
    Params(query): Params<PeriodQuery>,
) -> ApiResult<Json<ResponseReport>> {
    let period = period(&state, &query)?;
    Ok(Json(state.store.response_report(period).await?))
}

/// The complaint pyramid and repurchase after complaints, beside the textbook's figures.
#[utoipa::path(get, path = "/api/v1/reports/complaint-pyramid", tag = "reports", params(PeriodQuery), responses((status = 200, body = PyramidReport), (status = 400, body = ErrorBody)))]
pub async fn pyramid(
    State(state): State<AppState>,
    Params(query): Params<PeriodQuery>,
) -> ApiResult<Json<PyramidReport>> {
    let period = period(&state, &query)?;
    Ok(Json(state.store.pyramid_report(period).await?))
}

/// First-contact resolution overall and per first-contact owner (首问负责人).
#[utoipa::path(get, path = "/api/v1/reports/first-contact-resolution", tag = "reports", params(PeriodQuery), responses((status = 200, body = FcrReport), (status = 400, body = ErrorBody)))]
pub async fn first_contact_resolution(
    State(state): State<AppState>,
    Params(query): Params<PeriodQuery>,
) -> ApiResult<Json<FcrReport>> {
    let period = period(&state, &query)?;
    Ok(Json(state.store.fcr_report(period).await?))
}

/// The service-type matrix (冰冷型 / 工厂型 / 友好型 / 高质型) per team and per agent.
#[utoipa::path(get, path = "/api/v1/reports/service-matrix", tag = "reports", params(PeriodQuery), responses((status = 200, body = MatrixReport), (status = 400, body = ErrorBody)))]
pub async fn service_matrix(
    State(state): State<AppState>,
    Params(query): Params<PeriodQuery>,
) -> ApiResult<Json<MatrixReport>> {
    let period = period(&state, &query)?;
    Ok(Json(state.store.service_matrix(period).await?))
}
