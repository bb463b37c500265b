//! Conformance suite, part five: the same guarantees under concurrent callers. SQLite
//! serialises writers; PostgreSQL runs them side by side — the answers must agree.

mod common;

use common::*;
use kefu_domain::cases::{CaseKind, CaseStatus};
use kefu_domain::contacts::ContactChannel;
use kefu_domain::customers::LifecycleState;
use kefu_store::cases::NewTransfer;
use kefu_store::cases::StatusChange;
use kefu_store::customers::{CustomerPatch, NewCustomer};
use kefu_store::idempotency::Begin;
use kefu_store::users::NewTeam;
use kefu_store::{Store, StoreError};
use kefu_testkit::{Backend, TestDb};
use serde_json::json;
use sqlx::Connection as _;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Barrier;

/// Runs each `async fn name(db: TestDb)` once per backend.
macro_rules! held_lock_tests {
    ($($name:ident),* $(,)?) => {
        mod held_sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Sqlite.open().await).await;
                }
            )*
        }
        mod held_postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Backend::Postgres.open().await).await;
                }
            )*
        }
    };
}

kefu_testkit::conformance!(
    failed_writes_in_a_shared_commit_leave_the_others_whole,
    concurrent_customer_updates_honour_the_version,
    concurrent_case_numbers_are_unique,
    concurrent_claims_never_share_a_job,
    concurrent_lock_attempts_have_one_winner,
    concurrent_rule_publishes_from_one_version_have_one_winner,
);

// The tests below make the race certain instead of likely on PostgreSQL: while the
// racers start, a connection of the test's own holds a lock (the row the racers will
// write, or an uncommitted row with the same unique key) and releases it once every racer
// waits on it. On SQLite the racers simply start together. The answers must agree.
held_lock_tests!(
    held_customer_updates_honour_the_version,
    held_customer_transitions_honour_the_version,
    held_case_status_changes_honour_the_version,
    held_case_transfers_honour_the_version,
    held_idempotency_begins_have_one_winner,
    held_duplicate_contacts_are_reported_as_such,
);

const RACERS: usize = 6;

/// Runs `RACERS` copies of `work` at once (released together by a barrier) and returns
/// their results in order.
async fn race<T, F, Fut>(store: &Store, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Store, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut handles = Vec::new();
    for index in 0..RACERS {
        let barrier = barrier.clone();
        let job = work(store.clone(), index);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            job.await
        }));
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("task"));
    }
    results
}

fn count_ok<T>(results: &[Result<T, StoreError>]) -> usize {
    results.iter().filter(|r| r.is_ok()).count()
}

#[track_caller]
fn one_winner_rest_stale<T: std::fmt::Debug>(results: Vec<Result<T, StoreError>>, entity: &str) {
    assert_eq!(count_ok(&results), 1, "exactly one wins: {results:?}");
    for result in results.into_iter().filter(|r| r.is_err()) {
        match result {
            Err(StoreError::VersionMismatch {
                entity: e,
                expected: 1,
                current: 2,
            }) if e == entity => {}
            other => panic!("expected VersionMismatch {entity} 1/2, got {other:?}"),
        }
    }
}

async fn concurrent_customer_updates_honour_the_version(store: Store) {
    let customer = person(&store, "并发").await;
    let id = customer.id.clone();
    let results = race(&store, move |store, index| {
        let id = id.clone();
        async move {
            store
                .update_customer(
                    &cli(),
                    &id,
                    CustomerPatch {
                        notes: Some(format!("writer {index}")),
                        ..Default::default()
                    },
                    Some(1),
                )
                .await
        }
    })
    .await;
    one_winner_rest_stale(results, "customer");
    let now = store.customer(&customer.id).await.expect("customer");
    assert_eq!(now.version, 2);
    assert_eq!(audit_of(&store, "customer", &customer.id).await.len(), 2);
}

