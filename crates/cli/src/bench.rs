//! `kefu bench`: drives a real `kefu serve` process over loopback HTTP with concurrent
//! keep-alive clients and reports throughput and latency percentiles, plus the server's
//! resident memory when idle. Results are what docs/benchmarks.md records.

use crate::config::Config;
use crate::{CliError, CliResult};
use http_body_util::{BodyExt as _, Full};
use hyper::body::Bytes;
use kefu_domain::access::Role;
use kefu_store::users::{NewToken, NewUser};
use kefu_store::{Actor, Store, StoreOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    /// `create-cases`, `customer-timeline`, `all` (the two HTTP scenarios), or
    /// `sla-sweep` (the SLA and promise sweep over many open cases, in-process), or
    /// `reports` (the same cases given a history, then every report timed, in-process).
    #[arg(long, default_value = "all")]
    pub scenario: String,
    /// Concurrent clients, one keep-alive connection each.
    #[arg(long, default_value_t = 32)]
    pub clients: usize,
    /// Seconds of measured load per scenario (after one second of warm-up).
    #[arg(long, default_value_t = 10)]
    pub seconds: u64,
    /// Customers to seed for the timeline scenario.
    #[arg(long, default_value_t = 100_000)]
    pub customers: usize,
    /// Timeline entries per seeded customer.
    #[arg(long, default_value_t = 10)]
    pub entries_per_customer: usize,
    /// Open cases to seed for `sla-sweep` (each with two SLA clocks; one promise per ten).
    #[arg(long, default_value_t = 1_000_000)]
    pub open_cases: usize,
    /// Of those, how many cases have clocks (and promises) already due for `sla-sweep`.
    #[arg(long, default_value_t = 10_000)]
    pub due: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
    /// Keep the benchmark's data directory afterwards.
    #[arg(long)]
    pub keep: bool,
}

