//! Complaint handling (投诉处理) on top of the case model: the complaint record with its
//! four classifications, the steps through the core flow and the escalation ladder,
//! reviews and compensation, the versioned rule set, appeals by the employee named in
//! a complaint, and notifications.
//!
//! Every step is one transaction that locks the complaint (PostgreSQL: `FOR UPDATE`;
//! SQLite has one writer), checks the step against the machine, the actor's role and the
//! rule set the complaint was recorded under, and writes the step, its side effects, a
//! timeline entry and an audit record together — so a second concurrent step on the
//! same complaint sees the first one's stage and gets 409, never a half-applied step.

use crate::audit;
use crate::cases::{Case, key_of, load_case_by_key, lock_case, writable};
use crate::customers::{customer_key, parse_label, parse_optional_label};
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Builder, Conn, Dialect, Row, q};
use crate::timeline::{self, NewEntry};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::access::Role;
use kefu_domain::cases::{CaseKind, Priority};
use kefu_domain::complaints::*;
use kefu_domain::timeline::{Channel, ContentType, Direction, TimelineKind};
use kefu_domain::{DomainError, Labelled, Timestamp, nullable, optional_text, required_text};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// A complaint as the API shows it: the record, where it stands, and who owns it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Complaint {
    #[serde(skip)]
    pub key: i64,
    #[serde(skip)]
    pub case_key: i64,
    pub case_id: String,
    pub case_number: i64,
    pub customer_id: String,
    pub stage: ComplaintStage,
    /// Where the complaint may go from here.
    pub allowed_next: Vec<ComplaintStage>,
    pub severity: Severity,
    pub behaviour: Behaviour,
    pub purpose: Purpose,
    pub cause: Cause,
    pub fault_side: FaultSide,
    pub fault_detail: Option<FaultDetail>,
    pub dissatisfaction: Dissatisfaction,
    /// The customer's psychological needs (投诉心理).
    pub needs: Vec<Need>,
    /// The key points recorded while listening.
    pub key_points: String,
    pub validity: Validity,
    pub validity_reason: String,
    /// The product or service complained about, for reports.
    pub product: String,
    pub reputation_risk: bool,
    /// The employee the complaint names, who is told the facts and may appeal.
    pub subject_user_id: Option<String>,
    /// When an appeal by the named employee was upheld: the complaint no longer counts
    /// against them.
    pub subject_cleared_at: Option<Timestamp>,
    /// 0 front line, 1 internal review, 2 external review, 3 legal advice.
    pub escalation_level: i64,
    pub escalation_trigger: Option<EscalationTrigger>,
    pub escalated_at: Option<Timestamp>,
    /// The rule set the complaint is handled under.
    pub rule_set_version: i64,
    /// Accountable from first contact to the end (首问负责制), through every transfer
    /// and escalation.
    pub first_owner_id: Option<String>,
    pub assignee_id: Option<String>,
    pub team_id: Option<String>,
    pub stage_changed_at: Timestamp,
    pub resolved_at: Option<Timestamp>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// The record taken while listening to the customer. Only the classifications and the
/// key points are required.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewComplaint {
    pub severity: Severity,
    pub behaviour: Behaviour,
    pub purpose: Purpose,
    pub cause: Cause,
    /// `undetermined` unless said (or implied by `fault_detail`).
    pub fault_side: Option<FaultSide>,
    pub fault_detail: Option<FaultDetail>,
    pub dissatisfaction: Dissatisfaction,
    /// Suggested from the behaviour and the kind of dissatisfaction when not given.
    pub needs: Option<Vec<Need>>,
    pub key_points: String,
    pub validity: Option<Validity>,
    pub validity_reason: Option<String>,
    pub product: Option<String>,
    pub reputation_risk: Option<bool>,
    pub subject_user_id: Option<String>,
}

/// A change to the record; absent fields stay, `null` clears the nullable ones.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplaintPatch {
    pub severity: Option<Severity>,
    pub behaviour: Option<Behaviour>,
    pub purpose: Option<Purpose>,
    pub cause: Option<Cause>,
    pub fault_side: Option<FaultSide>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<FaultDetail>)]
    pub fault_detail: Option<Option<FaultDetail>>,
    pub dissatisfaction: Option<Dissatisfaction>,
    pub needs: Option<Vec<Need>>,
    pub key_points: Option<String>,
    pub validity: Option<Validity>,
    pub validity_reason: Option<String>,
    pub product: Option<String>,
    pub reputation_risk: Option<bool>,
    #[serde(default, deserialize_with = "nullable")]
    #[schema(value_type = Option<String>)]
    pub subject_user_id: Option<Option<String>>,
}

/// One step in the complaint's history.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComplaintStep {
    pub from: Option<ComplaintStage>,
    pub to: ComplaintStage,
    pub note: String,
    pub proposal: Option<String>,
    pub decision: Option<String>,
    /// Set when the step was an escalation, by hand or automatic.
    pub trigger: Option<EscalationTrigger>,
    pub actor: String,
    pub at: Timestamp,
}

/// An internal or external review.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Review {
    pub id: String,
    /// `internal` or `external`.
    pub level: String,
    pub body: Option<ExternalBody>,
    pub reason: String,
    pub opened_at: Timestamp,
    pub decision: Option<String>,
    pub decided_at: Option<Timestamp>,
    /// Whether the customer accepted the decision; `null` while undecided.
    pub accepted: Option<bool>,
}

/// Money offered to the customer and what they said.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Compensation {
    pub id: String,
    pub amount_cents: i64,
    pub currency: String,
    pub description: String,
    /// `offered`, `accepted` or `rejected`.
    pub status: String,
    pub offered_at: Timestamp,
    pub decided_at: Option<Timestamp>,
}

/// An appeal by the employee a complaint names (申诉).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Appeal {
    pub id: String,
    pub case_id: String,
    pub employee_id: String,
    pub statement: String,
    pub status: AppealStatus,
    pub decision_reason: String,
    pub decided_by: Option<String>,
    pub created_at: Timestamp,
    pub decided_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAppeal {
    /// The employee's account of the facts.
    pub statement: String,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AppealDecision {
    /// `upheld` or `rejected`.
    pub status: AppealStatus,
    pub reason: String,
}

/// Everything the complaint page shows.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComplaintDetail {
    #[serde(flatten)]
    pub complaint: Complaint,
    pub steps: Vec<ComplaintStep>,
    pub reviews: Vec<Review>,
    pub compensations: Vec<Compensation>,
    pub appeals: Vec<Appeal>,
    /// The customer's psychological needs with labels, for the agent's view.
    pub needs_labels: Vec<Label>,
}

/// A vocabulary value with its labels.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Label {
    pub value: String,
    pub en: String,
    pub zh: String,
}

impl Label {
    pub fn of<T: Labelled>(value: T) -> Label {
        Label {
            value: value.as_str().into(),
            en: value.label_en().into(),
            zh: value.label_zh().into(),
        }
    }
}

/// A published version of the complaint rules.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RuleSet {
    pub version: i64,
    pub rules: ComplaintRules,
    pub note: String,
    pub created_by: Option<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRuleSet {
    pub rules: ComplaintRules,
    /// Why the rules changed.
    pub note: String,
    /// The version these rules were edited from. When another version was published
    /// since, publishing is refused (409 `rule_set_changed`) instead of silently
    /// replacing rules the editor never saw.
    #[serde(default)]
    pub based_on_version: Option<i64>,
}

/// Filters for the complaint list.
#[derive(Debug, Clone, Default)]
pub struct ComplaintFilter {
    pub stage: Option<ComplaintStage>,
    pub open: Option<bool>,
    pub severity: Option<Severity>,
    pub cause: Option<Cause>,
    pub behaviour: Option<Behaviour>,
    pub min_escalation_level: Option<i64>,
    pub subject_user_id: Option<String>,
    pub first_owner_id: Option<String>,
}

