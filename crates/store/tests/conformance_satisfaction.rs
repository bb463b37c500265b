//! Conformance suite, part eight: follow-up and satisfaction — what solving a case
//! creates, the customer's answer through the link, an agent's recorded answer, and the
//! follow-up call — on SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_domain::cases::*;
use kefu_domain::timeline::TimelineKind;
use kefu_store::Store;
use kefu_store::cases::StatusChange;
use kefu_store::satisfaction::{FollowUpDone, FollowUpFilter, SatisfactionAnswer};

kefu_testkit::conformance!(
    solving_a_case_asks_for_satisfaction_and_a_follow_up,
    survey_answers_are_checked_and_kept_once,
    an_agent_records_an_answer_given_by_phone,
);

fn solved() -> StatusChange {
    StatusChange {
        status: CaseStatus::Solved,
        reason: None,
    }
}

fn token_of(path: &str) -> &str {
    path.strip_prefix("/survey/").expect("a survey path")
}

async fn solving_a_case_asks_for_satisfaction_and_a_follow_up(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let customer = person(&store, "满意度客户").await;
    let case = open_case(
        &store,
        &actor_of(&agent),
        &customer,
        CaseKind::AfterSale,
        "维修",
    )
    .await;
    assert!(
        store
            .case_satisfaction(&case.id)
            .await
            .expect("none")
            .is_empty()
    );
    store
        .change_case_status(&actor_of(&agent), &case.id, solved(), None)
        .await
        .expect("solve");
    let requests = store.case_satisfaction(&case.id).await.expect("requests");
    assert_eq!(requests.len(), 1);
    assert!(requests[0].answered_at.is_none());
    assert_eq!(requests[0].expires_at.0, T0 + 14 * 86_400_000);
    let mine = FollowUpFilter {
        owner_id: Some(agent.id.clone()),
        ..Default::default()
    };
    let follow_ups = walk(10, async |p| store.follow_ups(&mine, &p).await).await;
    assert_eq!(follow_ups.len(), 1);
    assert_eq!(
        follow_ups[0].due_at.0,
        T0 + 3 * 86_400_000,
        "the rule set's 3 days"
    );
    let due = FollowUpFilter {
        due: true,
        ..Default::default()
    };
    assert!(
        walk(10, async |p| store.follow_ups(&due, &p).await)
            .await
            .is_empty()
    );
    // Reopened and solved again: no second request or follow-up while one is open.
    store
        .change_case_status(
            &actor_of(&agent),
            &case.id,
            StatusChange {
                status: CaseStatus::Open,
                reason: None,
            },
            None,
        )
        .await
        .expect("reopen");
    store
        .change_case_status(&actor_of(&agent), &case.id, solved(), None)
        .await
        .expect("solve again");
    assert_eq!(
        store
            .case_satisfaction(&case.id)
            .await
            .expect("requests")
            .len(),
        1
    );
    clock.advance(3 * 86_400_000);
    let due_now = walk(10, async |p| store.follow_ups(&due, &p).await).await;
    assert_eq!(due_now.len(), 1);
    expect_invalid(
        store
            .complete_follow_up(
                &actor_of(&agent),
                &due_now[0].id,
                FollowUpDone { note: " ".into() },
            )
            .await,
        "note",
    );
    let done = store
        .complete_follow_up(
            &actor_of(&agent),
            &due_now[0].id,
            FollowUpDone {
                note: "客户确认已修好".into(),
            },
        )
        .await
        .expect("done");
    assert_eq!(done.status, "done");
    expect_transition_refused(
        store
            .complete_follow_up(
                &actor_of(&agent),
                &done.id,
                FollowUpDone {
                    note: "again".into(),
                },
            )
            .await,
        "done",
        "done",
    );
    let calls = timeline_of(&store, &customer.id)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::Call)
        .count();
    assert_eq!(calls, 1, "the follow-up call is a touchpoint");
}

async fn survey_answers_are_checked_and_kept_once(store: Store) {
    let (store, clock) = fixed(store);
    let customer = person(&store, "评价客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Consultation, "咨询").await;
    store
        .change_case_status(&cli(), &case.id, solved(), None)
        .await
        .expect("solve");
    let request = store
        .case_satisfaction(&case.id)
        .await
        .expect("requests")
        .remove(0);
    let token = token_of(&request.path).to_string();
    assert!(token.len() >= 32);
    let view = store.survey(&token).await.expect("view");
    assert_eq!(view.case_number, case.number);
    assert!(!view.answered && !view.expired);
    for score in [0, 6, -1] {
        expect_invalid(
            store
                .answer_survey(
                    &token,
                    SatisfactionAnswer {
                        score,
                        reason: None,
                    },
                )
                .await,
            "score",
        );
    }
    expect_not_found(
        store
            .answer_survey(
                "nope",
                SatisfactionAnswer {
                    score: 5,
                    reason: None,
                },
            )
            .await,
        "survey",
    );
    clock.advance(60_000);
    let answered = store
        .answer_survey(
            &token,
            SatisfactionAnswer {
                score: 2,
                reason: Some("等了三天才有人回复".into()),
            },
        )
        .await
        .expect("answer");
    assert!(answered.answered);
    assert_eq!(answered.score, Some(2));
    expect_conflict(
        store
            .answer_survey(
                &token,
                SatisfactionAnswer {
                    score: 5,
                    reason: None,
                },
            )
            .await,
        "duplicate",
    );
    let case = store.case(&case.id).await.expect("case");
    assert_eq!(case.csat_score, Some(2));
    assert_eq!(case.csat_reason.as_deref(), Some("等了三天才有人回复"));
    let answers: Vec<_> = timeline_of(&store, &customer.id)
        .await
        .into_iter()
        .filter(|e| e.kind == TimelineKind::SurveyAnswer)
        .collect();
    assert_eq!(answers.len(), 1);
    assert_eq!(answers[0].data["score"], 2);
    // An expired link is closed.
    let other = open_case(&store, &cli(), &customer, CaseKind::Consultation, "过期").await;
    store
        .change_case_status(&cli(), &other.id, solved(), None)
        .await
        .expect("solve");
    let late = store
        .case_satisfaction(&other.id)
        .await
        .expect("requests")
        .remove(0);
    clock.advance(15 * 86_400_000);
    let token = token_of(&late.path).to_string();
    assert!(store.survey(&token).await.expect("view").expired);
    expect_conflict(
        store
            .answer_survey(
                &token,
                SatisfactionAnswer {
                    score: 4,
                    reason: None,
                },
            )
            .await,
        "conflict",
    );
}

async fn an_agent_records_an_answer_given_by_phone(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let customer = person(&store, "电话客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Order, "订单").await;
    expect_conflict(
        store
            .record_satisfaction(
                &actor_of(&agent),
                &case.id,
                SatisfactionAnswer {
                    score: 5,
                    reason: None,
                },
            )
            .await,
        "conflict",
    );
    store
        .change_case_status(&cli(), &case.id, solved(), None)
        .await
        .expect("solve");
    let saved = store
        .record_satisfaction(
            &actor_of(&agent),
            &case.id,
            SatisfactionAnswer {
                score: 5,
                reason: Some("很快".into()),
            },
        )
        .await
        .expect("record");
    assert_eq!(saved.answered_via.as_deref(), Some("agent"));
    assert_eq!(
        store.case(&case.id).await.expect("case").csat_score,
        Some(5)
    );
    assert_eq!(audit_of(&store, "satisfaction", &saved.id).await.len(), 1);
}
