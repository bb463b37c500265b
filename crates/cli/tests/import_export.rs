//! `kefu import customers` and `kefu export` through the real binary: the per-row
//! report, `--atomic`, duplicates against the database, header errors, JSON Lines with
//! references, export → import round trips (CSV and JSON Lines, across backends), and
//! the same import on PostgreSQL.

use kefu_store::customers::CustomerFilter;
use kefu_store::page::PageRequest;
use kefu_store::{Store, StoreOptions};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// Runs `kefu` on a data directory (or a database URL), with nothing from the caller's
/// environment.
fn kefu(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env_remove("KEFU_CONFIG")
        .env("KEFU_LOG", "warn");
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    command.output().expect("run kefu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn path(p: &Path) -> &str {
    p.to_str().expect("a UTF-8 path")
}

fn export(data_dir: &Path, database_url: Option<&str>, what: &str) -> Vec<Value> {
    let output = kefu(data_dir, database_url, &["export", what]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect()
}

fn find<'a>(customers: &'a [Value], name: &str) -> &'a Value {
    customers
        .iter()
        .find(|c| c["name"] == name)
        .unwrap_or_else(|| panic!("no customer named {name}"))
}

/// (channel, value) of a customer's contacts, primary first as exported.
fn contacts(customer: &Value) -> Vec<(String, String)> {
    customer["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| {
            (
                c["channel"].as_str().unwrap_or_default().to_string(),
                c["value"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// The rejected rows of an `--errors` report as (line, field).
fn report(file: &Path) -> Vec<(u64, String)> {
    let mut reader = csv::Reader::from_path(file).expect("error report");
    assert_eq!(
        reader.headers().expect("header"),
        vec!["line", "field", "message"]
    );
    reader
        .records()
        .map(|r| {
            let r = r.expect("a report row");
            (r[0].parse().expect("a line number"), r[1].to_string())
        })
        .collect()
}

/// What the mixed fixture's bad rows are rejected for: missing name, bad email, an
/// email already on line 2 (case-folded), a short row, an unknown value class, a phone
/// number already on line 11 (written differently).
fn expected_rejections() -> Vec<(u64, String)> {
    [
        (4, "name"),
        (5, "email"),
        (6, "email"),
        (7, "row"),
        (8, "value_class"),
        (12, "phone"),
    ]
    .into_iter()
    .map(|(line, field)| (line, field.to_string()))
    .collect()
}

fn check_mixed_import(data: &Path, database_url: Option<&str>, errors: &Path) {
    let file = fixture("customers_mixed.csv");
    let output = kefu(
        data,
        database_url,
        &["import", "customers", path(&file), "--errors", path(errors)],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "valid rows are kept: {stderr}");
    assert!(
        text(&output.stdout).contains("imported 4 customers, 6 rows rejected"),
        "{}",
        text(&output.stdout)
    );
    for expected in [
        "line 4, name: must not be empty",
        "line 5, email: `not-an-email` is not an email address",
        "line 6, email: `wang.fang@example.com` is already on line 2",
        "line 7, row: has 3 fields; the header has 13",
        "line 8, value_class: `vip` is not one of key, ordinary",
        "line 12, phone: `+8613900001111` is already on line 11",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    assert_eq!(report(errors), expected_rejections());

    let customers = export(data, database_url, "customers");
    let mut names: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(
        names,
        vec!["David Chen", "Northwind Traders Ltd", "Zhang, Wei", "王芳"]
    );
    // Nothing of a rejected row was written, not even a contact.
    let all: Vec<(String, String)> = customers.iter().flat_map(contacts).collect();
    assert_eq!(all.len(), 9, "{all:?}");
    for absent in [
        "no-name@example.com",
        "carol@example.com",
        "bob@example.com",
        "eve@example.com",
    ] {
        assert!(all.iter().all(|(_, v)| v != absent), "{absent} was written");
    }
    let wang = find(&customers, "王芳");
    assert_eq!(
        contacts(wang),
        vec![
            ("email".to_string(), "wang.fang@example.com".to_string()),
            ("phone".to_string(), "+8613800138000".to_string()),
            ("wechat".to_string(), "wangfang88".to_string()),
        ]
    );
    assert_eq!(wang["lifecycle"], "current");
    assert_eq!(wang["card"], "current");
    assert_eq!(wang["lead_source"], "referral");
    assert_eq!(wang["field_sources"]["name"]["source"], "import");
    let northwind = find(&customers, "Northwind Traders Ltd");
    assert_eq!(northwind["kind"], "organization");
    assert_eq!(
        northwind["value_class"], "key",
        "the Chinese label is understood"
    );
    let zhang = find(&customers, "Zhang, Wei");
    assert_eq!(zhang["lifecycle"], "lost");
    assert_eq!(zhang["position"], "internal");
    assert_eq!(zhang["needs"], "想了解售后政策\n（第二行）");
    let david = find(&customers, "David Chen");
    let emails: Vec<&Value> = david["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter(|c| c["channel"] == "email")
        .collect();
    assert_eq!(emails.len(), 2, "two addresses in one cell");
    assert!(
        emails
            .iter()
            .any(|c| c["value"] == "david@example.com" && c["is_primary"] == true)
    );
}

async fn open_sqlite(data: &Path) -> Store {
    Store::open(&StoreOptions::sqlite_in(data))
        .await
        .expect("open the imported database")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csv_import_keeps_good_rows_and_reports_bad_ones() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    check_mixed_import(&data, None, &dir.path().join("errors.csv"));

    // Imported customers behave like ones made through the API: found by any contact,
    // sorted by pinyin, one audit record for the batch.
    let store = open_sqlite(&data).await;
    let search = |q: &str| CustomerFilter {
        q: Some(q.into()),
        ..CustomerFilter::default()
    };
    let found = store
        .customers(&search("ＷＡＮＧＦＡＮＧ８８"), &PageRequest::default())
        .await
        .expect("search");
    assert_eq!(
        found.items.len(),
        1,
        "full-width search finds the WeChat id"
    );
    assert_eq!(found.items[0].name, "王芳");
    let by_name = store
        .customers(
            &CustomerFilter {
                sort: Some("name".into()),
                ..CustomerFilter::default()
            },
            &PageRequest::default(),
        )
        .await
        .expect("list");
    let names: Vec<&str> = by_name.items.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        vec!["David Chen", "Northwind Traders Ltd", "王芳", "Zhang, Wei"]
    );
    let audit = store
        .audit_list(
            &kefu_store::audit::AuditFilter {
                object_type: Some("customer_import".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .await
        .expect("audit");
    assert_eq!(audit.items.len(), 1, "one record for the batch");
    assert_eq!(audit.items[0].action, "import");
    assert_eq!(audit.items[0].after.as_ref().expect("after")["imported"], 4);
    let history = store
        .lifecycle_history(&by_name.items[0].id)
        .await
        .expect("history");
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].reason, "imported");
    store.close().await;
}

#[test]
fn atomic_import_with_a_bad_row_writes_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let errors = dir.path().join("errors.csv");
    let file = fixture("customers_mixed.csv");
    let output = kefu(
        &data,
        None,
        &[
            "import",
            "customers",
            path(&file),
            "--atomic",
            "--errors",
            path(&errors),
        ],
    );
    assert!(!output.status.success(), "exit code is non-zero");
    assert!(
        text(&output.stderr).contains("nothing imported: 6 rows rejected"),
        "{}",
        text(&output.stderr)
    );
    assert_eq!(report(&errors), expected_rejections());
    assert!(export(&data, None, "customers").is_empty());

    // The good rows alone go in, all of them.
    let good: String = std::fs::read_to_string(&file)
        .expect("fixture")
        .lines()
        .enumerate()
        .filter(|(i, _)| [0, 1, 2, 8, 9, 10].contains(i))
        .map(|(_, l)| format!("{l}\n"))
        .collect();
    let good_file = dir.path().join("good.csv");
    std::fs::write(&good_file, good).expect("write");
    let output = kefu(
        &data,
        None,
        &["import", "customers", path(&good_file), "--atomic"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(text(&output.stdout).contains("imported 4 customers, 0 rows rejected"));
    assert_eq!(export(&data, None, "customers").len(), 4);
}

#[test]
fn contacts_already_stored_are_row_errors() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let file = fixture("customers_mixed.csv");
    let first = kefu(&data, None, &["import", "customers", path(&file)]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let again = kefu(&data, None, &["import", "customers", path(&file)]);
    let stderr = text(&again.stderr);
    assert!(
        !again.status.success(),
        "every row rejected is a failure: {stderr}"
    );
    assert!(
        stderr.contains("line 2, email: `wang.fang@example.com` already belongs to customer"),
        "{stderr}"
    );
    assert!(text(&again.stdout).contains("imported 0 customers, 10 rows rejected"));
    assert_eq!(export(&data, None, "customers").len(), 4);
}

#[test]
fn unknown_columns_stop_the_import_before_any_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let file = dir.path().join("odd.csv");
    std::fs::write(
        &file,
        "\u{feff}Name,Email,nickname,custom.tier\n林小明,lin@example.com,明仔,gold\n",
    )
    .expect("write");
    let output = kefu(&data, None, &["import", "customers", path(&file)]);
    assert!(!output.status.success());
    let stderr = text(&output.stderr);
    assert!(
        stderr.contains("unknown columns: nickname, custom.tier"),
        "{stderr}"
    );
    assert!(export(&data, None, "customers").is_empty());

    let skipped = kefu(
        &data,
        None,
        &[
            "import",
            "customers",
            path(&file),
            "--skip-columns",
            "nickname,custom.tier",
            "--source",
            "purchased_list",
        ],
    );
    assert!(skipped.status.success(), "{}", text(&skipped.stderr));
    let customers = export(&data, None, "customers");
    assert_eq!(customers.len(), 1);
    assert_eq!(
        customers[0]["name"], "林小明",
        "the BOM and header case are ignored"
    );
    assert_eq!(
        customers[0]["field_sources"]["name"]["source"],
        "purchased_list"
    );

    let bad_source = kefu(
        &data,
        None,
        &["import", "customers", path(&file), "--source", "gossip"],
    );
    assert!(!bad_source.status.success());
}

#[test]
fn json_lines_link_organisations_and_referrers() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let errors = dir.path().join("errors.csv");
    let output = kefu(
        &data,
        None,
        &[
            "import",
            "customers",
            path(&fixture("customers.jsonl")),
            "--errors",
            path(&errors),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        report(&errors),
        vec![
            (4, "referrer_id".to_string()),
            (6, "favourite_colour".to_string())
        ]
    );
    let customers = export(&data, None, "customers");
    assert_eq!(customers.len(), 4);
    let company = find(&customers, "深圳华讯科技有限公司");
    assert_eq!(company["id"], "0190a3c2-0000-7000-8000-000000000001");
    let chen = find(&customers, "陈大文");
    assert_eq!(chen["organization_id"], company["id"]);
    assert_eq!(chen["qualification_assessment"]["row"], 2);
    assert_eq!(chen["communication_type"], "cautious");
    assert!(contacts(chen).contains(&("wechat".to_string(), "chendawen".to_string())));
    let alice = find(&customers, "Alice Smith");
    assert_eq!(alice["referrer_id"], chen["id"]);
    assert_eq!(contacts(alice)[0].1, "alice@example.com");
    let larry = find(&customers, "Lost Larry");
    assert_eq!(larry["card"], "lost");
    assert_eq!(larry["lost_reason"], "Moved to a competitor");
    assert_eq!(larry["field_sources"]["name"]["source"], "partner");
}

/// What must survive a round trip: ids, names, links, classifications and contacts
/// (with which is primary, except through CSV, where the first address of a column is
/// the primary one).
fn essence(customers: &[Value], primary: bool) -> Vec<Value> {
    let mut out: Vec<Value> = customers
        .iter()
        .map(|c| {
            let mut contacts: Vec<Value> = c["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .map(|x| {
                    let is_primary = if primary {
                        x["is_primary"].clone()
                    } else {
                        Value::Null
                    };
                    serde_json::json!([x["channel"], x["value"], x["display_value"], is_primary])
                })
                .collect();
            contacts.sort_by_key(|v| v.to_string());
            serde_json::json!({
                "id": c["id"], "name": c["name"], "kind": c["kind"],
                "organization_id": c["organization_id"], "referrer_id": c["referrer_id"],
                "lifecycle": c["lifecycle"], "value_class": c["value_class"],
                "lead_source": c["lead_source"], "qualification": c["qualification"],
                "needs": c["needs"], "contacts": contacts,
            })
        })
        .collect();
    out.sort_by_key(|v| v["id"].to_string());
    out
}

#[test]
fn exports_round_trip_into_a_fresh_database() {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source");
    for file in ["customers_mixed.csv", "customers.jsonl"] {
        let output = kefu(
            &source,
            None,
            &["import", "customers", path(&fixture(file))],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    let original = export(&source, None, "customers");
    assert_eq!(original.len(), 8);

    for (format, name) in [("csv", "customers.csv"), ("jsonl", "customers.jsonl")] {
        let file = dir.path().join(name);
        let output = kefu(
            &source,
            None,
            &[
                "export",
                "customers",
                "--format",
                format,
                "--output",
                path(&file),
            ],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
        let copy = dir.path().join(format!("copy-{format}"));
        let output = kefu(&copy, None, &["import", "customers", path(&file)]);
        assert!(
            output.status.success(),
            "{format}: {}",
            text(&output.stderr)
        );
        assert!(text(&output.stdout).contains("imported 8 customers, 0 rows rejected"));
        let primary = format == "jsonl";
        assert_eq!(
            essence(&export(&copy, None, "customers"), primary),
            essence(&original, primary),
            "{format} round trip"
        );
    }

    // CSV exports of cases and the timeline have a header and one row per record.
    let timeline = kefu(&source, None, &["export", "timeline", "--format", "csv"]);
    assert!(timeline.status.success());
    assert!(text(&timeline.stdout).starts_with("id,customer_id,case_id,"));
    let output = kefu(&source, None, &["export", "cases", "-o", "-"]);
    assert!(output.status.success());
}

#[test]
fn the_benchmark_sample_imports_cleanly_and_is_deterministic() {
    let dir = tempfile::tempdir().expect("temp dir");
    let (a, b) = (dir.path().join("a.csv"), dir.path().join("b.csv"));
    for file in [&a, &b] {
        let output = kefu(
            &dir.path().join("unused"),
            None,
            &[
                "demo",
                "--write-csv",
                path(file),
                "--rows",
                "3000",
                "--seed",
                "11",
            ],
        );
        assert!(output.status.success(), "{}", text(&output.stderr));
    }
    assert!(
        !dir.path().join("unused").exists(),
        "writing a sample touches no database"
    );
    assert_eq!(
        std::fs::read(&a).expect("a"),
        std::fs::read(&b).expect("b"),
        "same seed, same rows"
    );
    let data = dir.path().join("data");
    let output = kefu(&data, None, &["import", "customers", path(&a)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("imported 3000 customers, 0 rows rejected"),
        "{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
}

#[test]
fn import_and_export_on_postgresql() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("unused");
    let url = runtime.block_on(kefu_testkit::fresh_postgres_database());
    check_mixed_import(&data, Some(&url), &dir.path().join("errors.csv"));
    let output = kefu(
        &data,
        Some(&url),
        &["import", "customers", path(&fixture("customers.jsonl"))],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let on_postgres = export(&data, Some(&url), "customers");
    assert_eq!(on_postgres.len(), 8);

    // Atomic on PostgreSQL: one transaction, rolled back.
    let atomic_url = runtime.block_on(kefu_testkit::fresh_postgres_database());
    let output = kefu(
        &data,
        Some(&atomic_url),
        &[
            "import",
            "customers",
            path(&fixture("customers_mixed.csv")),
            "--atomic",
        ],
    );
    assert!(!output.status.success());
    assert!(export(&data, Some(&atomic_url), "customers").is_empty());

    // From PostgreSQL to SQLite through a CSV export.
    let file = dir.path().join("from-postgres.csv");
    let output = kefu(
        &data,
        Some(&url),
        &["export", "customers", "--output", path(&file)],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let sqlite = dir.path().join("sqlite");
    let output = kefu(&sqlite, None, &["import", "customers", path(&file)]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert_eq!(
        essence(&export(&sqlite, None, "customers"), false),
        essence(&on_postgres, false)
    );
}
