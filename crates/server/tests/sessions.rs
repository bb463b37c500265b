//! Login sessions: the cookie, CSRF protection of changes made with it, and logout.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::Labelled;
use kefu_domain::access::Role;
use kefu_server::ServerConfig;
use serde_json::{Value, json};

const HOST: &str = "kefu.example";

fn create_customer(session: &Session, name: &str) -> Req {
    Req::new(Method::POST, "/api/v1/customers")
        .header("host", HOST)
        .header("cookie", &session.cookie)
        .json(&json!({ "name": name }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_a_protected_cookie_and_answers_with_the_csrf_token() {
    let app = TestApp::sqlite().await;
    let (agent, _) = app.user(Role::Agent).await;
    let session = app.login(&agent.email).await;

    let attributes: Vec<String> = session
        .set_cookie
        .split(';')
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(session.cookie.starts_with("kefu_session="));
    assert!(session.cookie.len() > "kefu_session=".len() + 20);
    assert!(
        attributes.contains(&"httponly".to_string()),
        "{attributes:?}"
    );
    assert!(
        attributes.contains(&"samesite=lax".to_string()),
        "{attributes:?}"
    );
    assert!(attributes.contains(&"path=/".to_string()), "{attributes:?}");
    assert!(
        attributes.iter().any(|a| a.starts_with("max-age=")),
        "{attributes:?}"
    );
    assert!(
        !attributes.contains(&"secure".to_string()),
        "not Secure unless configured"
    );

    assert_eq!(session.me["user"]["email"], agent.email.as_str());
    assert_eq!(session.me["user"]["role"], "agent");
    assert!(session.me["user"].get("password_hash").is_none());
    assert!(session.csrf.len() >= 16);
    let permissions = session.me["permissions"].as_array().expect("permissions");
    assert_eq!(permissions.len(), Role::Agent.permissions().len());

    // The same answer from /me with the cookie.
    let me = app
        .send(Req::new(Method::GET, "/api/v1/me").header("cookie", &session.cookie))
        .await;
    assert_eq!(me.ok(200)["csrf_token"], session.csrf.as_str());
    assert_eq!(me.json["user"]["id"], agent.id.as_str());

    // A deployment over HTTPS marks the cookie Secure.
    let secure = TestApp::with_config(
        app.store.clone(),
        ServerConfig {
            secure_cookies: true,
            ..ServerConfig::default()
        },
    );
    let session = secure.login(&agent.email).await;
    assert!(
        session
            .set_cookie
            .split(';')
            .any(|a| a.trim().eq_ignore_ascii_case("secure")),
        "{}",
        session.set_cookie
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_credentials_set_no_cookie() {
    let app = TestApp::sqlite().await;
    let (agent, _) = app.user(Role::Agent).await;
    for (email, password) in [
        (agent.email.as_str(), "not the password"),
        ("nobody@example.com", PASSWORD),
    ] {
        let reply = app
            .send(Req::new(Method::POST, "/api/v1/auth/login").json(&json!({
                "email": email,
                "password": password,
            })))
            .await;
        reply.assert_error(401, "invalid_credentials");
        assert!(reply.headers.get("set-cookie").is_none());
    }
    // The same answer for an unknown account and a wrong password.
    let unknown = app
        .send(Req::new(Method::POST, "/api/v1/auth/login").json(&json!({
            "email": "nobody@example.com", "password": PASSWORD,
        })))
        .await;
    let wrong = app
        .send(Req::new(Method::POST, "/api/v1/auth/login").json(&json!({
            "email": agent.email, "password": "wrong wrong wrong",
        })))
        .await;
    assert_eq!(unknown.json, wrong.json);
    // Login is JSON too.
    app.send(
        Req::new(Method::POST, "/api/v1/auth/login")
            .json(&json!({"email": agent.email, "password": PASSWORD, "remember": true})),
    )
    .await
    .assert_field_error(422, "invalid_body", "remember");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cookie_changes_need_the_csrf_token_and_the_same_origin() {
    let app = TestApp::sqlite().await;
    let (agent, _) = app.user(Role::Agent).await;
    let session = app.login(&agent.email).await;

    // Reads work with the cookie alone.
    let list = app
        .send(
            Req::new(Method::GET, "/api/v1/customers")
                .header("host", HOST)
                .header("cookie", &session.cookie),
        )
        .await;
    assert_eq!(list.ok(200)["items"], json!([]));

    // A change without the token, or with another one, is refused and writes nothing.
    app.send(create_customer(&session, "无令牌"))
        .await
        .assert_error(403, "csrf_failed");
    app.send(create_customer(&session, "错令牌").header("x-csrf-token", "guess"))
        .await
        .assert_error(403, "csrf_failed");
    app.send(create_customer(&session, "空令牌").header("x-csrf-token", ""))
        .await
        .assert_error(403, "csrf_failed");
    assert_eq!(app.customer_count().await, 0);

    // With the token from login it works.
    let created = app
        .send(create_customer(&session, "王小明").header("x-csrf-token", &session.csrf))
        .await;
    assert_eq!(created.ok(201)["name"], "王小明");
    assert_eq!(app.customer_count().await, 1);

    // A foreign Origin is refused even with the right token.
    for origin in [
        "https://evil.example",
        "null",
        "http://kefu.example.evil.example",
    ] {
        app.send(
            create_customer(&session, "跨站")
                .header("x-csrf-token", &session.csrf)
                .header("origin", origin),
        )
        .await
        .assert_error(403, "csrf_failed");
    }
    assert_eq!(app.customer_count().await, 1);

    // kefu's own pages send their own origin.
    let same = app
        .send(
            create_customer(&session, "同源")
                .header("x-csrf-token", &session.csrf)
                .header("origin", "http://kefu.example"),
        )
        .await;
    same.ok(201);
    assert_eq!(app.customer_count().await, 2);

    // PATCH and DELETE are changes too.
    let id = created.id();
    app.send(
        Req::new(Method::PATCH, &format!("/api/v1/customers/{id}"))
            .header("cookie", &session.cookie)
            .json(&json!({"notes": "x"})),
    )
    .await
    .assert_error(403, "csrf_failed");
    app.send(
        Req::new(Method::DELETE, &format!("/api/v1/customers/{id}"))
            .header("cookie", &session.cookie),
    )
    .await
    .assert_error(403, "csrf_failed");

    // Another user's CSRF token does not fit this session.
    let (other, _) = app.user(Role::Agent).await;
    let other_session = app.login(&other.email).await;
    app.send(create_customer(&session, "借令牌").header("x-csrf-token", &other_session.csrf))
        .await
        .assert_error(403, "csrf_failed");

    // A bearer token needs no CSRF token: it is not sent by browsers on their own.
    let (_, token) = app.user(Role::Agent).await;
    app.post("/api/v1/customers", &token, json!({"name": "令牌"}))
        .await
        .ok(201);
    assert_eq!(app.customer_count().await, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_the_session() {
    let app = TestApp::sqlite().await;
    let (agent, _) = app.user(Role::Agent).await;
    let session = app.login(&agent.email).await;
    let second = app.login(&agent.email).await;

    // Logging out is a change: it needs the CSRF token.
    app.send(Req::new(Method::POST, "/api/v1/auth/logout").header("cookie", &session.cookie))
        .await
        .assert_error(403, "csrf_failed");
    let me = app
        .send(Req::new(Method::GET, "/api/v1/me").header("cookie", &session.cookie))
        .await;
    me.ok(200);

    let reply = app
        .send(
            Req::new(Method::POST, "/api/v1/auth/logout")
                .header("cookie", &session.cookie)
                .header("x-csrf-token", &session.csrf),
        )
        .await;
    assert_eq!(reply.status.as_u16(), 204, "{reply:#?}");
    let cleared = reply.header("set-cookie");
    assert!(cleared.starts_with("kefu_session=;"), "{cleared}");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");

    for (method, path) in [
        (Method::GET, "/api/v1/me"),
        (Method::GET, "/api/v1/customers"),
    ] {
        app.send(Req::new(method, path).header("cookie", &session.cookie))
            .await
            .assert_error(401, "unauthenticated");
    }
    app.send(create_customer(&session, "登出后").header("x-csrf-token", &session.csrf))
        .await
        .assert_error(401, "unauthenticated");
    assert_eq!(app.customer_count().await, 0);

    // Only that session ended.
    let me = app
        .send(Req::new(Method::GET, "/api/v1/me").header("cookie", &second.cookie))
        .await;
    me.ok(200);
}

/// Permissions go out under the names they come in by: the scope names
/// (`customers:read`) that POST /api/v1/tokens takes and error messages cite.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn permissions_are_sent_by_their_scope_names() {
    let app = TestApp::sqlite().await;
    let (agent, token) = app.user(Role::Agent).await;
    let session = app.login(&agent.email).await;
    let expected: Vec<Value> = Role::Agent
        .permissions()
        .into_iter()
        .map(|p| json!(p.as_str()))
        .collect();
    // Regression: Permission derives Serialize with rename_all = "snake_case", so /me, login
    // and token answers say `customers_read` while scopes are written `customers:read`
    // everywhere else (token requests, 403 messages, the docs).
    assert_eq!(session.me["permissions"], json!(expected));
    let tokens = app.get("/api/v1/tokens", &token).await;
    let scopes = tokens.ok(200)[0]["scopes"].clone();
    assert_eq!(scopes, json!(expected));
    // What a token lists can be sent back to make another one.
    let scope_text = scopes
        .as_array()
        .expect("scopes")
        .iter()
        .filter_map(Value::as_str)
        .collect::<Vec<_>>()
        .join(" ");
    app.post(
        "/api/v1/tokens",
        &token,
        json!({"name": "copy", "scopes": scope_text}),
    )
    .await
    .ok(201);
}
