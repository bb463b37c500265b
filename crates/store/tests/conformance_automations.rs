//! Conformance suite, part ten: automation rules — validation, each trigger, every
//! action, and the explanation each firing leaves — on SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_domain::automation::*;
use kefu_domain::cases::*;
use kefu_domain::complaints::*;
use kefu_store::Store;
use kefu_store::complaints::{NewComplaint, NewRuleSet};
use kefu_store::users::NewTeam;

kefu_testkit::conformance!(
    rules_are_validated_and_versioned,
    a_serious_complaint_rule_fires_and_explains_itself,
    case_and_message_rules,
    a_rule_that_sets_the_priority_retargets_the_clocks,
);

fn condition(field: Field, operator: Operator, value: &str) -> Condition {
    Condition {
        field,
        operator,
        value: vec![value.into()],
    }
}

fn rule(
    name: &str,
    trigger: Trigger,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
) -> RuleSpec {
    RuleSpec {
        name: name.into(),
        trigger,
        conditions,
        actions,
        position: None,
        active: None,
    }
}

fn complaint(severity: Severity) -> NewComplaint {
    NewComplaint {
        severity,
        behaviour: Behaviour::AngryVenting,
        purpose: Purpose::Accusation,
        cause: Cause::Service,
        fault_side: None,
        fault_detail: None,
        dissatisfaction: Dissatisfaction::Process,
        needs: None,
        key_points: "态度恶劣".into(),
        validity: None,
        validity_reason: None,
        product: None,
        reputation_risk: None,
        subject_user_id: None,
    }
}

