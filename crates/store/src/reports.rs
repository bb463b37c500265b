//! Reports (报表), as JSON ready for charts: complaints by every classification and by
//! cause and product, response and resolution times with SLA attainment, the complaint
//! pyramid with repurchase after complaints, first-contact resolution, and the service
//! type matrix (冰冷型 / 工厂型 / 友好型 / 高质型) per team and per agent.
//!
//! Every report covers cases created in a period (`since` ≤ created < `until`) and is a
//! handful of aggregate statements — one scan each, grouped in SQL — so its cost follows
//! the period's cases, not the whole history.

use crate::sql::{Conn, Row};
use crate::{Result, Store};
use kefu_domain::Labelled;
use kefu_domain::complaints::*;
use kefu_domain::sla::SlaMetric;
use serde::Serialize;
use std::collections::BTreeMap;

/// The period and scope of a report.
#[derive(Debug, Clone, Copy)]
pub struct Period {
    pub since: i64,
    pub until: i64,
}

/// One bar of a chart.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Bucket {
    pub value: String,
    pub en: String,
    pub zh: String,
    pub count: i64,
    /// Of the report's total, 0–1.
    pub share: f64,
}

fn share(count: i64, total: i64) -> f64 {
    if total == 0 {
        0.0
    } else {
        count as f64 / total as f64
    }
}

