//! 工作日历 (business-hours calendars): when a team is at work, so that SLA clocks count
//! 工作时间 (working time) rather than wall time.
//!
//! A team promises "first reply within 4 working hours", not "within 4 hours": a case that
//! arrives on Friday at 17:30 in Shanghai is due on Monday, not at 21:30 that night. A
//! [`CalendarSpec`] says when the team works, in its own time zone: weekly hours (several
//! intervals a day, so a lunch break is simply two intervals), 节假日 (public holidays, on
//! which nobody works) and 调休 make-up working days (China moves weekend days around its
//! public holidays: the Saturday before 春节 may be a working day, and an SLA clock must
//! run on it). [`CalendarSpec::validate`] checks it and compiles a [`Calendar`], which
//! answers the questions an SLA clock asks, in epoch milliseconds:
//!
//! - [`Calendar::add_business_millis`]: when is a case due, given when it arrived and the
//!   target in working time?
//! - [`Calendar::business_millis_between`]: how much working time has passed? An SLA clock
//!   that pauses while waiting on the customer sums this over the spans it was running.
//! - [`Calendar::is_open`] and [`Calendar::next_opening`].
//!
//! What this module does not do: it keeps no clock and no state. Pausing, warning before a
//! breach and storing calendars per team are the caller's business; they are all built
//! from the two functions above (a warning at 80 % is `add_business_millis(start, target *
//! 4 / 5)`).
//!
//! ## What counts as working time
//!
//! Hours are wall-clock times in the calendar's time zone. Each interval of each date is
//! turned into a span of instants by resolving its start and its end with jiff's
//! "compatible" disambiguation (the rule of RFC 5545 and of JavaScript's Temporal): a time
//! that occurs twice when clocks go back means its first occurrence, and a time skipped
//! when clocks go forward is moved forward by the length of the skip. So on the day Berlin
//! goes from 02:00 to 03:00, hours 09:00–17:00 are still eight real hours, hours
//! 00:00–24:00 are 23 real hours, and hours starting at 02:30 open at 03:30. An interval
//! that this turns inside out (02:30–03:15 on that day) is empty. Working time is the union
//! of these spans; a 24×7 calendar (`always_open`) is all of time.
//!
//! Time zones come from the tz database compiled into kefu (jiff's bundled copy), not from
//! the machine, so two kefu nodes always agree on a deadline. [`Calendar`] copies the UTC
//! offsets of its zone from 1970 to 2200 into a table when it is built; before and after
//! that range the nearest offset is assumed to hold. Instants outside jiff's range (years
//! -9999 to 9999) are treated as the ends of that range.
//!
//! ## Speed
//!
//! A sweep recomputes the due time of every open case, so [`Calendar::add_business_millis`]
//! must be cheap: far from a change of UTC offset a date's hours are one subtraction away
//! from instants, and whole weeks without a holiday or make-up day are skipped by
//! multiplying the working time of a week, so a target of a month costs about as much as a
//! target of a day. Only the few dates around an offset change go through the general
//! (sorting) path.

use std::cmp::{max, min};

use crate::DomainError;

const MINUTE: i64 = 60_000;
const DAY: i64 = 86_400_000;
const WEEK: i64 = 7 * DAY;

/// Local day numbers beyond any instant jiff can represent, used as open ends.
const FAR_PAST_DAY: i64 = -1_000_000_000;
const FAR_FUTURE_DAY: i64 = 1_000_000_000;

/// The offset table covers 1970-01-01 to 2200-01-01 (in seconds since the epoch).
const TABLE_START_SECOND: i64 = 0;
const TABLE_END_SECOND: i64 = 7_258_118_400;

fn min_instant() -> i64 {
    jiff::Timestamp::MIN.as_millisecond()
}

fn max_instant() -> i64 {
    jiff::Timestamp::MAX.as_millisecond()
}

labelled_enum! {
    /// A day of the week, Monday first as in China and ISO 8601.
    Weekday ("weekday") {
        Monday = "monday", "Monday", "星期一";
        Tuesday = "tuesday", "Tuesday", "星期二";
        Wednesday = "wednesday", "Wednesday", "星期三";
        Thursday = "thursday", "Thursday", "星期四";
        Friday = "friday", "Friday", "星期五";
        Saturday = "saturday", "Saturday", "星期六";
        Sunday = "sunday", "Sunday", "星期日";
    }
}

impl Weekday {
    /// 0 for Monday … 6 for Sunday.
    fn index(self) -> usize {
        self as usize
    }
}

/// A 工作日历 as the API accepts it: the team's time zone, its weekly 工作时间, its 节假日
/// and its 调休 make-up working days. [`CalendarSpec::validate`] turns it into a
/// [`Calendar`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CalendarSpec {
    /// An IANA time zone name such as `Asia/Shanghai`, `Europe/Berlin` or `UTC`. Hours,
    /// holidays and make-up days are read on the wall clock of this zone.
    pub time_zone: String,
    /// Open around the clock, every day (24×7): the default calendar, in which working
    /// time is elapsed time. Such a calendar takes no `hours` and no
    /// `extra_working_days`; its `holidays`, if any, are closed.
    #[serde(default)]
    pub always_open: bool,
    /// The weekly 工作时间. Several intervals per day are allowed (a lunch break is the gap
    /// between two); intervals of one weekday must not overlap. Required unless
    /// `always_open`.
    #[serde(default)]
    pub hours: Vec<WorkingHours>,
    /// 节假日: dates on which nobody works, whatever their weekday.
    #[serde(default)]
    pub holidays: Vec<Holiday>,
    /// 调休: dates worked although they are not normally working days, such as the weekend
    /// days China moves next to 春节 and 国庆节. On such a date the team works from
    /// `start` to `end` instead of its weekly hours.
    #[serde(default)]
    pub extra_working_days: Vec<ExtraDay>,
}

impl Default for CalendarSpec {
    /// The 24×7 calendar in UTC, for teams that have not set their hours.
    fn default() -> Self {
        CalendarSpec {
            time_zone: "UTC".to_string(),
            always_open: true,
            hours: Vec::new(),
            holidays: Vec::new(),
            extra_working_days: Vec::new(),
        }
    }
}

/// One interval of weekly 工作时间, on the wall clock of the calendar's zone.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkingHours {
    pub weekday: Weekday,
    /// `HH:MM`, from `00:00` to `23:59`.
    pub start: String,
    /// `HH:MM`, later than `start`; `24:00` is midnight at the end of the day.
    pub end: String,
}

/// A 节假日: a date (`YYYY-MM-DD`, in the calendar's zone) on which nobody works.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Holiday {
    pub date: String,
    /// What the day is, e.g. `国庆节`.
    pub name: String,
}

/// A 调休 make-up working day: a date (`YYYY-MM-DD`) worked from `start` to `end` (`HH:MM`)
/// whatever its weekday, replacing that date's weekly hours.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtraDay {
    pub date: String,
    pub start: String,
    pub end: String,
    /// Why the day is worked, e.g. `春节调休`.
    pub name: String,
}

const NAME_MAX_CHARS: usize = 100;

