//! Every route of the route table against every kind of caller: nobody, a role that
//! lacks the permission, a token whose scopes lack it, and the least caller that has it.
//! The denials must come from the guard, before the handler looks at anything.

mod common;

use axum::http::Method;
use common::*;
use kefu_domain::Labelled;
use kefu_domain::access::{Permission, Role};
use kefu_server::{Access, RouteSpec};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};

const LESSER_ROLES: [Role; 3] = [Role::Readonly, Role::Agent, Role::Supervisor];

fn protected_routes() -> Vec<RouteSpec> {
    kefu_server::route_table()
        .into_iter()
        .filter(|r| r.access != Access::Public)
        .collect()
}

/// A request to the route with nothing in the way of the guard: random ids for the path
/// parameters and no body (so a handler that ran would answer 404 or 415, not 401/403).
fn request_for(route: &RouteSpec) -> Req {
    Req::new(route.method.clone(), &concrete(route.path))
}

fn describe(route: &RouteSpec) -> String {
    format!("{} {}", route.method, route.path)
}

#[test]
fn the_route_table_is_sane() {
    let table = kefu_server::route_table();
    let mut seen = BTreeSet::new();
    for route in &table {
        assert!(
            seen.insert((route.method.to_string(), route.path)),
            "{} is declared twice",
            describe(route)
        );
        assert!(
            route.path.starts_with("/api/")
                || route.path == "/track/{token}"
                || route.path == "/survey/{token}",
            "{}",
            describe(route)
        );
    }
    // The only public routes are health, the documents and login.
    let public: BTreeSet<String> = table
        .iter()
        .filter(|r| r.access == Access::Public)
        .map(describe)
        .collect();
    let expected: BTreeSet<String> = [
        "GET /api/v1/health",
        "GET /api/v1/openapi.json",
        "GET /api/docs",
        "GET /api/docs/{file}",
        "POST /api/v1/auth/login",
        "GET /api/v1/track/{token}",
        "GET /track/{token}",
        "GET /api/v1/survey/{token}",
        "POST /api/v1/survey/{token}",
        "GET /survey/{token}",
        "POST /survey/{token}",
    ]
    .into_iter()
    .map(str::to_string)
    .collect();
    assert_eq!(public, expected);
    // Every write needs a write permission (never just a read one).
    for route in &table {
        if let Access::Permission(p) = route.access
            && route.method != Method::GET
        {
            assert!(
                !p.as_str().ends_with(":read"),
                "{} changes data with a read permission",
                describe(route)
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_protected_route_refuses_anonymous_callers() {
    let app = TestApp::sqlite().await;
    let routes = protected_routes();
    assert!(routes.len() > 40, "the table lists the whole API");
    for route in &routes {
        let reply = app.send(request_for(route)).await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "unauthenticated"),
            "{}: {reply:#?}",
            describe(route)
        );
        assert!(!reply.message().is_empty());

        // A token nobody issued, and a malformed Authorization header, are refused too.
        let reply = app
            .send(request_for(route).bearer("kefu_not-a-real-token"))
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "unauthenticated"),
            "{} with an unknown token: {reply:#?}",
            describe(route)
        );
        let reply = app
            .send(request_for(route).header("authorization", "Basic YTpi"))
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "unauthenticated"),
            "{} with Basic auth: {reply:#?}",
            describe(route)
        );
        // A session cookie that names no session.
        let reply = app
            .send(request_for(route).header("cookie", "kefu_session=forged"))
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (401, "unauthenticated"),
            "{} with a forged cookie: {reply:#?}",
            describe(route)
        );
    }
    assert_eq!(app.customer_count().await, 0);
}

