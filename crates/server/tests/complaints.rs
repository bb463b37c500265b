//! Complaint handling through HTTP, on SQLite and PostgreSQL: the answers a client
//! relies on — 409 with the allowed steps, 403 for role and authority, 412 for a stale
//! If-Match, 422 for a step without its facts — and the customer's tracking page.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::access::Role;
use kefu_store::Store;
use serde_json::{Value, json};

kefu_testkit::conformance!(
    complaint_story,
    bad_steps_are_refused_with_reasons,
    tracking_page,
    sla_over_http,
    survey_page,
);

async fn complaint_case(app: &TestApp, token: &str) -> Value {
    let customer = app.customer(token, json!({"name": "李娜"})).await;
    app.post(
        "/api/v1/cases",
        token,
        json!({
            "customer_id": customer,
            "kind": "complaint",
            "subject": "快递员态度恶劣 <b>",
            "body": "快递员把包裹扔在门口还骂人",
            "channel": "phone",
        }),
    )
    .await
    .ok(201)
    .clone()
}

fn record() -> Value {
    json!({
        "severity": "general",
        "behaviour": "angry_venting",
        "purpose": "criticism",
        "cause": "service",
        "dissatisfaction": "process",
        "key_points": "快递员态度恶劣，客户要求道歉",
        "product": "同城快递"
    })
}

