//! `kefu bench --scenario sla-sweep` on a small scale, on both backends: the seeded due
//! items are exactly what the first sweep handles, and the second sweep finds nothing.

use serde_json::Value;
use std::process::Command;

fn sweep_report(database_url: Option<&str>) -> Value {
    let mut command = Command::new(env!("CARGO_BIN_EXE_kefu"));
    command
        .env_remove("KEFU_DATABASE_URL")
        .env_remove("KEFU_DATA_DIR")
        .env_remove("KEFU_CONFIG")
        .env("KEFU_LOG", "warn");
    if let Some(url) = database_url {
        command.arg("--database-url").arg(url);
    }
    let output = command
        .args([
            "bench",
            "--scenario",
            "sla-sweep",
            "--open-cases",
            "3000",
            "--due",
            "200",
            "--json",
        ])
        .output()
        .expect("run kefu");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("one JSON report")
}

fn check(report: &Value) {
    let seed = &report["seed"];
    assert_eq!(seed["open_cases"], 3000);
    assert_eq!(seed["clocks"], 6000);
    assert_eq!(seed["calendars"], 3);
    assert_eq!(seed["promises"], 300);
    assert_eq!(seed["due_promises"], 20);
    let due = seed["due_clocks"].as_u64().expect("due clocks");
    // 200 cases started two weeks ago: both clocks of each are past due in any calendar.
    assert_eq!(due, 400, "{report:#}");
    let first = &report["runs"][0];
    assert_eq!(
        first["clocks_breached"].as_u64().expect("breached")
            + first["clocks_warned"].as_u64().expect("warned"),
        due
    );
    assert_eq!(first["promises_alerted"], 20);
    let second = &report["runs"][1];
    assert_eq!(second["clocks_breached"], 0);
    assert_eq!(second["clocks_warned"], 0);
    assert_eq!(second["promises_alerted"], 0);
}

#[test]
fn the_sweep_benchmark_sweeps_what_is_due_on_sqlite() {
    check(&sweep_report(None));
}

#[test]
fn the_sweep_benchmark_sweeps_what_is_due_on_postgresql() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let url = runtime.block_on(kefu_testkit::fresh_postgres_database());
    check(&sweep_report(Some(&url)));
}
