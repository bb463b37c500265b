//! Cases (工单): creation with a first message, messages, status changes, transfers
//! between teams (转接), merges and attachments — each written with its timeline entry
//! and audit record in one transaction.

use crate::audit;
use crate::customers::{customer_key, parse_label, parse_optional_label};
use crate::page::{Cursor, CursorKey, Page, PageRequest, Sort};
use crate::sql::{Arg, Builder, Conn, Dialect, Row, like_escape, q};
use crate::timeline::{self, NewEntry};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::cases::*;
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_domain::{DomainError, Labelled, Timestamp, nullable, optional_text, required_text, text};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The largest attachment kefu accepts, in bytes.
pub const MAX_ATTACHMENT_BYTES: usize = 10 * 1024 * 1024;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Case {
    #[serde(skip)]
    pub key: i64,
    pub id: String,
    /// The number people say on the phone (#1024).
    pub number: i64,
    pub customer_id: String,
    pub customer_name: String,
    pub kind: CaseKind,
    pub subject: String,
    pub status: CaseStatus,
    pub priority: Priority,
    /// The channel the case came in on.
    pub channel: Channel,
    pub service_stage: ServiceStage,
    pub technical: bool,
    pub charging: Charging,
    pub service_mode: Option<ServiceMode>,
    pub recurrence: Recurrence,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    /// The person who first received the case and stays accountable for it (首问负责制).
    pub first_owner_id: Option<String>,
    pub merged_into_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub first_response_at: Option<Timestamp>,
    pub solved_at: Option<Timestamp>,
    pub closed_at: Option<Timestamp>,
    /// The customer's satisfaction (CSAT 1–5) with this case, once they answered.
    pub csat_score: Option<i64>,
    pub csat_reason: Option<String>,
    pub version: i64,
}

