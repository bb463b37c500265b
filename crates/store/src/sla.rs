//! Service levels (服务时限): business calendars, SLA policies, the clocks on each case and
//! the sweep that warns before a breach and escalates on one.
//!
//! A case gets its clocks when it is created (and again when a complaint's severity
//! becomes known): the first active policy, by rank, whose conditions match its kind,
//! priority and complaint severity. Each clock counts working time in the calendar of
//! the case's team (24×7 when the team has none). The clocks move with the case: a
//! reply meets the response clocks, a customer message after a reply starts the
//! next-response clock, waiting on the customer pauses them all, solving meets the
//! resolution clock.
//!
//! The sweep touches only clocks whose `next_check_at` has come (a partial index holds
//! exactly the running clocks), so its cost follows what is due, not what is open.

use crate::audit;
use crate::complaints::escalate_for_breach;
use crate::sql::{Builder, Conn, Row, q};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::calendar::{Calendar, CalendarSpec};
use kefu_domain::cases::{CaseKind, Priority};
use kefu_domain::complaints::Severity;
use kefu_domain::sla::*;
use kefu_domain::{DomainError, Labelled, Timestamp, required_text};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::sync::Arc;

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BusinessCalendar {
    pub id: String,
    pub name: String,
    pub spec: CalendarSpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCalendar {
    pub name: String,
    pub spec: CalendarSpec,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlaPolicy {
    pub id: String,
    #[serde(flatten)]
    pub spec: SlaPolicySpec,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
}

/// One clock as the case page shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct SlaClock {
    pub metric: SlaMetric,
    pub state: ClockState,
    pub policy_id: String,
    pub policy_name: String,
    pub target_ms: i64,
    /// Working time used so far.
    pub elapsed_ms: i64,
    pub started_at: Timestamp,
    pub due_at: Option<Timestamp>,
    pub warned: bool,
    pub stopped_at: Option<Timestamp>,
    pub breached_at: Option<Timestamp>,
}

/// A sweep batch's notices: (person, case, breached) → (case number, metrics with due).
type Events = std::collections::BTreeMap<(i64, i64, bool), (i64, Vec<(SlaMetric, i64)>)>;

/// What one SLA sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct SlaSweepReport {
    pub warned: u64,
    pub breached: u64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamCalendar {
    /// `null` for 24×7.
    pub calendar_id: Option<String>,
}

fn calendar_from_row(row: &Row) -> Result<BusinessCalendar> {
    let spec: String = row.get("spec")?;
    Ok(BusinessCalendar {
        id: row.get("public_id")?,
        name: row.get("name")?,
        spec: serde_json::from_str(&spec)
            .map_err(|e| StoreError::Database(format!("stored calendar: {e}")))?,
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

const POLICY_SELECT: &str = "SELECT id, public_id, name, rank, case_kind, priority, severity, first_response_ms, next_response_ms, resolution_ms, warn_at_percent, escalate_on_breach, active, created_at, updated_at, version FROM sla_policies";

fn policy_from_row(row: &Row) -> Result<SlaPolicy> {
    let minutes = |column: &str| -> Result<Option<i64>> {
        Ok(row.get::<Option<i64>>(column)?.map(|ms| ms / 60_000))
    };
    Ok(SlaPolicy {
        id: row.get("public_id")?,
        spec: SlaPolicySpec {
            name: row.get("name")?,
            rank: row.get("rank")?,
            case_kind: crate::customers::parse_optional_label(row, "case_kind")?,
            priority: crate::customers::parse_optional_label(row, "priority")?,
            severity: crate::customers::parse_optional_label(row, "severity")?,
            first_response_minutes: minutes("first_response_ms")?,
            next_response_minutes: minutes("next_response_ms")?,
            resolution_minutes: minutes("resolution_ms")?,
            warn_at_percent: Some(row.get("warn_at_percent")?),
            escalate_on_breach: Some(row.get("escalate_on_breach")?),
            active: Some(row.get("active")?),
        },
        created_at: Timestamp(row.get("created_at")?),
        updated_at: Timestamp(row.get("updated_at")?),
        version: row.get("version")?,
    })
}

/// The facts a policy matches on.
pub(crate) struct CaseFacts {
    pub case: i64,
    pub kind: CaseKind,
    pub priority: Priority,
    pub severity: Option<Severity>,
    pub team: Option<i64>,
}

impl Store {
    /// A compiled calendar (24×7 for `None`), from the cache when its version is current.
    pub(crate) async fn calendar(&self, conn: &mut Conn, id: Option<i64>) -> Result<Arc<Calendar>> {
        let Some(id) = id else {
            return Ok(Arc::new(Calendar::default()));
        };
        let row = conn
            .fetch_one(q("SELECT spec, version FROM business_calendars WHERE id = $1").bind(id))
            .await?;
        let version: i64 = row.get("version")?;
        if let Ok(cache) = self.calendars.lock()
            && let Some((cached, calendar)) = cache.get(&id)
            && *cached == version
        {
            return Ok(calendar.clone());
        }
        let spec: String = row.get("spec")?;
        let spec: CalendarSpec = serde_json::from_str(&spec)
            .map_err(|e| StoreError::Database(format!("stored calendar: {e}")))?;
        let calendar = Arc::new(spec.validate()?);
        if let Ok(mut cache) = self.calendars.lock() {
            cache.insert(id, (version, calendar.clone()));
        }
        Ok(calendar)
    }

    /// Re-targets a case's clocks under the policy for its kind, priority and complaint
    /// severity as stored now — after any of them changed (a person, an automation rule
    /// or the customer's anger raising the priority; a complaint recorded or re-graded).
    pub(crate) async fn sla_refresh(&self, conn: &mut Conn, case: i64, now: i64) -> Result<()> {
        let loaded = crate::cases::load_case_by_key(conn, case).await?;
        let severity = crate::complaints::severity_of(conn, case).await?;
        let team = match &loaded.team_id {
            Some(id) => Some(crate::cases::key_of(conn, "teams", "team", "team_id", id).await?),
            None => None,
        };
        self.apply_sla(
            conn,
            CaseFacts {
                case,
                kind: loaded.kind,
                priority: loaded.priority,
                severity,
                team,
            },
            now,
        )
        .await
    }

    /// Starts (or re-targets) a case's clocks under the policy that matches it now.
    pub(crate) async fn apply_sla(
        &self,
        conn: &mut Conn,
        facts: CaseFacts,
        now: i64,
    ) -> Result<()> {
        let row = conn
            .fetch_optional(
                q("SELECT id, first_response_ms, next_response_ms, resolution_ms, warn_at_percent, escalate_on_breach FROM sla_policies WHERE active = TRUE AND (case_kind IS NULL OR case_kind = $1) AND (priority IS NULL OR priority = $2) AND (severity IS NULL OR severity = $3) ORDER BY rank, id LIMIT 1")
                    .bind(facts.kind.as_str())
                    .bind(facts.priority.as_str())
                    .bind(facts.severity.map(Labelled::as_str)),
            )
            .await?;
        let Some(policy) = row else {
            return Ok(());
        };
        let policy_id: i64 = policy.get("id")?;
        let warn: i64 = policy.get("warn_at_percent")?;
        let escalate: bool = policy.get("escalate_on_breach")?;
        let calendar_id: Option<i64> = match facts.team {
            Some(team) => conn
                .fetch_one(q("SELECT calendar_id FROM teams WHERE id = $1").bind(team))
                .await?
                .get("calendar_id")?,
            None => None,
        };
        let calendar = self.calendar(conn, calendar_id).await?;
        let case_row = conn
            .fetch_one(
                q("SELECT first_response_at, status FROM cases WHERE id = $1").bind(facts.case),
            )
            .await?;
        let answered = case_row.get::<Option<i64>>("first_response_at")?.is_some();
        for (metric, target) in [
            (
                SlaMetric::FirstResponse,
                policy.get::<Option<i64>>("first_response_ms")?,
            ),
            (
                SlaMetric::Resolution,
                policy.get::<Option<i64>>("resolution_ms")?,
            ),
        ] {
            let Some(target) = target else { continue };
            let existing = conn
                .fetch_optional(
                    q("SELECT id, state, resumed_at, elapsed_ms, warned FROM sla_clocks WHERE case_id = $1 AND metric = $2")
                        .bind(facts.case)
                        .bind(metric.as_str()),
                )
                .await?;
            match existing {
                None => {
                    if metric == SlaMetric::FirstResponse && answered {
                        continue;
                    }
                    let s = schedule(&calendar, now, 0, target, warn, false);
                    conn.execute(
                        q("INSERT INTO sla_clocks (case_id, metric, policy_id, calendar_id, target_ms, warn_at_percent, escalate_on_breach, state, started_at, resumed_at, elapsed_ms, due_at, warn_at, next_check_at) VALUES ($1, $2, $3, $4, $5, $6, $7, 'running', $8, $8, 0, $9, $10, $11)")
                            .bind(facts.case)
                            .bind(metric.as_str())
                            .bind(policy_id)
                            .bind(calendar_id)
                            .bind(target)
                            .bind(warn)
                            .bind(escalate)
                            .bind(now)
                            .bind(s.due_at)
                            .bind(s.warn_at)
                            .bind(s.next_check()),
                    )
                    .await?;
                }
                Some(clock) => {
                    // Re-target a clock that still runs; the time it used stays used.
                    let state: ClockState = crate::customers::parse_label(&clock, "state")?;
                    let mut update = q("UPDATE sla_clocks SET policy_id = $1, target_ms = $2, warn_at_percent = $3, escalate_on_breach = $4 WHERE id = $5")
                        .bind(policy_id)
                        .bind(target)
                        .bind(warn)
                        .bind(escalate)
                        .bind(clock.get::<i64>("id")?);
                    if state == ClockState::Running {
                        let s = schedule(
                            &calendar,
                            clock.get("resumed_at")?,
                            clock.get("elapsed_ms")?,
                            target,
                            warn,
                            clock.get("warned")?,
                        );
                        update = q("UPDATE sla_clocks SET policy_id = $1, target_ms = $2, warn_at_percent = $3, escalate_on_breach = $4, due_at = $6, warn_at = $7, next_check_at = $8 WHERE id = $5")
                            .bind(policy_id)
                            .bind(target)
                            .bind(warn)
                            .bind(escalate)
                            .bind(clock.get::<i64>("id")?)
                            .bind(s.due_at)
                            .bind(s.warn_at)
                            .bind(s.next_check());
                    }
                    if matches!(state, ClockState::Running | ClockState::Paused) {
                        conn.execute(update).await?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Moves a case's running and paused clocks to the calendar of the team it is in
    /// now (after a transfer): the working time already used is counted in the old
    /// calendar up to now, the rest in the new one. Clocks already on that calendar
    /// are left alone, so this may be called after anything that can move a case.
    pub(crate) async fn sla_follow_team(&self, conn: &mut Conn, case: i64, now: i64) -> Result<()> {
        let target: Option<i64> = conn
            .fetch_one(
                q("SELECT t.calendar_id FROM cases k LEFT JOIN teams t ON t.id = k.team_id WHERE k.id = $1")
                    .bind(case),
            )
            .await?
            .get("calendar_id")?;
        let rows = conn
            .fetch_all(
                q("SELECT id, state, calendar_id, resumed_at, elapsed_ms, target_ms, warn_at_percent, warned FROM sla_clocks WHERE case_id = $1 AND state IN ('running', 'paused')")
                    .bind(case),
            )
            .await?;
        for row in &rows {
            let current: Option<i64> = row.get("calendar_id")?;
            if current == target {
                continue;
            }
            let id: i64 = row.get("id")?;
            let state: ClockState = crate::customers::parse_label(row, "state")?;
            if state == ClockState::Paused {
                conn.execute(
                    q("UPDATE sla_clocks SET calendar_id = $1 WHERE id = $2")
                        .bind(target)
                        .bind(id),
                )
                .await?;
                continue;
            }
            let old = self.calendar(conn, current).await?;
            let new = self.calendar(conn, target).await?;
            let elapsed = row.get::<i64>("elapsed_ms")?
                + old.business_millis_between(row.get("resumed_at")?, now);
            let s = schedule(
                &new,
                now,
                elapsed,
                row.get("target_ms")?,
                row.get("warn_at_percent")?,
                row.get("warned")?,
            );
            conn.execute(
                q("UPDATE sla_clocks SET calendar_id = $1, elapsed_ms = $2, resumed_at = $3, due_at = $4, warn_at = $5, next_check_at = $6 WHERE id = $7")
                    .bind(target)
                    .bind(elapsed)
                    .bind(now)
                    .bind(s.due_at)
                    .bind(s.warn_at)
                    .bind(s.next_check())
                    .bind(id),
            )
            .await?;
        }
        Ok(())
    }

    /// A reply to the customer meets the response clocks.
    pub(crate) async fn sla_on_reply(&self, conn: &mut Conn, case: i64, now: i64) -> Result<()> {
        conn.execute(
            q("UPDATE sla_clocks SET state = CASE WHEN state = 'running' AND due_at < $1 THEN 'breached' ELSE 'met' END, breached_at = CASE WHEN state = 'running' AND due_at < $1 THEN due_at ELSE breached_at END, stopped_at = $1, due_at = NULL, warn_at = NULL, next_check_at = NULL WHERE case_id = $2 AND metric IN ('first_response', 'next_response') AND state IN ('running', 'paused')")
                .bind(now)
                .bind(case),
        )
        .await?;
        Ok(())
    }

    /// A customer's message after a reply starts the next-response clock, when the
    /// case's policy measures it.
    pub(crate) async fn sla_on_customer_message(
        &self,
        conn: &mut Conn,
        case: i64,
        now: i64,
    ) -> Result<()> {
        let Some(row) = conn
            .fetch_optional(
                q("SELECT p.id, p.next_response_ms, p.warn_at_percent, p.escalate_on_breach, c.calendar_id, k.first_response_at FROM sla_clocks c JOIN sla_policies p ON p.id = c.policy_id JOIN cases k ON k.id = c.case_id WHERE c.case_id = $1 ORDER BY c.id LIMIT 1")
                    .bind(case),
            )
            .await?
        else {
            return Ok(());
        };
        let Some(target) = row.get::<Option<i64>>("next_response_ms")? else {
            return Ok(());
        };
        if row.get::<Option<i64>>("first_response_at")?.is_none() {
            return Ok(());
        }
        let running = conn
            .fetch_optional(
                q("SELECT id FROM sla_clocks WHERE case_id = $1 AND metric = 'next_response' AND state IN ('running', 'paused')")
                    .bind(case),
            )
            .await?;
        if running.is_some() {
            return Ok(());
        }
        let calendar_id: Option<i64> = row.get("calendar_id")?;
        let calendar = self.calendar(conn, calendar_id).await?;
        let warn: i64 = row.get("warn_at_percent")?;
        let s = schedule(&calendar, now, 0, target, warn, false);
        conn.execute(
            q("DELETE FROM sla_clocks WHERE case_id = $1 AND metric = 'next_response'").bind(case),
        )
        .await?;
        conn.execute(
            q("INSERT INTO sla_clocks (case_id, metric, policy_id, calendar_id, target_ms, warn_at_percent, escalate_on_breach, state, started_at, resumed_at, elapsed_ms, due_at, warn_at, next_check_at) VALUES ($1, 'next_response', $2, $3, $4, $5, $6, 'running', $7, $7, 0, $8, $9, $10)")
                .bind(case)
                .bind(row.get::<i64>("id")?)
                .bind(calendar_id)
                .bind(target)
                .bind(warn)
                .bind(row.get::<bool>("escalate_on_breach")?)
                .bind(now)
                .bind(s.due_at)
                .bind(s.warn_at)
                .bind(s.next_check()),
        )
        .await?;
        Ok(())
    }

    /// Moves the clocks with the case's status: waiting on the customer pauses them,
    /// working resumes them, solving meets the resolution clock and stops the rest.
    pub(crate) async fn sla_on_status(
        &self,
        conn: &mut Conn,
        case: i64,
        to: &str,
        now: i64,
    ) -> Result<()> {
        match to {
            "pending" => {
                let rows = conn
                    .fetch_all(q("SELECT id, calendar_id, resumed_at, elapsed_ms FROM sla_clocks WHERE case_id = $1 AND state = 'running'").bind(case))
                    .await?;
                for row in &rows {
                    let calendar = self.calendar(conn, row.get("calendar_id")?).await?;
                    let elapsed = row.get::<i64>("elapsed_ms")?
                        + calendar.business_millis_between(row.get("resumed_at")?, now);
                    conn.execute(
                        q("UPDATE sla_clocks SET state = 'paused', elapsed_ms = $1, due_at = NULL, warn_at = NULL, next_check_at = NULL WHERE id = $2")
                            .bind(elapsed)
                            .bind(row.get::<i64>("id")?),
                    )
                    .await?;
                }
            }
            "solved" | "closed" | "merged" => stop_clocks(conn, case, to, now).await?,
            _ => {
                let rows = conn
                    .fetch_all(q("SELECT id, calendar_id, elapsed_ms, target_ms, warn_at_percent, warned FROM sla_clocks WHERE case_id = $1 AND state = 'paused'").bind(case))
                    .await?;
                for row in &rows {
                    let calendar = self.calendar(conn, row.get("calendar_id")?).await?;
                    let s = schedule(
                        &calendar,
                        now,
                        row.get("elapsed_ms")?,
                        row.get("target_ms")?,
                        row.get("warn_at_percent")?,
                        row.get("warned")?,
                    );
                    conn.execute(
                        q("UPDATE sla_clocks SET state = 'running', resumed_at = $1, due_at = $2, warn_at = $3, next_check_at = $4 WHERE id = $5")
                            .bind(now)
                            .bind(s.due_at)
                            .bind(s.warn_at)
                            .bind(s.next_check())
                            .bind(row.get::<i64>("id")?),
                    )
                    .await?;
                }
            }
        }
        Ok(())
    }

    /// The clocks of a case.
    pub async fn case_sla(&self, case_id: &str) -> Result<Vec<SlaClock>> {
        let now = self.now_ms();
        let id = parse_public_id("case", case_id)?;
        let mut conn = self.snapshot().await?;
        let key: i64 = conn
            .fetch_optional(q("SELECT id FROM cases WHERE public_id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("case", case_id))?
            .get("id")?;
        let rows = conn
            .fetch_all(q("SELECT c.metric, c.state, p.public_id AS policy_public_id, p.name AS policy_name, c.target_ms, c.elapsed_ms, c.calendar_id, c.started_at, c.resumed_at, c.due_at, c.warned, c.stopped_at, c.breached_at FROM sla_clocks c JOIN sla_policies p ON p.id = c.policy_id WHERE c.case_id = $1 ORDER BY c.id").bind(key))
            .await?;
        let mut clocks = Vec::with_capacity(rows.len());
        for row in &rows {
            let state: ClockState = crate::customers::parse_label(row, "state")?;
            let mut elapsed: i64 = row.get("elapsed_ms")?;
            if state == ClockState::Running {
                let calendar = self.calendar(&mut conn, row.get("calendar_id")?).await?;
                elapsed += calendar.business_millis_between(row.get("resumed_at")?, now);
            }
            clocks.push(SlaClock {
                metric: crate::customers::parse_label(row, "metric")?,
                state,
                policy_id: row.get("policy_public_id")?,
                policy_name: row.get("policy_name")?,
                target_ms: row.get("target_ms")?,
                elapsed_ms: elapsed,
                started_at: Timestamp(row.get("started_at")?),
                due_at: row.get::<Option<i64>>("due_at")?.map(Timestamp),
                warned: row.get("warned")?,
                stopped_at: row.get::<Option<i64>>("stopped_at")?.map(Timestamp),
                breached_at: row.get::<Option<i64>>("breached_at")?.map(Timestamp),
            });
        }
        Ok(clocks)
    }

    /// Warns before breaches and records breaches, for every clock whose next check has
    /// come — and no other. Works in batches of 1,000, each one transaction; a breach
    /// with `escalate_on_breach` raises the case to urgent and escalates a complaint that
    /// has not been reviewed yet.
    pub async fn sweep_sla(&self) -> Result<SlaSweepReport> {
        let now = self.now_ms();
        let mut report = SlaSweepReport::default();
        // Who answers for a team's breaches, looked up once per team per sweep.
        let mut supervisors: std::collections::HashMap<Option<i64>, Vec<i64>> =
            std::collections::HashMap::new();
        loop {
            let mut conn = self.write().await?;
            let rows = conn
                .fetch_all(
                    q("SELECT c.id, c.case_id, c.metric, c.due_at, c.escalate_on_breach, k.public_id, k.number, k.assignee_id, k.team_id FROM sla_clocks c JOIN cases k ON k.id = c.case_id WHERE c.next_check_at IS NOT NULL AND c.next_check_at <= $1 ORDER BY c.next_check_at LIMIT 1000")
                        .bind(now),
                )
                .await?;
            if rows.is_empty() {
                conn.commit().await?;
                return Ok(report);
            }
            let mut warned_ids = Vec::new();
            let mut breached_ids = Vec::new();
            let mut urgent_cases: Vec<(i64, String)> = Vec::new();
            // One notice per person and case, naming every metric that warned or breached.
            let mut events: Events = std::collections::BTreeMap::new();
            for row in &rows {
                let id: i64 = row.get("id")?;
                let case: i64 = row.get("case_id")?;
                let metric: SlaMetric = crate::customers::parse_label(row, "metric")?;
                let number: i64 = row.get("number")?;
                let due: i64 = row.get::<Option<i64>>("due_at")?.unwrap_or(now);
                let assignee: Option<i64> = row.get("assignee_id")?;
                let team: Option<i64> = row.get("team_id")?;
                if let std::collections::hash_map::Entry::Vacant(slot) = supervisors.entry(team) {
                    slot.insert(crate::complaints::supervisors_of_team(&mut conn, team).await?);
                }
                let leads = supervisors.get(&team).cloned().unwrap_or_default();
                let breached = due <= now;
                let people = if breached {
                    breached_ids.push(id);
                    if row.get::<bool>("escalate_on_breach")? {
                        urgent_cases.push((case, row.get("public_id")?));
                    }
                    let mut people = leads;
                    if let Some(a) = assignee
                        && !people.contains(&a)
                    {
                        people.push(a);
                    }
                    people
                } else {
                    warned_ids.push(id);
                    match assignee {
                        Some(a) => vec![a],
                        None => leads,
                    }
                };
                for person in people {
                    events
                        .entry((person, case, breached))
                        .or_insert_with(|| (number, Vec::new()))
                        .1
                        .push((metric, due));
                }
            }
            // Someone who would get more than DIGEST_AFTER notices from one batch gets one
            // digest instead, naming the cases: an alert storm helps nobody.
            const DIGEST_AFTER: usize = 20;
            let mut per_person: std::collections::BTreeMap<(i64, bool), Vec<i64>> =
                std::collections::BTreeMap::new();
            for ((person, _, breached), (number, _)) in &events {
                per_person
                    .entry((*person, *breached))
                    .or_default()
                    .push(*number);
            }
            let mut notices: Vec<Vec<crate::sql::Arg>> = Vec::new();
            for ((person, breached), numbers) in &per_person {
                if numbers.len() <= DIGEST_AFTER {
                    continue;
                }
                let shown: Vec<String> = numbers.iter().take(50).map(|n| format!("#{n}")).collect();
                let (kind, en, zh) = if *breached {
                    (
                        "sla_breached_digest",
                        format!(
                            "{} cases breached their SLA targets: {}",
                            numbers.len(),
                            shown.join(" ")
                        ),
                        format!("{} 个工单已超时：{}", numbers.len(), shown.join(" ")),
                    )
                } else {
                    (
                        "sla_warning_digest",
                        format!(
                            "{} cases are close to their SLA targets: {}",
                            numbers.len(),
                            shown.join(" ")
                        ),
                        format!("{} 个工单即将到期：{}", numbers.len(), shown.join(" ")),
                    )
                };
                notices.push(vec![
                    new_public_id().into(),
                    (*person).into(),
                    kind.into(),
                    Option::<i64>::None.into(),
                    en.into(),
                    zh.into(),
                    json!({"case_numbers": numbers}).to_string().into(),
                    now.into(),
                ]);
            }
            events.retain(|(person, _, breached), _| {
                per_person
                    .get(&(*person, *breached))
                    .is_none_or(|numbers| numbers.len() <= DIGEST_AFTER)
            });
            notices.extend(
                events
                    .iter()
                    .map(|((person, case, breached), (number, metrics))| {
                        let en_names = metrics
                            .iter()
                            .map(|(m, _)| m.label_en().to_lowercase())
                            .collect::<Vec<_>>()
                            .join(" and ");
                        let zh_names = metrics
                            .iter()
                            .map(|(m, _)| m.label_zh())
                            .collect::<Vec<_>>()
                            .join("、");
                        let due = metrics.iter().map(|(_, d)| *d).min().unwrap_or(now);
                        let (kind, en, zh) = if *breached {
                            (
                                "sla_breached",
                                format!("Case #{number}: the {en_names} target was breached"),
                                format!("工单 #{number}：{zh_names}已超时"),
                            )
                        } else {
                            (
                                "sla_warning",
                                format!(
                                    "Case #{number}: the {en_names} target is due at {}",
                                    Timestamp(due)
                                ),
                                format!("工单 #{number}：{zh_names}即将到期（{}）", Timestamp(due)),
                            )
                        };
                        let data = json!({
                            "metrics": metrics.iter().map(|(m, _)| *m).collect::<Vec<_>>(),
                            "due_at": Timestamp(due),
                        });
                        vec![
                            new_public_id().into(),
                            (*person).into(),
                            kind.into(),
                            (*case).into(),
                            en.into(),
                            zh.into(),
                            data.to_string().into(),
                            now.into(),
                        ]
                    }),
            );
            let id_list = |ids: &[i64]| {
                ids.iter()
                    .map(i64::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            if !warned_ids.is_empty() {
                // The next check of a warned clock is its due time. Ids are our own keys.
                let mut builder = Builder::new(
                    "UPDATE sla_clocks SET warned = TRUE, warn_at = NULL, next_check_at = due_at WHERE id IN (",
                );
                builder.push(&id_list(&warned_ids));
                builder.push(")");
                conn.execute(builder.query()).await?;
            }
            if !breached_ids.is_empty() {
                let mut builder = Builder::new(
                    "UPDATE sla_clocks SET state = 'breached', breached_at = due_at, warned = TRUE, warn_at = NULL, next_check_at = NULL WHERE id IN (",
                );
                builder.push(&id_list(&breached_ids));
                builder.push(")");
                conn.execute(builder.query()).await?;
            }
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
            urgent_cases.sort_unstable();
            urgent_cases.dedup();
            if !urgent_cases.is_empty() {
                let keys: Vec<i64> = urgent_cases.iter().map(|(k, _)| *k).collect();
                let mut builder =
                    Builder::new("UPDATE cases SET priority = 'urgent', updated_at = ");
                builder.push(&now.to_string());
                builder.push(", version = version + 1 WHERE priority <> 'urgent' AND id IN (");
                builder.push(&id_list(&keys));
                builder.push(") RETURNING public_id");
                let raised = conn.fetch_all(builder.query()).await?;
                // One audit record per case whose priority the breach raised.
                for chunk in raised.chunks(500) {
                    let mut builder = Builder::new(
                        "INSERT INTO audit_log (at, actor_id, actor_label, action, object_type, object_id, before, after) VALUES ",
                    );
                    for (i, row) in chunk.iter().enumerate() {
                        if i > 0 {
                            builder.push(", ");
                        }
                        builder.values(&[
                            now.into(),
                            Option::<i64>::None.into(),
                            "system".into(),
                            "sla_breach".into(),
                            "case".into(),
                            row.get::<String>("public_id")?.into(),
                            Option::<String>::None.into(),
                            json!({"priority": Priority::Urgent}).to_string().into(),
                        ]);
                    }
                    conn.execute(builder.query()).await?;
                }
                // Complaints not yet reviewed climb to internal review.
                let mut builder = Builder::new(
                    "SELECT case_id FROM complaints WHERE escalation_level = 0 AND stage IN ('recorded', 'information_needed', 'authority_check', 'solution_proposed') AND case_id IN (",
                );
                builder.push(&id_list(&keys));
                builder.push(")");
                for row in conn.fetch_all(builder.query()).await? {
                    escalate_for_breach(&mut conn, row.get("case_id")?, now).await?;
                }
            }
            report.warned += warned_ids.len() as u64;
            report.breached += breached_ids.len() as u64;
            conn.commit().await?;
        }
    }

    // --- Calendars and policies -------------------------------------------------------

    pub async fn calendars(&self) -> Result<Vec<BusinessCalendar>> {
        let rows = self
            .read()
            .fetch_all(q("SELECT public_id, name, spec, created_at, updated_at, version FROM business_calendars ORDER BY name"))
            .await?;
        rows.iter().map(calendar_from_row).collect()
    }

    pub async fn create_calendar(
        &self,
        actor: &Actor,
        input: NewCalendar,
    ) -> Result<BusinessCalendar> {
        let now = self.now_ms();
        let name = required_text("name", &input.name, 200)?;
        input.spec.validate()?;
        let mut conn = self.write().await?;
        let id = new_public_id();
        let inserted = conn
            .execute(
                q("INSERT INTO business_calendars (public_id, name, spec, created_at, updated_at) VALUES ($1, $2, $3, $4, $4) ON CONFLICT (name) DO NOTHING")
                    .bind(id.as_str())
                    .bind(name.as_str())
                    .bind(serde_json::to_string(&input.spec).unwrap_or_default())
                    .bind(now),
            )
            .await?;
        if inserted == 0 {
            return Err(StoreError::conflict(
                "duplicate",
                Some("name"),
                format!("a calendar named `{name}` exists"),
            ));
        }
        let row = conn
            .fetch_one(q("SELECT public_id, name, spec, created_at, updated_at, version FROM business_calendars WHERE public_id = $1").bind(id.as_str()))
            .await?;
        let calendar = calendar_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "calendar",
            &id,
            None,
            serde_json::to_value(&calendar).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(calendar)
    }

    /// Replaces a calendar's hours and holidays. Running clocks keep their due times
    /// until they next pause or resume; new clocks use the new hours at once.
    pub async fn update_calendar(
        &self,
        actor: &Actor,
        calendar_id: &str,
        input: NewCalendar,
        expected_version: Option<i64>,
    ) -> Result<BusinessCalendar> {
        let now = self.now_ms();
        let name = required_text("name", &input.name, 200)?;
        input.spec.validate()?;
        let id = parse_public_id("calendar", calendar_id)?;
        let mut conn = self.write().await?;
        let row = conn
            .fetch_optional(q("SELECT public_id, name, spec, created_at, updated_at, version FROM business_calendars WHERE public_id = $1").bind(id.as_str()))
            .await?
            .ok_or_else(|| StoreError::not_found("calendar", calendar_id))?;
        let before = calendar_from_row(&row)?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "calendar",
                expected,
                current: before.version,
            });
        }
        let clash = conn
            .fetch_optional(
                q("SELECT id FROM business_calendars WHERE name = $1 AND public_id <> $2")
                    .bind(name.as_str())
                    .bind(id.as_str()),
            )
            .await?;
        if clash.is_some() {
            return Err(StoreError::conflict(
                "duplicate",
                Some("name"),
                format!("a calendar named `{name}` exists"),
            ));
        }
        conn.execute(
            q("UPDATE business_calendars SET name = $1, spec = $2, updated_at = $3, version = version + 1 WHERE public_id = $4")
                .bind(name.as_str())
                .bind(serde_json::to_string(&input.spec).unwrap_or_default())
                .bind(now)
                .bind(id.as_str()),
        )
        .await?;
        let row = conn
            .fetch_one(q("SELECT public_id, name, spec, created_at, updated_at, version FROM business_calendars WHERE public_id = $1").bind(id.as_str()))
            .await?;
        let after = calendar_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "calendar",
            &after.id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Sets the team's calendar (`None`: 24×7).
    pub async fn set_team_calendar(
        &self,
        actor: &Actor,
        team_id: &str,
        input: TeamCalendar,
    ) -> Result<()> {
        let now = self.now_ms();
        let team = parse_public_id("team", team_id)?;
        let mut conn = self.write().await?;
        let calendar = match &input.calendar_id {
            Some(id) => Some(
                conn.fetch_optional(
                    q("SELECT id FROM business_calendars WHERE public_id = $1").bind(
                        parse_public_id("calendar", id).map_err(|_| {
                            DomainError::invalid(
                                "calendar_id",
                                format!("no calendar has id `{id}`"),
                            )
                        })?,
                    ),
                )
                .await?
                .ok_or_else(|| {
                    DomainError::invalid("calendar_id", format!("no calendar has id `{id}`"))
                })?
                .get::<i64>("id")?,
            ),
            None => None,
        };
        let changed = conn
            .execute(q("UPDATE teams SET calendar_id = $1, updated_at = $2, version = version + 1 WHERE public_id = $3").bind(calendar).bind(now).bind(team.as_str()))
            .await?;
        if changed == 0 {
            return Err(StoreError::not_found("team", team_id));
        }
        audit::record(
            &mut conn,
            actor,
            now,
            "set_calendar",
            "team",
            &team,
            None,
            Some(&json!({"calendar_id": input.calendar_id})),
        )
        .await?;
        conn.commit().await
    }

    pub async fn sla_policies(&self) -> Result<Vec<SlaPolicy>> {
        let rows = self
            .read()
            .fetch_all(crate::sql::q_dynamic(format!(
                "{POLICY_SELECT} ORDER BY rank, id"
            )))
            .await?;
        rows.iter().map(policy_from_row).collect()
    }

    pub async fn create_sla_policy(&self, actor: &Actor, spec: SlaPolicySpec) -> Result<SlaPolicy> {
        let now = self.now_ms();
        let targets = spec.validate()?;
        let id = new_public_id();
        let mut conn = self.write().await?;
        conn.execute(
            q("INSERT INTO sla_policies (public_id, name, rank, case_kind, priority, severity, first_response_ms, next_response_ms, resolution_ms, warn_at_percent, escalate_on_breach, active, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13)")
                .bind(id.as_str())
                .bind(spec.name.trim())
                .bind(spec.rank)
                .bind(spec.case_kind.map(Labelled::as_str))
                .bind(spec.priority.map(Labelled::as_str))
                .bind(spec.severity.map(Labelled::as_str))
                .bind(targets.first_response_ms)
                .bind(targets.next_response_ms)
                .bind(targets.resolution_ms)
                .bind(targets.warn_at_percent)
                .bind(targets.escalate_on_breach)
                .bind(spec.active.unwrap_or(true))
                .bind(now),
        )
        .await?;
        let row = conn
            .fetch_one(
                crate::sql::q_dynamic(format!("{POLICY_SELECT} WHERE public_id = $1"))
                    .bind(id.as_str()),
            )
            .await?;
        let policy = policy_from_row(&row)?;
        audit::record(
            &mut conn,
            actor,
            now,
            "create",
            "sla_policy",
            &id,
            None,
            serde_json::to_value(&policy).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(policy)
    }
}

/// Ends a case's running and paused clocks: solving or closing meets the resolution
/// clock; everything else that still runs is stopped unmet.
pub(crate) async fn stop_clocks(conn: &mut Conn, case: i64, to: &str, now: i64) -> Result<()> {
    conn.execute(
        q("UPDATE sla_clocks SET state = CASE WHEN metric = 'resolution' AND $3 <> 'merged' THEN (CASE WHEN state = 'running' AND due_at < $1 THEN 'breached' ELSE 'met' END) ELSE 'stopped' END, breached_at = CASE WHEN metric = 'resolution' AND $3 <> 'merged' AND state = 'running' AND due_at < $1 THEN due_at ELSE breached_at END, stopped_at = $1, due_at = NULL, warn_at = NULL, next_check_at = NULL WHERE case_id = $2 AND state IN ('running', 'paused')")
            .bind(now)
            .bind(case)
            .bind(to),
    )
    .await?;
    Ok(())
}