macro_rules! complaint_select {
    () => {
        "SELECT p.id, p.case_id, k.public_id AS case_public_id, k.number AS case_number, cu.public_id AS customer_public_id, p.stage, p.severity, p.behaviour, p.purpose, p.cause, p.fault_side, p.fault_detail, p.dissatisfaction, p.needs, p.key_points, p.validity, p.validity_reason, p.product, p.reputation_risk, su.public_id AS subject_public_id, p.subject_cleared_at, p.escalation_level, p.escalation_trigger, p.escalated_at, p.rule_set_version, fo.public_id AS first_owner_public_id, asg.public_id AS assignee_public_id, t.public_id AS team_public_id, p.stage_changed_at, p.resolved_at, p.created_at, p.updated_at, p.version FROM complaints p JOIN cases k ON k.id = p.case_id JOIN customers cu ON cu.id = k.customer_id LEFT JOIN users su ON su.id = p.subject_user_id LEFT JOIN users fo ON fo.id = k.first_owner_id LEFT JOIN users asg ON asg.id = k.assignee_id LEFT JOIN teams t ON t.id = k.team_id"
    };
}

fn complaint_from_row(row: &Row) -> Result<Complaint> {
    let stage: ComplaintStage = parse_label(row, "stage")?;
    let needs: String = row.get("needs")?;
    let needs: Vec<Need> = serde_json::from_str(&needs)
        .map_err(|e| StoreError::Database(format!("stored needs: {e}")))?;
    Ok(Complaint {
        key: row.get("id")?,
        case_key: row.get("case_id")?,
        case_id: row.get("case_public_id")?,
        case_number: row.get("case_number")?,
        customer_id: row.get("customer_public_id")?,
        stage,
        allowed_next: stage.allowed_next().to_vec(),
        severity: parse_label(row, "severity")?,
        behaviour: parse_label(row, "behaviour")?,
        purpose: parse_label(row, "purpose")?,
        cause: parse_label(row, "cause")?,
        fault_side: parse_label(row, "fault_side")?,
        fault_detail: parse_optional_label(row, "fault_detail")?,
        dissatisfaction: parse_label(row, "dissatisfaction")?,
        needs,
        key_points: row.get("key_points")?,
        validity: parse_label(row, "validity")?,
        validity_reason: row.get("validity_reason")?,
        product: row.get("product")?,
        reputation_risk: row.get("reputation_risk")?,
        subject_user_id: row.get("subject_public_id")?,
        subject_cleared_at: row.get::<Option<i64>>("subject_cleared_at")?.map(Timestamp),
        escalation_level: row.get("escalation_level")?,
        escalation_trigger: parse_optional_label(row, "escalation_trigger")?,
        escalated_at: row.get::<Option<i64>>("escalated_at")?.map(Timestamp),
        rule_set_version: row.get("rule_set_version")?,
        first_owner_id: row.get("first_owner_public_id")?,
        assignee_id: row.get("assignee_public_id")?,
        team_id: row.get("team_public_id")?,
        stage_changed_at: Timestamp(row.get("stage_changed_at")?),
        resolved_at: row.get::<Option<i64>>("resolved_at")?.map(Timestamp),
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

/// The complaint on a case, locked for a write on PostgreSQL.
async fn fetch_complaint(conn: &mut Conn, case_key: i64, lock: bool) -> Result<Option<Complaint>> {
    let sql = if lock && conn.dialect() == Dialect::Postgres {
        concat!(complaint_select!(), " WHERE p.case_id = $1 FOR UPDATE OF p")
    } else {
        concat!(complaint_select!(), " WHERE p.case_id = $1")
    };
    conn.fetch_optional(q(sql).bind(case_key))
        .await?
        .map(|row| complaint_from_row(&row))
        .transpose()
}

async fn case_key_of(conn: &mut Conn, case_id: &str) -> Result<i64> {
    let id = parse_public_id("case", case_id)?;
    conn.fetch_optional(q("SELECT id FROM cases WHERE public_id = $1").bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("case", case_id))?
        .get("id")
}

fn no_complaint(case: &Case) -> StoreError {
    StoreError::not_found("complaint", format!("on case #{}", case.number))
}

fn complaint_json(complaint: &Complaint) -> serde_json::Value {
    serde_json::to_value(complaint).unwrap_or_default()
}

/// The actor's role: the user's, or admin for kefu itself and the command line.
async fn role_of(conn: &mut Conn, actor: &Actor) -> Result<Role> {
    if let Some(role) = actor.authority {
        return Ok(role);
    }
    match actor.user_id {
        Some(key) => {
            let row = conn
                .fetch_one(q("SELECT role FROM users WHERE id = $1").bind(key))
                .await?;
            parse_label(&row, "role")
        }
        None => Ok(Role::Admin),
    }
}

/// The rule set in force: the newest published version, or the defaults as version 1,
/// published the first time anyone asks.
pub(crate) async fn current_rules(conn: &mut Conn, now: i64) -> Result<(i64, ComplaintRules)> {
    if let Some(row) = conn
        .fetch_optional(q(
            "SELECT version, rules FROM complaint_rule_sets ORDER BY version DESC LIMIT 1",
        ))
        .await?
    {
        let rules: String = row.get("rules")?;
        return Ok((
            row.get("version")?,
            serde_json::from_str(&rules)
                .map_err(|e| StoreError::Database(format!("stored rules: {e}")))?,
        ));
    }
    let rules = ComplaintRules::default();
    conn.execute(
        q("INSERT INTO complaint_rule_sets (version, rules, note, created_by, created_at) VALUES (1, $1, 'kefu defaults', NULL, $2) ON CONFLICT (version) DO NOTHING")
            .bind(serde_json::to_string(&rules).unwrap_or_default())
            .bind(now),
    )
    .await?;
    Ok((1, rules))
}

async fn rules_version(conn: &mut Conn, version: i64) -> Result<ComplaintRules> {
    let row = conn
        .fetch_optional(q("SELECT rules FROM complaint_rule_sets WHERE version = $1").bind(version))
        .await?
        .ok_or_else(|| StoreError::Database(format!("rule set {version} is missing")))?;
    let rules: String = row.get("rules")?;
    serde_json::from_str(&rules).map_err(|e| StoreError::Database(format!("stored rules: {e}")))
}

/// How many different teams have held the case (its current team and every transfer).
async fn teams_involved(conn: &mut Conn, case_key: i64) -> Result<u32> {
    let count: i64 = conn
        .scalar(
            q("SELECT COUNT(*) AS value FROM (SELECT team_id FROM cases WHERE id = $1 AND team_id IS NOT NULL UNION SELECT from_team_id FROM case_transfers WHERE case_id = $1 AND from_team_id IS NOT NULL UNION SELECT to_team_id FROM case_transfers WHERE case_id = $1 AND to_team_id IS NOT NULL) x")
                .bind(case_key),
        )
        .await?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// Writes a notification for one user, in both languages.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn notify(
    conn: &mut Conn,
    user: i64,
    kind: &str,
    case: Option<i64>,
    en: &str,
    zh: &str,
    data: serde_json::Value,
    now: i64,
) -> Result<()> {
    conn.execute(
        q("INSERT INTO notifications (public_id, user_id, kind, case_id, message_en, message_zh, data, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
            .bind(new_public_id())
            .bind(user)
            .bind(kind)
            .bind(case)
            .bind(en)
            .bind(zh)
            .bind(data.to_string())
            .bind(now),
    )
    .await?;
    Ok(())
}

/// The people who answer for a case's escalations: the supervisors of its team, or
/// every supervisor when the team has none, or the admins when there are no supervisors.
pub(crate) async fn supervisors_for(conn: &mut Conn, case_key: i64) -> Result<Vec<i64>> {
    let team: Option<i64> = conn
        .fetch_one(q("SELECT team_id FROM cases WHERE id = $1").bind(case_key))
        .await?
        .get("team_id")?;
    supervisors_of_team(conn, team).await
}

/// [`supervisors_for`] by team.
pub(crate) async fn supervisors_of_team(conn: &mut Conn, team: Option<i64>) -> Result<Vec<i64>> {
    if let Some(team) = team {
        let rows = conn
            .fetch_all(q("SELECT id FROM users WHERE team_id = $1 AND role = 'supervisor' AND active = TRUE ORDER BY id").bind(team))
            .await?;
        if !rows.is_empty() {
            return rows.iter().map(|r| r.get("id")).collect();
        }
    }
    for sql in [
        "SELECT id FROM users WHERE role = 'supervisor' AND active = TRUE ORDER BY id",
        "SELECT id FROM users WHERE role = 'admin' AND active = TRUE ORDER BY id",
    ] {
        let rows = conn.fetch_all(q(sql)).await?;
        if !rows.is_empty() {
            return rows.iter().map(|r| r.get("id")).collect();
        }
    }
    Ok(Vec::new())
}

struct Checked {
    fault_side: FaultSide,
    fault_detail: Option<FaultDetail>,
    needs: Vec<Need>,
    key_points: String,
    validity: Validity,
    validity_reason: String,
    product: String,
}

/// The rules that hold between the record's fields, for a new record and after a patch.
#[allow(clippy::too_many_arguments)]
fn check_record(
    fault_side: Option<FaultSide>,
    fault_detail: Option<FaultDetail>,
    needs: Option<Vec<Need>>,
    behaviour: Behaviour,
    dissatisfaction: Dissatisfaction,
    key_points: &str,
    validity: Validity,
    validity_reason: &str,
    product: &str,
) -> Result<Checked> {
    let fault_side = match (fault_side, fault_detail) {
        (Some(side), Some(detail)) if side != detail.side() => {
            return Err(DomainError::invalid(
                "fault_detail",
                format!(
                    "`{detail}` is a fault of the {} side, not of `{side}`",
                    detail.side()
                ),
            )
            .into());
        }
        (Some(side), _) => side,
        (None, Some(detail)) => detail.side(),
        (None, None) => FaultSide::Undetermined,
    };
    let mut needs = needs.unwrap_or_else(|| suggested_needs(behaviour, dissatisfaction));
    needs.sort();
    needs.dedup();
    let validity_reason = optional_text("validity_reason", validity_reason, 2000)?;
    if validity != Validity::Pending && validity_reason.is_empty() {
        return Err(DomainError::invalid(
            "validity_reason",
            "say why the complaint is or is not valid",
        )
        .into());
    }
    Ok(Checked {
        fault_side,
        fault_detail,
        needs,
        key_points: required_text("key_points", key_points, 5000)?,
        validity,
        validity_reason,
        product: optional_text("product", product, 200)?,
    })
}

/// The key of a user already referenced (who may since have been deactivated).
async fn any_user_key(conn: &mut Conn, public_id: &str) -> Result<i64> {
    conn.fetch_one(q("SELECT id FROM users WHERE public_id = $1").bind(public_id))
        .await?
        .get("id")
}

/// A user's internal key from a public id, for fields naming an active user.
async fn user_key(conn: &mut Conn, field: &'static str, public_id: &str) -> Result<i64> {
    key_of(conn, "users", "user", field, public_id).await
}

impl Store {
    /// Records the complaint on a case of kind complaint (受理登记). A serious complaint,
    /// a reputation risk or a case that has passed through several teams is escalated
    /// to internal review at once when the rule set says so.
    pub async fn record_complaint(
        &self,
        actor: &Actor,
        case_id: &str,
        input: NewComplaint,
    ) -> Result<ComplaintDetail> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        if case.kind != CaseKind::Complaint {
            return Err(StoreError::conflict(
                "not_a_complaint",
                Some("kind"),
                format!(
                    "case #{} is a {} case; a complaint is recorded on a case of kind complaint",
                    case.number, case.kind
                ),
            ));
        }
        if fetch_complaint(&mut conn, case.key, false).await?.is_some() {
            return Err(StoreError::conflict(
                "duplicate",
                None,
                format!(
                    "case #{} already has its complaint record; change it with PATCH",
                    case.number
                ),
            ));
        }
        let validity = input.validity.unwrap_or(Validity::Pending);
        let checked = check_record(
            input.fault_side,
            input.fault_detail,
            input.needs.clone(),
            input.behaviour,
            input.dissatisfaction,
            &input.key_points,
            validity,
            input.validity_reason.as_deref().unwrap_or(""),
            input.product.as_deref().unwrap_or(""),
        )?;
        let subject = match &input.subject_user_id {
            Some(id) => Some(user_key(&mut conn, "subject_user_id", id).await?),
            None => None,
        };
        let (rule_version, rules) = current_rules(&mut conn, now).await?;
        let key: i64 = conn
            .scalar(
                q("INSERT INTO complaints (case_id, stage, severity, behaviour, purpose, cause, fault_side, fault_detail, dissatisfaction, needs, key_points, validity, validity_reason, product, reputation_risk, subject_user_id, rule_set_version, stage_changed_at, created_at, updated_at) VALUES ($1, 'recorded', $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $17, $17) RETURNING id AS value")
                    .bind(case.key)
                    .bind(input.severity.as_str())
                    .bind(input.behaviour.as_str())
                    .bind(input.purpose.as_str())
                    .bind(input.cause.as_str())
                    .bind(checked.fault_side.as_str())
                    .bind(checked.fault_detail.map(Labelled::as_str))
                    .bind(input.dissatisfaction.as_str())
                    .bind(serde_json::to_string(&checked.needs).unwrap_or_default())
                    .bind(checked.key_points.as_str())
                    .bind(checked.validity.as_str())
                    .bind(checked.validity_reason.as_str())
                    .bind(checked.product.as_str())
                    .bind(input.reputation_risk.unwrap_or(false))
                    .bind(subject)
                    .bind(rule_version)
                    .bind(now),
            )
            .await?;
        insert_step(
            &mut conn,
            key,
            None,
            ComplaintStage::Recorded,
            "",
            None,
            None,
            None,
            actor,
            now,
        )
        .await?;
        let customer = customer_key(&mut conn, &case.customer_id, "customer_id").await?;
        timeline::insert(
            &mut conn,
            NewEntry {
                customer,
                case: Some(case.key),
                kind: TimelineKind::Complaint,
                channel: Channel::System,
                direction: Direction::CustomerInitiated,
                content_type: ContentType::Emotion,
                summary: format!(
                    "#{} 投诉受理：{}，{}，{}",
                    case.number,
                    input.severity.label_zh(),
                    input.cause.label_zh(),
                    input.behaviour.label_zh()
                ),
                data: json!({"case_number": case.number, "stage": ComplaintStage::Recorded, "severity": input.severity, "cause": input.cause, "behaviour": input.behaviour, "purpose": input.purpose}),
                actor: actor.user_id,
                occurred_at: now,
            },
            now,
        )
        .await?;
        if let Some(subject) = subject {
            notify_subject(&mut conn, subject, &case, &checked.key_points, now).await?;
        }
        let complaint = fetch_complaint(&mut conn, case.key, false)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "complaint",
            &case.id,
            None,
            Some(&complaint_json(&complaint)),
        )
        .await?;
        self.sla_refresh(&mut conn, case.key, now).await?;
        auto_escalate(&mut conn, complaint, &case, &rules, now).await?;
        if crate::automations::run(
            &mut conn,
            kefu_domain::automation::Trigger::ComplaintRecorded,
            case.key,
            None,
            now,
        )
        .await?
        {
            self.sla_refresh(&mut conn, case.key, now).await?;
        }
        self.sla_follow_team(&mut conn, case.key, now).await?;
        let complaint = fetch_complaint(&mut conn, case.key, false)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        let detail = complaint_detail(&mut conn, complaint).await?;
        conn.commit().await?;
        Ok(detail)
    }

    /// The complaint on a case with its history.
    pub async fn complaint(&self, case_id: &str) -> Result<ComplaintDetail> {
        let mut conn = self.snapshot().await?;
        let key = case_key_of(&mut conn, case_id).await?;
        let complaint = fetch_complaint(&mut conn, key, false)
            .await?
            .ok_or_else(|| StoreError::not_found("complaint", format!("on case {case_id}")))?;
        complaint_detail(&mut conn, complaint).await
    }

    /// Changes the record. Raising the severity, flagging a reputation risk or naming a
    /// new employee has the same effects as recording them at the start.
    pub async fn update_complaint(
        &self,
        actor: &Actor,
        case_id: &str,
        patch: ComplaintPatch,
        expected_version: Option<i64>,
    ) -> Result<ComplaintDetail> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        let before = fetch_complaint(&mut conn, case.key, true)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "complaint",
                expected,
                current: before.version,
            });
        }
        // Fairness: the employee a complaint names cannot judge it or take their name off
        // it, and only a supervisor moves a complaint from one named employee to another.
        let named = match &before.subject_user_id {
            Some(id) => Some(any_user_key(&mut conn, id).await?),
            None => None,
        };
        if named.is_some()
            && actor.user_id == named
            && (patch.subject_user_id.is_some() || patch.validity.is_some())
        {
            return Err(StoreError::conflict(
                "role_required",
                Some("subject_user_id"),
                "the employee a complaint names cannot change who it names or whether it is valid",
            ));
        }
        if named.is_some()
            && patch.subject_user_id.is_some()
            && role_rank(role_of(&mut conn, actor).await?) < role_rank(Role::Supervisor)
        {
            return Err(StoreError::conflict(
                "role_required",
                Some("subject_user_id"),
                "changing the employee a complaint names takes a supervisor",
            ));
        }
        let behaviour = patch.behaviour.unwrap_or(before.behaviour);
        let dissatisfaction = patch.dissatisfaction.unwrap_or(before.dissatisfaction);
        let fault_detail = patch.fault_detail.unwrap_or(before.fault_detail);
        // A new detail with no side given implies its side; otherwise the side stays.
        let fault_side = match (patch.fault_side, patch.fault_detail) {
            (Some(side), _) => Some(side),
            (None, Some(Some(_))) => None,
            (None, _) => Some(before.fault_side),
        };
        let checked = check_record(
            fault_side,
            fault_detail,
            Some(patch.needs.clone().unwrap_or_else(|| before.needs.clone())),
            behaviour,
            dissatisfaction,
            patch.key_points.as_deref().unwrap_or(&before.key_points),
            patch.validity.unwrap_or(before.validity),
            patch
                .validity_reason
                .as_deref()
                .unwrap_or(&before.validity_reason),
            patch.product.as_deref().unwrap_or(&before.product),
        )?;
        let subject = match &patch.subject_user_id {
            Some(Some(id)) => Some(user_key(&mut conn, "subject_user_id", id).await?),
            Some(None) => None,
            None => match &before.subject_user_id {
                Some(id) => Some(any_user_key(&mut conn, id).await?),
                None => None,
            },
        };
        let severity = patch.severity.unwrap_or(before.severity);
        conn.execute(
            q("UPDATE complaints SET severity = $1, behaviour = $2, purpose = $3, cause = $4, fault_side = $5, fault_detail = $6, dissatisfaction = $7, needs = $8, key_points = $9, validity = $10, validity_reason = $11, product = $12, reputation_risk = $13, subject_user_id = $14, updated_at = $15, version = version + 1 WHERE id = $16")
                .bind(severity.as_str())
                .bind(behaviour.as_str())
                .bind(patch.purpose.unwrap_or(before.purpose).as_str())
                .bind(patch.cause.unwrap_or(before.cause).as_str())
                .bind(checked.fault_side.as_str())
                .bind(checked.fault_detail.map(Labelled::as_str))
                .bind(dissatisfaction.as_str())
                .bind(serde_json::to_string(&checked.needs).unwrap_or_default())
                .bind(checked.key_points.as_str())
                .bind(checked.validity.as_str())
                .bind(checked.validity_reason.as_str())
                .bind(checked.product.as_str())
                .bind(patch.reputation_risk.unwrap_or(before.reputation_risk))
                .bind(subject)
                .bind(now)
                .bind(before.key),
        )
        .await?;
        let mut after = fetch_complaint(&mut conn, case.key, false)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        if after.subject_user_id != before.subject_user_id && after.subject_cleared_at.is_some() {
            // An upheld appeal cleared the person named before, not whoever is named now.
            conn.execute(
                q("UPDATE complaints SET subject_cleared_at = NULL WHERE id = $1").bind(before.key),
            )
            .await?;
            after.subject_cleared_at = None;
        }
        if let Some(subject) = subject
            && after.subject_user_id != before.subject_user_id
        {
            notify_subject(&mut conn, subject, &case, &checked.key_points, now).await?;
        }
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "complaint",
            &case.id,
            Some(&complaint_json(&before)),
            Some(&complaint_json(&after)),
        )
        .await?;
        if after.severity != before.severity {
            self.sla_refresh(&mut conn, case.key, now).await?;
        }
        let rules = rules_version(&mut conn, after.rule_set_version).await?;
        let after = auto_escalate(&mut conn, after, &case, &rules, now).await?;
        let detail = complaint_detail(&mut conn, after).await?;
        conn.commit().await?;
        Ok(detail)
    }

    /// Moves the complaint one step along its flow. An illegal step is a 409 that lists
    /// the allowed ones; a step beyond the actor's role or authority is refused with the
    /// limit named; nothing is written unless the whole step is.
    pub async fn complaint_step(
        &self,
        actor: &Actor,
        case_id: &str,
        input: StepInput,
        expected_version: Option<i64>,
    ) -> Result<ComplaintDetail> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        let before = fetch_complaint(&mut conn, case.key, true)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "complaint",
                expected,
                current: before.version,
            });
        }
        let role = role_of(&mut conn, actor).await?;
        let rules = rules_version(&mut conn, before.rule_set_version).await?;
        let step = check_step(before.stage, &input, role, &rules).map_err(|denied| match denied {
            StepDenied::Invalid(error) => StoreError::Invalid(error),
            StepDenied::Role { required } => StoreError::conflict(
                "role_required",
                Some("stage"),
                format!(
                    "moving a complaint from {} to {} takes a {} or above; you are {}",
                    step_label(before.stage),
                    input.stage.map(step_label).unwrap_or_default(),
                    required,
                    role
                ),
            ),
            StepDenied::Authority { limit_cents } => StoreError::conflict(
                "authority_exceeded",
                Some("compensation.amount_cents"),
                format!(
                    "the offer is above your limit of {} cents under rule set {} (as {role}); escalate the complaint to internal review instead",
                    limit_cents, before.rule_set_version
                ),
            ),
        })?;
        writable(&case)?;
        // The limit is on what the customer is offered in all, not on each offer.
        if let Some((amount, _, _)) = &step.compensation
            && let Some(limit) = rules.compensation_limit(role)
        {
            let standing: i64 = conn
                .scalar(
                    q("SELECT CAST(COALESCE(SUM(amount_cents), 0) AS BIGINT) AS value FROM compensations WHERE case_id = $1 AND status <> 'rejected'")
                        .bind(case.key),
                )
                .await?;
            if standing.saturating_add(*amount) > limit {
                return Err(StoreError::conflict(
                    "authority_exceeded",
                    Some("compensation.amount_cents"),
                    format!(
                        "with the {standing} cents already offered, the total is above your limit of {limit} cents under rule set {} (as {role}); escalate the complaint to internal review instead",
                        before.rule_set_version
                    ),
                ));
            }
        }
        let trigger = match (step.from, step.to) {
            (
                ComplaintStage::SolutionProposed | ComplaintStage::FollowUp,
                ComplaintStage::InternalReview,
            ) => Some(EscalationTrigger::CustomerRejected),
            (_, ComplaintStage::InternalReview) => Some(EscalationTrigger::Manual),
            (_, ComplaintStage::ExternalReview) => Some(EscalationTrigger::CustomerRejected),
            _ => None,
        };
        apply_step(&mut conn, actor, &case, &before, &step, trigger, now).await?;
        let after = fetch_complaint(&mut conn, case.key, false)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        audit::record(
            &mut conn,
            actor,
            now,
            "transition",
            "complaint",
            &case.id,
            Some(&complaint_json(&before)),
            Some(&complaint_json(&after)),
        )
        .await?;
        let detail = complaint_detail(&mut conn, after).await?;
        conn.commit().await?;
        Ok(detail)
    }

    /// Lists complaints, newest first.
    pub async fn complaints(
        &self,
        filter: &ComplaintFilter,
        page: &PageRequest,
    ) -> Result<Page<Complaint>> {
        let limit = page.limit()?;
        let mut builder = Builder::new(complaint_select!());
        builder.push(" WHERE 1 = 1");
        for (column, value) in [
            ("p.stage", filter.stage.map(Labelled::as_str)),
            ("p.severity", filter.severity.map(Labelled::as_str)),
            ("p.cause", filter.cause.map(Labelled::as_str)),
            ("p.behaviour", filter.behaviour.map(Labelled::as_str)),
        ] {
            if let Some(value) = value {
                builder.and(&format!("{column} = $?"), value);
            }
        }
        match filter.open {
            Some(true) => {
                builder.push(" AND p.stage NOT IN ('closed', 'legal_advised')");
            }
            Some(false) => {
                builder.push(" AND p.stage IN ('closed', 'legal_advised')");
            }
            None => {}
        }
        if let Some(level) = filter.min_escalation_level {
            builder.and("p.escalation_level >= $?", level);
        }
        if let Some(id) = &filter.subject_user_id {
            builder.and("su.public_id = $?", parse_public_id("user", id)?);
        }
        if let Some(id) = &filter.first_owner_id {
            builder.and("fo.public_id = $?", parse_public_id("user", id)?);
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, "complaints")?;
            builder.and("p.id < $?", cursor.id);
        }
        builder.push(&format!(" ORDER BY p.id DESC LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let items = rows
            .iter()
            .map(complaint_from_row)
            .collect::<Result<Vec<_>>>()?;
        Ok(crate::audit::finish_page(items, limit, |c| Cursor {
            k: CursorKey::Int(c.key),
            id: c.key,
            s: "complaints".into(),
        }))
    }

    /// The employee a complaint names files an appeal (申诉); a supervisor decides it.
    pub async fn file_appeal(
        &self,
        actor: &Actor,
        case_id: &str,
        input: NewAppeal,
    ) -> Result<Appeal> {
        let now = self.now_ms();
        let statement = required_text("statement", &input.statement, 5000)?;
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        let complaint = fetch_complaint(&mut conn, case.key, true)
            .await?
            .ok_or_else(|| no_complaint(&case))?;
        let subject = match &complaint.subject_user_id {
            Some(id) => Some(any_user_key(&mut conn, id).await?),
            None => None,
        };
        let Some(employee) = actor.user_id.filter(|user| Some(*user) == subject) else {
            return Err(StoreError::conflict(
                "not_the_subject",
                None,
                "only the employee the complaint names may appeal it",
            ));
        };
        let earlier = conn
            .fetch_optional(
                q("SELECT status FROM complaint_appeals WHERE complaint_id = $1 AND employee_id = $2 ORDER BY id DESC LIMIT 1")
                    .bind(complaint.key)
                    .bind(employee),
            )
            .await?;
        if let Some(row) = earlier {
            let status: String = row.get("status")?;
            return Err(if status == AppealStatus::Pending.as_str() {
                StoreError::conflict(
                    "duplicate",
                    None,
                    "an appeal on this complaint is already awaiting a decision",
                )
            } else {
                StoreError::conflict(
                    "appeal_decided",
                    None,
                    "your appeal on this complaint was decided; a decision is final",
                )
            });
        }
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO complaint_appeals (public_id, complaint_id, employee_id, statement, status, created_at) VALUES ($1, $2, $3, $4, 'pending', $5)")
                .bind(id.as_str())
                .bind(complaint.key)
                .bind(employee)
                .bind(statement.as_str())
                .bind(now),
        )
        .await?;
        for supervisor in supervisors_for(&mut conn, case.key).await? {
            notify(
                &mut conn,
                supervisor,
                "appeal_filed",
                Some(case.key),
                &format!(
                    "{} appeals the complaint on case #{}",
                    actor.label, case.number
                ),
                &format!("{} 对工单 #{} 的投诉提出申诉", actor.label, case.number),
                json!({"case_id": case.id, "appeal_id": id}),
                now,
            )
            .await?;
        }
        let appeal = load_appeal(&mut conn, &id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "appeal",
            &id,
            None,
            serde_json::to_value(&appeal).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(appeal)
    }

    /// A supervisor decides an appeal; the employee is told the decision and its reason.
    pub async fn decide_appeal(
        &self,
        actor: &Actor,
        appeal_id: &str,
        input: AppealDecision,
    ) -> Result<Appeal> {
        let now = self.now_ms();
        let reason = required_text("reason", &input.reason, 5000)?;
        let mut conn = self.write().await?;
        let before = load_appeal(&mut conn, appeal_id).await?;
        if before.status != AppealStatus::Pending || input.status == AppealStatus::Pending {
            let allowed: &[AppealStatus] = if before.status == AppealStatus::Pending {
                &[AppealStatus::Upheld, AppealStatus::Rejected]
            } else {
                &[]
            };
            return Err(DomainError::transition_refused(
                "status",
                before.status,
                input.status,
                allowed,
            )
            .into());
        }
        let employee = any_user_key(&mut conn, &before.employee_id).await?;
        if actor.user_id == Some(employee) {
            return Err(StoreError::conflict(
                "role_required",
                None,
                "an employee cannot decide their own appeal",
            ));
        }
        let updated = conn
            .execute(
                q("UPDATE complaint_appeals SET status = $1, decision_reason = $2, decided_by = $3, decided_at = $4 WHERE public_id = $5 AND status = 'pending'")
                    .bind(input.status.as_str())
                    .bind(reason.as_str())
                    .bind(actor.user_id)
                    .bind(now)
                    .bind(before.id.as_str()),
            )
            .await?;
        if updated != 1 {
            return Err(StoreError::conflict(
                "conflict",
                Some("status"),
                "the appeal was decided meanwhile",
            ));
        }
        let case_key = case_key_of(&mut conn, &before.case_id).await?;
        let case = load_case_by_key(&mut conn, case_key).await?;
        // An upheld appeal clears the employee: the complaint no longer counts against
        // them (stress assessment, the complaint record), though who was named stays.
        if input.status == AppealStatus::Upheld {
            conn.execute(
                q("UPDATE complaints SET subject_cleared_at = $1, updated_at = $1, version = version + 1 WHERE case_id = $2")
                    .bind(now)
                    .bind(case_key),
            )
            .await?;
        }
        notify(
            &mut conn,
            employee,
            "appeal_decided",
            Some(case_key),
            &format!(
                "Your appeal on case #{} was {}: {reason}",
                case.number,
                input.status.label_en().to_lowercase()
            ),
            &format!(
                "您对工单 #{} 的申诉结果：{}。理由：{reason}",
                case.number,
                input.status.label_zh()
            ),
            json!({"case_id": case.id, "appeal_id": before.id, "status": input.status}),
            now,
        )
        .await?;
        let after = load_appeal(&mut conn, &before.id).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "decide",
            "appeal",
            &before.id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Appeals awaiting a decision, oldest first (for supervisors).
    pub async fn pending_appeals(&self) -> Result<Vec<Appeal>> {
        let rows = self
            .read()
            .fetch_all(q(concat!(
                appeal_select!(),
                " WHERE a.status = 'pending' ORDER BY a.id LIMIT 500"
            )))
            .await?;
        rows.iter().map(appeal_from_row).collect()
    }

    /// The rule set in force.
    pub async fn complaint_rules(&self) -> Result<RuleSet> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let (version, _) = current_rules(&mut conn, now).await?;
        conn.commit().await?;
        let rules = self.rule_sets().await?;
        rules
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| StoreError::Database("rule set vanished".into()))
    }

    /// Every published version, newest first.
    pub async fn rule_sets(&self) -> Result<Vec<RuleSet>> {
        let rows = self
            .read()
            .fetch_all(q("SELECT r.version, r.rules, r.note, u.public_id AS created_by, r.created_at FROM complaint_rule_sets r LEFT JOIN users u ON u.id = r.created_by ORDER BY r.version DESC"))
            .await?;
        rows.iter()
            .map(|row| {
                let rules: String = row.get("rules")?;
                Ok(RuleSet {
                    version: row.get("version")?,
                    rules: serde_json::from_str(&rules)
                        .map_err(|e| StoreError::Database(format!("stored rules: {e}")))?,
                    note: row.get("note")?,
                    created_by: row.get("created_by")?,
                    created_at: Timestamp(row.get("created_at")?),
                })
            })
            .collect()
    }

    /// Publishes a new version of the rules. Complaints already recorded keep the
    /// version they were recorded under: the rules do not change under a complaint.
    pub async fn publish_rules(&self, actor: &Actor, input: NewRuleSet) -> Result<RuleSet> {
        let now = self.now_ms();
        input.rules.validate()?;
        let note = required_text("note", &input.note, 2000)?;
        let mut conn = self.write().await?;
        let (current, before) = current_rules(&mut conn, now).await?;
        let changed = |current: i64| {
            StoreError::conflict(
                "rule_set_changed",
                Some("based_on_version"),
                format!(
                    "version {current} of the rules was published meanwhile; reload the rules and publish again"
                ),
            )
        };
        if input.based_on_version.is_some_and(|based| based != current) {
            return Err(changed(current));
        }
        let version = current + 1;
        conn.execute(
            q("INSERT INTO complaint_rule_sets (version, rules, note, created_by, created_at) VALUES ($1, $2, $3, $4, $5)")
                .bind(version)
                .bind(serde_json::to_string(&input.rules).unwrap_or_default())
                .bind(note.as_str())
                .bind(actor.user_id)
                .bind(now),
        )
        .await
        .map_err(|error| match error {
            // Another publish took this version number between our read and write.
            StoreError::Conflict {
                code: "duplicate", ..
            } => changed(version),
            other => other,
        })?;
        audit::record(
            &mut conn,
            actor,
            now,
            "publish",
            "complaint_rules",
            &version.to_string(),
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&input.rules).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        self.rule_sets()
            .await?
            .into_iter()
            .find(|r| r.version == version)
            .ok_or_else(|| StoreError::Database("rule set vanished".into()))
    }
}

