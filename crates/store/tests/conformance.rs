//! The store conformance suite: every repository operation, run on SQLite and on a real
//! PostgreSQL server, with the same expectations.
//!
//! This file covers the customer archive; `conformance_cases.rs`, `conformance_users.rs`
//! and `conformance_platform.rs` cover the rest.

mod common;

use common::*;
use kefu_domain::cases::CaseKind;
use kefu_domain::contacts::ContactChannel;
use kefu_domain::customers::*;
use kefu_domain::timeline::{Channel, Direction, TimelineKind};
use kefu_domain::{Labelled, Timestamp};
use kefu_store::audit::AuditFilter;
use kefu_store::customers::{
    CustomFieldDefinition, Customer, CustomerFilter, CustomerPatch, NewContact, NewCustomer,
    NewTransaction, NewWinBackAttempt,
};
use kefu_store::page::PageRequest;
use kefu_store::{Actor, Store, StoreError};
use serde_json::{Map, Value, json};

kefu_testkit::conformance!(
    migrations_are_idempotent,
    customer_round_trip,
    customer_with_only_a_name_gets_the_defaults,
    customer_with_everything,
    customer_detail_gathers_the_cards,
    customer_list_filters,
    customer_sorts_and_cursor_pagination,
    customer_list_refuses_bad_pages,
    update_customer_with_versions,
    nullable_patch_clears_fields,
    lifecycle_transitions_follow_the_rules,
    losing_a_customer_needs_a_reason,
    duplicate_contacts_are_refused_without_half_writes,
    referrer_loops_are_refused,
    organization_must_be_an_organization,
    contacts_can_be_added_and_removed,
    transactions_are_recorded,
    win_back_attempts_only_for_lost_customers,
    delete_customer_only_without_cases,
    custom_fields_are_typed,
    field_sources_record_source_and_kind,
    customer_changes_are_audited,
    organisation_kind_change_keeps_no_organisation,
    organisation_with_members_stays_one,
);

async fn migrations_are_idempotent(store: Store) {
    let report = store.migrate().await.expect("second migrate");
    assert!(report.applied.is_empty());
    assert_eq!(report.already, kefu_store::MIGRATION_NAMES.len());
}

