//! Conformance suite, part seven: service levels — calendars, policies, the clocks on a
//! case through replies, waiting and solving, team working hours, and the sweep that
//! warns, breaches and escalates — on SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_domain::calendar::{CalendarSpec, Holiday, Weekday, WorkingHours};
use kefu_domain::cases::*;
use kefu_domain::complaints::{
    Behaviour, Cause, ComplaintStage, Dissatisfaction, EscalationTrigger, Purpose, Severity,
};
use kefu_domain::sla::{ClockState, SlaMetric, SlaPolicySpec};
use kefu_domain::{DomainError, Timestamp};
use kefu_store::cases::{Case, NewTransfer, StatusChange};
use kefu_store::complaints::NewComplaint;
use kefu_store::sla::{NewCalendar, SlaClock, TeamCalendar};
use kefu_store::users::NewTeam;
use kefu_store::{FixedClock, Store, StoreError};

kefu_testkit::conformance!(
    calendars_are_validated_and_versioned,
    policies_are_validated_and_matched_by_rank,
    clocks_follow_the_case,
    team_hours_and_holidays_set_the_due_time,
    the_sweep_warns_breaches_and_escalates_once,
    a_complaint_gets_the_targets_of_its_severity,
    a_storm_of_breaches_is_one_digest,
);

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;

fn policy(name: &str, rank: i64) -> SlaPolicySpec {
    SlaPolicySpec {
        name: name.into(),
        rank,
        case_kind: None,
        priority: None,
        severity: None,
        first_response_minutes: Some(60),
        next_response_minutes: Some(30),
        resolution_minutes: Some(8 * 60),
        warn_at_percent: Some(50),
        escalate_on_breach: None,
        active: None,
    }
}

fn office_hours() -> CalendarSpec {
    CalendarSpec {
        time_zone: "UTC".into(),
        always_open: false,
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
        ..Default::default()
    }
}

fn clock_of(clocks: &[SlaClock], metric: SlaMetric) -> &SlaClock {
    clocks
        .iter()
        .find(|c| c.metric == metric)
        .unwrap_or_else(|| panic!("no {metric} clock in {clocks:#?}"))
}

async fn clocks(store: &Store, case: &Case) -> Vec<SlaClock> {
    store.case_sla(&case.id).await.expect("clocks")
}

fn status(to: CaseStatus) -> StatusChange {
    StatusChange {
        status: to,
        reason: None,
    }
}

async fn calendars_are_validated_and_versioned(store: Store) {
    let (store, _clock) = fixed(store);
    let mut overlapping = office_hours();
    overlapping.hours.push(WorkingHours {
        weekday: Weekday::Monday,
        start: "16:00".into(),
        end: "18:00".into(),
    });
    let refused = store
        .create_calendar(
            &cli(),
            NewCalendar {
                name: "重叠".into(),
                spec: overlapping,
            },
        )
        .await;
    match refused {
        Err(StoreError::Invalid(DomainError::Invalid {
            field: "hours",
            message,
        })) => {
            assert!(message.contains("overlaps"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let mut bad_zone = office_hours();
    bad_zone.time_zone = "Mars/Olympus".into();
    expect_invalid(
        store
            .create_calendar(
                &cli(),
                NewCalendar {
                    name: "火星".into(),
                    spec: bad_zone,
                },
            )
            .await,
        "time_zone",
    );
    let created = store
        .create_calendar(
            &cli(),
            NewCalendar {
                name: "上海办公时间".into(),
                spec: office_hours(),
            },
        )
        .await
        .expect("create");
    expect_conflict(
        store
            .create_calendar(
                &cli(),
                NewCalendar {
                    name: "上海办公时间".into(),
                    spec: office_hours(),
                },
            )
            .await,
        "duplicate",
    );
    let mut with_holiday = office_hours();
    with_holiday.holidays.push(Holiday {
        date: "2026-10-01".into(),
        name: "国庆节".into(),
    });
    let updated = store
        .update_calendar(
            &cli(),
            &created.id,
            NewCalendar {
                name: "上海办公时间".into(),
                spec: with_holiday.clone(),
            },
            Some(created.version),
        )
        .await
        .expect("update");
    assert_eq!(updated.version, created.version + 1);
    assert_eq!(updated.spec.holidays.len(), 1);
    expect_version_mismatch(
        store
            .update_calendar(
                &cli(),
                &created.id,
                NewCalendar {
                    name: "上海办公时间".into(),
                    spec: with_holiday,
                },
                Some(created.version),
            )
            .await,
        "calendar",
        created.version,
        created.version + 1,
    );
    assert_eq!(store.calendars().await.expect("list").len(), 1);
}

async fn policies_are_validated_and_matched_by_rank(store: Store) {
    let (store, _clock) = fixed(store);
    let customer = person(&store, "客户").await;
    // No policy: no clocks.
    let plain = open_case(&store, &cli(), &customer, CaseKind::Consultation, "无策略").await;
    assert!(clocks(&store, &plain).await.is_empty());
    expect_invalid(
        store
            .create_sla_policy(
                &cli(),
                SlaPolicySpec {
                    warn_at_percent: Some(0),
                    ..policy("坏", 1)
                },
            )
            .await,
        "warn_at_percent",
    );
    store
        .create_sla_policy(&cli(), policy("默认", 100))
        .await
        .expect("default");
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                case_kind: Some(CaseKind::Order),
                first_response_minutes: Some(15),
                ..policy("订单", 10)
            },
        )
        .await
        .expect("orders");
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                active: Some(false),
                first_response_minutes: Some(1),
                ..policy("停用", 0)
            },
        )
        .await
        .expect("inactive");
    let listed: Vec<String> = store
        .sla_policies()
        .await
        .expect("list")
        .into_iter()
        .map(|p| p.spec.name)
        .collect();
    assert_eq!(listed, vec!["停用", "订单", "默认"]);
    let order = open_case(&store, &cli(), &customer, CaseKind::Order, "订单").await;
    let order_clocks = clocks(&store, &order).await;
    assert_eq!(
        clock_of(&order_clocks, SlaMetric::FirstResponse).target_ms,
        15 * MINUTE
    );
    assert_eq!(
        clock_of(&order_clocks, SlaMetric::FirstResponse).policy_name,
        "订单"
    );
    let question = open_case(&store, &cli(), &customer, CaseKind::Consultation, "咨询").await;
    let question_clocks = clocks(&store, &question).await;
    assert_eq!(question_clocks.len(), 2, "first response and resolution");
    assert_eq!(
        clock_of(&question_clocks, SlaMetric::FirstResponse).due_at,
        Some(Timestamp(T0 + HOUR))
    );
    assert_eq!(
        clock_of(&question_clocks, SlaMetric::Resolution).due_at,
        Some(Timestamp(T0 + 8 * HOUR))
    );
}

