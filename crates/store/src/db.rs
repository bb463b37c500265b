//! Opening the database and handing out connections.

use crate::sql::{Conn, Dialect};
use crate::{Clock, Result, StoreError, SystemClock};
use sqlx::postgres::PgPoolOptions;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OwnedMutexGuard, OwnedSemaphorePermit, Semaphore};

/// How to open the store.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// `sqlite:PATH` / `sqlite://PATH` or `postgres://…` / `postgresql://…`.
    pub url: String,
    /// Connections for reads (SQLite) or for everything (PostgreSQL).
    pub max_connections: u32,
}

impl StoreOptions {
    pub fn new(url: impl Into<String>) -> Self {
        StoreOptions {
            url: url.into(),
            max_connections: 8,
        }
    }

    /// The embedded default: a SQLite file in the data directory.
    pub fn sqlite_in(data_dir: &Path) -> Self {
        StoreOptions::new(format!(
            "sqlite://{}",
            data_dir.join("kefu.sqlite").display()
        ))
    }
}

#[derive(Clone)]
enum Pools {
    Sqlite(Arc<SqlitePools>),
    Postgres(sqlx::PgPool),
}

/// SQLite allows one writer at a time. Writers queue for the one writer connection on a
/// fair async mutex instead of spinning in SQLite's busy handler; readers use WAL
/// snapshots on connections of their own and never wait for the writer.
pub struct SqlitePools {
    writer: Arc<tokio::sync::Mutex<rusqlite::Connection>>,
    readers: Mutex<Vec<rusqlite::Connection>>,
    reader_permits: Arc<Semaphore>,
    path: PathBuf,
}

fn open_sqlite(path: &Path, read_only: bool) -> Result<rusqlite::Connection> {
    use rusqlite::OpenFlags;
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let connection = rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|e| StoreError::Database(format!("cannot open {}: {e}", path.display())))?;
    connection.busy_timeout(Duration::from_secs(10))?;
    connection.set_prepared_statement_cache_capacity(256);
    // WAL with synchronous=NORMAL survives application crashes; a power cut may lose
    // the last transactions but never corrupts the file.
    // Page caches: 16 MiB for the writer, 4 MiB per reader; beyond that the operating
    // system's file cache serves reads, and an idle server stays small.
    let pragmas = if read_only {
        "PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -4000;"
    } else {
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -16000;"
    };
    connection.execute_batch(pragmas)?;
    Ok(connection)
}

impl SqlitePools {
    fn open(path: &Path, readers: u32) -> Result<Arc<SqlitePools>> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Database(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let writer = open_sqlite(path, false)?;
        // Checkpoints copy the WAL into the database file and fsync it: slow, and not the
        // business of the request that happens to cross the threshold. A thread of their
        // own does them instead, without blocking the writer or the readers.
        writer.execute_batch("PRAGMA wal_autocheckpoint = 0;")?;
        let pools = Arc::new(SqlitePools {
            writer: Arc::new(tokio::sync::Mutex::new(writer)),
            readers: Mutex::new(Vec::new()),
            reader_permits: Arc::new(Semaphore::new(readers.max(1) as usize)),
            path: path.to_path_buf(),
        });
        let checkpointer = open_sqlite(path, false)?;
        let weak = Arc::downgrade(&pools);
        std::thread::Builder::new()
            .name("kefu-sqlite-checkpoint".into())
            .spawn(move || checkpoint_loop(checkpointer, weak))
            .map_err(|e| {
                StoreError::Database(format!("cannot start the checkpoint thread: {e}"))
            })?;
        Ok(pools)
    }