async fn customer_round_trip(store: Store) {
    let created = store
        .create_customer(
            &Actor::cli(),
            NewCustomer {
                name: "王芳".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(created.lifecycle, LifecycleState::Potential);
    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(fetched.name, "王芳");
    assert_eq!(fetched.version, 1);
}

// ---------------------------------------------------------------------------------------
// Helpers

fn json_of(customer: &Customer) -> Value {
    serde_json::to_value(customer).expect("serialise customer")
}

fn object(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("not an object: {other}"),
    }
}

fn field(
    key: &str,
    field_type: CustomFieldType,
    options: &[&str],
    kind: InformationKind,
) -> CustomFieldDefinition {
    CustomFieldDefinition {
        key: key.into(),
        label_en: format!("{key} label"),
        label_zh: format!("{key} 标签"),
        field_type,
        options: options.iter().map(|o| o.to_string()).collect(),
        information_kind: kind,
    }
}

async fn define_standard_fields(store: &Store) {
    for definition in [
        field(
            "tier",
            CustomFieldType::Select,
            &["gold", "silver"],
            InformationKind::Associated,
        ),
        field(
            "score",
            CustomFieldType::Number,
            &[],
            InformationKind::Behavioural,
        ),
        field(
            "vip",
            CustomFieldType::Boolean,
            &[],
            InformationKind::Behavioural,
        ),
        field(
            "birthday",
            CustomFieldType::Date,
            &[],
            InformationKind::Descriptive,
        ),
        field(
            "remark",
            CustomFieldType::Text,
            &[],
            InformationKind::Associated,
        ),
    ] {
        store
            .define_custom_field(&cli(), definition)
            .await
            .expect("define custom field");
    }
}

/// Field sources as comparable tuples, sorted by key.
fn sources(customer: &Customer) -> Vec<(String, InformationKind, InformationSource, i64)> {
    customer
        .field_sources
        .iter()
        .map(|(k, s)| (k.clone(), s.kind, s.source, s.at.0))
        .collect()
}

fn expected_sources(
    rows: &[(&str, InformationKind, InformationSource, i64)],
) -> Vec<(String, InformationKind, InformationSource, i64)> {
    let mut rows: Vec<_> = rows
        .iter()
        .map(|(k, kind, source, at)| (k.to_string(), *kind, *source, *at))
        .collect();
    rows.sort_by(|a, b| a.0.cmp(&b.0));
    rows
}

async fn names(store: &Store, filter: CustomerFilter, limit: u32) -> Vec<String> {
    walk(limit, async |p| store.customers(&filter, &p).await)
        .await
        .into_iter()
        .map(|c| c.name)
        .collect()
}

fn by_sort(sort: &str) -> CustomerFilter {
    CustomerFilter {
        sort: Some(sort.into()),
        ..Default::default()
    }
}

fn contact_rows(customer: &Customer) -> Vec<(ContactChannel, String, String, bool)> {
    customer
        .contacts
        .iter()
        .map(|c| {
            (
                c.channel,
                c.value.clone(),
                c.display_value.clone(),
                c.is_primary,
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// Creating

async fn customer_with_only_a_name_gets_the_defaults(store: Store) {
    let (store, _clock) = fixed(store);
    let created = store
        .create_customer(&cli(), named("  王芳 "))
        .await
        .expect("create");
    assert_eq!(created.name, "王芳");
    assert_eq!(created.kind, CustomerKind::Person);
    assert_eq!(created.organization_id, None);
    assert_eq!(created.value_class, ValueClass::Ordinary);
    assert_eq!(created.position, Position::External);
    assert_eq!(created.supply_chain_role, None);
    assert_eq!(created.lifecycle, LifecycleState::Potential);
    assert_eq!(created.lifecycle_changed_at, Timestamp(T0));
    assert_eq!(created.card, CardKind::Potential);
    assert_eq!(created.lead_source, None);
    assert_eq!(created.referrer_id, None);
    assert_eq!(created.qualification, Qualification::default());
    assert_eq!(created.qualification_assessment.row, None);
    assert_eq!(created.qualification_assessment.worth_contacting, None);
    assert_eq!(created.communication_type, None);
    assert_eq!(
        (
            created.language.as_str(),
            created.needs.as_str(),
            created.hobbies.as_str(),
            created.notes.as_str()
        ),
        ("", "", "", "")
    );
    assert_eq!(created.lost_at, None);
    assert_eq!(created.lost_reason, None);
    assert!(created.contacts.is_empty());
    assert!(created.custom_fields.is_empty());
    assert_eq!(created.created_at, Timestamp(T0));
    assert_eq!(created.updated_at, Timestamp(T0));
    assert_eq!(created.version, 1);
    use InformationKind::*;
    use InformationSource::Agent;
    assert_eq!(
        sources(&created),
        expected_sources(&[
            ("name", Descriptive, Agent, T0),
            ("kind", Descriptive, Agent, T0),
            ("value_class", Descriptive, Agent, T0),
            ("position", Descriptive, Agent, T0),
            ("lifecycle", Behavioural, Agent, T0),
        ])
    );

    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(json_of(&fetched), json_of(&created));
    assert_eq!(store.customer_count().await.expect("count"), 1);

    let detail = store.customer_detail(&created.id).await.expect("detail");
    assert_eq!(json_of(&detail.customer), json_of(&created));
    assert!(detail.referrer_chain.is_empty());
    assert_eq!(detail.lifecycle_history.len(), 1);
    let first = &detail.lifecycle_history[0];
    assert_eq!(
        (
            first.from,
            first.to,
            first.reason.as_str(),
            first.actor.as_str(),
            first.at
        ),
        (
            None,
            LifecycleState::Potential,
            "created",
            "cli",
            Timestamp(T0)
        )
    );
    assert!(detail.transactions.is_empty());
    assert_eq!(detail.total_spent_cents, 0);
    assert!(detail.win_back_attempts.is_empty());
    assert!(detail.communication_strategy.is_none());
    let history = store.lifecycle_history(&created.id).await.expect("history");
    assert_eq!(history.len(), 1);

    let long = "名".repeat(201);
    for bad in ["", "   ", "a\u{0}b", long.as_str()] {
        expect_invalid(store.create_customer(&cli(), named(bad)).await, "name");
    }
    assert_eq!(store.customer_count().await.expect("count"), 1);
    expect_not_found(
        store.customer("0190a0b0-0000-7000-8000-000000000000").await,
        "customer",
    );
    expect_not_found(store.customer("not-an-id").await, "customer");
    expect_not_found(store.customer_detail("not-an-id").await, "customer");
}

async fn customer_with_everything(store: Store) {
    let (store, _clock) = fixed(store);
    define_standard_fields(&store).await;
    let org = organization(&store, "北京ＡＢＣ科技有限公司").await;
    let referrer = person(&store, "李娜").await;
    let custom = object(json!({
        "tier": "gold",
        "score": 42.5,
        "vip": true,
        "birthday": "1990-02-28",
        "remark": "老客户",
    }));
    let created = store
        .create_customer(
            &cli(),
            NewCustomer {
                name: "王芳".into(),
                kind: Some(CustomerKind::Person),
                organization_id: Some(org.id.clone()),
                value_class: Some(ValueClass::Key),
                position: Some(Position::Internal),
                supply_chain_role: Some(SupplyChainRole::Consumer),
                lifecycle: Some(LifecycleState::Target),
                lead_source: Some(LeadSource::Referral),
                referrer_id: Some(referrer.id.clone()),
                qualification: Some(Qualification {
                    need: Some(true),
                    ability_to_pay: Some(true),
                    authority: Some(false),
                }),
                communication_type: Some(CommunicationType::Hesitant),
                language: Some("zh-CN".into()),
                needs: Some("需要一台打印机".into()),
                hobbies: Some("羽毛球".into()),
                notes: Some("喜欢电话联系".into()),
                contacts: Some(vec![
                    contact(ContactChannel::Email, " Wang.Fang@Example.COM "),
                    NewContact {
                        is_primary: true,
                        ..contact(ContactChannel::Phone, "+86 138-0013-8000")
                    },
                    contact(ContactChannel::Wechat, "@WangFang88"),
                ]),
                custom_fields: Some(custom.clone()),
                source: Some(InformationSource::Registration),
            },
        )
        .await
        .expect("create");

    assert_eq!(created.name, "王芳");
    assert_eq!(created.kind, CustomerKind::Person);
    assert_eq!(created.organization_id.as_deref(), Some(org.id.as_str()));
    assert_eq!(created.value_class, ValueClass::Key);
    assert_eq!(created.position, Position::Internal);
    assert_eq!(created.supply_chain_role, Some(SupplyChainRole::Consumer));
    assert_eq!(created.lifecycle, LifecycleState::Target);
    assert_eq!(created.card, CardKind::Potential);
    assert_eq!(created.lead_source, Some(LeadSource::Referral));
    assert_eq!(created.referrer_id.as_deref(), Some(referrer.id.as_str()));
    assert_eq!(
        created.qualification,
        Qualification {
            need: Some(true),
            ability_to_pay: Some(true),
            authority: Some(false)
        }
    );
    assert_eq!(created.qualification_assessment.row, Some(2));
    assert_eq!(
        created.qualification_assessment.worth_contacting,
        Some(true)
    );
    assert_eq!(
        created.qualification_assessment.strategy_zh,
        "可以接触，并设法找到具有决定权的人。"
    );
    assert_eq!(
        created.communication_type,
        Some(CommunicationType::Hesitant)
    );
    assert_eq!(created.language, "zh-CN");
    assert_eq!(created.needs, "需要一台打印机");
    assert_eq!(created.hobbies, "羽毛球");
    assert_eq!(created.notes, "喜欢电话联系");
    assert_eq!(
        contact_rows(&created),
        vec![
            (
                ContactChannel::Phone,
                "+8613800138000".to_string(),
                "+86 138-0013-8000".to_string(),
                true
            ),
            (
                ContactChannel::Email,
                "wang.fang@example.com".to_string(),
                "Wang.Fang@Example.COM".to_string(),
                false
            ),
            (
                ContactChannel::Wechat,
                "wangfang88".to_string(),
                "@WangFang88".to_string(),
                false
            ),
        ]
    );
    assert!(
        created
            .contacts
            .iter()
            .all(|c| c.source == InformationSource::Registration)
    );
    assert_eq!(created.custom_fields, custom);
    use InformationKind::*;
    use InformationSource::Registration as R;
    assert_eq!(
        sources(&created),
        expected_sources(&[
            ("name", Descriptive, R, T0),
            ("kind", Descriptive, R, T0),
            ("value_class", Descriptive, R, T0),
            ("position", Descriptive, R, T0),
            ("lifecycle", Behavioural, R, T0),
            ("organization_id", Descriptive, R, T0),
            ("supply_chain_role", Descriptive, R, T0),
            ("lead_source", Behavioural, R, T0),
            ("referrer_id", Behavioural, R, T0),
            ("qualification", Associated, R, T0),
            ("communication_type", Associated, R, T0),
            ("language", Descriptive, R, T0),
            ("needs", Associated, R, T0),
            ("hobbies", Associated, R, T0),
            ("notes", Associated, R, T0),
            ("contacts", Descriptive, R, T0),
            ("custom_fields.tier", Associated, R, T0),
            ("custom_fields.score", Behavioural, R, T0),
            ("custom_fields.vip", Behavioural, R, T0),
            ("custom_fields.birthday", Descriptive, R, T0),
            ("custom_fields.remark", Associated, R, T0),
        ])
    );

    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(json_of(&fetched), json_of(&created));

    let detail = store.customer_detail(&created.id).await.expect("detail");
    let chain: Vec<(String, String)> = detail
        .referrer_chain
        .iter()
        .map(|r| (r.id.clone(), r.name.clone()))
        .collect();
    assert_eq!(chain, vec![(referrer.id.clone(), "李娜".to_string())]);
    let strategy = detail.communication_strategy.expect("a strategy");
    let (en, zh) = CommunicationType::Hesitant.strategy();
    assert_eq!((strategy.en.as_str(), strategy.zh.as_str()), (en, zh));
    assert_eq!(detail.lifecycle_history.len(), 1);
    assert_eq!(detail.lifecycle_history[0].to, LifecycleState::Target);
    assert_eq!(detail.lifecycle_history[0].from, None);
    assert_eq!(store.customer_count().await.expect("count"), 3);
}

async fn customer_detail_gathers_the_cards(store: Store) {
    let (store, clock) = fixed(store);
    let a = person(&store, "张三").await;
    let b = store
        .create_customer(
            &cli(),
            NewCustomer {
                referrer_id: Some(a.id.clone()),
                ..named("李四")
            },
        )
        .await
        .expect("b");
    let c = store
        .create_customer(
            &cli(),
            NewCustomer {
                referrer_id: Some(b.id.clone()),
                ..named("王五")
            },
        )
        .await
        .expect("c");
    let chain: Vec<(String, String)> = store
        .customer_detail(&c.id)
        .await
        .expect("detail")
        .referrer_chain
        .into_iter()
        .map(|r| (r.id, r.name))
        .collect();
    assert_eq!(
        chain,
        vec![(b.id.clone(), "李四".into()), (a.id.clone(), "张三".into())]
    );
    assert!(
        store
            .customer_detail(&a.id)
            .await
            .expect("a")
            .referrer_chain
            .is_empty()
    );

    clock.advance(1000);
    store
        .transition_customer(&cli(), &c.id, LifecycleState::Target, "interested", None)
        .await
        .expect("target");
    clock.advance(1000);
    store
        .transition_customer(&cli(), &c.id, LifecycleState::Current, "first order", None)
        .await
        .expect("current");

    let spend = [
        (Some(T0 + 5000), 1999, None, "online", None),
        (
            Some(T0 - 86_400_000),
            500,
            Some("usd"),
            "store",
            Some("gift"),
        ),
        (None, 12345, None, "bank_transfer", None),
    ];
    for (occurred_at, amount_cents, currency, method, description) in spend {
        store
            .add_transaction(
                &cli(),
                &c.id,
                NewTransaction {
                    occurred_at: occurred_at.map(Timestamp),
                    method: method.into(),
                    amount_cents,
                    currency: currency.map(str::to_string),
                    description: description.map(str::to_string),
                },
            )
            .await
            .expect("transaction");
    }
    let detail = store.customer_detail(&c.id).await.expect("detail");
    assert_eq!(detail.customer.card, CardKind::Current);
    let transactions: Vec<(i64, i64, &str, &str, &str)> = detail
        .transactions
        .iter()
        .map(|t| {
            (
                t.occurred_at.0,
                t.amount_cents,
                t.method.as_str(),
                t.currency.as_str(),
                t.description.as_str(),
            )
        })
        .collect();
    assert_eq!(
        transactions,
        vec![
            (T0 + 5000, 1999, "online", "CNY", ""),
            (T0 + 2000, 12345, "bank_transfer", "CNY", ""),
            (T0 - 86_400_000, 500, "store", "USD", "gift"),
        ]
    );
    assert_eq!(detail.total_spent_cents, 1999 + 500 + 12345);

    clock.advance(1000);
    let lost = store
        .transition_customer(&cli(), &c.id, LifecycleState::Lost, "moved abroad", None)
        .await
        .expect("lost");
    assert_eq!(lost.lost_at, Some(Timestamp(T0 + 3000)));
    assert_eq!(lost.lost_reason.as_deref(), Some("moved abroad"));
    assert_eq!(lost.card, CardKind::Lost);

    store
        .add_win_back_attempt(
            &cli(),
            &c.id,
            NewWinBackAttempt {
                occurred_at: None,
                channel: Channel::Phone,
                outcome: "no_answer".into(),
                note: None,
            },
        )
        .await
        .expect("first attempt");
    clock.advance(1000);
    store
        .add_win_back_attempt(
            &cli(),
            &c.id,
            NewWinBackAttempt {
                occurred_at: Some(Timestamp(T0 + 10_000)),
                channel: Channel::Email,
                outcome: "interested".into(),
                note: Some("wants the catalogue".into()),
            },
        )
        .await
        .expect("second attempt");
    let detail = store.customer_detail(&c.id).await.expect("detail");
    let attempts: Vec<(i64, Channel, &str, &str)> = detail
        .win_back_attempts
        .iter()
        .map(|w| {
            (
                w.occurred_at.0,
                w.channel,
                w.outcome.as_str(),
                w.note.as_str(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        vec![
            (
                T0 + 10_000,
                Channel::Email,
                "interested",
                "wants the catalogue"
            ),
            (T0 + 3000, Channel::Phone, "no_answer", ""),
        ]
    );
    let history: Vec<(Option<LifecycleState>, LifecycleState, &str, &str, i64)> = detail
        .lifecycle_history
        .iter()
        .map(|h| (h.from, h.to, h.reason.as_str(), h.actor.as_str(), h.at.0))
        .collect();
    use LifecycleState::*;
    assert_eq!(
        history,
        vec![
            (Some(Current), Lost, "moved abroad", "cli", T0 + 3000),
            (Some(Target), Current, "first order", "cli", T0 + 2000),
            (Some(Potential), Target, "interested", "cli", T0 + 1000),
            (None, Potential, "created", "cli", T0),
        ]
    );
    assert_eq!(
        store.lifecycle_history(&c.id).await.expect("history").len(),
        4
    );
}

// ---------------------------------------------------------------------------------------
// Lists

async fn customer_list_filters(store: Store) {
    let (store, _clock) = fixed(store);
    let people: Vec<NewCustomer> = vec![
        NewCustomer {
            kind: Some(CustomerKind::Organization),
            value_class: Some(ValueClass::Key),
            lifecycle: Some(LifecycleState::Current),
            lead_source: Some(LeadSource::Advertising),
            supply_chain_role: Some(SupplyChainRole::Intermediate),
            ..named("北京ＡＢＣ科技有限公司")
        },
        NewCustomer {
            lead_source: Some(LeadSource::Referral),
            supply_chain_role: Some(SupplyChainRole::Consumer),
            contacts: Some(vec![contact(
                ContactChannel::Email,
                "Wang.Fang@Example.com",
            )]),
            ..named("王芳")
        },
        NewCustomer {
            lifecycle: Some(LifecycleState::Target),
            value_class: Some(ValueClass::Key),
            position: Some(Position::Internal),
            lead_source: Some(LeadSource::Telephone),
            contacts: Some(vec![contact(ContactChannel::Phone, "13800138000")]),
            ..named("李娜")
        },
        NewCustomer {
            lifecycle: Some(LifecycleState::Lost),
            supply_chain_role: Some(SupplyChainRole::PublicInterest),
            ..named("陈明")
        },
        NewCustomer {
            lifecycle: Some(LifecycleState::Current),
            lead_source: Some(LeadSource::WebSearch),
            contacts: Some(vec![contact(ContactChannel::Wechat, "alice_s")]),
            ..named("Alice Smith")
        },
        NewCustomer {
            kind: Some(CustomerKind::Organization),
            ..named("100%纯净水")
        },
        named("100纯净水"),
    ];
    for input in people {
        store.create_customer(&cli(), input).await.expect("create");
    }
    const ORG: &str = "北京ＡＢＣ科技有限公司";
    let all = vec![
        ORG,
        "王芳",
        "李娜",
        "陈明",
        "Alice Smith",
        "100%纯净水",
        "100纯净水",
    ];
    let q = |text: &str| CustomerFilter {
        q: Some(text.into()),
        ..Default::default()
    };
    let cases: Vec<(&str, CustomerFilter, Vec<&str>)> = vec![
        ("ascii in full-width name", q("abc"), vec![ORG]),
        ("full-width query", q("ＡＢＣ科技"), vec![ORG]),
        ("mixed case", q("Abc"), vec![ORG]),
        ("chinese substring", q("科技"), vec![ORG]),
        ("one character", q("芳"), vec!["王芳"]),
        ("email, upper case", q("WANG.FANG@EXAMPLE"), vec!["王芳"]),
        ("email, full width", q("ｗａｎｇ．ｆａｎｇ"), vec!["王芳"]),
        ("phone substring", q("0013800"), vec!["李娜"]),
        ("handle", q("alice_s"), vec!["Alice Smith"]),
        ("percent is literal", q("100%"), vec!["100%纯净水"]),
        ("lone percent", q("%"), vec!["100%纯净水"]),
        ("underscore is literal", q("0_纯"), vec![]),
        ("blank query is no filter", q("   "), all.clone()),
        ("no match", q("不存在"), vec![]),
        (
            "lifecycle potential",
            CustomerFilter {
                lifecycle: Some(LifecycleState::Potential),
                ..Default::default()
            },
            vec!["王芳", "100%纯净水", "100纯净水"],
        ),
        (
            "lifecycle current",
            CustomerFilter {
                lifecycle: Some(LifecycleState::Current),
                ..Default::default()
            },
            vec![ORG, "Alice Smith"],
        ),
        (
            "lifecycle lost",
            CustomerFilter {
                lifecycle: Some(LifecycleState::Lost),
                ..Default::default()
            },
            vec!["陈明"],
        ),
        (
            "value class key",
            CustomerFilter {
                value_class: Some(ValueClass::Key),
                ..Default::default()
            },
            vec![ORG, "李娜"],
        ),
        (
            "organisations",
            CustomerFilter {
                kind: Some(CustomerKind::Organization),
                ..Default::default()
            },
            vec![ORG, "100%纯净水"],
        ),
        (
            "people",
            CustomerFilter {
                kind: Some(CustomerKind::Person),
                ..Default::default()
            },
            vec!["王芳", "李娜", "陈明", "Alice Smith", "100纯净水"],
        ),
        (
            "internal",
            CustomerFilter {
                position: Some(Position::Internal),
                ..Default::default()
            },
            vec!["李娜"],
        ),
        (
            "lead source",
            CustomerFilter {
                lead_source: Some(LeadSource::Referral),
                ..Default::default()
            },
            vec!["王芳"],
        ),
        (
            "supply chain role",
            CustomerFilter {
                supply_chain_role: Some(SupplyChainRole::Intermediate),
                ..Default::default()
            },
            vec![ORG],
        ),
        (
            "people still potential",
            CustomerFilter {
                kind: Some(CustomerKind::Person),
                lifecycle: Some(LifecycleState::Potential),
                ..Default::default()
            },
            vec!["王芳", "100纯净水"],
        ),
        (
            "query and kind",
            CustomerFilter {
                kind: Some(CustomerKind::Organization),
                ..q("100")
            },
            vec!["100%纯净水"],
        ),
    ];
    for (label, filter, expected) in cases {
        let filter = CustomerFilter {
            sort: Some("created".into()),
            ..filter
        };
        assert_eq!(names(&store, filter, 2).await, expected, "{label}");
    }
}

async fn customer_sorts_and_cursor_pagination(store: Store) {
    let (store, clock) = fixed(store);
    let created_order = [
        "王芳", "李娜", "陳明", "陈明", "Alice", "趙強", "Zhou Lin", "安娜", "白雪",
    ];
    let mut ids = std::collections::HashMap::new();
    for name in created_order {
        let customer = person(&store, name).await;
        ids.insert(name, customer.id);
        clock.advance(1000);
    }
    // By pinyin: 安 an, 白 bai, 陳/陈 chen (same key: creation order), 李 li, 王 wang, 赵 zhao.
    let by_name = vec![
        "Alice", "安娜", "白雪", "陳明", "陈明", "李娜", "王芳", "趙強", "Zhou Lin",
    ];
    let by_name_desc = vec![
        "Zhou Lin", "趙強", "王芳", "李娜", "陈明", "陳明", "白雪", "安娜", "Alice",
    ];
    let created: Vec<&str> = created_order.to_vec();
    let created_desc: Vec<&str> = created_order.iter().rev().copied().collect();

    for (sort, expected) in [
        (Some("name"), &by_name),
        (Some("-name"), &by_name_desc),
        (Some("created"), &created),
        (Some("-created"), &created_desc),
        (None, &created_desc),
        // Nothing was updated after creation yet: updated follows creation.
        (Some("updated"), &created),
    ] {
        for limit in [1, 2, 4, 200] {
            let filter = CustomerFilter {
                sort: sort.map(str::to_string),
                ..Default::default()
            };
            assert_eq!(
                &names(&store, filter, limit).await,
                expected,
                "sort {sort:?}, limit {limit}"
            );
        }
    }

    // Update three customers at distinct later times.
    for name in ["陳明", "王芳", "Zhou Lin"] {
        store
            .update_customer(
                &cli(),
                &ids[name],
                CustomerPatch {
                    notes: Some(format!("touched {name}")),
                    ..Default::default()
                },
                None,
            )
            .await
            .expect("update");
        clock.advance(1000);
    }
    let updated = vec![
        "李娜", "陈明", "Alice", "趙強", "安娜", "白雪", "陳明", "王芳", "Zhou Lin",
    ];
    let updated_desc: Vec<&str> = updated.iter().rev().copied().collect();
    for limit in [1, 3, 200] {
        assert_eq!(
            names(&store, by_sort("updated"), limit).await,
            updated,
            "limit {limit}"
        );
        assert_eq!(
            names(&store, by_sort("-updated"), limit).await,
            updated_desc,
            "limit {limit}"
        );
    }

    for name in ["白雪", "王芳"] {
        store
            .transition_customer(&cli(), &ids[name], LifecycleState::Target, "call", None)
            .await
            .expect("transition");
        clock.advance(1000);
    }
    let lifecycle_changed = vec![
        "李娜", "陳明", "陈明", "Alice", "趙強", "Zhou Lin", "安娜", "白雪", "王芳",
    ];
    for limit in [2, 200] {
        assert_eq!(
            names(&store, by_sort("lifecycle_changed"), limit).await,
            lifecycle_changed,
            "limit {limit}"
        );
    }

    // A renamed customer moves in the name order.
    store
        .update_customer(
            &cli(),
            &ids["Alice"],
            CustomerPatch {
                name: Some("Zoe".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("rename");
    let renamed = names(&store, by_sort("name"), 3).await;
    assert_eq!(renamed.first().map(String::as_str), Some("安娜"));
    assert_eq!(renamed.last().map(String::as_str), Some("Zoe"));

    // A page with a filter and a cursor keeps both.
    let filter = CustomerFilter {
        lifecycle: Some(LifecycleState::Target),
        sort: Some("name".into()),
        ..Default::default()
    };
    assert_eq!(names(&store, filter, 1).await, vec!["白雪", "王芳"]);
}

async fn customer_list_refuses_bad_pages(store: Store) {
    for name in ["甲", "乙", "丙"] {
        person(&store, name).await;
    }
    let first = store
        .customers(&by_sort("name"), &page(1))
        .await
        .expect("first page");
    let cursor = first.next_cursor.expect("a cursor");
    let with = |cursor: &str| PageRequest {
        limit: Some(1),
        cursor: Some(cursor.into()),
    };
    expect_invalid(
        store.customers(&by_sort("-name"), &with(&cursor)).await,
        "cursor",
    );
    expect_invalid(
        store.customers(&by_sort("created"), &with(&cursor)).await,
        "cursor",
    );
    expect_invalid(
        store.customers(&by_sort("name"), &with("garbage!")).await,
        "cursor",
    );
    for limit in [0, 201] {
        expect_invalid(
            store
                .customers(&CustomerFilter::default(), &page(limit))
                .await,
            "limit",
        );
    }
    expect_invalid(
        store.customers(&by_sort("password"), &page(10)).await,
        "sort",
    );
    let default_page = store
        .customers(&CustomerFilter::default(), &PageRequest::default())
        .await
        .expect("default page");
    assert_eq!(default_page.items.len(), 3);
    assert!(default_page.next_cursor.is_none());
}

// ---------------------------------------------------------------------------------------
// Updating

async fn update_customer_with_versions(store: Store) {
    let (store, clock) = fixed(store);
    let created = store
        .create_customer(
            &cli(),
            NewCustomer {
                needs: Some("a".into()),
                ..named("王芳")
            },
        )
        .await
        .expect("create");
    clock.advance(1000);
    let updated = store
        .update_customer(
            &cli(),
            &created.id,
            CustomerPatch {
                name: Some(" 王小芳 ".into()),
                needs: Some("打印机".into()),
                value_class: Some(ValueClass::Key),
                ..Default::default()
            },
            Some(1),
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "王小芳");
    assert_eq!(updated.needs, "打印机");
    assert_eq!(updated.value_class, ValueClass::Key);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.created_at, Timestamp(T0));
    assert_eq!(updated.updated_at, Timestamp(T0 + 1000));
    let audits = audit_of(&store, "customer", &created.id).await.len();

    clock.advance(1000);
    expect_version_mismatch(
        store
            .update_customer(
                &cli(),
                &created.id,
                CustomerPatch {
                    name: Some("X".into()),
                    ..Default::default()
                },
                Some(1),
            )
            .await,
        "customer",
        1,
        2,
    );
    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(json_of(&fetched), json_of(&updated), "nothing changed");
    assert_eq!(
        audit_of(&store, "customer", &created.id).await.len(),
        audits
    );

    expect_invalid(
        store
            .update_customer(
                &cli(),
                &created.id,
                CustomerPatch {
                    name: Some("  ".into()),
                    ..Default::default()
                },
                None,
            )
            .await,
        "name",
    );
    assert_eq!(store.customer(&created.id).await.expect("fetch").version, 2);

    let again = store
        .update_customer(
            &cli(),
            &created.id,
            CustomerPatch {
                notes: Some("VIP".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update without a version");
    assert_eq!(again.version, 3);
    assert_eq!(again.name, "王小芳");
    assert_eq!(again.needs, "打印机");

    // The search text follows the new name.
    let search = |text: &str| CustomerFilter {
        q: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(names(&store, search("小芳"), 10).await, vec!["王小芳"]);
    assert!(names(&store, search("王芳"), 10).await.is_empty());

    expect_not_found(
        store
            .update_customer(
                &cli(),
                "0190a0b0-0000-7000-8000-000000000000",
                CustomerPatch::default(),
                None,
            )
            .await,
        "customer",
    );
}

async fn nullable_patch_clears_fields(store: Store) {
    let org = organization(&store, "某公司").await;
    let referrer = person(&store, "介绍人").await;
    let created = store
        .create_customer(
            &cli(),
            NewCustomer {
                organization_id: Some(org.id.clone()),
                supply_chain_role: Some(SupplyChainRole::Consumer),
                lead_source: Some(LeadSource::Referral),
                referrer_id: Some(referrer.id.clone()),
                communication_type: Some(CommunicationType::Cautious),
                value_class: Some(ValueClass::Key),
                needs: Some("needs".into()),
                hobbies: Some("hobbies".into()),
                ..named("客户")
            },
        )
        .await
        .expect("create");

    // An empty patch changes nothing but the version.
    let same = store
        .update_customer(&cli(), &created.id, CustomerPatch::default(), Some(1))
        .await
        .expect("empty patch");
    assert_eq!(same.organization_id.as_deref(), Some(org.id.as_str()));
    assert_eq!(same.referrer_id.as_deref(), Some(referrer.id.as_str()));
    assert_eq!(same.supply_chain_role, Some(SupplyChainRole::Consumer));
    assert_eq!(same.lead_source, Some(LeadSource::Referral));
    assert_eq!(same.communication_type, Some(CommunicationType::Cautious));
    assert_eq!(same.version, 2);

    let cleared = store
        .update_customer(
            &cli(),
            &created.id,
            CustomerPatch {
                organization_id: Some(None),
                supply_chain_role: Some(None),
                lead_source: Some(None),
                referrer_id: Some(None),
                communication_type: Some(None),
                needs: Some(String::new()),
                ..Default::default()
            },
            Some(2),
        )
        .await
        .expect("clear");
    assert_eq!(cleared.organization_id, None);
    assert_eq!(cleared.supply_chain_role, None);
    assert_eq!(cleared.lead_source, None);
    assert_eq!(cleared.referrer_id, None);
    assert_eq!(cleared.communication_type, None);
    assert_eq!(cleared.needs, "");
    // Untouched fields stay.
    assert_eq!(cleared.hobbies, "hobbies");
    assert_eq!(cleared.value_class, ValueClass::Key);
    assert_eq!(cleared.name, "客户");

    let detail = store.customer_detail(&created.id).await.expect("detail");
    assert!(detail.referrer_chain.is_empty());
    assert!(detail.communication_strategy.is_none());
    assert_eq!(json_of(&detail.customer), json_of(&cleared));
}

// ---------------------------------------------------------------------------------------
// Lifecycle

async fn lifecycle_transitions_follow_the_rules(store: Store) {
    use LifecycleState::*;
    let (store, clock) = fixed(store);
    let allowed = [
        (Potential, Target),
        (Potential, Current),
        (Potential, Lost),
        (Target, Potential),
        (Target, Current),
        (Target, Lost),
        (Current, Lost),
        (Lost, Target),
        (Lost, Current),
    ];
    let card = |state: LifecycleState| match state {
        Potential | Target => CardKind::Potential,
        Current => CardKind::Current,
        Lost => CardKind::Lost,
    };
    for from in LifecycleState::ALL.iter().copied() {
        for to in LifecycleState::ALL.iter().copied() {
            let created = store
                .create_customer(
                    &cli(),
                    NewCustomer {
                        lifecycle: Some(from),
                        ..named(&format!("{from} to {to}"))
                    },
                )
                .await
                .expect("create");
            let created_at = store.now_ms();
            clock.advance(1000);
            let result = store
                .transition_customer(&cli(), &created.id, to, "because", Some(1))
                .await;
            if allowed.contains(&(from, to)) {
                let moved = result.unwrap_or_else(|e| panic!("{from} -> {to}: {e:?}"));
                assert_eq!(moved.lifecycle, to);
                assert_eq!(moved.card, card(to));
                assert_eq!(moved.version, 2);
                assert_eq!(moved.lifecycle_changed_at, Timestamp(store.now_ms()));
                let history = store.lifecycle_history(&created.id).await.expect("history");
                assert_eq!(
                    (history[0].from, history[0].to, history[0].reason.as_str()),
                    (Some(from), to, "because")
                );
            } else {
                expect_transition_refused(result, from.as_str(), to.as_str());
                let fetched = store.customer(&created.id).await.expect("fetch");
                assert_eq!(fetched.lifecycle, from, "{from} -> {to}");
                assert_eq!(fetched.version, 1, "{from} -> {to}");
                assert_eq!(fetched.lifecycle_changed_at, Timestamp(created_at));
                assert_eq!(
                    store
                        .lifecycle_history(&created.id)
                        .await
                        .expect("history")
                        .len(),
                    1
                );
            }
        }
    }
}

async fn losing_a_customer_needs_a_reason(store: Store) {
    let (store, clock) = fixed(store);
    let created = person(&store, "王芳").await;
    clock.advance(1000);
    for reason in ["", "   "] {
        expect_invalid(
            store
                .transition_customer(&cli(), &created.id, LifecycleState::Lost, reason, None)
                .await,
            "reason",
        );
    }
    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(
        (fetched.lifecycle, fetched.version, fetched.lost_at),
        (LifecycleState::Potential, 1, None)
    );
    expect_version_mismatch(
        store
            .transition_customer(&cli(), &created.id, LifecycleState::Lost, "搬家了", Some(7))
            .await,
        "customer",
        7,
        1,
    );
    let lost = store
        .transition_customer(
            &cli(),
            &created.id,
            LifecycleState::Lost,
            " 搬家了 ",
            Some(1),
        )
        .await
        .expect("lost");
    assert_eq!(lost.lifecycle, LifecycleState::Lost);
    assert_eq!(lost.card, CardKind::Lost);
    assert_eq!(lost.lost_at, Some(Timestamp(T0 + 1000)));
    assert_eq!(lost.lost_reason.as_deref(), Some("搬家了"));
    assert_eq!(lost.updated_at, Timestamp(T0 + 1000));
    assert_eq!(lost.version, 2);
    let source = &lost.field_sources["lifecycle"];
    assert_eq!(
        (source.kind, source.source, source.at),
        (
            InformationKind::Behavioural,
            InformationSource::Agent,
            Timestamp(T0 + 1000)
        )
    );

    // The change is on the timeline.
    let timeline = timeline_of(&store, &created.id).await;
    assert_eq!(timeline.len(), 1);
    let entry = &timeline[0];
    assert_eq!(entry.kind, TimelineKind::Lifecycle);
    assert_eq!(entry.channel, Channel::System);
    assert_eq!(entry.direction, Direction::CompanyInitiated);
    assert_eq!(
        entry.data,
        json!({"from": "potential", "to": "lost", "reason": "搬家了"})
    );
    assert_eq!(entry.occurred_at, Timestamp(T0 + 1000));

    // Won back: the state moves on.
    clock.advance(1000);
    let back = store
        .transition_customer(&cli(), &created.id, LifecycleState::Current, "", Some(2))
        .await
        .expect("won back");
    assert_eq!(back.card, CardKind::Current);
    assert_eq!(back.lifecycle_changed_at, Timestamp(T0 + 2000));
    expect_not_found(
        store
            .transition_customer(&cli(), "nope", LifecycleState::Lost, "x", None)
            .await,
        "customer",
    );
}

// ---------------------------------------------------------------------------------------
// Contacts, referrers, organisations

async fn duplicate_contacts_are_refused_without_half_writes(store: Store) {
    let rows = [
        (
            ContactChannel::Email,
            "Li.Na@Example.com",
            "ｌｉ．ｎａ＠ＥＸＡＭＰＬＥ．ｃｏｍ",
        ),
        (
            ContactChannel::Email,
            "zhang@example.com",
            " ZHANG@EXAMPLE.COM ",
        ),
        (
            ContactChannel::Phone,
            "+86 138-0013-8000",
            "0086 (138) 0013 8000",
        ),
        (
            ContactChannel::Phone,
            "13900139000",
            "１３９００１３９０００",
        ),
        (ContactChannel::Wechat, "WangXiaoMing", "@wangxiaoming"),
    ];
    let other = person(&store, "其他").await;
    for (index, (channel, existing, duplicate)) in rows.into_iter().enumerate() {
        let owner = store
            .create_customer(
                &cli(),
                NewCustomer {
                    contacts: Some(vec![contact(channel, existing)]),
                    ..named(&format!("owner{index}"))
                },
            )
            .await
            .expect("owner");
        let customers = store.customer_count().await.expect("count");
        let audits = audit_count(&store).await;
        let timeline = store.timeline_count().await.expect("timeline count");

        let result = store
            .create_customer(
                &cli(),
                NewCustomer {
                    contacts: Some(vec![
                        contact(ContactChannel::Email, &format!("fresh{index}@example.com")),
                        contact(channel, duplicate),
                    ]),
                    ..named(&format!("dup{index}"))
                },
            )
            .await;
        expect_conflict(result, "duplicate_contact");
        assert_eq!(
            store.customer_count().await.expect("count"),
            customers,
            "{duplicate}"
        );
        assert_eq!(audit_count(&store).await, audits, "{duplicate}");
        assert_eq!(store.timeline_count().await.expect("count"), timeline);
        let search = CustomerFilter {
            q: Some(format!("dup{index}")),
            ..Default::default()
        };
        assert!(names(&store, search, 10).await.is_empty());
        // The fresh address of the refused customer was not kept either.
        store
            .add_contact(
                &cli(),
                &other.id,
                contact(ContactChannel::Email, &format!("fresh{index}@example.com")),
            )
            .await
            .expect("the fresh address is free");

        let before = store.customer(&other.id).await.expect("other");
        expect_conflict(
            store
                .add_contact(&cli(), &other.id, contact(channel, duplicate))
                .await,
            "duplicate_contact",
        );
        let after = store.customer(&other.id).await.expect("other");
        assert_eq!(json_of(&after), json_of(&before));
        let owner_now = store.customer(&owner.id).await.expect("owner");
        assert_eq!(owner_now.contacts.len(), 1);
    }

    // The same address twice in one request.
    let customers = store.customer_count().await.expect("count");
    expect_conflict(
        store
            .create_customer(
                &cli(),
                NewCustomer {
                    contacts: Some(vec![
                        contact(ContactChannel::Email, "twice@example.com"),
                        contact(ContactChannel::Email, "TWICE@example.com"),
                    ]),
                    ..named("twice")
                },
            )
            .await,
        "duplicate_contact",
    );
    assert_eq!(store.customer_count().await.expect("count"), customers);

    // The same text on different channels is not a duplicate.
    store
        .create_customer(
            &cli(),
            NewCustomer {
                contacts: Some(vec![
                    contact(ContactChannel::Qq, "12345678"),
                    contact(ContactChannel::Wechat, "12345678"),
                ]),
                ..named("two channels")
            },
        )
        .await
        .expect("different channels");
    // An invalid address is refused as invalid.
    expect_invalid(
        store
            .create_customer(
                &cli(),
                NewCustomer {
                    contacts: Some(vec![contact(ContactChannel::Email, "not-an-email")]),
                    ..named("bad")
                },
            )
            .await,
        "value",
    );
}

async fn referrer_loops_are_refused(store: Store) {
    let a = person(&store, "A").await;
    let b = store
        .create_customer(
            &cli(),
            NewCustomer {
                referrer_id: Some(a.id.clone()),
                ..named("B")
            },
        )
        .await
        .expect("b");
    let c = store
        .create_customer(
            &cli(),
            NewCustomer {
                referrer_id: Some(b.id.clone()),
                ..named("C")
            },
        )
        .await
        .expect("c");
    let refer = |id: &str| CustomerPatch {
        referrer_id: Some(Some(id.to_string())),
        ..Default::default()
    };
    // A ← B ← C: A referred by C, or anybody by themselves, is a loop.
    for (customer, referrer) in [(&a, &c), (&a, &b), (&a, &a), (&b, &c)] {
        expect_invalid(
            store
                .update_customer(&cli(), &customer.id, refer(&referrer.id), None)
                .await,
            "referrer_id",
        );
        let fetched = store.customer(&customer.id).await.expect("fetch");
        assert_eq!(fetched.version, 1);
    }
    assert_eq!(store.customer(&a.id).await.expect("a").referrer_id, None);
    // Not a loop: C referring A's new friend D, and A referred by a newcomer.
    let d = person(&store, "D").await;
    let a2 = store
        .update_customer(&cli(), &a.id, refer(&d.id), None)
        .await
        .expect("a referred by d");
    assert_eq!(a2.referrer_id.as_deref(), Some(d.id.as_str()));
    let chain: Vec<String> = store
        .customer_detail(&c.id)
        .await
        .expect("detail")
        .referrer_chain
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(chain, vec!["B", "A", "D"]);
    // And now D cannot be referred by C.
    expect_invalid(
        store
            .update_customer(&cli(), &d.id, refer(&c.id), None)
            .await,
        "referrer_id",
    );
    for missing in ["0190a0b0-0000-7000-8000-000000000000", "not-an-id"] {
        expect_invalid(
            store
                .create_customer(
                    &cli(),
                    NewCustomer {
                        referrer_id: Some(missing.into()),
                        ..named("E")
                    },
                )
                .await,
            "referrer_id",
        );
    }

    // The chain shows the nearest ten links.
    let mut previous = person(&store, "r0").await;
    for index in 1..=12 {
        previous = store
            .create_customer(
                &cli(),
                NewCustomer {
                    referrer_id: Some(previous.id.clone()),
                    ..named(&format!("r{index}"))
                },
            )
            .await
            .expect("link");
    }
    let chain: Vec<String> = store
        .customer_detail(&previous.id)
        .await
        .expect("detail")
        .referrer_chain
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(
        chain,
        (2..=11).rev().map(|i| format!("r{i}")).collect::<Vec<_>>()
    );
}

async fn organization_must_be_an_organization(store: Store) {
    let org = organization(&store, "公司").await;
    let somebody = person(&store, "某人").await;
    let customers = store.customer_count().await.expect("count");
    expect_invalid(
        store
            .create_customer(
                &cli(),
                NewCustomer {
                    organization_id: Some(somebody.id.clone()),
                    ..named("员工")
                },
            )
            .await,
        "organization_id",
    );
    expect_invalid(
        store
            .create_customer(
                &cli(),
                NewCustomer {
                    kind: Some(CustomerKind::Organization),
                    organization_id: Some(org.id.clone()),
                    ..named("子公司")
                },
            )
            .await,
        "organization_id",
    );
    for missing in ["0190a0b0-0000-7000-8000-000000000000", "x"] {
        expect_invalid(
            store
                .create_customer(
                    &cli(),
                    NewCustomer {
                        organization_id: Some(missing.into()),
                        ..named("员工")
                    },
                )
                .await,
            "organization_id",
        );
    }
    assert_eq!(store.customer_count().await.expect("count"), customers);

    let member = store
        .create_customer(
            &cli(),
            NewCustomer {
                organization_id: Some(org.id.clone()),
                ..named("员工")
            },
        )
        .await
        .expect("member");
    assert_eq!(member.organization_id.as_deref(), Some(org.id.as_str()));
    let join = |id: &str| CustomerPatch {
        organization_id: Some(Some(id.to_string())),
        ..Default::default()
    };
    expect_invalid(
        store
            .update_customer(&cli(), &member.id, join(&somebody.id), None)
            .await,
        "organization_id",
    );
    expect_invalid(
        store
            .update_customer(&cli(), &org.id, join(&org.id), None)
            .await,
        "organization_id",
    );
    let other_org = organization(&store, "另一公司").await;
    expect_invalid(
        store
            .update_customer(&cli(), &org.id, join(&other_org.id), None)
            .await,
        "organization_id",
    );
    let moved = store
        .update_customer(&cli(), &member.id, join(&other_org.id), Some(1))
        .await
        .expect("move to another organisation");
    assert_eq!(
        moved.organization_id.as_deref(),
        Some(other_org.id.as_str())
    );
    assert_eq!(store.customer(&org.id).await.expect("org").version, 1);
}

async fn contacts_can_be_added_and_removed(store: Store) {
    let (store, clock) = fixed(store);
    let created = store
        .create_customer(
            &cli(),
            NewCustomer {
                contacts: Some(vec![NewContact {
                    is_primary: true,
                    ..contact(ContactChannel::Email, "a@example.com")
                }]),
                ..named("联系人")
            },
        )
        .await
        .expect("create");
    let a_id = created.contacts[0].id.clone();
    clock.advance(1000);
    let with_phone = store
        .add_contact(
            &cli(),
            &created.id,
            contact(ContactChannel::Phone, "138 0013 8000"),
        )
        .await
        .expect("add phone");
    assert_eq!(with_phone.version, 2);
    assert_eq!(with_phone.updated_at, Timestamp(T0 + 1000));
    assert_eq!(
        contact_rows(&with_phone),
        vec![
            (
                ContactChannel::Email,
                "a@example.com".into(),
                "a@example.com".into(),
                true
            ),
            (
                ContactChannel::Phone,
                "13800138000".into(),
                "138 0013 8000".into(),
                false
            ),
        ]
    );
    assert_eq!(with_phone.contacts[1].source, InformationSource::Agent);
    let search = |text: &str| CustomerFilter {
        q: Some(text.into()),
        ..Default::default()
    };
    assert_eq!(
        names(&store, search("13800138000"), 5).await,
        vec!["联系人"]
    );
    assert_eq!(names(&store, search("138 0013"), 5).await, vec!["联系人"]);

    // A new primary email takes over from the old one; the phone stays as it is.
    let with_b = store
        .add_contact(
            &cli(),
            &created.id,
            NewContact {
                is_primary: true,
                ..contact(ContactChannel::Email, "B@Example.com")
            },
        )
        .await
        .expect("add primary");
    assert_eq!(
        contact_rows(&with_b),
        vec![
            (
                ContactChannel::Email,
                "b@example.com".into(),
                "B@Example.com".into(),
                true
            ),
            (
                ContactChannel::Email,
                "a@example.com".into(),
                "a@example.com".into(),
                false
            ),
            (
                ContactChannel::Phone,
                "13800138000".into(),
                "138 0013 8000".into(),
                false
            ),
        ]
    );
    assert_eq!(with_b.version, 3);

    let removed = store
        .remove_contact(&cli(), &created.id, &a_id)
        .await
        .expect("remove");
    assert_eq!(removed.version, 4);
    assert_eq!(
        removed
            .contacts
            .iter()
            .map(|c| c.value.as_str())
            .collect::<Vec<_>>(),
        vec!["b@example.com", "13800138000"]
    );
    assert!(names(&store, search("a@example"), 5).await.is_empty());
    assert_eq!(names(&store, search("b@example"), 5).await, vec!["联系人"]);
    // The address is free again.
    let other = store
        .create_customer(
            &cli(),
            NewCustomer {
                contacts: Some(vec![contact(ContactChannel::Email, "a@example.com")]),
                ..named("其他")
            },
        )
        .await
        .expect("address reused");
    expect_not_found(
        store.remove_contact(&cli(), &created.id, &a_id).await,
        "contact",
    );
    // Another customer's contact cannot be removed through this one.
    expect_not_found(
        store
            .remove_contact(&cli(), &created.id, &other.contacts[0].id)
            .await,
        "contact",
    );
    assert_eq!(
        store
            .customer(&other.id)
            .await
            .expect("other")
            .contacts
            .len(),
        1
    );
    expect_invalid(
        store
            .add_contact(
                &cli(),
                &created.id,
                contact(ContactChannel::Phone, "call me"),
            )
            .await,
        "value",
    );
    assert_eq!(store.customer(&created.id).await.expect("c").version, 4);
}

async fn transactions_are_recorded(store: Store) {
    let (store, _clock) = fixed(store);
    let customer = person(&store, "买家").await;
    let tx = |method: &str, amount: i64, currency: Option<&str>| NewTransaction {
        occurred_at: None,
        method: method.into(),
        amount_cents: amount,
        currency: currency.map(str::to_string),
        description: None,
    };
    let first = store
        .add_transaction(&cli(), &customer.id, tx(" online ", 1999, None))
        .await
        .expect("transaction");
    assert_eq!(first.method, "online");
    assert_eq!(first.currency, "CNY");
    assert_eq!(first.description, "");
    assert_eq!(first.amount_cents, 1999);
    assert_eq!(first.occurred_at, Timestamp(T0));
    let second = store
        .add_transaction(&cli(), &customer.id, tx("store", 501, Some("usd")))
        .await
        .expect("transaction");
    assert_eq!(second.currency, "USD");
    for currency in ["US", "usdd", "U$D", "12A", ""] {
        expect_invalid(
            store
                .add_transaction(&cli(), &customer.id, tx("online", 1, Some(currency)))
                .await,
            "currency",
        );
    }
    expect_invalid(
        store
            .add_transaction(&cli(), &customer.id, tx("  ", 1, None))
            .await,
        "method",
    );
    expect_not_found(
        store
            .add_transaction(
                &cli(),
                "0190a0b0-0000-7000-8000-000000000000",
                tx("online", 1, None),
            )
            .await,
        "customer",
    );
    let detail = store.customer_detail(&customer.id).await.expect("detail");
    assert_eq!(detail.total_spent_cents, 2500);
    assert_eq!(
        detail
            .transactions
            .iter()
            .map(|t| t.id.as_str())
            .collect::<Vec<_>>(),
        vec![second.id.as_str(), first.id.as_str()],
        "same time: newest first"
    );
    let timeline = timeline_of(&store, &customer.id).await;
    assert_eq!(timeline.len(), 2);
    assert!(timeline.iter().all(|e| e.kind == TimelineKind::Transaction));
    assert_eq!(timeline[1].data["transaction_id"], json!(first.id));
    assert_eq!(timeline[1].data["amount_cents"], json!(1999));
    assert_eq!(timeline[1].data["currency"], json!("CNY"));
    assert_eq!(timeline[1].direction, Direction::CustomerInitiated);
    assert!(timeline[1].summary.starts_with("CNY 19.99"));
    let audit = audit_of(&store, "customer_transaction", &first.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    assert_eq!(
        audit[0].after.as_ref().expect("after")["amount_cents"],
        1999
    );
    // The card shows the newest 50; the total counts them all.
    let regular = person(&store, "常客").await;
    for day in 0..52 {
        store
            .add_transaction(
                &cli(),
                &regular.id,
                NewTransaction {
                    occurred_at: Some(Timestamp(T0 + day * 86_400_000)),
                    ..tx("online", 100 + day, None)
                },
            )
            .await
            .expect("transaction");
    }
    let detail = store.customer_detail(&regular.id).await.expect("detail");
    assert_eq!(detail.transactions.len(), 50);
    assert_eq!(detail.transactions[0].amount_cents, 151);
    assert_eq!(detail.transactions[49].amount_cents, 102);
    assert_eq!(detail.total_spent_cents, (100..152).sum::<i64>());
    // Refunds and purchases near the limit, on both sides of 2³²: the total is exact.
    let big = person(&store, "大客户").await;
    let amounts = [
        100_000_000_000_000,
        -4_294_967_297,
        99_999_999_999_999,
        -100_000_000_000_000,
        4_294_967_295,
        -7,
    ];
    for amount in amounts {
        store
            .add_transaction(&cli(), &big.id, tx("online", amount, None))
            .await
            .expect("transaction");
    }
    let detail = store.customer_detail(&big.id).await.expect("detail");
    assert_eq!(detail.total_spent_cents, amounts.iter().sum::<i64>());
    assert_eq!(detail.transactions.len(), amounts.len());
}

async fn win_back_attempts_only_for_lost_customers(store: Store) {
    let (store, _clock) = fixed(store);
    let attempt = || NewWinBackAttempt {
        occurred_at: None,
        channel: Channel::Phone,
        outcome: "reached".into(),
        note: Some("答应考虑".into()),
    };
    for state in [
        LifecycleState::Potential,
        LifecycleState::Target,
        LifecycleState::Current,
    ] {
        let customer = store
            .create_customer(
                &cli(),
                NewCustomer {
                    lifecycle: Some(state),
                    ..named(&format!("{state}"))
                },
            )
            .await
            .expect("create");
        expect_conflict(
            store
                .add_win_back_attempt(&cli(), &customer.id, attempt())
                .await,
            "not_lost",
        );
        assert!(
            store
                .customer_detail(&customer.id)
                .await
                .expect("detail")
                .win_back_attempts
                .is_empty()
        );
    }
    let customer = person(&store, "流失").await;
    store
        .transition_customer(&cli(), &customer.id, LifecycleState::Lost, "price", None)
        .await
        .expect("lost");
    let recorded = store
        .add_win_back_attempt(&cli(), &customer.id, attempt())
        .await
        .expect("attempt");
    assert_eq!(recorded.outcome, "reached");
    assert_eq!(recorded.note, "答应考虑");
    assert_eq!(recorded.channel, Channel::Phone);
    assert_eq!(recorded.occurred_at, Timestamp(T0));
    expect_invalid(
        store
            .add_win_back_attempt(
                &cli(),
                &customer.id,
                NewWinBackAttempt {
                    outcome: " ".into(),
                    ..attempt()
                },
            )
            .await,
        "outcome",
    );
    let detail = store.customer_detail(&customer.id).await.expect("detail");
    assert_eq!(detail.win_back_attempts.len(), 1);
    assert_eq!(detail.win_back_attempts[0].id, recorded.id);
    let timeline = timeline_of(&store, &customer.id).await;
    assert_eq!(timeline[0].kind, TimelineKind::FollowUp);
    assert_eq!(timeline[0].channel, Channel::Phone);
}

async fn delete_customer_only_without_cases(store: Store) {
    let (store, _clock) = fixed(store);
    let with_case = person(&store, "有工单").await;
    open_case(&store, &cli(), &with_case, CaseKind::Consultation, "问题").await;
    expect_conflict(
        store.delete_customer(&cli(), &with_case.id).await,
        "customer_has_cases",
    );
    assert_eq!(
        store.customer(&with_case.id).await.expect("kept").version,
        1
    );

    let org = organization(&store, "公司").await;
    store
        .create_customer(
            &cli(),
            NewCustomer {
                organization_id: Some(org.id.clone()),
                ..named("员工")
            },
        )
        .await
        .expect("member");
    expect_conflict(
        store.delete_customer(&cli(), &org.id).await,
        "customer_referenced",
    );
    let referrer = person(&store, "介绍人").await;
    store
        .create_customer(
            &cli(),
            NewCustomer {
                referrer_id: Some(referrer.id.clone()),
                ..named("被介绍")
            },
        )
        .await
        .expect("referred");
    expect_conflict(
        store.delete_customer(&cli(), &referrer.id).await,
        "customer_referenced",
    );

    let gone = store
        .create_customer(
            &cli(),
            NewCustomer {
                contacts: Some(vec![contact(ContactChannel::Email, "gone@example.com")]),
                ..named("删除")
            },
        )
        .await
        .expect("create");
    store
        .add_transaction(
            &cli(),
            &gone.id,
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
    let count = store.customer_count().await.expect("count");
    let timeline = store.timeline_count().await.expect("timeline");
    store
        .delete_customer(&cli(), &gone.id)
        .await
        .expect("delete");
    assert_eq!(store.customer_count().await.expect("count"), count - 1);
    assert_eq!(
        store.timeline_count().await.expect("timeline"),
        timeline - 1
    );
    expect_not_found(store.customer(&gone.id).await, "customer");
    expect_not_found(store.delete_customer(&cli(), &gone.id).await, "customer");
    // Its address is free again.
    store
        .create_customer(
            &cli(),
            NewCustomer {
                contacts: Some(vec![contact(ContactChannel::Email, "gone@example.com")]),
                ..named("新")
            },
        )
        .await
        .expect("address reused");
    let audit = audit_of(&store, "customer", &gone.id).await;
    assert_eq!(audit[0].action, "delete");
    assert_eq!(
        audit[0].before.as_ref().expect("before")["name"],
        json!("删除")
    );
    assert_eq!(audit[0].after, None);
}

async fn custom_fields_are_typed(store: Store) {
    let (store, _clock) = fixed(store);
    define_standard_fields(&store).await;
    let keys: Vec<String> = store
        .custom_fields()
        .await
        .expect("fields")
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(keys, vec!["birthday", "remark", "score", "tier", "vip"]);
    let tier = store
        .custom_fields()
        .await
        .expect("fields")
        .into_iter()
        .find(|f| f.key == "tier")
        .expect("tier");
    assert_eq!(tier.options, vec!["gold", "silver"]);
    assert_eq!(tier.information_kind, InformationKind::Associated);
    assert_eq!(tier.field_type, CustomFieldType::Select);

    expect_conflict(
        store
            .define_custom_field(
                &cli(),
                field(
                    "tier",
                    CustomFieldType::Text,
                    &[],
                    InformationKind::Associated,
                ),
            )
            .await,
        "duplicate",
    );
    for key in ["Tier", "1abc", "", "a-b"] {
        expect_invalid(
            store
                .define_custom_field(
                    &cli(),
                    field(key, CustomFieldType::Text, &[], InformationKind::Associated),
                )
                .await,
            "key",
        );
    }
    expect_invalid(
        store
            .define_custom_field(
                &cli(),
                field(
                    "choice",
                    CustomFieldType::Select,
                    &[],
                    InformationKind::Associated,
                ),
            )
            .await,
        "options",
    );
    expect_invalid(
        store
            .define_custom_field(
                &cli(),
                CustomFieldDefinition {
                    label_en: " ".into(),
                    ..field(
                        "labelled",
                        CustomFieldType::Text,
                        &[],
                        InformationKind::Associated,
                    )
                },
            )
            .await,
        "label_en",
    );
    assert_eq!(store.custom_fields().await.expect("fields").len(), 5);

    let values: Vec<(&str, Value, bool)> = vec![
        ("tier", json!("gold"), true),
        ("tier", json!("bronze"), false),
        ("tier", json!(1), false),
        ("score", json!(12), true),
        ("score", json!(1.5), true),
        ("score", json!("12"), false),
        ("vip", json!(true), true),
        ("vip", json!("yes"), false),
        ("birthday", json!("2028-02-29"), true),
        ("birthday", json!("2026-02-30"), false),
        ("birthday", json!("2026/01/01"), false),
        ("remark", json!("好"), true),
        ("remark", json!(5), false),
        ("remark", json!("x".repeat(10_001)), false),
        ("undefined_key", json!("x"), false),
    ];
    let target = person(&store, "目标").await;
    for (index, (key, value, ok)) in values.into_iter().enumerate() {
        let mut map = Map::new();
        map.insert(key.to_string(), value.clone());
        let count = store.customer_count().await.expect("count");
        let created = store
            .create_customer(
                &cli(),
                NewCustomer {
                    custom_fields: Some(map.clone()),
                    ..named(&format!("c{index}"))
                },
            )
            .await;
        let version = store.customer(&target.id).await.expect("target").version;
        let updated = store
            .update_customer(
                &cli(),
                &target.id,
                CustomerPatch {
                    custom_fields: Some(map),
                    ..Default::default()
                },
                None,
            )
            .await;
        if ok {
            let created = created.unwrap_or_else(|e| panic!("{key} = {value}: {e:?}"));
            assert_eq!(created.custom_fields.get(key), Some(&value));
            let updated = updated.unwrap_or_else(|e| panic!("{key} = {value}: {e:?}"));
            assert_eq!(updated.custom_fields.get(key), Some(&value));
        } else {
            expect_invalid(created, "custom_fields");
            assert_eq!(store.customer_count().await.expect("count"), count);
            expect_invalid(updated, "custom_fields");
            assert_eq!(
                store.customer(&target.id).await.expect("target").version,
                version
            );
        }
    }
    // Updates merge; null removes a key.
    let merged = store.customer(&target.id).await.expect("target");
    assert_eq!(
        Value::Object(merged.custom_fields.clone()),
        json!({"tier": "gold", "score": 1.5, "vip": true, "birthday": "2028-02-29", "remark": "好"})
    );
    let removed = store
        .update_customer(
            &cli(),
            &target.id,
            CustomerPatch {
                custom_fields: Some(object(json!({"tier": null, "score": 7}))),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("remove a key");
    assert_eq!(
        Value::Object(removed.custom_fields),
        json!({"score": 7, "vip": true, "birthday": "2028-02-29", "remark": "好"})
    );
}

async fn field_sources_record_source_and_kind(store: Store) {
    let (store, clock) = fixed(store);
    define_standard_fields(&store).await;
    let created = store
        .create_customer(
            &cli(),
            NewCustomer {
                needs: Some("打印机".into()),
                contacts: Some(vec![contact(ContactChannel::Email, "s@example.com")]),
                source: Some(InformationSource::Import),
                ..named("来源")
            },
        )
        .await
        .expect("create");
    use InformationKind::*;
    use InformationSource::*;
    assert_eq!(
        sources(&created),
        expected_sources(&[
            ("name", Descriptive, Import, T0),
            ("kind", Descriptive, Import, T0),
            ("value_class", Descriptive, Import, T0),
            ("position", Descriptive, Import, T0),
            ("lifecycle", Behavioural, Import, T0),
            ("needs", Associated, Import, T0),
            ("contacts", Descriptive, Import, T0),
        ])
    );
    assert_eq!(created.contacts[0].source, Import);

    clock.advance(1000);
    let updated = store
        .update_customer(
            &cli(),
            &created.id,
            CustomerPatch {
                lead_source: Some(Some(LeadSource::Event)),
                hobbies: Some("茶".into()),
                custom_fields: Some(object(json!({"score": 3}))),
                source: Some(SalesRecord),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update");
    assert_eq!(
        sources(&updated),
        expected_sources(&[
            ("name", Descriptive, Import, T0),
            ("kind", Descriptive, Import, T0),
            ("value_class", Descriptive, Import, T0),
            ("position", Descriptive, Import, T0),
            ("lifecycle", Behavioural, Import, T0),
            ("needs", Associated, Import, T0),
            ("contacts", Descriptive, Import, T0),
            ("lead_source", Behavioural, SalesRecord, T0 + 1000),
            ("hobbies", Associated, SalesRecord, T0 + 1000),
            ("custom_fields.score", Behavioural, SalesRecord, T0 + 1000),
        ])
    );

    clock.advance(1000);
    let again = store
        .update_customer(
            &cli(),
            &created.id,
            CustomerPatch {
                needs: Some("扫描器".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update without a source");
    let needs = &again.field_sources["needs"];
    assert_eq!(
        (needs.kind, needs.source, needs.at),
        (Associated, Agent, Timestamp(T0 + 2000))
    );
    assert_eq!(again.field_sources["hobbies"].source, SalesRecord);

    clock.advance(1000);
    let moved = store
        .transition_customer(&cli(), &created.id, LifecycleState::Target, "", None)
        .await
        .expect("transition");
    let lifecycle = &moved.field_sources["lifecycle"];
    assert_eq!(
        (lifecycle.kind, lifecycle.source, lifecycle.at),
        (Behavioural, Agent, Timestamp(T0 + 3000))
    );
    assert_eq!(
        json_of(&store.customer(&created.id).await.expect("fetch"))["field_sources"],
        json_of(&moved)["field_sources"]
    );
}

async fn customer_changes_are_audited(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(
        &store,
        "agent@example.com",
        kefu_domain::access::Role::Agent,
    )
    .await;
    let actor = actor_of(&agent);
    let created = store
        .create_customer(&actor, named("审计"))
        .await
        .expect("create");
    clock.advance(1000);
    store
        .update_customer(
            &actor,
            &created.id,
            CustomerPatch {
                name: Some("审计二".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("update");
    clock.advance(1000);
    store
        .transition_customer(&actor, &created.id, LifecycleState::Target, "call", None)
        .await
        .expect("transition");
    clock.advance(1000);
    let with_contact = store
        .add_contact(
            &cli(),
            &created.id,
            contact(ContactChannel::Email, "x@example.com"),
        )
        .await
        .expect("add contact");
    clock.advance(1000);
    store
        .remove_contact(&cli(), &created.id, &with_contact.contacts[0].id)
        .await
        .expect("remove contact");

    let entries = audit_of(&store, "customer", &created.id).await;
    /// (action, actor, actor id, at, has before, has after)
    type Row<'a> = (&'a str, &'a str, Option<&'a str>, i64, bool, bool);
    let summary: Vec<Row> = entries
        .iter()
        .map(|e| {
            (
                e.action.as_str(),
                e.actor.as_str(),
                e.actor_id.as_deref(),
                e.at.0,
                e.before.is_some(),
                e.after.is_some(),
            )
        })
        .collect();
    let me = Some(agent.id.as_str());
    assert_eq!(
        summary,
        vec![
            ("update", "cli", None, T0 + 4000, true, true),
            ("update", "cli", None, T0 + 3000, true, true),
            ("transition", "agent@example.com", me, T0 + 2000, true, true),
            ("update", "agent@example.com", me, T0 + 1000, true, true),
            ("create", "agent@example.com", me, T0, false, true),
        ]
    );
    let update = &entries[3];
    assert_eq!(update.before.as_ref().expect("before")["name"], "审计");
    assert_eq!(update.after.as_ref().expect("after")["name"], "审计二");
    assert_eq!(update.after.as_ref().expect("after")["version"], 2);
    let transition = &entries[2];
    assert_eq!(
        transition.before.as_ref().expect("before")["lifecycle"],
        "potential"
    );
    assert_eq!(
        transition.after.as_ref().expect("after")["lifecycle"],
        "target"
    );
    let contact_added = &entries[1];
    assert_eq!(
        contact_added.after.as_ref().expect("after")["contacts"][0]["value"],
        "x@example.com"
    );
    // By actor: the user's three changes (and nothing of the command line's).
    let by_actor = audit(
        &store,
        AuditFilter {
            actor_id: Some(agent.id.clone()),
            object_type: Some("customer".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_actor.len(), 3);
    let by_action = audit(
        &store,
        AuditFilter {
            action: Some("transition".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(by_action.len(), 1);
    assert_eq!(by_action[0].object_id, created.id);
}

// ---------------------------------------------------------------------------------------
// Organisation invariants under kind changes

// Regression: `update_customer` once checked "an organisation cannot belong to another"
// only when the patch named an `organization_id`, so changing a member's `kind` to
// `organization` left an organisation inside another one.
async fn organisation_kind_change_keeps_no_organisation(store: Store) {
    let org = organization(&store, "母公司").await;
    let member = store
        .create_customer(
            &cli(),
            NewCustomer {
                organization_id: Some(org.id.clone()),
                ..named("分部")
            },
        )
        .await
        .expect("member");
    let result = store
        .update_customer(
            &cli(),
            &member.id,
            CustomerPatch {
                kind: Some(CustomerKind::Organization),
                ..Default::default()
            },
            None,
        )
        .await;
    assert!(
        matches!(result, Err(StoreError::Invalid(_))),
        "an organisation must not belong to another: {result:?}"
    );
    let fetched = store.customer(&member.id).await.expect("member");
    assert_eq!(fetched.kind, CustomerKind::Person);
}

// Regression: `update_customer` once let an organisation with members become a person,
// leaving its members "belonging" to a person.
async fn organisation_with_members_stays_one(store: Store) {
    let org = organization(&store, "公司").await;
    let member = store
        .create_customer(
            &cli(),
            NewCustomer {
                organization_id: Some(org.id.clone()),
                ..named("员工")
            },
        )
        .await
        .expect("member");
    let result = store
        .update_customer(
            &cli(),
            &org.id,
            CustomerPatch {
                kind: Some(CustomerKind::Person),
                ..Default::default()
            },
            None,
        )
        .await;
    assert!(
        matches!(
            result,
            Err(StoreError::Invalid(_)) | Err(StoreError::Conflict { .. })
        ),
        "an organisation with members must stay one: {result:?}"
    );
    let fetched = store.customer(&org.id).await.expect("org");
    assert_eq!(fetched.kind, CustomerKind::Organization);
    assert_eq!(
        store
            .customer(&member.id)
            .await
            .expect("member")
            .organization_id
            .as_deref(),
        Some(org.id.as_str())
    );
}