async fn concurrent_case_numbers_are_unique(store: Store) {
    let customer = person(&store, "客户").await;
    let results = race(&store, move |store, index| {
        let customer = customer.clone();
        async move {
            store
                .create_case(
                    &cli(),
                    new_case(&customer, CaseKind::Order, &format!("c{index}")),
                )
                .await
        }
    })
    .await;
    let mut numbers: Vec<i64> = results
        .into_iter()
        .map(|r| r.expect("create case").number)
        .collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1001..1001 + RACERS as i64).collect::<Vec<_>>());
}

async fn concurrent_claims_never_share_a_job(store: Store) {
    let mut enqueued = Vec::new();
    for index in 0..20 {
        enqueued.push(
            store
                .enqueue("work", &json!({"n": index}), None)
                .await
                .expect("enqueue"),
        );
    }
    let claimed = race(&store, |store, worker| async move {
        let mut mine = Vec::new();
        while let Some(job) = store
            .claim_job("work", &format!("w{worker}"), 60_000)
            .await
            .expect("claim")
        {
            assert_eq!(job.attempts, 1, "job {} claimed twice", job.id);
            mine.push(job.id);
        }
        mine
    })
    .await;
    let mut all: Vec<i64> = claimed.into_iter().flatten().collect();
    all.sort_unstable();
    assert_eq!(all, enqueued, "every job claimed exactly once");
}

async fn concurrent_lock_attempts_have_one_winner(store: Store) {
    let results = race(&store, |store, index| async move {
        store
            .try_lock("singleton", &format!("holder{index}"), 60_000)
            .await
            .expect("try lock")
    })
    .await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "{results:?}");
}

/// A lock held by the test's own connection (PostgreSQL), or nothing (SQLite, whose
/// writers the store serialises itself: racers there start together and queue).
enum Held {
    Nothing,
    Postgres(sqlx::PgConnection),
}

/// On PostgreSQL runs `postgres_sql` (binding `arg`) in an open transaction.
async fn hold(db: &TestDb, postgres_sql: &'static str, arg: Option<String>) -> Held {
    match db.store.dialect() {
        kefu_store::Dialect::Sqlite => Held::Nothing,
        kefu_store::Dialect::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&db.url)
                .await
                .expect("connect to PostgreSQL");
            sqlx::raw_sql("BEGIN")
                .execute(&mut conn)
                .await
                .expect("begin");
            let mut query = sqlx::query(postgres_sql);
            if let Some(arg) = arg {
                query = query.bind(arg);
            }
            query.execute(&mut conn).await.expect("take the lock");
            Held::Postgres(conn)
        }
    }
}

/// Lets the racers start against the held lock, waits until they all wait on it, and
/// releases it (rolling back whatever the lock wrote).
async fn race_against<T, F, Fut>(held: Held, store: &Store, work: F) -> Vec<T>
where
    T: Send + 'static,
    F: Fn(Store, usize) -> Fut,
    Fut: Future<Output = T> + Send + 'static,
{
    let barrier = Arc::new(Barrier::new(RACERS));
    let mut handles = Vec::new();
    for index in 0..RACERS {
        let barrier = barrier.clone();
        let job = work(store.clone(), index);
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            job.await
        }));
    }
    if let Held::Postgres(mut conn) = held {
        tokio::time::sleep(Duration::from_millis(700)).await;
        sqlx::raw_sql("ROLLBACK")
            .execute(&mut conn)
            .await
            .expect("release");
    }
    let mut results = Vec::new();
    for handle in handles {
        results.push(handle.await.expect("task"));
    }
    results
}

const LOCK_CUSTOMER: &str = "SELECT id FROM customers WHERE public_id = $1 FOR UPDATE";
const LOCK_CASE: &str = "SELECT id FROM cases WHERE public_id = $1 FOR UPDATE";

