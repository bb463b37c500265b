//! Helpers shared by the conformance suites (each test file uses a part of them).
#![allow(dead_code)]

use kefu_domain::DomainError;
use kefu_domain::access::Role;
use kefu_domain::cases::{CaseKind, MessageKind, Priority};
use kefu_domain::contacts::ContactChannel;
use kefu_store::audit::{AuditEntry, AuditFilter};
use kefu_store::cases::{Case, NewCase, NewMessage};
use kefu_store::customers::{Customer, NewContact, NewCustomer};
use kefu_store::page::{Page, PageRequest};
use kefu_store::timeline::{TimelineEntry, TimelineFilter};
use kefu_store::users::{NewUser, Principal, User};
use kefu_store::{Actor, FixedClock, Store, StoreError};
use std::fmt::Debug;
use std::sync::Arc;

/// The moment every fixed clock starts at.
pub const T0: i64 = 1_700_000_000_000;

/// The password of users made by [`user`].
pub const PASSWORD: &str = "correct horse battery";

/// The store with a clock standing at [`T0`].
pub fn fixed(store: Store) -> (Store, Arc<FixedClock>) {
    let clock = FixedClock::new(T0);
    (store.with_clock(clock.clone()), clock)
}

pub fn cli() -> Actor {
    Actor::cli()
}

pub fn contact(channel: ContactChannel, value: &str) -> NewContact {
    NewContact {
        channel,
        value: value.into(),
        is_primary: false,
    }
}

pub fn named(name: &str) -> NewCustomer {
    NewCustomer {
        name: name.into(),
        ..Default::default()
    }
}

pub async fn person(store: &Store, name: &str) -> Customer {
    store
        .create_customer(&cli(), named(name))
        .await
        .unwrap_or_else(|e| panic!("create customer {name}: {e:?}"))
}