async fn clocks_follow_the_case(store: Store) {
    let (store, clock) = fixed(store);
    store
        .create_sla_policy(&cli(), policy("默认", 1))
        .await
        .expect("policy");
    let customer = person(&store, "客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Consultation, "计时").await;
    clock.advance(10 * MINUTE);
    store
        .add_message(&cli(), &case.id, message(MessageKind::Outbound, "您好"))
        .await
        .expect("reply");
    let now = clocks(&store, &case).await;
    let first = clock_of(&now, SlaMetric::FirstResponse);
    assert_eq!(first.state, ClockState::Met);
    assert_eq!(first.stopped_at, Some(Timestamp(T0 + 10 * MINUTE)));
    clock.advance(10 * MINUTE);
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Inbound, "还有一个问题"),
        )
        .await
        .expect("customer");
    let next = clocks(&store, &case).await;
    assert_eq!(
        clock_of(&next, SlaMetric::NextResponse).due_at,
        Some(Timestamp(T0 + 50 * MINUTE))
    );
    // Waiting on the customer pauses every running clock.
    clock.advance(10 * MINUTE);
    store
        .change_case_status(&cli(), &case.id, status(CaseStatus::Pending), None)
        .await
        .expect("pending");
    let paused = clocks(&store, &case).await;
    let resolution = clock_of(&paused, SlaMetric::Resolution);
    assert_eq!(resolution.state, ClockState::Paused);
    assert_eq!(resolution.due_at, None);
    assert_eq!(resolution.elapsed_ms, 30 * MINUTE);
    assert_eq!(
        clock_of(&paused, SlaMetric::NextResponse).elapsed_ms,
        10 * MINUTE
    );
    // Two hours later the case is worked again: the clocks go on from where they were.
    clock.advance(2 * HOUR);
    store
        .change_case_status(&cli(), &case.id, status(CaseStatus::Open), None)
        .await
        .expect("open");
    let resumed = clocks(&store, &case).await;
    let resume_at = T0 + 30 * MINUTE + 2 * HOUR;
    assert_eq!(
        clock_of(&resumed, SlaMetric::NextResponse).due_at,
        Some(Timestamp(resume_at + 20 * MINUTE))
    );
    assert_eq!(
        clock_of(&resumed, SlaMetric::Resolution).due_at,
        Some(Timestamp(resume_at + 8 * HOUR - 30 * MINUTE))
    );
    store
        .change_case_status(&cli(), &case.id, status(CaseStatus::Solved), None)
        .await
        .expect("solved");
    let done = clocks(&store, &case).await;
    assert_eq!(
        clock_of(&done, SlaMetric::Resolution).state,
        ClockState::Met
    );
    assert_eq!(
        clock_of(&done, SlaMetric::NextResponse).state,
        ClockState::Stopped,
        "solved without answering the last message"
    );
    assert_eq!(store.sweep_sla().await.expect("sweep").breached, 0);
}

