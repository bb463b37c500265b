//! Authentication (session cookie or API token) and the permission check every route
//! goes through. Routes declare their [`Access`] in the route table; the check happens
//! here, before the handler runs, so no handler can forget it.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::extract::JsonBody;
use crate::state::AppState;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use kefu_domain::Labelled;
use kefu_domain::access::Permission;
use kefu_store::users::{Principal, SESSION_TTL_MS, User};
use serde::{Deserialize, Serialize};

pub const SESSION_COOKIE: &str = "kefu_session";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone (health, docs, login).
    Public,
    /// Any logged-in user or token.
    Authenticated,
    /// Callers whose role (and token scopes) grant the permission.
    Permission(Permission),
}

fn bearer(headers: &HeaderMap) -> ApiResult<Option<&str>> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value.to_str().map_err(|_| {
        ApiError::new(
            ErrorCode::Unauthenticated,
            "the Authorization header is not ASCII",
        )
    })?;
    match text.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "use `Authorization: Bearer <token>`",
        )),
    }
}

pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == SESSION_COOKIE && !value.is_empty()).then(|| value.to_string())
        })
}

fn is_unsafe(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Resolves the caller. Cookie sessions changing anything must also prove they come
/// from kefu's own pages: the CSRF token from login in `X-CSRF-Token`, and no foreign
/// `Origin`.
async fn authenticate(
    state: &AppState,
    method: &Method,
    headers: &HeaderMap,
) -> ApiResult<Option<Principal>> {
    if let Some(token) = bearer(headers)? {
        return match state.store.principal_for_token(token).await? {
            Some(principal) if principal.user.active => Ok(Some(principal)),
            _ => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "the API token is unknown, revoked or expired",
            )),
        };
    }
    let Some(cookie) = session_cookie(headers) else {
        return Ok(None);
    };
    let Some(principal) = state.store.principal_for_session(&cookie).await? else {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the session has ended; log in again",
        ));
    };
    if !principal.user.active {
        return Err(ApiError::new(
            ErrorCode::Unauthenticated,
            "the account is deactivated",
        ));
    }
    if is_unsafe(method) {
        let sent = headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
        if sent.is_none() || sent != principal.csrf_token.as_deref() {
            return Err(ApiError::new(
                ErrorCode::CsrfFailed,
                "send the X-CSRF-Token header you received at login",
            ));
        }
        if let (Some(origin), Some(host)) = (
            headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()),
            headers.get(header::HOST).and_then(|v| v.to_str().ok()),
        ) {
            let origin_host = origin
                .split_once("://")
                .map(|(_, rest)| rest)
                .unwrap_or(origin);
            if origin_host != host {
                return Err(ApiError::new(
                    ErrorCode::CsrfFailed,
                    format!("requests from {origin} may not use this session"),
                ));
            }
        }
    }
    Ok(Some(principal))
}

/// The middleware behind every route.
pub async fn guard(state: AppState, access: Access, mut request: Request, next: Next) -> Response {
    let principal = match authenticate(&state, request.method(), request.headers()).await {
        Ok(principal) => principal,
        Err(error) if access == Access::Public => {
            // A public route still works with a stale cookie.
            let _ = error;
            None
        }
        Err(error) => return error.into_response(),
    };
    match (access, &principal) {
        (Access::Public, _) => {}
        (_, None) => {
            return ApiError::new(ErrorCode::Unauthenticated, "log in or send an API token")
                .into_response();
        }
        (Access::Authenticated, Some(_)) => {}
        (Access::Permission(permission), Some(p)) => {
            if !p.can(permission) {
                let why = if p.user.role.grants(permission) {
                    "the API token's scopes do not include it"
                } else {
                    "the role does not grant it"
                };
                return ApiError::new(
                    ErrorCode::Forbidden,
                    format!("this needs the `{permission}` permission; {why}"),
                )
                .into_response();
            }
        }
    }
    if let Some(principal) = principal {
        request.extensions_mut().insert(principal);
    }
    next.run(request).await
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
}

/// The logged-in user, what they may do, and the CSRF token for changes.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: User,
    pub permissions: Vec<Permission>,
    /// Send as `X-CSRF-Token` with every change made with the session cookie.
    pub csrf_token: Option<String>,
}

fn me(principal: &Principal) -> Me {
    let permissions = Permission::ALL
        .iter()
        .copied()
        .filter(|p| principal.can(*p))
        .collect();
    Me {
        user: principal.user.clone(),
        permissions,
        csrf_token: principal.csrf_token.clone(),
    }
}

/// Logs in with email and password; sets the session cookie.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = Me), (status = 401, body = crate::error::ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    body: JsonBody<LoginRequest>,
) -> ApiResult<Response> {
    let (token, principal) = state
        .store
        .login(&body.value.email, &body.value.password)
        .await?;
    let secure = if state.config.secure_cookies {
        "; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{SESSION_COOKIE}={token}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        SESSION_TTL_MS / 1000
    );
    let mut response = Json(me(&principal)).into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(ApiError::internal)?,
    );
    Ok(response)
}

/// Ends the session.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth", responses((status = 204)))]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> ApiResult<Response> {
    if let Some(cookie) = session_cookie(&headers) {
        state.store.logout(&cookie).await?;
    }
    let mut response = axum::http::StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(
        header::SET_COOKIE,
        HeaderValue::from_static("kefu_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"),
    );
    Ok(response)
}

/// The caller and their permissions.
#[utoipa::path(get, path = "/api/v1/me", tag = "auth", responses((status = 200, body = Me)))]
pub async fn whoami(Extension(principal): Extension<Principal>) -> Json<Me> {
    Json(me(&principal))
}
