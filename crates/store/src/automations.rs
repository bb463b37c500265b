//! Automations (自动化规则): rules stored as data, run inside the transaction of the event
//! that triggers them (a case created, a customer message, a complaint recorded), in
//! position order. A firing is recorded with the conditions that held and the actions
//! taken, and explained on the case as an internal note, so nobody wonders why a case
//! turned urgent. Actions never trigger rules themselves: no loops.

use crate::audit;
use crate::cases::load_case_by_key;
use crate::complaints::{notify, supervisors_of_team};
use crate::sql::{Conn, Row, q};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::automation::*;
use kefu_domain::timeline::Channel;
use kefu_domain::{Labelled, Timestamp, text};
use serde::{Deserialize, Serialize};
use serde_json::json;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AutomationRule {
    pub id: String,
    #[serde(flatten)]
    pub spec: RuleSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// One firing, as the case shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Firing {
    pub rule_id: String,
    pub rule_name: String,
    pub trigger: Trigger,
    /// The conditions that held and the actions taken, in words.
    #[schema(value_type = Object)]
    pub explanation: serde_json::Value,
    pub at: Timestamp,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RulePatch {
    #[serde(flatten)]
    pub spec: RuleSpec,
}

fn rule_from_row(row: &Row) -> Result<AutomationRule> {
    let spec: String = row.get("spec")?;
    Ok(AutomationRule {
        id: row.get("public_id")?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Database(format!("stored rule: {e}")))?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

const RULE_SELECT: &str =
    "SELECT id, public_id, spec, created_at, updated_at, version FROM automation_rules";

/// The facts of a case for the trigger: what the rule's conditions look at.
async fn facts(conn: &mut Conn, case_key: i64, message: Option<&str>) -> Result<Facts> {
    let row = conn
        .fetch_one(
            q("SELECT k.kind, k.priority, k.channel, k.status, k.subject, cu.value_class, p.severity, p.behaviour, p.cause, p.reputation_risk FROM cases k JOIN customers cu ON cu.id = k.customer_id LEFT JOIN complaints p ON p.case_id = k.id WHERE k.id = $1")
                .bind(case_key),
        )
        .await?;
    let mut facts = Facts::new();
    for (field, column) in [
        (Field::Kind, "kind"),
        (Field::Priority, "priority"),
        (Field::Channel, "channel"),
        (Field::Status, "status"),
        (Field::CustomerValue, "value_class"),
        (Field::ComplaintSeverity, "severity"),
        (Field::ComplaintBehaviour, "behaviour"),
        (Field::ComplaintCause, "cause"),
    ] {
        if let Some(value) = row.get::<Option<String>>(column)? {
            facts.insert(field, value);
        }
    }
    facts.insert(
        Field::Subject,
        text::search_key(&row.get::<String>("subject")?),
    );
    if let Some(risk) = row.get::<Option<bool>>("reputation_risk")? {
        facts.insert(Field::ReputationRisk, risk.to_string());
    }
    if let Some(message) = message {
        facts.insert(Field::Message, text::search_key(message));
    }
    Ok(facts)
}

/// Runs the active rules of `trigger` on a case, inside the caller's transaction.
/// Returns whether a rule changed the case's priority (the caller re-targets the SLA
/// clocks then).
pub(crate) async fn run(
    conn: &mut Conn,
    trigger: Trigger,
    case_key: i64,
    message: Option<&str>,
    now: i64,
) -> Result<bool> {
    let rules = conn
        .fetch_all(
            q("SELECT id, public_id, spec, created_at, updated_at, version FROM automation_rules WHERE trigger_event = $1 AND active = TRUE ORDER BY position, id")
                .bind(trigger.as_str()),
        )
        .await?;
    if rules.is_empty() {
        return Ok(false);
    }
    let mut priority_changed = false;
    let system = Actor {
        user_id: None,
        label: "automation".into(),
        authority: None,
    };
    for row in &rules {
        let rule = rule_from_row(row)?;
        // Facts are re-read for each rule: an earlier rule's action may have changed them.
        let facts = facts(conn, case_key, message).await?;
        if !rule.spec.conditions.iter().all(|c| c.holds(&facts)) {
            continue;
        }
        let case = load_case_by_key(conn, case_key).await?;
        let mut done = Vec::new();
        for action in &rule.spec.actions {
            match action {
                Action::SetPriority { priority } => {
                    priority_changed |= 0 < conn.execute(
                        q("UPDATE cases SET priority = $1, updated_at = $2, version = version + 1 WHERE id = $3 AND priority <> $1")
                            .bind(priority.as_str())
                            .bind(now)
                            .bind(case_key),
                    )
                    .await?;
                    done.push(format!(
                        "优先级设为{} / priority {}",
                        priority.label_zh(),
                        priority
                    ));
                }
                Action::AssignTeam { team_id } => {
                    let team = conn
                        .fetch_optional(
                            q("SELECT id, name FROM teams WHERE public_id = $1")
                                .bind(parse_public_id("team", team_id).unwrap_or_default()),
                        )
                        .await?;
                    match team {
                        Some(team) => {
                            let key: i64 = team.get("id")?;
                            let name: String = team.get("name")?;
                            conn.execute(
                                q("INSERT INTO case_transfers (case_id, from_team_id, to_team_id, from_assignee_id, to_assignee_id, reason, actor_id, actor_label, at) SELECT id, team_id, $1, assignee_id, NULL, $2, NULL, 'automation', $3 FROM cases WHERE id = $4")
                                    .bind(key)
                                    .bind(format!("自动化规则「{}」", rule.spec.name))
                                    .bind(now)
                                    .bind(case_key),
                            )
                            .await?;
                            conn.execute(
                                q("UPDATE cases SET team_id = $1, assignee_id = NULL, updated_at = $2, version = version + 1 WHERE id = $3")
                                    .bind(key)
                                    .bind(now)
                                    .bind(case_key),
                            )
                            .await?;
                            done.push(format!("转入{name} / moved to {name}"));
                        }
                        None => done.push(format!(
                            "团队 {team_id} 不存在，未转接 / team {team_id} is gone, not moved"
                        )),
                    }
                }
                Action::AddNote { text } => {
                    conn.execute(
                        q("INSERT INTO case_messages (public_id, case_id, kind, channel, author_id, body, created_at) VALUES ($1, $2, 'internal_note', $3, NULL, $4, $5)")
                            .bind(new_public_id())
                            .bind(case_key)
                            .bind(Channel::System.as_str())
                            .bind(text.as_str())
                            .bind(now),
                    )
                    .await?;
                    done.push("添加内部备注 / internal note added".into());
                }
                Action::NotifySupervisors { message } => {
                    let team: Option<i64> = conn
                        .fetch_one(q("SELECT team_id FROM cases WHERE id = $1").bind(case_key))
                        .await?
                        .get("team_id")?;
                    for supervisor in supervisors_of_team(conn, team).await? {
                        notify(
                            conn,
                            supervisor,
                            "automation",
                            Some(case_key),
                            &format!(
                                "Case #{}: {message} (rule “{}”)",
                                case.number, rule.spec.name
                            ),
                            &format!(
                                "工单 #{}：{message}（规则「{}」）",
                                case.number, rule.spec.name
                            ),
                            json!({"rule": rule.spec.name}),
                            now,
                        )
                        .await?;
                    }
                    done.push("已通知主管 / supervisors notified".into());
                }
                Action::EscalateComplaint => {
                    crate::complaints::escalate_for_rule(conn, case_key, now).await?;
                    done.push("投诉升级至内部评审 / complaint escalated to internal review".into());
                }
            }
        }
        let held: Vec<String> = rule
            .spec
            .conditions
            .iter()
            .map(Condition::describe)
            .collect();
        let explanation = json!({"conditions": held, "actions": done});
        let rule_key: i64 = row.get("id")?;
        conn.execute(
            q("INSERT INTO automation_firings (rule_id, case_id, trigger_event, explanation, at) VALUES ($1, $2, $3, $4, $5)")
                .bind(rule_key)
                .bind(case_key)
                .bind(trigger.as_str())
                .bind(explanation.to_string())
                .bind(now),
        )
        .await?;
        conn.execute(
            q("INSERT INTO case_messages (public_id, case_id, kind, channel, author_id, body, created_at) VALUES ($1, $2, 'internal_note', $3, NULL, $4, $5)")
                .bind(new_public_id())
                .bind(case_key)
                .bind(Channel::System.as_str())
                .bind(format!(
                    "自动化规则「{}」（{}）：{} → {}",
                    rule.spec.name,
                    trigger.label_zh(),
                    if held.is_empty() { "无条件".to_string() } else { held.join("，") },
                    done.join("；")
                ))
                .bind(now),
        )
        .await?;
        audit::record(
            conn,
            &system,
            now,
            "fire",
            "automation_rule",
            &rule.id,
            None,
            Some(&json!({"case_id": case.id, "explanation": explanation})),
        )
        .await?;
    }
    Ok(priority_changed)
}

impl Store {
    pub async fn automation_rules(&self) -> Result<Vec<AutomationRule>> {
        let rows = self
            .read()
            .fetch_all(crate::sql::q_dynamic(format!(
                "{RULE_SELECT} ORDER BY position, id"
            )))
            .await?;
        rows.iter().map(rule_from_row).collect()
    }

    pub async fn create_automation_rule(
        &self,
        actor: &Actor,
        spec: RuleSpec,
    ) -> Result<AutomationRule> {
        let now = self.now_ms();
        spec.validate()?;
        let mut conn = self.write().await?;
        let id = new_public_id();
        conn.execute(
            q("INSERT INTO automation_rules (public_id, name, trigger_event, spec, position, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7)")
                .bind(id.as_str())
                .bind(spec.name.trim())
                .bind(spec.trigger.as_str())
                .bind(serde_json::to_string(&spec).unwrap_or_default())
                .bind(spec.position.unwrap_or(100))
                .bind(spec.active.unwrap_or(true))
                .bind(now),
        )
        .await?;
        let row = conn
            .fetch_one(
                crate::sql::q_dynamic(format!("{RULE_SELECT} WHERE public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?;
        let rule = rule_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "automation_rule",
            &id,
            None,
            serde_json::to_value(&rule).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(rule)
    }

    /// Replaces a rule (`expected_version` from If-Match).
    pub async fn update_automation_rule(
        &self,
        actor: &Actor,
        rule_id: &str,
        spec: RuleSpec,
        expected_version: Option<i64>,
    ) -> Result<AutomationRule> {
        let now = self.now_ms();
        spec.validate()?;
        let id = parse_public_id("automation rule", rule_id)?;
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(
                crate::sql::q_dynamic(format!("{RULE_SELECT} WHERE public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?
            .ok_or_else(|| StoreError::not_found("automation rule", rule_id))?;
        let before = rule_from_row(&row)?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "automation rule",
                expected,
                current: before.version,
            });
        }
        conn.execute(
            q("UPDATE automation_rules SET name = $1, trigger_event = $2, spec = $3, position = $4, active = $5, updated_at = $6, version = version + 1 WHERE public_id = $7")
                .bind(spec.name.trim())
                .bind(spec.trigger.as_str())
                .bind(serde_json::to_string(&spec).unwrap_or_default())
                .bind(spec.position.unwrap_or(100))
                .bind(spec.active.unwrap_or(true))
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
        let row = conn
            .fetch_one(
                crate::sql::q_dynamic(format!("{RULE_SELECT} WHERE public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?;
        let after = rule_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "automation_rule",
            &after.id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// The rules that fired on a case, oldest first, with their explanations.
    pub async fn case_firings(&self, case_id: &str) -> Result<Vec<Firing>> {
        let id = parse_public_id("case", case_id)?;
        let mut conn = self.snapshot().await?;
        let key: i64 = conn
            .fetch_optional(q("SELECT id FROM cases WHERE public_id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("case", case_id))?
            .get("id")?;
        let rows = conn
            .fetch_all(q("SELECT r.public_id, r.name, f.trigger_event, f.explanation, f.at FROM automation_firings f JOIN automation_rules r ON r.id = f.rule_id WHERE f.case_id = $1 ORDER BY f.id").bind(key))
            .await?;
        rows.iter()
            .map(|row| {
                let explanation: String = row.get("explanation")?;
                Ok(Firing {
                    rule_id: row.get("public_id")?,
                    rule_name: row.get("name")?,
                    trigger: crate::customers::parse_label(row, "trigger_event")?,
                    explanation: serde_json::from_str(&explanation).unwrap_or_default(),
                    at: Timestamp(row.get("at")?),
                })
            })
            .collect()
    }
}
