//! Conformance suite, part six: complaint handling — the record, the core flow, the
//! escalation ladder, authority limits, automatic escalation, first-contact ownership,
//! appeals, promises and their sweep, tracking links and notifications — on SQLite and
//! PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::Timestamp;
use kefu_domain::access::Role;
use kefu_domain::cases::*;
use kefu_domain::complaints::*;
use kefu_domain::timeline::TimelineKind;
use kefu_store::cases::{Case, NewTransfer};
use kefu_store::complaints::*;
use kefu_store::page::PageRequest;
use kefu_store::promises::{NewPromise, PromiseFilter, PromiseUpdate};
use kefu_store::users::{NewTeam, NewUser, User};
use kefu_store::{Actor, Store, StoreError};

kefu_testkit::conformance!(
    a_complaint_is_recorded_on_a_complaint_case,
    recording_refuses_bad_input,
    the_core_flow_closes_the_case_satisfied,
    the_escalation_ladder_ends_in_legal_advice,
    compensation_above_authority_is_refused_whole,
    rule_sets_are_versioned_and_kept_per_complaint,
    automatic_escalation_on_the_textbook_conditions,
    first_contact_owner_stays_through_transfers_and_escalation,
    concurrent_steps_one_wins,
    updates_check_versions_and_escalate,
    appeals_by_the_employee_named,
    promises_and_the_overdue_sweep,
    tracking_links_show_the_public_story_only,
    notifications_belong_to_their_user,
    complaint_list_filters,
    review_findings_hold,
);

// ---------------------------------------------------------------------------------------
// Helpers

fn record(severity: Severity) -> NewComplaint {
    NewComplaint {
        severity,
        behaviour: Behaviour::AngryVenting,
        purpose: Purpose::Accusation,
        cause: Cause::ProductQuality,
        fault_side: None,
        fault_detail: None,
        dissatisfaction: Dissatisfaction::Outcome,
        needs: None,
        key_points: "收到的热水壶漏水，客户要求退货并赔偿".into(),
        validity: None,
        validity_reason: None,
        product: Some("电热水壶 K-200".into()),
        reputation_risk: None,
        subject_user_id: None,
    }
}

fn to(stage: ComplaintStage) -> StepInput {
    StepInput {
        stage: Some(stage),
        ..Default::default()
    }
}

fn noted(stage: ComplaintStage, note: &str) -> StepInput {
    StepInput {
        note: Some(note.into()),
        ..to(stage)
    }
}

fn proposal(amount_cents: Option<i64>) -> StepInput {
    StepInput {
        proposal: Some("换新并补偿运费".into()),
        compensation: amount_cents.map(|amount_cents| CompensationOffer {
            amount_cents,
            currency: None,
            description: Some("运费补偿".into()),
        }),
        ..to(ComplaintStage::SolutionProposed)
    }
}

async fn complaint_case(store: &Store, actor: &Actor) -> Case {
    let customer = person(store, "投诉客户").await;
    open_case(store, actor, &customer, CaseKind::Complaint, "热水壶漏水").await
}

async fn step(store: &Store, actor: &Actor, case: &Case, input: StepInput) -> ComplaintDetail {
    let target = input.stage;
    store
        .complaint_step(actor, &case.id, input, None)
        .await
        .unwrap_or_else(|e| panic!("step to {target:?}: {e:?}"))
}

async fn notifications_of(store: &Store, user: &User) -> Vec<kefu_store::promises::Notification> {
    walk(100, async |p| {
        store.notifications(user.key, false, &p).await
    })
    .await
}

fn stages(detail: &ComplaintDetail) -> Vec<ComplaintStage> {
    detail.steps.iter().map(|s| s.to).collect()
}

async fn team_with(store: &Store, name: &str, members: &[(&str, Role)]) -> (String, Vec<User>) {
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
    let mut users = Vec::new();
    for (email, role) in members {
        users.push(
            store
                .create_user(
                    &cli(),
                    NewUser {
                        email: (*email).into(),
                        name: None,
                        role: *role,
                        password: None,
                        team_id: Some(team.id.clone()),
                        locale: None,
                    },
                )
                .await
                .expect("member"),
        );
    }
    (team.id, users)
}

// ---------------------------------------------------------------------------------------
// Tests

