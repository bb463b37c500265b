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
///
/// **Group commit.** Each write runs inside a savepoint of a shared transaction. When it
/// finishes while other writers are queued, it leaves the transaction open for them and
/// waits; the last one in the queue (or the first after [`BATCH_MAX_UNITS`] units or
/// [`BATCH_MAX_AGE`]) commits for all, and every unit learns the outcome before it answers
/// its caller. A unit that fails rolls back to its savepoint and leaves the others intact.
/// One commit writes the shared pages once for many units: at 32 concurrent clients this
/// triples the rate of case creation.
pub struct SqlitePools {
    writer: Arc<tokio::sync::Mutex<WriterState>>,
    /// Writers waiting for the writer connection.
    queued_writers: std::sync::atomic::AtomicUsize,
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
            writer: Arc::new(tokio::sync::Mutex::new(WriterState {
                connection: writer,
                batch: None,
                next_batch: 0,
            })),
            queued_writers: std::sync::atomic::AtomicUsize::new(0),
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

    /// Waits for the writer connection, counted as queued while waiting.
    async fn writer(&self) -> OwnedMutexGuard<WriterState> {
        use std::sync::atomic::Ordering;
        struct Queued<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Queued<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, Ordering::SeqCst);
            }
        }
        self.queued_writers.fetch_add(1, Ordering::SeqCst);
        let _queued = Queued(&self.queued_writers);
        self.writer.clone().lock_owned().await
    }

    fn writers_queued(&self) -> bool {
        self.queued_writers
            .load(std::sync::atomic::Ordering::SeqCst)
            > 0
    }
}

/// A batch stays open for at most this many units …
pub const BATCH_MAX_UNITS: usize = 32;
/// … and at most this long.
pub const BATCH_MAX_AGE: Duration = Duration::from_millis(5);

/// The writer connection and the shared transaction open on it, if any.
pub struct WriterState {
    connection: rusqlite::Connection,
    batch: Option<Batch>,
    next_batch: u64,
}

struct Batch {
    id: u64,
    units: usize,
    started: std::time::Instant,
    waiters: Vec<tokio::sync::oneshot::Sender<std::result::Result<(), String>>>,
}

impl WriterState {
    fn run(&self, statement: &'static str) -> Result<()> {
        self.connection.prepare_cached(statement)?.raw_execute()?;
        Ok(())
    }

    /// Opens the shared transaction if none is open, then the unit's savepoint.
    fn begin_unit(&mut self) -> Result<()> {
        if self.batch.is_none() {
            self.run("BEGIN IMMEDIATE")?;
            self.next_batch += 1;
            self.batch = Some(Batch {
                id: self.next_batch,
                units: 0,
                started: std::time::Instant::now(),
                waiters: Vec::new(),
            });
        }
        self.run("SAVEPOINT unit")
    }

    /// Commits the shared transaction and tells every waiting unit how it went.
    fn commit_batch(&mut self) -> Result<()> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        let result = self.run("COMMIT");
        if result.is_err() {
            let _ = self.run("ROLLBACK");
        }
        let outcome = result
            .as_ref()
            .map(|_| ())
            .map_err(|e| format!("the shared commit failed: {e}"));
        for waiter in batch.waiters {
            let _ = waiter.send(outcome.clone());
        }
        result
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
    Writer(OwnedMutexGuard<WriterState>, Arc<SqlitePools>),
    Reader(ReaderGuard),
    /// The writer after its unit ended.
    Done,
}

/// A SQLite connection held for the length of a transaction. Dropped without
/// [`SqliteHandle::commit`], the transaction is rolled back — also when the request that
/// owned it is cancelled.
pub struct SqliteHandle {
    held: Held,
    open: bool,
}

impl SqliteHandle {
    async fn begin_write(pools: &Arc<SqlitePools>) -> Result<SqliteHandle> {
        let mut guard = pools.writer().await;
        guard.begin_unit()?;
        Ok(SqliteHandle {
            held: Held::Writer(guard, pools.clone()),
            open: true,
        })
    }

    fn begin_read(reader: ReaderGuard) -> Result<SqliteHandle> {
        reader.connection().prepare_cached("BEGIN")?.raw_execute()?;
        Ok(SqliteHandle {
            held: Held::Reader(reader),
            open: true,
        })
    }

    pub(crate) fn connection(&self) -> &rusqlite::Connection {
        match &self.held {
            Held::Writer(guard, _) => &guard.connection,
            Held::Reader(reader) => reader.connection(),
            // Unreachable: a handle is consumed by commit and only dropped after.
            Held::Done => unreachable_connection(),
        }
    }