impl CalendarSpec {
    /// Checks the calendar and compiles it. Errors name the list concerned (`hours`,
    /// `holidays`, …) as their field and start their message with the entry's path
    /// (`hours[3].start: …`), because the field of a [`DomainError`] is a static name.
    pub fn validate(&self) -> Result<Calendar, DomainError> {
        let name = self.time_zone.trim();
        let tz = jiff::tz::TimeZone::get(name).map_err(|_| {
            DomainError::invalid(
                "time_zone",
                format!(
                    "`{}` is not a time zone of the IANA database, such as Asia/Shanghai or UTC",
                    self.time_zone
                ),
            )
        })?;
        let time_zone = tz.iana_name().unwrap_or(name).to_string();

        if self.always_open && !self.hours.is_empty() {
            return Err(DomainError::invalid(
                "always_open",
                "an always-open (24×7) calendar takes no hours; remove always_open or the hours",
            ));
        }
        if self.always_open && !self.extra_working_days.is_empty() {
            return Err(DomainError::invalid(
                "extra_working_days",
                "an always-open (24×7) calendar has no make-up working days",
            ));
        }
        if !self.always_open && self.hours.is_empty() {
            return Err(DomainError::invalid(
                "hours",
                "the calendar has no working time: give at least one interval of hours, \
                 or set always_open for a 24×7 calendar",
            ));
        }

        let week = if self.always_open {
            std::array::from_fn(|_| vec![(0, DAY)])
        } else {
            self.compile_hours()?
        };
        let specials = self.compile_specials()?;
        let week_total = week.iter().flatten().map(|(s, e)| e - s).sum();
        Ok(Calendar {
            time_zone,
            pure_elapsed: self.always_open && specials.is_empty(),
            week,
            week_total,
            specials,
            zone: Zone::new(&tz),
        })
    }

    fn compile_hours(&self) -> Result<[Vec<(i64, i64)>; 7], DomainError> {
        // (weekday, start, end, index in `hours`)
        let mut intervals = Vec::with_capacity(self.hours.len());
        for (index, hours) in self.hours.iter().enumerate() {
            let (start, end) = parse_span(
                "hours",
                &format!("hours[{index}]"),
                &hours.start,
                &hours.end,
            )?;
            intervals.push((hours.weekday.index(), start, end, index));
        }
        intervals.sort_unstable();
        for pair in intervals.windows(2) {
            let (earlier, later) = (pair[0], pair[1]);
            if earlier.0 == later.0 && later.1 < earlier.2 {
                let (first, second) = (min(earlier.3, later.3), max(earlier.3, later.3));
                return Err(DomainError::invalid(
                    "hours",
                    format!(
                        "hours[{second}] ({}) overlaps hours[{first}] ({})",
                        self.describe(second),
                        self.describe(first)
                    ),
                ));
            }
        }
        let mut week: [Vec<(i64, i64)>; 7] = Default::default();
        for (weekday, start, end, _) in intervals {
            let day = &mut week[weekday];
            // Touching intervals (09:00–12:00, 12:00–13:00) are one span of working time.
            match day.last_mut() {
                Some(last) if last.1 == start => last.1 = end,
                _ => day.push((start, end)),
            }
        }
        Ok(week)
    }

    fn describe(&self, index: usize) -> String {
        let hours = &self.hours[index];
        format!("{} {}–{}", hours.weekday, hours.start, hours.end)
    }

    fn compile_specials(&self) -> Result<Vec<Special>, DomainError> {
        // day → (list, index) of the entry that claimed it first
        let mut seen: std::collections::BTreeMap<i64, (&'static str, usize)> =
            std::collections::BTreeMap::new();
        let mut specials = Vec::with_capacity(self.holidays.len() + self.extra_working_days.len());
        for (index, holiday) in self.holidays.iter().enumerate() {
            let path = format!("holidays[{index}]");
            let day = parse_date("holidays", &path, &holiday.date)?;
            check_name("holidays", &path, &holiday.name)?;
            if let Some((_, first)) = seen.insert(day, ("holidays", index)) {
                return Err(DomainError::invalid(
                    "holidays",
                    format!("{path}: {} is already holidays[{first}]", holiday.date),
                ));
            }
            specials.push(Special { day, hours: None });
        }
        for (index, extra) in self.extra_working_days.iter().enumerate() {
            let path = format!("extra_working_days[{index}]");
            let day = parse_date("extra_working_days", &path, &extra.date)?;
            let span = parse_span("extra_working_days", &path, &extra.start, &extra.end)?;
            check_name("extra_working_days", &path, &extra.name)?;
            if let Some((list, first)) = seen.insert(day, ("extra_working_days", index)) {
                let message = if list == "holidays" {
                    format!(
                        "{path}: {} is also a holiday, holidays[{first}]",
                        extra.date
                    )
                } else {
                    format!(
                        "{path}: {} is already extra_working_days[{first}]",
                        extra.date
                    )
                };
                return Err(DomainError::invalid("extra_working_days", message));
            }
            specials.push(Special {
                day,
                hours: Some(span),
            });
        }
        specials.sort_unstable_by_key(|special| special.day);
        Ok(specials)
    }
}

/// Parses `HH:MM` into minutes after midnight; `24:00` is allowed (as 1440) for ends.
fn parse_clock(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.len() != 5
        || bytes[2] != b':'
        || !bytes[..2].iter().chain(&bytes[3..]).all(u8::is_ascii_digit)
    {
        return None;
    }
    let digit = |i: usize| i64::from(bytes[i] - b'0');
    let (hour, minute) = (digit(0) * 10 + digit(1), digit(3) * 10 + digit(4));
    ((hour < 24 && minute < 60) || (hour == 24 && minute == 0)).then_some(hour * 60 + minute)
}

/// Parses a `start`–`end` pair into milliseconds after midnight.
fn parse_span(
    field: &'static str,
    path: &str,
    start: &str,
    end: &str,
) -> Result<(i64, i64), DomainError> {
    let clock = |which: &str, text: &str| {
        parse_clock(text).ok_or_else(|| {
            DomainError::invalid(
                field,
                format!("{path}.{which}: `{text}` is not a time HH:MM such as 09:00"),
            )
        })
    };
    let (start_minute, end_minute) = (clock("start", start)?, clock("end", end)?);
    if start_minute == 24 * 60 {
        return Err(DomainError::invalid(
            field,
            format!("{path}.start: 24:00 is allowed only as an end"),
        ));
    }
    if start_minute >= end_minute {
        return Err(DomainError::invalid(
            field,
            format!("{path}: starts at {start}, not before its end {end}"),
        ));
    }
    Ok((start_minute * MINUTE, end_minute * MINUTE))
}

/// Parses `YYYY-MM-DD` into a local day number (days since 1970-01-01).
fn parse_date(field: &'static str, path: &str, text: &str) -> Result<i64, DomainError> {
    let invalid = || {
        DomainError::invalid(
            field,
            format!("{path}.date: `{text}` is not a date YYYY-MM-DD such as 2026-10-01"),
        )
    };
    let bytes = text.as_bytes();
    let shape_ok = bytes.len() == 10
        && bytes[4] == b'-'
        && bytes[7] == b'-'
        && bytes
            .iter()
            .enumerate()
            .all(|(i, b)| i == 4 || i == 7 || b.is_ascii_digit());
    if !shape_ok {
        return Err(invalid());
    }
    let number = |range: std::ops::Range<usize>| {
        range.fold(0i16, |acc, i| acc * 10 + i16::from(bytes[i] - b'0'))
    };
    let month = i8::try_from(number(5..7)).map_err(|_| invalid())?;
    let day = i8::try_from(number(8..10)).map_err(|_| invalid())?;
    let date = jiff::civil::Date::new(number(0..4), month, day).map_err(|_| invalid())?;
    let midnight = date
        .to_zoned(jiff::tz::TimeZone::UTC)
        .map_err(|_| invalid())?;
    Ok(midnight.timestamp().as_second().div_euclid(DAY / 1000))
}

fn check_name(field: &'static str, path: &str, name: &str) -> Result<(), DomainError> {
    let trimmed = name.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(
            field,
            format!("{path}.name: must not be empty"),
        ));
    }
    let count = trimmed.chars().count();
    if count > NAME_MAX_CHARS {
        return Err(DomainError::invalid(
            field,
            format!(
                "{path}.name: is {count} characters long; at most {NAME_MAX_CHARS} are allowed"
            ),
        ));
    }
    Ok(())
}

