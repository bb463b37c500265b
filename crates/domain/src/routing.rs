//! Routing (工单分配) and agent stress (压力管理): which agent of a team takes the next
//! case, and when an agent needs a break.
//!
//! A team's queue hands cases out by one of three strategies — in turn, to the least
//! loaded agent, or to the agent whose skills fit the case most closely — but always only
//! to agents who are available, not paused by a supervisor, below their capacity and able
//! to handle the case (they have every skill it requires). When nobody qualifies, the
//! case waits in the queue and [`Unrouted`] says why.
//!
//! The textbook names three sources of stress for service staff: workload, difficult
//! customers and failures. [`assess`] turns the facts kefu knows about them — open cases
//! against capacity, consecutive angry or aggressive customers, continuous time on duty,
//! complaints naming the agent — into a level and its reasons, with thresholds a team can
//! tune. It knows nothing of where the facts come from: no I/O, no clock.

use crate::DomainError;
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;

labelled_enum! {
    /// How a team's queue hands cases to its agents (分配策略).
    Strategy ("strategy") {
        /// Each qualified agent in turn: the one who waited longest since their last case.
        RoundRobin = "round_robin", "Round robin", "轮流分配";
        /// The qualified agent with the lowest share of their capacity in use.
        LeastLoaded = "least_loaded", "Least loaded", "负载最低优先";
        /// The qualified agent with the fewest skills beyond those the case needs, so
        /// that versatile agents stay free for the cases only they can take.
        SkillBased = "skill_based", "Skill-based", "按技能匹配";
    }
}

labelled_enum! {
    /// Whether an agent takes new cases (在岗状态). Only `available` agents are routed to;
    /// `available` and `busy` count as time on duty, `away` and `offline` end it.
    Availability ("availability") {
        Available = "available", "Available", "可接单";
        /// At work but taking no new cases (e.g. on a long call).
        Busy = "busy", "Busy, no new cases", "忙碌";
        /// A break: ends continuous time on duty.
        Away = "away", "Away, on a break", "暂离休息";
        Offline = "offline", "Offline", "离线";
    }
}

impl Availability {
    /// Whether the queue may hand this agent a case.
    pub fn receives_cases(self) -> bool {
        self == Availability::Available
    }

    /// Whether the time counts as continuous duty.
    pub fn on_duty(self) -> bool {
        matches!(self, Availability::Available | Availability::Busy)
    }
}

labelled_enum! {
    /// Why a case is still waiting in the queue (未分配原因).
    Unrouted ("reason") {
        /// The team has no agent with a routing profile.
        NoAgents = "no_agents", "The team has no agents to route to", "团队没有可分配的客服";
        NoneAvailable = "none_available", "No agent is available (all offline, away, busy or paused)", "没有在岗可接单的客服";
        NoSkilledAgent = "no_skilled_agent", "No available agent has every skill the case needs", "没有具备所需技能的在岗客服";
        AllAtCapacity = "all_at_capacity", "Every qualified agent is at capacity", "符合条件的客服均已满负荷";
        /// Someone could take it, but the team routes by hand.
        AutoAssignOff = "auto_assign_off", "The team assigns by hand (automatic assignment is off)", "团队未开启自动分配";
        /// The case belongs to no team, so to no queue.
        NoTeam = "no_team", "The case has no team", "工单未指定团队";
    }
}

/// How many open cases an agent takes when nobody said.
pub const DEFAULT_CAPACITY: i64 = 10;
/// The most open cases an agent can be set to take.
pub const MAX_CAPACITY: i64 = 1000;
/// The most skills one agent, one case or one case kind lists.
pub const MAX_SKILLS: usize = 50;
/// The longest skill name, in characters.
pub const MAX_SKILL_CHARS: usize = 40;