    /// Borrows a read-only connection until the guard is dropped.
    pub(crate) async fn reader(self: &Arc<Self>) -> Result<ReaderGuard> {
        let permit = self
            .reader_permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Database("the store is closed".into()))?;
        let idle = self.readers.lock().ok().and_then(|mut idle| idle.pop());
        let connection = match idle {
            Some(connection) => connection,
            None => open_sqlite(&self.path, true)?,
        };
        Ok(ReaderGuard {
            connection: Some(connection),
            pools: self.clone(),
            _permit: permit,
        })
    }

    async fn writer(&self) -> OwnedMutexGuard<rusqlite::Connection> {
        self.writer.clone().lock_owned().await
    }
}

/// Checkpoints the WAL every quarter second while it has grown, until the store is gone.
fn checkpoint_loop(connection: rusqlite::Connection, pools: std::sync::Weak<SqlitePools>) {
    loop {
        std::thread::sleep(Duration::from_millis(250));
        let Some(pools) = pools.upgrade() else { return };
        if pools.reader_permits.is_closed() {
            return;
        }
        drop(pools);
        // (busy, frames in the WAL, frames checkpointed); errors are retried next time.
        let _ = connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()));
    }
}

/// A borrowed reader; goes back to the pool when dropped.
pub struct ReaderGuard {
    connection: Option<rusqlite::Connection>,
    pools: Arc<SqlitePools>,
    _permit: OwnedSemaphorePermit,
}

impl ReaderGuard {
    pub(crate) fn connection(&self) -> &rusqlite::Connection {
        // Present from creation until drop.
        #[allow(clippy::expect_used)]
        self.connection.as_ref().expect("reader connection")
    }
}

impl Drop for ReaderGuard {
    fn drop(&mut self) {
        if let (Some(connection), Ok(mut idle)) =
            (self.connection.take(), self.pools.readers.lock())
        {
            idle.push(connection);
        }
    }
}

enum Held {
    Writer(OwnedMutexGuard<rusqlite::Connection>),
    Reader(ReaderGuard),
}

/// A SQLite connection held for the length of a transaction. Dropped without
/// [`SqliteHandle::commit`], the transaction is rolled back — also when the request that
/// owned it is cancelled.
pub struct SqliteHandle {
    held: Held,
    open: bool,
}

impl SqliteHandle {
    fn begin(held: Held, statement: &'static str) -> Result<SqliteHandle> {
        let mut handle = SqliteHandle { held, open: false };
        handle.run(statement)?;
        handle.open = true;
        Ok(handle)
    }

    /// BEGIN, COMMIT and ROLLBACK run thousands of times a second: keep them prepared.
    fn run(&self, statement: &'static str) -> Result<()> {
        self.connection().prepare_cached(statement)?.raw_execute()?;
        Ok(())
    }

    pub(crate) fn connection(&self) -> &rusqlite::Connection {
        match &self.held {
            Held::Writer(guard) => guard,
            Held::Reader(reader) => reader.connection(),
        }
    }

    pub(crate) fn commit(mut self) -> Result<()> {
        self.open = false;
        self.run("COMMIT")
    }
}

impl Drop for SqliteHandle {
    fn drop(&mut self) {
        if self.open {
            let _ = self.run("ROLLBACK");
        }
    }
}

