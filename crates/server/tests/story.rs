//! The happy paths, end to end through HTTP, on SQLite and on PostgreSQL: a customer's
//! archive, a case's whole life, lists with filters and cursors, and idempotent creates.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::access::Role;
use kefu_store::Store;
use serde_json::{Value, json};
use std::collections::BTreeSet;

kefu_testkit::conformance!(
    customer_story,
    case_story,
    attachments_round_trip,
    lists_walk_every_item_once_and_filter,
    idempotent_creates,
);

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["id"].as_str().expect("an id").to_string())
        .collect()
}

fn kinds(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|item| item["kind"].as_str().expect("a kind").to_string())
        .collect()
}

async fn customer_story(store: Store) {
    let app = TestApp::new(store);
    let (agent, token) = app.user(Role::Agent).await;
    let admin = app.admin().await;

    // Only a name is needed.
    let created = app
        .post("/api/v1/customers", &token, json!({"name": "王小明"}))
        .await;
    let customer = created.ok(201).clone();
    let id = created.id();
    assert_eq!(created.header("etag"), "\"1\"");
    assert_eq!(customer["name"], "王小明");
    assert_eq!(customer["version"], 1);
    assert_eq!(customer["kind"], "person");
    assert_eq!(customer["lifecycle"], "potential");
    assert_eq!(customer["card"], "potential");
    assert_eq!(customer["contacts"], json!([]));
    assert_eq!(customer["field_sources"]["name"]["source"], "agent");

    let path = format!("/api/v1/customers/{id}");
    let got = app.get(&path, &token).await;
    assert_eq!(got.header("etag"), "\"1\"");
    // The detail is the customer with its cards around it.
    for (key, value) in customer.as_object().expect("an object") {
        assert_eq!(&got.ok(200)[key], value, "{key}");
    }
    assert_eq!(got.json["lifecycle_history"][0]["to"], "potential");

    // PATCH with the ETag.
    let patched = app
        .send(
            Req::new(Method::PATCH, &path)
                .bearer(&token)
                .header("if-match", "\"1\"")
                .json(&json!({"notes": "喜欢喝茶", "value_class": "key", "communication_type": "hesitant"})),
        )
        .await;
    assert_eq!(patched.ok(200)["notes"], "喜欢喝茶");
    assert_eq!(patched.header("etag"), "\"2\"");
    assert_eq!(patched.json["version"], 2);
    assert_eq!(patched.json["value_class"], "key");
    let got = app.get(&path, &token).await;
    assert_eq!(got.header("etag"), "\"2\"");
    assert!(got.json["communication_strategy"]["zh"].is_string());

    // Contacts.
    let with_contact = app
        .post(
            &format!("{path}/contacts"),
            &token,
            json!({"channel": "email", "value": "Xiaoming@Example.com", "is_primary": true}),
        )
        .await;
    assert_eq!(
        with_contact.ok(201)["contacts"][0]["value"],
        "xiaoming@example.com"
    );
    assert_eq!(with_contact.header("etag"), "\"3\"");

    // The lifecycle, with If-Match and a reason.
    let moved = app
        .send(
            Req::new(Method::POST, &format!("{path}/lifecycle"))
                .bearer(&token)
                .header("if-match", "\"3\"")
                .json(&json!({"to": "current", "reason": "first order"})),
        )
        .await;
    assert_eq!(moved.ok(200)["lifecycle"], "current");
    assert_eq!(moved.json["card"], "current");
    assert_eq!(moved.header("etag"), "\"4\"");
    let history = app.get(&format!("{path}/lifecycle"), &token).await;
    let history = history.ok(200).as_array().expect("history").clone();
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["from"], "potential");
    assert_eq!(history[0]["to"], "current");
    assert_eq!(history[0]["reason"], "first order");
    assert_eq!(history[0]["actor"], agent.email.as_str());

    let transaction = app
        .post(
            &format!("{path}/transactions"),
            &token,
            json!({"method": "bank_transfer", "amount_cents": 12_345, "currency": "CNY"}),
        )
        .await;
    assert_eq!(transaction.ok(201)["amount_cents"], 12_345);
    let got = app.get(&path, &token).await;
    assert_eq!(got.ok(200)["total_spent_cents"], 12_345);

    // A face-to-face visit recorded by hand.
    let visit = app
        .post(
            &format!("{path}/timeline"),
            &token,
            json!({
                "kind": "visit",
                "channel": "face_to_face",
                "direction": "company_initiated",
                "content_type": "emotion",
                "summary": "上门拜访，客户很满意",
                "occurred_at": "2026-01-05T08:30:00Z",
            }),
        )
        .await;
    let visit = visit.ok(201).clone();
    assert_eq!(visit["kind"], "visit");
    assert_eq!(visit["channel"], "face_to_face");
    assert_eq!(visit["interaction_type"], "face_to_face");
    assert_eq!(visit["direction"], "company_initiated");
    assert_eq!(visit["content_type"], "emotion");
    assert_eq!(visit["customer_id"], id.as_str());
    assert_eq!(visit["actor_id"], agent.id.as_str());
    assert_eq!(visit["occurred_at"], "2026-01-05T08:30:00Z");
    // Events kefu writes itself cannot be recorded by hand.
    app.post(
        &format!("{path}/timeline"),
        &token,
        json!({"kind": "case_created", "channel": "web", "direction": "customer_initiated", "summary": "fake"}),
    )
    .await
    .assert_field_error(422, "invalid_field", "kind");

    let timeline = app.get(&format!("{path}/timeline"), &token).await;
    let entries = timeline.ok(200)["items"].as_array().expect("items").clone();
    let entry_kinds = kinds(&entries);
    assert!(
        entry_kinds.contains(&"visit".to_string()),
        "{entry_kinds:?}"
    );
    assert!(
        entry_kinds.contains(&"lifecycle".to_string()),
        "{entry_kinds:?}"
    );
    assert!(
        entry_kinds.contains(&"transaction".to_string()),
        "{entry_kinds:?}"
    );
    let filtered = app
        .get(
            &format!("{path}/timeline?interaction_type=face_to_face"),
            &token,
        )
        .await;
    assert_eq!(
        ids(filtered.ok(200)["items"].as_array().expect("items")),
        vec![visit["id"].as_str().expect("id").to_string()]
    );

    // The audit log has the create and the update, with before and after.
    let audit = app
        .get(
            &format!("/api/v1/audit?object_type=customer&object_id={id}"),
            &admin,
        )
        .await;
    let entries = audit.ok(200)["items"].as_array().expect("items").clone();
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert!(actions.contains(&"create"), "{actions:?}");
    assert!(actions.contains(&"update"), "{actions:?}");
    assert!(
        entries
            .iter()
            .all(|e| e["object_id"] == id.as_str() && e["object_type"] == "customer")
    );
    let create = entries
        .iter()
        .find(|e| e["action"] == "create")
        .expect("create");
    assert_eq!(create["before"], Value::Null);
    assert_eq!(create["after"]["name"], "王小明");
    assert_eq!(create["actor"], agent.email.as_str());
    assert_eq!(create["actor_id"], agent.id.as_str());
    let update = entries
        .iter()
        .find(|e| e["action"] == "update" && e["before"]["version"] == 1)
        .expect("the notes update");
    assert_eq!(update["before"]["notes"], "");
    assert_eq!(update["after"]["notes"], "喜欢喝茶");
    assert_eq!(update["before"]["version"], 1);
    assert_eq!(update["after"]["version"], 2);
    // Newest first.
    let audit_ids: Vec<i64> = entries.iter().filter_map(|e| e["id"].as_i64()).collect();
    assert!(audit_ids.windows(2).all(|w| w[0] > w[1]), "{audit_ids:?}");
    // Agents do not read the audit log.
    app.get("/api/v1/audit", &token)
        .await
        .assert_error(403, "forbidden");
}