/// The control: `update_customer` checks the version in its UPDATE, so it is right on
/// both backends even when every racer read the same version.
async fn held_customer_updates_honour_the_version(db: TestDb) {
    let store = db.store.clone();
    let customer = person(&store, "并发").await;
    let held = hold(&db, LOCK_CUSTOMER, Some(customer.id.clone())).await;
    let id = customer.id.clone();
    let results = race_against(held, &store, move |store, index| {
        let id = id.clone();
        async move {
            store
                .update_customer(
                    &cli(),
                    &id,
                    CustomerPatch {
                        notes: Some(format!("writer {index}")),
                        ..Default::default()
                    },
                    Some(1),
                )
                .await
        }
    })
    .await;
    one_winner_rest_stale(results, "customer");
    assert_eq!(store.customer(&customer.id).await.expect("c").version, 2);
}

// Regression: `Store::transition_customer` (crates/store/src/customers.rs) checks
// `expected_version` against a row read without a lock and then updates with
// `WHERE id = $6` only. On SQLite writers are serialised, so a second caller with the
// same version gets VersionMismatch; on PostgreSQL (READ COMMITTED) concurrent callers
// all pass the check and all succeed, each overwriting the other — a lost update, with a
// lifecycle history that no longer chains (two transitions "from potential"). The UPDATE
// needs `AND version = $expected` and a VersionMismatch when it changes no row, as
// `update_customer` does (or the read needs `FOR UPDATE`).
async fn held_customer_transitions_honour_the_version(db: TestDb) {
    let store = db.store.clone();
    let customer = person(&store, "并发").await;
    let held = hold(&db, LOCK_CUSTOMER, Some(customer.id.clone())).await;
    let id = customer.id.clone();
    let targets = [
        LifecycleState::Target,
        LifecycleState::Current,
        LifecycleState::Lost,
    ];
    let results = race_against(held, &store, move |store, index| {
        let id = id.clone();
        async move {
            store
                .transition_customer(&cli(), &id, targets[index % 3], "race", Some(1))
                .await
        }
    })
    .await;
    one_winner_rest_stale(results, "customer");
    assert_eq!(store.customer(&customer.id).await.expect("c").version, 2);
    assert_eq!(
        store
            .lifecycle_history(&customer.id)
            .await
            .expect("history")
            .len(),
        2
    );
}

