//! The error catalogue: every error the API returns has a stable snake_case code, an
//! HTTP status and a message naming the field at fault. Codes are public API — add new
//! ones, never rename.
//!
//! Internal errors are logged with their detail and answered with a generic message.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kefu_domain::DomainError;
use kefu_store::StoreError;
use serde::Serialize;

macro_rules! catalogue {
    ($($variant:ident = $code:literal, $status:ident, $doc:literal;)+) => {
        /// Every error code the API can answer with.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        #[serde(rename_all = "snake_case")]
        pub enum ErrorCode { $( #[doc = $doc] $variant, )+ }

        impl ErrorCode {
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$variant),+];
            pub fn as_str(self) -> &'static str { match self { $(ErrorCode::$variant => $code),+ } }
            pub fn status(self) -> StatusCode { match self { $(ErrorCode::$variant => StatusCode::$status),+ } }
            pub fn description(self) -> &'static str { match self { $(ErrorCode::$variant => $doc),+ } }
        }
    };
}

catalogue! {
    MalformedJson = "malformed_json", BAD_REQUEST, "The body is not valid JSON.";
    InvalidBody = "invalid_body", UNPROCESSABLE_ENTITY, "The JSON is well-formed but does not fit: a missing or unknown field, a wrong type or an unknown enum value.";
    InvalidField = "invalid_field", UNPROCESSABLE_ENTITY, "A field's value breaks a rule (empty, too long, malformed, out of range).";
    InvalidQuery = "invalid_query", BAD_REQUEST, "A query parameter is unknown or has the wrong form.";
    InvalidTransition = "invalid_transition", CONFLICT, "The state change is not allowed from the current state; the message lists the allowed ones.";
    UnsupportedMediaType = "unsupported_media_type", UNSUPPORTED_MEDIA_TYPE, "The body must be sent as application/json.";
    PayloadTooLarge = "payload_too_large", PAYLOAD_TOO_LARGE, "The body is larger than this endpoint accepts.";
    Unauthenticated = "unauthenticated", UNAUTHORIZED, "No valid session cookie or API token was sent.";
    InvalidCredentials = "invalid_credentials", UNAUTHORIZED, "The email or the password is wrong.";
    Forbidden = "forbidden", FORBIDDEN, "The caller's role or token scopes do not allow this.";
    CsrfFailed = "csrf_failed", FORBIDDEN, "A cookie-authenticated change needs the X-CSRF-Token header from login and a same-origin request.";
    NotFound = "not_found", NOT_FOUND, "No such resource.";
    MethodNotAllowed = "method_not_allowed", METHOD_NOT_ALLOWED, "The resource does not support this method.";
    Duplicate = "duplicate", CONFLICT, "A record with the same unique value already exists.";
    DuplicateContact = "duplicate_contact", CONFLICT, "The contact address already belongs to a customer.";
    CaseClosed = "case_closed", CONFLICT, "The case is closed or merged and accepts no changes.";
    CustomerHasCases = "customer_has_cases", CONFLICT, "The customer has cases, whose history is kept.";
    CustomerReferenced = "customer_referenced", CONFLICT, "Other customers belong to or were referred by this customer.";
    DifferentCustomers = "different_customers", CONFLICT, "Only cases of the same customer can be merged.";
    NotLost = "not_lost", CONFLICT, "Win-back attempts are recorded for lost customers only.";
    NotAComplaint = "not_a_complaint", CONFLICT, "A complaint record goes on a case of kind complaint.";
    RoleRequired = "role_required", FORBIDDEN, "The step needs a higher role (a supervisor decides reviews and appeals).";
    AuthorityExceeded = "authority_exceeded", FORBIDDEN, "The compensation is above the caller's limit in the complaint rule set; escalate instead.";
    NotTheSubject = "not_the_subject", FORBIDDEN, "Only the employee a complaint names may appeal it.";
    AlreadyPaused = "already_paused", CONFLICT, "The agent is already paused from routing.";
    NotPaused = "not_paused", CONFLICT, "The agent is not paused from routing.";
    AlreadyAcknowledged = "already_acknowledged", CONFLICT, "The stress flag was already acknowledged.";
    RuleSetChanged = "rule_set_changed", CONFLICT, "Another version of the complaint rules was published since the one these rules were based on; reload and publish again.";
    AppealDecided = "appeal_decided", CONFLICT, "The employee's appeal on this complaint was decided; a decision is final.";
    Conflict = "conflict", CONFLICT, "The change contradicts what is stored.";
    VersionMismatch = "version_mismatch", PRECONDITION_FAILED, "If-Match names an older version: reload and apply the change again.";
    PreconditionRequired = "precondition_required", PRECONDITION_REQUIRED, "The change needs If-Match or the expected current state (`from`), so concurrent changes cannot stack.";
    InvalidIfMatch = "invalid_if_match", BAD_REQUEST, "If-Match must be an ETag this API handed out, such as \"3\".";
    IdempotencyKeyReused = "idempotency_key_reused", UNPROCESSABLE_ENTITY, "The Idempotency-Key was used before with a different request.";
    IdempotencyInProgress = "idempotency_in_progress", CONFLICT, "A request with this Idempotency-Key is still being processed.";
    Unsupported = "unsupported", CONFLICT, "The operation is not available on this installation.";
    DraftFailed = "draft_failed", BAD_GATEWAY, "The reply-drafting model server did not answer usefully (unreachable, too slow, an error, or not a chat completion); assist's other suggestions still work.";
    Internal = "internal", INTERNAL_SERVER_ERROR, "kefu failed; the server log has the details.";
}

