//! Idempotency keys: a client that retries a create with the same `Idempotency-Key`
//! gets the first answer again instead of a second record.
//!
//! The key is reserved before the work starts (the primary key makes one request win),
//! and the answer is stored when it ends. Keys are kept for 24 hours.

use crate::sql::q;
use crate::{Result, Store};

pub const KEY_TTL_MS: i64 = 24 * 3600 * 1000;
/// A reservation older than this is taken to be from a crashed process.
const STALE_RESERVATION_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Begin {
    /// First use: do the work, then `finish` (or `abort` on failure).
    Fresh,
    /// Seen before with the same request: answer this again.
    Replay { status: u16, body: String },
    /// Seen before with a different request body.
    Mismatch,
    /// The first request with this key is still running.
    InProgress,
}

impl Store {
    pub async fn idempotency_begin(
        &self,
        user: i64,
        key: &str,
        request_hash: &str,
    ) -> Result<Begin> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        conn.execute(q("DELETE FROM idempotency_keys WHERE created_at < $1 OR (status = 0 AND created_at < $2)").bind(now - KEY_TTL_MS).bind(now - STALE_RESERVATION_MS)).await?;
        // Insert first: the primary key lets exactly one of several concurrent requests
        // with the same key reserve it, on either backend.
        let reserved = conn
            .execute(
                q("INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, created_at) VALUES ($1, $2, $3, 0, '', $4) ON CONFLICT (user_id, key) DO NOTHING")
                    .bind(user)
                    .bind(key)
                    .bind(request_hash)
                    .bind(now),
            )
            .await?;
        let outcome = if reserved == 1 {
            Begin::Fresh
        } else {
            let row = conn
                .fetch_one(q("SELECT request_hash, status, response FROM idempotency_keys WHERE user_id = $1 AND key = $2").bind(user).bind(key))
                .await?;
            let stored_hash: String = row.get("request_hash")?;
            let status: i64 = row.get("status")?;
            if stored_hash != request_hash {
                Begin::Mismatch
            } else if status == 0 {
                Begin::InProgress
            } else {
                Begin::Replay {
                    status: u16::try_from(status).unwrap_or(200),
                    body: row.get("response")?,
                }
            }
        };
        conn.commit().await?;
        Ok(outcome)
    }

    pub async fn idempotency_finish(
        &self,
        user: i64,
        key: &str,
        status: u16,
        body: &str,
    ) -> Result<()> {
        let mut conn = self.write().await?;
        conn.execute(q("UPDATE idempotency_keys SET status = $1, response = $2 WHERE user_id = $3 AND key = $4").bind(i64::from(status)).bind(body).bind(user).bind(key)).await?;
        conn.commit().await
    }

    /// Forgets a reservation whose request failed, so the client may retry.
    pub async fn idempotency_abort(&self, user: i64, key: &str) -> Result<()> {
        let mut conn = self.write().await?;
        conn.execute(
            q("DELETE FROM idempotency_keys WHERE user_id = $1 AND key = $2 AND status = 0")
                .bind(user)
                .bind(key),
        )
        .await?;
        conn.commit().await
    }
}
