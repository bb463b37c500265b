//! Test harness: a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL is real: the first test that needs it starts a throwaway cluster from the
//! server binaries on this machine (`initdb` + `pg_ctl`, listening on a loopback port),
//! and later tests — in this process or another — reuse it, each in a database of its
//! own. Missing binaries fail the test loudly; nothing is skipped.
//!
//! `KEFU_TEST_DATABASE_URL=postgres://…` points the suite at an existing server instead.

use kefu_store::{Store, StoreOptions};
use std::io::Write as _;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// A store for one test, with what keeps it alive.
pub struct TestDb {
    pub store: Store,
    pub url: String,
    _dir: Option<tempfile::TempDir>,
}

/// Which backend a conformance test runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub async fn open(self) -> TestDb {
        match self {
            Backend::Sqlite => sqlite().await,
            Backend::Postgres => postgres().await,
        }
    }
}

/// A fresh SQLite database in a temporary directory, migrated.
pub async fn sqlite() -> TestDb {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("kefu.sqlite").display());
    let store = Store::open(&StoreOptions::new(url.clone()))
        .await
        .expect("open SQLite store");
    TestDb {
        store,
        url,
        _dir: Some(dir),
    }
}

/// A fresh PostgreSQL database on the shared throwaway cluster, migrated.
pub async fn postgres() -> TestDb {
    let url = fresh_postgres_database().await;
    let mut options = StoreOptions::new(url.clone());
    options.max_connections = 4;
    let store = Store::open(&options).await.expect("open PostgreSQL store");
    TestDb {
        store,
        url,
        _dir: None,
    }
}

/// Creates an empty database on the test cluster and returns its URL.
pub async fn fresh_postgres_database() -> String {
    let server = postgres_server_url().to_string();
    let name = format!("kefu_test_{}_{}", std::process::id(), unique());
    let admin = format!("{server}/postgres");
    let pool = sqlx::PgPool::connect(&admin)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL at {admin}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&pool)
        .await
        .expect("create test database");
    pool.close().await;
    format!("{server}/{name}")
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    NEXT.fetch_add(1, Ordering::SeqCst) * 1_000_000_000 + u64::from(nanos)
}

/// `postgres://user@127.0.0.1:PORT` of the test server (no database part).
pub fn postgres_server_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        if let Ok(url) = std::env::var("KEFU_TEST_DATABASE_URL") {
            return url
                .trim_end_matches('/')
                .rsplit_once('/')
                .map(|(server, _)| server.to_string())
                .unwrap_or(url);
        }
        start_or_reuse_cluster()
    })
}

const USER: &str = "kefu";

fn cluster_root() -> PathBuf {
    std::env::var_os("KEFU_TEST_PG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("kefu-test-pg"))
}

/// Starts the cluster unless a live one is there, under a file lock so that parallel
/// test processes agree on one cluster.
fn start_or_reuse_cluster() -> String {
    let root = cluster_root();
    std::fs::create_dir_all(&root).expect("create the test cluster directory");
    let lock = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(root.join("lock"))
        .expect("open the lock file");
    lock.lock().expect("lock the test cluster directory");
    let port_file = root.join("port");
    let live_port = std::fs::read_to_string(&port_file)
        .ok()
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|port| {
            TcpStream::connect_timeout(&([127, 0, 0, 1], *port).into(), Duration::from_millis(500))
                .is_ok()
        });
    if let Some(port) = live_port {
        return format!("postgres://{USER}@127.0.0.1:{port}");
    }
    let bin = postgres_bin_dir();
    let data = root.join("data");
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("create the data directory");
    let owner = unprivileged_owner();
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::chown(&root, Some(uid), Some(gid)).expect("chown the cluster directory");
        std::os::unix::fs::chown(&data, Some(uid), Some(gid)).expect("chown the data directory");
    }
    run(
        owner,
        Command::new(bin.join("initdb"))
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ]),
    );
    let port = free_port();
    let options = format!(
        "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c shared_buffers=64MB",
        data.display()
    );
    run(
        owner,
        Command::new(bin.join("pg_ctl"))
            .arg("-D")
            .arg(&data)
            .args(["-o", &options, "-l"])
            .arg(root.join("server.log"))
            .args(["-w", "-t", "60", "start"]),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect_timeout(&([127, 0, 0, 1], port).into(), Duration::from_millis(200))
        .is_err()
    {
        assert!(
            Instant::now() < deadline,
            "PostgreSQL did not start listening on port {port}; see {}",
            root.join("server.log").display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut file = std::fs::File::create(&port_file).expect("write the port file");
    writeln!(file, "{port}").expect("write the port file");
    format!("postgres://{USER}@127.0.0.1:{port}")
}

fn run(owner: Option<(u32, u32)>, command: &mut Command) {
    use std::os::unix::process::CommandExt as _;
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
    }
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("find a free port")
}

/// PostgreSQL refuses to run as root. When the tests run as root, the cluster belongs to
/// the `postgres` user (or `nobody`).
fn unprivileged_owner() -> Option<(u32, u32)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let uid_line = status.lines().find(|l| l.starts_with("Uid:"))?;
    let uid: u32 = uid_line.split_whitespace().nth(1)?.parse().ok()?;
    if uid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let lookup = |name: &str| {
        passwd.lines().find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&name))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
    };
    Some(
        lookup("postgres")
            .or_else(|| lookup("nobody"))
            .unwrap_or((65534, 65534)),
    )
}

/// The directory holding `initdb` and `pg_ctl`.
pub fn postgres_bin_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("KEFU_PG_BIN") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_string_lossy().parse::<u32>().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    for dir in std::env::var("PATH").unwrap_or_default().split(':') {
        if Path::new(dir).join("initdb").exists() && Path::new(dir).join("pg_ctl").exists() {
            return PathBuf::from(dir);
        }
    }
    panic!(
        "PostgreSQL server binaries (initdb, pg_ctl) were not found. The conformance suite needs a real PostgreSQL: \
         install it (`apt-get install postgresql`), set KEFU_PG_BIN to its bin directory, \
         or set KEFU_TEST_DATABASE_URL to an existing server."
    );
}

/// Runs an async test body once per backend, each on a fresh database:
///
/// ```text
/// kefu_testkit::conformance!(creates_a_customer, rejects_duplicate_contacts);
/// async fn creates_a_customer(store: Store) { … }
/// ```
#[macro_export]
macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::Backend::Sqlite.open().await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = $crate::Backend::Postgres.open().await;
                    super::$name(db.store.clone()).await;
                }
            )*
        }
    };
}