/// An error answer: `{"error": {"code", "message", "field"?}}`.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    pub field: Option<String>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// For `invalid_transition`: where the object may go from here.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed: Option<Vec<String>>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            field: None,
        }
    }

    pub fn field(mut self, field: impl Into<String>) -> Self {
        self.field = Some(field.into());
        self
    }

    pub fn not_found(what: &str) -> Self {
        ApiError::new(ErrorCode::NotFound, format!("{what} was not found"))
    }

    pub fn forbidden(message: impl Into<String>) -> Self {
        ApiError::new(ErrorCode::Forbidden, message)
    }

    pub fn internal(detail: impl std::fmt::Display) -> Self {
        tracing::error!(%detail, "internal error");
        ApiError::new(
            ErrorCode::Internal,
            "kefu failed to handle the request; the server log has the details",
        )
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let field = error.field();
        let code = match &error {
            DomainError::Invalid { .. } => ErrorCode::InvalidField,
            DomainError::UnknownVariant { .. } => ErrorCode::InvalidField,
            DomainError::TransitionNotAllowed { .. } => ErrorCode::InvalidTransition,
        };
        ApiError {
            code,
            message: error.to_string(),
            field: Some(field.to_string()),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound { entity, id } => ApiError::new(
                ErrorCode::NotFound,
                format!("{entity} `{id}` was not found"),
            ),
            StoreError::Invalid(domain) => domain.into(),
            StoreError::Conflict {
                code,
                field,
                message,
            } => {
                let code = match code {
                    "duplicate" => ErrorCode::Duplicate,
                    "duplicate_contact" => ErrorCode::DuplicateContact,
                    "case_closed" => ErrorCode::CaseClosed,
                    "customer_has_cases" => ErrorCode::CustomerHasCases,
                    "customer_referenced" => ErrorCode::CustomerReferenced,
                    "different_customers" => ErrorCode::DifferentCustomers,
                    "not_lost" => ErrorCode::NotLost,
                    "invalid_credentials" => ErrorCode::InvalidCredentials,
                    "unsupported" => ErrorCode::Unsupported,
                    "not_a_complaint" => ErrorCode::NotAComplaint,
                    "role_required" => ErrorCode::RoleRequired,
                    "authority_exceeded" => ErrorCode::AuthorityExceeded,
                    "not_the_subject" => ErrorCode::NotTheSubject,
                    "already_paused" => ErrorCode::AlreadyPaused,
                    "not_paused" => ErrorCode::NotPaused,
                    "already_acknowledged" => ErrorCode::AlreadyAcknowledged,
                    "rule_set_changed" => ErrorCode::RuleSetChanged,
                    "appeal_decided" => ErrorCode::AppealDecided,
                    _ => ErrorCode::Conflict,
                };
                ApiError {
                    code,
                    message,
                    field: field.map(str::to_string),
                }
            }
            StoreError::VersionMismatch {
                entity,
                expected,
                current,
            } => ApiError::new(
                ErrorCode::VersionMismatch,
                format!(
                    "the {entity} is at version {current}; If-Match named version {expected}. Reload it and apply the change again"
                ),
            ),
            StoreError::Database(detail) => ApiError::internal(detail),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let allowed = if self.code == ErrorCode::InvalidTransition {
            allowed_from_message(&self.message)
        } else {
            None
        };
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code,
                message: self.message,
                field: self.field,
                allowed,
            },
        };
        (self.code.status(), Json(body)).into_response()
    }
}

/// The allowed targets travel inside the domain message (`…; allowed from `x`: ["a"]`).
fn allowed_from_message(message: &str) -> Option<Vec<String>> {
    let list = message.rsplit_once(": ")?.1;
    serde_json::from_str(list).ok()
}

pub type ApiResult<T> = Result<T, ApiError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_snake_case_and_documented() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()), "{} twice", code.as_str());
            assert!(
                code.as_str()
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c == '_')
            );
            assert_eq!(
                serde_json::to_value(code).expect("json"),
                serde_json::json!(code.as_str())
            );
            assert!(code.description().ends_with('.'));
        }
    }

    #[test]
    fn transitions_list_the_allowed_targets() {
        let error: ApiError = kefu_domain::customers::LifecycleState::Current
            .transition(kefu_domain::customers::LifecycleState::Target)
            .expect_err("illegal")
            .into();
        assert_eq!(error.code, ErrorCode::InvalidTransition);
        assert_eq!(
            allowed_from_message(&error.message),
            Some(vec!["lost".to_string()])
        );
    }
}
