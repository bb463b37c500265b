//! Request extractors that answer bad input in the catalogue's terms: JSON bodies with
//! the path of the field at fault, query strings, `If-Match`, idempotency keys.

use crate::error::{ApiError, ApiResult, ErrorCode};
use crate::state::AppState;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use kefu_store::idempotency::Begin;
use kefu_store::users::Principal;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// A JSON body: `Content-Type: application/json`, within the size limit, parsed with
/// the path of any field that does not fit.
pub struct JsonBody<T> {
    pub value: T,
    /// SHA-256 of the raw body, for idempotency keys.
    pub hash: String,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json"
                    || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with Content-Type: application/json",
            ));
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        ErrorCode::PayloadTooLarge,
                        format!("the body is larger than {} KiB", crate::JSON_LIMIT / 1024),
                    )
                } else {
                    ApiError::new(
                        ErrorCode::MalformedJson,
                        format!("the body could not be read: {rejection}"),
                    )
                }
            })?;
        let value = parse_json(&bytes)?;
        Ok(JsonBody {
            value,
            hash: kefu_store::token_hash_bytes(&bytes),
        })
    }
}

/// Parses JSON, naming the field at fault. The text is read into a tree first, so that
/// broken JSON is always reported as such (not as the first wrong value before the
/// break), and so that NUL characters — which PostgreSQL cannot store — are refused
/// wherever they are.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> ApiResult<T> {
    let tree: serde_json::Value = serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            ErrorCode::MalformedJson,
            format!("the body is not valid JSON: {error}"),
        )
    })?;
    if let Some(path) = find_nul(&tree, String::new()) {
        let field = path.trim_start_matches('.').to_string();
        return Err(ApiError::new(
            ErrorCode::InvalidField,
            format!("{field}: contains a NUL character"),
        )
        .field(field));
    }
    serde_path_to_error::deserialize(tree).map_err(|error| {
        let path = error.path().to_string();
        let message = strip_position(&error.into_inner().to_string());
        let field = field_of(&path, &message);
        let error = ApiError::new(
            ErrorCode::InvalidBody,
            if field.is_empty() {
                message.clone()
            } else {
                format!("{field}: {message}")
            },
        );
        if field.is_empty() {
            error
        } else {
            error.field(field)
        }
    })
}

/// The field an error is about: its path, or for a missing field the path plus its name.
fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((name, _)) if parent.is_empty() => name.to_string(),
        Some((name, _)) => format!("{parent}.{name}"),
        None => parent.to_string(),
    }
}

/// The path of the first string (or key) holding a NUL character.
fn find_nul(value: &serde_json::Value, path: String) -> Option<String> {
    match value {
        serde_json::Value::String(text) => text.contains('\0').then_some(path),
        serde_json::Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| find_nul(item, format!("{path}[{i}]"))),
        serde_json::Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                return Some(path.clone());
            }
            find_nul(item, format!("{path}.{key}"))
        }),
        _ => None,
    }
}

/// Drops serde_json's " at line 1 column 20" suffix: the field name says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(at) => message[..at].to_string(),
        None => message.to_string(),
    }
}

/// Query parameters, with a catalogue error for unknown or malformed ones.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        if let Some((name, _)) = form_urlencoded::parse(query.as_bytes())
            .find(|(name, value)| name.contains('\0') || value.contains('\0'))
        {
            return Err(ApiError::new(
                ErrorCode::InvalidQuery,
                format!("query parameter {name}: contains a NUL character"),
            )
            .field(name.into_owned()));
        }
        let deserializer =
            serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(deserializer)
            .map(Params)
            .map_err(|error| {
                let path = error.path().to_string();
                let message = error.into_inner().to_string();
                let field = match message
                    .strip_prefix("unknown field `")
                    .and_then(|rest| rest.split_once('`'))
                {
                    Some((name, _)) => name.to_string(),
                    None => field_of(&path, &message),
                };
                ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("query parameter {field}: {message}"),
                )
                .field(field)
            })
    }
}

/// The version named by `If-Match` (`"3"` or `W/"3"`), if the header was sent.
pub fn if_match(headers: &HeaderMap) -> ApiResult<Option<i64>> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| ApiError::new(ErrorCode::InvalidIfMatch, "If-Match is not ASCII"))?
        .trim();
    if text == "*" {
        return Ok(None);
    }
    let tag = text.strip_prefix("W/").unwrap_or(text);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse::<i64>().ok())
        .map(Some)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidIfMatch,
                format!("If-Match `{text}` is not an ETag such as \"3\""),
            )
            .field("If-Match")
        })
}