async fn rules_are_validated_and_versioned(store: Store) {
    let (store, _clock) = fixed(store);
    let before = audit_count(&store).await;
    expect_invalid(
        store
            .create_automation_rule(
                &cli(),
                rule(
                    "错",
                    Trigger::CaseCreated,
                    vec![condition(Field::ComplaintSeverity, Operator::Is, "serious")],
                    vec![Action::SetPriority {
                        priority: Priority::Urgent,
                    }],
                ),
            )
            .await,
        "conditions",
    );
    expect_invalid(
        store
            .create_automation_rule(
                &cli(),
                rule("空", Trigger::CaseCreated, Vec::new(), Vec::new()),
            )
            .await,
        "actions",
    );
    expect_invalid(
        store
            .create_automation_rule(
                &cli(),
                rule(
                    "值",
                    Trigger::CaseCreated,
                    vec![condition(Field::Priority, Operator::Is, "highest")],
                    vec![Action::SetPriority {
                        priority: Priority::Urgent,
                    }],
                ),
            )
            .await,
        "conditions",
    );
    assert_eq!(audit_count(&store).await, before, "nothing saved");
    let saved = store
        .create_automation_rule(
            &cli(),
            rule(
                "好",
                Trigger::CaseCreated,
                Vec::new(),
                vec![Action::AddNote {
                    text: "欢迎".into(),
                }],
            ),
        )
        .await
        .expect("create");
    let updated = store
        .update_automation_rule(
            &cli(),
            &saved.id,
            RuleSpec {
                active: Some(false),
                ..saved.spec.clone()
            },
            Some(saved.version),
        )
        .await
        .expect("update");
    assert_eq!(updated.spec.active, Some(false));
    expect_version_mismatch(
        store
            .update_automation_rule(&cli(), &saved.id, saved.spec.clone(), Some(saved.version))
            .await,
        "automation rule",
        saved.version,
        saved.version + 1,
    );
    // An inactive rule does not fire.
    let customer = person(&store, "客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Consultation, "问题").await;
    assert!(
        store
            .case_firings(&case.id)
            .await
            .expect("firings")
            .is_empty()
    );
}

async fn a_serious_complaint_rule_fires_and_explains_itself(store: Store) {
    let (store, _clock) = fixed(store);
    let boss = user(&store, "boss@example.com", Role::Supervisor).await;
    store
        .publish_rules(
            &cli(),
            NewRuleSet {
                rules: ComplaintRules {
                    escalate_serious: false,
                    ..Default::default()
                },
                note: "交给自动化规则".into(),
                based_on_version: None,
            },
        )
        .await
        .expect("rules");
    store
        .create_automation_rule(
            &cli(),
            rule(
                "严重投诉",
                Trigger::ComplaintRecorded,
                vec![condition(Field::ComplaintSeverity, Operator::Is, "serious")],
                vec![
                    Action::SetPriority {
                        priority: Priority::Urgent,
                    },
                    Action::NotifySupervisors {
                        message: "严重投诉，请关注".into(),
                    },
                    Action::EscalateComplaint,
                ],
            ),
        )
        .await
        .expect("rule");
    let customer = person(&store, "投诉人").await;
    let general = open_case(&store, &cli(), &customer, CaseKind::Complaint, "一般").await;
    let detail = store
        .record_complaint(&cli(), &general.id, complaint(Severity::General))
        .await
        .expect("record");
    assert_eq!(
        detail.complaint.stage,
        ComplaintStage::Recorded,
        "no firing"
    );
    assert!(
        store
            .case_firings(&general.id)
            .await
            .expect("firings")
            .is_empty()
    );
    let serious = open_case(&store, &cli(), &customer, CaseKind::Complaint, "严重").await;
    let detail = store
        .record_complaint(&cli(), &serious.id, complaint(Severity::Serious))
        .await
        .expect("record");
    assert_eq!(detail.complaint.stage, ComplaintStage::InternalReview);
    assert_eq!(
        detail.complaint.escalation_trigger,
        Some(EscalationTrigger::Automation)
    );
    assert_eq!(
        store.case(&serious.id).await.expect("case").priority,
        Priority::Urgent
    );
    let firings = store.case_firings(&serious.id).await.expect("firings");
    assert_eq!(firings.len(), 1);
    assert_eq!(firings[0].rule_name, "严重投诉");
    assert_eq!(firings[0].trigger, Trigger::ComplaintRecorded);
    assert_eq!(
        firings[0].explanation["conditions"][0],
        "投诉严重程度 等于 serious"
    );
    assert_eq!(
        firings[0].explanation["actions"]
            .as_array()
            .expect("actions")
            .len(),
        3
    );
    let notes = walk(50, async |p| store.messages(&serious.id, &p).await).await;
    assert!(
        notes
            .iter()
            .any(|m| m.kind == MessageKind::InternalNote
                && m.body.starts_with("自动化规则「严重投诉」")),
        "{notes:#?}"
    );
    let told = walk(50, async |p| store.notifications(boss.key, false, &p).await).await;
    assert!(
        told.iter()
            .any(|n| n.kind == "automation" && n.message_zh.contains("严重投诉，请关注"))
    );
}

async fn case_and_message_rules(store: Store) {
    let (store, _clock) = fixed(store);
    let team = store
        .create_team(
            &cli(),
            NewTeam {
                name: "投诉专员".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    store
        .create_automation_rule(
            &cli(),
            rule(
                "监管投诉",
                Trigger::CaseCreated,
                vec![condition(Field::Subject, Operator::Contains, "12315")],
                vec![
                    Action::SetPriority {
                        priority: Priority::High,
                    },
                    Action::AssignTeam {
                        team_id: team.id.clone(),
                    },
                ],
            ),
        )
        .await
        .expect("rule");
    store
        .create_automation_rule(
            &cli(),
            rule(
                "律师",
                Trigger::CustomerMessage,
                vec![condition(Field::Message, Operator::Contains, "律师")],
                vec![Action::AddNote {
                    text: "客户提到律师，请主管介入".into(),
                }],
            ),
        )
        .await
        .expect("rule");
    let customer = person(&store, "客户").await;
    let plain = open_case(
        &store,
        &cli(),
        &customer,
        CaseKind::Consultation,
        "普通问题",
    )
    .await;
    assert_eq!(plain.priority, Priority::Normal);
    assert_eq!(plain.team_id, None);
    let hot = open_case(
        &store,
        &cli(),
        &customer,
        CaseKind::Consultation,
        "再不处理就打１２３１５",
    )
    .await;
    assert_eq!(hot.priority, Priority::High, "full-width digits matched");
    assert_eq!(hot.team_id.as_deref(), Some(team.id.as_str()));
    assert_eq!(store.transfers(&hot.id).await.expect("transfers").len(), 1);
    store
        .add_message(
            &cli(),
            &plain.id,
            message(MessageKind::Inbound, "我已经找了律师"),
        )
        .await
        .expect("message");
    let firings = store.case_firings(&plain.id).await.expect("firings");
    assert_eq!(firings.len(), 1);
    assert_eq!(firings[0].trigger, Trigger::CustomerMessage);
    // Internal notes and replies do not trigger customer-message rules.
    store
        .add_message(
            &cli(),
            &plain.id,
            message(MessageKind::InternalNote, "律师的事我来跟"),
        )
        .await
        .expect("note");
    assert_eq!(
        store.case_firings(&plain.id).await.expect("firings").len(),
        1
    );
}

/// A rule that raises the priority re-targets the SLA clocks, as a person raising it
/// would.
async fn a_rule_that_sets_the_priority_retargets_the_clocks(store: Store) {
    let (store, _clock) = fixed(store);
    first_response_policies(
        &store,
        &[
            ("紧急", 1, Some(Priority::Urgent), 30),
            ("默认", 10, None, 8 * 60),
        ],
    )
    .await;
    store
        .create_automation_rule(
            &cli(),
            rule(
                "停机即紧急",
                Trigger::CaseCreated,
                vec![condition(Field::Subject, Operator::Contains, "停机")],
                vec![Action::SetPriority {
                    priority: Priority::Urgent,
                }],
            ),
        )
        .await
        .expect("rule");
    let customer = person(&store, "钱七").await;
    let case = store
        .create_case(
            &cli(),
            new_case(&customer, CaseKind::TechnicalSupport, "系统停机"),
        )
        .await
        .expect("case");
    assert_eq!(case.priority, Priority::Urgent);
    let clocks = store.case_sla(&case.id).await.expect("clocks");
    let first = clocks
        .iter()
        .find(|c| c.target_ms == 30 * 60_000 || c.target_ms == 8 * 60 * 60_000)
        .map(|c| c.policy_name.as_str());
    assert_eq!(first, Some("紧急"), "{clocks:?}");
}
