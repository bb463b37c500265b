//! Reports (报表), as JSON ready for charts: complaints by every classification and by
//! cause and product, response and resolution times with SLA attainment, the complaint
//! pyramid with repurchase after complaints, first-contact resolution, and the service
//! type matrix (冰冷型 / 工厂型 / 友好型 / 高质型) per team and per agent.
//!
//! Every report covers cases created in a period (`since` ≤ created < `until`). Whole UTC
//! days are read from per-day roll-ups (`report_case_days`, `report_complaint_days`);
//! the partial days at the period's edges, and days whose cases changed since their
//! roll-up was computed ("dirty" days, marked by database triggers), are computed from
//! the cases with the very same statements. A report is therefore always exact, and its
//! cost follows the number of days and the day's changes, not the number of cases.
//! [`Store::refresh_reports`] (the background sweep) recomputes dirty days.

use crate::sql::{Conn, Dialect, Row, q};
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

const DAY: i64 = 86_400_000;

/// The measures summed per day in `report_case_days`, in column order. `fr_*` and `sv_*`
/// are the first-response and resolution histograms (one count per bucket of
/// [`BOUNDS`], then cases without the event, then the summed milliseconds); the last
/// nine count SLA clocks per metric and state.
const MEASURES: [&str; 36] = [
    "cases",
    "fr_0",
    "fr_1",
    "fr_2",
    "fr_3",
    "fr_4",
    "fr_5",
    "fr_6",
    "fr_7",
    "fr_pending",
    "fr_sum",
    "sv_0",
    "sv_1",
    "sv_2",
    "sv_3",
    "sv_4",
    "sv_5",
    "sv_6",
    "sv_7",
    "sv_pending",
    "sv_sum",
    "formal",
    "front",
    "solved",
    "first_contact",
    "csat_sum",
    "csat_n",
    "first_response_met",
    "first_response_breached",
    "first_response_open",
    "next_response_met",
    "next_response_breached",
    "next_response_open",
    "resolution_met",
    "resolution_breached",
    "resolution_open",
];

/// Where the histograms and the clock counts start in [`MEASURES`].
const FIRST_RESPONSE: usize = 1;
const RESOLUTION: usize = 11;
const CLOCKS: usize = 27;

type Measures = [i64; MEASURES.len()];

fn measure(name: &str) -> usize {
    MEASURES.iter().position(|m| *m == name).unwrap_or(0)
}

/// What the case measures are summed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Dim {
    /// Everything (`ref_id` 0).
    All,
    Team,
    /// The assignee.
    Agent,
    /// The first-contact owner (首问负责人).
    Owner,
}

impl Dim {
    const ALL: [Dim; 4] = [Dim::All, Dim::Team, Dim::Agent, Dim::Owner];

    fn as_str(self) -> &'static str {
        match self {
            Dim::All => "all",
            Dim::Team => "team",
            Dim::Agent => "agent",
            Dim::Owner => "owner",
        }
    }

    fn parse(text: &str) -> Option<Dim> {
        Dim::ALL.into_iter().find(|d| d.as_str() == text)
    }
}

type CaseFacts = BTreeMap<(Dim, i64), Measures>;

/// What complaints are counted by; `cause_product` keeps the product in `detail`.
const COMPLAINT_DIMS: [&str; 9] = [
    "severity",
    "behaviour",
    "purpose",
    "cause",
    "fault_side",
    "dissatisfaction",
    "level",
    "cause_product",
    "outcome",
];

/// (dim, value, detail) → (complaints, repurchased).
type ComplaintFacts = BTreeMap<(String, String, String), [i64; 2]>;

