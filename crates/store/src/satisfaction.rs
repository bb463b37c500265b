//! Follow-up and satisfaction (回访与满意度调查). When a case is solved — by hand or by
//! closing its complaint satisfied — kefu creates a follow-up task for the person
//! accountable for it (首问负责人, else the assignee) and a CSAT request: a link with an
//! unguessable token where the customer answers 1–5 with a reason, in Chinese or
//! English. An agent may also record an answer given on the phone. The answer is kept on
//! the case (for reports) and on the customer's timeline.

use crate::audit;
use crate::cases::load_case_by_key;
use crate::customers::customer_key;
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, Row, q};
use crate::timeline::{self, NewEntry};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id, random_token};
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_domain::{DomainError, Timestamp, optional_text};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// How long a CSAT link stays open.
pub const SURVEY_DAYS: i64 = 14;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FollowUp {
    pub id: String,
    pub case_id: String,
    pub case_number: i64,
    pub owner_id: Option<String>,
    pub due_at: Timestamp,
    /// `open`, `done` or `cancelled`.
    pub status: String,
    pub note: String,
    pub created_at: Timestamp,
    pub done_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FollowUpDone {
    /// What the customer said on the follow-up call.
    pub note: String,
}

#[derive(Debug, Clone, Default)]
pub struct FollowUpFilter {
    pub owner_id: Option<String>,
    pub status: Option<String>,
    /// Only open follow-ups that are due.
    pub due: bool,
}

/// A CSAT request and its answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SatisfactionRequest {
    pub id: String,
    pub case_id: String,
    /// The path of the customer's survey page; prefix it with kefu's public address.
    pub path: String,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    pub answered_at: Option<Timestamp>,
    pub score: Option<i64>,
    pub reason: Option<String>,
    /// `link` (the customer) or `agent` (recorded by a person).
    pub answered_via: Option<String>,
}

/// The customer's answer.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SatisfactionAnswer {
    /// 1 (very dissatisfied) … 5 (very satisfied).
    pub score: i64,
    /// Why; asked especially of scores 1–3.
    pub reason: Option<String>,
}

/// What the survey page shows the customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SurveyView {
    pub case_number: i64,
    pub subject: String,
    pub answered: bool,
    pub expired: bool,
    pub score: Option<i64>,
}

fn follow_up_from_row(row: &Row) -> Result<FollowUp> {
    Ok(FollowUp {
        id: row.get("public_id")?,
        case_id: row.get("case_public_id")?,
        case_number: row.get("number")?,
        owner_id: row.get("owner_public_id")?,
        due_at: Timestamp(row.get("due_at")?),
        status: row.get("status")?,
        note: row.get("note")?,
        created_at: Timestamp(row.get("created_at")?),
        done_at: row.get::<Option<i64>>("done_at")?.map(Timestamp),
    })
}

const FOLLOW_UP_SELECT: &str = "SELECT f.id, f.public_id, k.public_id AS case_public_id, k.number, o.public_id AS owner_public_id, f.due_at, f.status, f.note, f.created_at, f.done_at FROM follow_ups f JOIN cases k ON k.id = f.case_id LEFT JOIN users o ON o.id = f.owner_id";

fn request_from_row(row: &Row) -> Result<SatisfactionRequest> {
    let token: String = row.get("token")?;
    Ok(SatisfactionRequest {
        id: row.get("public_id")?,
        case_id: row.get("case_public_id")?,
        path: format!("/survey/{token}"),
        created_at: Timestamp(row.get("created_at")?),
        expires_at: Timestamp(row.get("expires_at")?),
        answered_at: row.get::<Option<i64>>("answered_at")?.map(Timestamp),
        score: row.get("score")?,
        reason: row.get("reason")?,
        answered_via: row.get("answered_via")?,
    })
}

const REQUEST_SELECT: &str = "SELECT s.id, s.public_id, k.public_id AS case_public_id, s.token, s.created_at, s.expires_at, s.answered_at, s.score, s.reason, s.answered_via FROM satisfaction_requests s JOIN cases k ON k.id = s.case_id";