/// The scopes of every permission except `p`, limited to what `role` grants.
fn scopes_without(role: Role, p: Permission) -> String {
    role.permissions()
        .into_iter()
        .filter(|q| *q != p)
        .map(|q| q.as_str())
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_permission_route_refuses_callers_without_the_permission() {
    let app = TestApp::sqlite().await;
    let admin = create_user(&app.store, Role::Admin).await;
    let mut role_users = BTreeMap::new();
    let mut role_tokens = BTreeMap::new();
    let mut sessions = BTreeMap::new();
    for role in LESSER_ROLES {
        let user = create_user(&app.store, role).await;
        role_tokens.insert(role.as_str(), token(&app.store, &user, None).await);
        sessions.insert(role.as_str(), app.login(&user.email).await);
        role_users.insert(role.as_str(), user);
    }
    // Per permission: an admin token without it, and (for permissions every role has) a
    // read-only user's token without it.
    let mut admin_without = BTreeMap::new();
    let mut readonly_without = BTreeMap::new();
    for p in Permission::ALL {
        admin_without.insert(
            p.as_str(),
            token(&app.store, &admin, Some(&scopes_without(Role::Admin, *p))).await,
        );
        if Role::Readonly.grants(*p) {
            readonly_without.insert(
                p.as_str(),
                token(
                    &app.store,
                    &role_users["readonly"],
                    Some(&scopes_without(Role::Readonly, *p)),
                )
                .await,
            );
        }
    }

    let mut checked_roles = 0;
    let mut checked_scopes = 0;
    for route in protected_routes() {
        let Access::Permission(p) = route.access else {
            continue;
        };
        let name = describe(&route);
        let lacking: Vec<Role> = LESSER_ROLES.into_iter().filter(|r| !r.grants(p)).collect();

        // A role without the permission: with a token of the role, and with a session.
        for role in &lacking {
            let reply = app
                .send(request_for(&route).bearer(&role_tokens[role.as_str()]))
                .await;
            assert_eq!(
                (reply.status.as_u16(), reply.code()),
                (403, "forbidden"),
                "{name} as {role} (token): {reply:#?}"
            );
            assert!(
                reply.message().contains(p.as_str()),
                "the message names the permission: {reply:#?}"
            );
            let session = &sessions[role.as_str()];
            let reply = app
                .send(
                    request_for(&route)
                        .header("cookie", &session.cookie)
                        .header("x-csrf-token", &session.csrf),
                )
                .await;
            assert_eq!(
                (reply.status.as_u16(), reply.code()),
                (403, "forbidden"),
                "{name} as {role} (session): {reply:#?}"
            );
            checked_roles += 1;
        }

        // Every role has it: a read-only user's token whose scopes leave it out.
        if lacking.is_empty() {
            let reply = app
                .send(request_for(&route).bearer(&readonly_without[p.as_str()]))
                .await;
            assert_eq!(
                (reply.status.as_u16(), reply.code()),
                (403, "forbidden"),
                "{name} with a read-only token without {p}: {reply:#?}"
            );
            checked_scopes += 1;
        }

        // An admin's token whose scopes leave it out.
        let reply = app
            .send(request_for(&route).bearer(&admin_without[p.as_str()]))
            .await;
        assert_eq!(
            (reply.status.as_u16(), reply.code()),
            (403, "forbidden"),
            "{name} with an admin token without {p}: {reply:#?}"
        );
        assert!(
            reply.message().contains("scopes"),
            "the message says the token's scopes are the reason: {reply:#?}"
        );
    }
    // Reads everyone may do were checked by scope; everything else by role too.
    assert!(checked_roles > 30, "{checked_roles}");
    assert!(checked_scopes > 10, "{checked_scopes}");
    assert_eq!(app.customer_count().await, 0);
    assert_eq!(app.case_count().await, 0);
}

/// The least caller with the permission — the lowest role that grants it, through a token
/// scoped to exactly that permission — gets past the guard on every route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_scope_is_enough_for_its_routes() {
    let app = TestApp::sqlite().await;
    let mut tokens = BTreeMap::new();
    for p in Permission::ALL {
        let role = [Role::Readonly, Role::Agent, Role::Supervisor, Role::Admin]
            .into_iter()
            .find(|r| r.grants(*p))
            .expect("admins have every permission");
        let user = create_user(&app.store, role).await;
        tokens.insert(p.as_str(), token(&app.store, &user, Some(p.as_str())).await);
    }
    let any_token = tokens["customers:read"].clone();
    for route in protected_routes() {
        let token = match route.access {
            Access::Permission(p) => tokens[p.as_str()].clone(),
            _ => any_token.clone(),
        };
        let reply = app.send(request_for(&route).bearer(&token)).await;
        assert!(
            reply.status.as_u16() != 401 && reply.status.as_u16() != 403,
            "{} with only {:?}: {reply:#?}",
            describe(&route),
            route.access
        );
        assert!(
            reply.status.as_u16() < 500,
            "{}: {reply:#?}",
            describe(&route)
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_expired_and_deactivated_credentials_are_refused() {
    let app = TestApp::sqlite().await;
    let (agent, secret) = app.user(Role::Agent).await;
    assert_eq!(app.get("/api/v1/me", &secret).await.status.as_u16(), 200);

    // Revoked.
    let tokens = app.store.tokens(&agent.id).await.expect("tokens");
    app.store
        .revoke_token(&kefu_store::Actor::cli(), &tokens[0].id, None)
        .await
        .expect("revoke");
    app.get("/api/v1/me", &secret)
        .await
        .assert_error(401, "unauthenticated");

    // Deactivated: the user's other tokens and sessions stop working.
    let other = token(&app.store, &agent, None).await;
    let session = app.login(&agent.email).await;
    app.store
        .update_user(
            &kefu_store::Actor::cli(),
            &agent.id,
            kefu_store::users::UserPatch {
                active: Some(false),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("deactivate");
    app.get("/api/v1/customers", &other)
        .await
        .assert_error(401, "unauthenticated");
    let reply = app
        .send(Req::new(Method::GET, "/api/v1/me").header("cookie", &session.cookie))
        .await;
    reply.assert_error(401, "unauthenticated");
}

/// A token limited to `tokens:manage` must not be able to mint itself a wider token:
/// scopes only ever narrow what a caller may do.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_narrow_token_cannot_mint_a_wider_one() {
    let app = TestApp::sqlite().await;
    let admin = create_user(&app.store, Role::Admin).await;
    let narrow = token(&app.store, &admin, Some("tokens:manage")).await;
    app.get("/api/v1/customers", &narrow)
        .await
        .assert_error(403, "forbidden");

    for body in [
        json!({"name": "escalate"}),
        json!({"name": "escalate", "scopes": "*"}),
        json!({"name": "escalate", "scopes": "customers:read customers:delete"}),
    ] {
        let reply = app.post("/api/v1/tokens", &narrow, body.clone()).await;
        // Regression: POST /api/v1/tokens gives the new token the role's permissions (or the
        // scopes asked for, up to the role) regardless of the calling token's scopes, so
        // a `tokens:manage` token of an admin mints a `*` token. The new token's scopes
        // must stay within the caller's.
        if reply.status.as_u16() == 201 {
            let secret = reply.json["secret"].as_str().expect("secret").to_string();
            let scopes = reply.json["scopes"].as_array().expect("scopes");
            assert!(
                scopes.len() <= 1,
                "{body}: a tokens:manage token minted a token with {scopes:?}"
            );
            app.get("/api/v1/customers", &secret)
                .await
                .assert_error(403, "forbidden");
        } else {
            assert!(
                reply.status.is_client_error(),
                "{body}: refused with a 4xx: {reply:#?}"
            );
        }
    }
}

/// The route table and the OpenAPI document describe the same API.
#[test]
fn the_route_table_and_the_openapi_document_agree() {
    let document: Value =
        serde_json::from_str(&kefu_server::openapi_json()).expect("the document is JSON");
    let paths = document["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            if [
                "get", "post", "put", "patch", "delete", "head", "options", "trace",
            ]
            .contains(&method.as_str())
            {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    let routed: BTreeSet<(String, String)> = kefu_server::route_table()
        .iter()
        .filter(|r| r.path.starts_with("/api/v1/"))
        .map(|r| (r.method.to_string(), r.path.to_string()))
        .collect();
    let undocumented: Vec<_> = routed.difference(&documented).collect();
    let unrouted: Vec<_> = documented.difference(&routed).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from OpenAPI: {undocumented:?}"
    );
    assert!(
        unrouted.is_empty(),
        "OpenAPI paths without a route: {unrouted:?}"
    );
    assert!(
        !paths.keys().any(|p| p.starts_with("/api/docs")),
        "the docs pages are not part of the API document"
    );
    // Every error code of the catalogue is in the document.
    let codes = document["components"]["schemas"]["ErrorCode"]["enum"]
        .as_array()
        .expect("ErrorCode enum");
    for code in kefu_server::error::ErrorCode::ALL {
        assert!(codes.contains(&json!(code.as_str())), "{}", code.as_str());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_routes_need_no_credentials() {
    let app = TestApp::sqlite().await;
    let health = app.request(Method::GET, "/api/v1/health", None, None).await;
    assert_eq!(health.ok(200)["status"], "ok");
    assert_eq!(health.json["database"], "sqlite");
    let openapi = app
        .request(Method::GET, "/api/v1/openapi.json", None, None)
        .await;
    assert_eq!(openapi.ok(200)["openapi"], "3.1.0");
    assert!(openapi.header("content-type").starts_with(JSON));
    let docs = app.request(Method::GET, "/api/docs", None, None).await;
    assert_eq!(docs.status.as_u16(), 200);
    assert!(docs.header("content-type").starts_with("text/html"));
    let init = app
        .request(Method::GET, "/api/docs/init.js", None, None)
        .await;
    assert_eq!(init.status.as_u16(), 200);
    app.request(Method::GET, "/api/docs/nothing.js", None, None)
        .await
        .assert_error(404, "not_found");
    // A stale cookie does not break a public route.
    let reply = app
        .send(Req::new(Method::GET, "/api/v1/health").header("cookie", "kefu_session=stale"))
        .await;
    assert_eq!(reply.status.as_u16(), 200);
}