/// The SQL of a histogram's ten measures over `k.{column} - k.created_at`.
fn histogram_sql(column: &str) -> Vec<String> {
    let span = format!("k.{column} - k.created_at");
    let mut parts = Vec::new();
    let mut lower: Option<i64> = None;
    for bound in BOUNDS {
        let ms = bound * 60_000;
        parts.push(match lower {
            None => format!("k.{column} IS NOT NULL AND {span} <= {ms}"),
            Some(low) => format!("{span} > {low} AND {span} <= {ms}"),
        });
        lower = Some(ms);
    }
    let mut sums: Vec<String> = parts
        .into_iter()
        .chain([
            format!("{span} > {}", lower.unwrap_or(0)),
            format!("k.{column} IS NULL"),
        ])
        .map(|condition| format!("SUM(CASE WHEN {condition} THEN 1 ELSE 0 END)"))
        .collect();
    sums.push(format!(
        "SUM(CASE WHEN k.{column} IS NULL THEN 0 ELSE {span} END)"
    ));
    sums
}

/// Per (team, assignee, first owner): every measure but the clocks, for cases created in
/// `$1 ≤ created_at < $2`. Merged cases are duplicates and count nowhere.
///
/// Whether a case was transferred or reopened is asked per case on SQLite, which then
/// walks the `created_at` index; PostgreSQL would answer the same question by hashing
/// every transfer ever made, so there transfers and reopenings are joined as ranges of
/// their own (on SQLite those joins tempt the planner into scanning every case in team
/// order instead).
fn case_facts_sql(dialect: Dialect) -> String {
    let mut sums = vec!["COUNT(*)".to_string()];
    sums.extend(histogram_sql("first_response_at"));
    sums.extend(histogram_sql("solved_at"));
    sums.extend([
        "SUM(CASE WHEN k.kind = 'complaint' THEN 1 ELSE 0 END)".into(),
        "SUM(CASE WHEN k.kind <> 'complaint' AND k.csat_score <= 2 THEN 1 ELSE 0 END)".into(),
        "SUM(CASE WHEN k.solved_at IS NOT NULL THEN 1 ELSE 0 END)".into(),
        match dialect {
            Dialect::Sqlite => "SUM(CASE WHEN k.solved_at IS NOT NULL AND NOT EXISTS (SELECT 1 FROM case_transfers t WHERE t.case_id = k.id) AND NOT EXISTS (SELECT 1 FROM case_status_changes s WHERE s.case_id = k.id AND s.from_status = 'solved') THEN 1 ELSE 0 END)",
            Dialect::Postgres => "SUM(CASE WHEN k.solved_at IS NOT NULL AND moved.case_id IS NULL AND reopened.case_id IS NULL THEN 1 ELSE 0 END)",
        }
        .into(),
        "SUM(COALESCE(k.csat_score, 0))".into(),
        "COUNT(k.csat_score)".into(),
    ]);
    debug_assert_eq!(sums.len(), CLOCKS);
    let columns = sums
        .iter()
        .zip(MEASURES)
        .map(|(sum, name)| format!("CAST(COALESCE({sum}, 0) AS BIGINT) AS {name}"))
        .collect::<Vec<_>>()
        .join(", ");
    let joins = match dialect {
        Dialect::Sqlite => "",
        Dialect::Postgres => {
            " LEFT JOIN (SELECT t.case_id FROM case_transfers t JOIN cases c ON c.id = t.case_id WHERE c.created_at >= $1 AND c.created_at < $2 GROUP BY t.case_id) moved ON moved.case_id = k.id \
             LEFT JOIN (SELECT s.case_id FROM case_status_changes s JOIN cases c ON c.id = s.case_id WHERE c.created_at >= $1 AND c.created_at < $2 AND s.from_status = 'solved' GROUP BY s.case_id) reopened ON reopened.case_id = k.id"
        }
    };
    format!(
        "SELECT k.team_id, k.assignee_id, k.first_owner_id, {columns} FROM cases k{joins} WHERE k.created_at >= $1 AND k.created_at < $2 AND k.status <> 'merged' GROUP BY k.team_id, k.assignee_id, k.first_owner_id"
    )
}

const CLOCK_FACTS: &str = "SELECT k.team_id, k.assignee_id, k.first_owner_id, c.metric, c.state, COUNT(*) AS n FROM sla_clocks c JOIN cases k ON k.id = c.case_id WHERE k.created_at >= $1 AND k.created_at < $2 AND k.status <> 'merged' GROUP BY k.team_id, k.assignee_id, k.first_owner_id, c.metric, c.state";

