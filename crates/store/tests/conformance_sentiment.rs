//! Conformance suite: the sentiment of every message from a customer — kept as the
//! case's trajectory, and anger raising the priority with a note that says why — on
//! SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::Labelled;
use kefu_domain::cases::*;
use kefu_store::Store;

kefu_testkit::conformance!(
    angry_messages_raise_priority_and_leave_a_trajectory,
    a_priority_raised_by_anger_retargets_the_clocks
);

async fn angry_messages_raise_priority_and_leave_a_trajectory(store: Store) {
    let (store, clock) = fixed(store);
    let customer = person(&store, "王强").await;
    let mut input = new_case(&customer, CaseKind::Consultation, "快递");
    input.body = "我的快递到哪了？".into();
    let case = store.create_case(&cli(), input).await.expect("case");
    assert_eq!(case.priority, Priority::Normal);

    clock.advance(60_000);
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Inbound, "麻烦帮我转人工"),
        )
        .await
        .expect("message");
    let after = store.case(&case.id).await.expect("case");
    assert_eq!(
        after.priority,
        Priority::Normal,
        "asking for a person is not anger"
    );

    clock.advance(60_000);
    store
        .add_message(
            &cli(),
            &case.id,
            message(
                MessageKind::Inbound,
                "你们太过分了，再不处理我就打12315投诉！",
            ),
        )
        .await
        .expect("message");
    let after = store.case(&case.id).await.expect("case");
    assert_eq!(after.priority, Priority::Urgent);
    let notes = store
        .messages(&case.id, &page(50))
        .await
        .expect("messages")
        .items;
    let note = notes
        .iter()
        .find(|m| m.kind == MessageKind::InternalNote)
        .expect("a note says why");
    assert!(
        note.body.contains("12315") && note.body.contains("紧急"),
        "{}",
        note.body
    );

    // Replies and notes are not read; customer messages are, in order.
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Outbound, "非常抱歉，马上处理"),
        )
        .await
        .expect("reply");
    clock.advance(60_000);
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Inbound, "好的，谢谢你们，问题解决了"),
        )
        .await
        .expect("message");
    let trajectory = store.case_sentiment(&case.id).await.expect("trajectory");
    let labels: Vec<&str> = trajectory.iter().map(|p| p.label.as_str()).collect();
    assert_eq!(trajectory.len(), 4, "{labels:?}");
    assert_eq!(labels[2], "angry");
    assert_eq!(labels[3], "positive", "{trajectory:?}");
    let rules = trajectory[2].rules.to_string();
    assert!(
        rules.contains("escalation") && rules.contains("12315"),
        "{rules}"
    );
    // The fourth inbound message within a week counts as a repeated contact.
    assert!(trajectory[3].rules.to_string().contains("repeated_contact"));

    // An angry message on an urgent case changes nothing more.
    let version = store.case(&case.id).await.expect("case").version;
    store
        .add_message(
            &cli(),
            &case.id,
            message(MessageKind::Inbound, "垃圾服务，骗子！"),
        )
        .await
        .expect("message");
    let after = store.case(&case.id).await.expect("case");
    assert_eq!(after.priority, Priority::Urgent);
    assert_eq!(after.version, version + 1, "only the message's own update");
}

/// Anger raises the priority; the service-level clocks follow it, at creation and on a
/// later message, as they would if a person had raised it.
async fn a_priority_raised_by_anger_retargets_the_clocks(store: Store) {
    let (store, clock) = fixed(store);
    first_response_policies(
        &store,
        &[
            ("紧急", 1, Some(Priority::Urgent), 30),
            ("默认", 10, None, 8 * 60),
        ],
    )
    .await;
    let first_response = |clocks: Vec<kefu_store::sla::SlaClock>| {
        clocks
            .iter()
            .find(|c| c.metric.as_str() == "first_response")
            .map(|c| (c.policy_name.clone(), c.target_ms))
    };
    let customer = person(&store, "赵六").await;

    let mut input = new_case(&customer, CaseKind::Consultation, "退款");
    input.body = "你们就是骗子，再不退款我就去12315投诉！".into();
    let angry = store.create_case(&cli(), input).await.expect("case");
    assert_eq!(angry.priority, Priority::Urgent);
    let clocks = store.case_sla(&angry.id).await.expect("clocks");
    assert_eq!(
        first_response(clocks),
        Some(("紧急".to_string(), 30 * 60_000))
    );

    let mut input = new_case(&customer, CaseKind::Consultation, "快递");
    input.body = "我的快递到哪了？".into();
    let calm = store.create_case(&cli(), input).await.expect("case");
    let clocks = store.case_sla(&calm.id).await.expect("clocks");
    assert_eq!(
        first_response(clocks),
        Some(("默认".to_string(), 8 * 60 * 60_000))
    );
    clock.advance(60_000);
    store
        .add_message(
            &cli(),
            &calm.id,
            message(
                MessageKind::Inbound,
                "你们太过分了，再不处理我就打12315投诉！",
            ),
        )
        .await
        .expect("message");
    let clocks = store.case_sla(&calm.id).await.expect("clocks");
    assert_eq!(
        first_response(clocks),
        Some(("紧急".to_string(), 30 * 60_000))
    );
}
