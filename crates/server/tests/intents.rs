//! Intents over HTTP, on SQLite and PostgreSQL: the built-in ones listed, admins adding
//! intents and examples (agents may not), duplicates skipped, examples removed, and the
//! bot reading the new intent on the next message.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::access::Role;
use kefu_store::Store;
use serde_json::json;

kefu_testkit::conformance!(admins_teach_the_bot_intents);

async fn admins_teach_the_bot_intents(store: Store) {
    let app = TestApp::new(store);
    let admin = app.admin().await;
    let (_, agent) = app.user(Role::Agent).await;
    let (_, readonly) = app.user(Role::Readonly).await;

    let listed = app.get("/api/v1/bot/intents", &readonly).await;
    let intents = listed.ok(200).as_array().cloned().unwrap_or_default();
    assert_eq!(intents.len(), 11);
    assert!(intents.iter().all(|i| i["builtin"] == true));
    let invoice = intents
        .iter()
        .find(|i| i["name"] == "invoice")
        .expect("invoice");
    assert_eq!(invoice["label_zh"], "发票");
    assert!(invoice["seed_examples"].as_u64().unwrap_or_default() >= 16);

    let membership = json!({
        "name": "membership",
        "label_zh": "会员权益",
        "label_en": "Membership benefits",
        "examples": ["会员有什么权益", "积分怎么兑换", "金卡会员能免运费吗",
                     "how do I earn loyalty points", "what do gold members get",
                     "开了会员怎么没有折扣", "会员有什么权益"],
    });
    app.post("/api/v1/bot/intents", &agent, membership.clone())
        .await
        .assert_error(403, "forbidden");
    for name in ["Membership", "会员", "", "examples", "a-b"] {
        let mut bad = membership.clone();
        bad["name"] = json!(name);
        app.post("/api/v1/bot/intents", &admin, bad)
            .await
            .assert_field_error(422, "invalid_field", "name");
    }
    let mut builtin = membership.clone();
    builtin["name"] = json!("invoice");
    app.post("/api/v1/bot/intents", &admin, builtin)
        .await
        .assert_error(409, "conflict");
    let mut unlabelled = membership.clone();
    unlabelled["label_en"] = json!("  ");
    app.post("/api/v1/bot/intents", &admin, unlabelled)
        .await
        .assert_field_error(422, "invalid_field", "label_en");

    // Before: the bot has no such intent. After: it reads it on the next message.
    let before = app
        .post(
            "/api/v1/bot/messages",
            &agent,
            json!({"text": "会员积分可以换什么"}),
        )
        .await;
    assert_ne!(before.ok(200)["intent"]["intent"], "membership");
    let created = app.post("/api/v1/bot/intents", &admin, membership).await;
    assert_eq!(
        created.ok(201)["examples"],
        6,
        "the repeated example counts once"
    );
    app.post(
        "/api/v1/bot/intents",
        &admin,
        json!({"name": "membership", "label_zh": "会员", "label_en": "Members"}),
    )
    .await
    .assert_error(409, "conflict");
    for text in ["会员积分可以换什么", "do members get free shipping"] {
        let after = app
            .post("/api/v1/bot/messages", &agent, json!({"text": text}))
            .await;
        assert_eq!(
            after.ok(200)["intent"]["intent"],
            "membership",
            "{text}: {:?}",
            after.json
        );
    }

    // Examples for a built-in intent: added once, listed, removed.
    let path = "/api/v1/bot/intents/invoice/examples";
    let added = app
        .post(
            path,
            &admin,
            json!({"examples": ["专票和普票有什么区别", "Can I get a VAT invoice?"]}),
        )
        .await;
    let added = added.ok(201).as_array().cloned().unwrap_or_default();
    assert_eq!(added.len(), 2);
    assert_eq!(added[0]["language"], "zh");
    assert_eq!(added[1]["language"], "en");
    let again = app
        .post(path, &admin, json!({"examples": ["专票和普票有什么区别"]}))
        .await;
    assert_eq!(again.ok(201), &json!([]));
    let listed = app.get(path, &readonly).await;
    assert_eq!(listed.ok(200).as_array().map(Vec::len), Some(2));
    let id = added[0]["id"].as_str().unwrap_or_default();
    let delete = format!("/api/v1/bot/intents/examples/{id}");
    app.send(Req::new(Method::DELETE, &delete).bearer(&agent))
        .await
        .assert_error(403, "forbidden");
    let deleted = app
        .send(Req::new(Method::DELETE, &delete).bearer(&admin))
        .await;
    assert_eq!(deleted.status, 204);
    app.send(Req::new(Method::DELETE, &delete).bearer(&admin))
        .await
        .assert_error(404, "not_found");
    let listed = app.get(path, &readonly).await;
    let left = listed.ok(200).as_array().cloned().unwrap_or_default();
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["text"], "Can I get a VAT invoice?");
    // Given again, a removed example comes back.
    let back = app
        .post(path, &admin, json!({"examples": ["专票和普票有什么区别"]}))
        .await;
    assert_eq!(back.ok(201).as_array().map(Vec::len), Some(1));

    // Bad input: clear errors, nothing half-written.
    app.post(path, &admin, json!({"examples": []}))
        .await
        .assert_field_error(422, "invalid_field", "examples");
    app.post(path, &admin, json!({"examples": ["好", ""]}))
        .await
        .assert_field_error(422, "invalid_field", "examples");
    let many: Vec<String> = (0..1001).map(|i| format!("例子{i}")).collect();
    app.post(path, &admin, json!({"examples": many}))
        .await
        .assert_field_error(422, "invalid_field", "examples");
    app.post(path, &admin, json!({"examples": "发票"}))
        .await
        .assert_error(422, "invalid_body");
    app.post(
        "/api/v1/bot/intents/no_such/examples",
        &admin,
        json!({"examples": ["x"]}),
    )
    .await
    .assert_error(404, "not_found");
    app.get("/api/v1/bot/intents/no_such/examples", &readonly)
        .await
        .assert_error(404, "not_found");
    let listed = app.get(path, &readonly).await;
    assert_eq!(listed.ok(200).as_array().map(Vec::len), Some(2));
}