const COMPLAINT_FACTS: &str = "SELECT x.severity, x.behaviour, x.purpose, x.cause, x.fault_side, x.dissatisfaction, x.escalation_level, x.product, x.outcome, COUNT(*) AS n, CAST(COALESCE(SUM(x.bought), 0) AS BIGINT) AS bought FROM (SELECT p.severity, p.behaviour, p.purpose, p.cause, p.fault_side, p.dissatisfaction, p.escalation_level, p.product, CASE WHEN p.stage = 'closed' AND p.resolved_at - k.created_at <= 86400000 THEN 'resolved_quickly' WHEN p.stage = 'closed' THEN 'resolved' ELSE 'unresolved' END AS outcome, CASE WHEN EXISTS (SELECT 1 FROM customer_transactions t WHERE t.customer_id = k.customer_id AND t.occurred_at > COALESCE(p.resolved_at, k.created_at)) THEN 1 ELSE 0 END AS bought FROM complaints p JOIN cases k ON k.id = p.case_id WHERE k.created_at >= $1 AND k.created_at < $2 AND k.status <> 'merged') x GROUP BY x.severity, x.behaviour, x.purpose, x.cause, x.fault_side, x.dissatisfaction, x.escalation_level, x.product, x.outcome";

fn refs(row: &Row) -> Result<[(Dim, i64); 4]> {
    let key = |column: &str| -> Result<i64> { Ok(row.get::<Option<i64>>(column)?.unwrap_or(0)) };
    Ok([
        (Dim::All, 0),
        (Dim::Team, key("team_id")?),
        (Dim::Agent, key("assignee_id")?),
        (Dim::Owner, key("first_owner_id")?),
    ])
}

/// Computes the facts of cases created in `[from, to)` from the cases themselves.
async fn live_facts(
    conn: &mut Conn,
    from: i64,
    to: i64,
    cases: Option<&mut CaseFacts>,
    clocks: bool,
    complaints: Option<&mut ComplaintFacts>,
) -> Result<()> {
    let range = |sql: String| crate::sql::q_dynamic(sql).bind(from).bind(to);
    if let Some(facts) = cases {
        let sql = case_facts_sql(conn.dialect());
        for row in conn.fetch_all(range(sql)).await? {
            let mut values: Measures = [0; MEASURES.len()];
            for (i, name) in MEASURES[..CLOCKS].iter().enumerate() {
                values[i] = row.get(name)?;
            }
            for key in refs(&row)? {
                let sums = facts.entry(key).or_insert([0; MEASURES.len()]);
                for (sum, value) in sums.iter_mut().zip(values) {
                    *sum += value;
                }
            }
        }
        let clock_rows = if clocks {
            conn.fetch_all(range(CLOCK_FACTS.into())).await?
        } else {
            Vec::new()
        };
        for row in clock_rows {
            let metric: SlaMetric = crate::customers::parse_label(&row, "metric")?;
            let state: String = row.get("state")?;
            let offset = match state.as_str() {
                "met" => 0,
                "breached" => 1,
                "running" | "paused" => 2,
                _ => continue,
            };
            let index = CLOCKS
                + 3 * SlaMetric::ALL
                    .iter()
                    .position(|m| *m == metric)
                    .unwrap_or(0)
                + offset;
            let n: i64 = row.get("n")?;
            for key in refs(&row)? {
                facts.entry(key).or_insert([0; MEASURES.len()])[index] += n;
            }
        }
    }
    if let Some(facts) = complaints {
        for row in conn.fetch_all(range(COMPLAINT_FACTS.into())).await? {
            let n: i64 = row.get("n")?;
            let bought: i64 = row.get("bought")?;
            let cause: String = row.get("cause")?;
            let level = row.get::<i64>("escalation_level")?.clamp(0, 3);
            let mut add = |dim: &str, value: String, detail: String, repurchased: i64| {
                let entry = facts.entry((dim.into(), value, detail)).or_insert([0, 0]);
                entry[0] += n;
                entry[1] += repurchased;
            };
            for dim in [
                "severity",
                "behaviour",
                "purpose",
                "fault_side",
                "dissatisfaction",
            ] {
                add(dim, row.get(dim)?, String::new(), 0);
            }
            add("cause", cause.clone(), String::new(), 0);
            add("level", level.to_string(), String::new(), 0);
            add("cause_product", cause, row.get("product")?, 0);
            add("outcome", row.get("outcome")?, String::new(), bought);
        }
    }
    Ok(())
}