/// Checks an agent's capacity: how many open cases they take from the queue at most.
pub fn check_capacity(capacity: i64) -> Result<i64, DomainError> {
    if (1..=MAX_CAPACITY).contains(&capacity) {
        Ok(capacity)
    } else {
        Err(DomainError::invalid(
            "capacity",
            format!("is {capacity}; an agent takes between 1 and {MAX_CAPACITY} open cases"),
        ))
    }
}

/// A skill (技能): a short name such as `billing`, `english` or `粤语`. Names are
/// compared lower-cased; letters (any script), digits, `_` and `-` only, no spaces.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, utoipa::ToSchema,
)]
#[serde(transparent)]
#[schema(value_type = String, example = "billing")]
pub struct Skill(String);

impl Skill {
    pub fn parse(field: &'static str, text: &str) -> Result<Skill, DomainError> {
        let name = text.trim().to_lowercase();
        let count = name.chars().count();
        let well_formed = (1..=MAX_SKILL_CHARS).contains(&count)
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
        if well_formed {
            Ok(Skill(name))
        } else {
            Err(DomainError::invalid(
                field,
                format!(
                    "`{text}` is not a skill name: use 1–{MAX_SKILL_CHARS} letters, digits, `_` or `-` without spaces, such as `billing`, `english` or `粤语`"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Skill {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses a list of skills: sorted, without duplicates, at most [`MAX_SKILLS`].
pub fn parse_skills<S: AsRef<str>>(
    field: &'static str,
    values: &[S],
) -> Result<Vec<Skill>, DomainError> {
    let mut skills = values
        .iter()
        .map(|value| Skill::parse(field, value.as_ref()))
        .collect::<Result<Vec<_>, _>>()?;
    skills.sort();
    skills.dedup();
    if skills.len() > MAX_SKILLS {
        return Err(DomainError::invalid(
            field,
            format!(
                "lists {} skills; at most {MAX_SKILLS} are allowed",
                skills.len()
            ),
        ));
    }
    Ok(skills)
}

/// An agent as the queue sees them at the moment a case is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The caller's key for the agent; ties are broken by the smaller key.
    pub key: i64,
    pub skills: Vec<Skill>,
    pub capacity: i64,
    /// Cases assigned to the agent that are not solved, closed or merged.
    pub open_load: i64,
    /// When the queue last handed the agent a case (epoch milliseconds).
    pub last_assigned_at: Option<i64>,
    pub paused: bool,
    pub availability: Availability,
}

impl Candidate {
    /// Available and not paused: the queue may consider the agent at all.
    pub fn receiving(&self) -> bool {
        self.availability.receives_cases() && !self.paused
    }

    pub fn has_room(&self) -> bool {
        self.open_load < self.capacity
    }

    pub fn has_skills(&self, required: &[Skill]) -> bool {
        required.iter().all(|skill| self.skills.contains(skill))
    }

    /// Compares the share of capacity in use, exactly (no rounding).
    fn load_cmp(&self, other: &Candidate) -> Ordering {
        let mine = i128::from(self.open_load) * i128::from(other.capacity.max(1));
        let theirs = i128::from(other.open_load) * i128::from(self.capacity.max(1));
        mine.cmp(&theirs)
    }

    /// Longest waiting first: never assigned before anyone assigned.
    fn turn_cmp(&self, other: &Candidate) -> Ordering {
        self.last_assigned_at
            .cmp(&other.last_assigned_at)
            .then(self.key.cmp(&other.key))
    }
}

/// Picks the agent for a case: the index into `candidates`, or why nobody qualifies
/// (never [`Unrouted::AutoAssignOff`] or [`Unrouted::NoTeam`], which are the caller's).
///
/// Every strategy considers only agents who are available, not paused, below capacity
/// and have every required skill; they differ in whom they prefer among those.
pub fn choose(
    strategy: Strategy,
    candidates: &[Candidate],
    required: &[Skill],
) -> Result<usize, Unrouted> {
    if candidates.is_empty() {
        return Err(Unrouted::NoAgents);
    }
    let receiving: Vec<usize> = (0..candidates.len())
        .filter(|&i| candidates[i].receiving())
        .collect();
    if receiving.is_empty() {
        return Err(Unrouted::NoneAvailable);
    }
    let skilled: Vec<usize> = receiving
        .into_iter()
        .filter(|&i| candidates[i].has_skills(required))
        .collect();
    if skilled.is_empty() {
        return Err(Unrouted::NoSkilledAgent);
    }
    let qualified = skilled
        .into_iter()
        .filter(|&i| candidates[i].has_room())
        .map(|i| (i, &candidates[i]));
    let best = match strategy {
        Strategy::RoundRobin => qualified.min_by(|(_, a), (_, b)| a.turn_cmp(b)),
        Strategy::LeastLoaded => qualified.min_by(|(_, a), (_, b)| {
            a.load_cmp(b)
                .then(a.open_load.cmp(&b.open_load))
                .then(a.turn_cmp(b))
        }),
        Strategy::SkillBased => qualified.min_by(|(_, a), (_, b)| {
            a.skills
                .len()
                .cmp(&b.skills.len())
                .then(a.load_cmp(b))
                .then(a.turn_cmp(b))
        }),
    };
    best.map(|(i, _)| i).ok_or(Unrouted::AllAtCapacity)
}

labelled_enum! {
    /// How much strain an agent is under (压力等级).
    StressLevel ("level") {
        Normal = "normal", "Normal", "正常";
        /// Worth a supervisor's attention.
        Elevated = "elevated", "Elevated", "偏高";
        /// The agent needs a break; a team may pause routing to them automatically.
        Severe = "severe", "Severe", "严重";
    }
}

labelled_enum! {
    /// Where stress comes from (压力来源): the textbook's difficult customers, workload
    /// and failures, plus long stretches without a break.
    StressSource ("source") {
        AngryStreak = "angry_streak", "Consecutive angry or aggressive customers", "连续接待愤怒或激进的客户";
        LongDuty = "long_duty", "Long continuous time on duty", "连续在岗时间过长";
        Complaints = "complaints", "Complaints naming the agent", "近期被投诉";
        Overload = "overload", "Open cases above capacity", "未结工单超出负荷";
        /// Several of the above at once.
        Combined = "combined", "Several sources at once", "多种压力叠加";
    }
}

/// What kefu knows about an agent's strain at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StressFacts {
    /// The agent's latest cases (within the streak window) whose complaint was angry
    /// venting or aggressive, counted back to the first calmer case.
    pub angry_streak: i64,
    /// Minutes since the agent last came on duty without a break; 0 when off duty.
    pub minutes_on_duty: i64,
    /// Complaints naming the agent within the complaint window.
    pub complaints_received: i64,
    /// Open cases assigned to the agent.
    pub open_load: i64,
    pub capacity: i64,
}

/// When each source counts as elevated or severe. Every `*_severe` is at least its
/// `*_elevated`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct StressThresholds {
    pub angry_streak_elevated: i64,
    pub angry_streak_severe: i64,
    /// Only cases created within this many hours count towards a streak.
    pub angry_streak_window_hours: i64,
    pub duty_minutes_elevated: i64,
    pub duty_minutes_severe: i64,
    pub complaints_elevated: i64,
    pub complaints_severe: i64,
    /// Complaints created within this many days count.
    pub complaints_window_days: i64,
    /// Open cases as a percentage of capacity.
    pub overload_percent_elevated: i64,
    pub overload_percent_severe: i64,
    /// This many elevated sources at once make the level severe.
    pub combined_sources_severe: i64,
}

impl Default for StressThresholds {
    fn default() -> Self {
        StressThresholds {
            angry_streak_elevated: 3,
            angry_streak_severe: 5,
            angry_streak_window_hours: 24,
            duty_minutes_elevated: 180,
            duty_minutes_severe: 300,
            complaints_elevated: 2,
            complaints_severe: 4,
            complaints_window_days: 30,
            overload_percent_elevated: 120,
            overload_percent_severe: 150,
            combined_sources_severe: 3,
        }
    }
}

impl StressThresholds {
    /// Checks that every threshold is positive, within reason, and that severe is not
    /// below elevated.
    pub fn validate(self) -> Result<StressThresholds, DomainError> {
        let ranges: [(&str, i64, i64); 11] = [
            ("angry_streak_elevated", self.angry_streak_elevated, 100),
            ("angry_streak_severe", self.angry_streak_severe, 100),
            (
                "angry_streak_window_hours",
                self.angry_streak_window_hours,
                24 * 30,
            ),
            ("duty_minutes_elevated", self.duty_minutes_elevated, 24 * 60),
            ("duty_minutes_severe", self.duty_minutes_severe, 24 * 60),
            ("complaints_elevated", self.complaints_elevated, 1000),
            ("complaints_severe", self.complaints_severe, 1000),
            ("complaints_window_days", self.complaints_window_days, 365),
            (
                "overload_percent_elevated",
                self.overload_percent_elevated,
                1000,
            ),
            (
                "overload_percent_severe",
                self.overload_percent_severe,
                1000,
            ),
            ("combined_sources_severe", self.combined_sources_severe, 4),
        ];
        for (name, value, max) in ranges {
            if !(1..=max).contains(&value) {
                return Err(DomainError::invalid(
                    "stress",
                    format!("{name} is {value}; it must be between 1 and {max}"),
                ));
            }
        }
        for (elevated, severe, name) in [
            (
                self.angry_streak_elevated,
                self.angry_streak_severe,
                "angry_streak",
            ),
            (
                self.duty_minutes_elevated,
                self.duty_minutes_severe,
                "duty_minutes",
            ),
            (
                self.complaints_elevated,
                self.complaints_severe,
                "complaints",
            ),
            (
                self.overload_percent_elevated,
                self.overload_percent_severe,
                "overload_percent",
            ),
        ] {
            if severe < elevated {
                return Err(DomainError::invalid(
                    "stress",
                    format!("{name}_severe ({severe}) is below {name}_elevated ({elevated})"),
                ));
            }
        }
        Ok(self)
    }
}

/// One source of stress that reached a threshold.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StressReason {
    pub source: StressSource,
    pub level: StressLevel,
    /// The measured value (count, minutes or percent).
    pub value: i64,
    /// The threshold it reached.
    pub threshold: i64,
    pub message_en: String,
    pub message_zh: String,
}

/// The level and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct StressAssessment {
    pub level: StressLevel,
    /// The sources at or above their elevated threshold, most severe first.
    pub reasons: Vec<StressReason>,
}

/// Assesses an agent's stress from the facts: each source is rated against its
/// thresholds, the level is the highest rating, and enough elevated sources at once
/// make it severe.
pub fn assess(facts: &StressFacts, thresholds: &StressThresholds) -> StressAssessment {
    let t = thresholds;
    let load_percent = if facts.capacity > 0 {
        facts.open_load.saturating_mul(100) / facts.capacity
    } else {
        0
    };
    let hours = facts.minutes_on_duty / 60;
    let minutes = facts.minutes_on_duty % 60;
    let sources = [
        (
            StressSource::AngryStreak,
            facts.angry_streak,
            t.angry_streak_elevated,
            t.angry_streak_severe,
            format!(
                "{} angry or aggressive customers in a row",
                facts.angry_streak
            ),
            format!("连续接待了 {} 位愤怒或激进的客户", facts.angry_streak),
        ),
        (
            StressSource::LongDuty,
            facts.minutes_on_duty,
            t.duty_minutes_elevated,
            t.duty_minutes_severe,
            format!("on duty for {hours} h {minutes} min without a break"),
            format!("已连续在岗 {hours} 小时 {minutes} 分钟未休息"),
        ),
        (
            StressSource::Complaints,
            facts.complaints_received,
            t.complaints_elevated,
            t.complaints_severe,
            format!(
                "named in {} complaints in the last {} days",
                facts.complaints_received, t.complaints_window_days
            ),
            format!(
                "近 {} 天被投诉 {} 次",
                t.complaints_window_days, facts.complaints_received
            ),
        ),
        (
            StressSource::Overload,
            load_percent,
            t.overload_percent_elevated,
            t.overload_percent_severe,
            format!(
                "{} open cases for a capacity of {} ({load_percent}%)",
                facts.open_load, facts.capacity
            ),
            format!(
                "未结工单 {} 件，负荷上限 {} 件（{load_percent}%）",
                facts.open_load, facts.capacity
            ),
        ),
    ];
    let mut reasons = Vec::new();
    for (source, value, elevated, severe, message_en, message_zh) in sources {
        let (level, threshold) = if value >= severe {
            (StressLevel::Severe, severe)
        } else if value >= elevated {
            (StressLevel::Elevated, elevated)
        } else {
            continue;
        };
        reasons.push(StressReason {
            source,
            level,
            value,
            threshold,
            message_en,
            message_zh,
        });
    }
    let count = reasons.len() as i64;
    if count >= t.combined_sources_severe && count > 1 {
        reasons.push(StressReason {
            source: StressSource::Combined,
            level: StressLevel::Severe,
            value: count,
            threshold: t.combined_sources_severe,
            message_en: format!("{count} sources of stress at once"),
            message_zh: format!("{count} 种压力来源同时出现"),
        });
    }
    reasons.sort_by(|a, b| b.level.cmp(&a.level).then(a.source.cmp(&b.source)));
    StressAssessment {
        level: reasons
            .iter()
            .map(|r| r.level)
            .max()
            .unwrap_or(StressLevel::Normal),
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Labelled;

    fn skills(names: &[&str]) -> Vec<Skill> {
        parse_skills("skills", names).expect("skills")
    }

    fn agent(key: i64, load: i64, capacity: i64, last: Option<i64>, names: &[&str]) -> Candidate {
        Candidate {
            key,
            skills: skills(names),
            capacity,
            open_load: load,
            last_assigned_at: last,
            paused: false,
            availability: Availability::Available,
        }
    }

    /// The key of the agent `strategy` picks, or why none.
    fn check(
        strategy: Strategy,
        candidates: &[Candidate],
        required: &[&str],
    ) -> Result<i64, Unrouted> {
        choose(strategy, candidates, &skills(required)).map(|i| candidates[i].key)
    }

    #[test]
    fn round_robin_takes_turns_by_last_assignment() {
        let team = [
            agent(1, 0, 5, Some(300), &[]),
            agent(2, 4, 5, Some(100), &[]),
            agent(3, 0, 5, Some(200), &[]),
        ];
        assert_eq!(check(Strategy::RoundRobin, &team, &[]), Ok(2));
        // Never assigned beats everyone; equal times go to the smaller key.
        let fresh = [agent(5, 0, 5, Some(1), &[]), agent(4, 0, 5, None, &[])];
        assert_eq!(check(Strategy::RoundRobin, &fresh, &[]), Ok(4));
        let tied = [agent(7, 0, 5, Some(1), &[]), agent(6, 0, 5, Some(1), &[])];
        assert_eq!(check(Strategy::RoundRobin, &tied, &[]), Ok(6));
    }

    #[test]
    fn least_loaded_compares_shares_of_capacity() {
        let team = [
            agent(1, 2, 4, None, &[]),     // 50 %
            agent(2, 3, 10, Some(9), &[]), // 30 %
            agent(3, 1, 2, None, &[]),     // 50 %
        ];
        assert_eq!(check(Strategy::LeastLoaded, &team, &[]), Ok(2));
        // Equal shares: the fewer cases, then the longer wait.
        let equal = [agent(1, 2, 4, None, &[]), agent(2, 1, 2, None, &[])];
        assert_eq!(check(Strategy::LeastLoaded, &equal, &[]), Ok(2));
        let same = [agent(1, 1, 4, Some(5), &[]), agent(2, 1, 4, Some(3), &[])];
        assert_eq!(check(Strategy::LeastLoaded, &same, &[]), Ok(2));
    }

    #[test]
    fn skill_based_prefers_the_closest_match() {
        let team = [
            agent(1, 0, 5, None, &["billing", "english", "粤语"]),
            agent(2, 3, 5, None, &["billing", "english"]),
            agent(3, 0, 5, None, &["english"]),
        ];
        assert_eq!(
            check(Strategy::SkillBased, &team, &["billing", "english"]),
            Ok(2)
        );
        assert_eq!(check(Strategy::SkillBased, &team, &["粤语"]), Ok(1));
        assert_eq!(check(Strategy::SkillBased, &team, &[]), Ok(3));
        assert_eq!(
            check(Strategy::SkillBased, &team, &["french"]),
            Err(Unrouted::NoSkilledAgent)
        );
    }

    #[test]
    fn every_strategy_respects_skills_capacity_and_pauses() {
        for strategy in Strategy::ALL.iter().copied() {
            let mut team = vec![
                agent(1, 5, 5, None, &["billing"]),
                agent(2, 0, 5, None, &[]),
                agent(3, 0, 5, None, &["billing"]),
            ];
            team[2].paused = true;
            assert_eq!(
                check(strategy, &team, &["billing"]),
                Err(Unrouted::AllAtCapacity),
                "{strategy}"
            );
            team[2].paused = false;
            team[2].availability = Availability::Busy;
            assert_eq!(
                check(strategy, &team, &["billing"]),
                Err(Unrouted::AllAtCapacity),
                "{strategy}"
            );
            team[2].availability = Availability::Available;
            assert_eq!(check(strategy, &team, &["billing"]), Ok(3), "{strategy}");
            assert_eq!(check(strategy, &team, &["BILLING "]), Ok(3), "{strategy}");
            for member in &mut team {
                member.availability = Availability::Offline;
            }
            assert_eq!(
                check(strategy, &team, &[]),
                Err(Unrouted::NoneAvailable),
                "{strategy}"
            );
            assert_eq!(check(strategy, &[], &[]), Err(Unrouted::NoAgents));
        }
    }

    #[test]
    fn skills_and_capacity_are_checked() {
        assert_eq!(
            skills(&[" English", "billing", "english", "客服_2"])
                .iter()
                .map(Skill::as_str)
                .collect::<Vec<_>>(),
            vec!["billing", "english", "客服_2"]
        );
        for bad in [
            "",
            "  ",
            "two words",
            "a,b",
            "x".repeat(41).as_str(),
            "t\tb",
            "a.b",
        ] {
            let error = Skill::parse("skills", bad).expect_err(bad);
            assert_eq!(error.field(), "skills");
            assert!(error.to_string().contains("is not a skill name"), "{error}");
        }
        let many: Vec<String> = (0..=MAX_SKILLS).map(|i| format!("s{i}")).collect();
        assert!(parse_skills("skills", &many).is_err());
        assert_eq!(check_capacity(1), Ok(1));
        assert_eq!(check_capacity(MAX_CAPACITY), Ok(MAX_CAPACITY));
        for bad in [0, -1, MAX_CAPACITY + 1] {
            assert_eq!(
                check_capacity(bad).map_err(|e| e.field()),
                Err("capacity"),
                "{bad}"
            );
        }
    }

    #[test]
    fn availability_says_who_is_on_duty() {
        use Availability::*;
        let on_duty: Vec<_> = Availability::ALL.iter().filter(|a| a.on_duty()).collect();
        assert_eq!(on_duty, vec![&Available, &Busy]);
        assert!(Available.receives_cases());
        assert!(!Busy.receives_cases());
    }

    fn facts(angry: i64, minutes: i64, complaints: i64, load: i64, capacity: i64) -> StressFacts {
        StressFacts {
            angry_streak: angry,
            minutes_on_duty: minutes,
            complaints_received: complaints,
            open_load: load,
            capacity,
        }
    }

    fn rated(facts: &StressFacts) -> (StressLevel, Vec<(StressSource, StressLevel)>) {
        let assessment = assess(facts, &StressThresholds::default());
        (
            assessment.level,
            assessment
                .reasons
                .iter()
                .map(|r| (r.source, r.level))
                .collect(),
        )
    }

    #[test]
    fn stress_is_rated_per_source() {
        use StressLevel::*;
        use StressSource::*;
        assert_eq!(rated(&facts(2, 179, 1, 10, 10)), (Normal, vec![]));
        assert_eq!(
            rated(&facts(3, 0, 0, 0, 10)),
            (Elevated, vec![(AngryStreak, Elevated)])
        );
        assert_eq!(
            rated(&facts(5, 0, 0, 0, 10)),
            (Severe, vec![(AngryStreak, Severe)])
        );
        assert_eq!(
            rated(&facts(0, 180, 0, 0, 10)),
            (Elevated, vec![(LongDuty, Elevated)])
        );
        assert_eq!(
            rated(&facts(0, 300, 0, 0, 10)),
            (Severe, vec![(LongDuty, Severe)])
        );
        assert_eq!(
            rated(&facts(0, 0, 2, 0, 10)),
            (Elevated, vec![(Complaints, Elevated)])
        );
        assert_eq!(
            rated(&facts(0, 0, 4, 0, 10)),
            (Severe, vec![(Complaints, Severe)])
        );
        assert_eq!(
            rated(&facts(0, 0, 0, 12, 10)),
            (Elevated, vec![(Overload, Elevated)])
        );
        assert_eq!(
            rated(&facts(0, 0, 0, 15, 10)),
            (Severe, vec![(Overload, Severe)])
        );
        // Two elevated sources stay elevated; three at once are severe.
        assert_eq!(
            rated(&facts(3, 200, 0, 0, 10)),
            (
                Elevated,
                vec![(AngryStreak, Elevated), (LongDuty, Elevated)]
            )
        );
        assert_eq!(
            rated(&facts(3, 200, 2, 0, 10)),
            (
                Severe,
                vec![
                    (Combined, Severe),
                    (AngryStreak, Elevated),
                    (LongDuty, Elevated),
                    (Complaints, Elevated)
                ]
            )
        );
    }

    #[test]
    fn reasons_speak_both_languages() {
        let assessment = assess(&facts(0, 185, 0, 0, 10), &StressThresholds::default());
        let reason = &assessment.reasons[0];
        assert_eq!(reason.message_en, "on duty for 3 h 5 min without a break");
        assert_eq!(reason.message_zh, "已连续在岗 3 小时 5 分钟未休息");
        assert_eq!((reason.value, reason.threshold), (185, 180));
    }

    #[test]
    fn thresholds_are_validated() {
        assert!(StressThresholds::default().validate().is_ok());
        let inverted = StressThresholds {
            angry_streak_severe: 2,
            ..Default::default()
        };
        let error = inverted.validate().expect_err("severe below elevated");
        assert_eq!(error.field(), "stress");
        assert!(
            error.to_string().contains("angry_streak_severe (2)"),
            "{error}"
        );
        let zero = StressThresholds {
            complaints_window_days: 0,
            ..Default::default()
        };
        assert!(zero.validate().is_err());
        // A partial object fills in the defaults; unknown keys are refused.
        let partial: StressThresholds =
            serde_json::from_str(r#"{"angry_streak_elevated": 2, "angry_streak_severe": 4}"#)
                .expect("partial");
        assert_eq!(partial.duty_minutes_elevated, 180);
        assert!(serde_json::from_str::<StressThresholds>(r#"{"calm": 1}"#).is_err());
    }
}
