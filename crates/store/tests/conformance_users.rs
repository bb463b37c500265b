//! Conformance suite, part three: users, login sessions, API tokens and teams, on SQLite
//! and PostgreSQL alike.

mod common;

use common::*;
use kefu_domain::access::{Permission, Role};
use kefu_domain::{Labelled, Timestamp};
use kefu_store::Store;
use kefu_store::users::{NewTeam, NewToken, NewUser, SESSION_TTL_MS, TeamPatch, User, UserPatch};

kefu_testkit::conformance!(
    create_user_rules,
    update_user_rules,
    login_and_sessions,
    deactivation_and_password_change_end_sessions,
    api_tokens_never_exceed_the_role,
    api_token_use_revocation_and_expiry,
    teams_have_unique_names,
);

fn new_user(email: &str, role: Role) -> NewUser {
    NewUser {
        email: email.into(),
        name: None,
        role,
        password: Some(PASSWORD.into()),
        team_id: None,
        locale: None,
    }
}

fn token(name: &str, scopes: Option<&str>, expires_at: Option<i64>) -> NewToken {
    NewToken {
        name: name.into(),
        scopes: scopes.map(str::to_string),
        expires_at: expires_at.map(Timestamp),
    }
}

fn user_json(user: &User) -> serde_json::Value {
    serde_json::to_value(user).expect("serialise user")
}

async fn emails(store: &Store, limit: u32) -> Vec<String> {
    walk(limit, async |p| store.users(&p).await)
        .await
        .into_iter()
        .map(|u| u.email)
        .collect()
}

async fn login_fails(store: &Store, email: &str, password: &str) {
    expect_conflict(store.login(email, password).await, "invalid_credentials");
}

fn deactivate() -> UserPatch {
    UserPatch {
        active: Some(false),
        ..Default::default()
    }
}