/// A JSON answer with the resource's version as its ETag.
pub fn with_etag<T: Serialize>(status: StatusCode, version: i64, body: &T) -> Response {
    let mut response = (status, axum::Json(body)).into_response();
    set_etag(&mut response, version);
    response
}

/// Sets the ETag of a versioned resource; resources without versions (0) get none.
fn set_etag(response: &mut Response, version: i64) {
    let value = HeaderValue::from_str(&format!("\"{version}\""));
    if let (true, Ok(value)) = (version > 0, value) {
        response.headers_mut().insert(header::ETAG, value);
    }
}

/// Runs a create under the request's `Idempotency-Key`, if it has one: a retry with the
/// same key and body gets the first answer again; with another body, an error.
pub async fn idempotent<T, F>(
    state: &AppState,
    principal: &Principal,
    headers: &HeaderMap,
    scope: &str,
    body_hash: &str,
    create: F,
) -> ApiResult<Response>
where
    T: Serialize + Versioned,
    F: std::future::Future<Output = ApiResult<T>>,
{
    let Some(key) = headers.get("idempotency-key") else {
        let created = create.await?;
        return Ok(with_etag(StatusCode::CREATED, created.version(), &created));
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= 255)
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::InvalidField,
                "Idempotency-Key must be 1–255 ASCII characters",
            )
            .field("Idempotency-Key")
        })?;
    let scoped_key = format!("{scope} {key}");
    let user = principal.user.key;
    match state
        .store
        .idempotency_begin(user, &scoped_key, body_hash)
        .await?
    {
        Begin::Replay { status, body } => {
            let version = serde_json::from_str::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("version").and_then(serde_json::Value::as_i64));
            let mut response = (
                StatusCode::from_u16(status).unwrap_or(StatusCode::CREATED),
                body,
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
                .headers_mut()
                .insert("idempotent-replayed", HeaderValue::from_static("true"));
            set_etag(&mut response, version.unwrap_or(0));
            Ok(response)
        }
        Begin::Mismatch => Err(ApiError::new(
            ErrorCode::IdempotencyKeyReused,
            "this Idempotency-Key was used with a different request body",
        )
        .field("Idempotency-Key")),
        Begin::InProgress => Err(ApiError::new(
            ErrorCode::IdempotencyInProgress,
            "a request with this Idempotency-Key is still running; retry shortly",
        )),
        Begin::Fresh => match create.await {
            Ok(created) => {
                let body = serde_json::to_string(&created).map_err(ApiError::internal)?;
                state
                    .store
                    .idempotency_finish(user, &scoped_key, StatusCode::CREATED.as_u16(), &body)
                    .await?;
                Ok(with_etag(StatusCode::CREATED, created.version(), &created))
            }
            Err(error) => {
                state.store.idempotency_abort(user, &scoped_key).await?;
                Err(error)
            }
        },
    }
}

/// Resources that carry a version (their ETag). Resources without one report 0.
pub trait Versioned {
    fn version(&self) -> i64;
}

macro_rules! versioned {
    ($($ty:ty => $expr:expr),* $(,)?) => {
        $(impl Versioned for $ty { fn version(&self) -> i64 { let f: fn(&$ty) -> i64 = $expr; f(self) } })*
    };
}

versioned! {
    kefu_store::customers::Customer => |c| c.version,
    kefu_store::cases::Case => |c| c.version,
    kefu_store::cases::Message => |_| 0,
    kefu_store::cases::Attachment => |_| 0,
    kefu_store::timeline::TimelineEntry => |_| 0,
    kefu_store::customers::CustomerTransaction => |_| 0,
    kefu_store::customers::WinBackAttempt => |_| 0,
    kefu_store::customers::CustomFieldDefinition => |_| 0,
    kefu_store::users::User => |u| u.version,
    kefu_store::users::Team => |t| t.version,
    kefu_store::users::CreatedToken => |_| 0,
    kefu_store::complaints::ComplaintDetail => |c| c.complaint.version,
    kefu_store::complaints::Appeal => |_| 0,
    kefu_store::promises::Promise => |p| p.version,
}
