//! Conformance suite, part nine: reports on a small world whose every figure is known,
//! on SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_domain::cases::*;
use kefu_domain::complaints::*;
use kefu_domain::sla::{SlaMetric, SlaPolicySpec};
use kefu_domain::{Labelled, Timestamp};
use kefu_store::Store;
use kefu_store::cases::{NewTransfer, StatusChange};
use kefu_store::complaints::NewComplaint;
use kefu_store::customers::NewTransaction;
use kefu_store::reports::{Period, quadrant};
use kefu_store::satisfaction::SatisfactionAnswer;
use kefu_store::users::{NewTeam, NewUser};

kefu_testkit::conformance!(reports_add_up, rollups_agree_with_the_cases);

const MINUTE: i64 = 60_000;

fn solved() -> StatusChange {
    StatusChange {
        status: CaseStatus::Solved,
        reason: None,
    }
}

async fn reports_add_up(store: Store) {
    let (store, clock) = fixed(store);
    let mut teams = Vec::new();
    let mut agents = Vec::new();
    for (name, email) in [("一组", "a@example.com"), ("二组", "b@example.com")] {
        let team = store
            .create_team(
                &cli(),
                NewTeam {
                    name: name.into(),
                    description: None,
                },
            )
            .await
            .expect("team");
        agents.push(
            store
                .create_user(
                    &cli(),
                    NewUser {
                        email: email.into(),
                        name: None,
                        role: Role::Agent,
                        password: None,
                        team_id: Some(team.id.clone()),
                        locale: None,
                    },
                )
                .await
                .expect("agent"),
        );
        teams.push(team);
    }
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                name: "默认".into(),
                rank: 1,
                case_kind: None,
                priority: None,
                severity: None,
                first_response_minutes: Some(60),
                next_response_minutes: None,
                resolution_minutes: Some(24 * 60),
                warn_at_percent: None,
                escalate_on_breach: Some(false),
                active: None,
            },
        )
        .await
        .expect("policy");
    let customer = person(&store, "报表客户").await;
    let a = &agents[0];
    let open_in = |team: usize, kind: CaseKind, subject: &str| {
        let mut new = new_case(&customer, kind, subject);
        new.team_id = Some(teams[team].id.clone());
        new.assignee_id = Some(agents[team].id.clone());
        new
    };
    // 1: a complaint answered in 10 minutes, closed satisfied within the day; the customer
    // buys again; CSAT 5.
    let c1 = store
        .create_case(&actor_of(a), open_in(0, CaseKind::Complaint, "漏水"))
        .await
        .expect("c1");
    store
        .record_complaint(
            &actor_of(a),
            &c1.id,
            NewComplaint {
                severity: Severity::General,
                behaviour: Behaviour::PassiveGrumbling,
                purpose: Purpose::Criticism,
                cause: Cause::ProductQuality,
                fault_side: None,
                fault_detail: Some(FaultDetail::Product),
                dissatisfaction: Dissatisfaction::Outcome,
                needs: None,
                key_points: "漏水".into(),
                validity: None,
                validity_reason: None,
                product: Some("K-200".into()),
                reputation_risk: None,
                subject_user_id: None,
            },
        )
        .await
        .expect("record");
    // 2: a consultation answered after two hours (late), solved; CSAT 2.
    let c2 = store
        .create_case(&actor_of(a), open_in(0, CaseKind::Consultation, "问价"))
        .await
        .expect("c2");
    // 3: team two, transferred and solved: not first-contact resolution.
    let c3 = store
        .create_case(
            &actor_of(&agents[1]),
            open_in(1, CaseKind::AfterSale, "维修"),
        )
        .await
        .expect("c3");
    clock.advance(10 * MINUTE);
    for case in [&c1, &c3] {
        store
            .add_message(
                &actor_of(a),
                &case.id,
                message(MessageKind::Outbound, "您好"),
            )
            .await
            .expect("reply");
    }
    for stage in [
        StepInput {
            from: Some(ComplaintStage::Recorded),
            ..to(ComplaintStage::AuthorityCheck)
        },
        StepInput {
            proposal: Some("换新".into()),
            ..to(ComplaintStage::SolutionProposed)
        },
        to(ComplaintStage::InAction),
        StepInput {
            note: Some("已换".into()),
            ..to(ComplaintStage::FollowUp)
        },
        to(ComplaintStage::Closed),
    ] {
        store
            .complaint_step(&actor_of(a), &c1.id, stage, None)
            .await
            .expect("step");
    }
    store
        .transfer_case(
            &actor_of(&agents[1]),
            &c3.id,
            NewTransfer {
                team_id: Some(teams[0].id.clone()),
                assignee_id: None,
                reason: "转一组".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    clock.advance(110 * MINUTE);
    store
        .add_message(
            &actor_of(a),
            &c2.id,
            message(MessageKind::Outbound, "价格是…"),
        )
        .await
        .expect("late reply");
    for case in [&c2, &c3] {
        store
            .change_case_status(&actor_of(a), &case.id, solved(), None)
            .await
            .expect("solve");
    }
    for (case, score) in [(&c1, 5), (&c2, 2)] {
        store
            .record_satisfaction(
                &actor_of(a),
                &case.id,
                SatisfactionAnswer {
                    score,
                    reason: None,
                },
            )
            .await
            .expect("csat");
    }
    clock.advance(MINUTE);
    store
        .add_transaction(
            &cli(),
            &customer.id,
            NewTransaction {
                occurred_at: None,
                method: "online".into(),
                amount_cents: 9900,
                currency: None,
                description: None,
            },
        )
        .await
        .expect("repurchase");

    let period = Period {
        since: T0 - 1,
        until: T0 + 86_400_000,
    };
    let complaints = store.complaint_report(period).await.expect("complaints");
    assert_eq!(complaints.total, 1);
    let cause = complaints
        .by_cause
        .iter()
        .find(|b| b.value == "product_quality")
        .expect("cause");
    assert_eq!((cause.count, cause.share), (1, 1.0));
    assert_eq!(cause.zh, "产品质量");
    assert_eq!(
        complaints.by_cause.len(),
        Cause::ALL.len(),
        "every bar, even empty"
    );
    assert_eq!(
        complaints
            .by_fault_side
            .iter()
            .find(|b| b.value == "company")
            .expect("side")
            .count,
        1
    );
    assert_eq!(complaints.by_escalation_level, vec![1, 0, 0, 0]);
    assert_eq!(complaints.escalation_rates, vec![0.0, 0.0, 0.0]);
    assert_eq!(complaints.by_cause_and_product[0].product, "K-200");

    let times = store.response_report(period).await.expect("times");
    assert_eq!(times.cases, 3);
    assert_eq!(times.first_response.measured, 3);
    // 10 minutes (two cases) in the first bucket, 120 minutes in the ≤ 4 h bucket.
    assert_eq!(times.first_response.counts[0], 2);
    assert_eq!(times.first_response.counts[2], 1);
    assert_eq!(times.first_response.average_minutes, Some(140.0 / 3.0));
    assert_eq!(times.resolution.measured, 3);
    let first = times
        .sla
        .iter()
        .find(|a| a.metric == SlaMetric::FirstResponse)
        .expect("first response");
    assert_eq!(
        (first.met, first.breached),
        (2, 1),
        "the late reply breached"
    );
    assert_eq!(first.attainment, Some(2.0 / 3.0));

    let pyramid = store.pyramid_report(period).await.expect("pyramid");
    assert_eq!(pyramid.formal_complaints, 1);
    assert_eq!(pyramid.front_line_dissatisfied, 1);
    assert_eq!(pyramid.estimated_silent, 13);
    let quick = &pyramid.repurchase[0];
    assert_eq!(quick.outcome, "resolved_quickly");
    assert_eq!((quick.complaints, quick.repurchased), (1, 1));
    assert_eq!(quick.textbook_rate, 0.82);

    let fcr = store.fcr_report(period).await.expect("fcr");
    assert_eq!((fcr.solved, fcr.first_contact), (3, 2));
    let owner_b = fcr
        .by_owner
        .iter()
        .find(|r| r.owner_id.as_deref() == Some(agents[1].id.as_str()))
        .expect("owner b");
    assert_eq!((owner_b.solved, owner_b.first_contact), (1, 0));

    let matrix = store.service_matrix(period).await.expect("matrix");
    let one = matrix
        .by_team
        .iter()
        .find(|c| c.id.as_deref() == Some(teams[0].id.as_str()))
        .expect("team one");
    // c3 moved to team one: three cases, first response 2 of 3 on time, CSAT 5 and 2.
    assert_eq!(one.cases, 3);
    assert_eq!(one.timeliness, Some(2.0 / 3.0));
    assert_eq!(one.satisfaction, Some(3.5));
    assert_eq!(one.quadrant, None, "five answers are needed to say");
    assert_eq!(quadrant(0.9, 4.5), ("high_quality", "高质型"));
    assert_eq!(quadrant(0.9, 3.0), ("factory", "工厂型"));
    assert_eq!(quadrant(0.5, 4.5), ("friendly", "友好型"));
    assert_eq!(quadrant(0.5, 3.0), ("cold", "冰冷型"));
    // An empty period is all zeros, not an error.
    let empty = Period {
        since: T0 + 10 * 86_400_000,
        until: T0 + 11 * 86_400_000,
    };
    assert_eq!(store.complaint_report(empty).await.expect("empty").total, 0);
    assert_eq!(store.response_report(empty).await.expect("empty").cases, 0);
    assert_eq!(store.fcr_report(empty).await.expect("empty").rate, None);
    let _ = Timestamp(0);
}

fn to(stage: ComplaintStage) -> StepInput {
    StepInput {
        stage: Some(stage),
        ..Default::default()
    }
}

const DAY: i64 = 86_400_000;

/// Every report of a period as JSON, to compare one way of computing them with another.
async fn all_reports(store: &Store, period: Period) -> serde_json::Value {
    serde_json::json!({
        "complaints": store.complaint_report(period).await.expect("complaints"),
        "times": store.response_report(period).await.expect("times"),
        "pyramid": store.pyramid_report(period).await.expect("pyramid"),
        "fcr": store.fcr_report(period).await.expect("fcr"),
        "matrix": store.service_matrix(period).await.expect("matrix"),
    })
}

/// Six days of cases: the reports read from roll-ups, from the cases, and from a mix of
/// both (after changes the roll-ups have not caught up with) are the same, and the
/// triggers mark exactly the days whose cases changed.
async fn rollups_agree_with_the_cases(store: Store) {
    let (store, clock) = fixed(store);
    let team = store
        .create_team(
            &cli(),
            NewTeam {
                name: "汇总组".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    let mut agents = Vec::new();
    for email in ["r1@example.com", "r2@example.com"] {
        agents.push(
            store
                .create_user(
                    &cli(),
                    NewUser {
                        email: email.into(),
                        name: None,
                        role: Role::Agent,
                        password: None,
                        team_id: Some(team.id.clone()),
                        locale: None,
                    },
                )
                .await
                .expect("agent"),
        );
    }
    store
        .create_sla_policy(
            &cli(),
            SlaPolicySpec {
                name: "默认".into(),
                rank: 1,
                case_kind: None,
                priority: None,
                severity: None,
                first_response_minutes: Some(30),
                next_response_minutes: None,
                resolution_minutes: Some(8 * 60),
                warn_at_percent: None,
                escalate_on_breach: Some(false),
                active: None,
            },
        )
        .await
        .expect("policy");
    let customer = person(&store, "汇总客户").await;
    let first_day = T0.div_euclid(DAY) + 1;
    let mut cases = Vec::new();
    for day in 0..6i64 {
        clock.advance((first_day + day) * DAY + 3 * 3_600_000 - store.now_ms());
        for i in 0..3i64 {
            let agent = &agents[(day + i) as usize % 2];
            let kind = if i == 0 {
                CaseKind::Complaint
            } else {
                CaseKind::Consultation
            };
            let mut new = new_case(&customer, kind, &format!("第{day}天 {i}"));
            new.team_id = Some(team.id.clone());
            new.assignee_id = Some(agent.id.clone());
            let case = store
                .create_case(&actor_of(agent), new)
                .await
                .expect("case");
            if i == 0 {
                store
                    .record_complaint(
                        &actor_of(agent),
                        &case.id,
                        NewComplaint {
                            severity: if day % 2 == 0 {
                                Severity::General
                            } else {
                                Severity::Serious
                            },
                            behaviour: Behaviour::AngryVenting,
                            purpose: Purpose::Accusation,
                            cause: Cause::Service,
                            fault_side: None,
                            fault_detail: Some(FaultDetail::Product),
                            dissatisfaction: Dissatisfaction::Process,
                            needs: None,
                            key_points: "态度差".into(),
                            validity: None,
                            validity_reason: None,
                            product: Some(format!("P-{}", day % 3)),
                            reputation_risk: None,
                            subject_user_id: None,
                        },
                    )
                    .await
                    .expect("complaint");
            }
            clock.advance((10 + 20 * i) * MINUTE);
            if (day + i) % 4 != 3 {
                store
                    .add_message(
                        &actor_of(agent),
                        &case.id,
                        message(MessageKind::Outbound, "您好"),
                    )
                    .await
                    .expect("reply");
            }
            if i == 2 {
                store
                    .change_case_status(&actor_of(agent), &case.id, solved(), None)
                    .await
                    .expect("solve");
                store
                    .record_satisfaction(
                        &actor_of(agent),
                        &case.id,
                        SatisfactionAnswer {
                            score: 1 + day % 5,
                            reason: None,
                        },
                    )
                    .await
                    .expect("csat");
            }
            cases.push(case);
        }
    }
    clock.advance((first_day + 7) * DAY - store.now_ms());
    let periods = [
        // Whole days only.
        Period {
            since: first_day * DAY,
            until: (first_day + 6) * DAY,
        },
        // Partial days at both edges, in UTC+8 terms.
        Period {
            since: first_day * DAY - 8 * 3_600_000 + 4 * 3_600_000,
            until: (first_day + 4) * DAY + 3 * 3_600_000 + 30 * MINUTE,
        },
        // Inside one day.
        Period {
            since: (first_day + 2) * DAY + 3_600_000,
            until: (first_day + 2) * DAY + 5 * 3_600_000,
        },
    ];
    let mut live = Vec::new();
    for period in periods {
        live.push(all_reports(&store, period).await);
    }
    assert_eq!(live[0]["times"]["cases"], 18);
    assert_eq!(live[0]["complaints"]["total"], 6);

    let refreshed = store
        .refresh_reports(std::time::Duration::from_secs(60))
        .await
        .expect("refresh");
    assert_eq!(refreshed.remaining, 0);
    assert!(refreshed.days >= 6, "every day with cases: {refreshed:?}");
    for (period, live) in periods.iter().zip(&live) {
        assert_eq!(&all_reports(&store, *period).await, live, "{period:?}");
    }
    let idle = store
        .refresh_reports(std::time::Duration::from_secs(60))
        .await
        .expect("idle refresh");
    assert_eq!(idle.days, 0, "nothing changed, nothing to do");

    // Changes to cases of day 1: a solve (with its status change), a transfer and a
    // purchase that counts as a repurchase after day 0's and day 1's complaints.
    clock.advance(MINUTE);
    store
        .change_case_status(&actor_of(&agents[0]), &cases[4].id, solved(), None)
        .await
        .expect("late solve");
    store
        .transfer_case(
            &actor_of(&agents[0]),
            &cases[5].id,
            NewTransfer {
                team_id: None,
                assignee_id: Some(agents[0].id.clone()),
                reason: "换人".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    let mixed: Vec<_> = {
        let mut out = Vec::new();
        for period in periods {
            out.push(all_reports(&store, period).await);
        }
        out
    };
    assert_ne!(
        mixed[0], live[0],
        "the change shows at once, before any refresh"
    );
    let dirty = store
        .refresh_reports(std::time::Duration::from_secs(60))
        .await
        .expect("refresh after changes");
    assert_eq!(dirty.days, 1, "only day 1 changed");
    for (period, mixed) in periods.iter().zip(&mixed) {
        assert_eq!(&all_reports(&store, *period).await, mixed, "{period:?}");
    }
    store
        .add_transaction(
            &cli(),
            &customer.id,
            NewTransaction {
                occurred_at: None,
                method: "online".into(),
                amount_cents: 100,
                currency: None,
                description: None,
            },
        )
        .await
        .expect("purchase");
    let bought = all_reports(&store, periods[0]).await;
    let marked = store
        .refresh_reports(std::time::Duration::from_secs(60))
        .await
        .expect("refresh after purchase");
    assert_eq!(marked.days, 6, "the days of the customer's six complaints");
    assert_eq!(all_reports(&store, periods[0]).await, bought);
    let unresolved = &bought["pyramid"]["repurchase"][2];
    assert_eq!(unresolved["complaints"], 6);
    assert_eq!(unresolved["repurchased"], 6);

    // Rebuilding everything from the cases gives the same again.
    store.invalidate_reports().await.expect("invalidate");
    for period in periods {
        let before = all_reports(&store, period).await;
        store
            .refresh_reports(std::time::Duration::from_secs(60))
            .await
            .expect("rebuild");
        assert_eq!(all_reports(&store, period).await, before, "{period:?}");
    }
}