async fn complaint_story(store: Store) {
    let app = TestApp::new(store);
    let (agent, token) = app.user(Role::Agent).await;
    let (_, boss) = app.user(Role::Supervisor).await;
    let case = complaint_case(&app, &token).await;
    let id = case["id"].as_str().expect("id");
    let path = format!("/api/v1/cases/{id}/complaint");
    app.get(&path, &token).await.assert_error(404, "not_found");

    let recorded = app.post(&path, &token, record()).await;
    let body = recorded.ok(201).clone();
    assert_eq!(recorded.header("etag"), "\"1\"");
    assert_eq!(body["stage"], "recorded");
    assert_eq!(body["first_owner_id"], json!(agent.id));
    assert_eq!(body["needs"], json!(["vent", "resolution", "respect"]));
    assert_eq!(body["needs_labels"][0]["zh"], "发泄");
    assert_eq!(
        body["allowed_next"],
        json!(["information_needed", "authority_check", "internal_review"])
    );
    app.post(&path, &token, record())
        .await
        .assert_error(409, "duplicate");

    let steps = format!("{path}/steps");
    // A stale If-Match is 412; the right one moves the complaint.
    let stale = app
        .send(
            Req::new(Method::POST, &steps)
                .bearer(&token)
                .header("if-match", "\"7\"")
                .json(&json!({"stage": "authority_check"})),
        )
        .await;
    stale.assert_error(412, "version_mismatch");
    let moved = app
        .send(
            Req::new(Method::POST, &steps)
                .bearer(&token)
                .header("if-match", "\"1\"")
                .json(&json!({"stage": "authority_check"})),
        )
        .await;
    assert_eq!(moved.ok(200)["stage"], "authority_check");
    assert_eq!(moved.header("etag"), "\"2\"");

    // Above the agent's limit: 403 authority_exceeded, and nothing changes.
    let offer = json!({
        "from": "authority_check",
        "stage": "solution_proposed",
        "proposal": "赔偿 800 元",
        "compensation": {"amount_cents": 80_000}
    });
    app.post(&steps, &token, offer.clone())
        .await
        .assert_field_error(403, "authority_exceeded", "compensation.amount_cents");
    assert_eq!(app.get(&path, &token).await.ok(200)["version"], 2);
    // The supervisor may.
    let proposed = app.post(&steps, &boss, offer).await;
    assert_eq!(proposed.ok(200)["compensations"][0]["amount_cents"], 80_000);
    // The customer refuses: escalation, and the agent cannot decide the review.
    let escalated = app
        .post(
            &steps,
            &token,
            json!({"from": "solution_proposed", "stage": "internal_review", "note": "客户要求当面道歉"}),
        )
        .await;
    let escalated = escalated.ok(200);
    assert_eq!(escalated["escalation_level"], 1);
    assert_eq!(escalated["escalation_trigger"], "customer_rejected");
    app.post(
        &steps,
        &token,
        json!({"from": "internal_review", "stage": "review_proposed", "decision": "站长上门道歉"}),
    )
    .await
    .assert_error(403, "role_required");
    let decided = app
        .post(
            &steps,
            &boss,
            json!({"from": "internal_review", "stage": "review_proposed", "decision": "站长上门道歉"}),
        )
        .await;
    assert_eq!(decided.ok(200)["stage"], "review_proposed");
    // A supervisor's token without complaints:review decides as an agent.
    let (boss_user, _) = app.user(Role::Supervisor).await;
    let narrow = common::token(&app.store, &boss_user, Some("cases:read cases:write")).await;
    let second = complaint_case(&app, &token).await;
    let second_id = second["id"].as_str().expect("id");
    let second_steps = format!("/api/v1/cases/{second_id}/complaint/steps");
    app.post(
        &format!("/api/v1/cases/{second_id}/complaint"),
        &token,
        record(),
    )
    .await
    .ok(201);
    app.post(
        &second_steps,
        &narrow,
        json!({"from": "recorded", "stage": "internal_review", "note": "升级"}),
    )
    .await
    .ok(200);
    app.post(
        &second_steps,
        &narrow,
        json!({"from": "internal_review", "stage": "review_proposed", "decision": "退款"}),
    )
    .await
    .assert_error(403, "role_required");
    // An agent cannot decide an appeal over HTTP.
    app.post(
        &format!("/api/v1/appeals/{}/decision", random_id()),
        &token,
        json!({"status": "upheld", "reason": "x"}),
    )
    .await
    .assert_error(403, "forbidden");
    // The supervisor sees the escalation in their notifications.
    let notes = app.get("/api/v1/notifications?unread=true", &boss).await;
    let items = notes.ok(200)["items"].as_array().expect("items").clone();
    assert!(
        items.iter().any(|n| n["kind"] == "complaint_escalated"),
        "{items:#?}"
    );
    let first = items[0]["id"].as_str().expect("id");
    app.request(
        Method::POST,
        &format!("/api/v1/notifications/{first}/read"),
        Some(&boss),
        None,
    )
    .await
    .ok(204);
    // The list filters by escalation level and first-contact owner.
    let listed = app
        .get(
            "/api/v1/complaints?min_escalation_level=1&first_owner_id=me",
            &token,
        )
        .await;
    // Both of the agent's complaints have climbed; the others' would not be listed.
    assert_eq!(listed.ok(200)["items"].as_array().expect("items").len(), 2);
    let boss_owned = app.get("/api/v1/complaints?first_owner_id=me", &boss).await;
    assert_eq!(boss_owned.ok(200)["items"], json!([]));
    // A promise with its deadline.
    let promise = app
        .post(
            &format!("/api/v1/cases/{id}/promises"),
            &token,
            json!({"description": "明天下午五点前回电", "due_at": "2099-01-01T09:00:00Z"}),
        )
        .await;
    let promise_id = promise.id();
    assert_eq!(promise.ok(201)["status"], "open");
    let settled = app
        .post(
            &format!("/api/v1/promises/{promise_id}/status"),
            &token,
            json!({"status": "kept"}),
        )
        .await;
    assert_eq!(settled.ok(200)["status"], "kept");
    app.post(
        &format!("/api/v1/promises/{promise_id}/status"),
        &token,
        json!({"status": "broken"}),
    )
    .await
    .assert_error(409, "invalid_transition");
    // The rule set is readable by agents.
    let rules = app.get("/api/v1/complaint-rules", &token).await;
    assert_eq!(rules.ok(200)["current"]["version"], 1);
    assert_eq!(
        rules.json["current"]["rules"]["agent_compensation_limit_cents"],
        50_000
    );
}

