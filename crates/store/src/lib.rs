//! kefu's storage: every table, on SQLite or PostgreSQL, with one behaviour.
//!
//! `store` is the only crate that speaks SQL. It also holds the use cases that must be
//! atomic — creating a case writes the case, its first message, a timeline entry and an
//! audit record in one transaction — so callers never see half of a change.
//!
//! It does not know about HTTP, the command line, or where configuration comes from.

pub mod audit;
pub mod automations;
pub mod bench;
pub mod cases;
pub mod complaints;
pub mod conversations;
pub mod customers;
mod db;
pub mod idempotency;
pub mod import;
pub mod intents;
pub mod jobs;
pub mod kb;
mod migrate;
pub mod page;
pub mod promises;
pub mod reports;
pub mod routing;
pub mod satisfaction;
pub mod sentiment;
pub mod sla;
mod sql;
pub mod timeline;
pub mod tracking;
pub mod users;

pub use db::{Store, StoreOptions, redact_url};
pub use migrate::{MIGRATION_NAMES, MigrationReport};
pub use sql::Dialect;

use kefu_domain::DomainError;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

/// What went wrong, in terms a caller can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{entity} `{id}` was not found")]
    NotFound { entity: &'static str, id: String },
    #[error(transparent)]
    Invalid(#[from] DomainError),
    /// The change contradicts what is stored (a duplicate contact, a closed case).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        field: Option<&'static str>,
        message: String,
    },
    /// The caller edited an old version (optimistic concurrency).
    #[error("{entity} is at version {current}, not {expected}")]
    VersionMismatch {
        entity: &'static str,
        expected: i64,
        current: i64,
    },
    /// The database failed; the text is for the log, not for users.
    #[error("database error: {0}")]
    Database(String),
}

impl StoreError {
    pub fn not_found(entity: &'static str, id: impl Into<String>) -> Self {
        StoreError::NotFound {
            entity,
            id: id.into(),
        }
    }

    pub fn conflict(
        code: &'static str,
        field: Option<&'static str>,
        message: impl Into<String>,
    ) -> Self {
        StoreError::Conflict {
            code,
            field,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db_error) = &error {
            if db_error.is_unique_violation() {
                return StoreError::conflict(
                    "duplicate",
                    None,
                    "a record with the same unique value already exists",
                );
            }
            if db_error.is_foreign_key_violation() {
                return StoreError::conflict(
                    "reference_missing",
                    None,
                    "a referenced record does not exist",
                );
            }
        }
        StoreError::Database(error.to_string())
    }
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The source of "now", as milliseconds since the Unix epoch. Tests fix it.
pub trait Clock: Send + Sync + 'static {
    fn now_ms(&self) -> i64;
}

/// The system's wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that stands still until told to move; for tests.
pub struct FixedClock(AtomicI64);

impl FixedClock {
    pub fn new(now_ms: i64) -> Arc<Self> {
        Arc::new(FixedClock(AtomicI64::new(now_ms)))
    }

    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for FixedClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Who is making a change, for the audit log and the timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor {
    /// The internal id of the user; `None` for kefu itself or the command line.
    pub user_id: Option<i64>,
    /// What the audit log shows: the user's email, `cli` or `system`.
    pub label: String,
    /// The role the actor decides with, when a request narrows it (an API token without
    /// `complaints:review` decides as an agent at most). `None`: the user's own role, or
    /// an admin's for kefu itself and the command line.
    pub authority: Option<kefu_domain::access::Role>,
}

impl Actor {
    pub fn system() -> Self {
        Actor {
            user_id: None,
            label: "system".into(),
            authority: None,
        }
    }

    pub fn cli() -> Self {
        Actor {
            user_id: None,
            label: "cli".into(),
            authority: None,
        }
    }
}

/// A fresh public id: a UUIDv7, so ids sort by creation time.
pub fn new_public_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Checks the form of a public id before it reaches SQL, so a malformed id is a
/// "not found" rather than a database error.
pub fn parse_public_id(entity: &'static str, text: &str) -> Result<String> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| StoreError::not_found(entity, text))
}

/// Whether text can be a token this crate handed out in a public link (tracking,
/// survey): URL-safe base64, at most 64 characters. Anything else is not looked up.
pub(crate) fn public_token_ok(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 64
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Random bytes as URL-safe base64, for session and API tokens.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine as _;
    let mut buffer = vec![0u8; bytes];
    // The OS random source failing is not something kefu can work around.
    #[allow(clippy::expect_used)]
    getrandom::fill(&mut buffer).expect("the operating system's random source failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buffer)
}

/// SHA-256 of a token, hex-encoded: what is stored instead of the token.
pub fn token_hash(token: &str) -> String {
    use sha2::Digest as _;
    let digest = sha2::Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of bytes, hex-encoded (attachment checksums).
pub fn token_hash_bytes(bytes: &[u8]) -> String {
    use sha2::Digest as _;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}
