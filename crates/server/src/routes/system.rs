//! Health, the OpenAPI document and the browsable API docs (Swagger UI, vendored).

use crate::error::ApiResult;
use crate::state::AppState;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
    /// `sqlite` or `postgres`.
    pub database: String,
    pub version: String,
}

/// Whether kefu and its database answer.
#[utoipa::path(get, path = "/api/v1/health", tag = "system", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> Response {
    let database = match state.store.dialect() {
        kefu_store::Dialect::Sqlite => "sqlite",
        kefu_store::Dialect::Postgres => "postgres",
    };
    let (status, text) = match state.store.has_users().await {
        Ok(_) => (StatusCode::OK, "ok"),
        Err(error) => {
            tracing::error!(%error, "health check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "database_unavailable")
        }
    };
    (
        status,
        Json(Health {
            status: text.into(),
            database: database.into(),
            version: env!("CARGO_PKG_VERSION").into(),
        }),
    )
        .into_response()
}

/// The OpenAPI 3.1 document of this API.
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "system", responses((status = 200, content_type = "application/json")))]
pub async fn openapi() -> ApiResult<Response> {
    let mut response = crate::openapi_json().into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}

const DOCS_PAGE: &str = r#"<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>kefu API 文档 / API docs</title>
<link rel="stylesheet" href="/api/docs/swagger-ui.css">
</head>
<body>
<div id="docs"></div>
<script src="/api/docs/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"#;

const DOCS_INIT: &str = "window.ui = SwaggerUIBundle({ url: '/api/v1/openapi.json', dom_id: '#docs', deepLinking: true });\n";

/// The browsable API documentation.
pub async fn docs() -> Response {
    (
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        DOCS_PAGE,
    )
        .into_response()
}

/// The documentation's assets, vendored from the `swagger-ui-dist` npm package.
pub async fn docs_asset(Path(file): Path<String>) -> Response {
    let (content_type, body): (&str, &'static [u8]) = match file.as_str() {
        "swagger-ui.css" => (
            "text/css; charset=utf-8",
            include_bytes!("../../../../web/static/vendor/swagger-ui/swagger-ui.css"),
        ),
        "swagger-ui-bundle.js" => (
            "text/javascript; charset=utf-8",
            include_bytes!("../../../../web/static/vendor/swagger-ui/swagger-ui-bundle.js"),
        ),
        "init.js" => ("text/javascript; charset=utf-8", DOCS_INIT.as_bytes()),
        _ => return crate::error::ApiError::not_found("document").into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=86400"),
        ],
        body,
    )
        .into_response()
}
