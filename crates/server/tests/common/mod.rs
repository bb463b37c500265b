//! Helpers shared by the HTTP suites: an app on a fresh store, requests through the
//! router without a socket, and users of each role with their API tokens.
#![allow(dead_code)]

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode};
use http_body_util::BodyExt as _;
use kefu_domain::access::Role;
use kefu_server::{AppState, ServerConfig};
use kefu_store::users::{NewToken, NewUser, User};
use kefu_store::{Actor, Store};
use serde_json::Value;
use std::sync::atomic::{AtomicU64, Ordering};
use tower::ServiceExt as _;

/// The password of every user made here.
pub const PASSWORD: &str = "correct horse battery";

/// The application on one store.
pub struct TestApp {
    pub store: Store,
    router: Router,
    _db: Option<kefu_testkit::TestDb>,
}

/// An answer: status, headers, the raw body and the body parsed as JSON (`Null` when it
/// is not JSON).
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub bytes: Bytes,
    pub json: Value,
}

impl Reply {
    /// The header as text, or "" when absent.
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    /// `error.code` of an error answer.
    pub fn code(&self) -> &str {
        self.json["error"]["code"].as_str().unwrap_or("")
    }

    /// `error.field` of an error answer.
    pub fn field(&self) -> Option<&str> {
        self.json["error"]["field"].as_str()
    }

    /// `error.message` of an error answer.
    pub fn message(&self) -> &str {
        self.json["error"]["message"].as_str().unwrap_or("")
    }

    /// Checks an error answer: status, catalogue code, a message, JSON content type.
    #[track_caller]
    pub fn assert_error(&self, status: u16, code: &str) -> &Self {
        assert_eq!(
            (self.status.as_u16(), self.code()),
            (status, code),
            "unexpected answer: {self:#?}"
        );
        assert!(
            !self.message().is_empty(),
            "an error needs a message: {self:#?}"
        );
        assert!(
            self.header("content-type").starts_with("application/json"),
            "errors are JSON: {self:#?}"
        );
        self
    }

    /// Checks an error answer and its field.
    #[track_caller]
    pub fn assert_field_error(&self, status: u16, code: &str, field: &str) -> &Self {
        self.assert_error(status, code);
        assert_eq!(self.field(), Some(field), "unexpected field: {self:#?}");
        self
    }

    /// Checks the status of a success answer and returns its JSON.
    #[track_caller]
    pub fn ok(&self, status: u16) -> &Value {
        assert_eq!(self.status.as_u16(), status, "unexpected answer: {self:#?}");
        &self.json
    }

    /// The `id` of the JSON answer.
    pub fn id(&self) -> String {
        self.json["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no id in {self:#?}"))
            .to_string()
    }
}

/// A request under construction.
pub struct Req {
    builder: axum::http::request::Builder,
    body: Body,
}

impl Req {
    pub fn new(method: Method, path: &str) -> Req {
        Req {
            builder: Request::builder().method(method).uri(path),
            body: Body::empty(),
        }
    }

    pub fn header(mut self, name: &str, value: &str) -> Req {
        self.builder = self.builder.header(name, value);
        self
    }

    pub fn bearer(self, token: &str) -> Req {
        self.header("authorization", &format!("Bearer {token}"))
    }

    pub fn json(self, value: &Value) -> Req {
        self.raw_json(value.to_string())
    }

    /// A body sent as `application/json`, whatever it holds.
    pub fn raw_json(self, body: impl Into<Bytes>) -> Req {
        self.header("content-type", "application/json").body(body)
    }

    pub fn body(mut self, body: impl Into<Bytes>) -> Req {
        self.body = Body::from(body.into());
        self
    }
}

impl TestApp {
    /// The app on a fresh SQLite store.
    pub async fn sqlite() -> TestApp {
        let db = kefu_testkit::sqlite().await;
        let mut app = TestApp::new(db.store.clone());
        app._db = Some(db);
        app
    }

    pub fn new(store: Store) -> TestApp {
        TestApp::with_config(store, ServerConfig::default())
    }

    pub fn with_config(store: Store, config: ServerConfig) -> TestApp {
        TestApp {
            router: kefu_server::router(AppState::new(store.clone(), config)),
            store,
            _db: None,
        }
    }

    /// Sends a request through the router.
    pub async fn send(&self, req: Req) -> Reply {
        let request = req.builder.body(req.body).expect("a valid request");
        let response = self
            .router
            .clone()
            .oneshot(request)
            .await
            .expect("the router is infallible");
        let status = response.status();
        let headers = response.headers().clone();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("read the body")
            .to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Reply {
            status,
            headers,
            bytes,
            json,
        }
    }