async fn case_story(store: Store) {
    let app = TestApp::new(store);
    let admin = app.admin().await;
    let (agent, token) = app.user(Role::Agent).await;
    let (colleague, _) = app.user(Role::Agent).await;
    let customer = app
        .customer(
            &token,
            json!({"name": "李华", "contacts": [{"channel": "phone", "value": "13800138000"}]}),
        )
        .await;

    // A team, through the API.
    let team = app
        .post(
            "/api/v1/teams",
            &admin,
            json!({"name": "技术支持二线", "description": "second line"}),
        )
        .await;
    assert_eq!(team.ok(201)["name"], "技术支持二线");
    assert_eq!(team.header("etag"), "\"1\"");
    let team = team.id();
    let teams = app.get("/api/v1/teams", &token).await;
    assert_eq!(
        ids(teams.ok(200).as_array().expect("teams")),
        vec![team.clone()]
    );

    // A case with only the required fields.
    let created = app
        .post(
            "/api/v1/cases",
            &token,
            json!({"customer_id": customer, "kind": "technical_support", "subject": "打印机卡纸", "body": "打印机一直卡纸，怎么办？"}),
        )
        .await;
    let case = created.ok(201).clone();
    assert_eq!(created.header("etag"), "\"1\"");
    let id = created.id();
    assert_eq!(case["status"], "new");
    assert_eq!(case["customer_id"], customer.as_str());
    assert_eq!(case["customer_name"], "李华");
    assert_eq!(case["priority"], "normal");
    assert_eq!(case["service_stage"], "after_sale");
    assert_eq!(case["technical"], true);
    assert_eq!(case["channel"], "api");
    assert_eq!(case["first_owner_id"], agent.id.as_str());
    assert!(case["number"].as_i64().is_some_and(|n| n >= 1));
    let path = format!("/api/v1/cases/{id}");
    let got = app.get(&path, &token).await;
    assert_eq!(got.ok(200), &case);
    assert_eq!(got.header("etag"), "\"1\"");

    // A complaint starts at high priority.
    let complaint = app
        .post(
            "/api/v1/cases",
            &token,
            json!({"customer_id": customer, "kind": "complaint", "subject": "态度差", "body": "客服态度很差"}),
        )
        .await;
    assert_eq!(complaint.ok(201)["priority"], "high");
    assert_eq!(
        complaint.json["number"].as_i64(),
        case["number"].as_i64().map(|n| n + 1)
    );

    // Messages: the reply opens the case.
    let reply = app
        .post(
            &format!("{path}/messages"),
            &token,
            json!({"kind": "outbound", "body": "请先关机再打开。", "channel": "email"}),
        )
        .await;
    let message = reply.ok(201).clone();
    assert_eq!(message["kind"], "outbound");
    assert_eq!(message["author_id"], agent.id.as_str());
    assert_eq!(message["case_id"], id.as_str());
    let note = app
        .post(
            &format!("{path}/messages"),
            &token,
            json!({"kind": "internal_note", "body": "可能是硬件问题"}),
        )
        .await;
    note.ok(201);
    let messages = app.get(&format!("{path}/messages"), &token).await;
    let items = messages.ok(200)["items"].as_array().expect("items").clone();
    assert_eq!(
        kinds(&items),
        vec!["inbound", "outbound", "internal_note"],
        "oldest first"
    );
    let got = app.get(&path, &token).await;
    assert_eq!(got.ok(200)["status"], "open");
    assert!(got.json["first_response_at"].is_string());

    // Transitions.
    let etag = got.header("etag").to_string();
    let pending = app
        .send(
            Req::new(Method::POST, &format!("{path}/transitions"))
                .bearer(&token)
                .header("if-match", &etag)
                .json(&json!({"status": "pending", "reason": "等客户回复"})),
        )
        .await;
    assert_eq!(pending.ok(200)["status"], "pending");
    assert_ne!(pending.header("etag"), etag);
    // The customer answers: the case opens again.
    app.post(
        &format!("{path}/messages"),
        &token,
        json!({"kind": "inbound", "body": "还是不行", "channel": "phone", "content_type": "emotion"}),
    )
    .await
    .ok(201);
    let transitions = app.get(&format!("{path}/transitions"), &token).await;
    let steps: Vec<(Value, Value)> = transitions
        .ok(200)
        .as_array()
        .expect("transitions")
        .iter()
        .map(|t| (t["from"].clone(), t["to"].clone()))
        .collect();
    assert_eq!(
        steps,
        vec![
            (json!("new"), json!("open")),
            (json!("open"), json!("pending")),
            (json!("pending"), json!("open")),
        ]
    );
    assert_eq!(transitions.json[1]["reason"], "等客户回复");
    assert_eq!(transitions.json[1]["actor"], agent.email.as_str());

    // Transfer to the team and a colleague.
    let transferred = app
        .post(
            &format!("{path}/transfers"),
            &token,
            json!({"team_id": team, "assignee_id": colleague.id, "reason": "需要二线支持"}),
        )
        .await;
    assert_eq!(transferred.ok(200)["team_id"], team.as_str());
    assert_eq!(transferred.json["assignee_id"], colleague.id.as_str());
    assert_eq!(transferred.json["first_owner_id"], agent.id.as_str());
    let transfers = app.get(&format!("{path}/transfers"), &token).await;
    let transfers = transfers.ok(200).as_array().expect("transfers").clone();
    assert_eq!(transfers.len(), 1);
    assert_eq!(transfers[0]["from_team_id"], Value::Null);
    assert_eq!(transfers[0]["to_team_id"], team.as_str());
    assert_eq!(transfers[0]["to_assignee_id"], colleague.id.as_str());
    assert_eq!(transfers[0]["reason"], "需要二线支持");
    let mine = app
        .get(&format!("/api/v1/cases?team_id={team}"), &token)
        .await;
    assert_eq!(
        ids(mine.ok(200)["items"].as_array().expect("items")),
        vec![id.clone()]
    );

    // Merge a duplicate into the case (needs a supervisor).
    let duplicate = app
        .post(
            "/api/v1/cases",
            &token,
            json!({"customer_id": customer, "kind": "technical_support", "subject": "打印机又卡纸", "body": "同一个问题"}),
        )
        .await;
    let duplicate = duplicate.ok(201)["id"].as_str().expect("id").to_string();
    app.post(
        &format!("/api/v1/cases/{duplicate}/merge"),
        &token,
        json!({"into_id": id}),
    )
    .await
    .assert_error(403, "forbidden");
    let (_, supervisor) = app.user(Role::Supervisor).await;
    let merged = app
        .post(
            &format!("/api/v1/cases/{duplicate}/merge"),
            &supervisor,
            json!({"into_id": id}),
        )
        .await;
    assert_eq!(merged.ok(200)["id"], id.as_str());
    let source = app.get(&format!("/api/v1/cases/{duplicate}"), &token).await;
    assert_eq!(source.ok(200)["status"], "merged");
    assert_eq!(source.json["merged_into_id"], id.as_str());
    let messages = app.get(&format!("{path}/messages?limit=200"), &token).await;
    let bodies: Vec<&str> = messages.ok(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|m| m["body"].as_str())
        .collect();
    assert!(bodies.contains(&"同一个问题"), "{bodies:?}");
    assert_eq!(bodies.len(), 6, "{bodies:?}");

    // The customer's timeline tells the story, each entry classified.
    let timeline = walk(
        &app,
        &token,
        &format!("/api/v1/customers/{customer}/timeline"),
        3,
    )
    .await;
    let entry_kinds: BTreeSet<String> = kinds(&timeline).into_iter().collect();
    for kind in [
        "case_created",
        "message",
        "case_status",
        "case_transfer",
        "case_merged",
    ] {
        assert!(
            entry_kinds.contains(kind),
            "{kind} missing from {entry_kinds:?}"
        );
    }
    for entry in &timeline {
        for field in ["channel", "direction", "interaction_type", "content_type"] {
            assert!(entry[field].is_string(), "{field} of {entry}");
        }
        assert_eq!(entry["customer_id"], customer.as_str());
    }
    let of =
        |kind: &str| -> Vec<&Value> { timeline.iter().filter(|e| e["kind"] == kind).collect() };
    let opened = of("case_created")
        .into_iter()
        .find(|e| e["case_id"] == id.as_str())
        .expect("the case's creation");
    assert_eq!(opened["channel"], "api");
    assert_eq!(opened["direction"], "customer_initiated");
    assert_eq!(opened["interaction_type"], "non_personal");
    assert_eq!(opened["content_type"], "information");
    let messages = of("message");
    assert_eq!(messages.len(), 2, "internal notes are not touchpoints");
    let outbound = messages
        .iter()
        .find(|e| e["channel"] == "email")
        .expect("the email reply");
    assert_eq!(outbound["direction"], "company_initiated");
    assert_eq!(outbound["interaction_type"], "non_personal");
    let call = messages
        .iter()
        .find(|e| e["channel"] == "phone")
        .expect("the phone call");
    assert_eq!(call["direction"], "customer_initiated");
    assert_eq!(call["interaction_type"], "indirect_personal");
    assert_eq!(call["content_type"], "emotion");
    for status in of("case_status") {
        assert_eq!(status["channel"], "system");
        assert_eq!(status["direction"], "company_initiated");
    }
    let transfer = of("case_transfer");
    assert_eq!(transfer.len(), 1);
    assert_eq!(transfer[0]["case_id"], id.as_str());
    assert_eq!(transfer[0]["data"]["to_team_id"], team.as_str());

    // The same through the global timeline's filters.
    let transfers = app
        .get(
            &format!("/api/v1/timeline?customer_id={customer}&kind=case_transfer"),
            &token,
        )
        .await;
    assert_eq!(transfers.ok(200)["items"].as_array().map(Vec::len), Some(1));
    let calls = app
        .get(
            &format!("/api/v1/timeline?case_id={id}&channel=phone&direction=customer_initiated"),
            &token,
        )
        .await;
    assert_eq!(calls.ok(200)["items"].as_array().map(Vec::len), Some(1));

    // PATCH the case with its ETag.
    let got = app.get(&path, &token).await;
    let etag = got.header("etag").to_string();
    let patched = app
        .send(
            Req::new(Method::PATCH, &path)
                .bearer(&token)
                .header("if-match", &etag)
                .json(&json!({"priority": "urgent", "charging": "paid"})),
        )
        .await;
    assert_eq!(patched.ok(200)["priority"], "urgent");
    let version: i64 = etag.trim_matches('"').parse().expect("a numeric ETag");
    assert_eq!(patched.header("etag"), format!("\"{}\"", version + 1));

    // Solve and close.
    for status in ["solved", "closed"] {
        let reply = app
            .post(
                &format!("{path}/transitions"),
                &token,
                json!({"status": status}),
            )
            .await;
        assert_eq!(reply.ok(200)["status"], status);
    }
    let closed = app.get(&path, &token).await;
    assert!(closed.ok(200)["closed_at"].is_string());
    assert!(closed.json["solved_at"].is_string());

    // Audit of the case (admin).
    let audit = app
        .get(
            &format!("/api/v1/audit?object_type=case&object_id={id}"),
            &admin,
        )
        .await;
    let actions: BTreeSet<String> = audit.ok(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect();
    for action in ["create", "update", "transition", "transfer"] {
        assert!(
            actions.contains(action),
            "{action} missing from {actions:?}"
        );
    }
}

async fn attachments_round_trip(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let customer = app.customer(&token, json!({"name": "附件客户"})).await;
    let case = app.case(&token, &customer, "发票").await;
    let id = case["id"].as_str().expect("id").to_string();
    let message = app
        .post(
            &format!("/api/v1/cases/{id}/messages"),
            &token,
            json!({"kind": "outbound", "body": "附上发票"}),
        )
        .await
        .id();

    // Every byte value, so nothing is taken for text.
    let bytes: Vec<u8> = (0..=255u8).cycle().take(70_000).collect();
    let filename = "发票 2026(1).pdf";
    let uploaded = app
        .send(
            Req::new(
                Method::POST,
                &format!(
                    "/api/v1/cases/{id}/attachments?filename={}&message_id={message}",
                    enc(filename)
                ),
            )
            .bearer(&token)
            .header("content-type", "application/pdf")
            .body(bytes.clone()),
        )
        .await;
    let attachment = uploaded.ok(201).clone();
    assert_eq!(attachment["filename"], filename);
    assert_eq!(attachment["content_type"], "application/pdf");
    assert_eq!(attachment["size_bytes"], bytes.len());
    assert_eq!(attachment["message_id"], message.as_str());
    assert_eq!(attachment["sha256"], kefu_store::token_hash_bytes(&bytes));
    let attachment_id = uploaded.id();

    // A second one, without a message, sent as HTML: it must never render in place.
    let html = app
        .send(
            Req::new(
                Method::POST,
                &format!("/api/v1/cases/{id}/attachments?filename=page.html"),
            )
            .bearer(&token)
            .header("content-type", "text/html")
            .body("<script>alert(1)</script>"),
        )
        .await;
    let html_id = html.id();

    let listed = app
        .get(&format!("/api/v1/cases/{id}/attachments"), &token)
        .await;
    assert_eq!(
        ids(listed.ok(200).as_array().expect("attachments")),
        vec![attachment_id.clone(), html_id.clone()]
    );
    let messages = app
        .get(&format!("/api/v1/cases/{id}/messages"), &token)
        .await;
    let with_file = messages.ok(200)["items"]
        .as_array()
        .expect("items")
        .iter()
        .find(|m| m["id"] == message.as_str())
        .expect("the message")
        .clone();
    assert_eq!(with_file["attachments"][0]["id"], attachment_id.as_str());

    let download = app
        .get(&format!("/api/v1/attachments/{attachment_id}"), &token)
        .await;
    assert_eq!(download.status.as_u16(), 200);
    assert_eq!(
        download.bytes.as_ref(),
        bytes.as_slice(),
        "the bytes come back unchanged"
    );
    assert_eq!(download.header("content-type"), "application/pdf");
    assert_eq!(download.header("x-content-type-options"), "nosniff");
    let disposition = download.header("content-disposition");
    assert!(disposition.starts_with("attachment;"), "{disposition}");
    assert!(
        disposition.contains(&format!(
            "filename*=UTF-8''{}",
            "%E5%8F%91%E7%A5%A8%202026%281%29.pdf"
        )),
        "{disposition}"
    );

    let page = app
        .get(&format!("/api/v1/attachments/{html_id}"), &token)
        .await;
    assert_eq!(page.bytes.as_ref(), b"<script>alert(1)</script>");
    assert!(
        page.header("content-disposition")
            .starts_with("attachment;")
    );
    assert_eq!(page.header("x-content-type-options"), "nosniff");
    assert!(page.header("content-security-policy").contains("sandbox"));

    // Read-only users may download; they may not upload.
    let (_, readonly) = app.user(Role::Readonly).await;
    let again = app
        .get(&format!("/api/v1/attachments/{attachment_id}"), &readonly)
        .await;
    assert_eq!(again.bytes.as_ref(), bytes.as_slice());
    app.send(
        Req::new(
            Method::POST,
            &format!("/api/v1/cases/{id}/attachments?filename=x.txt"),
        )
        .bearer(&readonly)
        .body("x"),
    )
    .await
    .assert_error(403, "forbidden");
}

async fn lists_walk_every_item_once_and_filter(store: Store) {
    let app = TestApp::new(store);
    let admin = app.admin().await;
    let (_, token) = app.user(Role::Agent).await;

    let people = [
        ("王小明", "potential"),
        ("王大明", "current"),
        ("李小龙", "current"),
        ("张三", "lost"),
        // Namesakes: the name order must page through ties.
        ("张三", "lost"),
        ("张三", "lost"),
        ("Zhang Wei", "target"),
        ("陈美玲", "potential"),
        ("小明书店", "current"),
    ];
    let mut created = Vec::new();
    for (name, lifecycle) in people {
        let mut body = json!({"name": name, "lifecycle": lifecycle});
        if name == "小明书店" {
            body["kind"] = json!("organization");
        }
        created.push(app.customer(&token, body).await);
    }
    let all: BTreeSet<String> = created.iter().cloned().collect();

    for sort in [
        "",
        "&sort=name",
        "&sort=-name",
        "&sort=created",
        "&sort=-updated",
    ] {
        for limit in [1, 2, 3, 7, 200] {
            let items = walk(&app, &token, &format!("/api/v1/customers?{sort}"), limit).await;
            let seen = ids(&items);
            let unique: BTreeSet<String> = seen.iter().cloned().collect();
            assert_eq!(
                seen.len(),
                unique.len(),
                "sort {sort} limit {limit}: {seen:?}"
            );
            assert_eq!(unique, all, "sort {sort} limit {limit}");
        }
    }
    // The default order is newest first.
    let newest = walk(&app, &token, "/api/v1/customers", 3).await;
    let mut expected = created.clone();
    expected.reverse();
    assert_eq!(ids(&newest), expected);

    let names = |items: &[Value]| -> BTreeSet<String> {
        items
            .iter()
            .filter_map(|c| c["name"].as_str().map(str::to_string))
            .collect()
    };
    let set =
        |names: &[&str]| -> BTreeSet<String> { names.iter().map(|n| n.to_string()).collect() };
    let current = walk(&app, &token, "/api/v1/customers?lifecycle=current", 2).await;
    assert_eq!(names(&current), set(&["王大明", "李小龙", "小明书店"]));
    let xiaoming = walk(
        &app,
        &token,
        &format!("/api/v1/customers?q={}", enc("小明")),
        1,
    )
    .await;
    assert_eq!(names(&xiaoming), set(&["王小明", "小明书店"]));
    let both = walk(
        &app,
        &token,
        &format!(
            "/api/v1/customers?q={}&lifecycle=current&kind=organization",
            enc("明")
        ),
        2,
    )
    .await;
    assert_eq!(names(&both), set(&["小明书店"]));
    let latin = walk(
        &app,
        &token,
        &format!("/api/v1/customers?q={}", enc("zhang")),
        2,
    )
    .await;
    assert_eq!(names(&latin), set(&["Zhang Wei"]));
    let nothing = app
        .get(&format!("/api/v1/customers?q={}", enc("不存在")), &token)
        .await;
    assert_eq!(nothing.ok(200), &json!({"items": [], "next_cursor": null}));

    // Cases.
    let mut case_ids = Vec::new();
    for (n, (customer, kind)) in [
        (0, "consultation"),
        (1, "complaint"),
        (1, "order"),
        (2, "complaint"),
        (3, "after_sale"),
        (0, "suggestion"),
    ]
    .into_iter()
    .enumerate()
    {
        let reply = app
            .post(
                "/api/v1/cases",
                &token,
                json!({"customer_id": created[customer], "kind": kind, "subject": format!("工单{n} 退货"), "body": "内容"}),
            )
            .await;
        case_ids.push(reply.id());
    }
    app.post(
        &format!("/api/v1/cases/{}/transitions", case_ids[1]),
        &token,
        json!({"status": "pending"}),
    )
    .await
    .ok(200);
    app.post(
        &format!("/api/v1/cases/{}/transitions", case_ids[2]),
        &token,
        json!({"status": "solved"}),
    )
    .await
    .ok(200);
    app.post(
        &format!("/api/v1/cases/{}/transitions", case_ids[4]),
        &token,
        json!({"status": "closed"}),
    )
    .await
    .ok(200);

    let all_cases: BTreeSet<String> = case_ids.iter().cloned().collect();
    for sort in ["", "&sort=number", "&sort=-updated"] {
        for limit in [1, 4, 6] {
            let seen = ids(&walk(&app, &token, &format!("/api/v1/cases?{sort}"), limit).await);
            assert_eq!(seen.len(), case_ids.len(), "{sort} {limit}");
            assert_eq!(seen.into_iter().collect::<BTreeSet<_>>(), all_cases);
        }
    }
    let by_number = ids(&walk(&app, &token, "/api/v1/cases?sort=number", 4).await);
    assert_eq!(by_number, case_ids);
    let filtered = |query: &'static str| {
        let app = &app;
        let token = &token;
        async move {
            let items = walk(app, token, &format!("/api/v1/cases?{query}"), 2).await;
            ids(&items).into_iter().collect::<BTreeSet<String>>()
        }
    };
    let pick = |indexes: &[usize]| -> BTreeSet<String> {
        indexes.iter().map(|i| case_ids[*i].clone()).collect()
    };
    assert_eq!(filtered("status=pending").await, pick(&[1]));
    assert_eq!(filtered("status=new").await, pick(&[0, 3, 5]));
    assert_eq!(filtered("kind=complaint").await, pick(&[1, 3]));
    assert_eq!(filtered("kind=complaint&status=new").await, pick(&[3]));
    assert_eq!(filtered("open=true").await, pick(&[0, 1, 3, 5]));
    assert_eq!(filtered("open=false").await, pick(&[2, 4]));
    assert_eq!(filtered("priority=high").await, pick(&[1, 3]));
    let of_customer = walk(
        &app,
        &token,
        &format!("/api/v1/cases?customer_id={}", created[1]),
        1,
    )
    .await;
    assert_eq!(
        ids(&of_customer).into_iter().collect::<BTreeSet<_>>(),
        pick(&[1, 2])
    );
    let by_text = walk(
        &app,
        &token,
        &format!("/api/v1/cases?q={}", enc("工单3")),
        2,
    )
    .await;
    assert_eq!(ids(&by_text), vec![case_ids[3].clone()]);
    let mine = walk(&app, &token, "/api/v1/cases?assignee_id=me", 2).await;
    assert!(mine.is_empty());

    // The timeline and the audit log walk the same way.
    for path in ["/api/v1/timeline", "/api/v1/audit", "/api/v1/users"] {
        let whole = app.get(&format!("{path}?limit=200"), &admin).await;
        let whole = ids_or_numbers(whole.ok(200)["items"].as_array().expect("items"));
        assert!(whole.len() >= 2, "{path}: {whole:?}");
        for limit in [1, 3] {
            let walked = ids_or_numbers(&walk(&app, &admin, path, limit).await);
            assert_eq!(walked, whole, "{path} limit {limit}");
        }
    }
    let complaints = walk(
        &app,
        &token,
        "/api/v1/timeline?kind=case_created&content_type=emotion",
        1,
    )
    .await;
    assert_eq!(complaints.len(), 2, "complaints carry emotion");
}