async fn team_hours_and_holidays_set_the_due_time(store: Store) {
    // Friday 2023-11-17 16:00 UTC.
    let friday_16 = 1_700_236_800_000;
    let clock = FixedClock::new(friday_16);
    let store = store.with_clock(clock.clone());
    let mut spec = office_hours();
    spec.holidays.push(Holiday {
        date: "2023-11-20".into(),
        name: "假日".into(),
    });
    let calendar = store
        .create_calendar(
            &cli(),
            NewCalendar {
                name: "办公时间".into(),
                spec,
            },
        )
        .await
        .expect("calendar");
    let team = store
        .create_team(
            &cli(),
            NewTeam {
                name: "售后".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    store
        .set_team_calendar(
            &cli(),
            &team.id,
            TeamCalendar {
                calendar_id: Some(calendar.id.clone()),
            },
        )
        .await
        .expect("set calendar");
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                first_response_minutes: Some(120),
                ..policy("两小时", 1)
            },
        )
        .await
        .expect("policy");
    let customer = person(&store, "客户").await;
    let mut new = new_case(&customer, CaseKind::AfterSale, "周五下午");
    new.team_id = Some(team.id.clone());
    let case = store.create_case(&cli(), new).await.expect("case");
    // One hour on Friday, Monday is a holiday, one more hour on Tuesday: 10:00.
    let tuesday_10 = friday_16 + 4 * 24 * HOUR - 6 * HOUR;
    assert_eq!(
        clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).due_at,
        Some(Timestamp(tuesday_10))
    );
    // Half an hour used, then moved to a round-the-clock team: the other 90 minutes
    // run on its calendar (none: 24×7), so the reply is due at 18:00 the same day.
    let night = store
        .create_team(
            &cli(),
            NewTeam {
                name: "夜班".into(),
                description: None,
            },
        )
        .await
        .expect("night team");
    clock.advance(30 * MINUTE);
    let move_to = |team: &str| NewTransfer {
        team_id: Some(team.to_string()),
        assignee_id: None,
        reason: "转接".into(),
    };
    store
        .transfer_case(&cli(), &case.id, move_to(&night.id), None)
        .await
        .expect("to the night team");
    assert_eq!(
        clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).due_at,
        Some(Timestamp(friday_16 + 2 * HOUR)),
        "the clock follows the new team's calendar"
    );
    // Back at 17:00 with an hour used: the last hour is Tuesday 09:00–10:00.
    clock.advance(30 * MINUTE);
    store
        .transfer_case(&cli(), &case.id, move_to(&team.id), None)
        .await
        .expect("back");
    assert_eq!(
        clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).due_at,
        Some(Timestamp(tuesday_10))
    );
    expect_invalid(
        store
            .set_team_calendar(
                &cli(),
                &team.id,
                TeamCalendar {
                    calendar_id: Some("0190a0b0-0000-7000-8000-000000000000".into()),
                },
            )
            .await,
        "calendar_id",
    );
}

async fn the_sweep_warns_breaches_and_escalates_once(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    store
        .create_sla_policy(&cli(), policy("默认", 1))
        .await
        .expect("policy");
    let customer = person(&store, "客户").await;
    let mut new = new_case(&customer, CaseKind::Consultation, "无人回复");
    new.assignee_id = Some(agent.id.clone());
    let case = store.create_case(&cli(), new).await.expect("case");
    let untouched = open_case(&store, &cli(), &customer, CaseKind::Consultation, "另一个").await;
    store
        .add_message(
            &cli(),
            &untouched.id,
            message(MessageKind::Outbound, "已回复"),
        )
        .await
        .expect("reply");
    assert_eq!(store.sweep_sla().await.expect("sweep").warned, 0);
    // Half the first-response target: a warning to the assignee.
    clock.advance(30 * MINUTE);
    let report = store.sweep_sla().await.expect("sweep");
    assert_eq!((report.warned, report.breached), (1, 0));
    assert_eq!(store.sweep_sla().await.expect("again").warned, 0, "once");
    let told = walk(50, async |p| {
        store.notifications(agent.key, false, &p).await
    })
    .await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, "sla_warning");
    assert!(told[0].message_zh.contains("首次响应"));
    // Past the target: breached, the case urgent, the supervisor told.
    clock.advance(31 * MINUTE);
    let report = store.sweep_sla().await.expect("sweep");
    assert_eq!((report.warned, report.breached), (0, 1));
    let breached = clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).clone();
    assert_eq!(breached.state, ClockState::Breached);
    assert_eq!(breached.breached_at, Some(Timestamp(T0 + HOUR)));
    assert_eq!(
        store.case(&case.id).await.expect("case").priority,
        Priority::Urgent
    );
    let boss_told = walk(50, async |p| store.notifications(boss.key, false, &p).await).await;
    assert!(
        boss_told.iter().any(|n| n.kind == "sla_breached"),
        "{boss_told:#?}"
    );
    assert_eq!(store.sweep_sla().await.expect("again").breached, 0, "once");
    // A reply after the breach does not un-breach it.
    store
        .add_message(&cli(), &case.id, message(MessageKind::Outbound, "抱歉久等"))
        .await
        .expect("reply");
    assert_eq!(
        clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).state,
        ClockState::Breached
    );
}

