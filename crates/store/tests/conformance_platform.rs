//! Conformance suite, part four: the timeline, the audit log, idempotency keys, jobs,
//! leases and backups, on SQLite and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_domain::cases::{CaseKind, CaseStatus, MessageKind};
use kefu_domain::contacts::ContactChannel;
use kefu_domain::customers::{CustomFieldType, InformationKind, LifecycleState};
use kefu_domain::timeline::{Channel, ContentType, Direction, InteractionType, TimelineKind};
use kefu_domain::{Labelled, Timestamp};
use kefu_store::audit::AuditFilter;
use kefu_store::cases::{CasePatch, MergeRequest, NewTransfer, StatusChange};
use kefu_store::customers::{
    CustomFieldDefinition, CustomerPatch, NewCustomer, NewTransaction, NewWinBackAttempt,
};
use kefu_store::idempotency::Begin;
use kefu_store::page::PageRequest;
use kefu_store::timeline::{NewTouchpoint, TimelineEntry, TimelineFilter};
use kefu_store::users::{NewTeam, NewToken, TeamPatch, UserPatch};
use kefu_store::{Dialect, Store, StoreOptions};
use serde_json::json;

kefu_testkit::conformance!(
    touchpoints_get_their_interaction_type,
    touchpoint_kinds_recordable_by_hand,
    touchpoint_refusals,
    timeline_filters_and_pagination,
    every_change_leaves_an_audit_entry,
    audit_list_filters_and_pages,
    idempotency_keys,
    jobs_are_claimed_in_order_and_once,
    job_leases_expire,
    failing_jobs_stop_after_max_attempts,
    named_leases,
    backup_sqlite_copies_the_database,
);

fn touchpoint(
    kind: TimelineKind,
    channel: Channel,
    direction: Direction,
    summary: &str,
) -> NewTouchpoint {
    NewTouchpoint {
        kind,
        channel,
        direction,
        interaction_type: None,
        content_type: None,
        summary: summary.into(),
        occurred_at: None,
        case_id: None,
        data: None,
    }
}

fn summaries(entries: &[TimelineEntry]) -> Vec<String> {
    entries.iter().map(|e| e.summary.clone()).collect()
}

// ---------------------------------------------------------------------------------------
// Timeline

async fn touchpoints_get_their_interaction_type(store: Store) {
    use Channel as C;
    use Direction::*;
    use InteractionType as I;
    use TimelineKind as K;
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let actor = actor_of(&agent);
    let customer = person(&store, "客户").await;
    let table: Vec<(K, C, Direction, Option<I>, I)> = vec![
        (
            K::Visit,
            C::FaceToFace,
            CompanyInitiated,
            None,
            I::FaceToFace,
        ),
        (
            K::Call,
            C::Phone,
            CustomerInitiated,
            None,
            I::IndirectPersonal,
        ),
        (K::Letter, C::Letter, CompanyInitiated, None, I::NonPersonal),
        (K::Note, C::Im, CompanyInitiated, None, I::IndirectPersonal),
        (
            K::OrderEvent,
            C::Web,
            CustomerInitiated,
            None,
            I::NonPersonal,
        ),
        (
            K::SurveyAnswer,
            C::Email,
            CustomerInitiated,
            None,
            I::NonPersonal,
        ),
        (
            K::Call,
            C::LiveChat,
            CustomerInitiated,
            None,
            I::IndirectPersonal,
        ),
        (
            K::Visit,
            C::Phone,
            CompanyInitiated,
            Some(I::FaceToFace),
            I::FaceToFace,
        ),
    ];
    for (kind, channel, direction, interaction, expected) in table {
        clock.advance(1000);
        let entry = store
            .record_touchpoint(
                &actor,
                &customer.id,
                NewTouchpoint {
                    interaction_type: interaction,
                    ..touchpoint(kind, channel, direction, " 拜访记录 ")
                },
            )
            .await
            .expect("record");
        let now = Timestamp(store.now_ms());
        assert_eq!(entry.interaction_type, expected, "{kind} on {channel}");
        assert_eq!(entry.kind, kind);
        assert_eq!(entry.channel, channel);
        assert_eq!(entry.direction, direction);
        assert_eq!(entry.content_type, ContentType::Information);
        assert_eq!(entry.summary, "拜访记录");
        assert_eq!(entry.data, json!({}));
        assert_eq!(entry.customer_id, customer.id);
        assert_eq!(entry.case_id, None);
        assert_eq!(entry.case_number, None);
        assert_eq!(entry.actor_id.as_deref(), Some(agent.id.as_str()));
        assert_eq!(entry.occurred_at, now);
        assert_eq!(entry.created_at, now);
        let listed = timeline_of(&store, &customer.id).await;
        assert_eq!(
            serde_json::to_value(&listed[0]).expect("json"),
            serde_json::to_value(&entry).expect("json")
        );
        let audit = audit_of(&store, "timeline_entry", &entry.id).await;
        assert_eq!(audit.len(), 1);
        assert_eq!(audit[0].action, "create");
    }

    // Said explicitly: content, time, data; the summary keeps 500 characters.
    let past = T0 - 86_400_000;
    let long = "长".repeat(600);
    let entry = store
        .record_touchpoint(
            &cli(),
            &customer.id,
            NewTouchpoint {
                content_type: Some(ContentType::Emotion),
                occurred_at: Some(Timestamp(past)),
                data: Some(json!({"order": "A-1", "items": [1, 2], "nested": {"ok": true}})),
                ..touchpoint(K::OrderEvent, C::Web, CustomerInitiated, &long)
            },
        )
        .await
        .expect("record");
    assert_eq!(entry.content_type, ContentType::Emotion);
    assert_eq!(entry.occurred_at, Timestamp(past));
    assert_eq!(entry.created_at, Timestamp(store.now_ms()));
    assert_eq!(
        entry.data,
        json!({"order": "A-1", "items": [1, 2], "nested": {"ok": true}})
    );
    assert_eq!(entry.summary, format!("{}…", "长".repeat(500)));
    assert_eq!(entry.actor_id, None);
    let listed = timeline_of(&store, &customer.id).await;
    assert_eq!(
        listed.last().map(|e| e.id.as_str()),
        Some(entry.id.as_str())
    );
    assert_eq!(listed.last().map(|e| e.summary.chars().count()), Some(501));
}

