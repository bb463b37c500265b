//! Conversations with the bot over HTTP, on SQLite and PostgreSQL: the transcript kept
//! turn by turn, clarifications counted by the server and answered by number, the
//! handover that opens a case with everything the bot knew, and messages after it going
//! to the case.

mod common;

use common::*;
use kefu_domain::access::Role;
use kefu_store::Store;
use serde_json::{Value, json};

kefu_testkit::conformance!(conversations_hand_over_with_context);

async fn conversations_hand_over_with_context(store: Store) {
    let app = TestApp::new(store);
    let admin = app.admin().await;
    let (_, agent) = app.user(Role::Agent).await;
    let (_, readonly) = app.user(Role::Readonly).await;
    for (question, answer) in [
        ("退款多久到账", "退款在 1-3 个工作日内原路退回。"),
        ("怎么开发票", "在订单详情页点击“申请开票”。"),
        ("发票抬头写错了怎么办", "可在开票后30天内申请重开。"),
        ("纸质发票什么时候寄出", "纸质发票在开具后3个工作日内寄出。"),
    ] {
        app.post(
            "/api/v1/kb/entries",
            &admin,
            json!({"question": question, "answer": answer, "status": "published"}),
        )
        .await
        .ok(201);
    }
    // A knowledge base this small gives a one-word question little evidence; this
    // tenant would rather ask than hand over.
    app.send(
        Req::new(axum::http::Method::PUT, "/api/v1/bot/settings")
            .bearer(&admin)
            .json(&json!({"answer_threshold": 0.75, "clarify_threshold": 0.1})),
    )
    .await
    .ok(200);
    let customer = app.customer(&agent, json!({"name": "钱多多"})).await;

    // Starting one needs a customer who exists; readonly users do not talk as the bot.
    app.post("/api/v1/bot/conversations", &agent, json!({}))
        .await
        .assert_error(422, "invalid_body");
    app.post(
        "/api/v1/bot/conversations",
        &agent,
        json!({"customer_id": random_id()}),
    )
    .await
    .assert_field_error(422, "invalid_field", "customer_id");
    app.post(
        "/api/v1/bot/conversations",
        &readonly,
        json!({"customer_id": customer}),
    )
    .await
    .assert_error(403, "forbidden");
    let started = app
        .post(
            "/api/v1/bot/conversations",
            &agent,
            json!({"customer_id": customer}),
        )
        .await;
    let conversation = started.ok(201).clone();
    assert_eq!(conversation["status"], "open");
    assert_eq!(conversation["channel"], "live_chat");
    let id = conversation["id"].as_str().unwrap_or_default().to_string();
    let say = |text: &'static str| {
        let app = &app;
        let agent = agent.clone();
        let id = id.clone();
        async move {
            app.post(
                &format!("/api/v1/bot/conversations/{id}/messages"),
                &agent,
                json!({"text": text}),
            )
            .await
            .ok(200)
            .clone()
        }
    };

    // Small talk, then a vague question: three offered, and "2" picks the second.
    assert_eq!(say("你好").await["reply"]["outcome"], "small_talk");
    let offered = say("发票").await;
    assert_eq!(offered["reply"]["outcome"], "clarify", "{offered}");
    assert_eq!(offered["conversation"]["clarifications"], 1);
    let second = offered["reply"]["matches"][1]["id"].clone();
    let picked = say("2").await;
    assert_eq!(picked["reply"]["outcome"], "answer", "{picked}");
    assert_eq!(picked["reply"]["entry_id"], second);
    assert_eq!(picked["conversation"]["clarifications"], 0);

    // The server counts clarifications: the third vague message in a row goes to a person.
    assert_eq!(say("发票").await["reply"]["outcome"], "clarify");
    assert_eq!(say("发票").await["reply"]["outcome"], "clarify");
    let handed = say("发票").await;
    assert_eq!(handed["reply"]["outcome"], "handoff", "{handed}");
    assert_eq!(handed["reply"]["handoff_reason"], "clarified_too_often");
    assert_eq!(handed["conversation"]["status"], "handed_over");
    assert_eq!(
        handed["conversation"]["handoff_reason"],
        "clarified_too_often"
    );
    let case_id = handed["conversation"]["case_id"]
        .as_str()
        .expect("a case for the person taking over")
        .to_string();

    // The case: the customer's words as its first message, the bot's view in a note.
    let case = app.get(&format!("/api/v1/cases/{case_id}"), &agent).await;
    let case = case.ok(200).clone();
    assert_eq!(case["subject"], "发票", "the first real question names it");
    assert_eq!(case["channel"], "live_chat");
    assert_eq!(case["customer_id"], customer.as_str());
    let messages = case_messages(&app, &agent, &case_id).await;
    assert_eq!(messages[0]["kind"], "inbound");
    assert_eq!(messages[0]["body"], "你好\n发票\n2\n发票\n发票\n发票");
    let note = messages
        .iter()
        .find(|m| m["kind"] == "internal_note")
        .expect("a handoff note");
    let note = note["body"].as_str().unwrap_or_default();
    for expected in [
        "多次澄清仍未明确问题",
        "still unclear",
        "Confidence",
        "怎么开发票",
        "客户 Customer: 发票",
        "机器人 Bot: 您想问的是下面哪一个？",
    ] {
        assert!(note.contains(expected), "{expected} missing from {note}");
    }

    // The person taking over sees the transcript with what the bot knew at each turn.
    let handoff = app
        .get(&format!("/api/v1/cases/{case_id}/handoff"), &readonly)
        .await;
    let transcripts = handoff.ok(200).as_array().cloned().unwrap_or_default();
    assert_eq!(transcripts.len(), 1);
    let turns = transcripts[0]["turns"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(turns.len(), 12, "six messages, six replies");
    assert_eq!(turns[0]["role"], "customer");
    assert_eq!(turns[11]["outcome"], "handoff");
    let last = &turns[11]["detail"];
    assert_eq!(last["handoff_reason"], "clarified_too_often");
    assert!(last["confidence"].is_number() && last["sentiment"]["label"].is_string());
    assert_eq!(
        last["matches"].as_array().map(|m| !m.is_empty()),
        Some(true)
    );
    assert_eq!(last["intent"]["intent"], "invoice", "{last}");

    // After the handover the customer's messages go to the case, not the bot.
    let later = say("请尽快处理").await;
    assert!(later["reply"].is_null(), "{later}");
    let message_id = later["case_message_id"].as_str().unwrap_or_default();
    let messages = case_messages(&app, &agent, &case_id).await;
    assert!(
        messages
            .iter()
            .any(|m| m["id"] == message_id && m["body"] == "请尽快处理" && m["kind"] == "inbound")
    );
    let transcript = app
        .get(&format!("/api/v1/bot/conversations/{id}"), &agent)
        .await;
    assert_eq!(
        transcript.ok(200)["turns"].as_array().map(Vec::len),
        Some(12)
    );

    // Anger on another visit: handed over at once, as a complaint, and urgent for a threat.
    let angry = app
        .post(
            "/api/v1/bot/conversations",
            &agent,
            json!({"customer_id": customer, "channel": "im"}),
        )
        .await;
    let angry_id = angry.id();
    let reply = app
        .post(
            &format!("/api/v1/bot/conversations/{angry_id}/messages"),
            &agent,
            json!({"text": "你们就是骗子，再不退款我就去12315投诉！"}),
        )
        .await;
    let reply = reply.ok(200);
    assert_eq!(reply["reply"]["handoff_reason"], "angry", "{reply}");
    let case_id = reply["conversation"]["case_id"]
        .as_str()
        .unwrap_or_default();
    let case = app.get(&format!("/api/v1/cases/{case_id}"), &agent).await;
    let case = case.ok(200);
    assert_eq!(case["kind"], "complaint");
    assert_eq!(case["priority"], "urgent");
    assert_eq!(case["channel"], "im");
    let messages = case_messages(&app, &agent, case_id).await;
    let note = messages
        .iter()
        .filter_map(|m| m["body"].as_str())
        .find(|b| b.starts_with("机器人转人工"))
        .unwrap_or_default();
    assert!(
        note.contains("客户情绪愤怒") && note.contains("escalation (12315)"),
        "{note}"
    );

    // Bad input: a clear error, and nothing kept.
    let path = format!("/api/v1/bot/conversations/{angry_id}/messages");
    let fresh = app
        .post(
            "/api/v1/bot/conversations",
            &agent,
            json!({"customer_id": customer}),
        )
        .await
        .id();
    let fresh_path = format!("/api/v1/bot/conversations/{fresh}/messages");
    app.post(&fresh_path, &agent, json!({"text": ""}))
        .await
        .assert_field_error(422, "invalid_field", "text");
    app.post(&fresh_path, &agent, json!({"text": "长".repeat(10_001)}))
        .await
        .assert_field_error(422, "invalid_field", "text");
    app.post(&fresh_path, &agent, json!({"text": 3}))
        .await
        .assert_error(422, "invalid_body");
    let kept = app
        .get(&format!("/api/v1/bot/conversations/{fresh}"), &agent)
        .await;
    assert_eq!(kept.ok(200)["turns"], json!([]));
    app.post(
        &format!("/api/v1/bot/conversations/{}/messages", random_id()),
        &agent,
        json!({"text": "你好"}),
    )
    .await
    .assert_error(404, "not_found");
    app.post(
        "/api/v1/bot/conversations/not-an-id/messages",
        &agent,
        json!({"text": "你好"}),
    )
    .await
    .assert_error(404, "not_found");
    app.post(&path, &readonly, json!({"text": "你好"}))
        .await
        .assert_error(403, "forbidden");
}

async fn case_messages(app: &TestApp, token: &str, case_id: &str) -> Vec<Value> {
    walk(
        app,
        token,
        &format!("/api/v1/cases/{case_id}/messages"),
        100,
    )
    .await
}