async fn bad_steps_are_refused_with_reasons(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let admin = app.admin().await;
    let case = complaint_case(&app, &token).await;
    let id = case["id"].as_str().expect("id");
    let path = format!("/api/v1/cases/{id}/complaint");
    // Wrong types and unknown values in the record.
    let mut wrong = record();
    wrong["severity"] = json!("catastrophic");
    app.post(&path, &token, wrong)
        .await
        .assert_error(422, "invalid_body");
    let mut wrong = record();
    wrong["reputation_risk"] = json!("yes");
    app.post(&path, &token, wrong)
        .await
        .assert_error(422, "invalid_body");
    app.send(
        Req::new(Method::POST, &path)
            .bearer(&token)
            .raw_json("{\"severity\": \"general\",".to_string()),
    )
    .await
    .assert_error(400, "malformed_json");
    app.post(&path, &token, record()).await.ok(201);
    let steps = format!("{path}/steps");
    // Out of order: 409 with where it may go.
    // Without `from` or If-Match a step is refused: two steps must not stack.
    app.post(&steps, &token, json!({"stage": "authority_check"}))
        .await
        .assert_field_error(428, "precondition_required", "from");
    let skipped = app
        .post(
            &steps,
            &token,
            json!({"from": "recorded", "stage": "closed"}),
        )
        .await;
    skipped.assert_error(409, "invalid_transition");
    assert_eq!(
        skipped.json["error"]["allowed"],
        json!(["information_needed", "authority_check", "internal_review"])
    );
    // A step without its facts.
    app.post(
        &steps,
        &token,
        json!({"from": "recorded", "stage": "information_needed"}),
    )
    .await
    .assert_field_error(422, "invalid_field", "note");
    app.post(&steps, &token, json!({"from": "recorded", "stage": "authority_check", "body": {"kind": "industry_association", "name": "x", "reference": "y"}}))
        .await
        .assert_field_error(422, "invalid_field", "body");
    app.post(&steps, &token, json!({"from": "recorded"}))
        .await
        .assert_field_error(422, "invalid_field", "stage");
    // A step from a stage the complaint has left: 409, with where it may go now.
    let moved = app
        .post(
            &steps,
            &token,
            json!({"from": "recorded", "stage": "authority_check"}),
        )
        .await;
    assert_eq!(moved.ok(200)["stage"], "authority_check");
    let stale = app
        .post(
            &steps,
            &token,
            json!({"from": "recorded", "stage": "internal_review", "note": "x"}),
        )
        .await;
    stale.assert_field_error(409, "invalid_transition", "from");
    assert_eq!(
        stale.json["error"]["allowed"],
        json!(["solution_proposed", "internal_review"])
    );
    // A complaint on a consultation.
    let customer = app.customer(&token, json!({"name": "赵强"})).await;
    let question = app.case(&token, &customer, "问价格").await;
    app.post(
        &format!(
            "/api/v1/cases/{}/complaint",
            question["id"].as_str().expect("id")
        ),
        &token,
        record(),
    )
    .await
    .assert_error(409, "not_a_complaint");
    // Rules that contradict themselves.
    app.post(
        "/api/v1/complaint-rules",
        &admin,
        json!({"rules": {
            "agent_compensation_limit_cents": 100,
            "supervisor_compensation_limit_cents": 10,
            "escalate_serious": true,
            "escalate_teams_involved": 2,
            "escalate_reputation_risk": true,
            "follow_up_after_days": 3
        }, "note": "typo"}),
    )
    .await
    .assert_field_error(422, "invalid_field", "supervisor_compensation_limit_cents");
    // Reports refuse a period that ends before it starts, and agents do not see them.
    let supervisor = app.user(Role::Supervisor).await.1;
    app.get(
        "/api/v1/reports/complaints?since=2026-11-02T00:00:00Z&until=2026-11-01T00:00:00Z",
        &supervisor,
    )
    .await
    .assert_field_error(400, "invalid_query", "since");
    app.get(
        "/api/v1/reports/response-times?since=yesterday",
        &supervisor,
    )
    .await
    .assert_field_error(422, "invalid_field", "since");
    app.get("/api/v1/reports/service-matrix", &token)
        .await
        .assert_error(403, "forbidden");
    assert_eq!(
        app.get("/api/v1/reports/service-matrix", &supervisor)
            .await
            .ok(200)["timeliness_threshold"],
        0.8
    );
    // Agents cannot publish rules, nor see the appeals queue.
    app.post("/api/v1/complaint-rules", &token, json!({}))
        .await
        .assert_error(403, "forbidden");
    app.get("/api/v1/appeals", &token)
        .await
        .assert_error(403, "forbidden");
}

