//! Conformance suite: the knowledge base (知识库) and the bot's records — entries and
//! their versions, what the bot may index, thresholds, unanswered questions — on SQLite
//! and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::kb::*;
use kefu_store::kb::*;
use kefu_store::{Store, StoreError};

kefu_testkit::conformance!(
    entries_are_checked_versioned_and_audited,
    only_published_faq_reaches_the_bot,
    bot_settings_and_unanswered_questions,
);

fn faq(question: &str, similar: &[&str], answer: &str) -> NewKbEntry {
    NewKbEntry {
        kind: None,
        question: question.into(),
        similar: similar.iter().map(|s| s.to_string()).collect(),
        answer: answer.into(),
        category: Some("售后".into()),
        language: None,
        status: None,
    }
}

async fn entries_are_checked_versioned_and_audited(store: Store) {
    let (store, _clock) = fixed(store);
    let before = audit_count(&store).await;
    expect_invalid(
        store.create_kb_entry(&cli(), faq(" ", &[], "a")).await,
        "question",
    );
    expect_invalid(
        store.create_kb_entry(&cli(), faq("q", &[], "")).await,
        "answer",
    );
    assert_eq!(
        audit_count(&store).await,
        before,
        "refused input writes nothing"
    );

    let entry = store
        .create_kb_entry(
            &cli(),
            faq(
                "怎么退款",
                &["退款多久到账", "怎么退款", "How do I get a refund?"],
                "原路退回",
            ),
        )
        .await
        .expect("create");
    assert_eq!(entry.kind, KbKind::Faq);
    assert_eq!(entry.status, KbStatus::Draft);
    assert_eq!(entry.language, KbLanguage::Zh);
    assert_eq!(
        entry.similar,
        vec!["退款多久到账", "How do I get a refund?"]
    );
    assert_eq!(entry.version, 1);

    let english = store
        .create_kb_entry(&cli(), faq("Where is my parcel?", &[], "Track it here."))
        .await
        .expect("create");
    assert_eq!(english.language, KbLanguage::En);

    let published = store
        .update_kb_entry(
            &cli(),
            &entry.id,
            KbEntryPatch {
                status: Some(KbStatus::Published),
                answer: Some("1-3 个工作日原路退回".into()),
                ..KbEntryPatch::default()
            },
            Some(1),
        )
        .await
        .expect("update");
    assert_eq!(published.version, 2);
    assert_eq!(published.question, "怎么退款");
    assert_eq!(published.similar, entry.similar);

    // A stale version is refused and changes nothing.
    let stale = store
        .update_kb_entry(
            &cli(),
            &entry.id,
            KbEntryPatch {
                answer: Some("旧的".into()),
                ..KbEntryPatch::default()
            },
            Some(1),
        )
        .await;
    assert!(
        matches!(stale, Err(StoreError::VersionMismatch { current: 2, .. })),
        "{stale:?}"
    );
    expect_invalid(
        store
            .update_kb_entry(
                &cli(),
                &entry.id,
                KbEntryPatch {
                    question: Some(String::new()),
                    ..KbEntryPatch::default()
                },
                None,
            )
            .await,
        "question",
    );

    let versions = store.kb_entry_versions(&entry.id).await.expect("versions");
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[0].version, 2);
    assert_eq!(versions[0].answer, "1-3 个工作日原路退回");
    assert_eq!(versions[1].answer, "原路退回");
    assert_eq!(versions[1].status, KbStatus::Draft);

    let trail = audit_of(&store, "kb_entry", &entry.id).await;
    assert_eq!(trail.len(), 2);

    let listed = store
        .kb_entries(
            &KbFilter {
                status: Some(KbStatus::Published),
                ..KbFilter::default()
            },
            &page(10),
        )
        .await
        .expect("list");
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].id, entry.id);
    let all = walk(1, async |request| {
        store.kb_entries(&KbFilter::default(), &request).await
    })
    .await;
    assert_eq!(all.len(), 2);
    expect_not_found(
        store.kb_entry("0190a0a0-0000-7000-8000-000000000000").await,
        "knowledge-base entry",
    );
}

async fn only_published_faq_reaches_the_bot(store: Store) {
    let (store, clock) = fixed(store);
    let signature = store.kb_signature().await.expect("signature");
    let mut published = faq("发票怎么开", &["开发票"], "订单页申请");
    published.status = Some(KbStatus::Published);
    let published = store
        .create_kb_entry(&cli(), published)
        .await
        .expect("create");
    store
        .create_kb_entry(&cli(), faq("草稿问题", &[], "草稿"))
        .await
        .expect("draft");
    let mut article = faq("退换货政策", &[], "正文");
    article.kind = Some(KbKind::Article);
    article.status = Some(KbStatus::Published);
    store
        .create_kb_entry(&cli(), article)
        .await
        .expect("article");

    let faq = store.published_faq().await.expect("faq");
    assert_eq!(faq.len(), 1);
    assert_eq!(faq[0].id, published.id);
    assert_eq!(faq[0].similar, vec!["开发票"]);

    let after = store.kb_signature().await.expect("signature");
    assert_ne!(after, signature);
    clock.advance(1000);
    store
        .update_kb_entry(
            &cli(),
            &published.id,
            KbEntryPatch {
                status: Some(KbStatus::Archived),
                ..KbEntryPatch::default()
            },
            None,
        )
        .await
        .expect("archive");
    assert_ne!(store.kb_signature().await.expect("signature"), after);
    assert!(store.published_faq().await.expect("faq").is_empty());
}

async fn bot_settings_and_unanswered_questions(store: Store) {
    let (store, _clock) = fixed(store);
    let defaults = store.bot_settings().await.expect("defaults");
    assert_eq!(defaults.version, 0);
    assert!((defaults.answer_threshold - 0.75).abs() < 1e-9);
    expect_invalid(
        store
            .set_bot_settings(
                &cli(),
                BotSettings {
                    answer_threshold: 1.5,
                    clarify_threshold: 0.3,
                    version: 0,
                },
                None,
            )
            .await,
        "answer_threshold",
    );
    let set = store
        .set_bot_settings(
            &cli(),
            BotSettings {
                answer_threshold: 0.8,
                clarify_threshold: 0.4,
                version: 0,
            },
            Some(0),
        )
        .await
        .expect("set");
    assert_eq!(set.version, 1);
    let again = store
        .set_bot_settings(&cli(), set, Some(1))
        .await
        .expect("set again");
    assert_eq!(again.version, 2);
    assert!(matches!(
        store.set_bot_settings(&cli(), set, Some(1)).await,
        Err(StoreError::VersionMismatch { .. })
    ));

    for text in ["你们几点下班", "你们几点下班", "你们几点下班？"] {
        store
            .record_unanswered("你们几点下班", text, "zh", None, 0.1)
            .await
            .expect("record");
    }
    store
        .record_unanswered("store hours", "Store hours?", "en", Some("kb-missing"), 0.2)
        .await
        .expect("an unknown entry id is just not linked");
    store
        .record_unanswered("", "", "zh", None, 0.0)
        .await
        .expect("nothing to record");
    let list = store.unanswered(10).await.expect("list");
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].times, 3);
    assert_eq!(list[0].example, "你们几点下班");
    assert_eq!(list[1].best_entry_id, None);
}
