//! Service-level agreements (服务时限): first-response, next-response and resolution
//! targets by case kind, priority and complaint severity, counted in a team's working
//! time, paused while the case waits on the customer, with a warning before the breach.
//!
//! A clock keeps the working time it has already used (`elapsed`) and the moment it last
//! started running (`resumed_at`); its due time is always recomputed from those two, so
//! pausing, resuming and a change of target cannot drift.

use crate::calendar::Calendar;
use crate::cases::{CaseKind, Priority};
use crate::complaints::Severity;
use crate::{DomainError, required_text};
use serde::{Deserialize, Serialize};

labelled_enum! {
    /// What an SLA clock measures.
    SlaMetric ("metric") {
        FirstResponse = "first_response", "First response", "首次响应";
        NextResponse = "next_response", "Next response", "再次响应";
        Resolution = "resolution", "Resolution", "解决时限";
    }
}

labelled_enum! {
    ClockState ("state") {
        Running = "running", "Running", "计时中";
        /// Waiting on the customer: the clock does not run.
        Paused = "paused", "Paused, waiting on the customer", "已暂停";
        Met = "met", "Met", "已达成";
        Breached = "breached", "Breached", "已超时";
        /// The case ended without the measured event (e.g. closed without a reply).
        Stopped = "stopped", "Stopped", "已停止";
    }
}

/// The longest target: a year of working time.
pub const MAX_TARGET_MS: i64 = 365 * 24 * 3_600_000;

/// A policy as written by an admin. The most specific matching policy applies: policies
/// are tried in `rank` order and the first whose conditions all hold wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SlaPolicySpec {
    pub name: String,
    /// Lower ranks are tried first.
    pub rank: i64,
    /// Conditions; absent means any.
    pub case_kind: Option<CaseKind>,
    pub priority: Option<Priority>,
    /// Matches complaints of this severity (applies once the complaint is recorded).
    pub severity: Option<Severity>,
    /// Targets in minutes of working time; absent means not measured.
    pub first_response_minutes: Option<i64>,
    pub next_response_minutes: Option<i64>,
    pub resolution_minutes: Option<i64>,
    /// Warn when this share of the target is used (default 80).
    pub warn_at_percent: Option<i64>,
    /// On breach, raise the case to urgent and escalate a complaint (default true).
    pub escalate_on_breach: Option<bool>,
    pub active: Option<bool>,
}

/// A checked policy in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlaTargets {
    pub first_response_ms: Option<i64>,
    pub next_response_ms: Option<i64>,
    pub resolution_ms: Option<i64>,
    pub warn_at_percent: i64,
    pub escalate_on_breach: bool,
}

impl SlaPolicySpec {
    pub fn validate(&self) -> Result<SlaTargets, DomainError> {
        required_text("name", &self.name, 200)?;
        let minutes =
            |field: &'static str, value: Option<i64>| -> Result<Option<i64>, DomainError> {
                match value {
                    None => Ok(None),
                    Some(m) if m >= 1 && m * 60_000 <= MAX_TARGET_MS => Ok(Some(m * 60_000)),
                    Some(_) => Err(DomainError::invalid(
                        field,
                        format!("must be between 1 and {} minutes", MAX_TARGET_MS / 60_000),
                    )),
                }
            };
        let targets = SlaTargets {
            first_response_ms: minutes("first_response_minutes", self.first_response_minutes)?,
            next_response_ms: minutes("next_response_minutes", self.next_response_minutes)?,
            resolution_ms: minutes("resolution_minutes", self.resolution_minutes)?,
            warn_at_percent: self.warn_at_percent.unwrap_or(80),
            escalate_on_breach: self.escalate_on_breach.unwrap_or(true),
        };
        if targets.first_response_ms.is_none()
            && targets.next_response_ms.is_none()
            && targets.resolution_ms.is_none()
        {
            return Err(DomainError::invalid(
                "first_response_minutes",
                "a policy sets at least one target",
            ));
        }
        if !(1..=99).contains(&targets.warn_at_percent) {
            return Err(DomainError::invalid(
                "warn_at_percent",
                "must be between 1 and 99",
            ));
        }
        if let (Some(first), Some(resolution)) = (targets.first_response_ms, targets.resolution_ms)
            && first > resolution
        {
            return Err(DomainError::invalid(
                "first_response_minutes",
                "the first response cannot be due after the resolution",
            ));
        }
        if !(0..=1_000_000).contains(&self.rank) {
            return Err(DomainError::invalid(
                "rank",
                "must be between 0 and 1000000",
            ));
        }
        Ok(targets)
    }
}