async fn tracking_page(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let case = complaint_case(&app, &token).await;
    let id = case["id"].as_str().expect("id");
    app.post(&format!("/api/v1/cases/{id}/complaint"), &token, record())
        .await
        .ok(201);
    app.post(
        &format!("/api/v1/cases/{id}/messages"),
        &token,
        json!({"kind": "internal_note", "body": "内部备注：司机是外包的"}),
    )
    .await
    .ok(201);
    app.post(
        &format!("/api/v1/cases/{id}/messages"),
        &token,
        json!({"kind": "outbound", "body": "非常抱歉，我们正在核实 <script>alert(1)</script>"}),
    )
    .await
    .ok(201);
    let link = app
        .request(
            Method::POST,
            &format!("/api/v1/cases/{id}/tracking-link"),
            Some(&token),
            None,
        )
        .await;
    let link = link.ok(200).clone();
    let token_text = link["token"].as_str().expect("token");
    let page_path = link["path"].as_str().expect("path").to_string();
    // The JSON view needs no login.
    let seen = app
        .send(Req::new(
            Method::GET,
            &format!("/api/v1/track/{token_text}"),
        ))
        .await;
    assert_eq!(seen.ok(200)["complaint_stage"]["zh"], "受理登记");
    assert_eq!(seen.header("cache-control"), "no-store");
    assert!(!String::from_utf8_lossy(&seen.bytes).contains("外包"));
    // The page, in Chinese by default and in English on request; text is escaped.
    let zh = app.send(Req::new(Method::GET, &page_path)).await;
    assert_eq!(zh.status.as_u16(), 200);
    let html = String::from_utf8_lossy(&zh.bytes).to_string();
    assert!(html.contains("lang=\"zh-CN\""), "{html}");
    assert!(html.contains("投诉处理进度"));
    assert!(html.contains("受理登记"));
    assert!(html.contains("&lt;script&gt;"), "escaped");
    assert!(!html.contains("<script>"));
    assert!(html.contains("快递员态度恶劣 &lt;b&gt;"));
    assert!(!html.contains("外包"), "no internal notes");
    let en = app
        .send(Req::new(Method::GET, &page_path).header("accept-language", "en-GB,en;q=0.9"))
        .await;
    let html = String::from_utf8_lossy(&en.bytes).to_string();
    assert!(html.contains("Complaint stage"), "{html}");
    assert!(html.contains("Recorded"));
    let forced = app
        .send(
            Req::new(Method::GET, &format!("{page_path}?lang=zh-CN"))
                .header("accept-language", "en"),
        )
        .await;
    assert!(String::from_utf8_lossy(&forced.bytes).contains("处理记录"));
    // A wrong token is a plain not-found page, and a revoked one too.
    let wrong = app.send(Req::new(Method::GET, "/track/nope")).await;
    assert_eq!(wrong.status.as_u16(), 404);
    assert!(String::from_utf8_lossy(&wrong.bytes).contains("此链接无效"));
    app.request(
        Method::DELETE,
        &format!("/api/v1/cases/{id}/tracking-link"),
        Some(&token),
        None,
    )
    .await
    .ok(204);
    let revoked = app.send(Req::new(Method::GET, &page_path)).await;
    assert_eq!(revoked.status.as_u16(), 404);
    app.send(Req::new(
        Method::GET,
        &format!("/api/v1/track/{token_text}"),
    ))
    .await
    .assert_error(404, "not_found");
}