/// What a new case needs: a customer, a kind, a subject and the first message.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCase {
    pub customer_id: String,
    pub kind: CaseKind,
    pub subject: String,
    /// The first message.
    pub body: String,
    /// Who wrote the first message: the customer (`inbound`, the default) or the company
    /// (`outbound`, for cases the company opens).
    pub message_kind: Option<MessageKind>,
    pub channel: Option<Channel>,
    pub priority: Option<Priority>,
    pub service_stage: Option<ServiceStage>,
    pub technical: Option<bool>,
    pub charging: Option<Charging>,
    pub service_mode: Option<ServiceMode>,
    pub recurrence: Option<Recurrence>,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub content_type: Option<ContentType>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CasePatch {
    pub subject: Option<String>,
    pub kind: Option<CaseKind>,
    pub priority: Option<Priority>,
    pub service_stage: Option<ServiceStage>,
    pub technical: Option<bool>,
    pub charging: Option<Charging>,
    #[serde(default, deserialize_with = "nullable")]
    pub service_mode: Option<Option<ServiceMode>>,
    pub recurrence: Option<Recurrence>,
    /// Assign within the current team; moving to another team is a transfer.
    #[serde(default, deserialize_with = "nullable")]
    pub assignee_id: Option<Option<String>>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Message {
    pub id: String,
    pub case_id: String,
    pub kind: MessageKind,
    pub channel: Channel,
    pub author_id: Option<String>,
    pub body: String,
    pub created_at: Timestamp,
    pub attachments: Vec<Attachment>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    pub kind: MessageKind,
    pub body: String,
    /// The case's channel unless said.
    pub channel: Option<Channel>,
    pub content_type: Option<ContentType>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attachment {
    pub id: String,
    pub filename: String,
    pub content_type: String,
    pub size_bytes: i64,
    pub sha256: String,
    pub message_id: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StatusChange {
    pub status: CaseStatus,
    pub reason: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StatusChangeRecord {
    pub from: Option<CaseStatus>,
    pub to: CaseStatus,
    pub reason: String,
    pub actor: String,
    pub at: Timestamp,
}

/// A transfer (转接) to another team or person, always with a reason.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewTransfer {
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transfer {
    pub from_team_id: Option<String>,
    pub to_team_id: Option<String>,
    pub from_assignee_id: Option<String>,
    pub to_assignee_id: Option<String>,
    pub reason: String,
    pub actor: String,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MergeRequest {
    /// The case this one is merged into; it keeps the conversation.
    pub into_id: String,
}

#[derive(Debug, Clone, Default)]
pub struct CaseFilter {
    pub status: Option<CaseStatus>,
    /// Only cases that still need work (new, open, pending, on hold).
    pub open: Option<bool>,
    pub kind: Option<CaseKind>,
    pub priority: Option<Priority>,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    pub customer_id: Option<String>,
    pub q: Option<String>,
    pub sort: Option<String>,
}

pub const CASE_SORTS: &[(&str, &str, bool)] = &[
    ("created", "id", false),
    ("updated", "updated_at", false),
    ("number", "number", false),
];

macro_rules! case_select {
    () => {
        "SELECT k.id, k.public_id, k.number, cu.public_id AS customer_public_id, cu.name AS customer_name, k.kind, k.subject, k.status, k.priority, k.channel, k.service_stage, k.technical, k.charging, k.service_mode, k.recurrence, t.public_id AS team_public_id, a.public_id AS assignee_public_id, f.public_id AS first_owner_public_id, m.public_id AS merged_into_public_id, k.created_at, k.updated_at, k.first_response_at, k.solved_at, k.closed_at, k.csat_score, k.csat_reason, k.version FROM cases k JOIN customers cu ON cu.id = k.customer_id LEFT JOIN teams t ON t.id = k.team_id LEFT JOIN users a ON a.id = k.assignee_id LEFT JOIN users f ON f.id = k.first_owner_id LEFT JOIN cases m ON m.id = k.merged_into_id"
    };
}

fn case_from_row(row: &Row) -> Result<Case> {
    let at = |column: &str| -> Result<Option<Timestamp>> {
        Ok(row.get::<Option<i64>>(column)?.map(Timestamp))
    };
    Ok(Case {
        key: row.get("id")?,
        id: row.get("public_id")?,
        number: row.get("number")?,
        customer_id: row.get("customer_public_id")?,
        customer_name: row.get("customer_name")?,
        kind: parse_label(row, "kind")?,
        subject: row.get("subject")?,
        status: parse_label(row, "status")?,
        priority: parse_label(row, "priority")?,
        channel: parse_label(row, "channel")?,
        service_stage: parse_label(row, "service_stage")?,
        technical: row.get("technical")?,
        charging: parse_label(row, "charging")?,
        service_mode: parse_optional_label(row, "service_mode")?,
        recurrence: parse_label(row, "recurrence")?,
        team_id: row.get("team_public_id")?,
        assignee_id: row.get("assignee_public_id")?,
        first_owner_id: row.get("first_owner_public_id")?,
        merged_into_id: row.get("merged_into_public_id")?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        first_response_at: at("first_response_at")?,
        solved_at: at("solved_at")?,
        closed_at: at("closed_at")?,
        csat_score: row.get("csat_score")?,
        csat_reason: row.get("csat_reason")?,
        version: row.get("version")?,
    })
}

pub(crate) async fn load_case(conn: &mut Conn, public_id: &str) -> Result<Case> {
    fetch_case(conn, public_id, false).await
}

/// Loads a case inside a write transaction, locking its row on PostgreSQL so that
/// concurrent changes queue instead of overwriting each other (SQLite has one writer).
pub(crate) async fn lock_case(conn: &mut Conn, public_id: &str) -> Result<Case> {
    fetch_case(conn, public_id, true).await
}

async fn fetch_case(conn: &mut Conn, public_id: &str, lock: bool) -> Result<Case> {
    let id = parse_public_id("case", public_id)?;
    let sql = if lock && conn.dialect() == Dialect::Postgres {
        concat!(case_select!(), " WHERE k.public_id = $1 FOR UPDATE OF k")
    } else {
        concat!(case_select!(), " WHERE k.public_id = $1")
    };
    let row = conn
        .fetch_optional(q(sql).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("case", public_id))?;
    case_from_row(&row)
}

pub(crate) async fn load_case_by_key(conn: &mut Conn, key: i64) -> Result<Case> {
    let row = conn
        .fetch_one(q(concat!(case_select!(), " WHERE k.id = $1")).bind(key))
        .await?;
    case_from_row(&row)
}

pub(crate) async fn key_of(
    conn: &mut Conn,
    table: &'static str,
    entity: &'static str,
    field: &'static str,
    public_id: &str,
) -> Result<i64> {
    let invalid = || {
        StoreError::Invalid(DomainError::invalid(
            field,
            format!("no {entity} has id `{public_id}`"),
        ))
    };
    let id = parse_public_id(entity, public_id).map_err(|_| invalid())?;
    let sql = match table {
        "teams" => "SELECT id FROM teams WHERE public_id = $1",
        "users" => "SELECT id FROM users WHERE public_id = $1 AND active = TRUE",
        _ => "SELECT id FROM cases WHERE public_id = $1",
    };
    conn.fetch_optional(q(sql).bind(id))
        .await?
        .ok_or_else(invalid)?
        .get("id")
}

async fn next_case_number(conn: &mut Conn) -> Result<i64> {
    match conn.dialect() {
        Dialect::Sqlite => {
            conn.scalar(q(
                "UPDATE sequences SET value = value + 1 WHERE name = 'case_number' RETURNING value",
            ))
            .await
        }
        Dialect::Postgres => {
            conn.scalar(q("SELECT nextval('case_number_seq') AS value"))
                .await
        }
    }
}

pub(crate) fn writable(case: &Case) -> Result<()> {
    if case.status.is_writable() {
        Ok(())
    } else {
        Err(StoreError::conflict(
            "case_closed",
            Some("status"),
            format!(
                "case #{} is {}; open a new case instead",
                case.number, case.status
            ),
        ))
    }
}

fn check_version(case: &Case, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(expected) if expected != case.version => Err(StoreError::VersionMismatch {
            entity: "case",
            expected,
            current: case.version,
        }),
        _ => Ok(()),
    }
}

fn default_content(kind: CaseKind) -> ContentType {
    match kind {
        CaseKind::Complaint => ContentType::Emotion,
        CaseKind::Suggestion => ContentType::Opinion,
        _ => ContentType::Information,
    }
}

pub(crate) fn case_json(case: &Case) -> serde_json::Value {
    serde_json::to_value(case).unwrap_or_default()
}

pub(crate) async fn insert_message(
    conn: &mut Conn,
    case: i64,
    kind: MessageKind,
    channel: Channel,
    author: Option<i64>,
    body: &str,
    now: i64,
) -> Result<(i64, String)> {
    let public_id = new_public_id();
    let row = conn
        .fetch_one(
            q("INSERT INTO case_messages (public_id, case_id, kind, channel, author_id, body, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id")
                .bind(public_id.as_str())
                .bind(case)
                .bind(kind.as_str())
                .bind(channel.as_str())
                .bind(author)
                .bind(body)
                .bind(now),
        )
        .await?;
    Ok((row.get("id")?, public_id))
}

fn message_direction(kind: MessageKind) -> Direction {
    match kind {
        MessageKind::Inbound => Direction::CustomerInitiated,
        MessageKind::Outbound | MessageKind::InternalNote => Direction::CompanyInitiated,
    }
}

impl Store {
    /// Creates a case with its first message, puts it on the customer's timeline and
    /// audits it — all or nothing.
    pub async fn create_case(&self, actor: &Actor, input: NewCase) -> Result<Case> {
        // Read the customer's words before taking the writer (see sentiment.rs).
        let reading = (input.message_kind.unwrap_or(MessageKind::Inbound) == MessageKind::Inbound)
            .then(|| crate::sentiment::read_text(&input.body));
        let mut conn = self.write().await?;
        let case = self
            .create_case_in(&mut conn, actor, input, reading)
            .await?;
        conn.commit().await?;
        Ok(case)
    }

    pub(crate) async fn create_case_in(
        &self,
        conn: &mut Conn,
        actor: &Actor,
        input: NewCase,
        reading: Option<kefu_bot::sentiment::TextReading>,
    ) -> Result<Case> {
        let now = self.now_ms();
        let subject = required_text("subject", &input.subject, 500)?;
        let body = required_text("body", &input.body, 100_000)?;
        let message_kind = input.message_kind.unwrap_or(MessageKind::Inbound);
        if message_kind == MessageKind::InternalNote {
            return Err(DomainError::invalid(
                "message_kind",
                "the first message is from or to the customer, not an internal note",
            )
            .into());
        }
        let channel = input.channel.unwrap_or(Channel::Api);
        let customer = customer_key(conn, &input.customer_id, "customer_id").await?;
        let team = match &input.team_id {
            Some(id) => Some(key_of(conn, "teams", "team", "team_id", id).await?),
            None => None,
        };
        let assignee = match &input.assignee_id {
            Some(id) => Some(key_of(conn, "users", "user", "assignee_id", id).await?),
            None => None,
        };
        // The first person to receive the case owns it to the end (首问负责制): the agent
        // who records it, or else the first assignee.
        let first_owner = actor.user_id.or(assignee);
        let number = next_case_number(conn).await?;
        let public_id = new_public_id();
        let status = if message_kind == MessageKind::Outbound {
            CaseStatus::Open
        } else {
            CaseStatus::New
        };
        let first_response = (message_kind == MessageKind::Outbound).then_some(now);
        let row = conn
            .fetch_one(
                q("INSERT INTO cases (public_id, number, customer_id, kind, subject, search_text, status, priority, channel, service_stage, technical, charging, service_mode, recurrence, team_id, assignee_id, first_owner_id, created_by, created_at, updated_at, first_response_at, version) VALUES ($1, $2, $3, $4, $5, $20, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $18, $19, 1) RETURNING id")
                    .bind(public_id.as_str())
                    .bind(number)
                    .bind(customer)
                    .bind(input.kind.as_str())
                    .bind(subject.as_str())
                    .bind(status.as_str())
                    .bind(input.priority.unwrap_or(input.kind.default_priority()).as_str())
                    .bind(channel.as_str())
                    .bind(input.service_stage.unwrap_or(input.kind.default_stage()).as_str())
                    .bind(input.technical.unwrap_or(input.kind.default_technical()))
                    .bind(input.charging.unwrap_or(Charging::Free).as_str())
                    .bind(input.service_mode.map(|m| m.as_str()))
                    .bind(input.recurrence.unwrap_or(Recurrence::OneOff).as_str())
                    .bind(team)
                    .bind(assignee)
                    .bind(first_owner)
                    .bind(actor.user_id)
                    .bind(now)
                    .bind(first_response)
                    .bind(text::search_key(&subject)),
            )
            .await?;
        let key: i64 = row.get("id")?;
        let author = if message_kind == MessageKind::Outbound {
            actor.user_id
        } else {
            None
        };
        let (message_key, message_id) =
            insert_message(conn, key, message_kind, channel, author, &body, now).await?;
        let mut priority = input.priority.unwrap_or(input.kind.default_priority());
        if message_kind == MessageKind::Inbound {
            let reading = reading.unwrap_or_else(|| crate::sentiment::read_text(&body));
            let raised = crate::sentiment::read_inbound(
                conn,
                key,
                message_key,
                channel.as_str(),
                reading,
                now,
            )
            .await?;
            if raised {
                // The clocks follow the priority the customer's words gave the case.
                priority = load_case_by_key(conn, key).await?.priority;
            }
        }
        self.apply_sla(
            conn,
            crate::sla::CaseFacts {
                case: key,
                kind: input.kind,
                priority,
                severity: None,
                team,
            },
            now,
        )
        .await?;
        timeline::insert(
            conn,
            NewEntry {
                customer,
                case: Some(key),
                kind: TimelineKind::CaseCreated,
                channel,
                direction: message_direction(message_kind),
                content_type: input.content_type.unwrap_or(default_content(input.kind)),
                summary: format!("#{number} {subject}: {body}"),
                data: json!({"case_number": number, "message_id": message_id, "kind": input.kind}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        if crate::automations::run(
            conn,
            kefu_domain::automation::Trigger::CaseCreated,
            key,
            Some(&body),
            now,
        )
        .await?
        {
            self.sla_refresh(conn, key, now).await?;
        }
        // Automations first (they may move the case to another team, whose calendar
        // the clocks then follow), then routing.
        self.sla_follow_team(conn, key, now).await?;
        self.route_case(conn, key, now).await?;
        let case = load_case_by_key(conn, key).await?;
        audit::record(
            conn,
            actor,
            now,
            "create",
            "case",
            &public_id,
            None,
            Some(&case_json(&case)),
        )
        .await?;
        Ok(case)
    }

    pub async fn case(&self, public_id: &str) -> Result<Case> {
        load_case(&mut self.read(), public_id).await
    }

    /// Lists cases with filters, a sort and a cursor.
    pub async fn cases(&self, filter: &CaseFilter, page: &PageRequest) -> Result<Page<Case>> {
        let limit = page.limit()?;
        let sort = Sort::parse(filter.sort.as_deref(), CASE_SORTS, "-created")?;
        let mut builder = Builder::new(case_select!());
        builder.push(" WHERE 1 = 1");
        let mut conn = self.snapshot().await?;
        for (column, value) in [
            ("k.status", filter.status.map(Labelled::as_str)),
            ("k.kind", filter.kind.map(Labelled::as_str)),
            ("k.priority", filter.priority.map(Labelled::as_str)),
        ] {
            if let Some(value) = value {
                builder.and(&format!("{column} = $?"), value);
            }
        }
        match filter.open {
            Some(true) => {
                builder.push(" AND k.status IN ('new', 'open', 'pending', 'on_hold')");
            }
            Some(false) => {
                builder.push(" AND k.status IN ('solved', 'closed', 'merged')");
            }
            None => {}
        }
        if let Some(id) = &filter.team_id {
            builder.and(
                "t.public_id = $?",
                parse_public_id("team", id).unwrap_or_default(),
            );
        }
        if let Some(id) = &filter.assignee_id {
            builder.and(
                "a.public_id = $?",
                parse_public_id("user", id).unwrap_or_default(),
            );
        }
        if let Some(id) = &filter.customer_id {
            let key = customer_key(&mut conn, id, "customer_id").await?;
            builder.and("k.customer_id = $?", key);
        }
        if let Some(text) = filter.q.as_deref().map(str::trim).filter(|t| !t.is_empty()) {
            builder.and(
                "k.search_text LIKE $? ESCAPE '\\'",
                format!("%{}%", like_escape(&text::search_key(text))),
            );
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, &sort.tag())?;
            let CursorKey::Int(value) = cursor.k else {
                return Err(
                    DomainError::invalid("cursor", "is not a cursor this list handed out").into(),
                );
            };
            builder.after(&sort, "k", Arg::from(value), cursor.id);
        }
        builder.push(&format!(
            " ORDER BY {} LIMIT {}",
            sort.order_by("k"),
            limit + 1
        ));
        let rows = conn.fetch_all(builder.query()).await?;
        let cases = rows.iter().map(case_from_row).collect::<Result<Vec<_>>>()?;
        let tag = sort.tag();
        Ok(crate::audit::finish_page(cases, limit, |case| {
            let value = match sort.column {
                "updated_at" => case.updated_at.0,
                "number" => case.number,
                _ => case.key,
            };
            Cursor {
                k: CursorKey::Int(value),
                id: case.key,
                s: tag.clone(),
            }
        }))
    }

    /// Edits a case's classification, subject, priority or assignee (within its team).
    pub async fn update_case(
        &self,
        actor: &Actor,
        public_id: &str,
        patch: CasePatch,
        expected_version: Option<i64>,
    ) -> Result<Case> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let before = lock_case(&mut conn, public_id).await?;
        check_version(&before, expected_version)?;
        writable(&before)?;
        let subject = match &patch.subject {
            Some(s) => required_text("subject", s, 500)?,
            None => before.subject.clone(),
        };
        let assignee = match &patch.assignee_id {
            Some(Some(id)) => Some(key_of(&mut conn, "users", "user", "assignee_id", id).await?),
            Some(None) => None,
            None => match &before.assignee_id {
                Some(id) => conn
                    .fetch_optional(
                        q("SELECT id FROM users WHERE public_id = $1").bind(id.as_str()),
                    )
                    .await?
                    .map(|r| r.get::<i64>("id"))
                    .transpose()?,
                None => None,
            },
        };
        let service_mode = match patch.service_mode {
            Some(mode) => mode,
            None => before.service_mode,
        };
        let subject_for_search = subject.clone();
        let changed = conn
            .execute(
                q("UPDATE cases SET subject = $1, search_text = $13, kind = $2, priority = $3, service_stage = $4, technical = $5, charging = $6, service_mode = $7, recurrence = $8, assignee_id = $9, first_owner_id = COALESCE(first_owner_id, $9), updated_at = $10, version = version + 1 WHERE id = $11 AND version = $12")
                    .bind(subject)
                    .bind(patch.kind.unwrap_or(before.kind).as_str())
                    .bind(patch.priority.unwrap_or(before.priority).as_str())
                    .bind(patch.service_stage.unwrap_or(before.service_stage).as_str())
                    .bind(patch.technical.unwrap_or(before.technical))
                    .bind(patch.charging.unwrap_or(before.charging).as_str())
                    .bind(service_mode.map(|m| m.as_str()))
                    .bind(patch.recurrence.unwrap_or(before.recurrence).as_str())
                    .bind(assignee)
                    .bind(now)
                    .bind(before.key)
                    .bind(before.version)
                    .bind(text::search_key(&subject_for_search)),
            )
            .await?;
        if changed == 0 {
            return Err(StoreError::VersionMismatch {
                entity: "case",
                expected: before.version,
                current: before.version + 1,
            });
        }
        let after = load_case_by_key(&mut conn, before.key).await?;
        if after.priority != before.priority || after.kind != before.kind {
            self.sla_refresh(&mut conn, after.key, now).await?;
        }
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "case",
            public_id,
            Some(&case_json(&before)),
            Some(&case_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Adds a message. A customer's message reopens a case waiting on them or solved;
    /// the first reply to the customer is the first response.
    pub async fn add_message(
        &self,
        actor: &Actor,
        case_id: &str,
        input: NewMessage,
    ) -> Result<Message> {
        let now = self.now_ms();
        let body = required_text("body", &input.body, 100_000)?;
        // Read the customer's words before taking the writer (see sentiment.rs).
        let reading =
            (input.kind == MessageKind::Inbound).then(|| crate::sentiment::read_text(&body));
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        let channel = input.channel.unwrap_or(case.channel);
        let author = if input.kind == MessageKind::Inbound {
            None
        } else {
            actor.user_id
        };
        let (message_key, message_id) =
            insert_message(&mut conn, case.key, input.kind, channel, author, &body, now).await?;
        if let Some(reading) = reading {
            let raised = crate::sentiment::read_inbound(
                &mut conn,
                case.key,
                message_key,
                channel.as_str(),
                reading,
                now,
            )
            .await?;
            if raised {
                // A raised priority re-targets the clocks, as a person raising it would.
                self.sla_refresh(&mut conn, case.key, now).await?;
            }
        }
        let new_status = match (input.kind, case.status) {
            (MessageKind::Inbound, CaseStatus::Pending | CaseStatus::Solved) => {
                Some(CaseStatus::Open)
            }
            (MessageKind::Outbound, CaseStatus::New) => Some(CaseStatus::Open),
            _ => None,
        };
        let first_response =
            input.kind == MessageKind::Outbound && case.first_response_at.is_none();
        conn.execute(
            q("UPDATE cases SET status = $1, solved_at = CASE WHEN $1 = 'open' THEN NULL ELSE solved_at END, first_response_at = CASE WHEN $2 THEN $3 ELSE first_response_at END, updated_at = $3, version = version + 1 WHERE id = $4")
                .bind(new_status.unwrap_or(case.status).as_str())
                .bind(first_response)
                .bind(now)
                .bind(case.key),
        )
        .await?;
        if let Some(status) = new_status {
            self.sla_on_status(&mut conn, case.key, status.as_str(), now)
                .await?;
        }
        match input.kind {
            MessageKind::Outbound => self.sla_on_reply(&mut conn, case.key, now).await?,
            MessageKind::Inbound => {
                self.sla_on_customer_message(&mut conn, case.key, now)
                    .await?;
                if crate::automations::run(
                    &mut conn,
                    kefu_domain::automation::Trigger::CustomerMessage,
                    case.key,
                    Some(&body),
                    now,
                )
                .await?
                {
                    self.sla_refresh(&mut conn, case.key, now).await?;
                }
                self.sla_follow_team(&mut conn, case.key, now).await?;
            }
            MessageKind::InternalNote => {}
        }
        if let Some(status) = new_status {
            conn.execute(
                q("INSERT INTO case_status_changes (case_id, from_status, to_status, reason, actor_id, actor_label, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(case.key)
                    .bind(case.status.as_str())
                    .bind(status.as_str())
                    .bind(format!("{} message", input.kind))
                    .bind(actor.user_id)
                    .bind(actor.label.as_str())
                    .bind(now),
            )
            .await?;
        }
        // Internal notes are for colleagues; the customer timeline holds touchpoints only.
        if input.kind != MessageKind::InternalNote {
            let customer = customer_key(&mut conn, &case.customer_id, "customer_id").await?;
            timeline::insert(
                &mut conn,
                NewEntry {
                    customer,
                    case: Some(case.key),
                    kind: TimelineKind::Message,
                    channel,
                    direction: message_direction(input.kind),
                    content_type: input.content_type.unwrap_or(default_content(case.kind)),
                    summary: body.clone(),
                    data: json!({"case_number": case.number, "message_id": message_id, "message_kind": input.kind}),
                    actor: author,
                    occurred_at: now,
                },
                now,
            )
            .await?;
        }
        let message = Message {
            id: message_id.clone(),
            case_id: case.id.clone(),
            kind: input.kind,
            channel,
            author_id: None,
            body,
            created_at: Timestamp(now),
            attachments: Vec::new(),
        };
        let message = Message {
            author_id: if author.is_some() {
                self.user_public_id(&mut conn, author).await?
            } else {
                None
            },
            ..message
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "message",
            &message_id,
            None,
            serde_json::to_value(&message).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(message)
    }

    async fn user_public_id(&self, conn: &mut Conn, key: Option<i64>) -> Result<Option<String>> {
        match key {
            Some(key) => conn
                .fetch_optional(q("SELECT public_id FROM users WHERE id = $1").bind(key))
                .await?
                .map(|r| r.get("public_id"))
                .transpose(),
            None => Ok(None),
        }
    }

    /// A case's messages, oldest first, with their attachments.
    pub async fn messages(&self, case_id: &str, page: &PageRequest) -> Result<Page<Message>> {
        let limit = page.limit()?;
        let mut conn = self.snapshot().await?;
        let case = load_case(&mut conn, case_id).await?;
        let mut builder = Builder::new(
            "SELECT m.id, m.public_id, m.kind, m.channel, u.public_id AS author_public_id, m.body, m.created_at FROM case_messages m LEFT JOIN users u ON u.id = m.author_id WHERE 1 = 1",
        );
        builder.and("m.case_id = $?", case.key);
        if let Some(cursor) = &page.cursor {
            builder.and("m.id > $?", Cursor::decode(cursor, "id")?.id);
        }
        builder.push(&format!(" ORDER BY m.id LIMIT {}", limit + 1));
        let rows = conn.fetch_all(builder.query()).await?;
        let mut messages = Vec::with_capacity(rows.len());
        for row in &rows {
            messages.push((
                row.get::<i64>("id")?,
                Message {
                    id: row.get("public_id")?,
                    case_id: case.id.clone(),
                    kind: parse_label(row, "kind")?,
                    channel: parse_label(row, "channel")?,
                    author_id: row.get("author_public_id")?,
                    body: row.get("body")?,
                    created_at: Timestamp(row.get("created_at")?),
                    attachments: Vec::new(),
                },
            ));
        }
        let attachments = self.attachments_of(&mut conn, case.key).await?;
        for (_, message) in &mut messages {
            message.attachments = attachments
                .iter()
                .filter(|a| a.message_id.as_deref() == Some(message.id.as_str()))
                .cloned()
                .collect();
        }
        let page = crate::audit::finish_page(messages, limit, |(key, _)| Cursor {
            k: CursorKey::Int(*key),
            id: *key,
            s: "id".into(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, m)| m).collect(),
            next_cursor: page.next_cursor,
        })
    }

    async fn attachments_of(&self, conn: &mut Conn, case_key: i64) -> Result<Vec<Attachment>> {
        let rows = conn
            .fetch_all(q("SELECT a.public_id, a.filename, a.content_type, a.size_bytes, a.sha256, m.public_id AS message_public_id, a.created_at FROM attachments a LEFT JOIN case_messages m ON m.id = a.message_id WHERE a.case_id = $1 ORDER BY a.id").bind(case_key))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Attachment {
                    id: row.get("public_id")?,
                    filename: row.get("filename")?,
                    content_type: row.get("content_type")?,
                    size_bytes: row.get("size_bytes")?,
                    sha256: row.get("sha256")?,
                    message_id: row.get("message_public_id")?,
                    created_at: Timestamp(row.get("created_at")?),
                })
            })
            .collect()
    }

    /// All attachments of a case.
    pub async fn attachments(&self, case_id: &str) -> Result<Vec<Attachment>> {
        let mut conn = self.snapshot().await?;
        let case = load_case(&mut conn, case_id).await?;
        self.attachments_of(&mut conn, case.key).await
    }

    /// Stores an attachment on a case (optionally on one of its messages).
    pub async fn add_attachment(
        &self,
        actor: &Actor,
        case_id: &str,
        message_id: Option<&str>,
        filename: &str,
        content_type: &str,
        data: Vec<u8>,
    ) -> Result<Attachment> {
        let now = self.now_ms();
        let filename = required_text("filename", filename, 255)?;
        if filename.contains(['/', '\\']) {
            return Err(DomainError::invalid("filename", "must not contain / or \\").into());
        }
        let content_type = required_text("content_type", content_type, 255)?;
        if data.is_empty() {
            return Err(DomainError::invalid("body", "the attachment is empty").into());
        }
        if data.len() > MAX_ATTACHMENT_BYTES {
            return Err(DomainError::invalid(
                "body",
                format!(
                    "attachments are limited to {} MiB",
                    MAX_ATTACHMENT_BYTES / 1024 / 1024
                ),
            )
            .into());
        }
        let sha256 = crate::token_hash_bytes(&data);
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        let message = match message_id {
            Some(id) => Some(
                conn.fetch_optional(
                    q("SELECT id FROM case_messages WHERE public_id = $1 AND case_id = $2")
                        .bind(id)
                        .bind(case.key),
                )
                .await?
                .ok_or_else(|| {
                    StoreError::Invalid(DomainError::invalid(
                        "message_id",
                        format!("case #{} has no message `{id}`", case.number),
                    ))
                })?
                .get::<i64>("id")?,
            ),
            None => None,
        };
        let public_id = new_public_id();
        let size = data.len() as i64;
        conn.execute(
            q("INSERT INTO attachments (public_id, case_id, message_id, filename, content_type, size_bytes, sha256, data, uploaded_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
                .bind(public_id.as_str())
                .bind(case.key)
                .bind(message)
                .bind(filename.as_str())
                .bind(content_type.as_str())
                .bind(size)
                .bind(sha256.as_str())
                .bind(data)
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
        let attachment = Attachment {
            id: public_id.clone(),
            filename,
            content_type,
            size_bytes: size,
            sha256,
            message_id: message_id.map(str::to_string),
            created_at: Timestamp(now),
        };
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "attachment",
            &public_id,
            None,
            serde_json::to_value(&attachment).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(attachment)
    }

    /// An attachment's metadata and bytes.
    pub async fn attachment_data(&self, attachment_id: &str) -> Result<(Attachment, Vec<u8>)> {
        let id = parse_public_id("attachment", attachment_id)?;
        let row = self
            .read()
            .fetch_optional(q("SELECT a.public_id, a.filename, a.content_type, a.size_bytes, a.sha256, m.public_id AS message_public_id, a.created_at, a.data FROM attachments a LEFT JOIN case_messages m ON m.id = a.message_id WHERE a.public_id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("attachment", attachment_id))?;
        Ok((
            Attachment {
                id: row.get("public_id")?,
                filename: row.get("filename")?,
                content_type: row.get("content_type")?,
                size_bytes: row.get("size_bytes")?,
                sha256: row.get("sha256")?,
                message_id: row.get("message_public_id")?,
                created_at: Timestamp(row.get("created_at")?),
            },
            row.get("data")?,
        ))
    }

    /// Changes a case's status along the allowed transitions.
    pub async fn change_case_status(
        &self,
        actor: &Actor,
        case_id: &str,
        change: StatusChange,
        expected_version: Option<i64>,
    ) -> Result<Case> {
        let now = self.now_ms();
        let reason = optional_text("reason", change.reason.as_deref().unwrap_or(""), 2000)?;
        let mut conn = self.write().await?;
        let before = lock_case(&mut conn, case_id).await?;
        check_version(&before, expected_version)?;
        before.status.transition(change.status)?;
        let to = change.status;
        conn.execute(
            q("UPDATE cases SET status = $1, solved_at = CASE WHEN $1 = 'solved' THEN $2 WHEN $1 = 'closed' THEN COALESCE(solved_at, $2) ELSE NULL END, closed_at = CASE WHEN $1 = 'closed' THEN $2 ELSE NULL END, updated_at = $2, version = version + 1 WHERE id = $3")
                .bind(to.as_str())
                .bind(now)
                .bind(before.key),
        )
        .await?;
        self.sla_on_status(&mut conn, before.key, to.as_str(), now)
            .await?;
        if to == CaseStatus::Solved {
            let (_, rules) = crate::complaints::current_rules(&mut conn, now).await?;
            crate::satisfaction::on_solved(
                &mut conn,
                before.key,
                i64::from(rules.follow_up_after_days),
                now,
            )
            .await?;
        }
        conn.execute(
            q("INSERT INTO case_status_changes (case_id, from_status, to_status, reason, actor_id, actor_label, at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                .bind(before.key)
                .bind(before.status.as_str())
                .bind(to.as_str())
                .bind(reason.as_str())
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
        let customer = customer_key(&mut conn, &before.customer_id, "customer_id").await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer,
                case: Some(before.key),
                kind: TimelineKind::CaseStatus,
                channel: Channel::System,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Information,
                summary: format!("#{} {} → {}{}", before.number, before.status.label_zh(), to.label_zh(), if reason.is_empty() { String::new() } else { format!(": {reason}") }),
                data: json!({"case_number": before.number, "from": before.status, "to": to, "reason": reason}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        let after = load_case_by_key(&mut conn, before.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "transition",
            "case",
            case_id,
            Some(&case_json(&before)),
            Some(&case_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// The status history of a case, oldest first.
    pub async fn status_changes(&self, case_id: &str) -> Result<Vec<StatusChangeRecord>> {
        let mut conn = self.snapshot().await?;
        let case = load_case(&mut conn, case_id).await?;
        let rows = conn.fetch_all(q("SELECT from_status, to_status, reason, actor_label, at FROM case_status_changes WHERE case_id = $1 ORDER BY id").bind(case.key)).await?;
        rows.iter()
            .map(|row| {
                Ok(StatusChangeRecord {
                    from: parse_optional_label(row, "from_status")?,
                    to: parse_label(row, "to_status")?,
                    reason: row.get("reason")?,
                    actor: row.get("actor_label")?,
                    at: Timestamp(row.get("at")?),
                })
            })
            .collect()
    }

    /// Transfers a case to another team and/or person (转接). The first owner stays.
    pub async fn transfer_case(
        &self,
        actor: &Actor,
        case_id: &str,
        input: NewTransfer,
        expected_version: Option<i64>,
    ) -> Result<Case> {
        let now = self.now_ms();
        let reason = required_text("reason", &input.reason, 2000)?;
        if input.team_id.is_none() && input.assignee_id.is_none() {
            return Err(DomainError::invalid(
                "team_id",
                "a transfer names a team, a person or both",
            )
            .into());
        }
        let mut conn = self.write().await?;
        let before = lock_case(&mut conn, case_id).await?;
        check_version(&before, expected_version)?;
        writable(&before)?;
        let from_team = match &before.team_id {
            Some(id) => Some(key_of(&mut conn, "teams", "team", "team_id", id).await?),
            None => None,
        };
        let from_assignee = match &before.assignee_id {
            Some(id) => conn
                .fetch_optional(q("SELECT id FROM users WHERE public_id = $1").bind(id.as_str()))
                .await?
                .map(|r| r.get::<i64>("id"))
                .transpose()?,
            None => None,
        };
        let to_team = match &input.team_id {
            Some(id) => Some(key_of(&mut conn, "teams", "team", "team_id", id).await?),
            None => from_team,
        };
        // A transfer to another team without a named person goes to that team's queue.
        let to_assignee = match &input.assignee_id {
            Some(id) => Some(key_of(&mut conn, "users", "user", "assignee_id", id).await?),
            None if to_team != from_team => None,
            None => from_assignee,
        };
        if to_team == from_team && to_assignee == from_assignee {
            return Err(DomainError::invalid(
                "team_id",
                "the case is already with that team and person",
            )
            .into());
        }
        conn.execute(
            q("UPDATE cases SET team_id = $1, assignee_id = $2, first_owner_id = COALESCE(first_owner_id, $2), updated_at = $3, version = version + 1 WHERE id = $4")
                .bind(to_team)
                .bind(to_assignee)
                .bind(now)
                .bind(before.key),
        )
        .await?;
        conn.execute(
            q("INSERT INTO case_transfers (case_id, from_team_id, to_team_id, from_assignee_id, to_assignee_id, reason, actor_id, actor_label, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                .bind(before.key)
                .bind(from_team)
                .bind(to_team)
                .bind(from_assignee)
                .bind(to_assignee)
                .bind(reason.as_str())
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
        crate::complaints::after_transfer(&mut conn, before.key, now).await?;
        self.sla_follow_team(&mut conn, before.key, now).await?;
        self.route_case(&mut conn, before.key, now).await?;
        let after = load_case_by_key(&mut conn, before.key).await?;
        let customer = customer_key(&mut conn, &before.customer_id, "customer_id").await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer,
                case: Some(before.key),
                kind: TimelineKind::CaseTransfer,
                channel: Channel::System,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Information,
                summary: format!("#{} 转接: {reason}", before.number),
                data: json!({"case_number": before.number, "from_team_id": before.team_id, "to_team_id": after.team_id, "from_assignee_id": before.assignee_id, "to_assignee_id": after.assignee_id, "reason": reason}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "transfer",
            "case",
            case_id,
            Some(&case_json(&before)),
            Some(&case_json(&after)),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// The transfers of a case, oldest first.
    pub async fn transfers(&self, case_id: &str) -> Result<Vec<Transfer>> {
        let mut conn = self.snapshot().await?;
        let case = load_case(&mut conn, case_id).await?;
        let rows = conn
            .fetch_all(q("SELECT ft.public_id AS from_team, tt.public_id AS to_team, fa.public_id AS from_assignee, ta.public_id AS to_assignee, x.reason, x.actor_label, x.at FROM case_transfers x LEFT JOIN teams ft ON ft.id = x.from_team_id LEFT JOIN teams tt ON tt.id = x.to_team_id LEFT JOIN users fa ON fa.id = x.from_assignee_id LEFT JOIN users ta ON ta.id = x.to_assignee_id WHERE x.case_id = $1 ORDER BY x.id").bind(case.key))
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Transfer {
                    from_team_id: row.get("from_team")?,
                    to_team_id: row.get("to_team")?,
                    from_assignee_id: row.get("from_assignee")?,
                    to_assignee_id: row.get("to_assignee")?,
                    reason: row.get("reason")?,
                    actor: row.get("actor_label")?,
                    at: Timestamp(row.get("at")?),
                })
            })
            .collect()
    }

    /// Merges a duplicate case into another case of the same customer: its messages,
    /// attachments and timeline entries move to the target, and it becomes `merged`.
    pub async fn merge_case(
        &self,
        actor: &Actor,
        case_id: &str,
        request: MergeRequest,
    ) -> Result<Case> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let source = lock_case(&mut conn, case_id).await?;
        let target = lock_case(&mut conn, &request.into_id).await.map_err(|_| {
            StoreError::Invalid(DomainError::invalid(
                "into_id",
                format!("no case has id `{}`", request.into_id),
            ))
        })?;
        if source.key == target.key {
            return Err(
                DomainError::invalid("into_id", "a case cannot be merged into itself").into(),
            );
        }
        writable(&source)?;
        writable(&target).map_err(|_| {
            StoreError::conflict(
                "case_closed",
                Some("into_id"),
                format!(
                    "case #{} is {} and cannot receive a merge",
                    target.number, target.status
                ),
            )
        })?;
        if source.customer_id != target.customer_id {
            return Err(StoreError::conflict(
                "different_customers",
                Some("into_id"),
                "only cases of the same customer can be merged",
            ));
        }
        for sql in [
            "UPDATE case_messages SET case_id = $1 WHERE case_id = $2",
            "UPDATE attachments SET case_id = $1 WHERE case_id = $2",
            "UPDATE timeline_entries SET case_id = $1 WHERE case_id = $2",
        ] {
            conn.execute(q(sql).bind(target.key).bind(source.key))
                .await?;
        }
        insert_message(
            &mut conn,
            target.key,
            MessageKind::InternalNote,
            Channel::System,
            actor.user_id,
            &format!(
                "工单 #{} 已合并到此工单 / Case #{} was merged into this case: {}",
                source.number, source.number, source.subject
            ),
            now,
        )
        .await?;
        conn.execute(q("UPDATE cases SET status = 'merged', merged_into_id = $1, closed_at = $2, updated_at = $2, version = version + 1 WHERE id = $3").bind(target.key).bind(now).bind(source.key)).await?;
        self.sla_on_status(&mut conn, source.key, "merged", now)
            .await?;
        conn.execute(
            q("UPDATE cases SET updated_at = $1, version = version + 1 WHERE id = $2")
                .bind(now)
                .bind(target.key),
        )
        .await?;
        conn.execute(
            q("INSERT INTO case_status_changes (case_id, from_status, to_status, reason, actor_id, actor_label, at) VALUES ($1, $2, 'merged', $3, $4, $5, $6)")
                .bind(source.key)
                .bind(source.status.as_str())
                .bind(format!("merged into #{}", target.number))
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
        let customer = customer_key(&mut conn, &source.customer_id, "customer_id").await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer,
                case: Some(target.key),
                kind: TimelineKind::CaseMerged,
                channel: Channel::System,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Information,
                summary: format!("#{} → #{}", source.number, target.number),
                data: json!({"source_number": source.number, "target_number": target.number, "source_id": source.id, "target_id": target.id}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        let merged = load_case_by_key(&mut conn, source.key).await?;
        let target_after = load_case_by_key(&mut conn, target.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "merge",
            "case",
            case_id,
            Some(&case_json(&source)),
            Some(&case_json(&merged)),
        )
        .await?;
        conn.commit().await?;
        Ok(target_after)
    }

    pub async fn case_count(&self) -> Result<i64> {
        self.read()
            .scalar(q("SELECT COUNT(*) AS value FROM cases"))
            .await
    }
}
