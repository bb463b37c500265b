//! Work queued in the database and leases on named locks, so that several kefu
//! processes share queues and singletons without talking to each other.
//!
//! A job is claimed with a lease: a worker that dies loses its lease and another worker
//! takes the job over when it expires. A job that keeps failing stops after
//! `max_attempts` with its last error kept, so one bad item never blocks a queue.

use crate::sql::{Dialect, q};
use crate::{Result, Store};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Job {
    pub id: i64,
    pub queue: String,
    pub payload: serde_json::Value,
    pub attempts: i64,
}

impl Store {
    /// Queues a job to run at `run_at` (milliseconds) or now.
    pub async fn enqueue(
        &self,
        queue: &str,
        payload: &serde_json::Value,
        run_at: Option<i64>,
    ) -> Result<i64> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let id = conn
            .scalar(
                q("INSERT INTO jobs (queue, payload, run_at, created_at) VALUES ($1, $2, $3, $4) RETURNING id AS value")
                    .bind(queue)
                    .bind(payload.to_string())
                    .bind(run_at.unwrap_or(now))
                    .bind(now),
            )
            .await?;
        conn.commit().await?;
        Ok(id)
    }

    /// Claims the next due job of a queue for `lease_ms`. On PostgreSQL, concurrent
    /// workers skip each other's rows (`FOR UPDATE SKIP LOCKED`); on SQLite the write
    /// lock serialises claims.
    pub async fn claim_job(&self, queue: &str, worker: &str, lease_ms: i64) -> Result<Option<Job>> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let select = match conn.dialect() {
            Dialect::Sqlite => q(
                "SELECT id, payload, attempts FROM jobs WHERE queue = $1 AND finished_at IS NULL AND run_at <= $2 AND (locked_until IS NULL OR locked_until < $2) AND attempts < max_attempts ORDER BY run_at, id LIMIT 1",
            ),
            Dialect::Postgres => q(
                "SELECT id, payload, attempts FROM jobs WHERE queue = $1 AND finished_at IS NULL AND run_at <= $2 AND (locked_until IS NULL OR locked_until < $2) AND attempts < max_attempts ORDER BY run_at, id LIMIT 1 FOR UPDATE SKIP LOCKED",
            ),
        };
        let Some(row) = conn.fetch_optional(select.bind(queue).bind(now)).await? else {
            conn.commit().await?;
            return Ok(None);
        };
        let id: i64 = row.get("id")?;
        let payload: String = row.get("payload")?;
        conn.execute(q("UPDATE jobs SET locked_by = $1, locked_until = $2, attempts = attempts + 1 WHERE id = $3").bind(worker).bind(now + lease_ms).bind(id)).await?;
        conn.commit().await?;
        Ok(Some(Job {
            id,
            queue: queue.to_string(),
            payload: serde_json::from_str(&payload).unwrap_or_default(),
            attempts: row.get::<i64>("attempts")? + 1,
        }))
    }

    pub async fn complete_job(&self, id: i64) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        conn.execute(q("UPDATE jobs SET finished_at = $1, locked_by = NULL, locked_until = NULL WHERE id = $2").bind(now).bind(id)).await?;
        conn.commit().await
    }

    /// Records a failure; the job runs again after `retry_in_ms` unless out of attempts.
    pub async fn fail_job(&self, id: i64, error: &str, retry_in_ms: i64) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        conn.execute(q("UPDATE jobs SET last_error = $1, locked_by = NULL, locked_until = NULL, run_at = $2 WHERE id = $3").bind(error).bind(now + retry_in_ms).bind(id)).await?;
        conn.commit().await
    }

    /// Takes or renews a named lease. Returns whether `holder` holds it now.
    pub async fn try_lock(&self, name: &str, holder: &str, ttl_ms: i64) -> Result<bool> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let changed = conn
            .execute(
                q("INSERT INTO locks (name, holder, expires_at) VALUES ($1, $2, $3) ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_at = excluded.expires_at WHERE locks.holder = excluded.holder OR locks.expires_at < $4")
                    .bind(name)
                    .bind(holder)
                    .bind(now + ttl_ms)
                    .bind(now),
            )
            .await?;
        conn.commit().await?;
        Ok(changed > 0)
    }

    pub async fn unlock(&self, name: &str, holder: &str) -> Result<()> {
        let mut conn = self.write().await?;
        conn.execute(
            q("DELETE FROM locks WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder),
        )
        .await?;
        conn.commit().await
    }
}