async fn sla_over_http(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let admin = app.admin().await;
    let hours = |start: &str, end: &str| {
        json!([
            {"weekday": "monday", "start": "09:00", "end": "12:00"},
            {"weekday": "monday", "start": start, "end": end}
        ])
    };
    let overlapping = app
        .post(
            "/api/v1/calendars",
            &admin,
            json!({"name": "客服中心", "spec": {"time_zone": "Asia/Shanghai", "hours": hours("11:00", "18:00")}}),
        )
        .await;
    overlapping.assert_field_error(422, "invalid_field", "hours");
    assert!(
        overlapping.message().contains("overlaps"),
        "{}",
        overlapping.message()
    );
    app.post(
        "/api/v1/calendars",
        &admin,
        json!({"name": "x", "spec": {"time_zone": "Asia/Shanghai", "hours": hours("13:00", "25:00")}}),
    )
    .await
    .assert_field_error(422, "invalid_field", "hours");
    let calendar = app
        .post(
            "/api/v1/calendars",
            &admin,
            json!({"name": "客服中心", "spec": {"time_zone": "Asia/Shanghai", "hours": hours("13:00", "18:00")}}),
        )
        .await;
    assert_eq!(calendar.ok(201)["spec"]["time_zone"], "Asia/Shanghai");
    app.post(
        "/api/v1/calendars",
        &token,
        json!({"name": "y", "spec": {"time_zone": "UTC", "always_open": true}}),
    )
    .await
    .assert_error(403, "forbidden");
    app.post(
        "/api/v1/sla-policies",
        &admin,
        json!({"name": "默认", "rank": 1, "first_response_minutes": 0}),
    )
    .await
    .assert_field_error(422, "invalid_field", "first_response_minutes");
    let policy = app
        .post(
            "/api/v1/sla-policies",
            &admin,
            json!({"name": "默认", "rank": 1, "first_response_minutes": 30, "resolution_minutes": 480}),
        )
        .await;
    assert_eq!(policy.ok(201)["warn_at_percent"], 80);
    let customer = app.customer(&token, json!({"name": "计时客户"})).await;
    let case = app.case(&token, &customer, "要计时").await;
    let clocks = app
        .get(
            &format!("/api/v1/cases/{}/sla", case["id"].as_str().expect("id")),
            &token,
        )
        .await;
    let clocks = clocks.ok(200).as_array().expect("clocks").clone();
    assert_eq!(clocks.len(), 2);
    assert_eq!(clocks[0]["metric"], "first_response");
    assert_eq!(clocks[0]["state"], "running");
    assert_eq!(clocks[0]["target_ms"], 30 * 60_000);
}

async fn survey_page(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let customer = app.customer(&token, json!({"name": "问卷客户"})).await;
    let case = app.case(&token, &customer, "退款 <进度>").await;
    let id = case["id"].as_str().expect("id");
    app.post(
        &format!("/api/v1/cases/{id}/transitions"),
        &token,
        json!({"status": "solved"}),
    )
    .await
    .ok(200);
    let requests = app
        .get(&format!("/api/v1/cases/{id}/satisfaction"), &token)
        .await;
    let path = requests.ok(200)[0]["path"]
        .as_str()
        .expect("path")
        .to_string();
    let page = app.send(Req::new(Method::GET, &path)).await;
    assert_eq!(page.status.as_u16(), 200);
    let html = String::from_utf8_lossy(&page.bytes).to_string();
    assert!(html.contains("您对本次服务满意吗"), "{html}");
    assert!(html.contains("退款 &lt;进度&gt;"));
    assert_eq!(page.header("cache-control"), "no-store");
    // A form post without a score is asked again; with one it is thanked.
    let missing = app
        .send(
            Req::new(Method::POST, &path)
                .header("content-type", "application/x-www-form-urlencoded")
                .body("reason=x"),
        )
        .await;
    assert_eq!(missing.status.as_u16(), 422);
    assert!(String::from_utf8_lossy(&missing.bytes).contains("请选择 1 到 5 分"));
    let sent = app
        .send(
            Req::new(Method::POST, &format!("{path}?lang=en"))
                .header("content-type", "application/x-www-form-urlencoded")
                .body("score=4&reason=%E5%BE%88%E5%A5%BD"),
        )
        .await;
    assert_eq!(sent.status.as_u16(), 200);
    assert!(String::from_utf8_lossy(&sent.bytes).contains("Thank you for your feedback. (4/5)"));
    let case_now = app.get(&format!("/api/v1/cases/{id}"), &token).await;
    assert_eq!(case_now.ok(200)["csat_score"], 4);
    assert_eq!(case_now.json["csat_reason"], "很好");
    // The JSON form of the same link refuses a second answer.
    let token_text = path.strip_prefix("/survey/").expect("token");
    app.send(
        Req::new(Method::POST, &format!("/api/v1/survey/{token_text}")).json(&json!({"score": 1})),
    )
    .await
    .assert_error(409, "duplicate");
}
