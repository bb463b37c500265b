//! The customer timeline (接触点): one ordered history per customer, fed by every
//! message, case event, call, visit, letter, survey answer and order event.

use crate::audit;
use crate::customers::{customer_key, parse_label};
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, Row, q};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::timeline::*;
use kefu_domain::{DomainError, Labelled, Timestamp, optional_text, required_text};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// One touchpoint as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TimelineEntry {
    pub id: String,
    pub customer_id: String,
    pub case_id: Option<String>,
    pub case_number: Option<i64>,
    pub kind: TimelineKind,
    pub channel: Channel,
    pub direction: Direction,
    pub interaction_type: InteractionType,
    pub content_type: ContentType,
    pub summary: String,
    #[schema(value_type = Object)]
    pub data: Value,
    /// The public id of the user who recorded or caused it.
    pub actor_id: Option<String>,
    pub occurred_at: Timestamp,
    pub created_at: Timestamp,
}

/// A touchpoint recorded by hand: a visit, a call, a letter, a note, an order event
/// or a survey answer from outside kefu.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTouchpoint {
    pub kind: TimelineKind,
    pub channel: Channel,
    pub direction: Direction,
    /// Defaults to what the channel implies (a visit is face to face).
    pub interaction_type: Option<InteractionType>,
    pub content_type: Option<ContentType>,
    pub summary: String,
    /// When it happened; now unless said.
    pub occurred_at: Option<Timestamp>,
    pub case_id: Option<String>,
    #[schema(value_type = Option<Object>)]
    pub data: Option<Value>,
}

/// What kefu writes onto the timeline as things happen.
pub(crate) struct NewEntry {
    pub customer: i64,
    pub case: Option<i64>,
    pub kind: TimelineKind,
    pub channel: Channel,
    pub direction: Direction,
    pub content_type: ContentType,
    pub summary: String,
    pub data: Value,
    pub actor: Option<i64>,
    pub occurred_at: i64,
}

/// The summary keeps the first 500 characters; the full text stays on the message.
fn clip(text: &str) -> String {
    let mut clipped: String = text.chars().take(500).collect();
    if clipped.len() < text.len() {
        clipped.push('…');
    }
    clipped
}

pub(crate) async fn insert(conn: &mut Conn, entry: NewEntry, now: i64) -> Result<String> {
    insert_with_type(conn, entry, None, now).await
}

async fn insert_with_type(
    conn: &mut Conn,
    entry: NewEntry,
    interaction: Option<InteractionType>,
    now: i64,
) -> Result<String> {
    let public_id = new_public_id();
    let interaction = interaction.unwrap_or_else(|| entry.channel.interaction_type());
    conn.execute(
        q("INSERT INTO timeline_entries (public_id, customer_id, case_id, kind, channel, direction, interaction_type, content_type, summary, data, actor_id, occurred_at, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)")
            .bind(public_id.as_str())
            .bind(entry.customer)
            .bind(entry.case)
            .bind(entry.kind.as_str())
            .bind(entry.channel.as_str())
            .bind(entry.direction.as_str())
            .bind(interaction.as_str())
            .bind(entry.content_type.as_str())
            .bind(clip(&entry.summary))
            .bind(entry.data.to_string())
            .bind(entry.actor)
            .bind(entry.occurred_at)
            .bind(now),
    )
    .await?;
    Ok(public_id)
}

const SELECT: &str = "SELECT t.id, t.public_id, cu.public_id AS customer_public_id, ca.public_id AS case_public_id, ca.number AS case_number, t.kind, t.channel, t.direction, t.interaction_type, t.content_type, t.summary, t.data, u.public_id AS actor_public_id, t.occurred_at, t.created_at FROM timeline_entries t JOIN customers cu ON cu.id = t.customer_id LEFT JOIN cases ca ON ca.id = t.case_id LEFT JOIN users u ON u.id = t.actor_id";

fn entry_from_row(row: &Row) -> Result<TimelineEntry> {
    let data: String = row.get("data")?;
    Ok(TimelineEntry {
        id: row.get("public_id")?,
        customer_id: row.get("customer_public_id")?,
        case_id: row.get("case_public_id")?,
        case_number: row.get("case_number")?,
        kind: parse_label(row, "kind")?,
        channel: parse_label(row, "channel")?,
        direction: parse_label(row, "direction")?,
        interaction_type: parse_label(row, "interaction_type")?,
        content_type: parse_label(row, "content_type")?,
        summary: row.get("summary")?,
        data: serde_json::from_str(&data).unwrap_or(Value::Null),
        actor_id: row.get("actor_public_id")?,
        occurred_at: Timestamp(row.get("occurred_at")?),
        created_at: Timestamp(row.get("created_at")?),
    })
}

/// Filters for timeline lists; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct TimelineFilter {
    pub customer_id: Option<String>,
    pub case_id: Option<String>,
    pub kind: Option<TimelineKind>,
    pub channel: Option<Channel>,
    pub direction: Option<Direction>,
    pub interaction_type: Option<InteractionType>,
    pub content_type: Option<ContentType>,
    pub since: Option<Timestamp>,
    pub until: Option<Timestamp>,
}

