//! The audit log (审计日志): every change, who made it, when, and the object before and
//! after. Written in the same transaction as the change, so neither exists without the
//! other.

use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, q};
use crate::{Actor, Result, Store};
use kefu_domain::Timestamp;
use serde::Serialize;

/// One audit record.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AuditEntry {
    pub id: i64,
    pub at: Timestamp,
    /// The public id of the user, when a user acted.
    pub actor_id: Option<String>,
    /// The user's email, `cli` or `system`.
    pub actor: String,
    /// `create`, `update`, `delete`, `transition`, `merge`, `transfer`, `login` …
    pub action: String,
    pub object_type: String,
    pub object_id: String,
    #[schema(value_type = Option<Object>)]
    pub before: Option<serde_json::Value>,
    #[schema(value_type = Option<Object>)]
    pub after: Option<serde_json::Value>,
}

/// Appends a record inside the caller's transaction. (Eight plain arguments read better
/// at the forty call sites than a struct literal would.)
#[allow(clippy::too_many_arguments)]
pub(crate) async fn record(
    conn: &mut Conn,
    actor: &Actor,
    at: i64,
    action: &str,
    object_type: &str,
    object_id: &str,
    before: Option<&serde_json::Value>,
    after: Option<&serde_json::Value>,
) -> Result<()> {
    conn.execute(
        q("INSERT INTO audit_log (at, actor_id, actor_label, action, object_type, object_id, before, after) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(at)
            .bind(actor.user_id)
            .bind(actor.label.as_str())
            .bind(action)
            .bind(object_type)
            .bind(object_id)
            .bind(before.map(|v| v.to_string()))
            .bind(after.map(|v| v.to_string())),
    )
    .await?;
    Ok(())
}

/// Filters for the audit log.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub object_type: Option<String>,
    pub object_id: Option<String>,
    /// The public id of the acting user.
    pub actor_id: Option<String>,
    pub action: Option<String>,
}

impl Store {
    /// The audit log, newest first.
    pub async fn audit_list(
        &self,
        filter: &AuditFilter,
        page: &PageRequest,
    ) -> Result<Page<AuditEntry>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(
            "SELECT a.id, a.at, u.public_id AS actor_public_id, a.actor_label, a.action, a.object_type, a.object_id, a.before, a.after FROM audit_log a LEFT JOIN users u ON u.id = a.actor_id WHERE 1 = 1",
        );
        if let Some(value) = &filter.object_type {
            builder.and("a.object_type = $?", value);
        }
        if let Some(value) = &filter.object_id {
            builder.and("a.object_id = $?", value);
        }
        if let Some(value) = &filter.actor_id {
            builder.and("u.public_id = $?", value);
        }
        if let Some(value) = &filter.action {
            builder.and("a.action = $?", value);
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, "-id")?;
            builder.and("a.id < $?", cursor.id);
        }
        builder.push(&format!(" ORDER BY a.id DESC LIMIT {}", limit + 1));
        let query = builder.query();
        let rows = self.read().fetch_all(query).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let parse = |text: Option<String>| text.and_then(|t| serde_json::from_str(&t).ok());
            items.push(AuditEntry {
                id: row.get("id")?,
                at: Timestamp(row.get("at")?),
                actor_id: row.get("actor_public_id")?,
                actor: row.get("actor_label")?,
                action: row.get("action")?,
                object_type: row.get("object_type")?,
                object_id: row.get("object_id")?,
                before: parse(row.get("before")?),
                after: parse(row.get("after")?),
            });
        }
        Ok(finish_page(items, limit, |entry| Cursor {
            k: CursorKey::Int(entry.id),
            id: entry.id,
            s: "-id".into(),
        }))
    }
}

/// Cuts the extra row fetched to learn whether there is a next page and makes the cursor.
pub(crate) fn finish_page<T>(
    mut items: Vec<T>,
    limit: u32,
    cursor_of: impl Fn(&T) -> Cursor,
) -> Page<T> {
    let has_more = items.len() > limit as usize;
    items.truncate(limit as usize);
    let next_cursor = if has_more {
        items.last().map(|last| cursor_of(last).encode())
    } else {
        None
    };
    Page { items, next_cursor }
}
