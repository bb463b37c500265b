//! Routing (工单分配) and agent stress (压力管理): each team's queue, the settings that
//! say how it hands out cases, each agent's capacity, skills and availability, pausing
//! an agent from routing, and the stress flags raised to supervisors.
//!
//! The choice itself — who gets the case, or why nobody does — is pure and lives in
//! `kefu_domain::routing`; this module gathers the facts, applies the choice inside the
//! caller's transaction and records it. [`Store::route_case`] is the hook case creation
//! and transfers call; it does nothing unless the case's team routes automatically.
//!
//! On PostgreSQL, routing within a team is serialised by a lock on the team's row
//! (`FOR NO KEY UPDATE`, which does not block the foreign-key checks of new cases), so
//! two cases routed at once cannot both take an agent's last free place. Locks are
//! always taken in the order case → team → agent profile; cases picked from the queue
//! are locked with `SKIP LOCKED`, so nothing waits in a circle.

use crate::audit;
use crate::cases::{lock_case, writable};
use crate::customers::parse_label;
use crate::page::{Cursor, CursorKey, Page, PageRequest};
use crate::sql::{Conn, Dialect, JsonRow, Row, q, q_dynamic};
use crate::{Actor, Result, Store, StoreError, new_public_id, parse_public_id};
use kefu_domain::access::Role;
use kefu_domain::cases::{CaseKind, CaseStatus, Priority};
use kefu_domain::complaints::Behaviour;
use kefu_domain::routing::*;
use kefu_domain::{DomainError, Labelled, Timestamp, optional_text, required_text};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// How many queued cases one pass over a queue looks at (bounds a transaction).
const DRAIN_BATCH: i64 = 200;
/// How many of an agent's latest cases the streak of angry customers looks back over.
const STREAK_LOOKBACK: i64 = 100;

/// A team's routing settings (分配设置).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TeamRouting {
    pub team_id: String,
    pub strategy: Strategy,
    /// Route new and transferred cases at once; otherwise they wait in the queue until
    /// someone takes them or asks for the next assignment.
    pub auto_assign: bool,
    /// Pause routing to an agent automatically when their stress becomes severe.
    pub auto_pause_on_severe: bool,
    /// The skills every case of a kind needs, by case kind.
    #[schema(value_type = Object)]
    pub kind_skills: BTreeMap<CaseKind, Vec<Skill>>,
    /// When stress counts as elevated or severe for the team's agents.
    pub stress: StressThresholds,
    pub updated_at: Option<Timestamp>,
    /// 0 until the settings are first saved: the defaults apply.
    pub version: i64,
}

/// New settings for a team's routing; what is left out takes its default.
#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TeamRoutingInput {
    pub strategy: Strategy,
    pub auto_assign: bool,
    /// Default false.
    pub auto_pause_on_severe: Option<bool>,
    /// `{"technical_support": ["network"]}`: skills every case of the kind needs.
    pub kind_skills: Option<BTreeMap<String, Vec<String>>>,
    /// Stress thresholds; missing ones take their defaults.
    pub stress: Option<StressThresholds>,
}

/// An agent as routing sees them (客服接单设置).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AgentProfile {
    pub user_id: String,
    pub name: String,
    pub role: Role,
    pub team_id: Option<String>,
    /// The most open cases the queue gives the agent.
    pub capacity: i64,
    pub skills: Vec<Skill>,
    pub availability: Availability,
    pub availability_changed_at: Option<Timestamp>,
    /// When the agent came on duty without a break since; absent when off duty.
    pub on_duty_since: Option<Timestamp>,
    /// Paused from routing by a supervisor or by kefu.
    pub paused: bool,
    pub paused_reason: Option<String>,
    /// Who paused; absent when kefu did.
    pub paused_by: Option<String>,
    pub paused_at: Option<Timestamp>,
    /// When the queue last gave the agent a case. Stamps are strictly increasing within
    /// a team, so turns stay fair when several cases are routed in one millisecond.
    pub last_assigned_at: Option<Timestamp>,
    /// Open cases assigned to the agent (not solved, closed or merged).
    pub open_load: i64,
    /// Whether the queue gives the agent cases now: available, not paused, below capacity.
    pub receiving: bool,
    /// The level of the agent's stress flag that is not yet cleared, if any.
    pub stress_level: Option<StressLevel>,
    /// 0 until the profile is first saved: the defaults apply.
    pub version: i64,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentProfileInput {
    /// 1 to 1000 open cases.
    pub capacity: i64,
    /// Skill names such as `billing`, `english` or `粤语`.
    pub skills: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityInput {
    pub availability: Availability,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseInput {
    /// Why, in a sentence the agent will read.
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResumeInput {
    pub note: Option<String>,
}

#[derive(Debug, Clone, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CaseSkillsInput {
    /// The skills the case needs beyond those its kind needs in its team.
    pub skills: Vec<String>,
}

/// A case waiting in a team's queue (待分配).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct QueuedCase {
    pub case_id: String,
    pub number: i64,
    pub subject: String,
    pub kind: CaseKind,
    pub priority: Priority,
    pub status: CaseStatus,
    pub created_at: Timestamp,
    /// The case's own skills and those of its kind, together.
    pub required_skills: Vec<Skill>,
}

/// How routing sees one case.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CaseRouting {
    pub case_id: String,
    pub team_id: Option<String>,
    pub assignee_id: Option<String>,
    /// The skills set on the case itself.
    pub skills: Vec<Skill>,
    /// The skills the case needs: its own and those of its kind in its team.
    pub required_skills: Vec<Skill>,
    /// Whether the case waits in its team's queue.
    pub queued: bool,
    /// Why it waits, when it does.
    pub waiting_reason: Option<Unrouted>,
}

/// A case handed to an agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Assignment {
    pub case_id: String,
    pub case_number: i64,
    pub agent_id: String,
    pub strategy: Strategy,
}

/// An agent's stress as assessed now.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StressReport {
    pub user_id: String,
    pub name: String,
    pub facts: StressFacts,
    pub level: StressLevel,
    pub reasons: Vec<StressReason>,
    pub thresholds: StressThresholds,
    /// The flag raised for the agent and not yet cleared, if any.
    pub flag: Option<StressFlag>,
}

/// A warning to supervisors that an agent is under stress (压力预警).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StressFlag {
    pub id: String,
    pub user_id: String,
    pub user_name: String,
    pub team_id: Option<String>,
    pub level: StressLevel,
    pub reasons: Vec<StressReason>,
    pub facts: StressFacts,
    pub raised_at: Timestamp,
    /// kefu paused routing to the agent when it raised the flag.
    pub auto_paused: bool,
    pub acknowledged_by: Option<String>,
    pub acknowledged_at: Option<Timestamp>,
    pub acknowledgement_note: String,
    /// When a later sweep found the agent back to normal, or a higher flag replaced it.
    pub cleared_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AcknowledgeInput {
    /// What the supervisor did about it.
    pub note: Option<String>,
}

/// Filters for stress flags.
#[derive(Debug, Clone, Default)]
pub struct StressFlagFilter {
    /// `true`: not yet cleared; `false`: cleared.
    pub open: Option<bool>,
    pub user_id: Option<String>,
    pub team_id: Option<String>,
}

/// What one stress sweep did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StressSweepReport {
    pub assessed: u64,
    pub raised: u64,
    pub cleared: u64,
    pub paused: u64,
}

// ---------------------------------------------------------------------------------------
// Settings

/// A team's settings as stored, or the defaults.
#[derive(Debug, Clone)]
struct Settings {
    strategy: Strategy,
    auto_assign: bool,
    auto_pause_on_severe: bool,
    kind_skills: BTreeMap<CaseKind, Vec<Skill>>,
    stress: StressThresholds,
    updated_at: Option<i64>,
    version: i64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            strategy: Strategy::RoundRobin,
            auto_assign: false,
            auto_pause_on_severe: false,
            kind_skills: BTreeMap::new(),
            stress: StressThresholds::default(),
            updated_at: None,
            version: 0,
        }
    }
}