async fn touchpoint_kinds_recordable_by_hand(store: Store) {
    use TimelineKind as K;
    let customer = person(&store, "客户").await;
    let by_hand = [
        K::Call,
        K::Visit,
        K::Letter,
        K::Note,
        K::OrderEvent,
        K::SurveyAnswer,
    ];
    let mut recorded = 0;
    for kind in K::ALL.iter().copied() {
        let result = store
            .record_touchpoint(
                &cli(),
                &customer.id,
                touchpoint(kind, Channel::Phone, Direction::CompanyInitiated, "x"),
            )
            .await;
        if by_hand.contains(&kind) {
            result.unwrap_or_else(|e| panic!("{kind}: {e:?}"));
            recorded += 1;
        } else {
            expect_invalid(result, "kind");
        }
        assert_eq!(store.timeline_count().await.expect("count"), recorded);
    }
    assert_eq!(recorded, 6);
}

async fn touchpoint_refusals(store: Store) {
    let customer = person(&store, "客户").await;
    let other = person(&store, "别人").await;
    let own_case = open_case(&store, &cli(), &customer, CaseKind::Order, "自己的").await;
    let foreign_case = open_case(&store, &cli(), &other, CaseKind::Order, "别人的").await;
    let count = store.timeline_count().await.expect("count");
    let call = || {
        touchpoint(
            TimelineKind::Call,
            Channel::Phone,
            Direction::CompanyInitiated,
            "通话",
        )
    };
    expect_invalid(
        store
            .record_touchpoint(
                &cli(),
                &customer.id,
                NewTouchpoint {
                    case_id: Some(foreign_case.id.clone()),
                    ..call()
                },
            )
            .await,
        "case_id",
    );
    for missing in ["0190a0b0-0000-7000-8000-000000000000", "#1001"] {
        expect_invalid(
            store
                .record_touchpoint(
                    &cli(),
                    &customer.id,
                    NewTouchpoint {
                        case_id: Some(missing.into()),
                        ..call()
                    },
                )
                .await,
            "case_id",
        );
    }
    for missing in ["0190a0b0-0000-7000-8000-000000000000", "nope"] {
        expect_not_found(
            store.record_touchpoint(&cli(), missing, call()).await,
            "customer",
        );
    }
    expect_invalid(
        store
            .record_touchpoint(
                &cli(),
                &customer.id,
                NewTouchpoint {
                    summary: "  ".into(),
                    ..call()
                },
            )
            .await,
        "summary",
    );
    expect_invalid(
        store
            .record_touchpoint(
                &cli(),
                &customer.id,
                NewTouchpoint {
                    summary: "x".repeat(5001),
                    ..call()
                },
            )
            .await,
        "summary",
    );
    for data in [
        json!([1, 2]),
        json!("text"),
        json!({"blob": "x".repeat(65 * 1024)}),
    ] {
        expect_invalid(
            store
                .record_touchpoint(
                    &cli(),
                    &customer.id,
                    NewTouchpoint {
                        data: Some(data),
                        ..call()
                    },
                )
                .await,
            "data",
        );
    }
    assert_eq!(store.timeline_count().await.expect("count"), count);

    let on_case = store
        .record_touchpoint(
            &cli(),
            &customer.id,
            NewTouchpoint {
                case_id: Some(own_case.id.clone()),
                ..call()
            },
        )
        .await
        .expect("on own case");
    assert_eq!(on_case.case_id.as_deref(), Some(own_case.id.as_str()));
    assert_eq!(on_case.case_number, Some(own_case.number));
}