pub async fn organization(store: &Store, name: &str) -> Customer {
    store
        .create_customer(
            &cli(),
            NewCustomer {
                kind: Some(kefu_domain::customers::CustomerKind::Organization),
                ..named(name)
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create organisation {name}: {e:?}"))
}

/// A user with [`PASSWORD`].
pub async fn user(store: &Store, email: &str, role: Role) -> User {
    store
        .create_user(
            &cli(),
            NewUser {
                email: email.into(),
                name: None,
                role,
                password: Some(PASSWORD.into()),
                team_id: None,
                locale: None,
            },
        )
        .await
        .unwrap_or_else(|e| panic!("create user {email}: {e:?}"))
}

/// The actor a request of `user` acts as.
pub fn actor_of(user: &User) -> Actor {
    Principal {
        user: user.clone(),
        scopes: None,
        csrf_token: None,
    }
    .actor()
}

pub fn new_case(customer: &Customer, kind: CaseKind, subject: &str) -> NewCase {
    NewCase {
        customer_id: customer.id.clone(),
        kind,
        subject: subject.into(),
        body: format!("body of {subject}"),
        message_kind: None,
        channel: None,
        priority: None,
        service_stage: None,
        technical: None,
        charging: None,
        service_mode: None,
        recurrence: None,
        team_id: None,
        assignee_id: None,
        content_type: None,
    }
}

pub async fn open_case(
    store: &Store,
    actor: &Actor,
    customer: &Customer,
    kind: CaseKind,
    subject: &str,
) -> Case {
    store
        .create_case(actor, new_case(customer, kind, subject))
        .await
        .unwrap_or_else(|e| panic!("create case {subject}: {e:?}"))
}

pub fn message(kind: MessageKind, body: &str) -> NewMessage {
    NewMessage {
        kind,
        body: body.into(),
        channel: None,
        content_type: None,
    }
}

pub fn page(limit: u32) -> PageRequest {
    PageRequest {
        limit: Some(limit),
        cursor: None,
    }
}

/// Walks every page of a list with `limit` rows a page: full pages until the last, a
/// cursor exactly when more follows.
pub async fn walk<T>(
    limit: u32,
    mut fetch: impl AsyncFnMut(PageRequest) -> Result<Page<T>, StoreError>,
) -> Vec<T> {
    let mut all = Vec::new();
    let mut cursor = None;
    for _ in 0..10_000 {
        let page = fetch(PageRequest {
            limit: Some(limit),
            cursor: cursor.take(),
        })
        .await
        .expect("fetch a page");
        assert!(page.items.len() <= limit as usize, "page over its limit");
        let last = page.next_cursor.is_none();
        if !last {
            assert_eq!(
                page.items.len(),
                limit as usize,
                "a page before the last is full"
            );
        }
        all.extend(page.items);
        if last {
            return all;
        }
        cursor = page.next_cursor;
    }
    panic!("the list never ended");
}

/// Every audit entry matching `filter`, newest first.
pub async fn audit(store: &Store, filter: AuditFilter) -> Vec<AuditEntry> {
    walk(200, async |p| store.audit_list(&filter, &p).await).await
}

pub async fn audit_count(store: &Store) -> usize {
    audit(store, AuditFilter::default()).await.len()
}

/// The newest audit entry.
pub async fn last_audit(store: &Store) -> AuditEntry {
    store
        .audit_list(&AuditFilter::default(), &page(1))
        .await
        .expect("audit list")
        .items
        .into_iter()
        .next()
        .expect("an audit entry")
}

/// The audit entries of one object, newest first.
pub async fn audit_of(store: &Store, object_type: &str, object_id: &str) -> Vec<AuditEntry> {
    audit(
        store,
        AuditFilter {
            object_type: Some(object_type.into()),
            object_id: Some(object_id.into()),
            ..Default::default()
        },
    )
    .await
}

/// A customer's whole timeline, newest first.
pub async fn timeline_of(store: &Store, customer_id: &str) -> Vec<TimelineEntry> {
    let filter = TimelineFilter {
        customer_id: Some(customer_id.into()),
        ..Default::default()
    };
    walk(200, async |p| store.timeline(&filter, &p).await).await
}

#[track_caller]
pub fn expect_invalid<T: Debug>(result: Result<T, StoreError>, field: &str) -> DomainError {
    match result {
        Err(StoreError::Invalid(error)) if error.field() == field => error,
        other => panic!("expected Invalid on `{field}`, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_conflict<T: Debug>(result: Result<T, StoreError>, code: &str) {
    match result {
        Err(StoreError::Conflict { code: got, .. }) if got == code => {}
        other => panic!("expected Conflict `{code}`, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_not_found<T: Debug>(result: Result<T, StoreError>, entity: &str) {
    match result {
        Err(StoreError::NotFound { entity: got, .. }) if got == entity => {}
        other => panic!("expected NotFound {entity}, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_version_mismatch<T: Debug>(
    result: Result<T, StoreError>,
    entity: &str,
    expected: i64,
    current: i64,
) {
    match result {
        Err(StoreError::VersionMismatch {
            entity: e,
            expected: x,
            current: c,
        }) if e == entity && x == expected && c == current => {}
        other => panic!("expected VersionMismatch {entity} {expected}/{current}, got {other:?}"),
    }
}

#[track_caller]
pub fn expect_transition_refused<T: Debug>(result: Result<T, StoreError>, from: &str, to: &str) {
    match result {
        Err(StoreError::Invalid(DomainError::TransitionNotAllowed { from: f, to: t, .. }))
            if f == from && t == to => {}
        other => panic!("expected TransitionNotAllowed {from} -> {to}, got {other:?}"),
    }
}

/// First-response SLA policies, each `(name, rank, priority it applies to or any,
/// minutes)`, never escalating on breach.
pub async fn first_response_policies(
    store: &Store,
    policies: &[(&str, i64, Option<Priority>, i64)],
) {
    for &(name, rank, priority, minutes) in policies {
        store
            .create_sla_policy(
                &cli(),
                kefu_domain::sla::SlaPolicySpec {
                    name: name.into(),
                    rank,
                    case_kind: None,
                    priority,
                    severity: None,
                    first_response_minutes: Some(minutes),
                    next_response_minutes: None,
                    resolution_minutes: None,
                    warn_at_percent: None,
                    escalate_on_breach: Some(false),
                    active: None,
                },
            )
            .await
            .expect("policy");
    }
}