// Regression: `Store::change_case_status` (crates/store/src/cases.rs) has the same hole:
// `check_version` on an unlocked read, then `UPDATE cases … WHERE id = $3`. On
// PostgreSQL concurrent status changes with the same expected version all succeed (and
// each writes a status-change row and a timeline entry); on SQLite all but one get
// VersionMismatch.
async fn held_case_status_changes_honour_the_version(db: TestDb) {
    let store = db.store.clone();
    let customer = person(&store, "客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Order, "并发").await;
    let held = hold(&db, LOCK_CASE, Some(case.id.clone())).await;
    let id = case.id.clone();
    let targets = [
        CaseStatus::Open,
        CaseStatus::Pending,
        CaseStatus::OnHold,
        CaseStatus::Solved,
        CaseStatus::Closed,
    ];
    let results = race_against(held, &store, move |store, index| {
        let id = id.clone();
        async move {
            store
                .change_case_status(
                    &cli(),
                    &id,
                    StatusChange {
                        status: targets[index % targets.len()],
                        reason: None,
                    },
                    Some(1),
                )
                .await
        }
    })
    .await;
    one_winner_rest_stale(results, "case");
    assert_eq!(store.case(&case.id).await.expect("case").version, 2);
    assert_eq!(
        store.status_changes(&case.id).await.expect("history").len(),
        1
    );
}

// Regression: `Store::transfer_case` (crates/store/src/cases.rs): same pattern — the version is
// checked on an unlocked read and `UPDATE cases SET team_id … WHERE id = $4` has no
// version condition, so on PostgreSQL concurrent transfers with the same expected
// version all succeed and all land in `transfers()`.
async fn held_case_transfers_honour_the_version(db: TestDb) {
    let store = db.store.clone();
    let customer = person(&store, "客户").await;
    let case = open_case(&store, &cli(), &customer, CaseKind::Order, "并发").await;
    let mut teams = Vec::new();
    for index in 0..RACERS {
        teams.push(
            store
                .create_team(
                    &cli(),
                    NewTeam {
                        name: format!("team{index}"),
                        description: None,
                    },
                )
                .await
                .expect("team")
                .id,
        );
    }
    let held = hold(&db, LOCK_CASE, Some(case.id.clone())).await;
    let id = case.id.clone();
    let results = race_against(held, &store, move |store, index| {
        let id = id.clone();
        let team = teams[index].clone();
        async move {
            store
                .transfer_case(
                    &cli(),
                    &id,
                    NewTransfer {
                        team_id: Some(team),
                        assignee_id: None,
                        reason: "race".into(),
                    },
                    Some(1),
                )
                .await
        }
    })
    .await;
    one_winner_rest_stale(results, "case");
    assert_eq!(store.case(&case.id).await.expect("case").version, 2);
    assert_eq!(store.transfers(&case.id).await.expect("transfers").len(), 1);
}

// Regression: `Store::idempotency_begin` (crates/store/src/idempotency.rs) reads the key and
// then inserts it. On PostgreSQL concurrent first requests all see no row; all but one
// INSERT then fail the primary key, and those callers get
// `Err(StoreError::Conflict { code: "duplicate" })` instead of `Ok(Begin::InProgress)`.
// On SQLite they get InProgress. The reservation should be
// `INSERT … ON CONFLICT (user_id, key) DO NOTHING` followed by reading the row.
async fn held_idempotency_begins_have_one_winner(db: TestDb) {
    let store = db.store.clone();
    let key = user(&store, "me@example.com", kefu_domain::access::Role::Agent)
        .await
        .key;
    let held = hold(
        &db,
        "INSERT INTO idempotency_keys (user_id, key, request_hash, status, response, created_at) VALUES (CAST($1 AS BIGINT), 'same-key', 'held', 0, '', 0)",
        Some(key.to_string()),
    )
    .await;
    let results = race_against(held, &store, move |store, _| async move {
        store.idempotency_begin(key, "same-key", "same-hash").await
    })
    .await;
    let fresh = results
        .iter()
        .filter(|r| matches!(r, Ok(Begin::Fresh)))
        .count();
    let in_progress = results
        .iter()
        .filter(|r| matches!(r, Ok(Begin::InProgress)))
        .count();
    assert_eq!((fresh, in_progress), (1, RACERS - 1), "{results:?}");
}

// Regression: `insert_contacts` (crates/store/src/customers.rs) checks for an existing contact
// and then inserts. On PostgreSQL concurrent customers with the same address all pass
// the check; the losers hit the UNIQUE (channel, value) index and get the generic
// `Conflict { code: "duplicate", field: None }` from `From<sqlx::Error>` instead of
// `duplicate_contact` on `contacts`. SQLite always answers `duplicate_contact`.
async fn held_duplicate_contacts_are_reported_as_such(db: TestDb) {
    let store = db.store.clone();
    let holder = person(&store, "占位").await;
    let before = store.customer_count().await.expect("count");
    let held = hold(
        &db,
        "INSERT INTO customer_contacts (public_id, customer_id, channel, value, display_value, is_primary, source, created_at) VALUES ('held-contact', CAST($1 AS BIGINT), 'email', 'same@example.com', 'same@example.com', FALSE, 'agent', 0)",
        Some(holder.key.to_string()),
    )
    .await;
    let results = race_against(held, &store, |store, index| async move {
        store
            .create_customer(
                &cli(),
                NewCustomer {
                    contacts: Some(vec![contact(ContactChannel::Email, "same@example.com")]),
                    ..named(&format!("racer{index}"))
                },
            )
            .await
    })
    .await;
    assert_eq!(count_ok(&results), 1, "{results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        assert!(
            matches!(
                result,
                Err(StoreError::Conflict {
                    code: "duplicate_contact",
                    field: Some("contacts"),
                    ..
                })
            ),
            "{result:?}"
        );
    }
    assert_eq!(store.customer_count().await.expect("count"), before + 1);
}