    /// Ends the unit. A reader's snapshot simply ends; a writer's unit is released into
    /// the shared transaction, which is committed now or by a writer queued behind.
    pub(crate) async fn commit(mut self) -> Result<()> {
        self.open = false;
        match std::mem::replace(&mut self.held, Held::Done) {
            Held::Reader(reader) => {
                reader
                    .connection()
                    .prepare_cached("COMMIT")?
                    .raw_execute()?;
                Ok(())
            }
            Held::Writer(mut guard, pools) => {
                if let Err(error) = guard.run("RELEASE unit") {
                    let _ = guard.run("ROLLBACK TO unit");
                    let _ = guard.run("RELEASE unit");
                    finish_batch_if_idle(&mut guard, &pools);
                    return Err(error);
                }
                let Some(batch) = guard.batch.as_mut() else {
                    return Ok(());
                };
                batch.units += 1;
                let defer = pools.writers_queued()
                    && batch.units < BATCH_MAX_UNITS
                    && batch.started.elapsed() < BATCH_MAX_AGE;
                if !defer {
                    return guard.commit_batch();
                }
                let (sender, mut receiver) = tokio::sync::oneshot::channel();
                batch.waiters.push(sender);
                let batch_id = batch.id;
                drop(guard);
                loop {
                    match tokio::time::timeout(BATCH_MAX_AGE, &mut receiver).await {
                        Ok(Ok(outcome)) => return outcome.map_err(StoreError::Database),
                        Ok(Err(_)) => {
                            return Err(StoreError::Database(
                                "the shared transaction was abandoned".into(),
                            ));
                        }
                        Err(_) => {
                            // The writers queued behind went away: commit the batch ourselves.
                            let mut guard = pools.writer.clone().lock_owned().await;
                            if guard.batch.as_ref().is_some_and(|b| b.id == batch_id) {
                                let _ = guard.commit_batch();
                            }
                        }
                    }
                }
            }
            Held::Done => Ok(()),
        }
    }
}

#[allow(clippy::panic)]
fn unreachable_connection() -> &'static rusqlite::Connection {
    panic!("a finished SQLite handle was used")
}

/// After a unit ends without work to keep: commit the shared transaction unless a writer
/// queued behind will (so that no transaction stays open on an idle connection).
fn finish_batch_if_idle(guard: &mut WriterState, pools: &SqlitePools) {
    if !pools.writers_queued() {
        let _ = guard.commit_batch();
    }
}

impl Drop for SqliteHandle {
    fn drop(&mut self) {
        if !self.open {
            return;
        }
        match &mut self.held {
            Held::Writer(guard, pools) => {
                let _ = guard.run("ROLLBACK TO unit");
                let _ = guard.run("RELEASE unit");
                finish_batch_if_idle(guard, pools);
            }
            Held::Reader(reader) => {
                let _ = reader
                    .connection()
                    .prepare_cached("ROLLBACK")
                    .and_then(|mut s| s.raw_execute());
            }
            Held::Done => {}
        }
    }
}

/// Compiled calendars by id: (version, calendar).
pub(crate) type CalendarCache =
    std::collections::HashMap<i64, (i64, Arc<kefu_domain::calendar::Calendar>)>;

/// The store: pools, the clock, and every repository operation (in the modules beside
/// this one, as `impl Store` blocks).
#[derive(Clone)]
pub struct Store {
    pools: Pools,
    pub(crate) clock: Arc<dyn Clock>,
    /// Compiled business calendars by id, with the version they were compiled from. The
    /// database stays the truth: a lookup reads the version and recompiles on change.
    pub(crate) calendars: Arc<Mutex<CalendarCache>>,
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
            calendars: Arc::default(),
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
            Pools::Sqlite(pools) => Conn::Sqlite(SqliteHandle::begin_write(pools).await?),
            Pools::Postgres(pool) => Conn::PostgresTx(pool.begin().await?),
        })
    }

    /// A read-only snapshot for reads that must agree with each other.
    pub(crate) async fn snapshot(&self) -> Result<Conn> {
        Ok(match &self.pools {
            Pools::Sqlite(pools) => Conn::Sqlite(SqliteHandle::begin_read(pools.reader().await?)?),
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
                let mut writer = pools.writer().await;
                let _ = writer.commit_batch();
                let _ = writer
                    .connection
                    .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)");
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