async fn a_complaint_gets_the_targets_of_its_severity(store: Store) {
    let (store, clock) = fixed(store);
    store
        .create_sla_policy(&cli(), policy("默认", 100))
        .await
        .expect("default");
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                case_kind: Some(CaseKind::Complaint),
                severity: Some(Severity::General),
                first_response_minutes: Some(20),
                resolution_minutes: Some(4 * 60),
                ..policy("一般投诉", 10)
            },
        )
        .await
        .expect("complaints");
    store
        .publish_rules(
            &cli(),
            kefu_store::complaints::NewRuleSet {
                rules: kefu_domain::complaints::ComplaintRules {
                    escalate_serious: false,
                    ..Default::default()
                },
                note: "由时限触发升级".into(),
                based_on_version: None,
            },
        )
        .await
        .expect("rules");
    let customer = person(&store, "投诉人").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Complaint, "漏水").await;
    assert_eq!(
        clock_of(&clocks(&store, &case).await, SlaMetric::FirstResponse).target_ms,
        HOUR,
        "before the complaint is recorded its severity is unknown"
    );
    clock.advance(5 * MINUTE);
    store
        .record_complaint(
            &cli(),
            &case.id,
            NewComplaint {
                severity: Severity::General,
                behaviour: Behaviour::AngryVenting,
                purpose: Purpose::Criticism,
                cause: Cause::ProductQuality,
                fault_side: None,
                fault_detail: None,
                dissatisfaction: Dissatisfaction::Outcome,
                needs: None,
                key_points: "漏水".into(),
                validity: None,
                validity_reason: None,
                product: None,
                reputation_risk: None,
                subject_user_id: None,
            },
        )
        .await
        .expect("record");
    let retargeted = clocks(&store, &case).await;
    let first = clock_of(&retargeted, SlaMetric::FirstResponse);
    assert_eq!(first.policy_name, "一般投诉");
    assert_eq!(
        first.due_at,
        Some(Timestamp(T0 + 20 * MINUTE)),
        "from the start"
    );
    // The breach escalates the unreviewed complaint.
    clock.advance(20 * MINUTE);
    store.sweep_sla().await.expect("sweep");
    let complaint = store.complaint(&case.id).await.expect("complaint");
    assert_eq!(complaint.complaint.stage, ComplaintStage::InternalReview);
    assert_eq!(
        complaint.complaint.escalation_trigger,
        Some(EscalationTrigger::SlaBreached)
    );
}

async fn a_storm_of_breaches_is_one_digest(store: Store) {
    let (store, clock) = fixed(store);
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    store
        .create_sla_policy(&cli(), policy("默认", 1))
        .await
        .expect("policy");
    let customer = person(&store, "客户").await;
    let mut numbers = Vec::new();
    for n in 0..25 {
        numbers.push(
            open_case(
                &store,
                &cli(),
                &customer,
                CaseKind::Consultation,
                &format!("第{n}个"),
            )
            .await
            .number,
        );
    }
    let few = open_case(&store, &cli(), &customer, CaseKind::Consultation, "稍后").await;
    clock.advance(61 * MINUTE);
    let report = store.sweep_sla().await.expect("sweep");
    assert_eq!(report.breached, 26, "every first response");
    let told = walk(50, async |p| store.notifications(boss.key, false, &p).await).await;
    assert_eq!(told.len(), 1, "{told:#?}");
    assert_eq!(told[0].kind, "sla_breached_digest");
    assert!(
        told[0].message_zh.starts_with("26 个工单已超时"),
        "{}",
        told[0].message_zh
    );
    assert!(told[0].message_en.contains(&format!("#{}", few.number)));
    assert_eq!(
        told[0].data["case_numbers"]
            .as_array()
            .expect("numbers")
            .len(),
        26
    );
    assert!(
        numbers
            .iter()
            .all(|n| told[0].message_en.contains(&format!("#{n}")))
    );
}
