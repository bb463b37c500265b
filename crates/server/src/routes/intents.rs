//! Intents (意图) over HTTP: the built-in ones and those admins add, and the examples
//! that teach the bot. Every server retrains its model on the next message after a
//! change (a few hundred examples train in well under a second).

use crate::error::{ApiResult, ErrorBody};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use kefu_store::intents::{BotIntent, IntentExample, NewBotIntent, NewIntentExamples};
use kefu_store::users::Principal;

/// Every intent, built-in first, with its example counts.
#[utoipa::path(get, path = "/api/v1/bot/intents", tag = "kb", responses((status = 200, body = Vec<BotIntent>)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Vec<BotIntent>>> {
    Ok(Json(state.store.bot_intents().await?))
}

/// Adds an intent: `{"name", "label_zh", "label_en", "examples": […]}`.
#[utoipa::path(post, path = "/api/v1/bot/intents", tag = "kb", request_body = NewBotIntent,
    responses((status = 201, body = BotIntent), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<NewBotIntent>,
) -> ApiResult<(StatusCode, Json<BotIntent>)> {
    let intent = state
        .store
        .create_bot_intent(&principal.actor(), body.value)
        .await?;
    Ok((StatusCode::CREATED, Json(intent)))
}

/// The examples admins added to an intent (the built-in seeds are not listed).
#[utoipa::path(get, path = "/api/v1/bot/intents/{name}/examples", tag = "kb", params(("name" = String, Path)),
    responses((status = 200, body = Vec<IntentExample>), (status = 404, body = ErrorBody)))]
pub async fn examples(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<Vec<IntentExample>>> {
    Ok(Json(state.store.intent_examples(&name).await?))
}

/// Teaches an intent more examples: `{"examples": […]}` (at most 1,000 at a time; ones it
/// has are skipped). Returns the examples added.
#[utoipa::path(post, path = "/api/v1/bot/intents/{name}/examples", tag = "kb", request_body = NewIntentExamples, params(("name" = String, Path)),
    responses((status = 201, body = Vec<IntentExample>), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn add_examples(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(name): Path<String>,
    body: JsonBody<NewIntentExamples>,
) -> ApiResult<(StatusCode, Json<Vec<IntentExample>>)> {
    let added = state
        .store
        .add_intent_examples(&principal.actor(), &name, &body.value.examples)
        .await?;
    Ok((StatusCode::CREATED, Json(added)))
}

/// Removes an example an admin added.
#[utoipa::path(delete, path = "/api/v1/bot/intents/examples/{id}", tag = "kb", params(("id" = String, Path)),
    responses((status = 204), (status = 404, body = ErrorBody)))]
pub async fn delete_example(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    state
        .store
        .delete_intent_example(&principal.actor(), &id)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
