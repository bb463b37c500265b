//! `kefu demo` through the real binary: what the dataset holds (checked through
//! `kefu export`), that it is the same for the same seed, that it lies in the past, that
//! a second run adds nothing, and that the demo admin can log in.

use serde_json::Value;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::process::{Command, Output};

fn kefu(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kefu"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env_remove("KEFU_CONFIG")
        .env("KEFU_LOG", "warn")
        .output()
        .expect("run kefu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn export(data_dir: &Path, what: &str) -> Vec<Value> {
    let output = kefu(data_dir, &["export", what]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

fn values<'a>(items: &'a [Value], field: &str) -> BTreeSet<&'a str> {
    items.iter().filter_map(|i| i[field].as_str()).collect()
}

fn has_han(text: &str) -> bool {
    text.chars().any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_holds_the_whole_domain_and_is_repeatable() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    for data in [&a, &b] {
        let output = kefu(data, &["demo", "--customers", "120", "--seed", "7"]);
        assert!(output.status.success(), "{}", text(&output.stderr));
        let summary = text(&output.stdout);
        assert!(
            summary.contains("admin@kefu.demo") && summary.contains("kefu-demo-2026"),
            "{summary}"
        );
    }

    let customers = export(&a, "customers");
    let cases = export(&a, "cases");
    let timeline = export(&a, "timeline");
    assert_eq!(customers.len(), 120);

    // The same seed gives the same people and the same conversations.
    let names = |items: &[Value], field: &str| -> Vec<String> {
        items
            .iter()
            .map(|i| i[field].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        names(&customers, "name"),
        names(&export(&b, "customers"), "name")
    );
    assert_eq!(
        names(&cases, "subject"),
        names(&export(&b, "cases"), "subject")
    );

    // Customers: both kinds and languages, every lifecycle state and lead source.
    assert_eq!(
        values(&customers, "lifecycle"),
        ["current", "lost", "potential", "target"].into()
    );
    assert_eq!(
        values(&customers, "kind"),
        ["organization", "person"].into()
    );
    assert_eq!(
        values(&customers, "lead_source").len(),
        12,
        "every lead source"
    );
    assert!(
        customers
            .iter()
            .any(|c| c["name"].as_str().is_some_and(has_han))
    );
    assert!(
        customers
            .iter()
            .any(|c| c["name"].as_str().is_some_and(str::is_ascii))
    );
    assert!(values(&customers, "communication_type").len() >= 10);
    assert!(
        customers
            .iter()
            .any(|c| c["qualification_assessment"]["row"] == 1)
    );
    let by_id: HashMap<&str, &Value> = customers
        .iter()
        .filter_map(|c| Some((c["id"].as_str()?, c)))
        .collect();
    // Persons belong to organisations; referral chains run two links deep or more.
    assert!(customers.iter().any(|c| {
        c["organization_id"]
            .as_str()
            .and_then(|o| by_id.get(o))
            .is_some_and(|o| o["kind"] == "organization")
    }));
    assert!(customers.iter().any(|c| {
        c["referrer_id"]
            .as_str()
            .and_then(|r| by_id.get(r))
            .is_some_and(|r| r["referrer_id"].is_string())
    }));
    let lost: Vec<&Value> = customers
        .iter()
        .filter(|c| c["lifecycle"] == "lost")
        .collect();
    assert!(
        lost.iter()
            .all(|c| c["lost_reason"].as_str().is_some_and(|r| !r.is_empty()))
    );

    // Cases: every kind, every state, messages in both languages.
    assert_eq!(
        values(&cases, "kind"),
        [
            "after_sale",
            "complaint",
            "consultation",
            "order",
            "suggestion",
            "technical_support"
        ]
        .into()
    );
    for status in [
        "new", "open", "pending", "on_hold", "solved", "closed", "merged",
    ] {
        assert!(
            cases.iter().any(|c| c["status"] == status),
            "no {status} case"
        );
    }
    assert!(
        cases
            .iter()
            .any(|c| c["subject"].as_str().is_some_and(has_han))
    );
    assert!(
        cases
            .iter()
            .any(|c| c["subject"].as_str().is_some_and(str::is_ascii))
    );

    // The timeline: messages, transfers, merges, lifecycle changes, purchases, win-back
    // attempts and hand-recorded visits, calls and letters, all in the past months.
    for kind in [
        "case_created",
        "message",
        "case_status",
        "case_transfer",
        "case_merged",
        "lifecycle",
        "transaction",
        "follow_up",
        "visit",
        "call",
        "letter",
    ] {
        assert!(
            timeline.iter().any(|t| t["kind"] == kind),
            "no {kind} entry"
        );
    }
    let transfer = timeline
        .iter()
        .find(|t| t["kind"] == "case_transfer")
        .expect("a transfer");
    assert!(
        transfer["data"]["reason"]
            .as_str()
            .is_some_and(|r| !r.is_empty())
    );
    let visit = timeline
        .iter()
        .find(|t| t["kind"] == "visit")
        .expect("a visit");
    assert_eq!(visit["interaction_type"], "face_to_face");
    let times: Vec<i64> = timeline
        .iter()
        .map(|t| {
            kefu_domain::Timestamp::parse("occurred_at", t["occurred_at"].as_str().expect("a time"))
                .expect("RFC 3339")
                .millis()
        })
        .collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let (first, last) = (
        times.iter().min().expect("entries"),
        times.iter().max().expect("entries"),
    );
    assert!(*last < now, "everything happened before now");
    assert!(
        now - first > 90 * 24 * 3600 * 1000,
        "history spreads over months"
    );

    // A second run adds nothing and says so.
    let again = kefu(&a, &["demo"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert!(text(&again.stdout).contains("already loaded"));
    assert_eq!(export(&a, "customers").len(), 120);

    // The demo admin logs in; the read-only user exists with its role.
    let store = kefu_store::Store::open(&kefu_store::StoreOptions::sqlite_in(&a))
        .await
        .expect("open");
    let (_, principal) = store
        .login("admin@kefu.demo", "kefu-demo-2026")
        .await
        .expect("the demo admin logs in");
    assert_eq!(principal.user.role, kefu_domain::access::Role::Admin);
    let readonly = store
        .user_by_email("grace.lau@kefu.demo")
        .await
        .expect("read-only user");
    assert_eq!(readonly.role, kefu_domain::access::Role::Readonly);
    assert_eq!(store.teams().await.expect("teams").len(), 4);

    // The bot has published FAQ entries in both languages to answer from.
    let faq = store.published_faq().await.expect("faq");
    assert!(faq.len() >= 6, "{}", faq.len());
    assert!(faq.iter().any(|e| has_han(&e.question)));
    assert!(faq.iter().any(|e| !has_han(&e.question)));

    // Complaint handling left its traces: promises kept and overdue, appeals awaiting a
    // supervisor, and reports whose daily roll-ups are all built.
    let page = kefu_store::page::PageRequest {
        limit: Some(200),
        cursor: None,
    };
    use kefu_domain::complaints::PromiseStatus;
    use kefu_store::promises::PromiseFilter;
    let kept = store
        .promises(
            &PromiseFilter {
                status: Some(PromiseStatus::Kept),
                ..Default::default()
            },
            &page,
        )
        .await
        .expect("kept promises");
    assert!(!kept.items.is_empty(), "kept promises");
    let overdue = store
        .promises(
            &PromiseFilter {
                overdue: true,
                ..Default::default()
            },
            &page,
        )
        .await
        .expect("overdue promises");
    assert!(!overdue.items.is_empty(), "overdue promises");
    assert!(
        !store.pending_appeals().await.expect("appeals").is_empty(),
        "appeals awaiting a decision"
    );
    let teams = store.teams().await.expect("teams");
    let mut profiled = 0;
    for team in &teams {
        profiled += store
            .team_agents(&team.id)
            .await
            .expect("agents")
            .iter()
            .filter(|a| a.capacity > 0 && !a.skills.is_empty())
            .count();
    }
    assert!(profiled >= 4, "agents have routing profiles: {profiled}");
    let refresh = store
        .refresh_reports(std::time::Duration::ZERO)
        .await
        .expect("refresh");
    assert_eq!(refresh.days, 0, "the demo built every roll-up");
    store.close().await;
}