/// A 节假日 (`hours: None`) or a 调休 make-up working day, on a local day number.
#[derive(Debug, Clone)]
struct Special {
    day: i64,
    hours: Option<(i64, i64)>,
}

/// A validated, compiled 工作日历. Build it once per team with [`CalendarSpec::validate`]
/// and share it: every method is a pure function of the calendar and its arguments.
#[derive(Debug, Clone)]
pub struct Calendar {
    time_zone: String,
    /// 24×7 without holidays: working time is elapsed time.
    pure_elapsed: bool,
    /// Working intervals per weekday (Monday first), in milliseconds after local
    /// midnight, sorted, touching intervals merged.
    week: [Vec<(i64, i64)>; 7],
    /// Working milliseconds of a regular week, > 0 by validation.
    week_total: i64,
    /// Holidays and make-up days, sorted by day.
    specials: Vec<Special>,
    zone: Zone,
}

impl Default for Calendar {
    /// The 24×7 calendar in UTC.
    fn default() -> Self {
        let tz = jiff::tz::TimeZone::UTC;
        Calendar {
            time_zone: "UTC".to_string(),
            pure_elapsed: true,
            week: std::array::from_fn(|_| vec![(0, DAY)]),
            week_total: WEEK,
            specials: Vec::new(),
            zone: Zone::new(&tz),
        }
    }
}

/// Where a walk over working time stopped.
struct Walk {
    /// The instant at which the budget was used up, or `until`.
    end: i64,
    /// Working milliseconds counted from the start.
    consumed: i64,
}

impl Calendar {
    /// The IANA name of the calendar's time zone.
    pub fn time_zone(&self) -> &str {
        &self.time_zone
    }

    /// The instant at which `duration_ms` of working time has passed since `start_ms`:
    /// the due time of an SLA target. Outside working hours the clock waits for the next
    /// opening; a target that is used up exactly at closing time is due at closing time,
    /// not at the next opening. A duration of zero or less is due at `start_ms`.
    pub fn add_business_millis(&self, start_ms: i64, duration_ms: i64) -> i64 {
        if duration_ms <= 0 {
            return start_ms;
        }
        let start = start_ms.clamp(min_instant(), max_instant());
        if self.pure_elapsed {
            return start.saturating_add(duration_ms).min(max_instant());
        }
        self.walk(start, duration_ms, max_instant()).end
    }

    /// The working time between two instants: how much of an SLA target has been used.
    /// 0 if `to_ms` is not after `from_ms`.
    pub fn business_millis_between(&self, from_ms: i64, to_ms: i64) -> i64 {
        let from = from_ms.clamp(min_instant(), max_instant());
        let to = to_ms.clamp(min_instant(), max_instant());
        if to <= from {
            return 0;
        }
        if self.pure_elapsed {
            return to - from;
        }
        self.walk(from, i64::MAX, to).consumed
    }

    /// Whether `at_ms` is working time.
    pub fn is_open(&self, at_ms: i64) -> bool {
        self.next_opening(at_ms) == at_ms
    }

    /// The first instant of working time at or after `at_ms` (`at_ms` itself when open).
    pub fn next_opening(&self, at_ms: i64) -> i64 {
        let at = at_ms.clamp(min_instant(), max_instant());
        if self.pure_elapsed {
            return at;
        }
        // The first working millisecond ends one millisecond after the opening.
        let walk = self.walk(at, 1, max_instant());
        if walk.consumed == 1 {
            walk.end - 1
        } else {
            max_instant()
        }
    }

    /// The working intervals of a local date, in milliseconds after its midnight.
    fn plan(&self, day: i64) -> &[(i64, i64)] {
        match self
            .specials
            .binary_search_by_key(&day, |special| special.day)
        {
            Ok(found) => self.specials[found].hours.as_slice(),
            Err(_) => &self.week[weekday_index(day)],
        }
    }

    /// Counts working time from `from`, stopping when `budget` milliseconds have been
    /// counted or at `until`, whichever comes first.
    ///
    /// Dates inside a clean run (see [`Zone`]) are visited in order and mapped to instants
    /// by one subtraction; whole regular weeks among them are skipped arithmetically.
    /// Dates between clean runs are resolved one wall-clock time at a time, gathered and
    /// sorted, because there the spans of neighbouring dates may touch or overlap. Spans
    /// are visited in order of their start and each is counted only from where the walk
    /// has got to (`walk.end`), so the count is the measure of their union.
    fn walk(&self, from: i64, budget: i64, until: i64) -> Walk {
        let mut walk = Walk {
            end: from,
            consumed: 0,
        };
        let runs = &self.zone.clean;
        let first_day = self.zone.local_day(from);
        let mut run = runs.partition_point(|r| r.end_day <= first_day);
        let mut day = first_day;
        if runs[run].first_day > first_day {
            // `from` lies among unclean dates: resolve all of them, from the first. The
            // first run begins at FAR_PAST_DAY, so there is a run before them.
            let gap = (runs[run - 1].end_day, runs[run].first_day);
            if self.walk_unclean(&mut walk, gap, budget, until) {
                return walk;
            }
            day = runs[run].first_day;
        }
        let mut special = self.specials.partition_point(|s| s.day < day);
        loop {
            let clean = &runs[run];
            while day < clean.end_day {
                let base = day * DAY - clean.offset;
                if base >= until {
                    walk.end = until;
                    return walk;
                }
                while special < self.specials.len() && self.specials[special].day < day {
                    special += 1;
                }
                let next_special = self.specials.get(special).map_or(FAR_FUTURE_DAY, |s| s.day);
                if walk.end <= base && next_special > day {
                    // Whole regular weeks, leaving at least one millisecond of the budget
                    // for the day-by-day part that finds the exact instant.
                    let weeks = ((budget - walk.consumed - 1) / self.week_total)
                        .min((clean.end_day - day) / 7)
                        .min((next_special - day) / 7)
                        .min((until - base) / WEEK);
                    if weeks > 0 {
                        walk.consumed += weeks * self.week_total;
                        day += weeks * 7;
                        walk.end = base + weeks * WEEK;
                        continue;
                    }
                }
                let plan = if next_special == day {
                    self.specials[special].hours.as_slice()
                } else {
                    &self.week[weekday_index(day)]
                };
                for &(start, end) in plan {
                    if take(&mut walk, base + start, base + end, budget, until) {
                        return walk;
                    }
                }
                let day_end = base + DAY;
                if day_end >= until {
                    walk.end = until;
                    return walk;
                }
                walk.end = max(walk.end, day_end);
                day += 1;
            }
            // The last run reaches FAR_FUTURE_DAY, beyond `until`, so a next run exists.
            let gap = (clean.end_day, runs[run + 1].first_day);
            if self.walk_unclean(&mut walk, gap, budget, until) {
                return walk;
            }
            run += 1;
            day = runs[run].first_day;
        }
    }

    /// Counts the working time of the unclean dates `days.0..days.1`; true when the walk
    /// is over.
    fn walk_unclean(&self, walk: &mut Walk, days: (i64, i64), budget: i64, until: i64) -> bool {
        let mut spans = Vec::new();
        for day in days.0..days.1 {
            for &(start, end) in self.plan(day) {
                let from = self.zone.compatible(day * DAY + start);
                let to = self.zone.compatible(day * DAY + end);
                // Compatible resolution can turn an interval that starts in a skipped hour
                // inside out; it then holds no working time.
                if to > from {
                    spans.push((from, to));
                }
            }
        }
        spans.sort_unstable();
        for (start, end) in spans {
            if start >= until {
                walk.end = until;
                return true;
            }
            if take(walk, start, end, budget, until) {
                return true;
            }
        }
        false
    }
}