async fn timeline_filters_and_pagination(store: Store) {
    use Channel as C;
    use Direction::*;
    use TimelineKind as K;
    let (store, _clock) = fixed(store);
    let a = person(&store, "甲").await;
    let b = person(&store, "乙").await;
    /// (summary, customer, kind, channel, direction, content type, occurred at)
    type Row = (
        &'static str,
        &'static str,
        K,
        C,
        Direction,
        Option<ContentType>,
        i64,
    );
    let entries: Vec<Row> = vec![
        (
            "e1",
            "a",
            K::Visit,
            C::FaceToFace,
            CompanyInitiated,
            None,
            T0 - 5000,
        ),
        (
            "e2",
            "a",
            K::Call,
            C::Phone,
            CustomerInitiated,
            Some(ContentType::Emotion),
            T0 - 4000,
        ),
        (
            "e3",
            "a",
            K::Letter,
            C::Letter,
            CompanyInitiated,
            None,
            T0 - 3000,
        ),
        ("e4", "a", K::Note, C::Im, CompanyInitiated, None, T0 - 3000),
        (
            "e5",
            "a",
            K::SurveyAnswer,
            C::Web,
            CustomerInitiated,
            Some(ContentType::Opinion),
            T0 - 1000,
        ),
        (
            "f1",
            "b",
            K::Call,
            C::Phone,
            CompanyInitiated,
            None,
            T0 - 4500,
        ),
    ];
    for (summary, who, kind, channel, direction, content, at) in entries {
        let customer = if who == "a" { &a } else { &b };
        store
            .record_touchpoint(
                &cli(),
                &customer.id,
                NewTouchpoint {
                    content_type: content,
                    occurred_at: Some(Timestamp(at)),
                    ..touchpoint(kind, channel, direction, summary)
                },
            )
            .await
            .expect("record");
    }
    let case = open_case(&store, &cli(), &a, CaseKind::Order, "问题").await;
    let case_entry = "#1001 问题: body of 问题";
    let f = |build: fn(&mut TimelineFilter)| {
        let mut filter = TimelineFilter::default();
        build(&mut filter);
        filter
    };
    let with_customer = |id: &str| TimelineFilter {
        customer_id: Some(id.to_string()),
        ..Default::default()
    };
    let table: Vec<(&str, TimelineFilter, Vec<&str>)> = vec![
        (
            "everything",
            TimelineFilter::default(),
            vec![case_entry, "e5", "e4", "e3", "e2", "f1", "e1"],
        ),
        (
            "customer a",
            with_customer(&a.id),
            vec![case_entry, "e5", "e4", "e3", "e2", "e1"],
        ),
        ("customer b", with_customer(&b.id), vec!["f1"]),
        (
            "calls",
            f(|f| f.kind = Some(TimelineKind::Call)),
            vec!["e2", "f1"],
        ),
        (
            "phone",
            f(|f| f.channel = Some(Channel::Phone)),
            vec!["e2", "f1"],
        ),
        (
            "customer initiated",
            f(|f| f.direction = Some(Direction::CustomerInitiated)),
            vec![case_entry, "e5", "e2"],
        ),
        (
            "face to face",
            f(|f| f.interaction_type = Some(InteractionType::FaceToFace)),
            vec!["e1"],
        ),
        (
            "non-personal",
            f(|f| f.interaction_type = Some(InteractionType::NonPersonal)),
            vec![case_entry, "e5", "e3"],
        ),
        (
            "emotion",
            f(|f| f.content_type = Some(ContentType::Emotion)),
            vec!["e2"],
        ),
        (
            "opinion",
            f(|f| f.content_type = Some(ContentType::Opinion)),
            vec!["e5"],
        ),
        (
            "since (inclusive)",
            f(|f| f.since = Some(Timestamp(T0 - 3000))),
            vec![case_entry, "e5", "e4", "e3"],
        ),
        (
            "until (exclusive)",
            f(|f| f.until = Some(Timestamp(T0 - 3000))),
            vec!["e2", "f1", "e1"],
        ),
        (
            "window",
            f(|f| {
                f.since = Some(Timestamp(T0 - 4500));
                f.until = Some(Timestamp(T0 - 1000));
            }),
            vec!["e4", "e3", "e2", "f1"],
        ),
        (
            "case",
            TimelineFilter {
                case_id: Some(case.id.clone()),
                ..Default::default()
            },
            vec![case_entry],
        ),
        (
            "customer a, calls",
            TimelineFilter {
                kind: Some(TimelineKind::Call),
                ..with_customer(&a.id)
            },
            vec!["e2"],
        ),
    ];
    for (label, filter, expected) in table {
        for limit in [1, 2, 3, 200] {
            let got = walk(limit, async |p| store.timeline(&filter, &p).await).await;
            assert_eq!(summaries(&got), expected, "{label}, limit {limit}");
        }
    }
    expect_not_found(
        store
            .timeline(
                &with_customer("0190a0b0-0000-7000-8000-000000000000"),
                &page(5),
            )
            .await,
        "customer",
    );
    expect_not_found(
        store
            .timeline(
                &TimelineFilter {
                    case_id: Some("nope".into()),
                    ..Default::default()
                },
                &page(5),
            )
            .await,
        "case",
    );
    expect_invalid(
        store
            .timeline(
                &TimelineFilter::default(),
                &PageRequest {
                    limit: Some(2),
                    cursor: Some("garbage".into()),
                },
            )
            .await,
        "cursor",
    );
    expect_invalid(
        store.timeline(&TimelineFilter::default(), &page(201)).await,
        "limit",
    );
}