fn check_answer(answer: &SatisfactionAnswer) -> Result<Option<String>> {
    if !(1..=5).contains(&answer.score) {
        return Err(DomainError::invalid("score", "must be 1, 2, 3, 4 or 5").into());
    }
    let reason = optional_text("reason", answer.reason.as_deref().unwrap_or(""), 2000)?;
    Ok((!reason.is_empty()).then_some(reason))
}

/// Called when a case becomes solved: a follow-up for its owner and a CSAT request,
/// unless the case already has open ones (a case solved, reopened and solved again).
pub(crate) async fn on_solved(
    conn: &mut Conn,
    case_key: i64,
    follow_up_days: i64,
    now: i64,
) -> Result<()> {
    let row = conn
        .fetch_one(
            q("SELECT COALESCE(first_owner_id, assignee_id) AS owner, (SELECT COUNT(*) FROM follow_ups WHERE case_id = $1 AND status = 'open') AS open_follow_ups, (SELECT COUNT(*) FROM satisfaction_requests WHERE case_id = $1 AND answered_at IS NULL AND expires_at > $2) AS open_requests FROM cases WHERE id = $1")
                .bind(case_key)
                .bind(now),
        )
        .await?;
    if row.get::<i64>("open_follow_ups")? == 0 {
        conn.execute(
            q("INSERT INTO follow_ups (public_id, case_id, owner_id, due_at, status, created_at) VALUES ($1, $2, $3, $4, 'open', $5)")
                .bind(new_public_id())
                .bind(case_key)
                .bind(row.get::<Option<i64>>("owner")?)
                .bind(now + follow_up_days * 86_400_000)
                .bind(now),
        )
        .await?;
    }
    if row.get::<i64>("open_requests")? == 0 {
        conn.execute(
            q("INSERT INTO satisfaction_requests (public_id, case_id, token, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(new_public_id())
                .bind(case_key)
                .bind(random_token(24))
                .bind(now)
                .bind(now + SURVEY_DAYS * 86_400_000),
        )
        .await?;
    }
    Ok(())
}

/// Stores an answer on the request, the case and the timeline.
#[allow(clippy::too_many_arguments)]
async fn store_answer(
    conn: &mut Conn,
    request: i64,
    case_key: i64,
    score: i64,
    reason: Option<&str>,
    via: &str,
    actor: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.execute(
        q("UPDATE satisfaction_requests SET answered_at = $1, score = $2, reason = $3, answered_via = $4 WHERE id = $5")
            .bind(now)
            .bind(score)
            .bind(reason)
            .bind(via)
            .bind(request),
    )
    .await?;
    conn.execute(
        q("UPDATE cases SET csat_score = $1, csat_reason = $2, updated_at = $3, version = version + 1 WHERE id = $4")
            .bind(score)
            .bind(reason)
            .bind(now)
            .bind(case_key),
    )
    .await?;
    let case = load_case_by_key(conn, case_key).await?;
    let customer = customer_key(conn, &case.customer_id, "customer_id").await?;
    timeline::insert(
        conn,
        NewEntry {
            customer,
            case: Some(case_key),
            kind: TimelineKind::SurveyAnswer,
            channel: if via == "link" {
                Channel::Web
            } else {
                Channel::Phone
            },
            direction: Direction::CustomerInitiated,
            content_type: ContentType::Opinion,
            summary: format!(
                "#{} 满意度 {score}/5{}",
                case.number,
                reason.map(|r| format!("：{r}")).unwrap_or_default()
            ),
            data: json!({"case_number": case.number, "score": score, "reason": reason, "via": via}),
            actor,
            occurred_at: now,
        },
        now,
    )
    .await?;
    Ok(())
}

impl Store {
    /// The CSAT requests of a case, newest first.
    pub async fn case_satisfaction(&self, case_id: &str) -> Result<Vec<SatisfactionRequest>> {
        let id = parse_public_id("case", case_id)?;
        let mut conn = self.snapshot().await?;
        let exists = conn
            .fetch_optional(q("SELECT id FROM cases WHERE public_id = $1").bind(id.as_str()))
            .await?;
        if exists.is_none() {
            return Err(StoreError::not_found("case", case_id));
        }
        let rows = conn
            .fetch_all(
                crate::sql::q_dynamic(format!(
                    "{REQUEST_SELECT} WHERE k.public_id = $1 ORDER BY s.id DESC"
                ))
                .bind(id.as_str()),
            )
            .await?;
        rows.iter().map(request_from_row).collect()
    }

    /// An agent records the answer the customer gave them (on the phone, in person).
    pub async fn record_satisfaction(
        &self,
        actor: &Actor,
        case_id: &str,
        answer: SatisfactionAnswer,
    ) -> Result<SatisfactionRequest> {
        let now = self.now_ms();
        let reason = check_answer(&answer)?;
        let mut conn = self.write().await?;
        let case = crate::cases::lock_case(&mut conn, case_id).await?;
        let open = conn
            .fetch_optional(
                q("SELECT id FROM satisfaction_requests WHERE case_id = $1 AND answered_at IS NULL ORDER BY id DESC LIMIT 1")
                    .bind(case.key),
            )
            .await?;
        let request = match open {
            Some(row) => row.get::<i64>("id")?,
            None => {
                return Err(StoreError::conflict(
                    "conflict",
                    None,
                    format!(
                        "case #{} has no open satisfaction request: it is asked when the case is solved",
                        case.number
                    ),
                ));
            }
        };
        store_answer(
            &mut conn,
            request,
            case.key,
            answer.score,
            reason.as_deref(),
            "agent",
            actor.user_id,
            now,
        )
        .await?;
        let row = conn
            .fetch_one(
                crate::sql::q_dynamic(format!("{REQUEST_SELECT} WHERE s.id = $1")).bind(request),
            )
            .await?;
        let saved = request_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "answer",
            "satisfaction",
            &saved.id,
            None,
            Some(&json!({"score": answer.score, "reason": reason})),
        )
        .await?;
        conn.commit().await?;
        Ok(saved)
    }

    /// What the customer's survey page shows.
    pub async fn survey(&self, token: &str) -> Result<SurveyView> {
        let now = self.now_ms();
        let not_found = || StoreError::not_found("survey", "given");
        if !crate::public_token_ok(token) {
            return Err(not_found());
        }
        let row = self
            .read()
            .fetch_optional(
                q("SELECT k.number, k.subject, s.answered_at, s.expires_at, s.score FROM satisfaction_requests s JOIN cases k ON k.id = s.case_id WHERE s.token = $1")
                    .bind(token),
            )
            .await?
            .ok_or_else(not_found)?;
        Ok(SurveyView {
            case_number: row.get("number")?,
            subject: row.get("subject")?,
            answered: row.get::<Option<i64>>("answered_at")?.is_some(),
            expired: row.get::<i64>("expires_at")? <= now,
            score: row.get("score")?,
        })
    }

    /// The customer answers through their link, once, before it expires.
    pub async fn answer_survey(
        &self,
        token: &str,
        answer: SatisfactionAnswer,
    ) -> Result<SurveyView> {
        let now = self.now_ms();
        let not_found = || StoreError::not_found("survey", "given");
        if !crate::public_token_ok(token) {
            return Err(not_found());
        }
        let reason = check_answer(&answer)?;
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(
                q("SELECT id, case_id, answered_at, expires_at FROM satisfaction_requests WHERE token = $1")
                    .bind(token),
            )
            .await?
            .ok_or_else(not_found)?;
        if row.get::<Option<i64>>("answered_at")?.is_some() {
            return Err(StoreError::conflict(
                "duplicate",
                None,
                "this survey was already answered — thank you",
            ));
        }
        if row.get::<i64>("expires_at")? <= now {
            return Err(StoreError::conflict(
                "conflict",
                None,
                "this survey has closed",
            ));
        }
        let request: i64 = row.get("id")?;
        let case_key: i64 = row.get("case_id")?;
        // Lock the case as every case write does.
        let public_id: String = conn
            .fetch_one(q("SELECT public_id FROM cases WHERE id = $1").bind(case_key))
            .await?
            .get("public_id")?;
        crate::cases::lock_case(&mut conn, &public_id).await?;
        store_answer(
            &mut conn,
            request,
            case_key,
            answer.score,
            reason.as_deref(),
            "link",
            None,
            now,
        )
        .await?;
        audit::record(
            &mut conn,
            &Actor {
                user_id: None,
                label: "customer".into(),
                authority: None,
            },
            now,
            "answer",
            "satisfaction",
            &public_id,
            None,
            Some(&json!({"score": answer.score, "reason": reason})),
        )
        .await?;
        conn.commit().await?;
        self.survey(token).await
    }

    /// Follow-ups, soonest due first.
    pub async fn follow_ups(
        &self,
        filter: &FollowUpFilter,
        page: &PageRequest,
    ) -> Result<Page<FollowUp>> {
        let now = self.now_ms();
        let limit = page.limit()?;
        let mut builder = Builder::new(FOLLOW_UP_SELECT);
        builder.push(" WHERE 1 = 1");
        if let Some(id) = &filter.owner_id {
            builder.and("o.public_id = $?", parse_public_id("user", id)?);
        }
        if let Some(status) = &filter.status {
            if !["open", "done", "cancelled"].contains(&status.as_str()) {
                return Err(
                    DomainError::invalid("status", "is one of open, done, cancelled").into(),
                );
            }
            builder.and("f.status = $?", status.as_str());
        }
        if filter.due {
            builder.push(" AND f.status = 'open'");
            builder.and("f.due_at <= $?", now);
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
            builder.after(&sort, "f", due.into(), cursor.id);
        }
        builder.push(&format!(" ORDER BY f.due_at, f.id LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push((row.get::<i64>("id")?, follow_up_from_row(row)?));
        }
        let tag = sort.tag();
        let page = crate::audit::finish_page(items, limit, |(id, f)| Cursor {
            k: CursorKey::Int(f.due_at.0),
            id: *id,
            s: tag.clone(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, f)| f).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Marks a follow-up done with what the customer said; it goes on the timeline.
    pub async fn complete_follow_up(
        &self,
        actor: &Actor,
        follow_up_id: &str,
        input: FollowUpDone,
    ) -> Result<FollowUp> {
        let now = self.now_ms();
        let note = kefu_domain::required_text("note", &input.note, 4000)?;
        let id = parse_public_id("follow-up", follow_up_id)?;
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(
                crate::sql::q_dynamic(format!("{FOLLOW_UP_SELECT} WHERE f.public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("follow-up", follow_up_id))?;
        let before = follow_up_from_row(&row)?;
        if before.status != "open" {
            return Err(DomainError::TransitionNotAllowed {
                field: "status",
                from: before.status.clone(),
                to: "done".into(),
                allowed: Vec::new(),
            }
            .into());
        }
        let case = crate::cases::lock_case(&mut conn, &before.case_id).await?;
        conn.execute(
            q("UPDATE follow_ups SET status = 'done', note = $1, done_at = $2, done_by = $3 WHERE public_id = $4 AND status = 'open'")
                .bind(note.as_str())
                .bind(now)
                .bind(actor.user_id)
                .bind(id.as_str()),
        )
        .await?;
        let customer = customer_key(&mut conn, &case.customer_id, "customer_id").await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer,
                case: Some(case.key),
                kind: TimelineKind::Call,
                channel: Channel::Phone,
                direction: Direction::CompanyInitiated,
                content_type: ContentType::Opinion,
                summary: format!("#{} 回访：{note}", case.number),
                data: json!({"case_number": case.number, "follow_up_id": before.id}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        let row = conn
            .fetch_one(
                crate::sql::q_dynamic(format!("{FOLLOW_UP_SELECT} WHERE f.public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?;
        let after = follow_up_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "complete",
            "follow_up",
            &after.id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }
}