async fn create_user_rules(store: Store) {
    let (store, _clock) = fixed(store);
    assert!(!store.has_users().await.expect("has users"));
    let admin = store
        .create_user(&cli(), new_user(" Admin@Example.COM ", Role::Admin))
        .await
        .expect("create admin");
    assert_eq!(admin.email, "admin@example.com");
    assert_eq!(admin.name, "admin");
    assert_eq!(admin.role, Role::Admin);
    assert_eq!(admin.team_id, None);
    assert!(admin.active);
    assert_eq!(admin.locale, "zh-CN");
    assert_eq!(admin.created_at, Timestamp(T0));
    assert_eq!(admin.updated_at, Timestamp(T0));
    assert_eq!(admin.version, 1);
    assert!(store.has_users().await.expect("has users"));
    assert_eq!(
        user_json(&store.user(&admin.id).await.expect("user")),
        user_json(&admin)
    );
    for spelling in [
        "ADMIN@example.com",
        " admin@example.com",
        "ａｄｍｉｎ＠ｅｘａｍｐｌｅ．ｃｏｍ",
    ] {
        assert_eq!(
            store.user_by_email(spelling).await.expect("by email").id,
            admin.id,
            "{spelling}"
        );
    }

    for duplicate in ["admin@EXAMPLE.com", "ａｄｍｉｎ＠example.com"] {
        expect_conflict(
            store
                .create_user(&cli(), new_user(duplicate, Role::Agent))
                .await,
            "duplicate",
        );
    }
    let long = "p".repeat(1025);
    for password in ["", "short", "1234567", long.as_str()] {
        expect_invalid(
            store
                .create_user(
                    &cli(),
                    NewUser {
                        password: Some(password.into()),
                        ..new_user("pw@example.com", Role::Agent)
                    },
                )
                .await,
            "password",
        );
    }
    for email in ["not-an-email", "", "a@b"] {
        expect_invalid(
            store
                .create_user(&cli(), new_user(email, Role::Agent))
                .await,
            "email",
        );
    }
    expect_invalid(
        store
            .create_user(
                &cli(),
                NewUser {
                    locale: Some("fr".into()),
                    ..new_user("fr@example.com", Role::Agent)
                },
            )
            .await,
        "locale",
    );
    expect_invalid(
        store
            .create_user(
                &cli(),
                NewUser {
                    team_id: Some("0190a0b0-0000-7000-8000-000000000000".into()),
                    ..new_user("team@example.com", Role::Agent)
                },
            )
            .await,
        "team_id",
    );
    expect_invalid(
        store
            .create_user(
                &cli(),
                NewUser {
                    name: Some(" ".into()),
                    ..new_user("name@example.com", Role::Agent)
                },
            )
            .await,
        "name",
    );
    assert_eq!(emails(&store, 10).await, vec!["admin@example.com"]);

    let support = store
        .create_team(
            &cli(),
            NewTeam {
                name: "支持".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    let agent = store
        .create_user(
            &cli(),
            NewUser {
                name: Some(" 李娜 ".into()),
                password: Some("12345678".into()),
                team_id: Some(support.id.clone()),
                locale: Some("en".into()),
                ..new_user("lina@example.com", Role::Agent)
            },
        )
        .await
        .expect("agent");
    assert_eq!(agent.name, "李娜");
    assert_eq!(agent.team_id.as_deref(), Some(support.id.as_str()));
    assert_eq!(agent.locale, "en");
    let no_password = store
        .create_user(
            &cli(),
            NewUser {
                password: None,
                ..new_user("bot@example.com", Role::Readonly)
            },
        )
        .await
        .expect("no password");
    assert_eq!(no_password.role, Role::Readonly);
    for limit in [1, 2, 200] {
        assert_eq!(
            emails(&store, limit).await,
            vec!["admin@example.com", "lina@example.com", "bot@example.com"]
        );
    }
    expect_not_found(store.user_by_email("nobody@example.com").await, "user");
    expect_not_found(store.user("nope").await, "user");

    let audit = audit_of(&store, "user", &agent.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    let after = audit[0].after.as_ref().expect("after").to_string();
    assert!(after.contains("lina@example.com"));
    assert!(
        !after.contains("argon2") && !after.contains("12345678"),
        "no password in the audit log: {after}"
    );
}

async fn update_user_rules(store: Store) {
    let (store, clock) = fixed(store);
    let support = store
        .create_team(
            &cli(),
            NewTeam {
                name: "支持".into(),
                description: None,
            },
        )
        .await
        .expect("team");
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    clock.advance(1000);
    let updated = store
        .update_user(
            &cli(),
            &agent.id,
            UserPatch {
                name: Some("王主管".into()),
                role: Some(Role::Supervisor),
                team_id: Some(Some(support.id.clone())),
                locale: Some("en".into()),
                ..Default::default()
            },
            Some(1),
        )
        .await
        .expect("update");
    assert_eq!(updated.name, "王主管");
    assert_eq!(updated.role, Role::Supervisor);
    assert_eq!(updated.team_id.as_deref(), Some(support.id.as_str()));
    assert_eq!(updated.locale, "en");
    assert!(updated.active);
    assert_eq!(updated.version, 2);
    assert_eq!(updated.updated_at, Timestamp(T0 + 1000));
    assert_eq!(updated.created_at, Timestamp(T0));

    expect_version_mismatch(
        store
            .update_user(
                &cli(),
                &agent.id,
                UserPatch {
                    name: Some("过时".into()),
                    ..Default::default()
                },
                Some(1),
            )
            .await,
        "user",
        1,
        2,
    );
    for (field, patch) in [
        (
            "password",
            UserPatch {
                password: Some("short".into()),
                ..Default::default()
            },
        ),
        (
            "locale",
            UserPatch {
                locale: Some("de".into()),
                ..Default::default()
            },
        ),
        (
            "name",
            UserPatch {
                name: Some("".into()),
                ..Default::default()
            },
        ),
        (
            "team_id",
            UserPatch {
                team_id: Some(Some("nope".into())),
                ..Default::default()
            },
        ),
    ] {
        expect_invalid(
            store.update_user(&cli(), &agent.id, patch, None).await,
            field,
        );
    }
    assert_eq!(
        user_json(&store.user(&agent.id).await.expect("user")),
        user_json(&updated)
    );
    // An absent team stays; null clears it.
    let kept = store
        .update_user(
            &cli(),
            &agent.id,
            UserPatch {
                role: Some(Role::Agent),
                ..Default::default()
            },
            Some(2),
        )
        .await
        .expect("keep team");
    assert_eq!(kept.team_id.as_deref(), Some(support.id.as_str()));
    let cleared = store
        .update_user(
            &cli(),
            &agent.id,
            UserPatch {
                team_id: Some(None),
                ..Default::default()
            },
            Some(3),
        )
        .await
        .expect("clear team");
    assert_eq!(cleared.team_id, None);
    assert_eq!(cleared.name, "王主管");
    expect_not_found(
        store
            .update_user(
                &cli(),
                "0190a0b0-0000-7000-8000-000000000000",
                UserPatch::default(),
                None,
            )
            .await,
        "user",
    );
    let audit = audit_of(&store, "user", &agent.id).await;
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["update", "update", "update", "create"]
    );
    assert_eq!(audit[2].before.as_ref().expect("before")["role"], "agent");
    assert_eq!(
        audit[2].after.as_ref().expect("after")["role"],
        "supervisor"
    );
}

async fn login_and_sessions(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let (token, principal) = store
        .login(" AGENT@Example.com ", PASSWORD)
        .await
        .expect("login");
    assert!(token.len() >= 40, "a long random token: {token}");
    assert_eq!(principal.user.id, agent.id);
    assert!(principal.scopes.is_none());
    let csrf = principal.csrf_token.clone().expect("a CSRF token");
    assert!(!csrf.is_empty());
    assert!(principal.can(Permission::CasesWrite));
    assert!(!principal.can(Permission::AuditRead));
    assert_eq!(principal.actor().user_id, Some(agent.key));
    assert_eq!(principal.actor().label, "agent@example.com");

    let resolved = store
        .principal_for_session(&token)
        .await
        .expect("resolve")
        .expect("a live session");
    assert_eq!(resolved.user.id, agent.id);
    assert_eq!(resolved.csrf_token.as_deref(), Some(csrf.as_str()));
    assert!(resolved.scopes.is_none());

    login_fails(&store, "agent@example.com", "wrong password").await;
    login_fails(&store, "agent@example.com", "").await;
    login_fails(&store, "nobody@example.com", PASSWORD).await;
    login_fails(&store, "not an email", PASSWORD).await;
    store
        .create_user(
            &cli(),
            NewUser {
                password: None,
                ..new_user("bot@example.com", Role::Agent)
            },
        )
        .await
        .expect("bot");
    login_fails(&store, "bot@example.com", "").await;
    login_fails(&store, "bot@example.com", PASSWORD).await;

    let (second, _) = store
        .login("agent@example.com", PASSWORD)
        .await
        .expect("login");
    assert_ne!(second, token);
    store.logout(&token).await.expect("logout");
    assert!(
        store
            .principal_for_session(&token)
            .await
            .expect("resolve")
            .is_none()
    );
    assert!(
        store
            .principal_for_session(&second)
            .await
            .expect("resolve")
            .is_some()
    );
    store
        .logout(&token)
        .await
        .expect("logout twice is harmless");
    let actions: Vec<String> = audit_of(&store, "user", &agent.id)
        .await
        .into_iter()
        .map(|e| e.action)
        .filter(|a| a == "login" || a == "logout")
        .collect();
    assert_eq!(
        actions,
        ["logout", "login", "login"],
        "newest first; the second logout changed nothing and left no record"
    );
    assert!(
        store
            .principal_for_session("garbage")
            .await
            .expect("resolve")
            .is_none()
    );

    // Sessions last two weeks.
    clock.advance(SESSION_TTL_MS - 1);
    assert!(
        store
            .principal_for_session(&second)
            .await
            .expect("resolve")
            .is_some()
    );
    clock.advance(2);
    assert!(
        store
            .principal_for_session(&second)
            .await
            .expect("resolve")
            .is_none()
    );

    let logins = audit(
        &store,
        kefu_store::audit::AuditFilter {
            action: Some("login".into()),
            ..Default::default()
        },
    )
    .await;
    assert_eq!(logins.len(), 2);
    assert!(logins.iter().all(|e| e.object_type == "user"
        && e.object_id == agent.id
        && e.actor_id.as_deref() == Some(agent.id.as_str())
        && e.actor == "agent@example.com"));
    assert_eq!(logins[1].at, Timestamp(T0));
}

async fn deactivation_and_password_change_end_sessions(store: Store) {
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let other = user(&store, "other@example.com", Role::Agent).await;
    let (one, _) = store.login("agent@example.com", PASSWORD).await.expect("1");
    let (two, _) = store.login("agent@example.com", PASSWORD).await.expect("2");
    let (others, _) = store.login("other@example.com", PASSWORD).await.expect("3");
    let alive = |token: String| {
        let store = store.clone();
        async move {
            store
                .principal_for_session(&token)
                .await
                .expect("resolve")
                .is_some()
        }
    };

    // A refused update ends nothing.
    expect_invalid(
        store
            .update_user(
                &cli(),
                &agent.id,
                UserPatch {
                    password: Some("short".into()),
                    ..Default::default()
                },
                None,
            )
            .await,
        "password",
    );
    assert!(alive(one.clone()).await);

    let deactivated = store
        .update_user(&cli(), &agent.id, deactivate(), None)
        .await
        .expect("deactivate");
    assert!(!deactivated.active);
    assert!(!alive(one.clone()).await);
    assert!(!alive(two.clone()).await);
    assert!(
        alive(others.clone()).await,
        "other users keep their sessions"
    );
    login_fails(&store, "agent@example.com", PASSWORD).await;

    store
        .update_user(
            &cli(),
            &agent.id,
            UserPatch {
                active: Some(true),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("reactivate");
    assert!(!alive(one.clone()).await, "ended sessions stay ended");
    let (three, _) = store
        .login("agent@example.com", PASSWORD)
        .await
        .expect("back");
    assert!(alive(three.clone()).await);

    // A new password ends every session too.
    store
        .update_user(
            &cli(),
            &agent.id,
            UserPatch {
                password: Some("a new password!".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("new password");
    assert!(!alive(three).await);
    assert!(alive(others.clone()).await);
    login_fails(&store, "agent@example.com", PASSWORD).await;
    store
        .login("agent@example.com", "a new password!")
        .await
        .expect("the new password works");

    // Other changes leave sessions alone.
    store
        .update_user(
            &cli(),
            &other.id,
            UserPatch {
                name: Some("改名".into()),
                ..Default::default()
            },
            None,
        )
        .await
        .expect("rename");
    assert!(alive(others).await);
}

async fn api_tokens_never_exceed_the_role(store: Store) {
    let (store, _clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let admin = user(&store, "admin@example.com", Role::Admin).await;
    let readonly = user(&store, "ro@example.com", Role::Readonly).await;
    let actor = actor_of(&agent);

    let created = store
        .create_token(&actor, &agent.id, token(" ci ", None, None))
        .await
        .expect("default scopes");
    use Permission::*;
    assert_eq!(
        created.token.scopes,
        vec![
            CustomersRead,
            CustomersWrite,
            CasesRead,
            CasesWrite,
            TimelineRead,
            TimelineWrite,
            TeamsRead,
            TokensManage,
            NotificationsOwn,
            KbRead,
            BotUse
        ]
    );
    assert_eq!(created.token.name, "ci");
    assert_eq!(created.token.user_id, agent.id);
    assert_eq!(created.token.created_at, Timestamp(T0));
    assert_eq!(created.token.last_used_at, None);
    assert_eq!(created.token.expires_at, None);
    assert_eq!(created.token.revoked_at, None);
    assert!(created.secret.starts_with("kefu_"));

    let narrow = store
        .create_token(
            &actor,
            &agent.id,
            token(
                "narrow",
                Some("cases:read, customers:read cases:read"),
                None,
            ),
        )
        .await
        .expect("narrow");
    assert_eq!(narrow.token.scopes, vec![CasesRead, CustomersRead]);

    let refused: Vec<(&str, &str)> = vec![
        ("audit:read", "scopes"),
        ("cases:read audit:read", "scopes"),
        ("*", "scopes"),
        ("users:manage", "scopes"),
        ("", "scopes"),
        (" , ", "scopes"),
        ("cases:destroy", "scopes"),
    ];
    for (scopes, field) in refused {
        expect_invalid(
            store
                .create_token(&actor, &agent.id, token("t", Some(scopes), None))
                .await,
            field,
        );
    }
    expect_invalid(
        store
            .create_token(&actor, &readonly.id, token("t", Some("cases:write"), None))
            .await,
        "scopes",
    );
    for expires_at in [T0 - 1, T0] {
        expect_invalid(
            store
                .create_token(&actor, &agent.id, token("t", None, Some(expires_at)))
                .await,
            "expires_at",
        );
    }
    expect_invalid(
        store
            .create_token(&actor, &agent.id, token("  ", None, None))
            .await,
        "name",
    );
    expect_not_found(
        store
            .create_token(
                &actor,
                "0190a0b0-0000-7000-8000-000000000000",
                token("t", None, None),
            )
            .await,
        "user",
    );
    let names: Vec<String> = store
        .tokens(&agent.id)
        .await
        .expect("tokens")
        .into_iter()
        .map(|t| t.name)
        .collect();
    assert_eq!(names, vec!["ci", "narrow"]);

    let everything = store
        .create_token(&actor_of(&admin), &admin.id, token("all", Some("*"), None))
        .await
        .expect("admin token");
    assert_eq!(everything.token.scopes, Permission::ALL.to_vec());
    let read = store
        .create_token(&cli(), &readonly.id, token("read", None, None))
        .await
        .expect("readonly token");
    assert_eq!(
        read.token.scopes,
        vec![
            CustomersRead,
            CasesRead,
            TimelineRead,
            TeamsRead,
            NotificationsOwn,
            KbRead
        ]
    );

    // A token narrows the role: the principal may do only what both allow.
    let principal = store
        .principal_for_token(&narrow.secret)
        .await
        .expect("resolve")
        .expect("a valid token");
    assert_eq!(principal.user.id, agent.id);
    assert_eq!(principal.scopes, Some(vec![CasesRead, CustomersRead]));
    assert!(principal.csrf_token.is_none());
    assert!(principal.can(CasesRead));
    assert!(!principal.can(CasesWrite));
    let audit = audit_of(&store, "api_token", &narrow.token.id).await;
    assert_eq!(audit.len(), 1);
    assert_eq!(audit[0].action, "create");
    assert_eq!(audit[0].actor_id.as_deref(), Some(agent.id.as_str()));
    assert!(
        !audit[0]
            .after
            .as_ref()
            .expect("after")
            .to_string()
            .contains(&narrow.secret),
        "the secret is never stored"
    );
}

async fn api_token_use_revocation_and_expiry(store: Store) {
    let (store, clock) = fixed(store);
    let agent = user(&store, "agent@example.com", Role::Agent).await;
    let other = user(&store, "other@example.com", Role::Agent).await;
    let actor = actor_of(&agent);
    let created = store
        .create_token(&actor, &agent.id, token("ci", None, None))
        .await
        .expect("token");
    let last_used = || {
        let store = store.clone();
        let agent_id = agent.id.clone();
        let token_id = created.token.id.clone();
        async move {
            store
                .tokens(&agent_id)
                .await
                .expect("tokens")
                .into_iter()
                .find(|t| t.id == token_id)
                .expect("the token")
                .last_used_at
        }
    };
    let valid = |secret: String| {
        let store = store.clone();
        async move {
            store
                .principal_for_token(&secret)
                .await
                .expect("resolve")
                .is_some()
        }
    };

    clock.advance(1000);
    assert!(valid(created.secret.clone()).await);
    assert_eq!(last_used().await, Some(Timestamp(T0 + 1000)));
    clock.advance(30_000);
    assert!(valid(created.secret.clone()).await);
    assert_eq!(
        last_used().await,
        Some(Timestamp(T0 + 1000)),
        "use is recorded at most once a minute"
    );
    clock.advance(31_000);
    assert!(valid(created.secret.clone()).await);
    assert_eq!(last_used().await, Some(Timestamp(T0 + 62_000)));
    assert!(!valid("kefu_garbage".into()).await);
    assert!(!valid(String::new()).await);

    // Revoking: only through its owner, once.
    expect_not_found(
        store
            .revoke_token(&actor, &created.token.id, Some(&other.id))
            .await,
        "token",
    );
    assert!(valid(created.secret.clone()).await);
    clock.advance(1000);
    let revoked = store
        .revoke_token(&actor, &created.token.id, Some(&agent.id))
        .await
        .expect("revoke");
    let revoked_at = Some(Timestamp(store.now_ms()));
    assert_eq!(revoked.revoked_at, revoked_at);
    assert!(!valid(created.secret.clone()).await);
    clock.advance(1000);
    let again = store
        .revoke_token(&cli(), &created.token.id, None)
        .await
        .expect("revoke again");
    assert_eq!(again.revoked_at, revoked_at, "the first revocation stays");
    let listed = store.tokens(&agent.id).await.expect("tokens");
    assert_eq!(listed[0].revoked_at, revoked_at);
    expect_not_found(
        store
            .revoke_token(&actor, "0190a0b0-0000-7000-8000-000000000000", None)
            .await,
        "token",
    );
    let audit = audit_of(&store, "api_token", &created.token.id).await;
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["revoke", "revoke", "create"]
    );
    assert_eq!(
        audit[1].before.as_ref().expect("before")["revoked_at"],
        serde_json::Value::Null
    );
    assert!(audit[1].after.as_ref().expect("after")["revoked_at"].is_string());

    // Expiry.
    let start = store.now_ms();
    let expiring = store
        .create_token(
            &actor,
            &agent.id,
            token("short", None, Some(start + 10_000)),
        )
        .await
        .expect("expiring token");
    assert_eq!(expiring.token.expires_at, Some(Timestamp(start + 10_000)));
    clock.advance(9_999);
    assert!(valid(expiring.secret.clone()).await);
    clock.advance(2);
    assert!(!valid(expiring.secret.clone()).await);

    // A deactivated user's token grants nothing.
    let live = store
        .create_token(&actor, &agent.id, token("live", None, None))
        .await
        .expect("live token");
    store
        .update_user(&cli(), &agent.id, deactivate(), None)
        .await
        .expect("deactivate");
    let principal = store
        .principal_for_token(&live.secret)
        .await
        .expect("resolve");
    if let Some(principal) = principal {
        assert!(
            Permission::ALL.iter().all(|p| !principal.can(*p)),
            "an inactive user's token must not grant anything"
        );
    }
}

async fn teams_have_unique_names(store: Store) {
    let (store, clock) = fixed(store);
    let new_team = |name: &str, description: Option<&str>| NewTeam {
        name: name.into(),
        description: description.map(str::to_string),
    };
    let after_sale = store
        .create_team(&cli(), new_team(" 售后 ", Some("after-sale")))
        .await
        .expect("team");
    assert_eq!(after_sale.name, "售后");
    assert_eq!(after_sale.description, "after-sale");
    assert_eq!(after_sale.version, 1);
    assert_eq!(after_sale.created_at, Timestamp(T0));
    let fetched = store.team(&after_sale.id).await.expect("team");
    assert_eq!(
        serde_json::to_value(&fetched).expect("json"),
        serde_json::to_value(&after_sale).expect("json")
    );
    expect_conflict(
        store.create_team(&cli(), new_team("售后", None)).await,
        "duplicate",
    );
    expect_invalid(store.create_team(&cli(), new_team(" ", None)).await, "name");
    let b = store
        .create_team(&cli(), new_team("B组", None))
        .await
        .expect("b");
    store
        .create_team(&cli(), new_team("A组", None))
        .await
        .expect("a");
    assert_eq!(b.description, "");
    let names =
        |teams: Vec<kefu_store::users::Team>| teams.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.teams().await.expect("teams")),
        vec!["A组", "B组", "售后"]
    );

    clock.advance(1000);
    let renamed = store
        .update_team(
            &cli(),
            &after_sale.id,
            TeamPatch {
                name: Some("售后服务".into()),
                description: None,
            },
            Some(1),
        )
        .await
        .expect("rename");
    assert_eq!(renamed.name, "售后服务");
    assert_eq!(renamed.description, "after-sale");
    assert_eq!(renamed.version, 2);
    assert_eq!(renamed.updated_at, Timestamp(T0 + 1000));
    expect_conflict(
        store
            .update_team(
                &cli(),
                &after_sale.id,
                TeamPatch {
                    name: Some("A组".into()),
                    description: None,
                },
                None,
            )
            .await,
        "duplicate",
    );
    expect_version_mismatch(
        store
            .update_team(
                &cli(),
                &after_sale.id,
                TeamPatch {
                    description: Some("x".into()),
                    ..Default::default()
                },
                Some(1),
            )
            .await,
        "team",
        1,
        2,
    );
    let same_name = store
        .update_team(
            &cli(),
            &after_sale.id,
            TeamPatch {
                name: Some("售后服务".into()),
                description: Some("".into()),
            },
            Some(2),
        )
        .await
        .expect("same name, new description");
    assert_eq!(same_name.description, "");
    assert_eq!(same_name.version, 3);
    assert_eq!(
        serde_json::to_value(store.team(&after_sale.id).await.expect("team")).expect("json"),
        serde_json::to_value(&same_name).expect("json")
    );
    assert_eq!(
        names(store.teams().await.expect("teams")),
        vec!["A组", "B组", "售后服务"]
    );
    // The old name is free again.
    store
        .create_team(&cli(), new_team("售后", None))
        .await
        .expect("old name reused");
    expect_not_found(store.team("nope").await, "team");
    expect_not_found(
        store
            .update_team(
                &cli(),
                "0190a0b0-0000-7000-8000-000000000000",
                TeamPatch::default(),
                None,
            )
            .await,
        "team",
    );
    let audit = audit_of(&store, "team", &after_sale.id).await;
    assert_eq!(
        audit.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(),
        vec!["update", "update", "create"]
    );
    assert_eq!(audit[1].before.as_ref().expect("before")["name"], "售后");
    assert_eq!(audit[1].after.as_ref().expect("after")["name"], "售后服务");
}