// ---------------------------------------------------------------------------------------
// Audit

/// Checks that exactly one audit entry was added since the last check, and what it says.
struct AuditTrail {
    seen: usize,
}

impl AuditTrail {
    async fn expect(&mut self, store: &Store, action: &str, object_type: &str, object_id: &str) {
        let count = audit_count(store).await;
        assert_eq!(
            count,
            self.seen + 1,
            "one entry for {action} {object_type} {object_id}"
        );
        self.seen = count;
        let last = last_audit(store).await;
        assert_eq!(
            (
                last.action.as_str(),
                last.object_type.as_str(),
                last.object_id.as_str()
            ),
            (action, object_type, object_id)
        );
        assert_eq!(last.at, Timestamp(store.now_ms()));
        let needs_before = matches!(
            action,
            "update" | "transition" | "transfer" | "merge" | "revoke" | "delete"
        );
        let needs_after = !matches!(action, "delete" | "login");
        assert_eq!(last.before.is_some(), needs_before, "{action}: before");
        assert_eq!(last.after.is_some(), needs_after, "{action}: after");
    }

    async fn expect_none(&mut self, store: &Store, what: &str) {
        assert_eq!(
            audit_count(store).await,
            self.seen,
            "{what} leaves no entry"
        );
    }
}

async fn every_change_leaves_an_audit_entry(store: Store) {
    let (store, clock) = fixed(store);
    let mut trail = AuditTrail { seen: 0 };
    let cli = cli();
    let tick = || clock.advance(1000);

    let agent = user(&store, "agent@example.com", Role::Agent).await;
    trail.expect(&store, "create", "user", &agent.id).await;
    let actor = actor_of(&agent);
    tick();
    store
        .update_user(
            &cli,
            &agent.id,
            UserPatch {
                name: Some("李娜".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update user");
    trail.expect(&store, "update", "user", &agent.id).await;
    tick();
    let team = store
        .create_team(
            &cli,
            NewTeam {
                name: "支持".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    trail.expect(&store, "create", "team", &team.id).await;
    tick();
    store
        .update_team(
            &cli,
            &team.id,
            TeamPatch {
                description: Some("一线".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update team");
    trail.expect(&store, "update", "team", &team.id).await;
    tick();
    let created_token = store
        .create_token(
            &actor,
            &agent.id,
            NewToken {
                name: "ci".into(),
                scopes: None,
                expires_at: None,
            },
        )
        .await
        .expect("token");
    trail
        .expect(&store, "create", "api_token", &created_token.token.id)
        .await;
    tick();
    store
        .revoke_token(&actor, &created_token.token.id, None)
        .await
        .expect("revoke");
    trail
        .expect(&store, "revoke", "api_token", &created_token.token.id)
        .await;
    tick();
    let (session, _) = store
        .login("agent@example.com", PASSWORD)
        .await
        .expect("login");
    trail.expect(&store, "login", "user", &agent.id).await;
    tick();
    store
        .define_custom_field(
            &cli,
            CustomFieldDefinition {
                key: "tier".into(),
                label_en: "Tier".into(),
                label_zh: "等级".into(),
                field_type: CustomFieldType::Text,
                options: Vec::new(),
                information_kind: InformationKind::Associated,
            },
        )
        .await
        .expect("custom field");
    trail.expect(&store, "create", "custom_field", "tier").await;

    tick();
    let customer = store
        .create_customer(&actor, named("客户"))
        .await
        .expect("customer");
    trail
        .expect(&store, "create", "customer", &customer.id)
        .await;
    tick();
    store
        .update_customer(
            &actor,
            &customer.id,
            CustomerPatch {
                notes: Some("VIP".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update customer");
    trail
        .expect(&store, "update", "customer", &customer.id)
        .await;
    tick();
    let with_contact = store
        .add_contact(
            &actor,
            &customer.id,
            contact(ContactChannel::Email, "c@example.com"),
        )
        .await
        .expect("add contact");
    trail
        .expect(&store, "update", "customer", &customer.id)
        .await;
    tick();
    store
        .remove_contact(&actor, &customer.id, &with_contact.contacts[0].id)
        .await
        .expect("remove contact");
    trail
        .expect(&store, "update", "customer", &customer.id)
        .await;
    tick();
    let transaction = store
        .add_transaction(
            &actor,
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
        .expect("transaction");
    trail
        .expect(&store, "create", "customer_transaction", &transaction.id)
        .await;
    tick();
    store
        .transition_customer(&actor, &customer.id, LifecycleState::Lost, "price", None)
        .await
        .expect("lost");
    trail
        .expect(&store, "transition", "customer", &customer.id)
        .await;
    tick();
    let attempt = store
        .add_win_back_attempt(
            &actor,
            &customer.id,
            NewWinBackAttempt {
                occurred_at: None,
                channel: Channel::Phone,
                outcome: "reached".into(),
                note: None,
            },
        )
        .await
        .expect("attempt");
    trail
        .expect(&store, "create", "win_back_attempt", &attempt.id)
        .await;
    tick();
    let doomed = person(&store, "删除").await;
    trail.expect(&store, "create", "customer", &doomed.id).await;
    tick();
    store
        .delete_customer(&actor, &doomed.id)
        .await
        .expect("delete");
    trail.expect(&store, "delete", "customer", &doomed.id).await;

    tick();
    let case = open_case(&store, &actor, &customer, CaseKind::Order, "订单").await;
    trail.expect(&store, "create", "case", &case.id).await;
    tick();
    store
        .update_case(
            &actor,
            &case.id,
            CasePatch {
                subject: Some("订单问题".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update case");
    trail.expect(&store, "update", "case", &case.id).await;
    tick();
    let msg = store
        .add_message(&actor, &case.id, message(MessageKind::Outbound, "您好"))
        .await
        .expect("message");
    trail.expect(&store, "create", "message", &msg.id).await;
    tick();
    let attachment = store
        .add_attachment(
            &actor,
            &case.id,
            Some(&msg.id),
            "a.txt",
            "text/plain",
            b"a".to_vec(),
        )
        .await
        .expect("attachment");
    trail
        .expect(&store, "create", "attachment", &attachment.id)
        .await;
    tick();
    store
        .change_case_status(
            &actor,
            &case.id,
            StatusChange {
                status: CaseStatus::Pending,
                reason: None,
            },
            None,
        )
        .await
        .expect("status");
    trail.expect(&store, "transition", "case", &case.id).await;
    tick();
    store
        .transfer_case(
            &actor,
            &case.id,
            NewTransfer {
                team_id: Some(team.id.clone()),
                assignee_id: None,
                reason: "排队".into(),
            },
            None,
        )
        .await
        .expect("transfer");
    trail.expect(&store, "transfer", "case", &case.id).await;
    tick();
    let duplicate = open_case(&store, &actor, &customer, CaseKind::Order, "重复").await;
    trail.expect(&store, "create", "case", &duplicate.id).await;
    tick();
    store
        .merge_case(
            &actor,
            &duplicate.id,
            MergeRequest {
                into_id: case.id.clone(),
            },
        )
        .await
        .expect("merge");
    trail.expect(&store, "merge", "case", &duplicate.id).await;
    tick();
    let entry = store
        .record_touchpoint(
            &actor,
            &customer.id,
            touchpoint(
                TimelineKind::Visit,
                Channel::FaceToFace,
                Direction::CompanyInitiated,
                "拜访",
            ),
        )
        .await
        .expect("touchpoint");
    trail
        .expect(&store, "create", "timeline_entry", &entry.id)
        .await;

    // Reads, refusals and bookkeeping leave nothing.
    store.customer_detail(&customer.id).await.expect("read");
    store
        .cases(&Default::default(), &page(10))
        .await
        .expect("read");
    let _ = store
        .create_customer(&actor, NewCustomer::default())
        .await
        .expect_err("no name");
    let _ = store
        .update_customer(&actor, &customer.id, CustomerPatch::default(), Some(1))
        .await
        .expect_err("stale");
    let _ = store
        .create_team(
            &cli,
            NewTeam {
                name: "支持".into(),
                description: None,
            },
        )
        .await
        .expect_err("duplicate team");
    let _ = store
        .login("agent@example.com", "wrong password")
        .await
        .expect_err("bad password");
    store.enqueue("q", &json!({}), None).await.expect("enqueue");
    store.try_lock("l", "me", 1000).await.expect("lock");
    trail.expect_none(&store, "reads and refusals").await;
    store.logout(&session).await.expect("logout");
}

async fn audit_list_filters_and_pages(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let actor = actor_of(&agent);
    let mut mine = Vec::new();
    let mut theirs = Vec::new();
    for index in 0..5 {
        clock.advance(1000);
        let by_agent = store
            .create_customer(&actor, named(&format!("a{index}")))
            .await
            .expect("create");
        mine.push(by_agent.id);
        let by_cli = store
            .create_customer(&cli(), named(&format!("c{index}")))
            .await
            .expect("create");
        theirs.push(by_cli.id);
    }
    let all = audit(&store, AuditFilter::default()).await;
    assert_eq!(all.len(), 11, "a user and ten customers");
    assert!(all.windows(2).all(|w| w[0].id > w[1].id), "newest first");
    for limit in [1, 3, 4] {
        let paged: Vec<i64> = walk(limit, async |p| {
            store.audit_list(&AuditFilter::default(), &p).await
        })
        .await
        .into_iter()
        .map(|e| e.id)
        .collect();
        assert_eq!(paged, all.iter().map(|e| e.id).collect::<Vec<_>>());
    }
    let by_actor = audit(
        &store,
        AuditFilter {
            actor_id: Some(agent.id.clone()),
            ..Default::default()
        },
    )
    .await;
    let mut expected = mine.clone();
    expected.reverse();
    assert_eq!(
        by_actor
            .iter()
            .map(|e| e.object_id.clone())
            .collect::<Vec<_>>(),
        expected
    );
    assert!(by_actor.iter().all(|e| e.actor == "agent@example.com"));
    let by_object = audit_of(&store, "customer", &theirs[2]).await;
    assert_eq!(by_object.len(), 1);
    assert_eq!(by_object[0].actor, "cli");
    assert_eq!(by_object[0].actor_id, None);
    assert_eq!(by_object[0].at, Timestamp(T0 + 3000));
    assert_eq!(by_object[0].after.as_ref().expect("after")["name"], "c2");
    assert!(audit_of(&store, "case", &theirs[2]).await.is_empty());
    let users = audit(
        &store,
        AuditFilter {
            object_type: Some("user".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(users.len(), 1);
    assert!(
        audit(
            &store,
            AuditFilter {
                actor_id: Some("0190a0b0-0000-7000-8000-000000000000".into()),
                ..Default::default()
            },
        )
        .await
        .is_empty()
    );
    expect_invalid(
        store
            .audit_list(
                &AuditFilter::default(),
                &PageRequest {
                    limit: Some(2),
                    cursor: Some("garbage".into()),
                },
            )
            .await,
        "cursor",
    );
    expect_invalid(
        store.audit_list(&AuditFilter::default(), &page(0)).await,
        "limit",
    );
    let first = store
        .audit_list(&AuditFilter::default(), &PageRequest::default())
        .await
        .expect("default page");
    assert_eq!(first.items.len(), 11);
    assert!(first.next_cursor.is_none());
}

// ---------------------------------------------------------------------------------------
// Idempotency

async fn idempotency_keys(store: Store) {
    let (store, clock) = fixed(store);
    let me = user(&store, "me@example.com", Role::Agent).await.key;
    let you = user(&store, "you@example.com", Role::Agent).await.key;
    let begin = |user: i64, key: &'static str, hash: &'static str| {
        let store = store.clone();
        async move {
            store
                .idempotency_begin(user, key, hash)
                .await
                .expect("begin")
        }
    };
    assert_eq!(begin(me, "k1", "h1").await, Begin::Fresh);
    assert_eq!(begin(me, "k1", "h1").await, Begin::InProgress);
    assert_eq!(begin(me, "k1", "h2").await, Begin::Mismatch);
    assert_eq!(
        begin(you, "k1", "h2").await,
        Begin::Fresh,
        "keys are per user"
    );
    store
        .idempotency_finish(me, "k1", 201, r#"{"id":"客户"}"#)
        .await
        .expect("finish");
    let replay = Begin::Replay {
        status: 201,
        body: r#"{"id":"客户"}"#.into(),
    };
    assert_eq!(begin(me, "k1", "h1").await, replay);
    assert_eq!(begin(me, "k1", "h1").await, replay, "replays repeat");
    assert_eq!(begin(me, "k1", "h2").await, Begin::Mismatch);
    store.idempotency_abort(me, "k1").await.expect("abort");
    assert_eq!(begin(me, "k1", "h1").await, replay, "a finished key stays");
    assert_eq!(begin(you, "k1", "h2").await, Begin::InProgress);

    // Aborting a reservation lets the client retry.
    assert_eq!(begin(me, "k2", "h").await, Begin::Fresh);
    store.idempotency_abort(me, "k2").await.expect("abort");
    assert_eq!(begin(me, "k2", "h").await, Begin::Fresh);
    store
        .idempotency_finish(me, "k2", 422, "{}")
        .await
        .expect("finish");
    assert_eq!(
        begin(me, "k2", "h").await,
        Begin::Replay {
            status: 422,
            body: "{}".into()
        }
    );

    // A reservation left by a crashed request goes stale after five minutes.
    assert_eq!(begin(me, "k3", "h").await, Begin::Fresh);
    clock.advance(4 * 60_000);
    assert_eq!(begin(me, "k3", "h").await, Begin::InProgress);
    clock.advance(60_000 + 1);
    assert_eq!(begin(me, "k3", "h").await, Begin::Fresh);

    // Answers are kept for a day.
    clock.advance(kefu_store::idempotency::KEY_TTL_MS - 5 * 60_000 - 2);
    assert_eq!(begin(me, "k1", "h1").await, replay);
    clock.advance(2);
    assert_eq!(begin(me, "k1", "h1").await, Begin::Fresh);
    assert_eq!(begin(me, "k1", "h1").await, Begin::InProgress);
}

// ---------------------------------------------------------------------------------------
// Jobs and leases

async fn jobs_are_claimed_in_order_and_once(store: Store) {
    let (store, clock) = fixed(store);
    let a = store
        .enqueue("mail", &json!({"to": "a"}), None)
        .await
        .expect("a");
    let later = store
        .enqueue("mail", &json!({"to": "later"}), Some(T0 + 10_000))
        .await
        .expect("later");
    let sms = store
        .enqueue(
            "sms",
            &json!({"to": "+8613800138000", "text": "您好"}),
            None,
        )
        .await
        .expect("sms");
    let overdue = store
        .enqueue("mail", &json!({"to": "overdue"}), Some(T0 - 1000))
        .await
        .expect("overdue");
    let ids = [a, later, sms, overdue];
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "ids grow: {ids:?}");

    let first = store
        .claim_job("mail", "w1", 30_000)
        .await
        .expect("claim")
        .expect("a due job");
    assert_eq!(first.id, overdue, "the earliest run_at first");
    assert_eq!(first.queue, "mail");
    assert_eq!(first.payload, json!({"to": "overdue"}));
    assert_eq!(first.attempts, 1);
    let second = store
        .claim_job("mail", "w2", 30_000)
        .await
        .expect("claim")
        .expect("a due job");
    assert_eq!(second.id, a);
    assert_eq!(
        store.claim_job("mail", "w3", 30_000).await.expect("claim"),
        None,
        "claimed jobs are not claimed twice; `later` is not due"
    );
    let text = store
        .claim_job("sms", "w1", 30_000)
        .await
        .expect("claim")
        .expect("the sms job");
    assert_eq!(text.id, sms);
    assert_eq!(text.payload["text"], "您好");
    assert_eq!(
        store.claim_job("sms", "w1", 30_000).await.expect("claim"),
        None
    );
    assert_eq!(
        store.claim_job("fax", "w1", 30_000).await.expect("claim"),
        None
    );

    store.complete_job(overdue).await.expect("complete");
    store.complete_job(a).await.expect("complete");
    clock.advance(10_000);
    let due = store
        .claim_job("mail", "w1", 30_000)
        .await
        .expect("claim")
        .expect("now due");
    assert_eq!(due.id, later);
    store.complete_job(later).await.expect("complete");
    // Completed jobs never come back, not even after their leases would have run out.
    clock.advance(3_600_000);
    assert_eq!(
        store.claim_job("mail", "w1", 30_000).await.expect("claim"),
        None
    );
    // The sms job was never completed: its lease ran out, so it is claimed again.
    let again = store
        .claim_job("sms", "w2", 30_000)
        .await
        .expect("claim")
        .expect("lease expired");
    assert_eq!((again.id, again.attempts), (sms, 2));
}

async fn job_leases_expire(store: Store) {
    let (store, clock) = fixed(store);
    let job = store
        .enqueue("index", &json!({"customer": 1}), None)
        .await
        .expect("enqueue");
    let claimed = store
        .claim_job("index", "w1", 1000)
        .await
        .expect("claim")
        .expect("job");
    assert_eq!((claimed.id, claimed.attempts), (job, 1));
    assert_eq!(
        store.claim_job("index", "w2", 1000).await.expect("claim"),
        None
    );
    clock.advance(999);
    assert_eq!(
        store.claim_job("index", "w2", 1000).await.expect("claim"),
        None,
        "still leased"
    );
    clock.advance(2);
    let taken_over = store
        .claim_job("index", "w2", 1000)
        .await
        .expect("claim")
        .expect("the lease ran out");
    assert_eq!((taken_over.id, taken_over.attempts), (job, 2));
    assert_eq!(taken_over.payload, json!({"customer": 1}));
    assert_eq!(
        store.claim_job("index", "w3", 1000).await.expect("claim"),
        None
    );
    store.complete_job(job).await.expect("complete");
    clock.advance(5000);
    assert_eq!(
        store.claim_job("index", "w3", 1000).await.expect("claim"),
        None
    );
}

async fn failing_jobs_stop_after_max_attempts(store: Store) {
    let (store, clock) = fixed(store);
    let bad = store
        .enqueue("import", &json!({"file": "bad.csv"}), None)
        .await
        .expect("bad");
    clock.advance(1);
    let good = store
        .enqueue("import", &json!({"file": "good.csv"}), None)
        .await
        .expect("good");
    // A failure waits for its retry time.
    let claimed = store
        .claim_job("import", "w", 60_000)
        .await
        .expect("claim")
        .expect("bad first");
    assert_eq!((claimed.id, claimed.attempts), (bad, 1));
    store
        .fail_job(bad, "parse error", 10_000)
        .await
        .expect("fail");
    let next = store
        .claim_job("import", "w", 60_000)
        .await
        .expect("claim")
        .expect("good job");
    assert_eq!(next.id, good, "one failing job does not block the queue");
    store.complete_job(good).await.expect("complete");
    assert_eq!(
        store.claim_job("import", "w", 60_000).await.expect("claim"),
        None
    );
    clock.advance(10_000);
    for attempt in 2..=5 {
        let claimed = store
            .claim_job("import", "w", 60_000)
            .await
            .expect("claim")
            .unwrap_or_else(|| panic!("attempt {attempt}"));
        assert_eq!((claimed.id, claimed.attempts), (bad, attempt));
        store.fail_job(bad, "parse error", 0).await.expect("fail");
    }
    assert_eq!(
        store.claim_job("import", "w", 60_000).await.expect("claim"),
        None,
        "five attempts and it stops"
    );
    clock.advance(86_400_000);
    assert_eq!(
        store.claim_job("import", "w", 60_000).await.expect("claim"),
        None
    );
}

async fn named_leases(store: Store) {
    let (store, clock) = fixed(store);
    assert!(
        store
            .try_lock("scheduler", "A", 10_000)
            .await
            .expect("lock")
    );
    assert!(
        !store
            .try_lock("scheduler", "B", 10_000)
            .await
            .expect("lock")
    );
    assert!(
        store.try_lock("other", "B", 10_000).await.expect("lock"),
        "names are independent"
    );
    clock.advance(5_000);
    assert!(
        store
            .try_lock("scheduler", "A", 10_000)
            .await
            .expect("renew"),
        "the holder renews"
    );
    clock.advance(9_999);
    assert!(
        !store
            .try_lock("scheduler", "B", 10_000)
            .await
            .expect("lock"),
        "the renewed lease still runs"
    );
    clock.advance(2);
    assert!(
        store
            .try_lock("scheduler", "B", 10_000)
            .await
            .expect("lock"),
        "an expired lease is taken over"
    );
    assert!(
        !store
            .try_lock("scheduler", "A", 10_000)
            .await
            .expect("lock")
    );
    store.unlock("scheduler", "A").await.expect("unlock");
    assert!(
        !store
            .try_lock("scheduler", "A", 10_000)
            .await
            .expect("lock"),
        "only the holder unlocks"
    );
    store.unlock("scheduler", "B").await.expect("unlock");
    assert!(
        store
            .try_lock("scheduler", "A", 10_000)
            .await
            .expect("lock")
    );
    store.unlock("nothing", "nobody").await.expect("unlock");
}

// ---------------------------------------------------------------------------------------
// Backups

async fn backup_sqlite_copies_the_database(store: Store) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let target = dir.path().join("backup.sqlite");
    match store.dialect() {
        Dialect::Postgres => {
            assert!(store.sqlite_path().is_none());
            expect_conflict(store.backup_sqlite(&target).await, "unsupported");
            assert!(!target.exists());
        }
        Dialect::Sqlite => {
            assert!(store.sqlite_path().is_some());
            let customer = store
                .create_customer(
                    &cli(),
                    NewCustomer {
                        contacts: Some(vec![contact(ContactChannel::Email, "b@example.com")]),
                        ..named("备份")
                    },
                )
                .await
                .expect("customer");
            let case = open_case(&store, &cli(), &customer, CaseKind::Order, "备份工单").await;
            let bytes = vec![0u8, 0xff, 0x10, 0x80];
            let attachment = store
                .add_attachment(
                    &cli(),
                    &case.id,
                    None,
                    "b.bin",
                    "application/octet-stream",
                    bytes.clone(),
                )
                .await
                .expect("attachment");
            store.backup_sqlite(&target).await.expect("backup");
            assert!(target.exists());
            expect_conflict(store.backup_sqlite(&target).await, "exists");
            // Changes after the backup are not in it.
            person(&store, "之后").await;

            let copy = Store::open(&StoreOptions::new(format!("sqlite://{}", target.display())))
                .await
                .expect("open the backup");
            assert_eq!(copy.customer_count().await.expect("count"), 1);
            assert_eq!(copy.case_count().await.expect("count"), 1);
            let restored = copy.customer(&customer.id).await.expect("customer");
            assert_eq!(
                serde_json::to_value(&restored).expect("json"),
                serde_json::to_value(&customer).expect("json")
            );
            assert_eq!(copy.case(&case.id).await.expect("case").subject, "备份工单");
            let (_, data) = copy
                .attachment_data(&attachment.id)
                .await
                .expect("attachment");
            assert_eq!(data, bytes);
            assert_eq!(
                copy.timeline_count().await.expect("count"),
                store.timeline_count().await.expect("count")
            );
            assert_eq!(
                audit_count(&copy).await + 1,
                audit_count(&store).await,
                "the backup has every audit entry up to it"
            );
            // The copy is a working store.
            let next = open_case(&copy, &cli(), &restored, CaseKind::Order, "继续").await;
            assert_eq!(next.number, case.number + 1);
            copy.close().await;
        }
    }
}