impl Settings {
    fn public(&self, team_id: &str) -> TeamRouting {
        TeamRouting {
            team_id: team_id.to_string(),
            strategy: self.strategy,
            auto_assign: self.auto_assign,
            auto_pause_on_severe: self.auto_pause_on_severe,
            kind_skills: self.kind_skills.clone(),
            stress: self.stress,
            updated_at: self.updated_at.map(Timestamp),
            version: self.version,
        }
    }

    /// The skills a case needs: its own and its kind's, sorted and without duplicates.
    fn required(&self, kind: CaseKind, own: Vec<Skill>) -> Vec<Skill> {
        let mut skills = own;
        skills.extend(self.kind_skills.get(&kind).into_iter().flatten().cloned());
        skills.sort();
        skills.dedup();
        skills
    }
}

fn stored_json<T: serde::de::DeserializeOwned>(text: &str, column: &str) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Database(format!("stored {column}: {e}")))
}

async fn load_settings(conn: &mut Conn, team: i64) -> Result<Settings> {
    let Some(row) = conn
        .fetch_optional(
            q("SELECT strategy, auto_assign, auto_pause_on_severe, kind_skills, stress_thresholds, updated_at, version FROM team_routing WHERE team_id = $1")
                .bind(team),
        )
        .await?
    else {
        return Ok(Settings::default());
    };
    let kind_skills: String = row.get("kind_skills")?;
    let stress: String = row.get("stress_thresholds")?;
    Ok(Settings {
        strategy: parse_label(&row, "strategy")?,
        auto_assign: row.get("auto_assign")?,
        auto_pause_on_severe: row.get("auto_pause_on_severe")?,
        kind_skills: stored_json(&kind_skills, "kind_skills")?,
        stress: stored_json(&stress, "stress_thresholds")?,
        updated_at: row.get("updated_at")?,
        version: row.get("version")?,
    })
}

/// The internal key of a team named by a public id in a path.
async fn team_key(conn: &mut Conn, team_id: &str) -> Result<i64> {
    let id = parse_public_id("team", team_id)?;
    conn.fetch_optional(q("SELECT id FROM teams WHERE public_id = $1").bind(id))
        .await?
        .ok_or_else(|| StoreError::not_found("team", team_id))?
        .get("id")
}

/// Serialises routing within a team on PostgreSQL (SQLite has one writer).
async fn lock_team(conn: &mut Conn, team: i64) -> Result<()> {
    if conn.dialect() == Dialect::Postgres {
        conn.execute(q("SELECT id FROM teams WHERE id = $1 FOR NO KEY UPDATE").bind(team))
            .await?;
    }
    Ok(())
}