fn step_label(stage: ComplaintStage) -> String {
    stage.as_str().to_string()
}

async fn notify_subject(
    conn: &mut Conn,
    subject: i64,
    case: &Case,
    key_points: &str,
    now: i64,
) -> Result<()> {
    notify(
        conn,
        subject,
        "complaint_names_you",
        Some(case.key),
        &format!(
            "A complaint on case #{} names you. The facts recorded: {key_points}. You may file an appeal.",
            case.number
        ),
        &format!(
            "工单 #{} 的投诉涉及您。记录的事实：{key_points}。如有异议，可以提出申诉。",
            case.number
        ),
        json!({"case_id": case.id}),
        now,
    )
    .await
}

#[allow(clippy::too_many_arguments)]
async fn insert_step(
    conn: &mut Conn,
    complaint: i64,
    from: Option<ComplaintStage>,
    to: ComplaintStage,
    note: &str,
    proposal: Option<&str>,
    decision: Option<&str>,
    trigger: Option<EscalationTrigger>,
    actor: &Actor,
    now: i64,
) -> Result<()> {
    conn.execute(
        q("INSERT INTO complaint_steps (complaint_id, from_stage, to_stage, note, proposal, decision, escalation_trigger, actor_id, actor_label, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)")
            .bind(complaint)
            .bind(from.map(Labelled::as_str))
            .bind(to.as_str())
            .bind(note)
            .bind(proposal)
            .bind(decision)
            .bind(trigger.map(Labelled::as_str))
            .bind(actor.user_id)
            .bind(actor.label.as_str())
            .bind(now),
    )
    .await?;
    Ok(())
}

