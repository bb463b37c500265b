//! Promises made to customers (承诺), the sweep that raises alerts for overdue ones,
//! and the notifications every alert lands in.
//!
//! The textbook lists "promises not kept" among the common mistakes of complaint
//! handling. A promise here has an owner and a deadline; when the deadline passes with
//! the promise still open, the sweep notifies the owner and the case's supervisors once,
//! and marks the promise as alerted so that the next sweep does not touch it again.

use crate::audit;
use crate::cases::{Case, key_of, load_case, lock_case, writable};

use crate::customers::{customer_key, parse_label};
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, Row, q};
use crate::timeline::{self, NewEntry};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::complaints::PromiseStatus;
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_domain::{DomainError, Labelled, Timestamp, optional_text, required_text};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Promise {
    pub id: String,
    pub case_id: String,
    pub case_number: i64,
    pub description: String,
    pub due_at: Timestamp,
    pub owner_id: String,
    pub status: PromiseStatus,
    /// Open and past its deadline.
    pub overdue: bool,
    pub note: String,
    pub created_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    /// When the sweep raised the overdue alert.
    pub alerted_at: Option<Timestamp>,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewPromise {
    /// What was promised, in the words said to the customer.
    pub description: String,
    pub due_at: Timestamp,
    /// Who keeps it; the person making it unless said.
    pub owner_id: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PromiseUpdate {
    /// `kept`, `broken` or `cancelled`.
    pub status: PromiseStatus,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct PromiseFilter {
    pub case_id: Option<String>,
    pub owner_id: Option<String>,
    pub status: Option<PromiseStatus>,
    /// Only open promises past their deadline.
    pub overdue: bool,
}

/// What one sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SweepReport {
    pub alerted: u64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Notification {
    pub id: String,
    pub kind: String,
    pub case_id: Option<String>,
    pub case_number: Option<i64>,
    pub message_en: String,
    pub message_zh: String,
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    pub created_at: Timestamp,
    pub read_at: Option<Timestamp>,
}

const PROMISE_SELECT: &str = "SELECT m.id, m.public_id, k.public_id AS case_public_id, k.number AS case_number, m.description, m.due_at, o.public_id AS owner_public_id, m.status, m.note, m.created_at, m.resolved_at, m.alerted_at, m.version FROM promises m JOIN cases k ON k.id = m.case_id JOIN users o ON o.id = m.owner_id";

fn promise_from_row(row: &Row, now: i64) -> Result<Promise> {
    let status: PromiseStatus = parse_label(row, "status")?;
    let due_at: i64 = row.get("due_at")?;
    Ok(Promise {
        id: row.get("public_id")?,
        case_id: row.get("case_public_id")?,
        case_number: row.get("case_number")?,
        description: row.get("description")?,
        due_at: Timestamp(due_at),
        owner_id: row.get("owner_public_id")?,
        status,
        overdue: status == PromiseStatus::Open && due_at <= now,
        note: row.get("note")?,
        created_at: Timestamp(row.get("created_at")?),
        resolved_at: row.get::<Option<i64>>("resolved_at")?.map(Timestamp),
        alerted_at: row.get::<Option<i64>>("alerted_at")?.map(Timestamp),
        version: row.get("version")?,
    })
}

async fn load_promise(conn: &mut Conn, public_id: &str, now: i64) -> Result<(i64, Promise)> {
    let id = parse_public_id("promise", public_id)?;
    let row = conn
        .fetch_optional(q_promise_by_id().bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("promise", public_id))?;
    Ok((row.get("id")?, promise_from_row(&row, now)?))
}

fn q_promise_by_id() -> crate::sql::Q {
    crate::sql::q_dynamic(format!("{PROMISE_SELECT} WHERE m.public_id = $1"))
}

async fn promise_timeline(
    conn: &mut Conn,
    case: &Case,
    actor: &Actor,
    summary: String,
    data: serde_json::Value,
    now: i64,
) -> Result<()> {
    let customer = customer_key(conn, &case.customer_id, "customer_id").await?;
    timeline::insert(
        conn,
        NewEntry {
            customer,
            case: Some(case.key),
            kind: TimelineKind::Promise,
            channel: Channel::System,
            direction: Direction::CompanyInitiated,
            content_type: ContentType::Policy,
            summary,
            data,
            actor: actor.user_id,
            occurred_at: now,
        },
        now,
    )
    .await?;
    Ok(())
}

impl Store {
    /// Records a promise made to the customer on a case.
    pub async fn add_promise(
        &self,
        actor: &Actor,
        case_id: &str,
        input: NewPromise,
    ) -> Result<Promise> {
        let now = self.now_ms();
        let description = required_text("description", &input.description, 2000)?;
        if input.due_at.0 <= now {
            return Err(DomainError::invalid("due_at", "a promise is due in the future").into());
        }
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        let owner = match &input.owner_id {
            Some(id) => key_of(&mut conn, "users", "user", "owner_id", id).await?,
            None => actor.user_id.ok_or_else(|| {
                DomainError::invalid("owner_id", "name the person who keeps the promise")
            })?,
        };
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO promises (public_id, case_id, description, due_at, owner_id, status, created_by, created_at) VALUES ($1, $2, $3, $4, $5, 'open', $6, $7)")
                .bind(id.as_str())
                .bind(case.key)
                .bind(description.as_str())
                .bind(input.due_at.0)
                .bind(owner)
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
        let (_, promise) = load_promise(&mut conn, &id, now).await?;
        promise_timeline(
            &mut conn,
            &case,
            actor,
            format!("#{} 承诺：{description}（{} 前）", case.number, input.due_at),
            json!({"case_number": case.number, "promise_id": id, "due_at": input.due_at, "status": "open"}),
            now,
        )
        .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "promise",
            &id,
            None,
            serde_json::to_value(&promise).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(promise)
    }

    /// Settles a promise: kept, broken or cancelled. Settled promises are final.
    pub async fn settle_promise(
        &self,
        actor: &Actor,
        promise_id: &str,
        input: PromiseUpdate,
        expected_version: Option<i64>,
    ) -> Result<Promise> {
        let now = self.now_ms();
        let note = optional_text("note", input.note.as_deref().unwrap_or(""), 2000)?;
        let mut conn = self.write().await?;
        let (key, before) = load_promise(&mut conn, promise_id, now).await?;
        // Lock the case first, as every case write does, so promise and case changes queue.
        let case = lock_case(&mut conn, &before.case_id).await?;
        let (_, before) = load_promise(&mut conn, promise_id, now).await?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "promise",
                expected,
                current: before.version,
            });
        }
        before.status.transition(input.status)?;
        conn.execute(
            q("UPDATE promises SET status = $1, note = $2, resolved_at = $3, version = version + 1 WHERE id = $4")
                .bind(input.status.as_str())
                .bind(note.as_str())
                .bind(now)
                .bind(key),
        )
        .await?;
        let (_, after) = load_promise(&mut conn, promise_id, now).await?;
        promise_timeline(
            &mut conn,
            &case,
            actor,
            format!(
                "#{} 承诺{}：{}",
                case.number,
                input.status.label_zh(),
                before.description
            ),
            json!({"case_number": case.number, "promise_id": promise_id, "status": input.status, "note": note}),
            now,
        )
        .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "transition",
            "promise",
            promise_id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Lists promises, soonest due first.
    pub async fn promises(
        &self,
        filter: &PromiseFilter,
        page: &PageRequest,
    ) -> Result<Page<Promise>> {
        let now = self.now_ms();
        let limit = page.limit()?;
        let mut builder = Builder::new(PROMISE_SELECT);
        builder.push(" WHERE 1 = 1");
        if let Some(id) = &filter.case_id {
            builder.and("k.public_id = $?", parse_public_id("case", id)?);
        }
        if let Some(id) = &filter.owner_id {
            builder.and("o.public_id = $?", parse_public_id("user", id)?);
        }
        if let Some(status) = filter.status {
            builder.and("m.status = $?", status.as_str());
        }
        if filter.overdue {
            builder.push(" AND m.status = 'open'");
            builder.and("m.due_at <= $?", now);
        }
        let sort = crate::page::Sort {
            column: "due_at",
            text: false,
            descending: false,
            name: "due",
        };
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, &sort.tag())?;
            let CursorKey::Int(due) = cursor.k else {
                return Err(
                    DomainError::invalid("cursor", "is not a cursor this list handed out").into(),
                );
            };
            builder.after(&sort, "m", due.into(), cursor.id);
        }
        builder.push(&format!(" ORDER BY m.due_at, m.id LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push((row.get::<i64>("id")?, promise_from_row(row, now)?));
        }
        let tag = sort.tag();
        let page = crate::audit::finish_page(items, limit, |(id, p)| Cursor {
            k: CursorKey::Int(p.due_at.0),
            id: *id,
            s: tag.clone(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, p)| p).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Raises an alert for every open promise that has come due and has not been
    /// alerted yet: a notification to its owner and to the case's supervisors. Touches
    /// only those promises (an index on status, alerted_at, due_at finds them), in
    /// batches, each batch one transaction.
    pub async fn sweep_promises(&self) -> Result<SweepReport> {
        let now = self.now_ms();
        let mut report = SweepReport::default();
        let mut supervisors: std::collections::HashMap<Option<i64>, Vec<i64>> =
            std::collections::HashMap::new();
        loop {
            let mut conn = self.write().await?;
            let rows = conn
                .fetch_all(
                    q("SELECT m.id, m.public_id, m.case_id, m.owner_id, m.description, m.due_at, k.number, k.team_id FROM promises m JOIN cases k ON k.id = m.case_id WHERE m.status = 'open' AND m.alerted_at IS NULL AND m.due_at <= $1 ORDER BY m.due_at, m.id LIMIT 500")
                        .bind(now),
                )
                .await?;
            if rows.is_empty() {
                conn.commit().await?;
                return Ok(report);
            }
            let mut keys = Vec::with_capacity(rows.len());
            let mut notices: Vec<Vec<crate::sql::Arg>> = Vec::new();
            for row in &rows {
                let case: i64 = row.get("case_id")?;
                let team: Option<i64> = row.get("team_id")?;
                let number: i64 = row.get("number")?;
                let description: String = row.get("description")?;
                let public_id: String = row.get("public_id")?;
                let due = Timestamp(row.get("due_at")?);
                if let std::collections::hash_map::Entry::Vacant(slot) = supervisors.entry(team) {
                    slot.insert(crate::complaints::supervisors_of_team(&mut conn, team).await?);
                }
                let mut people = vec![row.get::<i64>("owner_id")?];
                for supervisor in supervisors.get(&team).into_iter().flatten() {
                    if !people.contains(supervisor) {
                        people.push(*supervisor);
                    }
                }
                for person in people {
                    notices.push(vec![
                        new_public_id().into(),
                        person.into(),
                        "promise_overdue".into(),
                        case.into(),
                        format!(
                            "A promise on case #{number} is overdue (due {due}): {description}"
                        )
                        .into(),
                        format!("工单 #{number} 的承诺已逾期（截止 {due}）：{description}").into(),
                        json!({"promise_id": public_id, "due_at": due})
                            .to_string()
                            .into(),
                        now.into(),
                    ]);
                }
                keys.push(row.get::<i64>("id")?.to_string());
            }
            // 8 values a row: 1,000 rows stay far below either backend's parameter limit.
            for chunk in notices.chunks(1000) {
                let mut builder = Builder::new(
                    "INSERT INTO notifications (public_id, user_id, kind, case_id, message_en, message_zh, data, created_at) VALUES ",
                );
                for (i, values) in chunk.iter().enumerate() {
                    if i > 0 {
                        builder.push(", ");
                    }
                    builder.values(values);
                }
                conn.execute(builder.query()).await?;
            }
            // Ids are our own keys.
            let mut update = Builder::new("UPDATE promises SET alerted_at = ");
            update.push(&now.to_string());
            update.push(" WHERE id IN (");
            update.push(&keys.join(", "));
            update.push(")");
            conn.execute(update.query()).await?;
            report.alerted += rows.len() as u64;
            conn.commit().await?;
        }
    }

    /// A user's notifications, newest first.
    pub async fn notifications(
        &self,
        user_key: i64,
        unread_only: bool,
        page: &PageRequest,
    ) -> Result<Page<Notification>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(
            "SELECT n.id, n.public_id, n.kind, k.public_id AS case_public_id, k.number AS case_number, n.message_en, n.message_zh, n.data, n.created_at, n.read_at FROM notifications n LEFT JOIN cases k ON k.id = n.case_id",
        );
        builder.push(" WHERE 1 = 1");
        builder.and("n.user_id = $?", user_key);
        if unread_only {
            builder.push(" AND n.read_at IS NULL");
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, "notifications")?;
            builder.and("n.id < $?", cursor.id);
        }
        builder.push(&format!(" ORDER BY n.id DESC LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let data: String = row.get("data")?;
            items.push((
                row.get::<i64>("id")?,
                Notification {
                    id: row.get("public_id")?,
                    kind: row.get("kind")?,
                    case_id: row.get("case_public_id")?,
                    case_number: row.get("case_number")?,
                    message_en: row.get("message_en")?,
                    message_zh: row.get("message_zh")?,
                    data: serde_json::from_str(&data).unwrap_or_default(),
                    created_at: Timestamp(row.get("created_at")?),
                    read_at: row.get::<Option<i64>>("read_at")?.map(Timestamp),
                },
            ));
        }
        let page = crate::audit::finish_page(items, limit, |(id, _)| Cursor {
            k: CursorKey::Int(*id),
            id: *id,
            s: "notifications".into(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, n)| n).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Marks one of the user's notifications read. Someone else's is not found.
    pub async fn mark_notification_read(&self, user_key: i64, notification_id: &str) -> Result<()> {
        let now = self.now_ms();
        let id = parse_public_id("notification", notification_id)?;
        let mut conn = self.write().await?;
        let changed = conn
            .execute(
                q("UPDATE notifications SET read_at = COALESCE(read_at, $1) WHERE public_id = $2 AND user_id = $3")
                    .bind(now)
                    .bind(id)
                    .bind(user_key),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::not_found("notification", notification_id));
        }
        conn.commit().await
    }

    /// The promises on one case, for the case page.
    pub async fn case_promises(&self, case_id: &str) -> Result<Vec<Promise>> {
        let now = self.now_ms();
        let mut conn = self.snapshot().await?;
        let case = load_case(&mut conn, case_id).await?;
        let rows = conn
            .fetch_all(
                crate::sql::q_dynamic(format!(
                    "{PROMISE_SELECT} WHERE m.case_id = $1 ORDER BY m.due_at, m.id"
                ))
                .bind(case.key),
            )
            .await?;
        rows.iter().map(|row| promise_from_row(row, now)).collect()
    }
}