#[derive(Debug, Serialize)]
struct ScenarioResult {
    scenario: String,
    backend: String,
    clients: usize,
    requests: usize,
    errors: usize,
    seconds: f64,
    throughput_per_s: f64,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct Report {
    machine: String,
    seeded_customers: i64,
    seeded_timeline_entries: i64,
    seed_seconds: f64,
    idle_rss_mb: Option<f64>,
    scenarios: Vec<ScenarioResult>,
}

pub async fn run(config: &Config, args: BenchArgs) -> CliResult<()> {
    if args.scenario == "sla-sweep" || args.scenario == "reports" {
        return sla_sweep(config, &args).await;
    }
    let scenarios: Vec<&str> = match args.scenario.as_str() {
        "all" => vec!["customer-timeline", "create-cases"],
        "create-cases" => vec!["create-cases"],
        "customer-timeline" => vec!["customer-timeline"],
        other => {
            return Err(CliError(format!(
                "--scenario: `{other}` is not one of create-cases, customer-timeline, all, sla-sweep"
            )));
        }
    };
    let data_dir = std::env::temp_dir().join(format!("kefu-bench-{}", std::process::id()));
    let (options, backend) = match &config.database_url {
        Some(url) => (StoreOptions::new(url.clone()), "postgres".to_string()),
        None => (StoreOptions::sqlite_in(&data_dir), "sqlite".to_string()),
    };
    eprintln!(
        "benchmark database: {}",
        if backend == "sqlite" {
            data_dir.display().to_string()
        } else {
            kefu_store::redact_url(&options.url)
        }
    );

    // Seed through the store, then close it: the server process owns the database.
    let store = Store::open(&options).await?;
    if store.customer_count().await? > 0 {
        return Err(CliError(
            "the benchmark database must be empty: point --database-url at a scratch database"
                .into(),
        ));
    }
    let email = "bench@kefu.local";
    store
        .create_user(
            &Actor::cli(),
            NewUser {
                email: email.into(),
                name: None,
                role: Role::Admin,
                password: None,
                team_id: None,
                locale: None,
            },
        )
        .await?;
    let user = store.user_by_email(email).await?;
    let token = store
        .create_token(
            &Actor::cli(),
            &user.id,
            NewToken {
                name: "bench".into(),
                scopes: None,
                expires_at: None,
            },
        )
        .await?
        .secret;
    let seed_started = Instant::now();
    let entries = if scenarios.contains(&"customer-timeline") {
        args.entries_per_customer
    } else {
        0
    };
    let customers = if scenarios.contains(&"customer-timeline") {
        args.customers
    } else {
        1000
    };
    let total_rows = customers * (entries + 1);
    let bar = crate::progress_bar(total_rows as u64, "seeding");
    let ids = store
        .seed_for_bench(customers, entries, &|done| bar.set_position(done as u64))
        .await?;
    bar.finish_and_clear();
    store.analyze().await?;
    let seed_seconds = seed_started.elapsed().as_secs_f64();
    let seeded_customers = store.customer_count().await?;
    let seeded_timeline_entries = store.timeline_count().await?;
    store.close().await;
    eprintln!(
        "seeded {seeded_customers} customers and {seeded_timeline_entries} timeline entries in {seed_seconds:.1} s"
    );

    let server = Server::start(config, &data_dir).await?;
    let mut report = Report {
        machine: machine(),
        seeded_customers,
        seeded_timeline_entries,
        seed_seconds,
        idle_rss_mb: None,
        scenarios: Vec::new(),
    };
    let ids = Arc::new(ids);
    for scenario in scenarios {
        let ids = ids.clone();
        let result = match scenario {
            "customer-timeline" => {
                let result = load(server.address, &args, scenario, &backend, &token, move |n| {
                    let id = &ids[(n * 7919) % ids.len()];
                    vec![
                        ("GET", format!("/api/v1/customers/{id}"), None),
                        ("GET", format!("/api/v1/customers/{id}/timeline?limit=50"), None),
                    ]
                })
                .await?;
                // Idle memory after the reads have warmed every cache the server keeps.
                tokio::time::sleep(Duration::from_secs(3)).await;
                report.idle_rss_mb = server.rss_mb();
                result
            }
            _ => {
                load(server.address, &args, scenario, &backend, &token, move |n| {
                    let customer = &ids[(n * 104729) % ids.len()];
                    let kind = ["consultation", "technical_support", "order", "complaint", "after_sale", "suggestion"][n % 6];
                    let body = serde_json::json!({
                        "customer_id": customer,
                        "kind": kind,
                        "subject": format!("订单 {n} 物流延迟 / order {n} delayed"),
                        "body": "你好，我的订单三天了还没有发货，请帮我查一下。Hello, my order has not shipped after three days.",
                        "channel": "email"
                    });
                    vec![("POST", "/api/v1/cases".to_string(), Some(body.to_string()))]
                })
                .await?
            }
        };
        report.scenarios.push(result);
    }
    server.stop();
    if !args.keep && backend == "sqlite" {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!("machine: {}", report.machine);
        println!(
            "seeded: {} customers, {} timeline entries ({:.1} s)",
            report.seeded_customers, report.seeded_timeline_entries, report.seed_seconds
        );
        if let Some(rss) = report.idle_rss_mb {
            println!("idle server resident memory: {rss:.1} MB");
        }
        println!(
            "{:<18} {:<8} {:>7} {:>9} {:>7} {:>10} {:>8} {:>8} {:>8} {:>8}",
            "scenario",
            "backend",
            "clients",
            "requests",
            "errors",
            "per second",
            "p50 ms",
            "p90 ms",
            "p99 ms",
            "max ms"
        );
        for s in &report.scenarios {
            println!(
                "{:<18} {:<8} {:>7} {:>9} {:>7} {:>10.0} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
                s.scenario,
                s.backend,
                s.clients,
                s.requests,
                s.errors,
                s.throughput_per_s,
                s.p50_ms,
                s.p90_ms,
                s.p99_ms,
                s.max_ms
            );
        }
    }
    Ok(())
}

/// The requests one unit of work sends, in order: method, path, JSON body.
type Plan = Vec<(&'static str, String, Option<String>)>;

async fn load(
    address: std::net::SocketAddr,
    args: &BenchArgs,
    scenario: &str,
    backend: &str,
    token: &str,
    job: impl Fn(usize) -> Plan + Send + Sync + 'static,
) -> CliResult<ScenarioResult> {
    let job = Arc::new(job);
    let warmup_end = Instant::now() + Duration::from_secs(1);
    let end = warmup_end + Duration::from_secs(args.seconds);
    let mut tasks = Vec::new();
    for client_index in 0..args.clients {
        let job = job.clone();
        let token = token.to_string();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(address).await?;
            let mut latencies: Vec<u32> = Vec::new();
            let mut errors = 0usize;
            let mut n = client_index;
            loop {
                let started = Instant::now();
                if started >= end {
                    break;
                }
                let mut ok = true;
                for (method, path, body) in job(n) {
                    ok &= client.send(method, &path, &token, body).await?;
                }
                let elapsed = started.elapsed();
                if started >= warmup_end {
                    latencies.push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
                    if !ok {
                        errors += 1;
                    }
                }
                n += 1_000_003;
            }
            CliResult::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (mut l, e) = task
            .await
            .map_err(|e| CliError(format!("client task failed: {e}")))??;
        latencies.append(&mut l);
        errors += e;
    }
    latencies.sort_unstable();
    let percentile = |p: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let index = ((latencies.len() as f64 * p).ceil() as usize).clamp(1, latencies.len()) - 1;
        f64::from(latencies[index]) / 1000.0
    };
    let seconds = args.seconds as f64;
    Ok(ScenarioResult {
        scenario: scenario.into(),
        backend: backend.into(),
        clients: args.clients,
        requests: latencies.len(),
        errors,
        seconds,
        throughput_per_s: latencies.len() as f64 / seconds,
        p50_ms: percentile(0.50),
        p90_ms: percentile(0.90),
        p99_ms: percentile(0.99),
        max_ms: latencies.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
    })
}

/// One keep-alive HTTP/1.1 connection.
struct Client {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    host: String,
}

impl Client {
    async fn connect(address: std::net::SocketAddr) -> CliResult<Client> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| CliError(format!("HTTP handshake: {e}")))?;
        tokio::spawn(connection);
        Ok(Client {
            sender,
            host: address.to_string(),
        })
    }

    /// Sends a request and reads the whole answer; true for a 2xx status.
    async fn send(
        &mut self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<String>,
    ) -> CliResult<bool> {
        self.sender
            .ready()
            .await
            .map_err(|e| CliError(format!("connection lost: {e}")))?;
        let mut request = hyper::Request::builder()
            .method(method)
            .uri(path)
            .header("host", &self.host)
            .header("authorization", format!("Bearer {token}"));
        if body.is_some() {
            request = request.header("content-type", "application/json");
        }
        let request = request
            .body(Full::new(Bytes::from(body.unwrap_or_default())))
            .map_err(|e| CliError(e.to_string()))?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| CliError(format!("request failed: {e}")))?;
        let ok = response.status().is_success();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| CliError(format!("reading the answer: {e}")))?;
        if !ok {
            tracing::warn!(path, answer = %String::from_utf8_lossy(&body.to_bytes()), "request failed");
        }
        Ok(ok)
    }
}