fn buckets<T: Labelled>(counts: &BTreeMap<String, i64>, total: i64) -> Vec<Bucket> {
    T::ALL
        .iter()
        .map(|value| {
            let count = counts.get(value.as_str()).copied().unwrap_or(0);
            Bucket {
                value: value.as_str().into(),
                en: value.label_en().into(),
                zh: value.label_zh().into(),
                count,
                share: share(count, total),
            }
        })
        .collect()
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CauseProduct {
    pub cause: String,
    pub product: String,
    pub count: i64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ComplaintReport {
    pub total: i64,
    pub by_severity: Vec<Bucket>,
    pub by_behaviour: Vec<Bucket>,
    pub by_purpose: Vec<Bucket>,
    pub by_cause: Vec<Bucket>,
    pub by_fault_side: Vec<Bucket>,
    pub by_dissatisfaction: Vec<Bucket>,
    /// Escalation level 0 (front line) … 3 (legal advice).
    pub by_escalation_level: Vec<i64>,
    /// Share escalated at least to internal review, external review, legal advice.
    pub escalation_rates: Vec<f64>,
    /// The most frequent causes per product, most first.
    pub by_cause_and_product: Vec<CauseProduct>,
}

/// A histogram of durations.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Distribution {
    /// Upper bounds of the buckets in minutes; the last bucket has none.
    pub bucket_upper_minutes: Vec<i64>,
    pub counts: Vec<i64>,
    /// Cases measured (that had the event).
    pub measured: i64,
    /// Cases without the event yet.
    pub pending: i64,
    pub average_minutes: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Attainment {
    pub metric: SlaMetric,
    pub met: i64,
    pub breached: i64,
    /// Still running or paused.
    pub open: i64,
    /// met / (met + breached); `null` with nothing decided.
    pub attainment: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ResponseReport {
    pub cases: i64,
    pub first_response: Distribution,
    pub resolution: Distribution,
    pub sla: Vec<Attainment>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct RepurchaseRow {
    /// `resolved_quickly` (within a day), `resolved`, `unresolved`.
    pub outcome: String,
    pub complaints: i64,
    /// Customers who bought again after the complaint.
    pub repurchased: i64,
    pub rate: Option<f64>,
    /// The textbook's figure for this outcome.
    pub textbook_rate: f64,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PyramidReport {
    /// Formal complaints (complaint cases).
    pub formal_complaints: i64,
    /// Dissatisfaction told to the front line: other cases rated 1–2.
    pub front_line_dissatisfied: i64,
    /// The silent majority estimated from the textbook's pyramid (5 % : 26 % : 69 %).
    pub estimated_silent: i64,
    /// The textbook's shares: formal, front line, silent.
    pub textbook_shares: [f64; 3],
    pub repurchase: Vec<RepurchaseRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FcrRow {
    /// The first-contact owner (首问负责人); `null` for cases without one.
    pub owner_id: Option<String>,
    pub owner_email: Option<String>,
    pub solved: i64,
    /// Solved without a transfer and never reopened.
    pub first_contact: i64,
    pub rate: Option<f64>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FcrReport {
    pub solved: i64,
    pub first_contact: i64,
    pub rate: Option<f64>,
    pub by_owner: Vec<FcrRow>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MatrixCell {
    /// The team's or agent's public id; `null` for cases without one.
    pub id: Option<String>,
    pub name: Option<String>,
    pub cases: i64,
    /// Process axis: first-response SLA attainment (0–1).
    pub timeliness: Option<f64>,
    /// Staff axis: average CSAT (1–5).
    pub satisfaction: Option<f64>,
    pub csat_answers: i64,
    /// `cold` 冰冷型, `factory` 工厂型, `friendly` 友好型, `high_quality` 高质型;
    /// `null` while there is too little data to say.
    pub quadrant: Option<String>,
    pub quadrant_zh: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct MatrixReport {
    /// Timely means at least this first-response attainment.
    pub timeliness_threshold: f64,
    /// Friendly means at least this average CSAT.
    pub satisfaction_threshold: f64,
    /// Fewer decided clocks or CSAT answers than this: no quadrant.
    pub minimum_sample: i64,
    pub by_team: Vec<MatrixCell>,
    pub by_agent: Vec<MatrixCell>,
}

const TIMELY: f64 = 0.8;
const FRIENDLY: f64 = 4.0;
const MIN_SAMPLE: i64 = 5;

/// The quadrant of the textbook's service-type matrix.
pub fn quadrant(timeliness: f64, satisfaction: f64) -> (&'static str, &'static str) {
    match (timeliness >= TIMELY, satisfaction >= FRIENDLY) {
        (true, true) => ("high_quality", "高质型"),
        (true, false) => ("factory", "工厂型"),
        (false, true) => ("friendly", "友好型"),
        (false, false) => ("cold", "冰冷型"),
    }
}

/// Upper bounds of the duration buckets, in minutes.
const BOUNDS: [i64; 7] = [15, 60, 240, 480, 1440, 4320, 10080];

fn distribution_sql(column: &str) -> String {
    let mut parts = Vec::new();
    let mut lower: Option<i64> = None;
    for bound in BOUNDS {
        let ms = bound * 60_000;
        parts.push(match lower {
            None => format!("SUM(CASE WHEN k.{column} IS NOT NULL AND k.{column} - k.created_at <= {ms} THEN 1 ELSE 0 END)"),
            Some(low) => format!("SUM(CASE WHEN k.{column} - k.created_at > {low} AND k.{column} - k.created_at <= {ms} THEN 1 ELSE 0 END)"),
        });
        lower = Some(ms);
    }
    parts.push(format!(
        "SUM(CASE WHEN k.{column} - k.created_at > {} THEN 1 ELSE 0 END)",
        lower.unwrap_or(0)
    ));
    parts.push(format!(
        "SUM(CASE WHEN k.{column} IS NULL THEN 1 ELSE 0 END)"
    ));
    parts.push(format!(
        "SUM(CASE WHEN k.{column} IS NULL THEN 0 ELSE k.{column} - k.created_at END)"
    ));
    parts
        .into_iter()
        .enumerate()
        .map(|(i, p)| format!("CAST(COALESCE({p}, 0) AS BIGINT) AS {column}_{i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn distribution(row: &Row, column: &str) -> Result<Distribution> {
    let mut counts = Vec::new();
    for i in 0..=BOUNDS.len() {
        counts.push(row.get::<i64>(&format!("{column}_{i}"))?);
    }
    let pending: i64 = row.get(&format!("{column}_{}", BOUNDS.len() + 1))?;
    let sum: i64 = row.get(&format!("{column}_{}", BOUNDS.len() + 2))?;
    let measured: i64 = counts.iter().sum();
    Ok(Distribution {
        bucket_upper_minutes: BOUNDS.to_vec(),
        counts,
        measured,
        pending,
        average_minutes: (measured > 0).then(|| sum as f64 / measured as f64 / 60_000.0),
    })
}

async fn fetch(conn: &mut Conn, sql: String, period: Period) -> Result<Vec<Row>> {
    conn.fetch_all(
        crate::sql::q_dynamic(sql)
            .bind(period.since)
            .bind(period.until),
    )
    .await
}

impl Store {
    /// Complaints by each classification, escalation, and cause × product.
    pub async fn complaint_report(&self, period: Period) -> Result<ComplaintReport> {
        let mut conn = self.snapshot().await?;
        let rows = fetch(
            &mut conn,
            "SELECT p.severity, p.behaviour, p.purpose, p.cause, p.fault_side, p.dissatisfaction, p.escalation_level, COUNT(*) AS n FROM complaints p JOIN cases k ON k.id = p.case_id WHERE k.created_at >= $1 AND k.created_at < $2 GROUP BY p.severity, p.behaviour, p.purpose, p.cause, p.fault_side, p.dissatisfaction, p.escalation_level".into(),
            period,
        )
        .await?;
        let mut counts: [BTreeMap<String, i64>; 6] = Default::default();
        let mut levels = vec![0i64; 4];
        let mut total = 0i64;
        for row in &rows {
            let n: i64 = row.get("n")?;
            total += n;
            for (i, column) in [
                "severity",
                "behaviour",
                "purpose",
                "cause",
                "fault_side",
                "dissatisfaction",
            ]
            .iter()
            .enumerate()
            {
                *counts[i].entry(row.get::<String>(column)?).or_default() += n;
            }
            let level = usize::try_from(row.get::<i64>("escalation_level")?)
                .unwrap_or(0)
                .min(3);
            levels[level] += n;
        }
        let escalation_rates = (1..4)
            .map(|from| share(levels[from..].iter().sum(), total))
            .collect();
        let by_cause_and_product = fetch(
            &mut conn,
            "SELECT p.cause, p.product, COUNT(*) AS n FROM complaints p JOIN cases k ON k.id = p.case_id WHERE k.created_at >= $1 AND k.created_at < $2 GROUP BY p.cause, p.product ORDER BY COUNT(*) DESC, p.cause, p.product LIMIT 50".into(),
            period,
        )
        .await?
        .iter()
        .map(|row| {
            Ok(CauseProduct {
                cause: row.get("cause")?,
                product: row.get("product")?,
                count: row.get("n")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
        Ok(ComplaintReport {
            total,
            by_severity: buckets::<Severity>(&counts[0], total),
            by_behaviour: buckets::<Behaviour>(&counts[1], total),
            by_purpose: buckets::<Purpose>(&counts[2], total),
            by_cause: buckets::<Cause>(&counts[3], total),
            by_fault_side: buckets::<FaultSide>(&counts[4], total),
            by_dissatisfaction: buckets::<Dissatisfaction>(&counts[5], total),
            by_escalation_level: levels,
            escalation_rates,
            by_cause_and_product,
        })
    }

    /// Time to first response and to resolution, and SLA attainment per metric.
    pub async fn response_report(&self, period: Period) -> Result<ResponseReport> {
        let mut conn = self.snapshot().await?;
        let sql = format!(
            "SELECT COUNT(*) AS cases, {}, {} FROM cases k WHERE k.created_at >= $1 AND k.created_at < $2 AND k.status <> 'merged'",
            distribution_sql("first_response_at"),
            distribution_sql("solved_at")
        );
        let rows = fetch(&mut conn, sql, period).await?;
        let row = rows
            .first()
            .ok_or_else(|| crate::StoreError::Database("no aggregate row".into()))?;
        let clocks = fetch(
            &mut conn,
            "SELECT c.metric, c.state, COUNT(*) AS n FROM sla_clocks c JOIN cases k ON k.id = c.case_id WHERE k.created_at >= $1 AND k.created_at < $2 GROUP BY c.metric, c.state".into(),
            period,
        )
        .await?;
        let mut sla: Vec<Attainment> = SlaMetric::ALL
            .iter()
            .map(|metric| Attainment {
                metric: *metric,
                met: 0,
                breached: 0,
                open: 0,
                attainment: None,
            })
            .collect();
        for clock in &clocks {
            let metric: SlaMetric = crate::customers::parse_label(clock, "metric")?;
            let state: String = clock.get("state")?;
            let n: i64 = clock.get("n")?;
            if let Some(entry) = sla.iter_mut().find(|a| a.metric == metric) {
                match state.as_str() {
                    "met" => entry.met += n,
                    "breached" => entry.breached += n,
                    "running" | "paused" => entry.open += n,
                    _ => {}
                }
            }
        }
        for entry in &mut sla {
            let decided = entry.met + entry.breached;
            entry.attainment = (decided > 0).then(|| entry.met as f64 / decided as f64);
        }
        Ok(ResponseReport {
            cases: row.get("cases")?,
            first_response: distribution(row, "first_response_at")?,
            resolution: distribution(row, "solved_at")?,
            sla,
        })
    }

    /// The complaint pyramid and repurchase after complaints by outcome.
    pub async fn pyramid_report(&self, period: Period) -> Result<PyramidReport> {
        let mut conn = self.snapshot().await?;
        let rows = fetch(
            &mut conn,
            "SELECT CAST(COALESCE(SUM(CASE WHEN k.kind = 'complaint' THEN 1 ELSE 0 END), 0) AS BIGINT) AS formal, CAST(COALESCE(SUM(CASE WHEN k.kind <> 'complaint' AND k.csat_score <= 2 THEN 1 ELSE 0 END), 0) AS BIGINT) AS front FROM cases k WHERE k.created_at >= $1 AND k.created_at < $2".into(),
            period,
        )
        .await?;
        let row = rows
            .first()
            .ok_or_else(|| crate::StoreError::Database("no aggregate row".into()))?;
        let formal: i64 = row.get("formal")?;
        let front: i64 = row.get("front")?;
        let outcomes = fetch(
            &mut conn,
            "SELECT x.outcome, COUNT(*) AS n, CAST(COALESCE(SUM(x.bought), 0) AS BIGINT) AS bought FROM (SELECT CASE WHEN p.stage = 'closed' AND p.resolved_at - k.created_at <= 86400000 THEN 'resolved_quickly' WHEN p.stage = 'closed' THEN 'resolved' ELSE 'unresolved' END AS outcome, CASE WHEN EXISTS (SELECT 1 FROM customer_transactions t WHERE t.customer_id = k.customer_id AND t.occurred_at > COALESCE(p.resolved_at, k.created_at)) THEN 1 ELSE 0 END AS bought FROM complaints p JOIN cases k ON k.id = p.case_id WHERE k.created_at >= $1 AND k.created_at < $2) x GROUP BY x.outcome".into(),
            period,
        )
        .await?;
        let mut repurchase: Vec<RepurchaseRow> = [
            ("resolved_quickly", 0.82),
            ("resolved", 0.54),
            ("unresolved", 0.19),
        ]
        .iter()
        .map(|(outcome, textbook)| RepurchaseRow {
            outcome: (*outcome).into(),
            complaints: 0,
            repurchased: 0,
            rate: None,
            textbook_rate: *textbook,
        })
        .collect();
        for row in &outcomes {
            let outcome: String = row.get("outcome")?;
            if let Some(entry) = repurchase.iter_mut().find(|r| r.outcome == outcome) {
                entry.complaints = row.get("n")?;
                entry.repurchased = row.get("bought")?;
                entry.rate = (entry.complaints > 0)
                    .then(|| entry.repurchased as f64 / entry.complaints as f64);
            }
        }
        Ok(PyramidReport {
            formal_complaints: formal,
            front_line_dissatisfied: front,
            estimated_silent: formal * 69 / 5,
            textbook_shares: [0.05, 0.26, 0.69],
            repurchase,
        })
    }

    /// First-contact resolution: solved without a transfer and never reopened, overall
    /// and per first-contact owner.
    pub async fn fcr_report(&self, period: Period) -> Result<FcrReport> {
        let mut conn = self.snapshot().await?;
        let rows = fetch(
            &mut conn,
            "SELECT u.public_id, u.email, COUNT(*) AS solved, CAST(COALESCE(SUM(CASE WHEN NOT EXISTS (SELECT 1 FROM case_transfers t WHERE t.case_id = k.id) AND NOT EXISTS (SELECT 1 FROM case_status_changes s WHERE s.case_id = k.id AND s.from_status = 'solved') THEN 1 ELSE 0 END), 0) AS BIGINT) AS first_contact FROM cases k LEFT JOIN users u ON u.id = k.first_owner_id WHERE k.created_at >= $1 AND k.created_at < $2 AND k.solved_at IS NOT NULL GROUP BY u.public_id, u.email ORDER BY COUNT(*) DESC".into(),
            period,
        )
        .await?;
        let mut by_owner = Vec::with_capacity(rows.len());
        let (mut solved, mut first) = (0i64, 0i64);
        for row in &rows {
            let s: i64 = row.get("solved")?;
            let f: i64 = row.get("first_contact")?;
            solved += s;
            first += f;
            by_owner.push(FcrRow {
                owner_id: row.get("public_id")?,
                owner_email: row.get("email")?,
                solved: s,
                first_contact: f,
                rate: (s > 0).then(|| f as f64 / s as f64),
            });
        }
        Ok(FcrReport {
            solved,
            first_contact: first,
            rate: (solved > 0).then(|| first as f64 / solved as f64),
            by_owner,
        })
    }

    /// The service-type matrix per team and per agent: first-response attainment ×
    /// average CSAT.
    pub async fn service_matrix(&self, period: Period) -> Result<MatrixReport> {
        let mut conn = self.snapshot().await?;
        let mut cells = Vec::new();
        for (group, join) in [
            ("t", "LEFT JOIN teams g ON g.id = k.team_id"),
            ("a", "LEFT JOIN users g ON g.id = k.assignee_id"),
        ] {
            let name = if group == "t" { "g.name" } else { "g.email" };
            let sql = format!(
                "SELECT g.public_id AS id, {name} AS name, COUNT(*) AS cases, CAST(COALESCE(SUM(CASE WHEN c.state = 'met' THEN 1 ELSE 0 END), 0) AS BIGINT) AS met, CAST(COALESCE(SUM(CASE WHEN c.state = 'breached' THEN 1 ELSE 0 END), 0) AS BIGINT) AS breached, CAST(COALESCE(SUM(k.csat_score), 0) AS BIGINT) AS csat_sum, COUNT(k.csat_score) AS csat_n FROM cases k LEFT JOIN sla_clocks c ON c.case_id = k.id AND c.metric = 'first_response' {join} WHERE k.created_at >= $1 AND k.created_at < $2 GROUP BY g.public_id, {name} ORDER BY COUNT(*) DESC LIMIT 500"
            );
            let rows = fetch(&mut conn, sql, period).await?;
            let mut list = Vec::with_capacity(rows.len());
            for row in &rows {
                let met: i64 = row.get("met")?;
                let breached: i64 = row.get("breached")?;
                let csat_n: i64 = row.get("csat_n")?;
                let csat_sum: i64 = row.get("csat_sum")?;
                let timeliness = (met + breached > 0).then(|| met as f64 / (met + breached) as f64);
                let satisfaction = (csat_n > 0).then(|| csat_sum as f64 / csat_n as f64);
                let enough = met + breached >= MIN_SAMPLE && csat_n >= MIN_SAMPLE;
                let q = match (enough, timeliness, satisfaction) {
                    (true, Some(t), Some(s)) => Some(quadrant(t, s)),
                    _ => None,
                };
                list.push(MatrixCell {
                    id: row.get("id")?,
                    name: row.get("name")?,
                    cases: row.get("cases")?,
                    timeliness,
                    satisfaction,
                    csat_answers: csat_n,
                    quadrant: q.map(|(en, _)| en.to_string()),
                    quadrant_zh: q.map(|(_, zh)| zh.to_string()),
                });
            }
            cells.push(list);
        }
        let by_agent = cells.pop().unwrap_or_default();
        let by_team = cells.pop().unwrap_or_default();
        Ok(MatrixReport {
            timeliness_threshold: TIMELY,
            satisfaction_threshold: FRIENDLY,
            minimum_sample: MIN_SAMPLE,
            by_team,
            by_agent,
        })
    }
}