/// Escalates a complaint that meets one of the rule set's conditions and has not been
/// reviewed yet. The step is kefu's own, and says which condition fired.
async fn auto_escalate(
    conn: &mut Conn,
    complaint: Complaint,
    case: &Case,
    rules: &ComplaintRules,
    now: i64,
) -> Result<Complaint> {
    if !complaint.stage.before_review() || complaint.escalation_level > 0 {
        return Ok(complaint);
    }
    let facts = EscalationFacts {
        severity: complaint.severity,
        reputation_risk: complaint.reputation_risk,
        teams_involved: teams_involved(conn, case.key).await?,
    };
    let Some(trigger) = rules.escalation_trigger(&facts) else {
        return Ok(complaint);
    };
    let step = Step {
        from: complaint.stage,
        to: ComplaintStage::InternalReview,
        note: format!(
            "自动升级：{} / escalated automatically: {}",
            trigger.label_zh(),
            trigger.label_en()
        ),
        proposal: None,
        decision: None,
        compensation: None,
        body: None,
    };
    let system = Actor::system();
    apply_step(conn, &system, case, &complaint, &step, Some(trigger), now).await?;
    let after = fetch_complaint(conn, case.key, false)
        .await?
        .ok_or_else(|| no_complaint(case))?;
    audit::record(
        conn,
        &system,
        now,
        "escalate",
        "complaint",
        &case.id,
        Some(&complaint_json(&complaint)),
        Some(&complaint_json(&after)),
    )
    .await?;
    Ok(after)
}

