//! The store conformance suite: every repository operation, run on SQLite and on a real
//! PostgreSQL server, with the same expectations.

use kefu_domain::customers::LifecycleState;
use kefu_store::customers::NewCustomer;
use kefu_store::{Actor, Store};

kefu_testkit::conformance!(migrations_are_idempotent, customer_round_trip);

async fn migrations_are_idempotent(store: Store) {
    let report = store.migrate().await.expect("second migrate");
    assert!(report.applied.is_empty());
    assert_eq!(report.already, kefu_store::MIGRATION_NAMES.len());
}

async fn customer_round_trip(store: Store) {
    let created = store
        .create_customer(
            &Actor::cli(),
            NewCustomer {
                name: "王芳".into(),
                ..Default::default()
            },
        )
        .await
        .expect("create");
    assert_eq!(created.lifecycle, LifecycleState::Potential);
    let fetched = store.customer(&created.id).await.expect("fetch");
    assert_eq!(fetched.name, "王芳");
    assert_eq!(fetched.version, 1);
}
