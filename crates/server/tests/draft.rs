//! The optional reply-drafting connector against a model server on loopback that answers
//! as an OpenAI-compatible server does (llama.cpp's `llama-server` answer shape, recorded
//! below): what kefu sends it, what the agent gets back, and every way it can fail —
//! off, unreachable, an error status, a body that is not a completion, too slow.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use common::*;
use kefu_domain::access::Role;
use kefu_server::ServerConfig;
use kefu_server::draft::DraftConfig;
use kefu_store::Store;
use serde_json::{Value, json};

kefu_testkit::conformance!(drafts_a_reply_with_a_model_server);

/// What the fixture server does with the next request.
#[derive(Clone, Copy)]
enum Behaviour {
    Answer,
    Fail,
    Garbage,
    Slow,
}

#[derive(Clone)]
struct Fixture {
    behaviour: Arc<Mutex<Behaviour>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

/// A completion as llama-server 1.x answers `POST /v1/chat/completions` (non-streaming).
fn recorded_completion(content: &str) -> Value {
    json!({
        "choices": [{
            "finish_reason": "stop",
            "index": 0,
            "message": {"role": "assistant", "content": content}
        }],
        "created": 1764835200,
        "model": "qwen2.5-1.5b-instruct-q4_k_m.gguf",
        "system_fingerprint": "b4500-adc5dd92",
        "object": "chat.completion",
        "usage": {"completion_tokens": 38, "prompt_tokens": 212, "total_tokens": 250},
        "id": "chatcmpl-5Yk2uJ1sVnCzWq3A0bL9TfR7eHdXoPiM"
    })
}

async fn model_server(fixture: Fixture) -> String {
    async fn handle(
        axum::extract::State(fixture): axum::extract::State<Fixture>,
        headers: HeaderMap,
        body: axum::body::Bytes,
    ) -> axum::response::Response {
        use axum::response::IntoResponse;
        let parsed: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        fixture.seen.lock().expect("lock").push((headers, parsed));
        let behaviour = *fixture.behaviour.lock().expect("lock");
        match behaviour {
            Behaviour::Answer => axum::Json(recorded_completion(
                "您好，退款会在 1-3 个工作日内原路退回，到账后银行会有短信通知，请您留意。",
            ))
            .into_response(),
            Behaviour::Fail => (
                StatusCode::SERVICE_UNAVAILABLE,
                axum::Json(json!({"error": {"code": 503, "message": "Loading model", "type": "unavailable_error"}})),
            )
                .into_response(),
            Behaviour::Garbage => "<html>not a completion</html>".into_response(),
            Behaviour::Slow => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                axum::Json(recorded_completion("too late")).into_response()
            }
        }
    }
    let router = axum::Router::new()
        .route("/v1/chat/completions", axum::routing::post(handle))
        .with_state(fixture);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });
    format!("http://{address}/v1")
}