/// Writes a checked step and everything that goes with it.
async fn apply_step(
    conn: &mut Conn,
    actor: &Actor,
    case: &Case,
    before: &Complaint,
    step: &Step,
    trigger: Option<EscalationTrigger>,
    now: i64,
) -> Result<()> {
    use ComplaintStage::*;
    let level = before
        .escalation_level
        .max(i64::from(step.to.escalation_level()));
    let escalating = level > before.escalation_level;
    let resolved = !step.to.is_open();
    conn.execute(
        q("UPDATE complaints SET stage = $1, stage_changed_at = $2, escalation_level = $3, escalation_trigger = CASE WHEN $4 THEN COALESCE($5, escalation_trigger) ELSE escalation_trigger END, escalated_at = CASE WHEN $4 THEN $2 ELSE escalated_at END, resolved_at = CASE WHEN $6 THEN $2 ELSE NULL END, updated_at = $2, version = version + 1 WHERE id = $7")
            .bind(step.to.as_str())
            .bind(now)
            .bind(level)
            .bind(escalating)
            .bind(trigger.map(Labelled::as_str))
            .bind(resolved)
            .bind(before.key),
    )
    .await?;
    insert_step(
        conn,
        before.key,
        Some(step.from),
        step.to,
        &step.note,
        step.proposal.as_deref(),
        step.decision.as_deref(),
        trigger,
        actor,
        now,
    )
    .await?;
    // Compensation: a new offer; the customer's answer settles the open ones.
    if let Some((amount, currency, description)) = &step.compensation {
        conn.execute(
            q("INSERT INTO compensations (public_id, case_id, amount_cents, currency, description, status, offered_by, offered_at) VALUES ($1, $2, $3, $4, $5, 'offered', $6, $7)")
                .bind(new_public_id())
                .bind(case.key)
                .bind(*amount)
                .bind(currency.as_str())
                .bind(description.as_str())
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
    }
    let answer = match (step.from, step.to) {
        (SolutionProposed | ReviewProposed | ExternalReview, InAction) => Some("accepted"),
        (SolutionProposed, InternalReview) | (ReviewProposed, ExternalReview) => Some("rejected"),
        (ExternalReview, LegalAdvised) => Some("rejected"),
        _ => None,
    };
    if let Some(answer) = answer {
        conn.execute(
            q("UPDATE compensations SET status = $1, decided_at = $2 WHERE case_id = $3 AND status = 'offered'")
                .bind(answer)
                .bind(now)
                .bind(case.key),
        )
        .await?;
    }
    // Reviews: opened on entering a review stage, decided on leaving it, and the
    // customer's acceptance recorded when they answer.
    match (step.from, step.to) {
        (_, InternalReview) => {
            conn.execute(
                q("INSERT INTO complaint_reviews (public_id, complaint_id, level, reason, opened_at, opened_by) VALUES ($1, $2, 'internal', $3, $4, $5)")
                    .bind(new_public_id())
                    .bind(before.key)
                    .bind(step.note.as_str())
                    .bind(now)
                    .bind(actor.user_id),
            )
            .await?;
        }
        (InternalReview, ReviewProposed) => {
            decide_open_review(
                conn,
                before.key,
                "internal",
                step.decision.as_deref(),
                None,
                actor,
                now,
            )
            .await?;
        }
        (ReviewProposed, InAction) => {
            accept_last_review(conn, before.key, "internal", true).await?;
        }
        (ReviewProposed, ExternalReview) => {
            accept_last_review(conn, before.key, "internal", false).await?;
            let body = step.body.as_ref();
            conn.execute(
                q("INSERT INTO complaint_reviews (public_id, complaint_id, level, body_kind, body_name, body_reference, reason, opened_at, opened_by) VALUES ($1, $2, 'external', $3, $4, $5, $6, $7, $8)")
                    .bind(new_public_id())
                    .bind(before.key)
                    .bind(body.map(|b| b.kind.as_str()))
                    .bind(body.map(|b| b.name.clone()))
                    .bind(body.map(|b| b.reference.clone()))
                    .bind(step.note.as_str())
                    .bind(now)
                    .bind(actor.user_id),
            )
            .await?;
        }
        (ExternalReview, to) => {
            decide_open_review(
                conn,
                before.key,
                "external",
                step.decision.as_deref(),
                Some(to == InAction),
                actor,
                now,
            )
            .await?;
        }
        _ => {}
    }
    // Escalation raises the case to urgent and tells the supervisors, who decide every
    // internal review, also one the complaint comes back to.
    if escalating || step.to == InternalReview {
        conn.execute(
            q("UPDATE cases SET priority = $1, updated_at = $2, version = version + 1 WHERE id = $3 AND priority <> $1")
                .bind(Priority::Urgent.as_str())
                .bind(now)
                .bind(case.key),
        )
        .await?;
        let why = trigger.unwrap_or(EscalationTrigger::Manual);
        let supervisors = supervisors_for(conn, case.key).await?;
        for supervisor in supervisors.iter().copied() {
            notify(
                conn,
                supervisor,
                "complaint_escalated",
                Some(case.key),
                &format!(
                    "Complaint on case #{} escalated to {} ({})",
                    case.number,
                    step.to.label_en().to_lowercase(),
                    why.label_en().to_lowercase()
                ),
                &format!(
                    "工单 #{} 的投诉已升级至{}（{}）",
                    case.number,
                    step.to.label_zh(),
                    why.label_zh()
                ),
                json!({"case_id": case.id, "stage": step.to, "trigger": why}),
                now,
            )
            .await?;
        }
        // The first-contact owner stays accountable (首问负责制) and hears of it too.
        let owner: Option<i64> = conn
            .fetch_optional(
                q("SELECT k.first_owner_id FROM cases k JOIN users u ON u.id = k.first_owner_id AND u.active = TRUE WHERE k.id = $1")
                    .bind(case.key),
            )
            .await?
            .map(|row| row.get("first_owner_id"))
            .transpose()?;
        if let Some(owner) = owner.filter(|o| Some(*o) != actor.user_id && !supervisors.contains(o))
        {
            notify(
                conn,
                owner,
                "complaint_escalated",
                Some(case.key),
                &format!(
                    "The complaint on case #{} that you first received was escalated to {} ({}); you remain its first-contact owner",
                    case.number,
                    step.to.label_en().to_lowercase(),
                    why.label_en().to_lowercase()
                ),
                &format!(
                    "您首问的工单 #{} 的投诉已升级至{}（{}），您仍是首问负责人",
                    case.number,
                    step.to.label_zh(),
                    why.label_zh()
                ),
                json!({"case_id": case.id, "stage": step.to, "trigger": why, "first_owner": true}),
                now,
            )
            .await?;
        }
    }
    // A finished complaint solves its case.
    if resolved && case.status.is_open() {
        crate::sla::stop_clocks(conn, case.key, "solved", now).await?;
        let rules = rules_version(conn, before.rule_set_version).await?;
        crate::satisfaction::on_solved(conn, case.key, i64::from(rules.follow_up_after_days), now)
            .await?;
        conn.execute(
            q("UPDATE cases SET status = 'solved', solved_at = $1, updated_at = $1, version = version + 1 WHERE id = $2")
                .bind(now)
                .bind(case.key),
        )
        .await?;
        conn.execute(
            q("INSERT INTO case_status_changes (case_id, from_status, to_status, reason, actor_id, actor_label, at) VALUES ($1, $2, 'solved', $3, $4, $5, $6)")
                .bind(case.key)
                .bind(case.status.as_str())
                .bind(format!("投诉{}", step.to.label_zh()))
                .bind(actor.user_id)
                .bind(actor.label.as_str())
                .bind(now),
        )
        .await?;
    }
    let customer = customer_key(conn, &case.customer_id, "customer_id").await?;
    let mut summary = format!(
        "#{} 投诉：{} → {}",
        case.number,
        step.from.label_zh(),
        step.to.label_zh()
    );
    if let Some(trigger) = trigger {
        summary.push_str(&format!("（{}）", trigger.label_zh()));
    }
    timeline::insert(
        conn,
        NewEntry {
            customer,
            case: Some(case.key),
            kind: TimelineKind::Complaint,
            channel: Channel::System,
            direction: Direction::CompanyInitiated,
            content_type: if step.compensation.is_some() {
                ContentType::Policy
            } else {
                ContentType::Information
            },
            summary,
            data: json!({
                "case_number": case.number,
                "from": step.from,
                "to": step.to,
                "trigger": trigger,
                "note": step.note,
                "proposal": step.proposal,
                "decision": step.decision,
                "compensation": step.compensation.as_ref().map(|(amount, currency, _)| json!({"amount_cents": amount, "currency": currency})),
                "body": step.body,
            }),
            actor: actor.user_id,
            occurred_at: now,
        },
        now,
    )
    .await?;
    Ok(())
}

async fn decide_open_review(
    conn: &mut Conn,
    complaint: i64,
    level: &str,
    decision: Option<&str>,
    accepted: Option<bool>,
    actor: &Actor,
    now: i64,
) -> Result<()> {
    conn.execute(
        q("UPDATE complaint_reviews SET decision = $1, decided_at = $2, decided_by = $3, accepted = $4 WHERE complaint_id = $5 AND level = $6 AND decided_at IS NULL")
            .bind(decision)
            .bind(now)
            .bind(actor.user_id)
            .bind(accepted)
            .bind(complaint)
            .bind(level),
    )
    .await?;
    Ok(())
}

async fn accept_last_review(
    conn: &mut Conn,
    complaint: i64,
    level: &str,
    accepted: bool,
) -> Result<()> {
    conn.execute(
        q("UPDATE complaint_reviews SET accepted = $1 WHERE id = (SELECT MAX(id) FROM complaint_reviews WHERE complaint_id = $2 AND level = $3)")
            .bind(accepted)
            .bind(complaint)
            .bind(level),
    )
    .await?;
    Ok(())
}

macro_rules! appeal_select {
    () => {
        "SELECT a.public_id, k.public_id AS case_public_id, e.public_id AS employee_public_id, a.statement, a.status, a.decision_reason, d.public_id AS decided_by_public_id, a.created_at, a.decided_at FROM complaint_appeals a JOIN complaints p ON p.id = a.complaint_id JOIN cases k ON k.id = p.case_id JOIN users e ON e.id = a.employee_id LEFT JOIN users d ON d.id = a.decided_by"
    };
}
use appeal_select;

fn appeal_from_row(row: &Row) -> Result<Appeal> {
    Ok(Appeal {
        id: row.get("public_id")?,
        case_id: row.get("case_public_id")?,
        employee_id: row.get("employee_public_id")?,
        statement: row.get("statement")?,
        status: parse_label(row, "status")?,
        decision_reason: row.get("decision_reason")?,
        decided_by: row.get("decided_by_public_id")?,
        created_at: Timestamp(row.get("created_at")?),
        decided_at: row.get::<Option<i64>>("decided_at")?.map(Timestamp),
    })
}

async fn load_appeal(conn: &mut Conn, appeal_id: &str) -> Result<Appeal> {
    let id = parse_public_id("appeal", appeal_id)?;
    let row = conn
        .fetch_optional(q(concat!(appeal_select!(), " WHERE a.public_id = $1")).bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("appeal", appeal_id))?;
    appeal_from_row(&row)
}

async fn complaint_detail(conn: &mut Conn, complaint: Complaint) -> Result<ComplaintDetail> {
    let steps = conn
        .fetch_all(q("SELECT from_stage, to_stage, note, proposal, decision, escalation_trigger, actor_label, at FROM complaint_steps WHERE complaint_id = $1 ORDER BY id").bind(complaint.key))
        .await?
        .iter()
        .map(|row| {
            Ok(ComplaintStep {
                from: parse_optional_label(row, "from_stage")?,
                to: parse_label(row, "to_stage")?,
                note: row.get("note")?,
                proposal: row.get("proposal")?,
                decision: row.get("decision")?,
                trigger: parse_optional_label(row, "escalation_trigger")?,
                actor: row.get("actor_label")?,
                at: Timestamp(row.get("at")?),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let reviews = conn
        .fetch_all(q("SELECT public_id, level, body_kind, body_name, body_reference, reason, opened_at, decision, decided_at, accepted FROM complaint_reviews WHERE complaint_id = $1 ORDER BY id").bind(complaint.key))
        .await?
        .iter()
        .map(|row| {
            let kind: Option<ReviewBody> = parse_optional_label(row, "body_kind")?;
            Ok(Review {
                id: row.get("public_id")?,
                level: row.get("level")?,
                body: match kind {
                    Some(kind) => Some(ExternalBody {
                        kind,
                        name: row.get::<Option<String>>("body_name")?.unwrap_or_default(),
                        reference: row
                            .get::<Option<String>>("body_reference")?
                            .unwrap_or_default(),
                    }),
                    None => None,
                },
                reason: row.get("reason")?,
                opened_at: Timestamp(row.get("opened_at")?),
                decision: row.get("decision")?,
                decided_at: row.get::<Option<i64>>("decided_at")?.map(Timestamp),
                accepted: row.get("accepted")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let compensations = conn
        .fetch_all(q("SELECT public_id, amount_cents, currency, description, status, offered_at, decided_at FROM compensations WHERE case_id = $1 ORDER BY id").bind(complaint.case_key))
        .await?
        .iter()
        .map(|row| {
            Ok(Compensation {
                id: row.get("public_id")?,
                amount_cents: row.get("amount_cents")?,
                currency: row.get("currency")?,
                description: row.get("description")?,
                status: row.get("status")?,
                offered_at: Timestamp(row.get("offered_at")?),
                decided_at: row.get::<Option<i64>>("decided_at")?.map(Timestamp),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let appeals = conn
        .fetch_all(
            q(concat!(
                appeal_select!(),
                " WHERE a.complaint_id = $1 ORDER BY a.id"
            ))
            .bind(complaint.key),
        )
        .await?
        .iter()
        .map(appeal_from_row)
        .collect::<Result<Vec<_>>>()?;
    let needs_labels = complaint.needs.iter().map(|n| Label::of(*n)).collect();
    Ok(ComplaintDetail {
        complaint,
        steps,
        reviews,
        compensations,
        appeals,
        needs_labels,
    })
}

/// An SLA breach on a complaint case that has not been reviewed yet escalates it to
/// internal review, as kefu, with the breach as the reason.
pub(crate) async fn escalate_for_breach(conn: &mut Conn, case_key: i64, now: i64) -> Result<()> {
    escalate_by(conn, case_key, EscalationTrigger::SlaBreached, now).await
}

/// An automation rule's `escalate_complaint` action.
pub(crate) async fn escalate_for_rule(conn: &mut Conn, case_key: i64, now: i64) -> Result<()> {
    escalate_by(conn, case_key, EscalationTrigger::Automation, now).await
}

async fn escalate_by(
    conn: &mut Conn,
    case_key: i64,
    trigger: EscalationTrigger,
    now: i64,
) -> Result<()> {
    let Some(complaint) = fetch_complaint(conn, case_key, true).await? else {
        return Ok(());
    };
    if !complaint.stage.before_review() || complaint.escalation_level > 0 {
        return Ok(());
    }
    let case = load_case_by_key(conn, case_key).await?;
    let step = Step {
        from: complaint.stage,
        to: ComplaintStage::InternalReview,
        note: format!(
            "自动升级：{} / escalated automatically: {}",
            trigger.label_zh(),
            trigger.label_en()
        ),
        proposal: None,
        decision: None,
        compensation: None,
        body: None,
    };
    let system = Actor::system();
    apply_step(conn, &system, &case, &complaint, &step, Some(trigger), now).await?;
    let after = fetch_complaint(conn, case_key, false)
        .await?
        .ok_or_else(|| no_complaint(&case))?;
    audit::record(
        conn,
        &system,
        now,
        "escalate",
        "complaint",
        &case.id,
        Some(&complaint_json(&complaint)),
        Some(&complaint_json(&after)),
    )
    .await
}

/// The severity of a case's complaint, if it has one.
pub(crate) async fn severity_of(conn: &mut Conn, case_key: i64) -> Result<Option<Severity>> {
    match conn
        .fetch_optional(q("SELECT severity FROM complaints WHERE case_id = $1").bind(case_key))
        .await?
    {
        Some(row) => Ok(Some(parse_label(&row, "severity")?)),
        None => Ok(None),
    }
}

/// After a transfer: a complaint that now has passed through several teams may meet the
/// rule set's escalation condition.
pub(crate) async fn after_transfer(conn: &mut Conn, case_key: i64, now: i64) -> Result<()> {
    let Some(complaint) = fetch_complaint(conn, case_key, true).await? else {
        return Ok(());
    };
    let case = load_case_by_key(conn, case_key).await?;
    let rules = rules_version(conn, complaint.rule_set_version).await?;
    auto_escalate(conn, complaint, &case, &rules, now).await?;
    Ok(())
}
