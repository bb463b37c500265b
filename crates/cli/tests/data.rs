//! `kefu import`, `kefu export` and `kefu demo` through the real binary, on SQLite and
//! (for import) on the test PostgreSQL server.

use std::path::Path;
use std::process::{Command, Output};

fn kefu(data_dir: &Path, database_url: Option<&str>, args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env("KEFU_LOG", "warn");
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    command.output().expect("run kefu")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Exported records as JSON values.
fn export(data_dir: &Path, database_url: Option<&str>, what: &str) -> Vec<serde_json::Value> {
    let output = kefu(
        data_dir,
        database_url,
        &["export", what, "--format", "jsonl"],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    text(&output.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect()
}

const MIXED_CSV: &str = "name,email,phone,lifecycle,lead_source\n\
张三,zhang@example.com,+86 138 0013 8000,potential,referral\n\
,missing@example.com,,target,\n\
李四,not-an-email,,current,\n\
王五,wang@example.com,,zombie,\n\
赵六,ZHANG@example.com,,lost,\n\
孙七,sun@example.com,,potential,,one too many\n\
Alice Smith,alice@example.com,,target,web_search\n";

fn check_mixed_import(database_url: Option<&str>) {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, MIXED_CSV).expect("write csv");
    let report = dir.path().join("errors.csv");
    let data = dir.path().join("data");
    let output = kefu(
        &data,
        database_url,
        &[
            "import",
            "customers",
            file.to_str().expect("utf-8"),
            "--errors",
            report.to_str().expect("utf-8"),
        ],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "valid rows are kept: {stderr}");
    for expected in [
        "line 3, name: must not be empty",
        "line 4, email: `not-an-email` is not an email address",
        "line 5, lifecycle: `zombie` is not one of potential, target, current, lost",
        "line 6, email: `zhang@example.com` is already on line 2",
        "line 7, row: has 6 fields; the header has 5",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    let report = std::fs::read_to_string(&report).expect("error report");
    assert_eq!(
        report.lines().count(),
        6,
        "a header and five rejected rows:\n{report}"
    );
    let customers = export(&data, database_url, "customers");
    let mut names: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, vec!["Alice Smith", "张三"]);
    let zhang = customers
        .iter()
        .find(|c| c["name"] == "张三")
        .expect("张三");
    assert_eq!(
        zhang["contacts"].as_array().map(Vec::len),
        Some(2),
        "email and phone: {zhang}"
    );
    assert_eq!(zhang["lead_source"], "referral");
}

#[test]
fn import_keeps_valid_rows_and_reports_the_rest() {
    check_mixed_import(None);
}

#[test]
fn import_on_postgresql_behaves_the_same() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(kefu_testkit::fresh_postgres_database());
    check_mixed_import(Some(&url));
}

#[test]
fn atomic_import_writes_nothing_when_a_row_is_bad() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("customers.csv");
    std::fs::write(&file, MIXED_CSV).expect("write csv");
    let data = dir.path().join("data");
    let output = kefu(
        &data,
        None,
        &[
            "import",
            "customers",
            file.to_str().expect("utf-8"),
            "--atomic",
        ],
    );
    assert!(!output.status.success());
    assert!(
        text(&output.stderr).contains("nothing imported"),
        "{}",
        text(&output.stderr)
    );
    assert!(export(&data, None, "customers").is_empty());
}

#[test]
fn json_lines_import_and_an_unreadable_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("customers.jsonl");
    std::fs::write(
        &file,
        "{\"name\": \"陈大文\", \"kind\": \"person\", \"contacts\": [{\"channel\": \"wechat\", \"value\": \"@ChenDaWen\"}], \"lifecycle\": \"current\"}\n\
         {\"name\": 42}\n\
         not json at all\n\
         {\"name\": \"Acme Ltd\", \"kind\": \"organization\", \"value_class\": \"key\"}\n",
    )
    .expect("write jsonl");
    let data = dir.path().join("data");
    let output = kefu(
        &data,
        None,
        &["import", "customers", file.to_str().expect("utf-8")],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("line 2"), "{stderr}");
    assert!(stderr.contains("line 3"), "{stderr}");
    let customers = export(&data, None, "customers");
    assert_eq!(customers.len(), 2);
    let chen = customers
        .iter()
        .find(|c| c["name"] == "陈大文")
        .expect("陈大文");
    assert_eq!(chen["contacts"][0]["value"], "chendawen");
    assert_eq!(chen["lifecycle"], "current");

    let missing = kefu(
        &data,
        None,
        &[
            "import",
            "customers",
            dir.path().join("nope.csv").to_str().expect("utf-8"),
        ],
    );
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("nope.csv"),
        "{}",
        text(&missing.stderr)
    );
}