/// When a running clock is due, and when it warns (`None` once warned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Schedule {
    pub due_at: i64,
    pub warn_at: Option<i64>,
}

impl Schedule {
    /// The next moment the sweep must look at the clock.
    pub fn next_check(self) -> i64 {
        self.warn_at.map_or(self.due_at, |w| w.min(self.due_at))
    }
}

/// Schedules a clock that resumed at `resumed_at` having used `elapsed` of `target`.
pub fn schedule(
    calendar: &Calendar,
    resumed_at: i64,
    elapsed: i64,
    target: i64,
    warn_at_percent: i64,
    warned: bool,
) -> Schedule {
    let due_at = calendar.add_business_millis(resumed_at, (target - elapsed).max(0));
    let warn_point = target.saturating_mul(warn_at_percent) / 100 - elapsed;
    let warn_at = (!warned && warn_point > 0)
        .then(|| calendar.add_business_millis(resumed_at, warn_point))
        .or((!warned && warn_point <= 0).then_some(resumed_at));
    Schedule { due_at, warn_at }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calendar::{CalendarSpec, Weekday, WorkingHours};

    const HOUR: i64 = 3_600_000;

    fn office() -> Calendar {
        CalendarSpec {
            time_zone: "UTC".into(),
            hours: [
                Weekday::Monday,
                Weekday::Tuesday,
                Weekday::Wednesday,
                Weekday::Thursday,
                Weekday::Friday,
            ]
            .into_iter()
            .map(|weekday| WorkingHours {
                weekday,
                start: "09:00".into(),
                end: "17:00".into(),
            })
            .collect(),
            always_open: false,
            ..Default::default()
        }
        .validate()
        .expect("calendar")
    }

    // 2026-11-20 is a Friday.
    const FRIDAY_16: i64 = 1_795_132_800_000 + 16 * HOUR;

    #[test]
    fn a_clock_counts_working_time_only() {
        let s = schedule(&office(), FRIDAY_16, 0, 4 * HOUR, 75, false);
        // 1 h on Friday, 3 h on Monday: due Monday 12:00; warning at 3 h: Monday 11:00.
        assert_eq!(s.due_at, FRIDAY_16 + 3 * 24 * HOUR - 4 * HOUR);
        assert_eq!(s.warn_at, Some(FRIDAY_16 + 3 * 24 * HOUR - 5 * HOUR));
        assert_eq!(s.next_check(), s.warn_at.expect("warn"));
    }

    #[test]
    fn a_resumed_clock_keeps_what_it_used() {
        let calendar = Calendar::default();
        let s = schedule(&calendar, 10 * HOUR, 3 * HOUR, 4 * HOUR, 50, false);
        assert_eq!(s.due_at, 11 * HOUR);
        assert_eq!(
            s.warn_at,
            Some(10 * HOUR),
            "past the warning point: warn now"
        );
        let warned = schedule(&calendar, 10 * HOUR, 3 * HOUR, 4 * HOUR, 50, true);
        assert_eq!(warned.warn_at, None);
        let over = schedule(&calendar, 10 * HOUR, 5 * HOUR, 4 * HOUR, 50, true);
        assert_eq!(over.due_at, 10 * HOUR, "already used up: due at once");
    }

    #[test]
    fn policies_are_checked() {
        let spec = SlaPolicySpec {
            name: "投诉".into(),
            rank: 10,
            case_kind: Some(CaseKind::Complaint),
            priority: None,
            severity: Some(Severity::Serious),
            first_response_minutes: Some(30),
            next_response_minutes: None,
            resolution_minutes: Some(24 * 60),
            warn_at_percent: None,
            escalate_on_breach: None,
            active: None,
        };
        let targets = spec.validate().expect("valid");
        assert_eq!(targets.first_response_ms, Some(30 * 60_000));
        assert_eq!(targets.warn_at_percent, 80);
        assert!(targets.escalate_on_breach);
        for bad in [
            SlaPolicySpec {
                first_response_minutes: Some(0),
                ..spec.clone()
            },
            SlaPolicySpec {
                first_response_minutes: None,
                resolution_minutes: None,
                ..spec.clone()
            },
            SlaPolicySpec {
                warn_at_percent: Some(100),
                ..spec.clone()
            },
            SlaPolicySpec {
                first_response_minutes: Some(48 * 60),
                ..spec.clone()
            },
            SlaPolicySpec {
                name: " ".into(),
                ..spec.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }
}