    /// `method path` with an optional bearer token and an optional JSON body.
    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        json: Option<Value>,
    ) -> Reply {
        let mut req = Req::new(method, path);
        if let Some(token) = token {
            req = req.bearer(token);
        }
        if let Some(json) = json {
            req = req.json(&json);
        }
        self.send(req).await
    }

    pub async fn get(&self, path: &str, token: &str) -> Reply {
        self.request(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, json: Value) -> Reply {
        self.request(Method::POST, path, Some(token), Some(json))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, json: Value) -> Reply {
        self.request(Method::PATCH, path, Some(token), Some(json))
            .await
    }

    /// A user of `role` with [`PASSWORD`] and a token with the role's permissions.
    pub async fn user(&self, role: Role) -> (User, String) {
        let user = create_user(&self.store, role).await;
        let token = token(&self.store, &user, None).await;
        (user, token)
    }

    /// An admin's token with every permission.
    pub async fn admin(&self) -> String {
        self.user(Role::Admin).await.1
    }

    /// Logs in with email and password; returns the cookie pair and the CSRF token.
    pub async fn login(&self, email: &str) -> Session {
        let reply = self
            .send(
                Req::new(Method::POST, "/api/v1/auth/login").json(&serde_json::json!({
                    "email": email,
                    "password": PASSWORD,
                })),
            )
            .await;
        assert_eq!(reply.status, StatusCode::OK, "login failed: {reply:#?}");
        let set_cookie = reply.header("set-cookie").to_string();
        let cookie = set_cookie
            .split(';')
            .next()
            .expect("a cookie pair")
            .to_string();
        let csrf = reply.json["csrf_token"]
            .as_str()
            .expect("a CSRF token")
            .to_string();
        Session {
            cookie,
            csrf,
            set_cookie,
            me: reply.json,
        }
    }

    pub async fn customer_count(&self) -> i64 {
        self.store.customer_count().await.expect("count customers")
    }

    pub async fn case_count(&self) -> i64 {
        self.store.case_count().await.expect("count cases")
    }

    pub async fn timeline_count(&self) -> i64 {
        self.store.timeline_count().await.expect("count timeline")
    }

    /// Creates a customer through the API and returns its id.
    pub async fn customer(&self, token: &str, body: Value) -> String {
        self.post("/api/v1/customers", token, body).await.id()
    }

    /// Creates a case through the API and returns its JSON.
    pub async fn case(&self, token: &str, customer_id: &str, subject: &str) -> Value {
        let reply = self
            .post(
                "/api/v1/cases",
                token,
                serde_json::json!({
                    "customer_id": customer_id,
                    "kind": "consultation",
                    "subject": subject,
                    "body": format!("{subject} — details"),
                }),
            )
            .await;
        reply.ok(201).clone()
    }
}

/// A logged-in browser session.
#[derive(Debug, Clone)]
pub struct Session {
    /// `kefu_session=…`, for the Cookie header.
    pub cookie: String,
    pub csrf: String,
    /// The whole Set-Cookie header of the login answer.
    pub set_cookie: String,
    /// The login answer.
    pub me: Value,
}

fn unique() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::SeqCst)
}

/// A user of `role` with [`PASSWORD`].
pub async fn create_user(store: &Store, role: Role) -> User {
    store
        .create_user(
            &Actor::cli(),
            NewUser {
                email: format!("{role}-{}@example.com", unique()),
                name: None,
                role,
                password: Some(PASSWORD.into()),
                team_id: None,
                locale: None,
            },
        )
        .await
        .expect("create user")
}

/// An API token of `user`; `scopes` as the API takes them (`None`: the role's).
pub async fn token(store: &Store, user: &User, scopes: Option<&str>) -> String {
    store
        .create_token(
            &Actor::cli(),
            &user.id,
            NewToken {
                name: format!("token {}", unique()),
                scopes: scopes.map(str::to_string),
                expires_at: None,
            },
        )
        .await
        .expect("create token")
        .secret
}

/// A syntactically valid id that names nothing.
pub fn random_id() -> String {
    kefu_store::new_public_id()
}

/// `path` with every `{param}` replaced by a random id.
pub fn concrete(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                random_id()
            } else {
                segment.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes a query value.
pub fn enc(value: &str) -> String {
    form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// The value of a header for requests.
pub fn header_value(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).expect("a valid header value")
}

/// Every page of a list, following `next_cursor`; `path` has a query already or not.
pub async fn walk(app: &TestApp, token: &str, path: &str, limit: u32) -> Vec<Value> {
    let separator = if path.contains('?') { '&' } else { '?' };
    let mut items = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..1000 {
        let url = match &cursor {
            Some(c) => format!("{path}{separator}limit={limit}&cursor={}", enc(c)),
            None => format!("{path}{separator}limit={limit}"),
        };
        let reply = app.get(&url, token).await;
        let page = reply.ok(200);
        let page_items = page["items"].as_array().expect("items");
        assert!(
            page_items.len() <= limit as usize,
            "a page holds at most `limit` items"
        );
        assert!(
            page.as_object()
                .is_some_and(|o| o.contains_key("next_cursor")),
            "a page names its next cursor (null at the end): {page}"
        );
        items.extend(page_items.iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => {
                assert!(
                    !page_items.is_empty(),
                    "a page with a next cursor has items"
                );
                cursor = Some(next.to_string());
            }
            None => return items,
        }
    }
    panic!("{path}: the cursor never ended");
}

/// The `content-type` header a JSON body needs.
pub const JSON: &str = "application/json";