/// Counts the span `start..end` (clipped to after `walk.end` and before `until`); true
/// when the budget is used up, with `walk.end` the instant it ran out.
#[inline]
fn take(walk: &mut Walk, start: i64, end: i64, budget: i64, until: i64) -> bool {
    let from = max(start, walk.end);
    let to = min(end, until);
    if to <= from {
        return false;
    }
    let need = budget - walk.consumed;
    if to - from >= need {
        walk.end = from + need;
        walk.consumed = budget;
        return true;
    }
    walk.consumed += to - from;
    walk.end = to;
    false
}

/// 0 for Monday … 6 for Sunday; day 0 (1970-01-01) was a Thursday.
fn weekday_index(day: i64) -> usize {
    (day + 3).rem_euclid(7) as usize
}

/// The UTC offsets of a time zone as a table, and the runs of local dates far enough from
/// any change of offset to be mapped to instants by one subtraction ("clean" dates).
#[derive(Debug, Clone)]
struct Zone {
    /// The instant each offset takes effect; `starts[0]` is `i64::MIN`.
    starts: Vec<i64>,
    /// Offsets in milliseconds, east of UTC positive.
    offsets: Vec<i64>,
    /// The wall-clock time at which each offset takes effect, `starts[i] + offsets[i]`.
    local_starts: Vec<i64>,
    /// Sorted, disjoint; the first begins at `FAR_PAST_DAY`, the last ends at
    /// `FAR_FUTURE_DAY`.
    clean: Vec<CleanRun>,
}

/// Local dates `first_day..end_day`, all of whose wall-clock times are `offset` ahead of
/// the instant they denote, and unambiguously so.
#[derive(Debug, Clone, Copy)]
struct CleanRun {
    first_day: i64,
    end_day: i64,
    offset: i64,
}

impl Zone {
    fn new(tz: &jiff::tz::TimeZone) -> Zone {
        let offset_ms = |offset: jiff::tz::Offset| i64::from(offset.seconds()) * 1000;
        let table_start =
            jiff::Timestamp::from_second(TABLE_START_SECOND).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
        let mut starts = vec![i64::MIN];
        let mut offsets = vec![offset_ms(tz.to_offset(table_start))];
        for transition in tz.following(table_start) {
            let at = transition.timestamp();
            if at.as_second() >= TABLE_END_SECOND {
                break;
            }
            let offset = offset_ms(transition.offset());
            // Transitions that change only the abbreviation or the DST flag do not matter.
            if offsets.last() != Some(&offset) {
                starts.push(at.as_millisecond());
                offsets.push(offset);
            }
        }
        let local_starts = starts
            .iter()
            .zip(&offsets)
            .map(|(&start, &offset)| {
                if start == i64::MIN {
                    start
                } else {
                    start + offset
                }
            })
            .collect();
        // A date whose wall-clock times all lie further than `margin` from a change of
        // offset maps to instants by subtracting one offset: none of its times is skipped
        // or repeated, whatever the other offsets, because no two offsets of the zone
        // differ by `margin` or more.
        let spread = offsets.iter().max().unwrap_or(&0) - offsets.iter().min().unwrap_or(&0);
        let margin = spread + 60 * MINUTE;
        let last = starts.len() - 1;
        let mut clean = Vec::new();
        for i in 0..=last {
            let first_day = if i == 0 {
                FAR_PAST_DAY
            } else {
                (starts[i] + offsets[i] + margin + DAY - 1).div_euclid(DAY)
            };
            let end_day = if i == last {
                FAR_FUTURE_DAY
            } else {
                (starts[i + 1] + offsets[i] - margin).div_euclid(DAY)
            };
            if first_day < end_day {
                clean.push(CleanRun {
                    first_day,
                    end_day,
                    offset: offsets[i],
                });
            }
        }
        Zone {
            starts,
            offsets,
            local_starts,
            clean,
        }
    }

    /// The local date (days since 1970-01-01) of an instant.
    fn local_day(&self, instant: i64) -> i64 {
        let segment = self.starts.partition_point(|&start| start <= instant) - 1;
        (instant + self.offsets[segment]).div_euclid(DAY)
    }