/// Items' `id`s as text (audit ids are numbers).
fn ids_or_numbers(items: &[Value]) -> Vec<String> {
    items.iter().map(|item| item["id"].to_string()).collect()
}

async fn idempotent_creates(store: Store) {
    let app = TestApp::new(store);
    let (_, token) = app.user(Role::Agent).await;
    let customer = app.customer(&token, json!({"name": "幂等"})).await;
    let body = json!({"customer_id": customer, "kind": "order", "subject": "重复提交", "body": "网络不好"});
    let send = |key: &str, body: &Value, token: &str| {
        app.send(
            Req::new(Method::POST, "/api/v1/cases")
                .bearer(token)
                .header("idempotency-key", key)
                .json(body),
        )
    };
    let first = send("order-42", &body, &token).await;
    let case = first.ok(201).clone();
    let second = send("order-42", &body, &token).await;
    assert_eq!(second.ok(201), &case, "the same answer again");
    assert_eq!(second.header("idempotent-replayed"), "true");
    assert!(second.header("content-type").starts_with(JSON));
    assert_eq!(app.case_count().await, 1);
    let listed = app.get("/api/v1/cases", &token).await;
    assert_eq!(listed.ok(200)["items"].as_array().map(Vec::len), Some(1));

    // The same key with another body.
    let other =
        json!({"customer_id": customer, "kind": "order", "subject": "另一张", "body": "网络不好"});
    let reply = send("order-42", &other, &token).await;
    reply.assert_field_error(422, "idempotency_key_reused", "Idempotency-Key");
    assert_eq!(app.case_count().await, 1);

    // Keys belong to one user, and one kind of create.
    let (_, colleague) = app.user(Role::Agent).await;
    let theirs = send("order-42", &body, &colleague).await;
    assert_ne!(theirs.ok(201)["id"], case["id"]);
    assert_eq!(app.case_count().await, 2);
    let customer_with_key = app
        .send(
            Req::new(Method::POST, "/api/v1/customers")
                .bearer(&token)
                .header("idempotency-key", "order-42")
                .json(&json!({"name": "另一位"})),
        )
        .await;
    customer_with_key.ok(201);
    // A new key makes a new case.
    let third = send("order-43", &body, &token).await;
    assert_ne!(third.ok(201)["id"], case["id"]);
    assert_eq!(app.case_count().await, 3);

    // Messages honour the key too.
    let id = case["id"].as_str().expect("id");
    let message = json!({"kind": "outbound", "body": "已收到"});
    let post_message = |key: &str| {
        app.send(
            Req::new(Method::POST, &format!("/api/v1/cases/{id}/messages"))
                .bearer(&token)
                .header("idempotency-key", key)
                .json(&message),
        )
    };
    let m1 = post_message("reply-1").await;
    let m2 = post_message("reply-1").await;
    assert_eq!(m1.ok(201)["id"], m2.ok(201)["id"]);
    let messages = app
        .get(&format!("/api/v1/cases/{id}/messages"), &token)
        .await;
    assert_eq!(messages.ok(200)["items"].as_array().map(Vec::len), Some(2));
}

/// A replayed create answers exactly as the first one did, ETag included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_replay_keeps_the_etag() {
    let app = TestApp::sqlite().await;
    let (_, token) = app.user(Role::Agent).await;
    let create = || {
        app.send(
            Req::new(Method::POST, "/api/v1/customers")
                .bearer(&token)
                .header("idempotency-key", "k-1")
                .json(&json!({"name": "重放"})),
        )
    };
    let first = create().await;
    assert_eq!(first.header("etag"), "\"1\"");
    let again = create().await;
    assert_eq!(again.json, first.json);
    // Regression: the replay is built from the stored status and body only, so it lacks the
    // ETag header the first answer had.
    assert_eq!(again.header("etag"), "\"1\"", "{again:#?}");
}