async fn a_complaint_is_recorded_on_a_complaint_case(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let customer = person(&store, "王芳").await;
    let question = open_case(
        &store,
        &actor_of(&agent),
        &customer,
        CaseKind::Consultation,
        "问价",
    )
    .await;
    expect_conflict(
        store
            .record_complaint(&actor_of(&agent), &question.id, record(Severity::General))
            .await,
        "not_a_complaint",
    );
    let case = open_case(
        &store,
        &actor_of(&agent),
        &customer,
        CaseKind::Complaint,
        "漏水",
    )
    .await;
    let detail = store
        .record_complaint(&actor_of(&agent), &case.id, record(Severity::General))
        .await
        .expect("record");
    let c = &detail.complaint;
    assert_eq!(c.stage, ComplaintStage::Recorded);
    assert_eq!(
        c.allowed_next,
        vec![
            ComplaintStage::InformationNeeded,
            ComplaintStage::AuthorityCheck,
            ComplaintStage::InternalReview
        ]
    );
    assert_eq!(c.fault_side, FaultSide::Undetermined);
    assert_eq!(c.validity, Validity::Pending);
    // Angry venting over a money loss: vent, compensation, resolution, respect.
    assert_eq!(
        c.needs,
        vec![
            Need::Vent,
            Need::Compensation,
            Need::Resolution,
            Need::Respect
        ]
    );
    assert_eq!(detail.needs_labels[0].zh, "发泄");
    assert_eq!(c.rule_set_version, 1);
    assert_eq!(c.escalation_level, 0);
    assert_eq!(c.first_owner_id.as_deref(), Some(agent.id.as_str()));
    assert_eq!(c.case_number, case.number);
    assert_eq!(stages(&detail), vec![ComplaintStage::Recorded]);
    assert_eq!(detail.steps[0].actor, "agent@example.com");
    let timeline = timeline_of(&store, &customer.id).await;
    assert!(
        timeline
            .iter()
            .any(|e| e.kind == TimelineKind::Complaint && e.summary.contains("投诉受理")),
        "{timeline:#?}"
    );
    let audit = audit_of(&store, "complaint", &case.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    assert_eq!(
        store
            .complaint(&case.id)
            .await
            .expect("get")
            .complaint
            .version,
        c.version
    );
    expect_conflict(
        store
            .record_complaint(&actor_of(&agent), &case.id, record(Severity::General))
            .await,
        "duplicate",
    );
    expect_not_found(store.complaint(&question.id).await, "complaint");
}

async fn recording_refuses_bad_input(store: Store) {
    let (store, _clock) = fixed(store);
    let case = complaint_case(&store, &cli()).await;
    let before = audit_count(&store).await;
    expect_invalid(
        store
            .record_complaint(
                &cli(),
                &case.id,
                NewComplaint {
                    key_points: "  ".into(),
                    ..record(Severity::General)
                },
            )
            .await,
        "key_points",
    );
    expect_invalid(
        store
            .record_complaint(
                &cli(),
                &case.id,
                NewComplaint {
                    validity: Some(Validity::Valid),
                    ..record(Severity::General)
                },
            )
            .await,
        "validity_reason",
    );
    expect_invalid(
        store
            .record_complaint(
                &cli(),
                &case.id,
                NewComplaint {
                    fault_side: Some(FaultSide::Company),
                    fault_detail: Some(FaultDetail::Misuse),
                    ..record(Severity::General)
                },
            )
            .await,
        "fault_detail",
    );
    expect_invalid(
        store
            .record_complaint(
                &cli(),
                &case.id,
                NewComplaint {
                    subject_user_id: Some("0190a0b0-0000-7000-8000-000000000000".into()),
                    ..record(Severity::General)
                },
            )
            .await,
        "subject_user_id",
    );
    expect_not_found(
        store
            .record_complaint(&cli(), "not-a-case", record(Severity::General))
            .await,
        "case",
    );
    assert_eq!(audit_count(&store).await, before, "nothing half-written");
    expect_not_found(store.complaint(&case.id).await, "complaint");
    // A detail implies its side.
    let detail = store
        .record_complaint(
            &cli(),
            &case.id,
            NewComplaint {
                fault_detail: Some(FaultDetail::ExcessiveExpectations),
                ..record(Severity::General)
            },
        )
        .await
        .expect("record");
    assert_eq!(detail.complaint.fault_side, FaultSide::Customer);
}

async fn the_core_flow_closes_the_case_satisfied(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let me = actor_of(&agent);
    let case = complaint_case(&store, &me).await;
    store
        .record_complaint(&me, &case.id, record(Severity::General))
        .await
        .expect("record");
    clock.advance(60_000);
    let asked = step(
        &store,
        &me,
        &case,
        noted(ComplaintStage::InformationNeeded, "请客户提供订单号和照片"),
    )
    .await;
    assert_eq!(asked.complaint.stage, ComplaintStage::InformationNeeded);
    step(&store, &me, &case, to(ComplaintStage::AuthorityCheck)).await;
    let offered = step(&store, &me, &case, proposal(Some(2000))).await;
    assert_eq!(offered.compensations.len(), 1);
    assert_eq!(offered.compensations[0].status, "offered");
    assert_eq!(offered.compensations[0].currency, "CNY");
    let acting = step(&store, &me, &case, to(ComplaintStage::InAction)).await;
    assert_eq!(acting.compensations[0].status, "accepted");
    expect_invalid(
        store
            .complaint_step(&me, &case.id, to(ComplaintStage::FollowUp), None)
            .await,
        "note",
    );
    step(
        &store,
        &me,
        &case,
        noted(ComplaintStage::FollowUp, "新品已寄出"),
    )
    .await;
    clock.advance(60_000);
    let closed = step(&store, &me, &case, to(ComplaintStage::Closed)).await;
    assert_eq!(
        stages(&closed),
        vec![
            ComplaintStage::Recorded,
            ComplaintStage::InformationNeeded,
            ComplaintStage::AuthorityCheck,
            ComplaintStage::SolutionProposed,
            ComplaintStage::InAction,
            ComplaintStage::FollowUp,
            ComplaintStage::Closed
        ]
    );
    assert!(closed.complaint.allowed_next.is_empty());
    assert_eq!(closed.complaint.resolved_at, Some(Timestamp(T0 + 120_000)));
    assert_eq!(closed.complaint.escalation_level, 0);
    assert_eq!(closed.steps[3].proposal.as_deref(), Some("换新并补偿运费"));
    let case = store.case(&case.id).await.expect("case");
    assert_eq!(
        case.status,
        CaseStatus::Solved,
        "a satisfied close solves the case"
    );
    let changes = store.status_changes(&case.id).await.expect("history");
    assert_eq!(changes.last().expect("change").to, CaseStatus::Solved);
    let complaint_entries = timeline_of(&store, &case.customer_id)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Complaint)
        .count();
    assert_eq!(
        complaint_entries, 7,
        "every step is on the customer timeline"
    );
    assert_eq!(
        audit_of(&store, "complaint", &case.id).await.len(),
        7,
        "the record and six steps"
    );
    expect_transition_refused(
        store
            .complaint_step(&me, &case.id, to(ComplaintStage::InternalReview), None)
            .await,
        "closed",
        "internal_review",
    );
}

