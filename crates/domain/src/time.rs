//! Timestamps: stored as milliseconds since the Unix epoch, sent as RFC 3339 text.

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A point in time, in milliseconds since the Unix epoch (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(pub i64);

impl Timestamp {
    pub fn millis(self) -> i64 {
        self.0
    }

    /// Parses RFC 3339 text (`2026-11-23T08:30:00Z`, `2026-11-23T16:30:00+08:00`).
    pub fn parse(field: &'static str, text: &str) -> Result<Timestamp, crate::DomainError> {
        let parsed: jiff::Timestamp = text.trim().parse().map_err(|_| {
            crate::DomainError::invalid(
                field,
                format!("`{text}` is not an RFC 3339 time such as 2026-11-23T08:30:00Z"),
            )
        })?;
        Ok(Timestamp(parsed.as_millisecond()))
    }
}

impl std::fmt::Display for Timestamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match jiff::Timestamp::from_millisecond(self.0) {
            Ok(ts) => write!(f, "{ts}"),
            Err(_) => write!(f, "{}ms", self.0),
        }
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        let parsed: jiff::Timestamp = text.parse().map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an RFC 3339 time such as 2026-11-23T08:30:00Z"
            ))
        })?;
        Ok(Timestamp(parsed.as_millisecond()))
    }
}

impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(
                utoipa::openapi::KnownFormat::DateTime,
            )))
            .examples(["2026-11-23T08:30:00Z"])
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_text() {
        let ts = Timestamp::parse("at", "2026-11-23T16:30:00+08:00").expect("valid");
        assert_eq!(ts.to_string(), "2026-11-23T08:30:00Z");
        assert_eq!(
            serde_json::to_string(&ts).expect("json"),
            "\"2026-11-23T08:30:00Z\""
        );
        let back: Timestamp = serde_json::from_str("\"2026-11-23T08:30:00.250Z\"").expect("json");
        assert_eq!(back.0 - ts.0, 250);
        assert!(Timestamp::parse("at", "yesterday").is_err());
    }
}