    /// The instant a wall-clock time (milliseconds since 1970-01-01T00:00 local) denotes,
    /// with jiff's compatible disambiguation: the earlier instant of a repeated time, and
    /// for a skipped time the instant it would be under the offset before the skip.
    fn compatible(&self, wall: i64) -> i64 {
        // The last offset to take effect at or before this wall time; `local_starts[0]` is
        // i64::MIN, so there is one.
        let segment = self.local_starts.partition_point(|&local| local <= wall) - 1;
        let mut best = wall - self.offsets[segment];
        // When clocks went back, the same wall time also occurred under the previous
        // offset, at an earlier instant, if that instant precedes the change. (No zone
        // changes its offset twice within hours, so no older offset needs a look.)
        if segment > 0 {
            let earlier = wall - self.offsets[segment - 1];
            if earlier < self.starts[segment] {
                best = min(best, earlier);
            }
        }
        best
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HOUR: i64 = 60 * MINUTE;

    fn calendar(spec: serde_json::Value) -> Calendar {
        let spec: CalendarSpec = serde_json::from_value(spec).expect("spec parses");
        spec.validate().expect("spec is valid")
    }

    fn weekdays(days: &[&str], intervals: &[(&str, &str)]) -> serde_json::Value {
        let hours: Vec<_> = days
            .iter()
            .flat_map(|day| {
                intervals
                    .iter()
                    .map(move |(start, end)| json!({"weekday": day, "start": start, "end": end}))
            })
            .collect();
        json!(hours)
    }

    const MON_FRI: &[&str] = &["monday", "tuesday", "wednesday", "thursday", "friday"];
    const EVERY_DAY: &[&str] = &[
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ];

    /// Shanghai office hours with a lunch break: 09:00–12:00 and 13:00–18:00.
    fn shanghai_office(extra: serde_json::Value) -> Calendar {
        let mut spec = json!({
            "time_zone": "Asia/Shanghai",
            "hours": weekdays(MON_FRI, &[("09:00", "12:00"), ("13:00", "18:00")]),
        });
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        calendar(spec)
    }

    /// Wall-clock text (`2026-01-09 17:30`) in `zone` → epoch ms, compatible resolution.
    fn at(zone: &str, text: &str) -> i64 {
        let tz = jiff::tz::TimeZone::get(zone).expect("zone");
        let datetime: jiff::civil::DateTime = text.parse().expect("datetime text");
        datetime
            .to_zoned(tz)
            .expect("in range")
            .timestamp()
            .as_millisecond()
    }

    /// Epoch ms → wall-clock text in `zone`, with its offset.
    fn show(zone: &str, millis: i64) -> String {
        let tz = jiff::tz::TimeZone::get(zone).expect("zone");
        let zoned = jiff::Timestamp::from_millisecond(millis)
            .expect("in range")
            .to_zoned(tz);
        zoned.strftime("%Y-%m-%d %H:%M %:z").to_string()
    }

    fn due(calendar: &Calendar, arrived: &str, target: i64) -> String {
        let zone = calendar.time_zone().to_string();
        show(
            &zone,
            calendar.add_business_millis(at(&zone, arrived), target),
        )
    }

    #[test]
    fn friday_evening_case_is_due_monday_after_lunch() {
        let office = shanghai_office(json!({}));
        // 30 minutes on Friday, 3 hours on Monday morning, 30 minutes after lunch.
        assert_eq!(
            due(&office, "2026-01-09 17:30", 4 * HOUR),
            "2026-01-12 13:30 +08:00"
        );
        assert_eq!(
            office.business_millis_between(
                at("Asia/Shanghai", "2026-01-09 17:30"),
                at("Asia/Shanghai", "2026-01-12 13:30")
            ),
            4 * HOUR
        );
        // Arriving at night or at lunch, the clock starts at the next opening.
        assert_eq!(
            due(&office, "2026-01-12 02:00", HOUR),
            "2026-01-12 10:00 +08:00"
        );
        assert_eq!(
            due(&office, "2026-01-12 12:20", HOUR),
            "2026-01-12 14:00 +08:00"
        );
        // A target used up exactly at closing time is due at closing time.
        assert_eq!(
            due(&office, "2026-01-09 17:00", HOUR),
            "2026-01-09 18:00 +08:00"
        );
        assert_eq!(
            due(&office, "2026-01-09 17:00", 0),
            "2026-01-09 17:00 +08:00"
        );
        // A week of working time is 40 hours: from Monday 09:00 to the next Monday 09:00
        // would be one week, but due means the end of the 40th hour, Friday 18:00.
        assert_eq!(
            due(&office, "2026-01-12 09:00", 40 * HOUR),
            "2026-01-16 18:00 +08:00"
        );
        assert_eq!(
            due(&office, "2026-01-12 09:00", 41 * HOUR),
            "2026-01-19 10:00 +08:00"
        );
    }

    #[test]
    fn holiday_on_monday_moves_the_due_time_to_tuesday() {
        let office = shanghai_office(json!({
            "holidays": [{"date": "2026-01-12", "name": "团建日"}],
        }));
        assert_eq!(
            due(&office, "2026-01-09 17:30", 4 * HOUR),
            "2026-01-13 13:30 +08:00"
        );
        assert!(!office.is_open(at("Asia/Shanghai", "2026-01-12 10:00")));
        assert_eq!(
            show(
                "Asia/Shanghai",
                office.next_opening(at("Asia/Shanghai", "2026-01-12 10:00"))
            ),
            "2026-01-13 09:00 +08:00"
        );
    }

    /// 2026 春节: 15–23 February off, Saturdays 14 and 28 February worked (调休).
    fn spring_festival_2026() -> Calendar {
        let holidays: Vec<_> = (15..=23)
            .map(|day| json!({"date": format!("2026-02-{day:02}"), "name": "春节"}))
            .collect();
        shanghai_office(json!({
            "holidays": holidays,
            "extra_working_days": [
                {"date": "2026-02-14", "start": "09:00", "end": "18:00", "name": "春节调休"},
                {"date": "2026-02-28", "start": "09:00", "end": "18:00", "name": "春节调休"},
            ],
        }))
    }

    #[test]
    fn make_up_saturday_counts_and_spring_festival_does_not() {
        let calendar = spring_festival_2026();
        // One hour on Friday, then seven on the 调休 Saturday (a single interval, no lunch).
        assert_eq!(
            due(&calendar, "2026-02-13 17:00", 8 * HOUR),
            "2026-02-14 16:00 +08:00"
        );
        // One hour on that Saturday, nine days of 春节, three hours on Tuesday morning.
        assert_eq!(
            due(&calendar, "2026-02-14 17:00", 4 * HOUR),
            "2026-02-24 12:00 +08:00"
        );
        // The Saturday after a normal week is not worked; the 调休 one is.
        assert!(!calendar.is_open(at("Asia/Shanghai", "2026-02-07 10:00")));
        assert!(calendar.is_open(at("Asia/Shanghai", "2026-02-28 10:00")));
        assert_eq!(
            calendar.business_millis_between(
                at("Asia/Shanghai", "2026-02-09 00:00"),
                at("Asia/Shanghai", "2026-03-02 00:00")
            ),
            // 9–13 February 5 × 8 h, Saturday 14th 9 h, 15–23 February 春节,
            // 24–27 February 4 × 8 h, Saturday 28th 9 h.
            (40 + 9 + 32 + 9) * HOUR
        );
    }

    #[test]
    fn berlin_always_open_counts_real_hours_across_daylight_saving() {
        let always = calendar(json!({"time_zone": "Europe/Berlin", "always_open": true}));
        // Built from hours instead of the flag: must agree.
        let all_day = calendar(json!({
            "time_zone": "Europe/Berlin",
            "hours": weekdays(EVERY_DAY, &[("00:00", "24:00")]),
        }));
        for calendar in [&always, &all_day] {
            // 29 March 2026: 02:00 → 03:00, a day of 23 hours.
            assert_eq!(
                due(calendar, "2026-03-28 12:00", 24 * HOUR),
                "2026-03-29 13:00 +02:00"
            );
            let spring = calendar.business_millis_between(
                at("Europe/Berlin", "2026-03-29 00:00"),
                at("Europe/Berlin", "2026-03-30 00:00"),
            );
            assert_eq!(spring, 23 * HOUR);
            // 25 October 2026: 03:00 → 02:00, a day of 25 hours.
            assert_eq!(
                due(calendar, "2026-10-24 12:00", 24 * HOUR),
                "2026-10-25 11:00 +01:00"
            );
            let autumn = calendar.business_millis_between(
                at("Europe/Berlin", "2026-10-25 00:00"),
                at("Europe/Berlin", "2026-10-26 00:00"),
            );
            assert_eq!(autumn, 25 * HOUR);
            assert!(calendar.is_open(at("Europe/Berlin", "2026-03-29 02:30")));
        }
    }

    #[test]
    fn berlin_office_hours_keep_their_wall_clock_across_daylight_saving() {
        let office = calendar(json!({
            "time_zone": "Europe/Berlin",
            "hours": weekdays(MON_FRI, &[("09:00", "17:00")]),
        }));
        let arrived = at("Europe/Berlin", "2026-03-27 16:00");
        let due_at = office.add_business_millis(arrived, 2 * HOUR);
        assert_eq!(show("Europe/Berlin", due_at), "2026-03-30 10:00 +02:00");
        // 66 hours of wall clock, one of which was skipped.
        assert_eq!(due_at - arrived, 65 * HOUR);

        let arrived = at("Europe/Berlin", "2026-10-23 16:00");
        let due_at = office.add_business_millis(arrived, 2 * HOUR);
        assert_eq!(show("Europe/Berlin", due_at), "2026-10-26 10:00 +01:00");
        assert_eq!(due_at - arrived, 67 * HOUR);
    }

    #[test]
    fn hours_in_skipped_or_repeated_times_resolve_compatibly() {
        let sunday_hours = |start: &str, end: &str| {
            calendar(json!({
                "time_zone": "Europe/Berlin",
                "hours": [{"weekday": "sunday", "start": start, "end": end}],
            }))
        };
        let worked = |calendar: &Calendar, date: &str| {
            calendar.business_millis_between(
                at("Europe/Berlin", &format!("{date} 00:00")),
                at("Europe/Berlin", &format!("{date} 12:00")),
            )
        };
        // A normal Sunday, the Sunday that skips 02:00–03:00, the one that repeats it.
        let (normal, spring, autumn) = ("2026-03-22", "2026-03-29", "2026-10-25");

        let night = sunday_hours("01:00", "04:00");
        assert_eq!(worked(&night, normal), 3 * HOUR);
        assert_eq!(worked(&night, spring), 2 * HOUR);
        assert_eq!(worked(&night, autumn), 4 * HOUR);

        // Opening at 02:30: on the spring Sunday that time is moved forward by the skipped
        // hour, to 03:30; on the autumn Sunday it is the first 02:30, before clocks go back.
        let late = sunday_hours("02:30", "05:00");
        assert_eq!(worked(&late, normal), 150 * MINUTE);
        assert_eq!(worked(&late, spring), 90 * MINUTE);
        assert_eq!(worked(&late, autumn), 210 * MINUTE);
        let opening = late.next_opening(at("Europe/Berlin", "2026-03-29 00:00"));
        assert_eq!(show("Europe/Berlin", opening), "2026-03-29 03:30 +02:00");
        let opening = late.next_opening(at("Europe/Berlin", "2026-10-25 00:00"));
        assert_eq!(show("Europe/Berlin", opening), "2026-10-25 02:30 +02:00");

        // 02:30–03:15 resolves to 03:30–03:15 on the spring Sunday: no working time.
        let inside_out = sunday_hours("02:30", "03:15");
        assert_eq!(worked(&inside_out, normal), 45 * MINUTE);
        assert_eq!(worked(&inside_out, spring), 0);

        // America/Sao_Paulo skipped midnight: 2018-11-04 went from 00:00 -03:00 to
        // 01:00 -02:00. Saturday 00:00–24:00 ends at that change and still holds 24
        // hours; Sunday 00:30–02:00 opens at 01:30.
        let sao_paulo = calendar(json!({
            "time_zone": "America/Sao_Paulo",
            "hours": [
                {"weekday": "saturday", "start": "00:00", "end": "24:00"},
                {"weekday": "sunday", "start": "00:30", "end": "02:00"},
            ],
        }));
        let saturday_end = at("America/Sao_Paulo", "2018-11-03 23:59") + MINUTE;
        assert!(!sao_paulo.is_open(saturday_end));
        assert_eq!(
            show("America/Sao_Paulo", sao_paulo.next_opening(saturday_end)),
            "2018-11-04 01:30 -02:00"
        );
        assert_eq!(
            sao_paulo.business_millis_between(
                at("America/Sao_Paulo", "2018-11-03 00:00"),
                at("America/Sao_Paulo", "2018-11-04 12:00")
            ),
            24 * HOUR + 30 * MINUTE
        );
    }

    #[test]
    fn table_resolution_agrees_with_jiff() {
        for zone in [
            "Europe/Berlin",
            "America/Sao_Paulo",
            "Pacific/Apia",
            "Asia/Shanghai",
            "Australia/Lord_Howe",
        ] {
            let tz = jiff::tz::TimeZone::get(zone).expect("zone");
            let table = Zone::new(&tz);
            let mut seed = 7;
            for _ in 0..20_000 {
                // Any minute between 1971 and 2150.
                let wall = (365 + lcg(&mut seed) % (180 * 365)) as i64 * DAY
                    + (lcg(&mut seed) % (24 * 60)) as i64 * MINUTE;
                let datetime = jiff::Timestamp::from_millisecond(wall)
                    .expect("in range")
                    .to_zoned(jiff::tz::TimeZone::UTC)
                    .datetime();
                let expected = datetime.to_zoned(tz.clone()).expect("in range").timestamp();
                assert_eq!(
                    table.compatible(wall),
                    expected.as_millisecond(),
                    "{zone} {datetime}"
                );
            }
            // And at every quarter hour of the days around each change of offset.
            for &start in table.starts.iter().skip(1).take(100) {
                for quarter in -200..200 {
                    let wall = start + quarter * 15 * MINUTE;
                    let datetime = jiff::Timestamp::from_millisecond(wall)
                        .expect("in range")
                        .to_zoned(jiff::tz::TimeZone::UTC)
                        .datetime();
                    let expected = datetime.to_zoned(tz.clone()).expect("in range").timestamp();
                    assert_eq!(
                        table.compatible(wall),
                        expected.as_millisecond(),
                        "{zone} {datetime}"
                    );
                }
            }
        }
    }

    /// Minimal deterministic generator (Knuth's MMIX constants), high bits only.
    fn lcg(state: &mut u64) -> u64 {
        *state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        *state >> 33
    }

    /// An obviously-correct model of a calendar: for each local date, ask jiff for the
    /// instants of its intervals, and walk the dates one by one.
    struct Reference {
        tz: jiff::tz::TimeZone,
        spec: CalendarSpec,
    }

    impl Reference {
        fn new(spec: &CalendarSpec) -> Reference {
            Reference {
                tz: jiff::tz::TimeZone::get(&spec.time_zone).expect("zone"),
                spec: spec.clone(),
            }
        }

        /// The working spans of one date, as instants, in order.
        fn spans(&self, date: jiff::civil::Date) -> Vec<(i64, i64)> {
            let text = date.to_string();
            let mut intervals: Vec<(String, String)> = Vec::new();
            if self.spec.holidays.iter().any(|h| h.date == text) {
                // closed
            } else if let Some(extra) = self.spec.extra_working_days.iter().find(|e| e.date == text)
            {
                intervals.push((extra.start.clone(), extra.end.clone()));
            } else if self.spec.always_open {
                intervals.push(("00:00".into(), "24:00".into()));
            } else {
                let weekday = date.weekday().to_monday_zero_offset() as usize;
                for hours in &self.spec.hours {
                    if hours.weekday.index() == weekday {
                        intervals.push((hours.start.clone(), hours.end.clone()));
                    }
                }
            }
            let instant = |clock: &str| {
                let (dt, text) = if clock == "24:00" {
                    (date.tomorrow().expect("date"), "00:00")
                } else {
                    (date, clock)
                };
                let time: jiff::civil::Time = text.parse().expect("time");
                dt.to_datetime(time)
                    .to_zoned(self.tz.clone())
                    .expect("in range")
                    .timestamp()
                    .as_millisecond()
            };
            let mut spans: Vec<_> = intervals
                .iter()
                .map(|(start, end)| (instant(start), instant(end)))
                .filter(|(start, end)| end > start)
                .collect();
            spans.sort_unstable();
            spans
        }

        fn date_of(&self, millis: i64) -> jiff::civil::Date {
            jiff::Timestamp::from_millisecond(millis)
                .expect("in range")
                .to_zoned(self.tz.clone())
                .date()
        }

        /// The due time, walking date by date from the day before `start`.
        fn add(&self, start: i64, duration: i64) -> i64 {
            let mut date = self.date_of(start).yesterday().expect("date");
            let (mut pos, mut left) = (start, duration);
            loop {
                for (from, to) in self.spans(date) {
                    let from = from.max(pos);
                    if to > from {
                        if to - from >= left {
                            return from + left;
                        }
                        left -= to - from;
                        pos = to;
                    }
                }
                date = date.tomorrow().expect("date");
            }
        }

        fn between(&self, from: i64, to: i64) -> i64 {
            let mut date = self.date_of(from).yesterday().expect("date");
            let (mut pos, mut total) = (from, 0);
            let last = self.date_of(to).tomorrow().expect("date");
            while date <= last {
                for (start, end) in self.spans(date) {
                    let (start, end) = (start.max(pos), end.min(to));
                    if end > start {
                        total += end - start;
                        pos = end;
                    }
                }
                date = date.tomorrow().expect("date");
            }
            total
        }

        fn is_open(&self, at: i64) -> bool {
            let date = self.date_of(at);
            [date.yesterday(), Ok(date), date.tomorrow()]
                .into_iter()
                .flat_map(|date| self.spans(date.expect("date")))
                .any(|(start, end)| start <= at && at < end)
        }
    }

    fn specs_for_comparison() -> Vec<CalendarSpec> {
        let mut holidays = Vec::new();
        let mut extra = Vec::new();
        let mut seed = 42;
        for _ in 0..40 {
            let day = 20_000 + (lcg(&mut seed) % 2_000) as i64; // 2024 … 2030
            let date = jiff::Timestamp::from_second(day * 86_400)
                .expect("in range")
                .to_zoned(jiff::tz::TimeZone::UTC)
                .date()
                .to_string();
            if holidays
                .iter()
                .chain(&extra)
                .any(|(d, _): &(String, bool)| *d == date)
            {
                continue;
            }
            if lcg(&mut seed).is_multiple_of(3) {
                extra.push((date, true));
            } else {
                holidays.push((date, false));
            }
        }
        let holidays = json!(
            holidays
                .iter()
                .map(|(d, _)| json!({"date": d, "name": "节日"}))
                .collect::<Vec<_>>()
        );
        let extra = json!(
            extra
                .iter()
                .map(|(d, _)| json!({"date": d, "start": "10:00", "end": "15:30", "name": "调休"}))
                .collect::<Vec<_>>()
        );
        let specs = [
            json!({
                "time_zone": "Asia/Shanghai",
                "hours": weekdays(MON_FRI, &[("09:00", "12:00"), ("13:00", "18:00")]),
                "holidays": holidays, "extra_working_days": extra,
            }),
            json!({
                "time_zone": "Europe/Berlin",
                "hours": weekdays(MON_FRI, &[("09:00", "17:00")]),
                "holidays": holidays, "extra_working_days": extra,
            }),
            json!({
                "time_zone": "Europe/Berlin",
                "hours": [
                    {"weekday": "sunday", "start": "01:30", "end": "02:45"},
                    {"weekday": "sunday", "start": "03:00", "end": "04:00"},
                    {"weekday": "saturday", "start": "22:00", "end": "24:00"},
                    {"weekday": "wednesday", "start": "00:00", "end": "24:00"},
                ],
            }),
            json!({"time_zone": "Europe/Berlin", "always_open": true, "holidays": holidays}),
            json!({
                "time_zone": "America/Sao_Paulo",
                "hours": weekdays(EVERY_DAY, &[("00:00", "01:00"), ("08:00", "20:00"), ("23:30", "24:00")]),
            }),
            json!({
                "time_zone": "Pacific/Apia",
                "hours": weekdays(&["thursday", "friday", "saturday"], &[("08:00", "17:00")]),
            }),
        ];
        specs
            .into_iter()
            .map(|spec| serde_json::from_value(spec).expect("spec parses"))
            .collect()
    }

    #[test]
    fn fast_path_matches_the_date_by_date_reference() {
        let mut seed = 2026;
        for spec in specs_for_comparison() {
            let calendar = spec.validate().expect("valid");
            let reference = Reference::new(&spec);
            // Starts from 2010 (Apia's day-long skip is at the end of 2011) to 2030.
            let base = at("UTC", "2010-01-01 00:00");
            for case in 0..300 {
                let start = base
                    + (lcg(&mut seed) % (20 * 365 * 24 * 60)) as i64 * MINUTE
                    + (lcg(&mut seed) % 60_000) as i64;
                let duration = match case % 4 {
                    0 => (lcg(&mut seed) % (8 * 60)) as i64 * MINUTE + 1,
                    1 => (lcg(&mut seed) % (5 * 24 * 60)) as i64 * MINUTE,
                    2 => (lcg(&mut seed) % (60 * 24 * 60)) as i64 * MINUTE + 7,
                    _ => (lcg(&mut seed) % (200 * 24 * 60)) as i64 * MINUTE,
                };
                let expected = reference.add(start, duration);
                let got = calendar.add_business_millis(start, duration);
                assert_eq!(
                    got,
                    expected,
                    "{} start {} + {duration} ms: {} instead of {}",
                    spec.time_zone,
                    show(&spec.time_zone, start),
                    show(&spec.time_zone, got),
                    show(&spec.time_zone, expected)
                );
                if case % 8 == 0 {
                    let to = start + (lcg(&mut seed) % (90 * 24 * 60)) as i64 * MINUTE;
                    assert_eq!(
                        calendar.business_millis_between(start, to),
                        reference.between(start, to)
                    );
                }
            }
        }
    }

    #[test]
    fn is_open_matches_the_reference_around_changes_of_offset() {
        for spec in specs_for_comparison() {
            let calendar = spec.validate().expect("valid");
            let reference = Reference::new(&spec);
            for &change in calendar.zone.starts.iter().skip(1).filter(|&&s| {
                (at("UTC", "2011-01-01 00:00")..at("UTC", "2013-01-01 00:00")).contains(&s)
            }) {
                // Every five minutes (hours and changes fall on multiples of 15), and the
                // millisecond before each.
                for step in (-3 * 24 * 12)..(3 * 24 * 12) {
                    for instant in [change + step * 5 * MINUTE, change + step * 5 * MINUTE - 1] {
                        assert_eq!(
                            calendar.is_open(instant),
                            reference.is_open(instant),
                            "{} {}",
                            spec.time_zone,
                            show(&spec.time_zone, instant)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn between_is_the_inverse_of_add() {
        let mut seed = 99;
        for spec in specs_for_comparison() {
            let calendar = spec.validate().expect("valid");
            let base = at("UTC", "2024-01-01 00:00");
            for _ in 0..2_000 {
                let start = base + (lcg(&mut seed) % (6 * 365 * 24 * 60)) as i64 * MINUTE;
                let duration = (lcg(&mut seed) % (30 * 24 * 60)) as i64 * MINUTE
                    + (lcg(&mut seed) % 1000) as i64
                    + 1;
                let due = calendar.add_business_millis(start, duration);
                assert_eq!(calendar.business_millis_between(start, due), duration);
                // Nothing less than `due` suffices.
                assert!(calendar.business_millis_between(start, due - 1) < duration);
                if calendar.is_open(start) {
                    assert_eq!(calendar.next_opening(start), start);
                }
            }
        }
    }

    #[test]
    fn five_and_ten_year_targets_terminate_and_match_the_reference() {
        for spec in specs_for_comparison().into_iter().take(2) {
            let calendar = spec.validate().expect("valid");
            let reference = Reference::new(&spec);
            let start = at(&spec.time_zone, "2025-06-13 10:15");
            for years in [5, 10] {
                let duration = years * 365 * 24 * HOUR;
                let due = calendar.add_business_millis(start, duration);
                assert_eq!(
                    due,
                    reference.add(start, duration),
                    "{} {years} years",
                    spec.time_zone
                );
                assert_eq!(calendar.business_millis_between(start, due), duration);
            }
        }
    }

    #[test]
    fn extreme_inputs_terminate() {
        let office = shanghai_office(json!({"holidays": [{"date": "2026-01-01", "name": "元旦"}]}));
        let (min, max) = (min_instant(), max_instant());
        assert_eq!(office.add_business_millis(0, i64::MAX), max);
        assert_eq!(office.add_business_millis(i64::MIN, i64::MAX), max);
        assert_eq!(office.add_business_millis(i64::MAX, 1), max);
        let first = office.add_business_millis(i64::MIN, 1);
        assert!(first > min && office.is_open(first - 1));
        assert_eq!(office.add_business_millis(5, -3), 5);
        assert_eq!(office.business_millis_between(10, 5), 0);
        let everything = office.business_millis_between(i64::MIN, i64::MAX);
        assert!(everything > 0);
        assert_eq!(office.business_millis_between(min, max), everything);
        assert_eq!(office.next_opening(i64::MAX), max);
        let always = Calendar::default();
        assert_eq!(always.add_business_millis(7, i64::MAX), max);
        assert_eq!(always.business_millis_between(3, 10), 7);
        assert!(always.is_open(123));
    }

    #[test]
    fn spec_round_trips_through_json() {
        let text = r#"{"time_zone":"Asia/Shanghai","always_open":false,"hours":[{"weekday":"monday","start":"09:00","end":"18:00"}],"holidays":[{"date":"2026-10-01","name":"国庆节"}],"extra_working_days":[{"date":"2026-10-10","start":"09:00","end":"18:00","name":"国庆调休"}]}"#;
        let spec: CalendarSpec = serde_json::from_str(text).expect("parses");
        assert_eq!(serde_json::to_string(&spec).expect("json"), text);
        assert!(spec.validate().is_ok());
        // The minimal 24×7 calendar needs only its zone and the flag.
        let minimal: CalendarSpec =
            serde_json::from_str(r#"{"time_zone":"UTC","always_open":true}"#).expect("parses");
        assert_eq!(minimal, CalendarSpec::default());
        assert!(
            serde_json::from_str::<CalendarSpec>(
                r#"{"time_zone":"UTC","hours":[{"weekday":"mon","start":"09:00","end":"18:00"}]}"#
            )
            .is_err()
        );
        assert!(
            serde_json::from_str::<CalendarSpec>(
                r#"{"time_zone":"UTC","always_open":true,"holiday":[]}"#
            )
            .is_err()
        );
    }

    /// Validates `changes` applied to a valid Shanghai office calendar and returns the
    /// error as `field: message`.
    fn invalid(changes: serde_json::Value) -> String {
        let mut spec = json!({
            "time_zone": "Asia/Shanghai",
            "hours": weekdays(&["monday"], &[("09:00", "12:00"), ("13:00", "18:00")]),
        });
        if let (Some(spec), Some(changes)) = (spec.as_object_mut(), changes.as_object()) {
            spec.extend(changes.clone());
        }
        let spec: CalendarSpec = serde_json::from_value(spec).expect("spec parses");
        match spec.validate() {
            Ok(_) => panic!("{spec:?} should be invalid"),
            Err(error) => error.to_string(),
        }
    }

    fn hours(list: &[(&str, &str, &str)]) -> serde_json::Value {
        json!(
            list.iter()
                .map(
                    |(weekday, start, end)| json!({"weekday": weekday, "start": start, "end": end})
                )
                .collect::<Vec<_>>()
        )
    }

    #[test]
    fn invalid_calendars_are_refused_with_the_field_at_fault() {
        let cases = [
            (
                json!({"time_zone": "Mars/Olympus"}),
                "time_zone: `Mars/Olympus` is not a time zone of the IANA database, such as Asia/Shanghai or UTC",
            ),
            (json!({"time_zone": ""}), "time_zone: `` is not a time zone"),
            (
                json!({"hours": hours(&[("monday", "9:00", "12:00")])}),
                "hours: hours[0].start: `9:00` is not a time HH:MM such as 09:00",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "12:60")])}),
                "hours: hours[0].end: `12:60` is not a time HH:MM",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "25:00")])}),
                "hours: hours[0].end: `25:00` is not a time HH:MM",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "24:01")])}),
                "hours: hours[0].end: `24:01` is not a time HH:MM",
            ),
            (
                json!({"hours": hours(&[("monday", "ab:cd", "12:00")])}),
                "hours: hours[0].start: `ab:cd` is not a time HH:MM",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "12:00"), ("monday", "24:00", "24:00")])}),
                "hours: hours[1].start: 24:00 is allowed only as an end",
            ),
            (
                json!({"hours": hours(&[("monday", "18:00", "09:00")])}),
                "hours: hours[0]: starts at 18:00, not before its end 09:00",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "09:00")])}),
                "hours: hours[0]: starts at 09:00, not before its end 09:00",
            ),
            (
                json!({"hours": hours(&[("monday", "09:00", "12:00"), ("tuesday", "09:00", "18:00"), ("friday", "09:00", "12:00"), ("monday", "11:00", "13:00")])}),
                "hours: hours[3] (monday 11:00–13:00) overlaps hours[0] (monday 09:00–12:00)",
            ),
            (
                json!({"hours": hours(&[("monday", "08:00", "20:00"), ("monday", "09:00", "10:00")])}),
                "hours: hours[1] (monday 09:00–10:00) overlaps hours[0] (monday 08:00–20:00)",
            ),
            (
                json!({"hours": []}),
                "hours: the calendar has no working time",
            ),
            (
                json!({"always_open": true}),
                "always_open: an always-open (24×7) calendar takes no hours",
            ),
            (
                json!({"holidays": [{"date": "2026-10-01", "name": "国庆节"}, {"date": "2026-10-02", "name": "国庆节"}, {"date": "2026-10-01", "name": "国庆"}]}),
                "holidays: holidays[2]: 2026-10-01 is already holidays[0]",
            ),
            (
                json!({"holidays": [{"date": "2026-02-30", "name": "x"}]}),
                "holidays: holidays[0].date: `2026-02-30` is not a date YYYY-MM-DD",
            ),
            (
                json!({"holidays": [{"date": "2026-2-3", "name": "x"}]}),
                "holidays: holidays[0].date: `2026-2-3` is not a date",
            ),
            (
                json!({"holidays": [{"date": "2026-13-01", "name": "x"}]}),
                "holidays: holidays[0].date: `2026-13-01` is not a date",
            ),
            (
                json!({"holidays": [{"date": "2026-10-01T00:00", "name": "x"}]}),
                "holidays: holidays[0].date: `2026-10-01T00:00` is not a date",
            ),
            (
                json!({"holidays": [{"date": "2026-10-01", "name": "  "}]}),
                "holidays: holidays[0].name: must not be empty",
            ),
            (
                json!({"holidays": [{"date": "2026-10-01", "name": "国庆节"}], "extra_working_days": [{"date": "2026-10-01", "start": "09:00", "end": "18:00", "name": "调休"}]}),
                "extra_working_days: extra_working_days[0]: 2026-10-01 is also a holiday, holidays[0]",
            ),
            (
                json!({"extra_working_days": [{"date": "2026-10-10", "start": "09:00", "end": "18:00", "name": "调休"}, {"date": "2026-10-10", "start": "10:00", "end": "12:00", "name": "调休"}]}),
                "extra_working_days: extra_working_days[1]: 2026-10-10 is already extra_working_days[0]",
            ),
            (
                json!({"extra_working_days": [{"date": "2026-10-10", "start": "18:00", "end": "09:00", "name": "调休"}]}),
                "extra_working_days: extra_working_days[0]: starts at 18:00, not before its end 09:00",
            ),
            (
                json!({"hours": [], "always_open": true, "extra_working_days": [{"date": "2026-10-10", "start": "09:00", "end": "18:00", "name": "调休"}]}),
                "extra_working_days: an always-open (24×7) calendar has no make-up working days",
            ),
        ];
        for (changes, expected) in cases {
            let got = invalid(changes.clone());
            assert!(
                got.starts_with(expected),
                "{changes}\n got: {got}\nwant: {expected}"
            );
        }
    }

    #[test]
    fn touching_intervals_are_allowed_and_zone_names_are_canonical() {
        let calendar = calendar(json!({
            "time_zone": "asia/shanghai",
            "hours": hours(&[("monday", "09:00", "12:00"), ("monday", "12:00", "13:00")]),
        }));
        assert_eq!(calendar.time_zone(), "Asia/Shanghai");
        assert_eq!(calendar.week[0], vec![(9 * HOUR, 13 * HOUR)]);
        assert_eq!(calendar.week_total, 4 * HOUR);
    }

    #[test]
    fn weekday_numbering_starts_on_monday() {
        assert_eq!(weekday_index(0), Weekday::Thursday.index()); // 1970-01-01
        let day = at("UTC", "2026-01-12 00:00") / DAY;
        assert_eq!(weekday_index(day), Weekday::Monday.index());
        assert_eq!(crate::Labelled::label_zh(Weekday::Sunday), "星期日");
    }
}
