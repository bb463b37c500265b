//! Teams, users and API tokens.

use crate::error::{ApiError, ApiResult, ErrorBody, ErrorCode};
use crate::extract::{JsonBody, Params, idempotent, if_match, with_etag};
use crate::routes::cases::PageQuery;
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kefu_domain::Labelled;
use kefu_domain::access::{Permission, Role};
use kefu_store::page::{Page, PageRequest};
use kefu_store::users::*;
use serde::Deserialize;

/// All teams, by name.
#[utoipa::path(get, path = "/api/v1/teams", tag = "teams", responses((status = 200, body = Vec<Team>)))]
pub async fn teams(State(state): State<AppState>) -> ApiResult<Json<Vec<Team>>> {
    Ok(Json(state.store.teams().await?))
}

/// Creates a team.
#[utoipa::path(post, path = "/api/v1/teams", tag = "teams", request_body = NewTeam, responses((status = 201, body = Team), (status = 409, body = ErrorBody)))]
pub async fn create_team(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: JsonBody<NewTeam>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        "teams",
        &body.hash,
        async move { Ok(store.create_team(&actor, body.value).await?) },
    )
    .await
}

/// One team.
#[utoipa::path(get, path = "/api/v1/teams/{id}", tag = "teams", params(("id" = String, Path)), responses((status = 200, body = Team), (status = 404, body = ErrorBody)))]
pub async fn team(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let team = state.store.team(&id).await?;
    Ok(with_etag(StatusCode::OK, team.version, &team))
}

/// Renames or describes a team.
#[utoipa::path(patch, path = "/api/v1/teams/{id}", tag = "teams", request_body = TeamPatch, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = Team), (status = 412, body = ErrorBody)))]
pub async fn update_team(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<TeamPatch>,
) -> ApiResult<Response> {
    let team = state
        .store
        .update_team(&principal.actor(), &id, body.value, if_match(&headers)?)
        .await?;
    Ok(with_etag(StatusCode::OK, team.version, &team))
}

/// Users, oldest first.
#[utoipa::path(get, path = "/api/v1/users", tag = "users", params(PageQuery), responses((status = 200, body = Page<User>)))]
pub async fn users(
    State(state): State<AppState>,
    Params(query): Params<PageQuery>,
) -> ApiResult<Json<Page<User>>> {
    Ok(Json(
        state
            .store
            .users(&PageRequest {
                limit: query.limit,
                cursor: query.cursor,
            })
            .await?,
    ))
}

/// Creates a user.
#[utoipa::path(post, path = "/api/v1/users", tag = "users", request_body = NewUser, responses((status = 201, body = User), (status = 409, body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    headers: HeaderMap,
    body: JsonBody<NewUser>,
) -> ApiResult<Response> {
    let store = state.store.clone();
    let actor = principal.actor();
    idempotent(
        &state,
        &principal,
        &headers,
        "users",
        &body.hash,
        async move { Ok(store.create_user(&actor, body.value).await?) },
    )
    .await
}

/// One user.
#[utoipa::path(get, path = "/api/v1/users/{id}", tag = "users", params(("id" = String, Path)), responses((status = 200, body = User), (status = 404, body = ErrorBody)))]
pub async fn user(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let user = state.store.user(&id).await?;
    Ok(with_etag(StatusCode::OK, user.version, &user))
}

/// Changes a user's name, role, team, password or active flag.
#[utoipa::path(patch, path = "/api/v1/users/{id}", tag = "users", request_body = UserPatch, params(("id" = String, Path), ("If-Match" = Option<String>, Header)),
    responses((status = 200, body = User), (status = 412, body = ErrorBody)))]
pub async fn update_user(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: JsonBody<UserPatch>,
) -> ApiResult<Response> {
    if id == principal.user.id
        && (body.value.role.is_some_and(|r| r != Role::Admin) || body.value.active == Some(false))
    {
        return Err(ApiError::new(
            ErrorCode::Conflict,
            "you cannot demote or deactivate yourself; ask another admin",
        )
        .field("role"));
    }
    let user = state
        .store
        .update_user(&principal.actor(), &id, body.value, if_match(&headers)?)
        .await?;
    Ok(with_etag(StatusCode::OK, user.version, &user))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TokenQuery {
    /// Another user's tokens (admins only); one's own by default.
    pub user_id: Option<String>,
}

fn token_owner(principal: &Principal, requested: Option<String>) -> ApiResult<String> {
    match requested {
        Some(id) if id != principal.user.id => {
            if principal.can(Permission::UsersManage) {
                Ok(id)
            } else {
                Err(ApiError::forbidden(
                    "only admins manage other users' tokens",
                ))
            }
        }
        _ => Ok(principal.user.id.clone()),
    }
}

/// API tokens of the caller (or, for admins, of `user_id`).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "tokens", params(TokenQuery), responses((status = 200, body = Vec<ApiToken>)))]
pub async fn tokens(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Params(query): Params<TokenQuery>,
) -> ApiResult<Json<Vec<ApiToken>>> {
    let owner = token_owner(&principal, query.user_id)?;
    Ok(Json(state.store.tokens(&owner).await?))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenRequest {
    pub name: String,
    /// Space-separated scopes (`cases:read customers:write`) or `*`; the role's
    /// permissions unless said. A token never exceeds its user's role.
    pub scopes: Option<String>,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub expires_at: Option<kefu_domain::Timestamp>,
    /// Create for another user (admins only).
    pub user_id: Option<String>,
}

/// Creates an API token; the secret is in the answer and nowhere else.
#[utoipa::path(post, path = "/api/v1/tokens", tag = "tokens", request_body = TokenRequest, responses((status = 201, body = CreatedToken), (status = 422, body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    body: JsonBody<TokenRequest>,
) -> ApiResult<Response> {
    let request = body.value;
    let owner = token_owner(&principal, request.user_id)?;
    // A token may only create tokens within its own scopes; otherwise a narrow token
    // could mint a wide one.
    let scopes = match (&principal.scopes, request.scopes) {
        (Some(own), None) => Some(own.iter().map(|p| p.as_str()).collect::<Vec<_>>().join(" ")),
        (Some(own), Some(text)) => {
            let requested = kefu_domain::access::parse_scopes(&text).map_err(ApiError::from)?;
            // Scopes beyond the owner's role are refused by the store with their own message.
            if let Some(beyond) = requested
                .iter()
                .find(|p| principal.user.role.grants(**p) && !own.contains(p))
            {
                return Err(ApiError::forbidden(format!(
                    "this token lacks `{beyond}`, so it cannot create a token that has it"
                ))
                .field("scopes"));
            }
            Some(text)
        }
        (None, requested) => requested,
    };
    let token = NewToken {
        name: request.name,
        scopes,
        expires_at: request.expires_at,
    };
    let created = state
        .store
        .create_token(&principal.actor(), &owner, token)
        .await?;
    Ok((StatusCode::CREATED, Json(created)).into_response())
}

/// Revokes a token.
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "tokens", params(("id" = String, Path)), responses((status = 200, body = ApiToken), (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(principal): Extension<Principal>,
    Path(id): Path<String>,
) -> ApiResult<Json<ApiToken>> {
    let owner = if principal.can(Permission::UsersManage) {
        None
    } else {
        Some(principal.user.id.as_str())
    };
    Ok(Json(
        state
            .store
            .revoke_token(&principal.actor(), &id, owner)
            .await?,
    ))
}