async fn the_escalation_ladder_ends_in_legal_advice(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let (me, sup) = (actor_of(&agent), actor_of(&boss));
    let case = complaint_case(&store, &me).await;
    store
        .record_complaint(&me, &case.id, record(Severity::General))
        .await
        .expect("record");
    step(&store, &me, &case, to(ComplaintStage::AuthorityCheck)).await;
    step(&store, &me, &case, proposal(Some(1000))).await;
    let rejected = step(
        &store,
        &me,
        &case,
        noted(ComplaintStage::InternalReview, "客户认为补偿太少"),
    )
    .await;
    let c = &rejected.complaint;
    assert_eq!(c.stage, ComplaintStage::InternalReview);
    assert_eq!(c.escalation_level, 1);
    assert_eq!(
        c.escalation_trigger,
        Some(EscalationTrigger::CustomerRejected)
    );
    assert_eq!(rejected.compensations[0].status, "rejected");
    assert_eq!(rejected.reviews.len(), 1);
    assert_eq!(rejected.reviews[0].level, "internal");
    assert_eq!(
        store.case(&case.id).await.expect("case").priority,
        Priority::Urgent
    );
    let told = notifications_of(&store, &boss).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, "complaint_escalated");
    assert!(
        told[0].message_zh.contains("内部评审"),
        "{}",
        told[0].message_zh
    );
    // Deciding a review takes a supervisor.
    let decision = StepInput {
        decision: Some("全额退款".into()),
        compensation: Some(CompensationOffer {
            amount_cents: 30_000,
            currency: Some("CNY".into()),
            description: None,
        }),
        ..to(ComplaintStage::ReviewProposed)
    };
    expect_conflict(
        store
            .complaint_step(&me, &case.id, decision.clone(), None)
            .await,
        "role_required",
    );
    let proposed = step(&store, &sup, &case, decision).await;
    assert_eq!(proposed.reviews[0].decision.as_deref(), Some("全额退款"));
    assert!(proposed.reviews[0].decided_at.is_some());
    // External review names its body.
    expect_invalid(
        store
            .complaint_step(&sup, &case.id, to(ComplaintStage::ExternalReview), None)
            .await,
        "body",
    );
    let external = StepInput {
        body: Some(ExternalBody {
            kind: ReviewBody::ConsumerOrganisation,
            name: "上海市消费者权益保护委员会".into(),
            reference: "SH-2026-0042".into(),
        }),
        ..to(ComplaintStage::ExternalReview)
    };
    assert!(
        notifications_of(&store, &agent).await.is_empty(),
        "the first owner escalated it themself: nothing to tell them"
    );
    let outside = step(&store, &sup, &case, external).await;
    assert_eq!(outside.complaint.escalation_level, 2);
    // The supervisor took it further: the first-contact owner (首问负责人) is told.
    let owner_told = notifications_of(&store, &agent).await;
    assert_eq!(owner_told.len(), 1);
    assert_eq!(owner_told[0].kind, "complaint_escalated");
    assert!(
        owner_told[0].message_zh.contains("首问负责人")
            && owner_told[0].message_zh.contains("外部评审"),
        "{}",
        owner_told[0].message_zh
    );
    assert_eq!(outside.reviews.len(), 2);
    assert_eq!(
        outside.reviews[0].accepted,
        Some(false),
        "the customer refused"
    );
    assert_eq!(
        outside.reviews[1].body.as_ref().expect("body").reference,
        "SH-2026-0042"
    );
    assert_eq!(outside.compensations[1].status, "rejected");
    expect_invalid(
        store
            .complaint_step(
                &sup,
                &case.id,
                StepInput {
                    decision: Some("维持原结论".into()),
                    ..to(ComplaintStage::LegalAdvised)
                },
                None,
            )
            .await,
        "note",
    );
    let ended = step(
        &store,
        &sup,
        &case,
        StepInput {
            decision: Some("维持原结论".into()),
            note: Some("已告知客户可向人民法院起诉".into()),
            ..to(ComplaintStage::LegalAdvised)
        },
    )
    .await;
    assert_eq!(ended.complaint.stage, ComplaintStage::LegalAdvised);
    assert_eq!(ended.complaint.escalation_level, 3);
    assert_eq!(
        ended.complaint.escalation_trigger,
        Some(EscalationTrigger::CustomerRejected),
        "the reason the complaint climbed stays"
    );
    assert_eq!(ended.reviews[1].accepted, Some(false));
    assert_eq!(ended.reviews[1].decision.as_deref(), Some("维持原结论"));
    assert!(ended.complaint.resolved_at.is_some());
    assert_eq!(
        store.case(&case.id).await.expect("case").status,
        CaseStatus::Solved
    );
}

