//! Tracking links (进度查询): the transparency principle of complaint handling — the
//! customer can see where their case stands without calling. A link carries an
//! unguessable token (192 random bits); it shows the case's status, the complaint's
//! stage, open promises and the public conversation, never internal notes, review
//! notes or who handled what.

use crate::audit;
use crate::cases::{load_case_by_key, lock_case};
use crate::customers::parse_label;
use crate::sql::q;
use crate::{Actor, Result, Store, StoreError, random_token};
use kefu_domain::cases::{CaseKind, CaseStatus};
use kefu_domain::complaints::ComplaintStage;
use kefu_domain::{Labelled, Timestamp};
use serde::Serialize;

/// The link handed to the customer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrackingLink {
    pub token: String,
    /// The path of the customer's page; prefix it with kefu's public address.
    pub path: String,
    pub created_at: Timestamp,
}

/// A word in both languages.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Bilingual {
    pub value: String,
    pub en: String,
    pub zh: String,
}

fn bilingual<T: Labelled>(value: T) -> Bilingual {
    Bilingual {
        value: value.as_str().into(),
        en: value.label_en().into(),
        zh: value.label_zh().into(),
    }
}

/// One public event on the case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicEvent {
    pub at: Timestamp,
    /// `message_from_customer`, `reply`, `status` or `complaint_stage`.
    pub kind: String,
    /// The message text, for messages.
    pub body: Option<String>,
    /// The new status or stage, for changes.
    pub to: Option<Bilingual>,
}

/// A promise as the customer sees it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PublicPromise {
    pub description: String,
    pub due_at: Timestamp,
    pub status: Bilingual,
}

/// What the customer sees behind a tracking link.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrackedCase {
    pub number: i64,
    pub subject: String,
    pub kind: Bilingual,
    pub status: Bilingual,
    pub complaint_stage: Option<Bilingual>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub promises: Vec<PublicPromise>,
    /// Oldest first.
    pub events: Vec<PublicEvent>,
}

fn link(token: String, created_at: i64) -> TrackingLink {
    TrackingLink {
        path: format!("/track/{token}"),
        token,
        created_at: Timestamp(created_at),
    }
}

impl Store {
    /// The case's tracking link, made on first request and the same afterwards.
    pub async fn tracking_link(&self, actor: &Actor, case_id: &str) -> Result<TrackingLink> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        if let Some(row) = conn
            .fetch_optional(
                q("SELECT token, created_at FROM case_tracking WHERE case_id = $1").bind(case.key),
            )
            .await?
        {
            conn.commit().await?;
            return Ok(link(row.get("token")?, row.get("created_at")?));
        }
        let token = random_token(24);
        conn.execute(
            q("INSERT INTO case_tracking (case_id, token, created_at) VALUES ($1, $2, $3)")
                .bind(case.key)
                .bind(token.as_str())
                .bind(now),
        )
        .await?;
        // The token itself stays out of the audit log: it is a key to the case.
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "tracking_link",
            &case.id,
            None,
            None,
        )
        .await?;
        conn.commit().await?;
        Ok(link(token, now))
    }

    /// Revokes the link; the next request makes a new one.
    pub async fn revoke_tracking_link(&self, actor: &Actor, case_id: &str) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        let removed = conn
            .execute(q("DELETE FROM case_tracking WHERE case_id = $1").bind(case.key))
            .await?;
        if removed == 0 {
            return Err(StoreError::not_found(
                "tracking link",
                format!("of case #{}", case.number),
            ));
        }
        audit::record(
            &mut conn,
            actor,
            now,
            "delete",
            "tracking_link",
            &case.id,
            None,
            None,
        )
        .await?;
        conn.commit().await
    }

    /// What the customer sees. An unknown or revoked token is not found, and says no more.
    pub async fn track(&self, token: &str) -> Result<TrackedCase> {
        let not_found = || StoreError::not_found("tracking link", "given");
        if !crate::public_token_ok(token) {
            return Err(not_found());
        }
        let mut conn = self.snapshot().await?;
        let key: i64 = conn
            .fetch_optional(q("SELECT case_id FROM case_tracking WHERE token = $1").bind(token))
            .await?
            .ok_or_else(not_found)?
            .get("case_id")?;
        let case = load_case_by_key(&mut conn, key).await?;
        let stage: Option<ComplaintStage> = match conn
            .fetch_optional(q("SELECT stage FROM complaints WHERE case_id = $1").bind(key))
            .await?
        {
            Some(row) => Some(parse_label(&row, "stage")?),
            None => None,
        };
        let mut events = Vec::new();
        for row in conn
            .fetch_all(q("SELECT kind, body, created_at FROM case_messages WHERE case_id = $1 AND kind <> 'internal_note' ORDER BY id").bind(key))
            .await?
        {
            let kind: String = row.get("kind")?;
            events.push(PublicEvent {
                at: Timestamp(row.get("created_at")?),
                kind: if kind == "inbound" { "message_from_customer" } else { "reply" }.into(),
                body: Some(row.get("body")?),
                to: None,
            });
        }
        for row in conn
            .fetch_all(
                q("SELECT to_status, at FROM case_status_changes WHERE case_id = $1 ORDER BY id")
                    .bind(key),
            )
            .await?
        {
            let to: CaseStatus = parse_label(&row, "to_status")?;
            events.push(PublicEvent {
                at: Timestamp(row.get("at")?),
                kind: "status".into(),
                body: None,
                to: Some(bilingual(to)),
            });
        }
        for row in conn
            .fetch_all(q("SELECT s.to_stage, s.at FROM complaint_steps s JOIN complaints p ON p.id = s.complaint_id WHERE p.case_id = $1 ORDER BY s.id").bind(key))
            .await?
        {
            let to: ComplaintStage = parse_label(&row, "to_stage")?;
            events.push(PublicEvent {
                at: Timestamp(row.get("at")?),
                kind: "complaint_stage".into(),
                body: None,
                to: Some(bilingual(to)),
            });
        }
        events.sort_by_key(|e| e.at);
        let promises = conn
            .fetch_all(q("SELECT description, due_at, status FROM promises WHERE case_id = $1 AND status <> 'cancelled' ORDER BY due_at, id").bind(key))
            .await?
            .iter()
            .map(|row| {
                let status: kefu_domain::complaints::PromiseStatus = parse_label(row, "status")?;
                Ok(PublicPromise {
                    description: row.get("description")?,
                    due_at: Timestamp(row.get("due_at")?),
                    status: bilingual(status),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let kind: CaseKind = case.kind;
        Ok(TrackedCase {
            number: case.number,
            subject: case.subject,
            kind: bilingual(kind),
            status: bilingual(case.status),
            complaint_stage: stage.map(bilingual),
            created_at: case.created_at,
            updated_at: case.updated_at,
            promises,
            events,
        })
    }
}