async fn drafts_a_reply_with_a_model_server(store: Store) {
    let fixture = Fixture {
        behaviour: Arc::new(Mutex::new(Behaviour::Answer)),
        seen: Arc::new(Mutex::new(Vec::new())),
    };
    let endpoint = model_server(fixture.clone()).await;
    let config = |endpoint: &str| ServerConfig {
        draft: Some(
            DraftConfig::new(
                endpoint,
                "qwen2.5-1.5b-instruct",
                Some("sk-local-secret".into()),
                Duration::from_secs(1),
            )
            .expect("config"),
        ),
        ..ServerConfig::default()
    };
    let off = TestApp::new(store.clone());
    let app = TestApp::with_config(store.clone(), config(&endpoint));
    let admin = app.admin().await;
    let (_, agent) = app.user(Role::Agent).await;
    let (_, readonly) = app.user(Role::Readonly).await;

    let entry = app
        .post(
            "/api/v1/kb/entries",
            &admin,
            json!({"question": "退款多久到账", "similar": ["退款什么时候到"],
                   "answer": "退款在 1-3 个工作日内原路退回。"}),
        )
        .await;
    let entry_id = entry.id();
    app.send(
        Req::new(
            axum::http::Method::PATCH,
            &format!("/api/v1/kb/entries/{entry_id}"),
        )
        .bearer(&admin)
        .header("If-Match", "\"1\"")
        .json(&json!({"status": "published"})),
    )
    .await
    .ok(200);
    let customer = app
        .customer(
            &agent,
            json!({"name": "周敏", "communication_type": "hesitant"}),
        )
        .await;
    let case = app
        .post(
            "/api/v1/cases",
            &agent,
            json!({"customer_id": customer, "kind": "after_sale", "subject": "退款",
                   "body": "我上周申请的退款什么时候到账？"}),
        )
        .await;
    let case_id = case.id();
    app.post(
        &format!("/api/v1/cases/{case_id}/messages"),
        &agent,
        json!({"kind": "internal_note", "body": "内部：此客户曾多次退货"}),
    )
    .await
    .ok(201);
    let path = format!("/api/v1/cases/{case_id}/assist/draft");

    // Off by default: a clear answer, no request anywhere.
    off.post(&path, &agent, json!({}))
        .await
        .assert_error(409, "unsupported");
    assert!(fixture.seen.lock().expect("lock").is_empty());

    // Read-only users do not draft replies.
    app.post(&path, &readonly, json!({}))
        .await
        .assert_error(403, "forbidden");

    // The draft, and what the model server was sent.
    let reply = app.post(&path, &agent, json!({})).await;
    let body = reply.ok(200);
    assert!(
        body["draft"]
            .as_str()
            .is_some_and(|d| d.contains("1-3 个工作日")),
        "{body}"
    );
    assert_eq!(body["model"], "qwen2.5-1.5b-instruct-q4_k_m.gguf");
    assert_eq!(body["from_faq"][0], entry_id.as_str());
    let (headers, sent) = fixture.seen.lock().expect("lock").pop().expect("a request");
    assert_eq!(
        headers.get("authorization").and_then(|v| v.to_str().ok()),
        Some("Bearer sk-local-secret")
    );
    assert_eq!(sent["model"], "qwen2.5-1.5b-instruct");
    assert_eq!(sent["stream"], false);
    let messages = sent["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap_or_default();
    assert!(
        system.contains("退款在 1-3 个工作日内原路退回") && system.contains("简体中文"),
        "{system}"
    );
    assert!(
        messages
            .iter()
            .any(|m| m["role"] == "user" && m["content"] == "我上周申请的退款什么时候到账？"),
        "{sent}"
    );
    assert!(
        !sent.to_string().contains("多次退货"),
        "an internal note went to the model server: {sent}"
    );

    // After an agent's reply the conversation sent still ends with the customer: the
    // model drafts the next reply rather than continuing the agent's.
    app.post(
        &format!("/api/v1/cases/{case_id}/messages"),
        &agent,
        json!({"kind": "outbound", "body": "您好，正在为您查询"}),
    )
    .await
    .ok(201);
    app.post(&path, &agent, json!({})).await.ok(200);
    let (_, sent) = fixture.seen.lock().expect("lock").pop().expect("a request");
    let messages = sent["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(
        messages.last().map(|m| m["role"].clone()),
        Some(json!("user")),
        "{sent}"
    );

    // Every failure is a 502 with what went wrong, never a 500.
    for (behaviour, says) in [
        (Behaviour::Fail, "503"),
        (Behaviour::Garbage, "not a chat completion"),
        (Behaviour::Slow, "did not answer within"),
    ] {
        *fixture.behaviour.lock().expect("lock") = behaviour;
        let reply = app.post(&path, &agent, json!({})).await;
        reply.assert_error(502, "draft_failed");
        assert!(reply.message().contains(says), "{}", reply.message());
        assert!(!reply.message().contains("sk-local-secret"));
    }
    // Nothing listens on the port any more.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let address = listener.local_addr().expect("address");
        drop(listener);
        format!("http://{address}/v1")
    };
    let down = TestApp::with_config(store.clone(), config(&closed));
    let reply = down.post(&path, &agent, json!({})).await;
    reply.assert_error(502, "draft_failed");
    assert!(
        reply.message().contains("cannot reach"),
        "{}",
        reply.message()
    );

    // A case that does not exist.
    app.post("/api/v1/cases/no-such-case/assist/draft", &agent, json!({}))
        .await
        .assert_error(404, "not_found");
}
