//! `/api/v1/timeline` and `/api/v1/audit`: the customer timeline and the audit log.

use crate::error::{ApiResult, ErrorBody};
use crate::extract::Params;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use kefu_domain::Timestamp;
use kefu_domain::timeline::*;
use kefu_store::audit::{AuditEntry, AuditFilter};
use kefu_store::page::{Page, PageRequest};
use kefu_store::timeline::{TimelineEntry, TimelineFilter};
use serde::Deserialize;

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TimelineQuery {
    pub customer_id: Option<String>,
    pub case_id: Option<String>,
    pub kind: Option<TimelineKind>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub interaction_type: Option<InteractionType>,
    pub content_type: Option<ContentType>,
    /// Entries at or after this time (RFC 3339).
    #[param(value_type = Option<String>)]
    pub since: Option<Timestamp>,
    /// Entries before this time (RFC 3339).
    #[param(value_type = Option<String>)]
    pub until: Option<Timestamp>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

impl TimelineQuery {
    fn split(self) -> (TimelineFilter, PageRequest) {
        (
            TimelineFilter {
                customer_id: self.customer_id,
                case_id: self.case_id,
                kind: self.kind,
                channel: self.channel,
                direction: self.direction,
                interaction_type: self.interaction_type,
                content_type: self.content_type,
                since: self.since,
                until: self.until,
            },
            PageRequest {
                limit: self.limit,
                cursor: self.cursor,
            },
        )
    }
}

/// Touchpoints across customers, newest first.
#[utoipa::path(get, path = "/api/v1/timeline", tag = "timeline", params(TimelineQuery),
    responses((status = 200, body = Page<TimelineEntry>), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    Params(query): Params<TimelineQuery>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    let (filter, page) = query.split();
    Ok(Json(state.store.timeline(&filter, &page).await?))
}

/// One customer's timeline, newest first: every message, case event, call, visit,
/// letter, survey answer and order event.
#[utoipa::path(get, path = "/api/v1/customers/{id}/timeline", tag = "timeline", params(("id" = String, Path), TimelineQuery),
    responses((status = 200, body = Page<TimelineEntry>), (status = 404, body = ErrorBody)))]
pub async fn customer_timeline(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Params(query): Params<TimelineQuery>,
) -> ApiResult<Json<Page<TimelineEntry>>> {
    let (mut filter, page) = query.split();
    filter.customer_id = Some(id);
    Ok(Json(state.store.timeline(&filter, &page).await?))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// `customer`, `case`, `message`, `user`, `team`, `api_token` …
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// The public id of the user who acted.
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub limit: Option<u32>,
    pub cursor: Option<String>,
}

/// The audit log, newest first.
#[utoipa::path(get, path = "/api/v1/audit", tag = "audit", params(AuditQuery), responses((status = 200, body = Page<AuditEntry>)))]
pub async fn audit(
    State(state): State<AppState>,
    Params(query): Params<AuditQuery>,
) -> ApiResult<Json<Page<AuditEntry>>> {
    let filter = AuditFilter {
        object_type: query.object_type,
        object_id: query.object_id,
        actor_id: query.actor_id,
        action: query.action,
    };
    Ok(Json(
        state
            .store
            .audit_list(
                &filter,
                &PageRequest {
                    limit: query.limit,
                    cursor: query.cursor,
                },
            )
            .await?,
    ))
}