/// The store: pools, the clock, and every repository operation (in the modules beside
/// this one, as `impl Store` blocks).
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    pub(crate) clock: Arc<dyn Clock>,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    pub async fn open(options: &StoreOptions) -> Result<Store> {
        let store = Store::connect(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Opens the database without migrating (for `kefu migrate`).
    pub async fn connect(options: &StoreOptions) -> Result<Store> {
        let url = options.url.as_str();
        let pools = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(options.max_connections.max(2))
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .map_err(|e| StoreError::Database(format!("cannot connect to PostgreSQL: {e}")))?;
            Pools::Postgres(pool)
        } else if let Some(path) = url
            .strip_prefix("sqlite://")
            .or_else(|| url.strip_prefix("sqlite:"))
        {
            Pools::Sqlite(SqlitePools::open(Path::new(path), options.max_connections)?)
        } else {
            return Err(StoreError::Database(format!(
                "unsupported database URL `{}`: use sqlite://PATH or postgres://…",
                redact_url(url)
            )));
        };
        Ok(Store {
            pools,
            clock: Arc::new(SystemClock),
        })
    }

    /// Replaces the clock (tests use a fixed one).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Store {
        self.clock = clock;
        self
    }

    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn dialect(&self) -> Dialect {
        match self.pools {
            Pools::Sqlite(_) => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.pools {
            Pools::Sqlite(pools) => Some(&pools.path),
            Pools::Postgres(_) => None,
        }
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`) so that two writers never deadlock upgrading a read lock.
    pub(crate) async fn write(&self) -> Result<Conn> {
        Ok(match &self.pools {
            Pools::Sqlite(pools) => Conn::Sqlite(SqliteHandle::begin(
                Held::Writer(pools.writer().await),
                "BEGIN IMMEDIATE",
            )?),
            Pools::Postgres(pool) => Conn::PostgresTx(pool.begin().await?),
        })
    }

    /// A read-only snapshot for reads that must agree with each other.
    pub(crate) async fn snapshot(&self) -> Result<Conn> {
        Ok(match &self.pools {
            Pools::Sqlite(pools) => Conn::Sqlite(SqliteHandle::begin(
                Held::Reader(pools.reader().await?),
                "BEGIN",
            )?),
            Pools::Postgres(pool) => Conn::PostgresTx(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// A connection for single-statement reads.
    pub(crate) fn read(&self) -> Conn {
        match &self.pools {
            Pools::Sqlite(pools) => Conn::SqlitePool(pools.clone()),
            Pools::Postgres(pool) => Conn::PostgresPool(pool.clone()),
        }
    }

    /// Runs a multi-statement script in a write transaction (migrations).
    pub(crate) async fn raw_script(conn: &mut Conn, script: &'static str) -> Result<()> {
        match conn {
            Conn::Sqlite(handle) => handle.connection().execute_batch(script)?,
            Conn::PostgresTx(tx) => {
                sqlx::raw_sql(script).execute(&mut **tx).await?;
            }
            Conn::SqlitePool(_) | Conn::PostgresPool(_) => {
                return Err(StoreError::Database(
                    "scripts run only inside a transaction".into(),
                ));
            }
        }
        Ok(())
    }

    /// A consistent online copy of the SQLite database (`VACUUM INTO`), taken while
    /// kefu keeps serving. Not available on PostgreSQL, which has `pg_dump`.
    pub async fn backup_sqlite(&self, target: &Path) -> Result<()> {
        let Pools::Sqlite(pools) = &self.pools else {
            return Err(StoreError::conflict(
                "unsupported",
                None,
                "kefu backup copies the SQLite database; for PostgreSQL use pg_dump",
            ));
        };
        if target.exists() {
            return Err(StoreError::conflict(
                "exists",
                Some("target"),
                format!("{} already exists", target.display()),
            ));
        }
        let target_text = target
            .to_str()
            .ok_or_else(|| StoreError::conflict("invalid", Some("target"), "path is not UTF-8"))?;
        let reader = pools.reader().await?;
        reader
            .connection()
            .execute("VACUUM INTO ?1", [target_text])?;
        Ok(())
    }

    /// Closes the pools. On SQLite the WAL is checkpointed into the main file.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite(pools) => {
                pools.reader_permits.close();
                if let Ok(mut idle) = pools.readers.lock() {
                    idle.clear();
                }
                let writer = pools.writer().await;
                let _ = writer.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

/// A database URL with its password hidden, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let credentials = &url[scheme_end + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{}:***{}", &url[..scheme_end + 3], user, &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn passwords_are_hidden() {
        assert_eq!(
            super::redact_url("postgres://kefu:s3cret@db:5432/kefu"),
            "postgres://kefu:***@db:5432/kefu"
        );
        assert_eq!(
            super::redact_url("sqlite://./kefu-data/kefu.sqlite"),
            "sqlite://./kefu-data/kefu.sqlite"
        );
    }
}