/// Many writers at once share commits on SQLite (group commit). A unit that fails in
/// the middle of a shared transaction is rolled back alone: the others are all there,
/// the failed ones left nothing, and each success has exactly one audit record.
async fn failed_writes_in_a_shared_commit_leave_the_others_whole(store: Store) {
    let taken = store
        .create_customer(
            &kefu_store::Actor::cli(),
            NewCustomer {
                name: "先到".into(),
                contacts: Some(vec![kefu_store::customers::NewContact {
                    channel: ContactChannel::Email,
                    value: "taken@example.com".into(),
                    is_primary: false,
                }]),
                ..Default::default()
            },
        )
        .await
        .expect("first customer");
    let mut tasks = Vec::new();
    for n in 0..48 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let email = if n % 4 == 0 {
                "taken@example.com".to_string()
            } else {
                format!("c{n}@example.com")
            };
            store
                .create_customer(
                    &kefu_store::Actor::cli(),
                    NewCustomer {
                        name: format!("客户{n}"),
                        contacts: Some(vec![kefu_store::customers::NewContact {
                            channel: ContactChannel::Email,
                            value: email,
                            is_primary: false,
                        }]),
                        ..Default::default()
                    },
                )
                .await
        }));
    }
    let mut created = Vec::new();
    let mut refused = 0;
    for task in tasks {
        match task.await.expect("task") {
            Ok(customer) => created.push(customer),
            Err(StoreError::Conflict {
                code: "duplicate_contact",
                ..
            }) => refused += 1,
            Err(other) => panic!("unexpected error: {other:?}"),
        }
    }
    assert_eq!((created.len(), refused), (36, 12));
    assert_eq!(
        store.customer_count().await.expect("count"),
        37,
        "the refused left no customer behind"
    );
    for customer in &created {
        let fetched = store
            .customer(&customer.id)
            .await
            .expect("committed and visible");
        assert_eq!(fetched.contacts.len(), 1);
        let audit = store
            .audit_list(
                &kefu_store::audit::AuditFilter {
                    object_type: Some("customer".into()),
                    object_id: Some(customer.id.clone()),
                    ..Default::default()
                },
                &kefu_store::page::PageRequest::default(),
            )
            .await
            .expect("audit");
        assert_eq!(audit.items.len(), 1);
    }
    let _ = taken;
}

async fn concurrent_rule_publishes_from_one_version_have_one_winner(store: Store) {
    use kefu_domain::complaints::ComplaintRules;
    use kefu_store::complaints::NewRuleSet;
    let base = store.complaint_rules().await.expect("rules").version;
    let results = race(&store, move |store, index| async move {
        store
            .publish_rules(
                &cli(),
                NewRuleSet {
                    rules: ComplaintRules {
                        agent_compensation_limit_cents: 10_000 + index as i64,
                        ..ComplaintRules::default()
                    },
                    note: format!("editor {index}"),
                    based_on_version: Some(base),
                },
            )
            .await
    })
    .await;
    assert_eq!(count_ok(&results), 1, "exactly one wins: {results:?}");
    for result in results.iter().filter(|r| r.is_err()) {
        match result {
            Err(StoreError::Conflict {
                code: "rule_set_changed",
                ..
            }) => {}
            other => panic!("expected rule_set_changed, got {other:?}"),
        }
    }
    assert_eq!(
        store.rule_sets().await.expect("versions").len() as i64,
        base + 1,
        "one new version, nothing half-written"
    );
}