/// The server under test: this same binary, `kefu serve`, in its own process.
struct Server {
    child: std::process::Child,
    address: std::net::SocketAddr,
}

impl Server {
    async fn start(config: &Config, data_dir: &std::path::Path) -> CliResult<Server> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let address: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
        let exe: PathBuf = std::env::current_exe()?;
        let mut command = std::process::Command::new(exe);
        command
            .arg("serve")
            .arg("--listen")
            .arg(address.to_string())
            .arg("--data-dir")
            .arg(data_dir)
            .env("KEFU_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::null());
        if let Some(url) = &config.database_url {
            command.arg("--database-url").arg(url);
        }
        let child = command.spawn()?;
        let server = Server { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let healthy = match Client::connect(address).await {
                Ok(mut client) => client
                    .send("GET", "/api/v1/health", "-", None)
                    .await
                    .unwrap_or(false),
                Err(_) => false,
            };
            if healthy {
                return Ok(server);
            }
            if Instant::now() > deadline {
                return Err(CliError(
                    "the server did not become healthy within 30 s".into(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    fn rss_mb(&self) -> Option<f64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
        let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb / 1024.0)
    }

    fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    format!("{cores} cores, {cpu}")
}

#[derive(Debug, Serialize)]
struct SweepRun {
    sweep: &'static str,
    seconds: f64,
    clocks_warned: u64,
    clocks_breached: u64,
    promises_alerted: u64,
}

#[derive(Debug, Serialize)]
struct ReportTiming {
    report: &'static str,
    period: &'static str,
    runs: usize,
    median_ms: f64,
    max_ms: f64,
}

#[derive(Debug, Serialize)]
struct SweepReport {
    machine: String,
    backend: String,
    seed: kefu_store::bench::SlaSeed,
    seed_seconds: f64,
    runs: Vec<SweepRun>,
    /// Building the roll-ups of every day from scratch.
    rollup_seconds: Option<f64>,
    rollup_days: Option<u64>,
    reports: Vec<ReportTiming>,
}

/// Times each report five times over three periods: the last 90 days and the last year
/// (both starting mid-day, as a UTC+8 user's days do), and the last 90 days again after
/// changes to cases of three earlier days that the roll-ups have not caught up with.
async fn time_reports(store: &Store) -> CliResult<Vec<ReportTiming>> {
    use kefu_store::reports::Period;
    let until = store.now_ms() + 1;
    let mut timings = Vec::new();
    for (label, days) in [("90 days", 90), ("365 days", 365), ("90 days, 3 dirty", 90)] {
        let period = Period {
            since: until - days * 86_400_000 - 8 * 3_600_000,
            until,
        };
        if label.ends_with("dirty") {
            store.touch_days_for_bench(&[10, 20, 30]).await?;
        }
        for report in [
            "complaints",
            "response-times",
            "complaint-pyramid",
            "first-contact-resolution",
            "service-matrix",
        ] {
            let mut samples = Vec::new();
            for _ in 0..5 {
                let started = Instant::now();
                let bytes = match report {
                    "complaints" => serde_json::to_vec(&store.complaint_report(period).await?),
                    "response-times" => serde_json::to_vec(&store.response_report(period).await?),
                    "complaint-pyramid" => serde_json::to_vec(&store.pyramid_report(period).await?),
                    "first-contact-resolution" => {
                        serde_json::to_vec(&store.fcr_report(period).await?)
                    }
                    _ => serde_json::to_vec(&store.service_matrix(period).await?),
                };
                let _ = bytes.map(|b| b.len());
                samples.push(started.elapsed().as_secs_f64() * 1000.0);
            }
            samples.sort_by(f64::total_cmp);
            timings.push(ReportTiming {
                report,
                period: label,
                runs: samples.len(),
                median_ms: samples[samples.len() / 2],
                max_ms: samples[samples.len() - 1],
            });
        }
    }
    Ok(timings)
}

/// Seeds open cases with clocks in three calendars and times the sweep: once with the
/// due items waiting, then again with nothing due (the incremental cost).
async fn sla_sweep(config: &Config, args: &BenchArgs) -> CliResult<()> {
    let data_dir = std::env::temp_dir().join(format!("kefu-bench-{}", std::process::id()));
    let (options, backend) = match &config.database_url {
        Some(url) => (StoreOptions::new(url.clone()), "postgres".to_string()),
        None => (StoreOptions::sqlite_in(&data_dir), "sqlite".to_string()),
    };
    let store = Store::open(&options).await?;
    if store.customer_count().await? > 0 {
        return Err(CliError(
            "the benchmark database must be empty: point --database-url at a scratch database"
                .into(),
        ));
    }
    let owner = store
        .create_user(
            &Actor::cli(),
            NewUser {
                email: "bench@kefu.local".into(),
                name: None,
                role: Role::Admin,
                password: None,
                team_id: None,
                locale: None,
            },
        )
        .await?;
    let started = Instant::now();
    let bar = crate::progress_bar(args.open_cases as u64, "seeding");
    let seed = store
        .seed_sla_for_bench(args.open_cases, args.due, owner.key, &|done| {
            bar.set_position(done as u64)
        })
        .await?;
    bar.finish_and_clear();
    store.analyze().await?;
    let seed_seconds = started.elapsed().as_secs_f64();
    eprintln!("seeded {seed:?} in {seed_seconds:.1} s");
    let mut runs = Vec::new();
    let mut reports = Vec::new();
    let (mut rollup_seconds, mut rollup_days) = (None, None);
    if args.scenario == "reports" {
        let started = Instant::now();
        store.seed_reports_for_bench().await?;
        eprintln!(
            "gave the cases a history in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        let started = Instant::now();
        let refreshed = store.refresh_reports(Duration::from_secs(3600)).await?;
        rollup_seconds = Some(started.elapsed().as_secs_f64());
        rollup_days = Some(refreshed.days);
        reports = time_reports(&store).await?;
    }
    for sweep in ["with due items", "nothing due"] {
        if args.scenario == "reports" {
            break;
        }
        let started = Instant::now();
        let sla = store.sweep_sla().await?;
        let promises = store.sweep_promises().await?;
        runs.push(SweepRun {
            sweep,
            seconds: started.elapsed().as_secs_f64(),
            clocks_warned: sla.warned,
            clocks_breached: sla.breached,
            promises_alerted: promises.alerted,
        });
    }
    store.close().await;
    if !args.keep && backend == "sqlite" {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    let report = SweepReport {
        machine: machine(),
        backend,
        seed,
        seed_seconds,
        runs,
        rollup_seconds,
        rollup_days,
        reports,
    };
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        );
    } else {
        println!("machine: {}", report.machine);
        println!(
            "seeded ({}): {} open cases, {} clocks ({} due), {} promises ({} due), {} calendars in {:.1} s",
            report.backend,
            report.seed.open_cases,
            report.seed.clocks,
            report.seed.due_clocks,
            report.seed.promises,
            report.seed.due_promises,
            report.seed.calendars,
            report.seed_seconds
        );
        if let (Some(seconds), Some(days)) = (report.rollup_seconds, report.rollup_days) {
            println!("roll-ups of {days} days built in {seconds:.1} s");
        }
        for timing in &report.reports {
            println!(
                "report {:<26} {:<17} median {:>8.1} ms   max {:>8.1} ms   ({} runs)",
                timing.report, timing.period, timing.median_ms, timing.max_ms, timing.runs
            );
        }
        for run in &report.runs {
            println!(
                "sweep {:<15} {:>8.3} s   warned {:>7}  breached {:>7}  promises alerted {:>6}",
                run.sweep,
                run.seconds,
                run.clocks_warned,
                run.clocks_breached,
                run.promises_alerted
            );
        }
    }
    Ok(())
}