/// How a period is read: whole days from the roll-ups (`days`, skipping dirty ones) and
/// the rest — partial days at the edges and dirty days — from the cases.
#[derive(Debug, Default)]
struct Plan {
    days: Option<(i64, i64)>,
    live: Vec<(i64, i64)>,
}

async fn plan(conn: &mut Conn, period: Period) -> Result<Plan> {
    let mut plan = Plan::default();
    if period.since >= period.until {
        return Ok(plan);
    }
    let first = period.since.div_euclid(DAY) + i64::from(period.since.rem_euclid(DAY) != 0);
    let end = period.until.div_euclid(DAY);
    if first >= end {
        plan.live.push((period.since, period.until));
        return Ok(plan);
    }
    if period.since < first * DAY {
        plan.live.push((period.since, first * DAY));
    }
    let dirty = conn
        .fetch_all(
            q("SELECT DISTINCT day FROM report_dirty_days WHERE day >= $1 AND day < $2 ORDER BY day")
                .bind(first)
                .bind(end),
        )
        .await?;
    for row in dirty {
        let day: i64 = row.get("day")?;
        match plan.live.last_mut() {
            Some(last) if last.1 == day * DAY => last.1 = (day + 1) * DAY,
            _ => plan.live.push((day * DAY, (day + 1) * DAY)),
        }
    }
    if end * DAY < period.until {
        match plan.live.last_mut() {
            Some(last) if last.1 == end * DAY => last.1 = period.until,
            _ => plan.live.push((end * DAY, period.until)),
        }
    }
    plan.days = Some((first, end));
    Ok(plan)
}