#[test]
fn demo_is_alive_and_exports_round_trip() {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("demo");
    let output = kefu(&data, None, &["demo"]);
    assert!(output.status.success(), "{}", text(&output.stderr));
    assert!(
        text(&output.stdout).contains("admin@kefu.demo"),
        "{}",
        text(&output.stdout)
    );

    let customers = export(&data, None, "customers");
    assert!(
        customers.len() >= 200,
        "hundreds of customers: {}",
        customers.len()
    );
    for state in ["potential", "target", "current", "lost"] {
        assert!(
            customers.iter().any(|c| c["lifecycle"] == state),
            "no {state} customer"
        );
    }
    assert!(customers.iter().any(|c| c["kind"] == "organization"));
    assert!(customers.iter().any(|c| {
        c["name"]
            .as_str()
            .is_some_and(|n| n.chars().any(|ch| ('\u{4e00}'..='\u{9fff}').contains(&ch)))
    }));
    assert!(
        customers
            .iter()
            .any(|c| c["name"].as_str().is_some_and(|n| n.is_ascii()))
    );
    let cases = export(&data, None, "cases");
    for kind in [
        "consultation",
        "technical_support",
        "order",
        "complaint",
        "after_sale",
        "suggestion",
    ] {
        assert!(cases.iter().any(|c| c["kind"] == kind), "no {kind} case");
    }
    for status in ["new", "open", "solved", "closed", "merged"] {
        assert!(
            cases.iter().any(|c| c["status"] == status),
            "no {status} case"
        );
    }
    let timeline = export(&data, None, "timeline");
    for kind in [
        "case_created",
        "message",
        "case_transfer",
        "lifecycle",
        "visit",
    ] {
        assert!(
            timeline.iter().any(|t| t["kind"] == kind),
            "no {kind} touchpoint"
        );
    }

    // Running it again does not fail or duplicate the dataset.
    let again = kefu(&data, None, &["demo"]);
    assert!(again.status.success(), "{}", text(&again.stderr));
    assert_eq!(export(&data, None, "customers").len(), customers.len());

    // A CSV export of the customers imports into a fresh database with the same people.
    let csv = dir.path().join("customers.csv");
    let exported = kefu(
        &data,
        None,
        &[
            "export",
            "customers",
            "--format",
            "csv",
            "--output",
            csv.to_str().expect("utf-8"),
        ],
    );
    assert!(exported.status.success(), "{}", text(&exported.stderr));
    let header = std::fs::read_to_string(&csv)
        .expect("csv")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let custom: Vec<&str> = header
        .split(',')
        .filter(|c| c.starts_with("custom."))
        .collect();
    let copy = dir.path().join("copy");
    let mut args = vec!["import", "customers", csv.to_str().expect("utf-8")];
    let skip = custom.join(",");
    if !custom.is_empty() {
        args.extend(["--skip-columns", skip.as_str()]);
    }
    let imported = kefu(&copy, None, &args);
    assert!(imported.status.success(), "{}", text(&imported.stderr));
    let copied = export(&copy, None, "customers");
    assert_eq!(copied.len(), customers.len(), "{}", text(&imported.stderr));
    let mut original_names: Vec<&str> = customers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    let mut copied_names: Vec<&str> = copied.iter().filter_map(|c| c["name"].as_str()).collect();
    original_names.sort();
    copied_names.sort();
    assert_eq!(original_names, copied_names);
}

#[test]
fn undecodable_and_unterminated_rows_are_rejected_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("customers.csv");
    let mut bytes = b"name,email\nGood One,good@example.com\n".to_vec();
    bytes.extend_from_slice(b"Bad \xff\xfe Name,bad@example.com\n");
    bytes.extend_from_slice(b"Good Two,two@example.com\n\"never closed,x@example.com\n");
    std::fs::write(&file, bytes).expect("write csv");
    let data = dir.path().join("data");
    let output = kefu(
        &data,
        None,
        &["import", "customers", file.to_str().expect("utf-8")],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.contains("line 3"),
        "the undecodable row is named: {stderr}"
    );
    let mut names: Vec<String> = export(&data, None, "customers")
        .iter()
        .filter_map(|c| c["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    assert_eq!(names, vec!["Good One", "Good Two"]);
}
