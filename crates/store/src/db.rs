//! Opening the database and handing out connections.

use crate::sql::{Conn, Dialect};
use crate::{Clock, Result, StoreError, SystemClock};
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

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
    /// SQLite allows one writer at a time. Writers queue on a one-connection pool (a fair
    /// async queue) instead of spinning in SQLite's busy handler; readers use WAL
    /// snapshots on their own pool and never wait for the writer.
    Sqlite {
        write: sqlx::SqlitePool,
        read: sqlx::SqlitePool,
        path: PathBuf,
    },
    Postgres(sqlx::PgPool),
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

    /// Opens the database without migrating (for `kefu migrate --status` and backups).
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
            let path = PathBuf::from(path);
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                std::fs::create_dir_all(parent).map_err(|e| {
                    StoreError::Database(format!("cannot create {}: {e}", parent.display()))
                })?;
            }
            let connect = SqliteConnectOptions::from_str("sqlite://")
                .map_err(|e| StoreError::Database(e.to_string()))?
                .filename(&path)
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                // WAL with NORMAL is durable across application crashes; a power cut
                // may lose the last transactions but never corrupts the file.
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .pragma("temp_store", "memory")
                .pragma("cache_size", "-16000");
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(connect.clone())
                .await
                .map_err(|e| {
                    StoreError::Database(format!("cannot open {}: {e}", path.display()))
                })?;
            let read = SqlitePoolOptions::new()
                .max_connections(options.max_connections.max(1))
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(connect.read_only(true))
                .await
                .map_err(|e| {
                    StoreError::Database(format!("cannot open {}: {e}", path.display()))
                })?;
            Pools::Sqlite { write, read, path }
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
            Pools::Sqlite { .. } => Dialect::Sqlite,
            Pools::Postgres(_) => Dialect::Postgres,
        }
    }

    /// The SQLite file, when the store is SQLite.
    pub fn sqlite_path(&self) -> Option<&Path> {
        match &self.pools {
            Pools::Sqlite { path, .. } => Some(path),
            Pools::Postgres(_) => None,
        }
    }

    /// A write transaction. On SQLite it takes the write lock at once (`BEGIN
    /// IMMEDIATE`) so that two writers never deadlock upgrading a read lock.
    pub(crate) async fn write(&self) -> Result<Conn> {
        Ok(match &self.pools {
            Pools::Sqlite { write, .. } => {
                Conn::SqliteTx(write.begin_with("BEGIN IMMEDIATE").await?)
            }
            Pools::Postgres(pool) => Conn::PostgresTx(pool.begin().await?),
        })
    }

    /// A read-only snapshot for reads that must agree with each other.
    pub(crate) async fn snapshot(&self) -> Result<Conn> {
        Ok(match &self.pools {
            Pools::Sqlite { read, .. } => Conn::SqliteTx(read.begin().await?),
            Pools::Postgres(pool) => Conn::PostgresTx(
                pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?,
            ),
        })
    }

    /// A connection for single-statement reads.
    pub(crate) fn read(&self) -> Conn {
        match &self.pools {
            Pools::Sqlite { read, .. } => Conn::SqlitePool(read.clone()),
            Pools::Postgres(pool) => Conn::PostgresPool(pool.clone()),
        }
    }

    /// Runs a multi-statement script in a write transaction (migrations).
    pub(crate) async fn raw_script(conn: &mut Conn, script: &'static str) -> Result<()> {
        match conn {
            Conn::SqliteTx(tx) => {
                sqlx::raw_sql(script).execute(&mut **tx).await?;
            }
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
        let Pools::Sqlite { read, .. } = &self.pools else {
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
        sqlx::query("VACUUM INTO $1")
            .bind(target_text)
            .execute(read)
            .await?;
        Ok(())
    }

    /// Closes the pools, letting SQLite checkpoint its WAL.
    pub async fn close(&self) {
        match &self.pools {
            Pools::Sqlite { write, read, .. } => {
                read.close().await;
                write.close().await;
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