async fn compensation_above_authority_is_refused_whole(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let case = complaint_case(&store, &actor_of(&agent)).await;
    store
        .record_complaint(&actor_of(&agent), &case.id, record(Severity::General))
        .await
        .expect("record");
    let checked = step(
        &store,
        &actor_of(&agent),
        &case,
        to(ComplaintStage::AuthorityCheck),
    )
    .await;
    let audits = audit_count(&store).await;
    let refused = store
        .complaint_step(&actor_of(&agent), &case.id, proposal(Some(60_000)), None)
        .await;
    match &refused {
        Err(StoreError::Conflict {
            code: "authority_exceeded",
            message,
            ..
        }) => {
            assert!(message.contains("50000"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let after = store.complaint(&case.id).await.expect("complaint");
    assert_eq!(after.complaint.version, checked.complaint.version);
    assert_eq!(after.complaint.stage, ComplaintStage::AuthorityCheck);
    assert!(after.compensations.is_empty());
    assert_eq!(audit_count(&store).await, audits, "nothing half-applied");
    // The supervisor may; so may the agent after escalating and a supervisor deciding.
    let offered = step(&store, &actor_of(&boss), &case, proposal(Some(60_000))).await;
    assert_eq!(offered.compensations[0].amount_cents, 60_000);
    expect_invalid(
        store
            .complaint_step(
                &actor_of(&agent),
                &case.id,
                {
                    let mut p = proposal(Some(0));
                    p.stage = Some(ComplaintStage::InAction);
                    p.proposal = None;
                    p
                },
                None,
            )
            .await,
        "compensation.amount_cents",
    );
}

async fn rule_sets_are_versioned_and_kept_per_complaint(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let admin = user(&store, "admin@example.com", Role::Admin).await;
    let me = actor_of(&agent);
    let first = complaint_case(&store, &me).await;
    store
        .record_complaint(&me, &first.id, record(Severity::General))
        .await
        .expect("record");
    expect_invalid(
        store
            .publish_rules(
                &actor_of(&admin),
                NewRuleSet {
                    rules: ComplaintRules {
                        supervisor_compensation_limit_cents: 1,
                        ..ComplaintRules::default()
                    },
                    note: "bad".into(),
                    based_on_version: None,
                },
            )
            .await,
        "supervisor_compensation_limit_cents",
    );
    let v2 = store
        .publish_rules(
            &actor_of(&admin),
            NewRuleSet {
                rules: ComplaintRules {
                    agent_compensation_limit_cents: 100_000,
                    ..ComplaintRules::default()
                },
                note: "一线权限提高到一千元".into(),
                based_on_version: None,
            },
        )
        .await
        .expect("publish");
    assert_eq!(v2.version, 2);
    assert_eq!(v2.created_by.as_deref(), Some(admin.id.as_str()));
    // Rules edited from version 1 would silently undo version 2: refused, nothing written.
    expect_conflict(
        store
            .publish_rules(
                &actor_of(&admin),
                NewRuleSet {
                    rules: ComplaintRules::default(),
                    note: "从旧版本改".into(),
                    based_on_version: Some(1),
                },
            )
            .await,
        "rule_set_changed",
    );
    assert_eq!(store.complaint_rules().await.expect("rules").version, 2);
    let versions: Vec<i64> = store
        .rule_sets()
        .await
        .expect("versions")
        .iter()
        .map(|r| r.version)
        .collect();
    assert_eq!(versions, vec![2, 1]);
    // The first complaint keeps version 1 and its limit.
    step(&store, &me, &first, to(ComplaintStage::AuthorityCheck)).await;
    expect_conflict(
        store
            .complaint_step(&me, &first.id, proposal(Some(60_000)), None)
            .await,
        "authority_exceeded",
    );
    let second = complaint_case(&store, &me).await;
    let detail = store
        .record_complaint(&me, &second.id, record(Severity::General))
        .await
        .expect("record");
    assert_eq!(detail.complaint.rule_set_version, 2);
    step(&store, &me, &second, to(ComplaintStage::AuthorityCheck)).await;
    step(&store, &me, &second, proposal(Some(60_000))).await;
    assert_eq!(
        audit_of(&store, "complaint_rules", "2").await[0].action,
        "publish"
    );
}

async fn automatic_escalation_on_the_textbook_conditions(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let me = actor_of(&agent);
    // Serious: straight to internal review, by kefu, with the reason.
    let serious = complaint_case(&store, &me).await;
    let detail = store
        .record_complaint(&me, &serious.id, record(Severity::Serious))
        .await
        .expect("record");
    assert_eq!(detail.complaint.stage, ComplaintStage::InternalReview);
    assert_eq!(
        detail.complaint.escalation_trigger,
        Some(EscalationTrigger::SeriousSeverity)
    );
    assert_eq!(detail.steps[1].actor, "system");
    assert_eq!(
        detail.steps[1].trigger,
        Some(EscalationTrigger::SeriousSeverity)
    );
    assert!(detail.steps[1].note.contains("严重投诉"));
    assert_eq!(
        store.case(&serious.id).await.expect("case").priority,
        Priority::Urgent
    );
    let actions: Vec<String> = audit_of(&store, "complaint", &serious.id)
        .await
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert_eq!(actions, vec!["escalate", "create"]);
    // Reputation risk.
    let risky = complaint_case(&store, &me).await;
    let detail = store
        .record_complaint(
            &me,
            &risky.id,
            NewComplaint {
                reputation_risk: Some(true),
                behaviour: Behaviour::NegativePublicity,
                ..record(Severity::General)
            },
        )
        .await
        .expect("record");
    assert_eq!(
        detail.complaint.escalation_trigger,
        Some(EscalationTrigger::ReputationRisk)
    );
    // Several teams.
    let (sales, _) = team_with(&store, "销售部", &[]).await;
    let (repair, _) = team_with(&store, "维修部", &[]).await;
    let customer = person(&store, "多部门").await;
    let mut new = new_case(&customer, CaseKind::Complaint, "多部门");
    new.team_id = Some(sales.clone());
    let travelled = store.create_case(&me, new).await.expect("case");
    store
        .transfer_case(
            &me,
            &travelled.id,
            NewTransfer {
                team_id: Some(repair),
                assignee_id: None,
                reason: "需要维修部处理".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    let detail = store
        .record_complaint(&me, &travelled.id, record(Severity::General))
        .await
        .expect("record");
    assert_eq!(
        detail.complaint.escalation_trigger,
        Some(EscalationTrigger::SeveralTeams)
    );
    // Rules can turn it off.
    store
        .publish_rules(
            &cli(),
            NewRuleSet {
                rules: ComplaintRules {
                    escalate_serious: false,
                    ..ComplaintRules::default()
                },
                note: "严重投诉先由一线处理".into(),
                based_on_version: None,
            },
        )
        .await
        .expect("publish");
    let calm = complaint_case(&store, &me).await;
    let detail = store
        .record_complaint(&me, &calm.id, record(Severity::Serious))
        .await
        .expect("record");
    assert_eq!(detail.complaint.stage, ComplaintStage::Recorded);
}

async fn first_contact_owner_stays_through_transfers_and_escalation(store: Store) {
    let (store, _clock) = fixed(store);
    let (_, front) = team_with(&store, "前台", &[("first@example.com", Role::Agent)]).await;
    let (back, back_members) =
        team_with(&store, "后台", &[("second@example.com", Role::Agent)]).await;
    let first = &front[0];
    let case = complaint_case(&store, &actor_of(first)).await;
    store
        .record_complaint(&actor_of(first), &case.id, record(Severity::General))
        .await
        .expect("record");
    store
        .transfer_case(
            &actor_of(first),
            &case.id,
            NewTransfer {
                team_id: Some(back),
                assignee_id: Some(back_members[0].id.clone()),
                reason: "转后台".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    let escalated = step(
        &store,
        &actor_of(&back_members[0]),
        &case,
        noted(ComplaintStage::InternalReview, "需要主管决定"),
    )
    .await;
    assert_eq!(
        escalated.complaint.first_owner_id.as_deref(),
        Some(first.id.as_str())
    );
    assert_eq!(
        escalated.complaint.assignee_id.as_deref(),
        Some(back_members[0].id.as_str())
    );
    let mine = walk(50, async |p| {
        store
            .complaints(
                &ComplaintFilter {
                    first_owner_id: Some(first.id.clone()),
                    ..Default::default()
                },
                &p,
            )
            .await
    })
    .await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].case_id, case.id);
}

async fn concurrent_steps_one_wins(store: Store) {
    let (store, _clock) = fixed(store);
    let case = complaint_case(&store, &cli()).await;
    store
        .record_complaint(&cli(), &case.id, record(Severity::General))
        .await
        .expect("record");
    let racer = |store: Store, id: String| {
        tokio::spawn(async move {
            store
                .complaint_step(&cli(), &id, to(ComplaintStage::AuthorityCheck), None)
                .await
        })
    };
    let first = racer(store.clone(), case.id.clone());
    let second = racer(store.clone(), case.id.clone());
    let (a, b) = (first.await.expect("task"), second.await.expect("task"));
    let (won, lost) = match (a, b) {
        (Ok(won), Err(lost)) | (Err(lost), Ok(won)) => (won, lost),
        other => panic!("exactly one must win: {other:?}"),
    };
    assert_eq!(won.complaint.stage, ComplaintStage::AuthorityCheck);
    expect_transition_refused::<()>(Err(lost), "authority_check", "authority_check");
    let detail = store.complaint(&case.id).await.expect("complaint");
    assert_eq!(detail.steps.len(), 2);
}

async fn updates_check_versions_and_escalate(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let named = user(&store, "named@example.com", Role::Agent).await;
    let me = actor_of(&agent);
    let case = complaint_case(&store, &me).await;
    let detail = store
        .record_complaint(&me, &case.id, record(Severity::General))
        .await
        .expect("record");
    let version = detail.complaint.version;
    let patched = store
        .update_complaint(
            &me,
            &case.id,
            ComplaintPatch {
                validity: Some(Validity::Valid),
                validity_reason: Some("照片显示壶底开裂".into()),
                fault_detail: Some(Some(FaultDetail::Product)),
                subject_user_id: Some(Some(named.id.clone())),
                ..Default::default()
            },
            Some(version),
        )
        .await
        .expect("patch");
    assert_eq!(patched.complaint.fault_side, FaultSide::Company);
    assert_eq!(patched.complaint.validity, Validity::Valid);
    assert_eq!(
        patched.complaint.subject_user_id.as_deref(),
        Some(named.id.as_str())
    );
    assert_eq!(patched.complaint.version, version + 1);
    let told = notifications_of(&store, &named).await;
    assert_eq!(told.len(), 1);
    assert_eq!(told[0].kind, "complaint_names_you");
    assert!(told[0].message_zh.contains("壶"), "the facts go with it");
    expect_version_mismatch(
        store
            .update_complaint(&me, &case.id, ComplaintPatch::default(), Some(version))
            .await,
        "complaint",
        version,
        version + 1,
    );
    let raised = store
        .update_complaint(
            &me,
            &case.id,
            ComplaintPatch {
                severity: Some(Severity::Serious),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("raise");
    assert_eq!(raised.complaint.stage, ComplaintStage::InternalReview);
    assert_eq!(
        raised.complaint.escalation_trigger,
        Some(EscalationTrigger::SeriousSeverity)
    );
}

async fn appeals_by_the_employee_named(store: Store) {
    let (store, _clock) = fixed(store);
    let named = user(&store, "named@example.com", Role::Agent).await;
    let other = user(&store, "other@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let case = complaint_case(&store, &actor_of(&other)).await;
    store
        .record_complaint(
            &actor_of(&other),
            &case.id,
            NewComplaint {
                subject_user_id: Some(named.id.clone()),
                cause: Cause::Service,
                ..record(Severity::General)
            },
        )
        .await
        .expect("record");
    assert_eq!(notifications_of(&store, &named).await.len(), 1);
    let appeal = NewAppeal {
        statement: "当时客户情绪激动，我按规定解释了退货政策".into(),
    };
    expect_conflict(
        store
            .file_appeal(&actor_of(&other), &case.id, appeal.clone())
            .await,
        "not_the_subject",
    );
    let filed = store
        .file_appeal(&actor_of(&named), &case.id, appeal.clone())
        .await
        .expect("appeal");
    assert_eq!(filed.status, AppealStatus::Pending);
    assert_eq!(filed.employee_id, named.id);
    expect_conflict(
        store.file_appeal(&actor_of(&named), &case.id, appeal).await,
        "duplicate",
    );
    assert_eq!(store.pending_appeals().await.expect("pending").len(), 1);
    assert_eq!(
        notifications_of(&store, &boss).await[0].kind,
        "appeal_filed"
    );
    let decision = AppealDecision {
        status: AppealStatus::Upheld,
        reason: "录音证实员工按规程处理".into(),
    };
    expect_conflict(
        store
            .decide_appeal(&actor_of(&named), &filed.id, decision.clone())
            .await,
        "role_required",
    );
    expect_invalid(
        store
            .decide_appeal(
                &actor_of(&boss),
                &filed.id,
                AppealDecision {
                    reason: " ".into(),
                    ..decision.clone()
                },
            )
            .await,
        "reason",
    );
    let received = |store: Store, id: String| async move {
        store
            .assess_stress(&id)
            .await
            .expect("stress")
            .facts
            .complaints_received
    };
    assert_eq!(received(store.clone(), named.id.clone()).await, 1);
    let decided = store
        .decide_appeal(&actor_of(&boss), &filed.id, decision.clone())
        .await
        .expect("decide");
    assert_eq!(decided.status, AppealStatus::Upheld);
    assert_eq!(
        received(store.clone(), named.id.clone()).await,
        0,
        "a complaint cleared by appeal no longer weighs on the employee"
    );
    assert_eq!(decided.decided_by.as_deref(), Some(boss.id.as_str()));
    let told = notifications_of(&store, &named).await;
    assert_eq!(told[0].kind, "appeal_decided");
    assert!(told[0].message_zh.contains("申诉成立"));
    expect_transition_refused(
        store
            .decide_appeal(&actor_of(&boss), &filed.id, decision)
            .await,
        "upheld",
        "upheld",
    );
    assert!(store.pending_appeals().await.expect("pending").is_empty());
    let cleared = store.complaint(&case.id).await.expect("complaint");
    assert_eq!(cleared.appeals.len(), 1);
    assert!(
        cleared.complaint.subject_cleared_at.is_some(),
        "an upheld appeal clears the employee"
    );
    assert_eq!(
        cleared.complaint.subject_user_id.as_deref(),
        Some(named.id.as_str()),
        "who was named stays on the record"
    );
    // A decision is final: no second appeal on the same complaint.
    expect_conflict(
        store
            .file_appeal(
                &actor_of(&named),
                &case.id,
                NewAppeal {
                    statement: "再次申诉".into(),
                },
            )
            .await,
        "appeal_decided",
    );
    assert_eq!(
        store
            .complaint(&case.id)
            .await
            .expect("complaint")
            .appeals
            .len(),
        1,
        "nothing was written"
    );
}

async fn promises_and_the_overdue_sweep(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let me = actor_of(&agent);
    let case = complaint_case(&store, &me).await;
    let hour = 3_600_000;
    expect_invalid(
        store
            .add_promise(
                &me,
                &case.id,
                NewPromise {
                    description: "明天回电".into(),
                    due_at: Timestamp(T0 - 1),
                    owner_id: None,
                },
            )
            .await,
        "due_at",
    );
    let soon = store
        .add_promise(
            &me,
            &case.id,
            NewPromise {
                description: "两小时内回电告知处理结果".into(),
                due_at: Timestamp(T0 + 2 * hour),
                owner_id: None,
            },
        )
        .await
        .expect("promise");
    let later = store
        .add_promise(
            &me,
            &case.id,
            NewPromise {
                description: "三天内寄出新品".into(),
                due_at: Timestamp(T0 + 72 * hour),
                owner_id: Some(boss.id.clone()),
            },
        )
        .await
        .expect("promise");
    assert_eq!(soon.owner_id, agent.id);
    assert!(!soon.overdue);
    assert_eq!(store.sweep_promises().await.expect("sweep").alerted, 0);
    clock.advance(3 * hour);
    let overdue = walk(10, async |p| {
        store
            .promises(
                &PromiseFilter {
                    overdue: true,
                    ..Default::default()
                },
                &p,
            )
            .await
    })
    .await;
    assert_eq!(overdue.len(), 1);
    assert_eq!(overdue[0].id, soon.id);
    assert!(overdue[0].overdue);
    assert_eq!(store.sweep_promises().await.expect("sweep").alerted, 1);
    assert_eq!(
        store.sweep_promises().await.expect("again").alerted,
        0,
        "an alert is raised once"
    );
    let agent_told = notifications_of(&store, &agent).await;
    assert_eq!(agent_told.len(), 1);
    assert_eq!(agent_told[0].kind, "promise_overdue");
    assert!(agent_told[0].message_zh.contains("逾期"));
    assert_eq!(
        notifications_of(&store, &boss).await.len(),
        1,
        "the supervisor too"
    );
    let kept = store
        .settle_promise(
            &me,
            &soon.id,
            PromiseUpdate {
                status: PromiseStatus::Kept,
                note: Some("已回电".into()),
            },
            Some(soon.version),
        )
        .await
        .expect("kept");
    assert_eq!(kept.status, PromiseStatus::Kept);
    assert!(!kept.overdue);
    expect_transition_refused(
        store
            .settle_promise(
                &me,
                &soon.id,
                PromiseUpdate {
                    status: PromiseStatus::Broken,
                    note: None,
                },
                None,
            )
            .await,
        "kept",
        "broken",
    );
    expect_version_mismatch(
        store
            .settle_promise(
                &me,
                &later.id,
                PromiseUpdate {
                    status: PromiseStatus::Cancelled,
                    note: None,
                },
                Some(7),
            )
            .await,
        "promise",
        7,
        1,
    );
    let listed = store.case_promises(&case.id).await.expect("list");
    assert_eq!(listed.len(), 2);
    assert!(
        timeline_of(&store, &case.customer_id)
            .await
            .iter()
            .filter(|e| e.kind == TimelineKind::Promise)
            .count()
            == 3
    );
}

async fn tracking_links_show_the_public_story_only(store: Store) {
    let (store, _clock) = fixed(store);
    let case = complaint_case(&store, &cli()).await;
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::InternalNote, "内部：这位客户上次也投诉过"),
        )
        .await
        .expect("note");
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Outbound, "您好，我们已收到您的投诉"),
        )
        .await
        .expect("reply");
    store
        .record_complaint(&cli(), &case.id, record(Severity::General))
        .await
        .expect("record");
    let link = store.tracking_link(&cli(), &case.id).await.expect("link");
    assert!(link.token.len() >= 32, "unguessable");
    assert_eq!(link.path, format!("/track/{}", link.token));
    assert_eq!(
        store
            .tracking_link(&cli(), &case.id)
            .await
            .expect("again")
            .token,
        link.token
    );
    let seen = store.track(&link.token).await.expect("track");
    assert_eq!(seen.number, case.number);
    assert_eq!(seen.complaint_stage.as_ref().expect("stage").zh, "受理登记");
    let bodies: Vec<&str> = seen
        .events
        .iter()
        .filter_map(|e| e.body.as_deref())
        .collect();
    assert!(bodies.contains(&"您好，我们已收到您的投诉"));
    assert!(!bodies.iter().any(|b| b.contains("内部")), "{bodies:?}");
    let json = serde_json::to_string(&seen).expect("json");
    assert!(!json.contains("内部"), "no internal note anywhere: {json}");
    assert!(!json.contains("key_points") && !json.contains("热水壶漏水，客户要求"));
    expect_not_found(store.track("guess").await, "tracking link");
    expect_not_found(store.track("").await, "tracking link");
    expect_not_found(store.track("<script>").await, "tracking link");
    store
        .revoke_tracking_link(&cli(), &case.id)
        .await
        .expect("revoke");
    expect_not_found(store.track(&link.token).await, "tracking link");
    let fresh = store.tracking_link(&cli(), &case.id).await.expect("new");
    assert_ne!(fresh.token, link.token);
}

async fn notifications_belong_to_their_user(store: Store) {
    let (store, _clock) = fixed(store);
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let other = user(&store, "other@example.com", Role::Agent).await;
    let case = complaint_case(&store, &cli()).await;
    store
        .record_complaint(&cli(), &case.id, record(Severity::Serious))
        .await
        .expect("record");
    let mine = notifications_of(&store, &boss).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0].case_number, Some(case.number));
    expect_not_found(
        store.mark_notification_read(other.key, &mine[0].id).await,
        "notification",
    );
    store
        .mark_notification_read(boss.key, &mine[0].id)
        .await
        .expect("read");
    let unread = store
        .notifications(boss.key, true, &PageRequest::default())
        .await
        .expect("unread");
    assert!(unread.items.is_empty());
    assert!(notifications_of(&store, &boss).await[0].read_at.is_some());
}

async fn complaint_list_filters(store: Store) {
    let (store, _clock) = fixed(store);
    for (severity, cause) in [
        (Severity::General, Cause::Price),
        (Severity::Serious, Cause::Service),
        (Severity::General, Cause::Service),
    ] {
        let case = complaint_case(&store, &cli()).await;
        store
            .record_complaint(
                &cli(),
                &case.id,
                NewComplaint {
                    cause,
                    ..record(severity)
                },
            )
            .await
            .expect("record");
    }
    let count = |filter: ComplaintFilter| {
        let store = store.clone();
        async move {
            walk(1, async |p| store.complaints(&filter, &p).await)
                .await
                .len()
        }
    };
    assert_eq!(count(ComplaintFilter::default()).await, 3);
    assert_eq!(
        count(ComplaintFilter {
            cause: Some(Cause::Service),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(ComplaintFilter {
            min_escalation_level: Some(1),
            ..Default::default()
        })
        .await,
        1
    );
    assert_eq!(
        count(ComplaintFilter {
            stage: Some(ComplaintStage::Recorded),
            open: Some(true),
            ..Default::default()
        })
        .await,
        2
    );
    assert_eq!(
        count(ComplaintFilter {
            open: Some(false),
            ..Default::default()
        })
        .await,
        0
    );
}

async fn review_findings_hold(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let named = user(&store, "named@example.com", Role::Agent).await;
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    let me = actor_of(&agent);
    // Two different steps from the same stage: with `from`, the second is refused.
    let case = complaint_case(&store, &me).await;
    store
        .record_complaint(
            &me,
            &case.id,
            NewComplaint {
                subject_user_id: Some(named.id.clone()),
                ..record(Severity::General)
            },
        )
        .await
        .expect("record");
    let from_recorded = |stage: ComplaintStage| StepInput {
        from: Some(ComplaintStage::Recorded),
        note: Some("x".into()),
        ..to(stage)
    };
    step(
        &store,
        &me,
        &case,
        from_recorded(ComplaintStage::AuthorityCheck),
    )
    .await;
    match store
        .complaint_step(
            &me,
            &case.id,
            from_recorded(ComplaintStage::InternalReview),
            None,
        )
        .await
    {
        Err(StoreError::Invalid(kefu_domain::DomainError::TransitionNotAllowed {
            field: "from",
            ..
        })) => {}
        other => panic!("{other:?}"),
    }
    // The limit is on the total offered: two offers of 30,000 make 60,000 > 50,000.
    step(&store, &me, &case, proposal(Some(30_000))).await;
    expect_conflict(
        store
            .complaint_step(
                &me,
                &case.id,
                StepInput {
                    compensation: Some(CompensationOffer {
                        amount_cents: 30_000,
                        currency: None,
                        description: None,
                    }),
                    ..to(ComplaintStage::InAction)
                },
                None,
            )
            .await,
        "authority_exceeded",
    );
    // The named employee cannot clear their name nor judge the complaint; an agent
    // cannot move it to someone else; a supervisor can.
    for patch in [
        ComplaintPatch {
            subject_user_id: Some(None),
            ..Default::default()
        },
        ComplaintPatch {
            validity: Some(Validity::Invalid),
            validity_reason: Some("不是我".into()),
            ..Default::default()
        },
    ] {
        expect_conflict(
            store
                .update_complaint(&actor_of(&named), &case.id, patch, None)
                .await,
            "role_required",
        );
    }
    let reassign = ComplaintPatch {
        subject_user_id: Some(Some(agent.id.clone())),
        ..Default::default()
    };
    expect_conflict(
        store
            .update_complaint(&me, &case.id, reassign.clone(), None)
            .await,
        "role_required",
    );
    // A deactivated employee stays on the record, and the record stays editable.
    store
        .update_user(
            &cli(),
            &named.id,
            kefu_store::users::UserPatch {
                active: Some(false),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("deactivate");
    store
        .update_complaint(
            &me,
            &case.id,
            ComplaintPatch {
                product: Some("K-300".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("edit after deactivation");
    store
        .update_complaint(&actor_of(&boss), &case.id, reassign, None)
        .await
        .expect("supervisor reassigns");
    // A transfer that brings a second team escalates a recorded complaint.
    let (sales, _) = team_with(&store, "销售部", &[]).await;
    let (repair, _) = team_with(&store, "维修部", &[]).await;
    let customer = person(&store, "转接客户").await;
    let mut new = new_case(&customer, CaseKind::Complaint, "转接后升级");
    new.team_id = Some(sales);
    let moved = store.create_case(&me, new).await.expect("case");
    store
        .record_complaint(&me, &moved.id, record(Severity::General))
        .await
        .expect("record");
    store
        .transfer_case(
            &me,
            &moved.id,
            NewTransfer {
                team_id: Some(repair),
                assignee_id: None,
                reason: "维修".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    let after = store.complaint(&moved.id).await.expect("complaint");
    assert_eq!(after.complaint.stage, ComplaintStage::InternalReview);
    assert_eq!(
        after.complaint.escalation_trigger,
        Some(EscalationTrigger::SeveralTeams)
    );
}
