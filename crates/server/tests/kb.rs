//! The knowledge base and the bot over HTTP, on SQLite and PostgreSQL: who may edit,
//! versions and If-Match, and the bot answering, asking and handing over from the
//! published entries — with unanswered questions counted for the admins.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::access::Role;
use kefu_store::Store;
use serde_json::json;

kefu_testkit::conformance!(knowledge_base_and_bot);

async fn knowledge_base_and_bot(store: Store) {
    let app = TestApp::new(store);
    let admin = app.admin().await;
    let (_, agent) = app.user(Role::Agent).await;
    let (_, readonly) = app.user(Role::Readonly).await;

    // Agents read the knowledge base but do not edit it.
    let entry = json!({
        "question": "退款多久到账",
        "similar": ["退款什么时候到", "How long does a refund take?"],
        "answer": "退款在 1-3 个工作日内原路退回。",
        "category": "售后",
    });
    app.post("/api/v1/kb/entries", &agent, entry.clone())
        .await
        .assert_error(403, "forbidden");
    app.send(
        Req::new(Method::POST, "/api/v1/kb/entries")
            .bearer(&admin)
            .raw_json("{\"question\": "),
    )
    .await
    .assert_error(400, "malformed_json");
    app.post(
        "/api/v1/kb/entries",
        &admin,
        json!({"question": "q", "answer": ""}),
    )
    .await
    .assert_field_error(422, "invalid_field", "answer");

    let created = app.post("/api/v1/kb/entries", &admin, entry).await;
    let id = created.id();
    assert_eq!(created.json["status"], "draft");
    assert_eq!(created.json["language"], "zh");
    assert_eq!(created.header("etag"), "\"1\"");

    // Drafts do not reach the bot.
    let reply = app
        .post(
            "/api/v1/bot/messages",
            &agent,
            json!({"text": "退款多久能到账"}),
        )
        .await;
    assert_eq!(reply.ok(200)["outcome"], "handoff", "{:?}", reply.json);
    assert_eq!(reply.json["handoff_reason"], "not_understood");

    // Publishing with a stale version is refused; with the right one it is version 2.
    app.send(
        Req::new(Method::PATCH, &format!("/api/v1/kb/entries/{id}"))
            .bearer(&admin)
            .header("If-Match", "\"7\"")
            .json(&json!({"status": "published"})),
    )
    .await
    .assert_error(412, "version_mismatch");
    let published = app
        .send(
            Req::new(Method::PATCH, &format!("/api/v1/kb/entries/{id}"))
                .bearer(&admin)
                .header("If-Match", "\"1\"")
                .json(&json!({"status": "published"})),
        )
        .await;
    assert_eq!(published.ok(200)["version"], 2);
    let versions = app
        .get(&format!("/api/v1/kb/entries/{id}/versions"), &readonly)
        .await;
    assert_eq!(versions.ok(200).as_array().map(Vec::len), Some(2));

    // The bot answers from the published entry, in the customer's language, also when
    // asked in Traditional characters.
    for text in ["退款多久能到賬？", "how long does a refund take"] {
        let reply = app
            .post("/api/v1/bot/messages", &agent, json!({"text": text}))
            .await;
        let body = reply.ok(200);
        assert_eq!(body["outcome"], "answer", "{text}: {body}");
        assert_eq!(body["entry_id"], id.as_str());
        assert_eq!(body["text"], "退款在 1-3 个工作日内原路退回。");
        assert!(body["confidence"].as_f64().unwrap_or_default() >= 0.75);
    }

    // Anger hands over at once, with the rules that fired.
    let reply = app
        .post(
            "/api/v1/bot/messages",
            &agent,
            json!({"text": "你们就是骗子，再不退款我就去12315投诉！"}),
        )
        .await;
    let body = reply.ok(200);
    assert_eq!(body["outcome"], "handoff");
    assert_eq!(body["handoff_reason"], "angry");
    assert_eq!(body["sentiment"]["label"], "angry");
    let rules: Vec<&str> = body["sentiment"]["rules"]
        .as_array()
        .map(|r| r.iter().filter_map(|h| h["rule"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        rules.contains(&"escalation") && rules.contains(&"anger_words"),
        "{body}"
    );

    // On a case, the same message is read as it arrives: priority raised, trajectory kept.
    let customer = app.customer(&agent, json!({"name": "赵强"})).await;
    let case = app
        .post(
            "/api/v1/cases",
            &agent,
            json!({"customer_id": customer, "kind": "after_sale", "subject": "退款",
                   "body": "你们就是骗子，再不退款我就去12315投诉！"}),
        )
        .await;
    assert_eq!(case.ok(201)["priority"], "urgent", "{:?}", case.json);
    let trajectory = app
        .get(&format!("/api/v1/cases/{}/sentiment", case.id()), &readonly)
        .await;
    let points = trajectory.ok(200).as_array().cloned().unwrap_or_default();
    assert_eq!(points.len(), 1);
    assert_eq!(points[0]["label"], "angry");

    // Agent assist: the FAQ answer, what an agent replied to a similar message on another
    // case, and the strategy for the customer's communication type.
    let earlier = app
        .post(
            "/api/v1/cases",
            &agent,
            json!({"customer_id": customer, "kind": "after_sale", "subject": "退款",
                   "body": "退款多久可以到账呢"}),
        )
        .await;
    app.post(
        &format!("/api/v1/cases/{}/messages", earlier.id()),
        &agent,
        json!({"kind": "outbound", "body": "您好，退款会在 1-3 个工作日内原路退回，请留意银行通知。"}),
    )
    .await
    .ok(201);
    let hesitant = app
        .customer(
            &agent,
            json!({"name": "孙丽", "communication_type": "hesitant"}),
        )
        .await;
    let asking = app
        .post(
            "/api/v1/cases",
            &agent,
            json!({"customer_id": hesitant, "kind": "after_sale", "subject": "退款",
                   "body": "我的退款多久能到账？"}),
        )
        .await;
    let assist = app
        .get(&format!("/api/v1/cases/{}/assist", asking.id()), &agent)
        .await;
    let body = assist.ok(200);
    let sources: Vec<&str> = body["suggestions"]
        .as_array()
        .map(|s| s.iter().filter_map(|x| x["source"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        sources.contains(&"faq") && sources.contains(&"past_reply"),
        "{body}"
    );
    assert_eq!(body["suggestions"][0]["from_id"], id.as_str());
    assert_eq!(body["strategy"]["communication_type"], "hesitant");
    assert_eq!(body["intent"]["intent"], "refund_return");

    // Complaint pre-classification from what the customer wrote.
    let complaint = app
        .post(
            "/api/v1/cases",
            &agent,
            json!({"customer_id": hesitant, "kind": "complaint", "subject": "热水壶漏水",
                   "body": "用了两天就漏水，差点烫伤孩子"}),
        )
        .await;
    let suggestion = app
        .get(
            &format!("/api/v1/cases/{}/complaint/suggestion", complaint.id()),
            &agent,
        )
        .await;
    let body = suggestion.ok(200);
    assert_eq!(body["cause"]["value"], "product_quality", "{body}");
    assert_eq!(body["severity"]["value"], "serious");

    // Bad input gets a clear outcome or a clear error, never a 500.
    let reply = app
        .post(
            "/api/v1/bot/messages",
            &agent,
            json!({"text": "\u{1}🙂？？"}),
        )
        .await;
    assert_eq!(reply.ok(200)["outcome"], "no_text");
    app.post("/api/v1/bot/messages", &agent, json!({"text": "a\u{0}b"}))
        .await
        .assert_field_error(422, "invalid_field", "text");
    app.post("/api/v1/bot/messages", &agent, json!({"text": 5}))
        .await
        .assert_error(422, "invalid_body");
    let huge = "退款".repeat(200_000);
    app.post("/api/v1/bot/messages", &agent, json!({"text": huge}))
        .await
        .assert_error(413, "payload_too_large");

    // What the bot could not answer is counted, the wordings of one question together.
    for text in [
        "你们周末几点开门",
        "你们周末几点开门",
        "周末几点开门？",
        "公司股票代码是多少",
    ] {
        app.post("/api/v1/bot/messages", &agent, json!({"text": text}))
            .await
            .ok(200);
    }
    let unanswered = app.get("/api/v1/bot/unanswered", &readonly).await;
    let list = unanswered.ok(200).as_array().cloned().unwrap_or_default();
    let hours = list
        .iter()
        .find(|u| u["example"] == "你们周末几点开门")
        .expect("counted");
    assert_eq!(hours["times"], 3, "{hours}");
    let wordings: Vec<(&str, i64)> = hours["questions"]
        .as_array()
        .map(|q| {
            q.iter()
                .map(|x| {
                    (
                        x["example"].as_str().unwrap_or_default(),
                        x["times"].as_i64().unwrap_or_default(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        wordings,
        vec![("你们周末几点开门", 2), ("周末几点开门？", 1)]
    );
    assert!(
        list.iter()
            .any(|u| u["example"] == "公司股票代码是多少" && u["times"] == 1),
        "{list:?}"
    );
    let one = app.get("/api/v1/bot/unanswered?limit=1", &readonly).await;
    assert_eq!(one.ok(200).as_array().map(Vec::len), Some(1));

    // Thresholds: only settings managers change them; a stricter answer threshold turns
    // the same message into a clarifying question or a handoff.
    app.send(
        Req::new(Method::PUT, "/api/v1/bot/settings")
            .bearer(&agent)
            .json(&json!({"answer_threshold": 0.9, "clarify_threshold": 0.3})),
    )
    .await
    .assert_error(403, "forbidden");
    app.send(
        Req::new(Method::PUT, "/api/v1/bot/settings")
            .bearer(&admin)
            .json(&json!({"answer_threshold": 2, "clarify_threshold": 0.3})),
    )
    .await
    .assert_field_error(422, "invalid_field", "answer_threshold");
    let set = app
        .send(
            Req::new(Method::PUT, "/api/v1/bot/settings")
                .bearer(&admin)
                .json(&json!({"answer_threshold": 1.0, "clarify_threshold": 0.0})),
        )
        .await;
    assert_eq!(set.ok(200)["version"], 1);
    let reply = app
        .post(
            "/api/v1/bot/messages",
            &agent,
            json!({"text": "退款多久能到账"}),
        )
        .await;
    assert_eq!(reply.ok(200)["outcome"], "clarify", "{:?}", reply.json);
}