impl Store {
    /// The timeline, newest first, filtered.
    pub async fn timeline(
        &self,
        filter: &TimelineFilter,
        page: &PageRequest,
    ) -> Result<Page<TimelineEntry>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(SELECT);
        builder.push(" WHERE 1 = 1");
        // One statement: the customer's key is looked up inside it, and whether the
        // customer exists is asked only when the page comes back empty.
        let mut conn = self.read();
        let customer = match &filter.customer_id {
            Some(id) => {
                let id = parse_public_id("customer", id)?;
                builder.and(
                    "t.customer_id = (SELECT id FROM customers WHERE public_id = $?)",
                    id.as_str(),
                );
                Some(id)
            }
            None => None,
        };
        if let Some(id) = &filter.case_id {
            let id = parse_public_id("case", id)?;
            builder.and("ca.public_id = $?", id);
        }
        for (column, value) in [
            ("t.kind", filter.kind.map(Labelled::as_str)),
            ("t.channel", filter.channel.map(Labelled::as_str)),
            ("t.direction", filter.direction.map(Labelled::as_str)),
            (
                "t.interaction_type",
                filter.interaction_type.map(Labelled::as_str),
            ),
            ("t.content_type", filter.content_type.map(Labelled::as_str)),
        ] {
            if let Some(value) = value {
                builder.and(&format!("{column} = $?"), value);
            }
        }
        if let Some(since) = filter.since {
            builder.and("t.occurred_at >= $?", since.0);
        }
        if let Some(until) = filter.until {
            builder.and("t.occurred_at < $?", until.0);
        }
        let sort = crate::page::Sort {
            column: "occurred_at",
            text: false,
            descending: true,
            name: "occurred",
        };
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, &sort.tag())?;
            let CursorKey::Int(at) = cursor.k else {
                return Err(
                    DomainError::invalid("cursor", "is not a cursor this list handed out").into(),
                );
            };
            builder.after(&sort, "t", at.into(), cursor.id);
        }
        builder.push(&format!(
            " ORDER BY {} LIMIT {}",
            sort.order_by("t"),
            limit + 1
        ));
        let rows = conn.fetch_all(builder.query()).await?;
        if rows.is_empty()
            && let Some(id) = customer
            && conn
                .fetch_optional(
                    q("SELECT id FROM customers WHERE public_id = $1").bind(id.as_str()),
                )
                .await?
                .is_none()
        {
            return Err(StoreError::not_found("customer", id.as_str()));
        }
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push((row.get::<i64>("id")?, entry_from_row(row)?));
        }
        let tag = sort.tag();
        let page = crate::audit::finish_page(items, limit, |(id, entry)| Cursor {
            k: CursorKey::Int(entry.occurred_at.0),
            id: *id,
            s: tag.clone(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, e)| e).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Records a touchpoint by hand (a visit, a call, a letter …).
    pub async fn record_touchpoint(
        &self,
        actor: &Actor,
        customer_id: &str,
        input: NewTouchpoint,
    ) -> Result<TimelineEntry> {
        let now = self.now_ms();
        if !input.kind.recordable_by_hand() {
            return Err(DomainError::invalid(
                "kind",
                format!("`{}` entries are written by kefu as things happen; by hand you may record call, visit, letter, note, order_event or survey_answer", input.kind),
            )
            .into());
        }
        let summary = required_text("summary", &input.summary, 5000)?;
        let occurred_at = input.occurred_at.map_or(now, |t| t.0);
        let data = input
            .data
            .clone()
            .unwrap_or(Value::Object(Default::default()));
        if !data.is_object() {
            return Err(DomainError::invalid("data", "must be a JSON object").into());
        }
        if data.to_string().len() > 64 * 1024 {
            return Err(DomainError::invalid("data", "is larger than 64 KiB").into());
        }
        let mut conn = self.write().await?;
        let customer = customer_key(&mut conn, customer_id, "customer_id")
            .await
            .map_err(|_| StoreError::not_found("customer", customer_id))?;
        let case = match &input.case_id {
            Some(case_id) => {
                let row = conn
                    .fetch_optional(
                        q("SELECT id, customer_id FROM cases WHERE public_id = $1")
                            .bind(optional_text("case_id", case_id, 64)?),
                    )
                    .await?
                    .ok_or_else(|| {
                        StoreError::Invalid(DomainError::invalid(
                            "case_id",
                            format!("no case has id `{case_id}`"),
                        ))
                    })?;
                if row.get::<i64>("customer_id")? != customer {
                    return Err(DomainError::invalid(
                        "case_id",
                        "the case belongs to another customer",
                    )
                    .into());
                }
                Some(row.get::<i64>("id")?)
            }
            None => None,
        };
        let id = insert_with_type(
            &mut conn,
            NewEntry {
                customer,
                case,
                kind: input.kind,
                channel: input.channel,
                direction: input.direction,
                content_type: input.content_type.unwrap_or(ContentType::Information),
                summary,
                data,
                actor: actor.user_id,
                occurred_at,
            },
            input.interaction_type,
            now,
        )
        .await?;
        let row = conn.fetch_one(q(concat!("SELECT t.id, t.public_id, cu.public_id AS customer_public_id, ca.public_id AS case_public_id, ca.number AS case_number, t.kind, t.channel, t.direction, t.interaction_type, t.content_type, t.summary, t.data, u.public_id AS actor_public_id, t.occurred_at, t.created_at FROM timeline_entries t JOIN customers cu ON cu.id = t.customer_id LEFT JOIN cases ca ON ca.id = t.case_id LEFT JOIN users u ON u.id = t.actor_id", " WHERE t.public_id = $1")).bind(id.as_str())).await?;
        let entry = entry_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "timeline_entry",
            &id,
            None,
            serde_json::to_value(&entry).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(entry)
    }

    /// The number of timeline entries (for benchmarks).
    pub async fn timeline_count(&self) -> Result<i64> {
        self.read()
            .scalar(q("SELECT COUNT(*) AS value FROM timeline_entries"))
            .await
    }
}