fn in_list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>, quote: bool) -> String {
    items
        .into_iter()
        .map(|item| {
            if quote {
                format!("'{item}'")
            } else {
                item.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The case measures of a period by the given dimensions, from roll-ups and cases.
///
/// Without `clocks` the SLA clock counts stay zero where they come from the cases.
async fn case_facts(
    conn: &mut Conn,
    period: Period,
    dims: &[Dim],
    clocks: bool,
) -> Result<CaseFacts> {
    let plan = plan(conn, period).await?;
    let mut facts = CaseFacts::new();
    if let Some((first, end)) = plan.days {
        let sums = MEASURES
            .iter()
            .map(|m| format!("CAST(COALESCE(SUM(r.{m}), 0) AS BIGINT) AS {m}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT r.dim, r.ref_id, {sums} FROM report_case_days r WHERE r.dim IN ({}) AND r.day >= $1 AND r.day < $2 AND NOT EXISTS (SELECT 1 FROM report_dirty_days d WHERE d.day = r.day) GROUP BY r.dim, r.ref_id",
            in_list(dims.iter().map(|d| d.as_str()), true)
        );
        for row in fetch(
            conn,
            sql,
            Period {
                since: first,
                until: end,
            },
        )
        .await?
        {
            let Some(dim) = Dim::parse(&row.get::<String>("dim")?) else {
                continue;
            };
            let mut values: Measures = [0; MEASURES.len()];
            for (i, name) in MEASURES.iter().enumerate() {
                values[i] = row.get(name)?;
            }
            facts.insert((dim, row.get("ref_id")?), values);
        }
    }
    for (from, to) in plan.live {
        let mut live = CaseFacts::new();
        live_facts(conn, from, to, Some(&mut live), clocks, None).await?;
        for (key, values) in live {
            if dims.contains(&key.0) {
                let sums = facts.entry(key).or_insert([0; MEASURES.len()]);
                for (sum, value) in sums.iter_mut().zip(values) {
                    *sum += value;
                }
            }
        }
    }
    Ok(facts)
}

/// The complaint counts of a period, from roll-ups and cases.
async fn complaint_facts(conn: &mut Conn, period: Period) -> Result<ComplaintFacts> {
    let plan = plan(conn, period).await?;
    let mut facts = ComplaintFacts::new();
    if let Some((first, end)) = plan.days {
        let sql = "SELECT r.dim, r.value, r.detail, CAST(SUM(r.n) AS BIGINT) AS n, CAST(SUM(r.repurchased) AS BIGINT) AS repurchased FROM report_complaint_days r WHERE r.dim IN (".to_string()
            + &in_list(COMPLAINT_DIMS, true)
            + ") AND r.day >= $1 AND r.day < $2 AND NOT EXISTS (SELECT 1 FROM report_dirty_days d WHERE d.day = r.day) GROUP BY r.dim, r.value, r.detail";
        for row in fetch(
            conn,
            sql,
            Period {
                since: first,
                until: end,
            },
        )
        .await?
        {
            facts.insert(
                (row.get("dim")?, row.get("value")?, row.get("detail")?),
                [row.get("n")?, row.get("repurchased")?],
            );
        }
    }
    for (from, to) in plan.live {
        live_facts(conn, from, to, None, false, Some(&mut facts)).await?;
    }
    Ok(facts)
}

/// Public ids and names of the teams or users a report mentions.
async fn names(
    conn: &mut Conn,
    dim: Dim,
    ids: impl IntoIterator<Item = i64>,
) -> Result<BTreeMap<i64, (String, String)>> {
    let ids: Vec<i64> = ids.into_iter().filter(|id| *id != 0).collect();
    let mut out = BTreeMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let (table, name) = match dim {
        Dim::Team => ("teams", "name"),
        _ => ("users", "email"),
    };
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, public_id, {name} AS name FROM {table} WHERE id IN ({})",
            in_list(chunk, false)
        );
        for row in conn.fetch_all(crate::sql::q_dynamic(sql)).await? {
            out.insert(row.get("id")?, (row.get("public_id")?, row.get("name")?));
        }
    }
    Ok(out)
}

fn distribution(values: &Measures, start: usize) -> Distribution {
    let counts = values[start..start + BOUNDS.len() + 1].to_vec();
    let pending = values[start + BOUNDS.len() + 1];
    let sum = values[start + BOUNDS.len() + 2];
    let measured: i64 = counts.iter().sum();
    Distribution {
        bucket_upper_minutes: BOUNDS.to_vec(),
        counts,
        measured,
        pending,
        average_minutes: (measured > 0).then(|| sum as f64 / measured as f64 / 60_000.0),
    }
}

fn ratio(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 / whole as f64)
}

/// A snapshot for a report. On PostgreSQL every statement is planned for its actual
/// period: a generic plan for `created_at >= $1 AND created_at < $2` cannot know whether
/// the range is an hour or ten years and may scan every case.
async fn report_snapshot(store: &Store) -> Result<Conn> {
    let mut conn = store.snapshot().await?;
    if conn.dialect() == Dialect::Postgres {
        conn.execute(q("SET LOCAL plan_cache_mode = force_custom_plan"))
            .await?;
    }
    Ok(conn)
}

async fn fetch(conn: &mut Conn, sql: String, period: Period) -> Result<Vec<Row>> {
    conn.fetch_all(
        crate::sql::q_dynamic(sql)
            .bind(period.since)
            .bind(period.until),
    )
    .await
}

/// What [`Store::refresh_reports`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct RefreshReport {
    /// Days recomputed.
    pub days: u64,
    /// Dirty days still waiting (the time budget ran out).
    pub remaining: u64,
}

/// Days recomputed per transaction: short enough not to hold SQLite's write lock long.
const REFRESH_BATCH: usize = 4;

impl Store {
    /// Recomputes the roll-ups of dirty days, oldest first, until none is left or
    /// `budget` has passed. Reports are exact either way — dirty days are read from the
    /// cases — so this only makes them fast.
    pub async fn refresh_reports(&self, budget: std::time::Duration) -> Result<RefreshReport> {
        let started = std::time::Instant::now();
        let mut report = RefreshReport::default();
        loop {
            let mut conn = self.write().await?;
            if conn.dialect() == Dialect::Postgres {
                conn.execute(q("SET LOCAL plan_cache_mode = force_custom_plan"))
                    .await?;
            }
            let days: Vec<i64> = conn
                .fetch_all(crate::sql::q_dynamic(format!(
                    "SELECT DISTINCT day FROM report_dirty_days ORDER BY day LIMIT {REFRESH_BATCH}"
                )))
                .await?
                .iter()
                .map(|row| row.get("day"))
                .collect::<Result<_>>()?;
            if days.is_empty() {
                break;
            }
            let list = in_list(&days, false);
            // Markers go first: a change committed after this statement leaves its own
            // marker, and every change before it is seen by the statements below.
            conn.execute(crate::sql::q_dynamic(format!(
                "DELETE FROM report_dirty_days WHERE day IN ({list})"
            )))
            .await?;
            conn.execute(crate::sql::q_dynamic(format!(
                "DELETE FROM report_case_days WHERE dim IN ({}) AND day IN ({list})",
                in_list(Dim::ALL.iter().map(|d| d.as_str()), true)
            )))
            .await?;
            conn.execute(crate::sql::q_dynamic(format!(
                "DELETE FROM report_complaint_days WHERE dim IN ({}) AND day IN ({list})",
                in_list(COMPLAINT_DIMS, true)
            )))
            .await?;
            for day in &days {
                let mut cases = CaseFacts::new();
                let mut complaints = ComplaintFacts::new();
                live_facts(
                    &mut conn,
                    day * DAY,
                    (day + 1) * DAY,
                    Some(&mut cases),
                    true,
                    Some(&mut complaints),
                )
                .await?;
                let rows: Vec<_> = cases.into_iter().collect();
                for chunk in rows.chunks(200) {
                    let mut insert = crate::sql::Builder::new(&format!(
                        "INSERT INTO report_case_days (dim, day, ref_id, {}) VALUES ",
                        MEASURES.join(", ")
                    ));
                    for (i, ((dim, ref_id), values)) in chunk.iter().enumerate() {
                        if i > 0 {
                            insert.push(", ");
                        }
                        let mut args: Vec<crate::sql::Arg> =
                            vec![dim.as_str().into(), (*day).into(), (*ref_id).into()];
                        args.extend(values.iter().map(|v| crate::sql::Arg::from(*v)));
                        insert.values(&args);
                    }
                    conn.execute(insert.query()).await?;
                }
                let rows: Vec<_> = complaints.into_iter().collect();
                for chunk in rows.chunks(500) {
                    let mut insert = crate::sql::Builder::new(
                        "INSERT INTO report_complaint_days (dim, day, value, detail, n, repurchased) VALUES ",
                    );
                    for (i, ((dim, value, detail), [n, repurchased])) in chunk.iter().enumerate() {
                        if i > 0 {
                            insert.push(", ");
                        }
                        insert.values(&[
                            dim.as_str().into(),
                            (*day).into(),
                            value.as_str().into(),
                            detail.as_str().into(),
                            (*n).into(),
                            (*repurchased).into(),
                        ]);
                    }
                    conn.execute(insert.query()).await?;
                }
            }
            conn.commit().await?;
            report.days += days.len() as u64;
            if started.elapsed() >= budget {
                break;
            }
        }
        report.remaining = self
            .read()
            .scalar::<i64>(q(
                "SELECT COUNT(DISTINCT day) AS value FROM report_dirty_days",
            ))
            .await?
            .max(0) as u64;
        Ok(report)
    }

    /// Marks every day dirty, so the next refreshes rebuild all roll-ups (after a
    /// change of how a measure is computed, or to check them against the cases).
    pub async fn invalidate_reports(&self) -> Result<()> {
        let mut conn = self.write().await?;
        conn.execute(match conn.dialect() {
            Dialect::Sqlite => q(
                "INSERT OR IGNORE INTO report_dirty_days (day) SELECT DISTINCT created_at / 86400000 FROM cases",
            ),
            Dialect::Postgres => q(
                "INSERT INTO report_dirty_days (day) SELECT DISTINCT created_at / 86400000 FROM cases",
            ),
        })
        .await?;
        conn.commit().await
    }

    /// Complaints by each classification, escalation, and cause × product.
    pub async fn complaint_report(&self, period: Period) -> Result<ComplaintReport> {
        let mut conn = report_snapshot(self).await?;
        let facts = complaint_facts(&mut conn, period).await?;
        let mut counts: BTreeMap<&str, BTreeMap<String, i64>> = BTreeMap::new();
        let mut levels = vec![0i64; 4];
        let mut pairs = Vec::new();
        for ((dim, value, detail), [n, _]) in &facts {
            match dim.as_str() {
                "level" => {
                    let level = value.parse::<usize>().unwrap_or(0).min(3);
                    levels[level] += n;
                }
                "cause_product" => pairs.push(CauseProduct {
                    cause: value.clone(),
                    product: detail.clone(),
                    count: *n,
                }),
                "outcome" => {}
                other => {
                    if let Some(dim) = COMPLAINT_DIMS.iter().find(|d| **d == other) {
                        *counts
                            .entry(dim)
                            .or_default()
                            .entry(value.clone())
                            .or_default() += n;
                    }
                }
            }
        }
        let total: i64 = levels.iter().sum();
        let escalation_rates = (1..4)
            .map(|from| share(levels[from..].iter().sum(), total))
            .collect();
        pairs.sort_by(|a, b| {
            b.count
                .cmp(&a.count)
                .then_with(|| a.cause.cmp(&b.cause))
                .then_with(|| a.product.cmp(&b.product))
        });
        pairs.truncate(50);
        let of = |dim: &str| counts.get(dim).cloned().unwrap_or_default();
        Ok(ComplaintReport {
            total,
            by_severity: buckets::<Severity>(&of("severity"), total),
            by_behaviour: buckets::<Behaviour>(&of("behaviour"), total),
            by_purpose: buckets::<Purpose>(&of("purpose"), total),
            by_cause: buckets::<Cause>(&of("cause"), total),
            by_fault_side: buckets::<FaultSide>(&of("fault_side"), total),
            by_dissatisfaction: buckets::<Dissatisfaction>(&of("dissatisfaction"), total),
            by_escalation_level: levels,
            escalation_rates,
            by_cause_and_product: pairs,
        })
    }

    /// Time to first response and to resolution, and SLA attainment per metric.
    pub async fn response_report(&self, period: Period) -> Result<ResponseReport> {
        let mut conn = report_snapshot(self).await?;
        let facts = case_facts(&mut conn, period, &[Dim::All], true).await?;
        let all = facts
            .get(&(Dim::All, 0))
            .copied()
            .unwrap_or([0; MEASURES.len()]);
        let sla = SlaMetric::ALL
            .iter()
            .enumerate()
            .map(|(i, metric)| {
                let [met, breached, open] = [0, 1, 2].map(|k| all[CLOCKS + 3 * i + k]);
                Attainment {
                    metric: *metric,
                    met,
                    breached,
                    open,
                    attainment: ratio(met, met + breached),
                }
            })
            .collect();
        Ok(ResponseReport {
            cases: all[measure("cases")],
            first_response: distribution(&all, FIRST_RESPONSE),
            resolution: distribution(&all, RESOLUTION),
            sla,
        })
    }

    /// The complaint pyramid and repurchase after complaints by outcome.
    pub async fn pyramid_report(&self, period: Period) -> Result<PyramidReport> {
        let mut conn = report_snapshot(self).await?;
        let facts = case_facts(&mut conn, period, &[Dim::All], false).await?;
        let all = facts
            .get(&(Dim::All, 0))
            .copied()
            .unwrap_or([0; MEASURES.len()]);
        let complaints = complaint_facts(&mut conn, period).await?;
        let formal = all[measure("formal")];
        let repurchase = [
            ("resolved_quickly", 0.82),
            ("resolved", 0.54),
            ("unresolved", 0.19),
        ]
        .iter()
        .map(|(outcome, textbook)| {
            let [n, bought] = complaints
                .get(&("outcome".into(), (*outcome).into(), String::new()))
                .copied()
                .unwrap_or([0, 0]);
            RepurchaseRow {
                outcome: (*outcome).into(),
                complaints: n,
                repurchased: bought,
                rate: ratio(bought, n),
                textbook_rate: *textbook,
            }
        })
        .collect();
        Ok(PyramidReport {
            formal_complaints: formal,
            front_line_dissatisfied: all[measure("front")],
            estimated_silent: formal * 69 / 5,
            textbook_shares: [0.05, 0.26, 0.69],
            repurchase,
        })
    }

    /// First-contact resolution: solved without a transfer and never reopened, overall
    /// and per first-contact owner.
    pub async fn fcr_report(&self, period: Period) -> Result<FcrReport> {
        let mut conn = report_snapshot(self).await?;
        let facts = case_facts(&mut conn, period, &[Dim::All, Dim::Owner], false).await?;
        let (solved, first) = (measure("solved"), measure("first_contact"));
        let owners: Vec<(i64, Measures)> = facts
            .iter()
            .filter(|((dim, _), values)| *dim == Dim::Owner && values[solved] > 0)
            .map(|((_, id), values)| (*id, *values))
            .collect();
        let names = names(&mut conn, Dim::Owner, owners.iter().map(|(id, _)| *id)).await?;
        let mut by_owner: Vec<FcrRow> = owners
            .iter()
            .map(|(id, values)| FcrRow {
                owner_id: names.get(id).map(|n| n.0.clone()),
                owner_email: names.get(id).map(|n| n.1.clone()),
                solved: values[solved],
                first_contact: values[first],
                rate: ratio(values[first], values[solved]),
            })
            .collect();
        by_owner.sort_by_key(|row| std::cmp::Reverse(row.solved));
        let all = facts
            .get(&(Dim::All, 0))
            .copied()
            .unwrap_or([0; MEASURES.len()]);
        Ok(FcrReport {
            solved: all[solved],
            first_contact: all[first],
            rate: ratio(all[first], all[solved]),
            by_owner,
        })
    }

    /// The service-type matrix per team and per agent: first-response attainment ×
    /// average CSAT.
    pub async fn service_matrix(&self, period: Period) -> Result<MatrixReport> {
        let mut conn = report_snapshot(self).await?;
        let facts = case_facts(&mut conn, period, &[Dim::Team, Dim::Agent], true).await?;
        let (met, breached) = (
            measure("first_response_met"),
            measure("first_response_breached"),
        );
        let (csat_sum, csat_n) = (measure("csat_sum"), measure("csat_n"));
        let mut cells = Vec::new();
        for dim in [Dim::Team, Dim::Agent] {
            let rows: Vec<(i64, Measures)> = facts
                .iter()
                .filter(|((d, _), values)| *d == dim && values[0] > 0)
                .map(|((_, id), values)| (*id, *values))
                .collect();
            let names = names(&mut conn, dim, rows.iter().map(|(id, _)| *id)).await?;
            let mut list: Vec<MatrixCell> = rows
                .iter()
                .map(|(id, v)| {
                    let decided = v[met] + v[breached];
                    let timeliness = ratio(v[met], decided);
                    let satisfaction = ratio(v[csat_sum], v[csat_n]);
                    let enough = decided >= MIN_SAMPLE && v[csat_n] >= MIN_SAMPLE;
                    let q = match (enough, timeliness, satisfaction) {
                        (true, Some(t), Some(s)) => Some(quadrant(t, s)),
                        _ => None,
                    };
                    MatrixCell {
                        id: names.get(id).map(|n| n.0.clone()),
                        name: names.get(id).map(|n| n.1.clone()),
                        cases: v[0],
                        timeliness,
                        satisfaction,
                        csat_answers: v[csat_n],
                        quadrant: q.map(|(en, _)| en.to_string()),
                        quadrant_zh: q.map(|(_, zh)| zh.to_string()),
                    }
                })
                .collect();
            list.sort_by_key(|cell| std::cmp::Reverse(cell.cases));
            list.truncate(500);
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
