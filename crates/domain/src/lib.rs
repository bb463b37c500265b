//! kefu's domain: the nouns of customer service and the rules that hold between them.
//!
//! This crate does no I/O and knows nothing of SQL, HTTP or time sources: values come in
//! as arguments and rule violations go out as [`DomainError`]s. Every enum here is stored
//! and sent as its snake_case name (`as_str`) and carries its Chinese label (`label_zh`),
//! because the people using kefu know these classifications by their textbook names.

#[macro_use]
mod labels;
pub mod access;
pub mod automation;
pub mod calendar;
pub mod cases;
pub mod complaints;
pub mod contacts;
pub mod customers;
pub mod kb;
pub mod routing;
pub mod sla;
pub mod text;
pub mod time;
pub mod timeline;

pub use labels::Labelled;
pub use time::Timestamp;

/// A rule of the domain was broken. Each variant names the field concerned so that the
/// API can answer with a message pointing at it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    #[error("{field}: `{value}` is not one of {allowed}")]
    UnknownVariant {
        field: &'static str,
        value: String,
        allowed: String,
    },
    #[error("cannot move from `{from}` to `{to}`; allowed from `{from}`: {allowed:?}")]
    TransitionNotAllowed {
        field: &'static str,
        from: String,
        to: String,
        allowed: Vec<String>,
    },
}

impl DomainError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field,
            message: message.into(),
        }
    }

    /// The error for a state change the machine does not allow, listing where the
    /// object may go from `from` instead.
    pub fn transition_refused<T: Labelled>(
        field: &'static str,
        from: T,
        to: T,
        allowed: &[T],
    ) -> Self {
        DomainError::TransitionNotAllowed {
            field,
            from: from.as_str().to_string(),
            to: to.as_str().to_string(),
            allowed: allowed.iter().map(|s| s.as_str().to_string()).collect(),
        }
    }

    pub fn field(&self) -> &'static str {
        match self {
            DomainError::Invalid { field, .. }
            | DomainError::UnknownVariant { field, .. }
            | DomainError::TransitionNotAllowed { field, .. } => field,
        }
    }
}

/// Trims a required text value and checks its length in characters (not bytes: a
/// Chinese name of 100 characters is 300 bytes).
pub fn required_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(field, "must not be empty"));
    }
    optional_text(field, trimmed, max_chars)
}

/// Like [`required_text`] but an empty value is allowed.
pub fn optional_text(
    field: &'static str,
    value: &str,
    max_chars: usize,
) -> Result<String, DomainError> {
    let trimmed = value.trim();
    let count = trimmed.chars().count();
    if count > max_chars {
        return Err(DomainError::invalid(
            field,
            format!("is {count} characters long; at most {max_chars} are allowed"),
        ));
    }
    if trimmed
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t' && c != '\r')
    {
        return Err(DomainError::invalid(field, "contains control characters"));
    }
    Ok(trimmed.to_string())
}

/// For PATCH bodies: tells "absent" (`None`) from "set to null" (`Some(None)`).
/// Use with `#[serde(default, deserialize_with = "kefu_domain::nullable")]`.
pub fn nullable<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    use serde::Deserialize as _;
    Option::<T>::deserialize(deserializer).map(Some)
}
