//! Bulk seeding for benchmarks: many customers and timeline entries, fast, straight
//! into the tables (not through the API, which the benchmarks then measure).

use crate::sql::{Builder, q};
use crate::{Result, Store, new_public_id};
use kefu_domain::text;

impl Store {
    /// Inserts `customers` customers with `entries_per_customer` timeline entries each,
    /// spread over the past year. Returns the public ids of the customers. Calls
    /// `progress` with the number of rows written so far.
    pub async fn seed_for_bench(
        &self,
        customers: usize,
        entries_per_customer: usize,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Vec<String>> {
        let now = self.now_ms();
        let mut ids = Vec::with_capacity(customers);
        let mut written = 0usize;
        const CUSTOMER_BATCH: usize = 500;
        let mut next = 0usize;
        while next < customers {
            let batch = CUSTOMER_BATCH.min(customers - next);
            let mut conn = self.write().await?;
            let mut builder = Builder::new(
                "INSERT INTO customers (public_id, kind, name, value_class, position, lifecycle, lifecycle_changed_at, search_text, sort_key, created_at, updated_at, version) VALUES ",
            );
            let mut batch_ids = Vec::with_capacity(batch);
            for i in 0..batch {
                let n = next + i;
                let name = format!("客户{n:07} Customer {n}");
                let id = new_public_id();
                if i > 0 {
                    builder.push(", ");
                }
                builder.values(&[
                    id.clone().into(),
                    "person".into(),
                    name.clone().into(),
                    "ordinary".into(),
                    "external".into(),
                    ["potential", "target", "current", "lost"][n % 4].into(),
                    now.into(),
                    text::search_key(&name).into(),
                    text::sort_key(&name).into(),
                    now.into(),
                    now.into(),
                    1i64.into(),
                ]);
                batch_ids.push(id);
            }
            builder.push(" RETURNING id");
            let keys: Vec<i64> = conn
                .fetch_all(builder.query())
                .await?
                .iter()
                .map(|row| row.get::<i64>("id"))
                .collect::<Result<_>>()?;
            // Timeline rows: 13 values each; stay under SQLite's 32766 bound parameters.
            let mut rows = Vec::new();
            for key in &keys {
                for e in 0..entries_per_customer {
                    rows.push((*key, e));
                }
            }
            for chunk in rows.chunks(2000) {
                let mut builder = Builder::new(
                    "INSERT INTO timeline_entries (public_id, customer_id, kind, channel, direction, interaction_type, content_type, summary, data, occurred_at, created_at) VALUES ",
                );
                for (i, (key, e)) in chunk.iter().enumerate() {
                    if i > 0 {
                        builder.push(", ");
                    }
                    let channel = ["email", "phone", "live_chat", "face_to_face"][e % 4];
                    let interaction = [
                        "non_personal",
                        "indirect_personal",
                        "indirect_personal",
                        "face_to_face",
                    ][e % 4];
                    let at = now - ((*e as i64 + 1) * 3_600_000 * 7) - (*key % 1000);
                    builder.values(&[
                        new_public_id().into(),
                        (*key).into(),
                        "message".into(),
                        channel.into(),
                        if e % 2 == 0 {
                            "customer_initiated"
                        } else {
                            "company_initiated"
                        }
                        .into(),
                        interaction.into(),
                        "information".into(),
                        format!("第{e}次联系：订单查询 / contact {e}: order enquiry").into(),
                        "{}".into(),
                        at.into(),
                        at.into(),
                    ]);
                }
                conn.execute(builder.query()).await?;
                written += chunk.len();
            }
            conn.commit().await?;
            written += batch;
            progress(written);
            ids.extend(batch_ids);
            next += batch;
        }
        Ok(ids)
    }

    /// Makes PostgreSQL's planner aware of the seeded volume. SQLite is left without
    /// statistics, as kefu runs it: with STAT4 tables every bound parameter would make
    /// SQLite re-plan the statement.
    pub async fn analyze(&self) -> Result<()> {
        if self.dialect() == crate::Dialect::Sqlite {
            return Ok(());
        }
        let mut conn = self.write().await?;
        conn.execute(q("ANALYZE")).await?;
        conn.commit().await
    }
}

/// What [`Store::seed_sla_for_bench`] made.
#[derive(Debug, Clone, Copy, Default, serde::Serialize)]
pub struct SlaSeed {
    pub open_cases: usize,
    pub clocks: usize,
    pub promises: usize,
    pub due_clocks: usize,
    pub due_promises: usize,
    pub calendars: usize,
}

impl Store {
    /// Seeds `open_cases` open cases spread over three teams with different calendars
    /// (Shanghai office hours with holidays and a make-up day, Berlin office hours, 24×7),
    /// each with a running first-response and resolution clock scheduled in its team's
    /// calendar, and one open promise per ten cases. The clocks of the first `due` cases,
    /// and the promises among them, are already due; everything else is due later.
    pub async fn seed_sla_for_bench(
        &self,
        open_cases: usize,
        due: usize,
        owner: i64,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<SlaSeed> {
        use kefu_domain::calendar::{CalendarSpec, ExtraDay, Holiday, Weekday, WorkingHours};
        use kefu_domain::sla::{SlaPolicySpec, schedule};
        let now = self.now_ms();
        let actor = crate::Actor::cli();
        let weekdays = [
            Weekday::Monday,
            Weekday::Tuesday,
            Weekday::Wednesday,
            Weekday::Thursday,
            Weekday::Friday,
        ];
        let hours = |ranges: &[(&str, &str)]| -> Vec<WorkingHours> {
            weekdays
                .iter()
                .flat_map(|d| {
                    ranges.iter().map(|(start, end)| WorkingHours {
                        weekday: *d,
                        start: (*start).into(),
                        end: (*end).into(),
                    })
                })
                .collect()
        };
        let specs = [
            (
                "上海客服中心",
                CalendarSpec {
                    time_zone: "Asia/Shanghai".into(),
                    always_open: false,
                    hours: hours(&[("09:00", "12:00"), ("13:00", "18:00")]),
                    holidays: (1..=7)
                        .map(|d| Holiday {
                            date: format!("2026-10-0{d}"),
                            name: "国庆节".into(),
                        })
                        .collect(),
                    extra_working_days: vec![ExtraDay {
                        date: "2026-10-10".into(),
                        start: "09:00".into(),
                        end: "18:00".into(),
                        name: "国庆调休".into(),
                    }],
                },
            ),
            (
                "Berlin support",
                CalendarSpec {
                    time_zone: "Europe/Berlin".into(),
                    always_open: false,
                    hours: hours(&[("08:00", "17:00")]),
                    holidays: vec![Holiday {
                        date: "2026-12-25".into(),
                        name: "Weihnachten".into(),
                    }],
                    extra_working_days: Vec::new(),
                },
            ),
            ("24×7", CalendarSpec::default()),
        ];
        let mut teams = Vec::new();
        for (i, (name, spec)) in specs.iter().enumerate() {
            let calendar = self
                .create_calendar(
                    &actor,
                    crate::sla::NewCalendar {
                        name: (*name).into(),
                        spec: spec.clone(),
                    },
                )
                .await?;
            let team = self
                .create_team(
                    &actor,
                    crate::users::NewTeam {
                        name: format!("bench team {i}"),
                        description: None,
                    },
                )
                .await?;
            self.set_team_calendar(
                &actor,
                &team.id,
                crate::sla::TeamCalendar {
                    calendar_id: Some(calendar.id.clone()),
                },
            )
            .await?;
            let mut conn = self.write().await?;
            let team_key: i64 = conn
                .fetch_one(q("SELECT id FROM teams WHERE public_id = $1").bind(team.id.as_str()))
                .await?
                .get("id")?;
            let calendar_key: i64 = conn
                .fetch_one(
                    q("SELECT id FROM business_calendars WHERE public_id = $1")
                        .bind(calendar.id.as_str()),
                )
                .await?
                .get("id")?;
            conn.commit().await?;
            teams.push((team_key, calendar_key, spec.validate()?));
        }
        let policy = self
            .create_sla_policy(
                &actor,
                SlaPolicySpec {
                    name: "bench".into(),
                    rank: 1,
                    case_kind: None,
                    priority: None,
                    severity: None,
                    first_response_minutes: Some(4 * 60),
                    next_response_minutes: None,
                    resolution_minutes: Some(3 * 8 * 60),
                    warn_at_percent: Some(80),
                    escalate_on_breach: Some(true),
                    active: Some(true),
                },
            )
            .await?;
        let policy_key: i64 = self
            .read()
            .fetch_one(
                q("SELECT id FROM sla_policies WHERE public_id = $1").bind(policy.id.as_str()),
            )
            .await?
            .get("id")?;
        let customers = (open_cases / 100).max(1);
        self.seed_for_bench(customers, 0, &|_| {}).await?;
        let customer_keys: Vec<i64> = self
            .read()
            .fetch_all(q("SELECT id FROM customers ORDER BY id"))
            .await?
            .iter()
            .map(|r| r.get("id"))
            .collect::<Result<_>>()?;
        let mut seed = SlaSeed {
            calendars: teams.len(),
            ..Default::default()
        };
        const BATCH: usize = 1000;
        let mut next = 0usize;
        while next < open_cases {
            let batch = BATCH.min(open_cases - next);
            let mut conn = self.write().await?;
            let mut builder = Builder::new(
                "INSERT INTO cases (public_id, number, customer_id, kind, subject, search_text, status, priority, channel, service_stage, technical, charging, recurrence, team_id, created_at, updated_at, version) VALUES ",
            );
            let mut plans = Vec::with_capacity(batch);
            for i in 0..batch {
                let n = next + i;
                let (team, calendar, compiled) = &teams[n % teams.len()];
                // Due cases started two weeks ago; the rest within the last minutes.
                let started = if n < due {
                    now - 14 * 24 * 3_600_000 - (n as i64 % 3_600_000)
                } else {
                    now - (n as i64 % 600_000)
                };
                if i > 0 {
                    builder.push(", ");
                }
                let subject = format!("工单 {n} 物流延迟");
                builder.values(&[
                    new_public_id().into(),
                    (10_000_000 + n as i64).into(),
                    customer_keys[n % customer_keys.len()].into(),
                    "order".into(),
                    subject.clone().into(),
                    text::search_key(&subject).into(),
                    "open".into(),
                    "normal".into(),
                    "email".into(),
                    "in_sale".into(),
                    false.into(),
                    "free".into(),
                    "one_off".into(),
                    (*team).into(),
                    started.into(),
                    started.into(),
                    1i64.into(),
                ]);
                plans.push((started, *calendar, compiled.clone(), n));
            }
            builder.push(" RETURNING id");
            let keys: Vec<i64> = conn
                .fetch_all(builder.query())
                .await?
                .iter()
                .map(|row| row.get::<i64>("id"))
                .collect::<Result<_>>()?;
            let mut clocks = Vec::with_capacity(batch * 2);
            for (key, (started, calendar, compiled, _)) in keys.iter().zip(&plans) {
                for (metric, target) in [
                    ("first_response", 4 * 3_600_000i64),
                    ("resolution", 24 * 3_600_000i64),
                ] {
                    let s = schedule(compiled, *started, 0, target, 80, false);
                    if s.next_check() <= now {
                        seed.due_clocks += 1;
                    }
                    clocks.push((*key, metric, *calendar, target, *started, s));
                }
            }
            for chunk in clocks.chunks(1000) {
                let mut builder = Builder::new(
                    "INSERT INTO sla_clocks (case_id, metric, policy_id, calendar_id, target_ms, warn_at_percent, escalate_on_breach, state, started_at, resumed_at, elapsed_ms, due_at, warn_at, next_check_at) VALUES ",
                );
                for (i, (key, metric, calendar, target, started, s)) in chunk.iter().enumerate() {
                    if i > 0 {
                        builder.push(", ");
                    }
                    builder.values(&[
                        (*key).into(),
                        (*metric).into(),
                        policy_key.into(),
                        (*calendar).into(),
                        (*target).into(),
                        80i64.into(),
                        true.into(),
                        "running".into(),
                        (*started).into(),
                        (*started).into(),
                        0i64.into(),
                        s.due_at.into(),
                        s.warn_at.into(),
                        s.next_check().into(),
                    ]);
                }
                conn.execute(builder.query()).await?;
            }
            seed.clocks += clocks.len();
            let promised: Vec<(i64, usize)> = keys
                .iter()
                .zip(&plans)
                .filter(|(_, (_, _, _, n))| n % 10 == 0)
                .map(|(key, (_, _, _, n))| (*key, *n))
                .collect();
            if !promised.is_empty() {
                let mut builder = Builder::new(
                    "INSERT INTO promises (public_id, case_id, description, due_at, owner_id, status, created_at) VALUES ",
                );
                for (i, (key, n)) in promised.iter().enumerate() {
                    if i > 0 {
                        builder.push(", ");
                    }
                    let due_at = if *n < due {
                        seed.due_promises += 1;
                        now - 3_600_000
                    } else {
                        now + 86_400_000
                    };
                    builder.values(&[
                        new_public_id().into(),
                        (*key).into(),
                        "明天回电告知处理结果".into(),
                        due_at.into(),
                        owner.into(),
                        "open".into(),
                        now.into(),
                    ]);
                }
                conn.execute(builder.query()).await?;
                seed.promises += promised.len();
            }
            conn.commit().await?;
            seed.open_cases += batch;
            next += batch;
            progress(next);
        }
        Ok(seed)
    }
}

impl Store {
    /// Turns the cases seeded by [`Store::seed_sla_for_bench`] into a realistic history
    /// for the reports: three in four answered, one in three solved (with CSAT on half of
    /// those), one in six a complaint with varied classifications, one in ten
    /// transferred, and the first-response clocks of answered cases met or breached.
    /// The cases are spread evenly over the last year in the order they were created
    /// and among sixty agents (nine in ten still with the agent who first took them).
    pub async fn seed_reports_for_bench(&self) -> Result<()> {
        let now = self.now_ms();
        let actor = crate::Actor::cli();
        let mut agents = Vec::new();
        for i in 0..60 {
            let user = self
                .create_user(
                    &actor,
                    crate::users::NewUser {
                        email: format!("agent{i}@bench.kefu.local"),
                        name: None,
                        role: kefu_domain::access::Role::Agent,
                        password: None,
                        team_id: None,
                        locale: None,
                    },
                )
                .await?;
            agents.push(user.key);
        }
        let mut conn = self.write().await?;
        crate::complaints::current_rules(&mut conn, now).await?;
        // In creation order, as a real history is: a day's cases lie together.
        let (low, high): (i64, i64) = {
            let row = conn
                .fetch_one(q("SELECT MIN(id) AS low, MAX(id) AS high FROM cases"))
                .await?;
            (row.get("low")?, row.get("high")?)
        };
        let step = 365 * 86_400_000 / (high - low + 1).max(1);
        conn.execute(
            q("UPDATE cases SET created_at = $1 - ($2 - id) * $3 - 60000, updated_at = $1 - ($2 - id) * $3 - 60000")
                .bind(now)
                .bind(high)
                .bind(step),
        )
        .await?;
        let first = agents.first().copied().unwrap_or(0);
        if agents.last().copied() != Some(first + 59) {
            return Err(crate::StoreError::Database(
                "the bench agents were not given consecutive ids".into(),
            ));
        }
        conn.execute(
            q("UPDATE cases SET assignee_id = $1 + id % 60, first_owner_id = CASE WHEN id % 10 = 0 THEN $1 + (id + 1) % 60 ELSE $1 + id % 60 END")
                .bind(first),
        )
        .await?;
        for sql in [
            "UPDATE cases SET first_response_at = created_at + (id % 240) * 60000 WHERE id % 4 <> 0",
            "UPDATE cases SET status = 'solved', solved_at = created_at + (id % 4000) * 60000 WHERE id % 3 = 0",
            "UPDATE cases SET csat_score = 1 + (id % 5) WHERE id % 6 = 0 OR id % 6 = 3",
            "UPDATE cases SET kind = 'complaint' WHERE id % 6 = 0",
            "INSERT INTO complaints (case_id, stage, severity, behaviour, purpose, cause, fault_side, fault_detail, dissatisfaction, needs, key_points, validity, validity_reason, product, reputation_risk, escalation_level, rule_set_version, stage_changed_at, resolved_at, created_at, updated_at) \
             SELECT id, CASE WHEN solved_at IS NULL THEN 'authority_check' ELSE 'closed' END, CASE WHEN id % 12 = 0 THEN 'serious' ELSE 'general' END, \
             CASE id % 4 WHEN 0 THEN 'passive_grumbling' WHEN 1 THEN 'negative_publicity' WHEN 2 THEN 'angry_venting' ELSE 'aggressive' END, \
             CASE id % 3 WHEN 0 THEN 'suggestion' WHEN 1 THEN 'criticism' ELSE 'accusation' END, \
             CASE id % 5 WHEN 0 THEN 'product_quality' WHEN 1 THEN 'service' WHEN 2 THEN 'price' ELSE 'integrity' END, \
             CASE id % 3 WHEN 0 THEN 'company' WHEN 1 THEN 'customer' ELSE 'undetermined' END, NULL, \
             CASE id % 2 WHEN 0 THEN 'outcome' ELSE 'process' END, '[\"resolution\"]', '基准数据', 'pending', '', \
             CASE id % 7 WHEN 0 THEN 'K-100' WHEN 1 THEN 'K-200' WHEN 2 THEN 'K-300' ELSE 'X-1' END, FALSE, \
             CASE WHEN id % 12 = 0 THEN 1 WHEN id % 60 = 0 THEN 2 ELSE 0 END, 1, created_at, solved_at, created_at, created_at \
             FROM cases WHERE id % 6 = 0",
            "INSERT INTO case_transfers (case_id, from_team_id, to_team_id, reason, actor_label, at) SELECT id, team_id, team_id, 'bench', 'bench', created_at FROM cases WHERE id % 10 = 0",
            "UPDATE sla_clocks SET state = CASE WHEN id % 5 = 0 THEN 'breached' ELSE 'met' END, breached_at = CASE WHEN id % 5 = 0 THEN due_at ELSE NULL END, stopped_at = started_at, due_at = NULL, warn_at = NULL, next_check_at = NULL WHERE metric = 'first_response' AND case_id % 4 <> 0",
        ] {
            conn.execute(q(sql)).await?;
        }
        conn.commit().await?;
        self.analyze().await
    }

    /// Changes a few cases created `days_ago` (their CSAT), as the day's work would,
    /// leaving those days dirty for the reports.
    pub async fn touch_days_for_bench(&self, days_ago: &[i64]) -> Result<()> {
        let now = self.now_ms();
        let mut conn = self.write().await?;
        for days in days_ago {
            let day = (now - days * 86_400_000).div_euclid(86_400_000);
            conn.execute(
                q("UPDATE cases SET csat_score = CASE WHEN csat_score = 5 THEN 4 ELSE 5 END WHERE id IN (SELECT id FROM cases WHERE created_at >= $1 AND created_at < $2 AND status = 'solved' LIMIT 20)")
                    .bind(day * 86_400_000)
                    .bind((day + 1) * 86_400_000),
            )
            .await?;
        }
        conn.commit().await
    }
}