fn parse_kind_skills(
    input: Option<BTreeMap<String, Vec<String>>>,
) -> Result<BTreeMap<CaseKind, Vec<Skill>>> {
    let mut out = BTreeMap::new();
    for (kind, skills) in input.unwrap_or_default() {
        let kind = CaseKind::parse(&kind).map_err(|_| {
            DomainError::invalid(
                "kind_skills",
                format!(
                    "`{kind}` is not a case kind; use one of {}",
                    CaseKind::ALL
                        .iter()
                        .map(|k| k.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        })?;
        let skills = parse_skills("kind_skills", &skills)?;
        if !skills.is_empty() {
            out.insert(kind, skills);
        }
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Agents

/// A user who may take cases from a queue.
struct Agent {
    key: i64,
    public_id: String,
    name: String,
    team: Option<i64>,
}

fn routable(role: Role) -> bool {
    matches!(role, Role::Agent | Role::Supervisor)
}

/// The user named in a path, who must be an agent or a supervisor.
async fn agent_of(conn: &mut Conn, user_id: &str) -> Result<Agent> {
    let id = parse_public_id("user", user_id)?;
    let row = conn
        .fetch_optional(
            q("SELECT id, public_id, name, role, team_id FROM users WHERE public_id = $1").bind(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("user", user_id))?;
    let role: Role = parse_label(&row, "role")?;
    if !routable(role) {
        return Err(DomainError::invalid(
            "user_id",
            format!(
                "{} is {} ({}); only agents and supervisors take cases from a queue",
                row.get::<String>("name")?,
                role.label_en(),
                role.label_zh()
            ),
        )
        .into());
    }
    Ok(Agent {
        key: row.get("id")?,
        public_id: row.get("public_id")?,
        name: row.get("name")?,
        team: row.get("team_id")?,
    })
}

const PROFILE_SELECT: &str = "SELECT u.id AS user_key, u.public_id, u.name, u.role, t.public_id AS team_public_id, p.capacity, p.skills, p.availability, p.availability_changed_at, p.on_duty_since, p.paused, p.paused_reason, pb.public_id AS paused_by_public_id, p.paused_at, p.last_assigned_at, p.version, (SELECT COUNT(*) FROM cases c WHERE c.assignee_id = u.id AND c.status NOT IN ('solved', 'closed', 'merged')) AS open_load, (SELECT f.level FROM agent_stress_flags f WHERE f.user_id = u.id AND f.cleared_at IS NULL ORDER BY f.id DESC LIMIT 1) AS stress_level FROM users u LEFT JOIN agent_routing_profiles p ON p.user_id = u.id LEFT JOIN teams t ON t.id = u.team_id LEFT JOIN users pb ON pb.id = p.paused_by";

fn profile_from_row(row: &Row) -> Result<AgentProfile> {
    let at = |column: &str| -> Result<Option<Timestamp>> {
        Ok(row.get::<Option<i64>>(column)?.map(Timestamp))
    };
    let skills: Option<String> = row.get("skills")?;
    let skills: Vec<Skill> = match skills {
        Some(text) => stored_json(&text, "skills")?,
        None => Vec::new(),
    };
    let availability: Option<String> = row.get("availability")?;
    let availability = match availability {
        Some(text) => Availability::parse(&text)
            .map_err(|e| StoreError::Database(format!("stored availability: {e}")))?,
        None => Availability::Offline,
    };
    let capacity = row
        .get::<Option<i64>>("capacity")?
        .unwrap_or(DEFAULT_CAPACITY);
    let paused = row.get::<Option<bool>>("paused")?.unwrap_or(false);
    let open_load: i64 = row.get("open_load")?;
    let stress_level: Option<String> = row.get("stress_level")?;
    Ok(AgentProfile {
        user_id: row.get("public_id")?,
        name: row.get("name")?,
        role: parse_label(row, "role")?,
        team_id: row.get("team_public_id")?,
        capacity,
        skills,
        availability,
        availability_changed_at: at("availability_changed_at")?,
        on_duty_since: at("on_duty_since")?,
        paused,
        paused_reason: row.get("paused_reason")?,
        paused_by: row.get("paused_by_public_id")?,
        paused_at: at("paused_at")?,
        last_assigned_at: at("last_assigned_at")?,
        open_load,
        receiving: availability.receives_cases() && !paused && open_load < capacity,
        stress_level: stress_level
            .map(|text| {
                StressLevel::parse(&text)
                    .map_err(|e| StoreError::Database(format!("stored level: {e}")))
            })
            .transpose()?,
        version: row.get::<Option<i64>>("version")?.unwrap_or(0),
    })
}

async fn load_profile(conn: &mut Conn, user_key: i64) -> Result<AgentProfile> {
    let row = conn
        .fetch_one(q_dynamic(format!("{PROFILE_SELECT} WHERE u.id = $1")).bind(user_key))
        .await?;
    profile_from_row(&row)
}

/// Locks the agent's profile row on PostgreSQL, after their team's row.
async fn lock_profile(conn: &mut Conn, agent: &Agent) -> Result<()> {
    if let Some(team) = agent.team {
        lock_team(conn, team).await?;
    }
    if conn.dialect() == Dialect::Postgres {
        conn.execute(
            q("SELECT user_id FROM agent_routing_profiles WHERE user_id = $1 FOR UPDATE")
                .bind(agent.key),
        )
        .await?;
    }
    Ok(())
}

/// Creates the agent's profile with the defaults if it does not exist yet.
async fn ensure_profile(conn: &mut Conn, user_key: i64, now: i64) -> Result<()> {
    conn.execute(
        q("INSERT INTO agent_routing_profiles (user_id, capacity, skills, availability, created_at, updated_at, version) VALUES ($1, $2, '[]', 'offline', $3, $3, 0) ON CONFLICT (user_id) DO NOTHING")
            .bind(user_key)
            .bind(DEFAULT_CAPACITY)
            .bind(now),
    )
    .await?;
    Ok(())
}

fn profile_json(profile: &AgentProfile) -> serde_json::Value {
    serde_json::to_value(profile).unwrap_or_default()
}

fn check_profile_version(profile: &AgentProfile, expected: Option<i64>) -> Result<()> {
    match expected {
        Some(expected) if expected != profile.version => Err(StoreError::VersionMismatch {
            entity: "agent routing profile",
            expected,
            current: profile.version,
        }),
        _ => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------
// The choice, applied

/// The agents of a team as the queue sees them, with their public ids.
struct Roster {
    candidates: Vec<Candidate>,
    ids: Vec<String>,
}

impl Roster {
    fn anyone_free(&self) -> bool {
        self.candidates
            .iter()
            .any(|c| c.receiving() && c.has_room())
    }

    /// The next assignment stamp: now, or just after the team's latest, whichever is
    /// later, so that round robin keeps its order within one millisecond.
    fn next_stamp(&self, now: i64) -> i64 {
        self.candidates
            .iter()
            .filter_map(|c| c.last_assigned_at)
            .max()
            .map_or(now, |latest| now.max(latest + 1))
    }
}

async fn load_roster(conn: &mut Conn, team: i64) -> Result<Roster> {
    // The load is counted only for agents the queue may consider at all.
    let rows = conn
        .fetch_all(
            q("SELECT u.id, u.public_id, p.capacity, p.skills, p.availability, p.paused, p.last_assigned_at, CASE WHEN p.availability = 'available' AND p.paused = FALSE THEN (SELECT COUNT(*) FROM cases c WHERE c.assignee_id = u.id AND c.status NOT IN ('solved', 'closed', 'merged')) ELSE 0 END AS open_load FROM agent_routing_profiles p JOIN users u ON u.id = p.user_id WHERE u.team_id = $1 AND u.active = TRUE AND u.role IN ('agent', 'supervisor') ORDER BY u.id")
                .bind(team),
        )
        .await?;
    let mut roster = Roster {
        candidates: Vec::with_capacity(rows.len()),
        ids: Vec::with_capacity(rows.len()),
    };
    for row in &rows {
        let skills: String = row.get("skills")?;
        roster.candidates.push(Candidate {
            key: row.get("id")?,
            skills: stored_json(&skills, "skills")?,
            capacity: row.get("capacity")?,
            open_load: row.get("open_load")?,
            last_assigned_at: row.get("last_assigned_at")?,
            paused: row.get("paused")?,
            availability: parse_label(row, "availability")?,
        });
        roster.ids.push(row.get("public_id")?);
    }
    Ok(roster)
}

async fn own_skills(conn: &mut Conn, case_key: i64) -> Result<Vec<Skill>> {
    let rows = conn
        .fetch_all(
            q("SELECT skill FROM case_required_skills WHERE case_id = $1 ORDER BY skill")
                .bind(case_key),
        )
        .await?;
    rows.iter()
        .map(|row| Ok(Skill::parse("skills", &row.get::<String>("skill")?)?))
        .collect()
}

/// A case that may be routed.
struct Routable {
    key: i64,
    public_id: String,
    number: i64,
    kind: CaseKind,
    required: Vec<Skill>,
}

/// Gives `case` to the roster's agent `index`: the case's assignee (and first owner if
/// it had none), the agent's assignment stamp, an audit record and a notification.
/// False when the case was assigned meanwhile.
async fn assign(
    conn: &mut Conn,
    actor: &Actor,
    roster: &mut Roster,
    index: usize,
    case: &Routable,
    strategy: Strategy,
    now: i64,
) -> Result<Option<Assignment>> {
    let agent = roster.candidates[index].key;
    let changed = conn
        .execute(
            q("UPDATE cases SET assignee_id = $1, first_owner_id = COALESCE(first_owner_id, $1), updated_at = $2, version = version + 1 WHERE id = $3 AND assignee_id IS NULL")
                .bind(agent)
                .bind(now)
                .bind(case.key),
        )
        .await?;
    if changed == 0 {
        return Ok(None);
    }
    let stamp = roster.next_stamp(now);
    conn.execute(
        q("UPDATE agent_routing_profiles SET last_assigned_at = $1 WHERE user_id = $2")
            .bind(stamp)
            .bind(agent),
    )
    .await?;
    let candidate = &mut roster.candidates[index];
    candidate.open_load += 1;
    candidate.last_assigned_at = Some(stamp);
    let agent_id = roster.ids[index].clone();
    audit::record(
        conn,
        actor,
        now,
        "assign",
        "case",
        &case.public_id,
        Some(&json!({"assignee_id": null})),
        Some(&json!({"assignee_id": agent_id, "strategy": strategy, "required_skills": case.required})),
    )
    .await?;
    crate::complaints::notify(
        conn,
        agent,
        "case_assigned",
        Some(case.key),
        &format!(
            "Case #{} ({}) was assigned to you from the queue.",
            case.number,
            case.kind.label_en()
        ),
        &format!(
            "工单 #{}（{}）已从队列分配给你。",
            case.number,
            case.kind.label_zh()
        ),
        json!({"case_number": case.number, "strategy": strategy}),
        now,
    )
    .await?;
    Ok(Some(Assignment {
        case_id: case.public_id.clone(),
        case_number: case.number,
        agent_id,
        strategy,
    }))
}

/// Routes the oldest queued cases of a team that someone can take, at most `max`.
/// The team's row must be locked (on PostgreSQL) by the caller.
async fn drain(
    conn: &mut Conn,
    actor: &Actor,
    team: i64,
    settings: &Settings,
    now: i64,
    max: usize,
) -> Result<Vec<Assignment>> {
    let mut roster = load_roster(conn, team).await?;
    let mut done = Vec::new();
    if !roster.anyone_free() {
        return Ok(done);
    }
    let skills_column = conn.dialect().json_array(
        &[("skill", "s.skill")],
        "FROM case_required_skills s WHERE s.case_id = k.id",
        "s.skill",
    );
    let rows = conn
        .fetch_all(
            q_dynamic(format!(
                "SELECT k.id, k.public_id, k.number, k.kind, {skills_column} AS skills FROM cases k WHERE k.team_id = $1 AND k.assignee_id IS NULL AND k.status NOT IN ('solved', 'closed', 'merged') ORDER BY k.created_at, k.id LIMIT {DRAIN_BATCH}"
            ))
            .bind(team),
        )
        .await?;
    for row in &rows {
        let kind: CaseKind = parse_label(row, "kind")?;
        let own = JsonRow::parse_all(row, "skills")?
            .iter()
            .map(|s| Ok(Skill::parse("skills", &s.text("skill")?)?))
            .collect::<Result<Vec<_>>>()?;
        let case = Routable {
            key: row.get("id")?,
            public_id: row.get("public_id")?,
            number: row.get("number")?,
            kind,
            required: settings.required(kind, own),
        };
        let Ok(index) = choose(settings.strategy, &roster.candidates, &case.required) else {
            continue;
        };
        // Another transaction may be changing the case (a transfer, say): leave it.
        if conn.dialect() == Dialect::Postgres
            && conn
                .fetch_optional(
                    q("SELECT id FROM cases WHERE id = $1 AND assignee_id IS NULL FOR UPDATE SKIP LOCKED")
                        .bind(case.key),
                )
                .await?
                .is_none()
        {
            continue;
        }
        if let Some(assignment) = assign(
            conn,
            actor,
            &mut roster,
            index,
            &case,
            settings.strategy,
            now,
        )
        .await?
        {
            done.push(assignment);
        }
        if done.len() >= max || !roster.anyone_free() {
            break;
        }
    }
    Ok(done)
}

/// After a change that may free an agent (available again, resumed, more capacity),
/// routes the team's queue when the team routes automatically.
async fn refill(conn: &mut Conn, team: Option<i64>, now: i64) -> Result<()> {
    let Some(team) = team else {
        return Ok(());
    };
    let settings = load_settings(conn, team).await?;
    if settings.auto_assign {
        drain(
            conn,
            &Actor::system(),
            team,
            &settings,
            now,
            DRAIN_BATCH as usize,
        )
        .await?;
    }
    Ok(())
}

/// Routes one case if it waits in a queue; `automatic` honours the team's auto-assign
/// setting (the hook), otherwise the caller asked for it explicitly.
async fn route_one(
    conn: &mut Conn,
    actor: &Actor,
    case_key: i64,
    now: i64,
    automatic: bool,
) -> Result<Option<(i64, Assignment)>> {
    let Some(row) = conn
        .fetch_optional(
            q("SELECT k.public_id, k.number, k.kind, k.status, k.team_id, k.assignee_id, s.auto_assign FROM cases k LEFT JOIN team_routing s ON s.team_id = k.team_id WHERE k.id = $1")
                .bind(case_key),
        )
        .await?
    else {
        return Ok(None);
    };
    let status: CaseStatus = parse_label(&row, "status")?;
    let team: Option<i64> = row.get("team_id")?;
    let assignee: Option<i64> = row.get("assignee_id")?;
    let auto_assign = row.get::<Option<bool>>("auto_assign")?.unwrap_or(false);
    let Some(team) = team else {
        return Ok(None);
    };
    if assignee.is_some() || !status.is_open() || (automatic && !auto_assign) {
        return Ok(None);
    }
    lock_team(conn, team).await?;
    let settings = load_settings(conn, team).await?;
    if automatic && !settings.auto_assign {
        return Ok(None);
    }
    let kind: CaseKind = parse_label(&row, "kind")?;
    let case = Routable {
        key: case_key,
        public_id: row.get("public_id")?,
        number: row.get("number")?,
        kind,
        required: settings.required(kind, own_skills(conn, case_key).await?),
    };
    let mut roster = load_roster(conn, team).await?;
    match choose(settings.strategy, &roster.candidates, &case.required) {
        Ok(index) => {
            let agent = roster.candidates[index].key;
            Ok(assign(
                conn,
                actor,
                &mut roster,
                index,
                &case,
                settings.strategy,
                now,
            )
            .await?
            .map(|assignment| (agent, assignment)))
        }
        Err(_) => Ok(None),
    }
}

// ---------------------------------------------------------------------------------------
// Stress

/// The facts of an agent's stress, read inside `conn`.
async fn stress_facts(
    conn: &mut Conn,
    profile: &AgentProfile,
    user_key: i64,
    thresholds: &StressThresholds,
    now: i64,
) -> Result<StressFacts> {
    let since = now - thresholds.angry_streak_window_hours * 3_600_000;
    let rows = conn
        .fetch_all(
            q_dynamic(format!("SELECT p.behaviour FROM cases k LEFT JOIN complaints p ON p.case_id = k.id WHERE k.assignee_id = $1 AND k.created_at >= $2 ORDER BY k.created_at DESC, k.id DESC LIMIT {STREAK_LOOKBACK}"))
                .bind(user_key)
                .bind(since),
        )
        .await?;
    let mut angry_streak = 0;
    for row in &rows {
        let behaviour: Option<String> = row.get("behaviour")?;
        let angry = behaviour.as_deref().is_some_and(|b| {
            b == Behaviour::AngryVenting.as_str() || b == Behaviour::Aggressive.as_str()
        });
        if !angry {
            break;
        }
        angry_streak += 1;
    }
    let complaints_since = now - thresholds.complaints_window_days * 86_400_000;
    let complaints_received: i64 = conn
        .scalar(
            q("SELECT COUNT(*) AS value FROM complaints WHERE subject_user_id = $1 AND subject_cleared_at IS NULL AND created_at >= $2")
                .bind(user_key)
                .bind(complaints_since),
        )
        .await?;
    let minutes_on_duty = match profile.on_duty_since {
        Some(since) if profile.availability.on_duty() => ((now - since.0) / 60_000).max(0),
        _ => 0,
    };
    Ok(StressFacts {
        angry_streak,
        minutes_on_duty,
        complaints_received,
        open_load: profile.open_load,
        capacity: profile.capacity,
    })
}

/// The thresholds of the agent's team, or the defaults.
async fn thresholds_of(conn: &mut Conn, user_key: i64) -> Result<(Option<i64>, Settings)> {
    let team: Option<i64> = conn
        .fetch_one(q("SELECT team_id FROM users WHERE id = $1").bind(user_key))
        .await?
        .get("team_id")?;
    let settings = match team {
        Some(team) => load_settings(conn, team).await?,
        None => Settings::default(),
    };
    Ok((team, settings))
}

macro_rules! flag_select {
    () => {
        "SELECT f.id, f.public_id, u.public_id AS user_public_id, u.name AS user_name, t.public_id AS team_public_id, f.level, f.reasons, f.facts, f.raised_at, f.auto_paused, ab.public_id AS acknowledged_by_public_id, f.acknowledged_at, f.acknowledgement_note, f.cleared_at FROM agent_stress_flags f JOIN users u ON u.id = f.user_id LEFT JOIN teams t ON t.id = u.team_id LEFT JOIN users ab ON ab.id = f.acknowledged_by"
    };
}

fn flag_from_row(row: &Row) -> Result<StressFlag> {
    let reasons: String = row.get("reasons")?;
    let facts: String = row.get("facts")?;
    Ok(StressFlag {
        id: row.get("public_id")?,
        user_id: row.get("user_public_id")?,
        user_name: row.get("user_name")?,
        team_id: row.get("team_public_id")?,
        level: parse_label(row, "level")?,
        reasons: stored_json(&reasons, "reasons")?,
        facts: stored_json(&facts, "facts")?,
        raised_at: Timestamp(row.get("raised_at")?),
        auto_paused: row.get("auto_paused")?,
        acknowledged_by: row.get("acknowledged_by_public_id")?,
        acknowledged_at: row.get::<Option<i64>>("acknowledged_at")?.map(Timestamp),
        acknowledgement_note: row.get("acknowledgement_note")?,
        cleared_at: row.get::<Option<i64>>("cleared_at")?.map(Timestamp),
    })
}

/// The agent's flag that is not yet cleared: its key and level.
async fn open_flag(conn: &mut Conn, user_key: i64) -> Result<Option<(i64, StressLevel)>> {
    conn.fetch_optional(
        q("SELECT id, level FROM agent_stress_flags WHERE user_id = $1 AND cleared_at IS NULL ORDER BY id DESC LIMIT 1")
            .bind(user_key),
    )
    .await?
    .map(|row| Ok((row.get("id")?, parse_label(&row, "level")?)))
    .transpose()
}

/// What a sweep must do for one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FlagChange {
    None,
    Clear(i64),
    Raise(Option<i64>),
}

fn flag_change(level: StressLevel, open: Option<(i64, StressLevel)>) -> FlagChange {
    match (level, open) {
        (StressLevel::Normal, Some((key, _))) => FlagChange::Clear(key),
        (StressLevel::Normal, None) => FlagChange::None,
        (level, Some((_, open_level))) if open_level >= level => FlagChange::None,
        (_, open) => FlagChange::Raise(open.map(|(key, _)| key)),
    }
}

fn joined_reasons(reasons: &[StressReason], zh: bool) -> String {
    reasons
        .iter()
        .map(|r| {
            if zh {
                r.message_zh.as_str()
            } else {
                r.message_en.as_str()
            }
        })
        .collect::<Vec<_>>()
        .join(if zh { "；" } else { "; " })
}

/// Pauses an agent from routing (the row must exist and be locked).
async fn set_paused(
    conn: &mut Conn,
    agent: i64,
    reason: &str,
    by: Option<i64>,
    now: i64,
) -> Result<()> {
    conn.execute(
        q("UPDATE agent_routing_profiles SET paused = TRUE, paused_reason = $1, paused_by = $2, paused_at = $3, updated_at = $3, version = version + 1 WHERE user_id = $4")
            .bind(reason)
            .bind(by)
            .bind(now)
            .bind(agent),
    )
    .await?;
    Ok(())
}

fn paused_message(who: &str, reason: &str) -> (String, String) {
    (
        format!(
            "{who} paused routing to you: {reason}. No new cases will be assigned to you until routing is resumed; your open cases stay with you."
        ),
        format!(
            "{who} 已暂停向你分配新工单：{reason}。恢复之前不会再给你分配新工单，手上的工单仍由你处理。"
        ),
    )
}

impl Store {
    // -----------------------------------------------------------------------------------
    // Team settings

    /// A team's routing settings, or the defaults when none were saved.
    pub async fn team_routing(&self, team_id: &str) -> Result<TeamRouting> {
        let mut conn = self.snapshot().await?;
        let team = team_key(&mut conn, team_id).await?;
        Ok(load_settings(&mut conn, team).await?.public(team_id))
    }

    /// Replaces a team's routing settings. Turning automatic assignment on routes the
    /// queue at once, as far as agents have room.
    pub async fn set_team_routing(
        &self,
        actor: &Actor,
        team_id: &str,
        input: TeamRoutingInput,
        expected_version: Option<i64>,
    ) -> Result<TeamRouting> {
        let now = self.now_ms();
        let kind_skills = parse_kind_skills(input.kind_skills)?;
        let stress = input.stress.unwrap_or_default().validate()?;
        let mut conn = self.write().await?;
        let team = team_key(&mut conn, team_id).await?;
        lock_team(&mut conn, team).await?;
        let before = load_settings(&mut conn, team).await?;
        if let Some(expected) = expected_version
            && expected != before.version
        {
            return Err(StoreError::VersionMismatch {
                entity: "team routing",
                expected,
                current: before.version,
            });
        }
        conn.execute(
            q("INSERT INTO team_routing (team_id, strategy, auto_assign, auto_pause_on_severe, kind_skills, stress_thresholds, updated_by, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 1) ON CONFLICT (team_id) DO UPDATE SET strategy = excluded.strategy, auto_assign = excluded.auto_assign, auto_pause_on_severe = excluded.auto_pause_on_severe, kind_skills = excluded.kind_skills, stress_thresholds = excluded.stress_thresholds, updated_by = excluded.updated_by, updated_at = excluded.updated_at, version = team_routing.version + 1")
                .bind(team)
                .bind(input.strategy.as_str())
                .bind(input.auto_assign)
                .bind(input.auto_pause_on_severe.unwrap_or(false))
                .bind(serde_json::to_string(&kind_skills).unwrap_or_default())
                .bind(serde_json::to_string(&stress).unwrap_or_default())
                .bind(actor.user_id)
                .bind(now),
        )
        .await?;
        let after = load_settings(&mut conn, team).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "team_routing",
            team_id,
            (before.version > 0)
                .then(|| serde_json::to_value(before.public(team_id)).unwrap_or_default())
                .as_ref(),
            serde_json::to_value(after.public(team_id)).ok().as_ref(),
        )
        .await?;
        if after.auto_assign {
            drain(
                &mut conn,
                &Actor::system(),
                team,
                &after,
                now,
                DRAIN_BATCH as usize,
            )
            .await?;
        }
        conn.commit().await?;
        Ok(after.public(team_id))
    }

    // -----------------------------------------------------------------------------------
    // Agents

    /// An agent's routing profile, or the defaults when none was saved.
    pub async fn agent_profile(&self, user_id: &str) -> Result<AgentProfile> {
        let mut conn = self.snapshot().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        load_profile(&mut conn, agent.key).await
    }

    /// The routing profiles of a team's active agents and supervisors.
    pub async fn team_agents(&self, team_id: &str) -> Result<Vec<AgentProfile>> {
        let mut conn = self.snapshot().await?;
        let team = team_key(&mut conn, team_id).await?;
        let rows = conn
            .fetch_all(
                q_dynamic(format!(
                    "{PROFILE_SELECT} WHERE u.team_id = $1 AND u.active = TRUE AND u.role IN ('agent', 'supervisor') ORDER BY u.id"
                ))
                .bind(team),
            )
            .await?;
        rows.iter().map(profile_from_row).collect()
    }

    /// Sets an agent's capacity and skills.
    pub async fn set_agent_profile(
        &self,
        actor: &Actor,
        user_id: &str,
        input: AgentProfileInput,
        expected_version: Option<i64>,
    ) -> Result<AgentProfile> {
        let now = self.now_ms();
        let capacity = check_capacity(input.capacity)?;
        let skills = parse_skills("skills", &input.skills)?;
        let mut conn = self.write().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        lock_profile(&mut conn, &agent).await?;
        let before = load_profile(&mut conn, agent.key).await?;
        check_profile_version(&before, expected_version)?;
        ensure_profile(&mut conn, agent.key, now).await?;
        conn.execute(
            q("UPDATE agent_routing_profiles SET capacity = $1, skills = $2, updated_at = $3, version = version + 1 WHERE user_id = $4")
                .bind(capacity)
                .bind(serde_json::to_string(&skills).unwrap_or_default())
                .bind(now)
                .bind(agent.key),
        )
        .await?;
        let after = load_profile(&mut conn, agent.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "update",
            "agent_routing",
            &agent.public_id,
            Some(&profile_json(&before)),
            Some(&profile_json(&after)),
        )
        .await?;
        refill(&mut conn, agent.team, now).await?;
        let after = load_profile(&mut conn, agent.key).await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Sets an agent's availability. Coming on duty from a break or from offline starts
    /// the clock of continuous duty; a break or going offline ends it. Becoming
    /// available routes the team's queue when the team routes automatically.
    pub async fn set_availability(
        &self,
        actor: &Actor,
        user_id: &str,
        availability: Availability,
    ) -> Result<AgentProfile> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        lock_profile(&mut conn, &agent).await?;
        let before = load_profile(&mut conn, agent.key).await?;
        if before.version > 0 && before.availability == availability {
            conn.commit().await?;
            return Ok(before);
        }
        let on_duty_since = match (before.on_duty_since, availability.on_duty()) {
            (_, false) => None,
            (Some(since), true) if before.availability.on_duty() => Some(since.0),
            (_, true) => Some(now),
        };
        ensure_profile(&mut conn, agent.key, now).await?;
        conn.execute(
            q("UPDATE agent_routing_profiles SET availability = $1, availability_changed_at = $2, on_duty_since = $3, updated_at = $2, version = version + 1 WHERE user_id = $4")
                .bind(availability.as_str())
                .bind(now)
                .bind(on_duty_since)
                .bind(agent.key),
        )
        .await?;
        let after = load_profile(&mut conn, agent.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "availability",
            "agent_routing",
            &agent.public_id,
            Some(&json!({"availability": before.availability, "on_duty_since": before.on_duty_since})),
            Some(&json!({"availability": after.availability, "on_duty_since": after.on_duty_since})),
        )
        .await?;
        if availability.receives_cases() {
            refill(&mut conn, agent.team, now).await?;
        }
        let after = load_profile(&mut conn, agent.key).await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Pauses routing to an agent (暂停分配): the queue gives them no new cases until
    /// they are resumed; their open cases stay with them. The agent is told why.
    pub async fn pause_agent(
        &self,
        actor: &Actor,
        user_id: &str,
        input: PauseInput,
    ) -> Result<AgentProfile> {
        let now = self.now_ms();
        let reason = required_text("reason", &input.reason, 500)?;
        let mut conn = self.write().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        lock_profile(&mut conn, &agent).await?;
        let before = load_profile(&mut conn, agent.key).await?;
        if before.paused {
            return Err(StoreError::conflict(
                "already_paused",
                Some("paused"),
                format!(
                    "routing to {} is already paused ({}); resume it first to pause with another reason",
                    agent.name,
                    before.paused_reason.as_deref().unwrap_or("")
                ),
            ));
        }
        ensure_profile(&mut conn, agent.key, now).await?;
        set_paused(&mut conn, agent.key, &reason, actor.user_id, now).await?;
        let after = load_profile(&mut conn, agent.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "pause",
            "agent_routing",
            &agent.public_id,
            Some(&profile_json(&before)),
            Some(&profile_json(&after)),
        )
        .await?;
        let (en, zh) = paused_message(&actor.label, &reason);
        crate::complaints::notify(
            &mut conn,
            agent.key,
            "routing_paused",
            None,
            &en,
            &zh,
            json!({"reason": reason, "by": actor.label}),
            now,
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }

    /// Resumes routing to a paused agent; the queue may give them cases at once.
    pub async fn resume_agent(
        &self,
        actor: &Actor,
        user_id: &str,
        input: ResumeInput,
    ) -> Result<AgentProfile> {
        let now = self.now_ms();
        let note = optional_text("note", input.note.as_deref().unwrap_or(""), 500)?;
        let mut conn = self.write().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        lock_profile(&mut conn, &agent).await?;
        let before = load_profile(&mut conn, agent.key).await?;
        if !before.paused {
            return Err(StoreError::conflict(
                "not_paused",
                Some("paused"),
                format!("routing to {} is not paused", agent.name),
            ));
        }
        conn.execute(
            q("UPDATE agent_routing_profiles SET paused = FALSE, paused_reason = NULL, paused_by = NULL, paused_at = NULL, updated_at = $1, version = version + 1 WHERE user_id = $2")
                .bind(now)
                .bind(agent.key),
        )
        .await?;
        let after = load_profile(&mut conn, agent.key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "resume",
            "agent_routing",
            &agent.public_id,
            Some(&profile_json(&before)),
            Some(&json!({"profile": profile_json(&after), "note": note})),
        )
        .await?;
        let suffix_en = if note.is_empty() {
            String::new()
        } else {
            format!(" Note: {note}")
        };
        let suffix_zh = if note.is_empty() {
            String::new()
        } else {
            format!("备注：{note}")
        };
        crate::complaints::notify(
            &mut conn,
            agent.key,
            "routing_resumed",
            None,
            &format!(
                "{} resumed routing to you: new cases can be assigned to you again.{suffix_en}",
                actor.label
            ),
            &format!("{} 已恢复向你分配新工单。{suffix_zh}", actor.label),
            json!({"note": note, "by": actor.label}),
            now,
        )
        .await?;
        refill(&mut conn, agent.team, now).await?;
        let after = load_profile(&mut conn, agent.key).await?;
        conn.commit().await?;
        Ok(after)
    }

    // -----------------------------------------------------------------------------------
    // Queues and cases

    /// A team's queue: its open cases without an assignee, oldest first, each with the
    /// skills it needs.
    pub async fn team_queue(&self, team_id: &str, page: &PageRequest) -> Result<Page<QueuedCase>> {
        let limit = page.limit()?;
        let mut conn = self.snapshot().await?;
        let team = team_key(&mut conn, team_id).await?;
        let settings = load_settings(&mut conn, team).await?;
        let skills_column = conn.dialect().json_array(
            &[("skill", "s.skill")],
            "FROM case_required_skills s WHERE s.case_id = k.id",
            "s.skill",
        );
        let (after, cursor_id) = match &page.cursor {
            Some(cursor) => {
                let cursor = Cursor::decode(cursor, "queue")?;
                let CursorKey::Int(created) = cursor.k else {
                    return Err(DomainError::invalid(
                        "cursor",
                        "is not a cursor this list handed out",
                    )
                    .into());
                };
                (created, cursor.id)
            }
            None => (i64::MIN, i64::MIN),
        };
        let rows = conn
            .fetch_all(
                q_dynamic(format!(
                    "SELECT k.id, k.public_id, k.number, k.subject, k.kind, k.priority, k.status, k.created_at, {skills_column} AS skills FROM cases k WHERE k.team_id = $1 AND k.assignee_id IS NULL AND k.status NOT IN ('solved', 'closed', 'merged') AND (k.created_at, k.id) > ($2, $3) ORDER BY k.created_at, k.id LIMIT {}",
                    limit + 1
                ))
                .bind(team)
                .bind(after)
                .bind(cursor_id),
            )
            .await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            let kind: CaseKind = parse_label(row, "kind")?;
            let own = JsonRow::parse_all(row, "skills")?
                .iter()
                .map(|s| Ok(Skill::parse("skills", &s.text("skill")?)?))
                .collect::<Result<Vec<_>>>()?;
            items.push((
                row.get::<i64>("id")?,
                QueuedCase {
                    case_id: row.get("public_id")?,
                    number: row.get("number")?,
                    subject: row.get("subject")?,
                    kind,
                    priority: parse_label(row, "priority")?,
                    status: parse_label(row, "status")?,
                    created_at: Timestamp(row.get("created_at")?),
                    required_skills: settings.required(kind, own),
                },
            ));
        }
        let page = audit::finish_page(items, limit, |(id, case)| Cursor {
            k: CursorKey::Int(case.created_at.0),
            id: *id,
            s: "queue".into(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, case)| case).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Routes the oldest queued case of a team that an agent can take now, by the team's
    /// strategy, whether or not the team routes automatically. `None` when nobody can
    /// take any queued case.
    pub async fn assign_next(&self, actor: &Actor, team_id: &str) -> Result<Option<Assignment>> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        let team = team_key(&mut conn, team_id).await?;
        lock_team(&mut conn, team).await?;
        let settings = load_settings(&mut conn, team).await?;
        let assigned = drain(&mut conn, actor, team, &settings, now, 1).await?;
        conn.commit().await?;
        Ok(assigned.into_iter().next())
    }

    /// The hook for case creation and transfers, inside the caller's transaction: when
    /// the case is open, has a team and no assignee, and the team routes automatically,
    /// gives it to an agent by the team's strategy. Returns the agent's key, or `None`
    /// when the case stays where it is (in the queue, if it has a team).
    pub(crate) async fn route_case(
        &self,
        conn: &mut Conn,
        case_key: i64,
        now: i64,
    ) -> Result<Option<i64>> {
        let assigned = route_one(conn, &Actor::system(), case_key, now, true).await?;
        Ok(assigned.map(|(agent, _)| agent))
    }

    /// [`Store::route_case`] in a transaction of its own: the agent's public id, or
    /// `None` when the case stays where it is.
    pub async fn route_case_now(&self, case_id: &str) -> Result<Option<String>> {
        let now = self.now_ms();
        let id = parse_public_id("case", case_id)?;
        let mut conn = self.write().await?;
        let key: i64 = conn
            .fetch_optional(q("SELECT id FROM cases WHERE public_id = $1").bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("case", case_id))?
            .get("id")?;
        let agent = match self.route_case(&mut conn, key, now).await? {
            Some(agent) => Some(
                conn.fetch_one(q("SELECT public_id FROM users WHERE id = $1").bind(agent))
                    .await?
                    .get::<String>("public_id")?,
            ),
            None => None,
        };
        conn.commit().await?;
        Ok(agent)
    }

    /// How routing sees a case: the skills it needs, whether it waits and why.
    pub async fn case_routing(&self, case_id: &str) -> Result<CaseRouting> {
        let mut conn = self.snapshot().await?;
        case_routing_in(&mut conn, case_id).await
    }

    /// Sets the skills a case needs (beyond those of its kind). A queued case is routed
    /// again at once when its team routes automatically.
    pub async fn set_case_skills(
        &self,
        actor: &Actor,
        case_id: &str,
        input: CaseSkillsInput,
    ) -> Result<CaseRouting> {
        let now = self.now_ms();
        let skills = parse_skills("skills", &input.skills)?;
        let mut conn = self.write().await?;
        let case = lock_case(&mut conn, case_id).await?;
        writable(&case)?;
        let before = own_skills(&mut conn, case.key).await?;
        if before != skills {
            conn.execute(q("DELETE FROM case_required_skills WHERE case_id = $1").bind(case.key))
                .await?;
            for skill in &skills {
                conn.execute(
                    q("INSERT INTO case_required_skills (case_id, skill) VALUES ($1, $2)")
                        .bind(case.key)
                        .bind(skill.as_str()),
                )
                .await?;
            }
            audit::record(
                &mut conn,
                actor,
                now,
                "set_skills",
                "case",
                &case.id,
                Some(&json!({"skills": before})),
                Some(&json!({"skills": skills})),
            )
            .await?;
        }
        route_one(&mut conn, &Actor::system(), case.key, now, true).await?;
        let routing = case_routing_in(&mut conn, &case.id).await?;
        conn.commit().await?;
        Ok(routing)
    }

    // -----------------------------------------------------------------------------------
    // Stress

    /// Assesses an agent's stress now, from the database.
    pub async fn assess_stress(&self, user_id: &str) -> Result<StressReport> {
        let now = self.now_ms();
        let mut conn = self.snapshot().await?;
        let agent = agent_of(&mut conn, user_id).await?;
        let profile = load_profile(&mut conn, agent.key).await?;
        let (_, settings) = thresholds_of(&mut conn, agent.key).await?;
        let facts = stress_facts(&mut conn, &profile, agent.key, &settings.stress, now).await?;
        let assessment = assess(&facts, &settings.stress);
        let flag = match open_flag(&mut conn, agent.key).await? {
            Some((key, _)) => Some(flag_by_key(&mut conn, key).await?),
            None => None,
        };
        Ok(StressReport {
            user_id: agent.public_id,
            name: agent.name,
            facts,
            level: assessment.level,
            reasons: assessment.reasons,
            thresholds: settings.stress,
            flag,
        })
    }

    /// Assesses every agent with a routing profile. A new or higher level raises a flag
    /// and notifies the team's supervisors once; a return to normal clears the flag.
    /// When the level is severe and the team says so, routing to the agent is paused.
    /// Each change is its own transaction; agents without a change cost only reads.
    pub async fn sweep_stress(&self) -> Result<StressSweepReport> {
        let now = self.now_ms();
        let mut report = StressSweepReport::default();
        let keys: Vec<i64> = self
            .read()
            .fetch_all(q("SELECT u.id FROM agent_routing_profiles p JOIN users u ON u.id = p.user_id WHERE u.active = TRUE AND u.role IN ('agent', 'supervisor') ORDER BY u.id"))
            .await?
            .iter()
            .map(|row| row.get("id"))
            .collect::<Result<_>>()?;
        for key in keys {
            report.assessed += 1;
            // A first look without the write lock: most agents need nothing.
            {
                let mut conn = self.snapshot().await?;
                let profile = load_profile(&mut conn, key).await?;
                let (_, settings) = thresholds_of(&mut conn, key).await?;
                let facts = stress_facts(&mut conn, &profile, key, &settings.stress, now).await?;
                let level = assess(&facts, &settings.stress).level;
                if flag_change(level, open_flag(&mut conn, key).await?) == FlagChange::None {
                    continue;
                }
            }
            let mut conn = self.write().await?;
            let (team, settings) = thresholds_of(&mut conn, key).await?;
            if let Some(team) = team {
                lock_team(&mut conn, team).await?;
            }
            if conn.dialect() == Dialect::Postgres {
                conn.execute(
                    q("SELECT user_id FROM agent_routing_profiles WHERE user_id = $1 FOR UPDATE")
                        .bind(key),
                )
                .await?;
            }
            let profile = load_profile(&mut conn, key).await?;
            let facts = stress_facts(&mut conn, &profile, key, &settings.stress, now).await?;
            let assessment = assess(&facts, &settings.stress);
            match flag_change(assessment.level, open_flag(&mut conn, key).await?) {
                FlagChange::None => {}
                FlagChange::Clear(flag) => {
                    clear_flag(&mut conn, flag, now).await?;
                    report.cleared += 1;
                }
                FlagChange::Raise(replaced) => {
                    if let Some(flag) = replaced {
                        clear_flag(&mut conn, flag, now).await?;
                    }
                    let paused = raise_flag(
                        &mut conn,
                        &profile,
                        key,
                        team,
                        &settings,
                        &facts,
                        &assessment,
                        now,
                    )
                    .await?;
                    report.raised += 1;
                    report.paused += u64::from(paused);
                }
            }
            conn.commit().await?;
        }
        Ok(report)
    }

    /// Stress flags, newest first.
    pub async fn stress_flags(
        &self,
        filter: &StressFlagFilter,
        page: &PageRequest,
    ) -> Result<Page<StressFlag>> {
        let limit = page.limit()?;
        let mut builder = crate::sql::Builder::new(concat!(flag_select!(), " WHERE 1 = 1"));
        match filter.open {
            Some(true) => {
                builder.push(" AND f.cleared_at IS NULL");
            }
            Some(false) => {
                builder.push(" AND f.cleared_at IS NOT NULL");
            }
            None => {}
        }
        if let Some(id) = &filter.user_id {
            builder.and("u.public_id = $?", parse_public_id("user", id)?);
        }
        if let Some(id) = &filter.team_id {
            builder.and("t.public_id = $?", parse_public_id("team", id)?);
        }
        if let Some(cursor) = &page.cursor {
            let cursor = Cursor::decode(cursor, "stress_flags")?;
            builder.and("f.id < $?", cursor.id);
        }
        builder.push(&format!(" ORDER BY f.id DESC LIMIT {}", limit + 1));
        let rows = self.read().fetch_all(builder.query()).await?;
        let mut items = Vec::with_capacity(rows.len());
        for row in &rows {
            items.push((row.get::<i64>("id")?, flag_from_row(row)?));
        }
        let page = audit::finish_page(items, limit, |(id, _)| Cursor {
            k: CursorKey::Int(*id),
            id: *id,
            s: "stress_flags".into(),
        });
        Ok(Page {
            items: page.items.into_iter().map(|(_, flag)| flag).collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// A supervisor acknowledges a stress flag, saying what they did about it.
    pub async fn acknowledge_stress_flag(
        &self,
        actor: &Actor,
        flag_id: &str,
        input: AcknowledgeInput,
    ) -> Result<StressFlag> {
        let now = self.now_ms();
        let note = optional_text("note", input.note.as_deref().unwrap_or(""), 2000)?;
        let id = parse_public_id("stress flag", flag_id)?;
        let mut conn = self.write().await?;
        let sql = if conn.dialect() == Dialect::Postgres {
            "SELECT id, acknowledged_at FROM agent_stress_flags WHERE public_id = $1 FOR UPDATE"
        } else {
            "SELECT id, acknowledged_at FROM agent_stress_flags WHERE public_id = $1"
        };
        let row = conn
            .fetch_optional(q(sql).bind(id))
            .await?
            .ok_or_else(|| StoreError::not_found("stress flag", flag_id))?;
        let key: i64 = row.get("id")?;
        if row.get::<Option<i64>>("acknowledged_at")?.is_some() {
            return Err(StoreError::conflict(
                "already_acknowledged",
                None,
                "the stress flag was already acknowledged",
            ));
        }
        let before = flag_by_key(&mut conn, key).await?;
        conn.execute(
            q("UPDATE agent_stress_flags SET acknowledged_by = $1, acknowledged_at = $2, acknowledgement_note = $3 WHERE id = $4")
                .bind(actor.user_id)
                .bind(now)
                .bind(note.as_str())
                .bind(key),
        )
        .await?;
        let after = flag_by_key(&mut conn, key).await?;
        audit::record(
            &mut conn,
            actor,
            now,
            "acknowledge",
            "stress_flag",
            &after.id,
            serde_json::to_value(&before).ok().as_ref(),
            serde_json::to_value(&after).ok().as_ref(),
        )
        .await?;
        conn.commit().await?;
        Ok(after)
    }
}

async fn case_routing_in(conn: &mut Conn, case_id: &str) -> Result<CaseRouting> {
    let id = parse_public_id("case", case_id)?;
    let row = conn
        .fetch_optional(
            q("SELECT k.id, k.public_id, k.kind, k.status, k.team_id, t.public_id AS team_public_id, a.public_id AS assignee_public_id FROM cases k LEFT JOIN teams t ON t.id = k.team_id LEFT JOIN users a ON a.id = k.assignee_id WHERE k.public_id = $1")
                .bind(id),
        )
        .await?
        .ok_or_else(|| StoreError::not_found("case", case_id))?;
    let key: i64 = row.get("id")?;
    let kind: CaseKind = parse_label(&row, "kind")?;
    let status: CaseStatus = parse_label(&row, "status")?;
    let team: Option<i64> = row.get("team_id")?;
    let assignee: Option<String> = row.get("assignee_public_id")?;
    let skills = own_skills(conn, key).await?;
    let settings = match team {
        Some(team) => load_settings(conn, team).await?,
        None => Settings::default(),
    };
    let required = settings.required(kind, skills.clone());
    let queued = assignee.is_none() && status.is_open() && team.is_some();
    let waiting_reason = match team {
        Some(team) if queued => {
            let roster = load_roster(conn, team).await?;
            match choose(settings.strategy, &roster.candidates, &required) {
                Err(reason) => Some(reason),
                Ok(_) if !settings.auto_assign => Some(Unrouted::AutoAssignOff),
                Ok(_) => None,
            }
        }
        None if assignee.is_none() && status.is_open() => Some(Unrouted::NoTeam),
        _ => None,
    };
    Ok(CaseRouting {
        case_id: row.get("public_id")?,
        team_id: row.get("team_public_id")?,
        assignee_id: assignee,
        skills,
        required_skills: required,
        queued,
        waiting_reason,
    })
}

async fn flag_by_key(conn: &mut Conn, key: i64) -> Result<StressFlag> {
    let row = conn
        .fetch_one(q(concat!(flag_select!(), " WHERE f.id = $1")).bind(key))
        .await?;
    flag_from_row(&row)
}

async fn clear_flag(conn: &mut Conn, flag: i64, now: i64) -> Result<()> {
    conn.execute(
        q("UPDATE agent_stress_flags SET cleared_at = $1 WHERE id = $2 AND cleared_at IS NULL")
            .bind(now)
            .bind(flag),
    )
    .await?;
    let public_id: String = conn
        .fetch_one(q("SELECT public_id FROM agent_stress_flags WHERE id = $1").bind(flag))
        .await?
        .get("public_id")?;
    audit::record(
        conn,
        &Actor::system(),
        now,
        "clear",
        "stress_flag",
        &public_id,
        None,
        Some(&json!({"cleared_at": Timestamp(now)})),
    )
    .await
}

/// Raises a flag, notifies the supervisors of the agent's team (not the agent, who may
/// be a supervisor themselves) and pauses the agent when the team says so. True when it
/// paused.
#[allow(clippy::too_many_arguments)]
async fn raise_flag(
    conn: &mut Conn,
    profile: &AgentProfile,
    user_key: i64,
    team: Option<i64>,
    settings: &Settings,
    facts: &StressFacts,
    assessment: &StressAssessment,
    now: i64,
) -> Result<bool> {
    let pause =
        assessment.level == StressLevel::Severe && settings.auto_pause_on_severe && !profile.paused;
    let public_id = new_public_id();
    let flag: i64 = conn
        .scalar(
            q("INSERT INTO agent_stress_flags (public_id, user_id, level, reasons, facts, raised_at, auto_paused) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id AS value")
                .bind(public_id.as_str())
                .bind(user_key)
                .bind(assessment.level.as_str())
                .bind(serde_json::to_string(&assessment.reasons).unwrap_or_default())
                .bind(serde_json::to_string(facts).unwrap_or_default())
                .bind(now)
                .bind(pause),
        )
        .await?;
    let system = Actor::system();
    let reasons_en = joined_reasons(&assessment.reasons, false);
    let reasons_zh = joined_reasons(&assessment.reasons, true);
    if pause {
        ensure_profile(conn, user_key, now).await?;
        let reason = format!("stress level severe / 压力等级严重: {reasons_en}");
        set_paused(conn, user_key, &reason, None, now).await?;
        audit::record(
            conn,
            &system,
            now,
            "pause",
            "agent_routing",
            &profile.user_id,
            Some(&json!({"paused": false})),
            Some(&json!({"paused": true, "reason": reason, "stress_flag_id": public_id})),
        )
        .await?;
        crate::complaints::notify(
            conn,
            user_key,
            "routing_paused",
            None,
            &format!(
                "kefu paused routing to you because your stress level is severe ({reasons_en}). Take a break; a supervisor will resume routing. Your open cases stay with you."
            ),
            &format!(
                "系统检测到你的压力等级为严重（{reasons_zh}），已暂停向你分配新工单。请稍作休息，主管会为你恢复分配；手上的工单仍由你处理。"
            ),
            json!({"stress_flag_id": public_id, "level": assessment.level}),
            now,
        )
        .await?;
    }
    let (pause_en, pause_zh) = if pause {
        (
            " Routing to them was paused automatically.",
            "已自动暂停向其分配新工单。",
        )
    } else {
        (
            " Consider a break; you can pause routing to them.",
            "可安排休息，必要时暂停向其分配新工单。",
        )
    };
    let en = format!(
        "{} is under {} stress: {reasons_en}.{pause_en}",
        profile.name,
        assessment.level.label_en().to_lowercase()
    );
    let zh = format!(
        "客服 {} 压力{}：{reasons_zh}。{pause_zh}",
        profile.name,
        assessment.level.label_zh()
    );
    let data =
        json!({"user_id": profile.user_id, "stress_flag_id": public_id, "level": assessment.level});
    for supervisor in crate::complaints::supervisors_of_team(conn, team).await? {
        if supervisor != user_key {
            crate::complaints::notify(
                conn,
                supervisor,
                "agent_stress",
                None,
                &en,
                &zh,
                data.clone(),
                now,
            )
            .await?;
        }
    }
    let raised = flag_by_key(conn, flag).await?;
    audit::record(
        conn,
        &system,
        now,
        "raise",
        "stress_flag",
        &public_id,
        None,
        serde_json::to_value(&raised).ok().as_ref(),
    )
    .await?;
    Ok(pause)
}
