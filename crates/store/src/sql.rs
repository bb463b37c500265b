//! A thin layer that lets one SQL text run on either backend.
//!
//! Queries are written once with `$1`-style placeholders (SQLite accepts them too),
//! arguments are owned [`Arg`] values, and rows are read through [`Row::get`], which
//! requires the type to decode on both backends. This keeps concrete `SqlitePool` and
//! `PgPool` underneath (no `AnyPool`, which cannot decode everything) without writing
//! each repository twice.

use crate::StoreError;
use sqlx::{Decode, Postgres, Sqlite, Type};
use std::borrow::Cow;

/// Which SQL dialect is underneath, for the few statements that differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// An owned, typed query argument. Nulls keep their type so PostgreSQL can check them.
#[derive(Debug, Clone)]
pub enum Arg {
    Int(Option<i64>),
    Float(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    Bytes(Option<Vec<u8>>),
}

macro_rules! arg_from {
    ($ty:ty, $variant:ident, $conv:expr) => {
        impl From<$ty> for Arg {
            fn from(value: $ty) -> Self {
                Arg::$variant(Some($conv(value)))
            }
        }
        impl From<Option<$ty>> for Arg {
            fn from(value: Option<$ty>) -> Self {
                Arg::$variant(value.map($conv))
            }
        }
    };
}
arg_from!(i64, Int, |v| v);
arg_from!(i32, Int, i64::from);
arg_from!(u32, Int, i64::from);
arg_from!(f64, Float, |v| v);
arg_from!(bool, Bool, |v| v);
arg_from!(String, Text, |v| v);
arg_from!(&str, Text, |v: &str| v.to_string());
arg_from!(&String, Text, |v: &String| v.clone());
arg_from!(Vec<u8>, Bytes, |v| v);

/// A query: SQL text plus its arguments.
#[derive(Debug, Clone)]
pub struct Q {
    sql: Cow<'static, str>,
    args: Vec<Arg>,
}

/// Starts a query from static SQL text.
pub fn q(sql: &'static str) -> Q {
    Q {
        sql: Cow::Borrowed(sql),
        args: Vec::new(),
    }
}

/// Starts a query from SQL built at run time. Only for text assembled from fixed
/// fragments (column names from a whitelist, placeholders); values always go in `bind`.
pub fn q_dynamic(sql: String) -> Q {
    Q {
        sql: Cow::Owned(sql),
        args: Vec::new(),
    }
}

impl Q {
    pub fn bind(mut self, arg: impl Into<Arg>) -> Self {
        self.args.push(arg.into());
        self
    }

    fn sqlite(self) -> sqlx::query::Query<'static, Sqlite, <Sqlite as sqlx::Database>::Arguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Float(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
            };
        }
        query
    }

    fn postgres(
        self,
    ) -> sqlx::query::Query<'static, Postgres, <Postgres as sqlx::Database>::Arguments> {
        let mut query = sqlx::query(sqlx::AssertSqlSafe(self.sql));
        for arg in self.args {
            query = match arg {
                Arg::Int(v) => query.bind(v),
                Arg::Float(v) => query.bind(v),
                Arg::Text(v) => query.bind(v),
                Arg::Bool(v) => query.bind(v),
                Arg::Bytes(v) => query.bind(v),
            };
        }
        query
    }
}

/// A row from either backend.
pub enum Row {
    Sqlite(sqlx::sqlite::SqliteRow),
    Postgres(sqlx::postgres::PgRow),
}

/// Types that decode from both backends.
pub trait Column:
    for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}
impl<T> Column for T where
    T: for<'r> Decode<'r, Sqlite> + Type<Sqlite> + for<'r> Decode<'r, Postgres> + Type<Postgres>
{
}

impl Row {
    pub fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        use sqlx::Row as _;
        match self {
            Row::Sqlite(row) => row.try_get(column),
            Row::Postgres(row) => row.try_get(column),
        }
        .map_err(|error| StoreError::Database(format!("column {column}: {error}")))
    }
}

/// Where a query runs: inside a transaction, or on a pool for one-off reads.
pub enum Conn {
    SqliteTx(sqlx::Transaction<'static, Sqlite>),
    PostgresTx(sqlx::Transaction<'static, Postgres>),
    SqlitePool(sqlx::SqlitePool),
    PostgresPool(sqlx::PgPool),
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::SqliteTx(_) | Conn::SqlitePool(_) => Dialect::Sqlite,
            Conn::PostgresTx(_) | Conn::PostgresPool(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(&mut self, query: Q) -> Result<u64, StoreError> {
        let affected = match self {
            Conn::SqliteTx(tx) => query.sqlite().execute(&mut **tx).await?.rows_affected(),
            Conn::PostgresTx(tx) => query.postgres().execute(&mut **tx).await?.rows_affected(),
            Conn::SqlitePool(pool) => query.sqlite().execute(&*pool).await?.rows_affected(),
            Conn::PostgresPool(pool) => query.postgres().execute(&*pool).await?.rows_affected(),
        };
        Ok(affected)
    }

    pub async fn fetch_all(&mut self, query: Q) -> Result<Vec<Row>, StoreError> {
        let rows = match self {
            Conn::SqliteTx(tx) => query
                .sqlite()
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Conn::PostgresTx(tx) => query
                .postgres()
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
            Conn::SqlitePool(pool) => query
                .sqlite()
                .fetch_all(&*pool)
                .await?
                .into_iter()
                .map(Row::Sqlite)
                .collect(),
            Conn::PostgresPool(pool) => query
                .postgres()
                .fetch_all(&*pool)
                .await?
                .into_iter()
                .map(Row::Postgres)
                .collect(),
        };
        Ok(rows)
    }

    pub async fn fetch_optional(&mut self, query: Q) -> Result<Option<Row>, StoreError> {
        let row = match self {
            Conn::SqliteTx(tx) => query
                .sqlite()
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Sqlite),
            Conn::PostgresTx(tx) => query
                .postgres()
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
            Conn::SqlitePool(pool) => query
                .sqlite()
                .fetch_optional(&*pool)
                .await?
                .map(Row::Sqlite),
            Conn::PostgresPool(pool) => query
                .postgres()
                .fetch_optional(&*pool)
                .await?
                .map(Row::Postgres),
        };
        Ok(row)
    }

    pub async fn fetch_one(&mut self, query: Q) -> Result<Row, StoreError> {
        self.fetch_optional(query)
            .await?
            .ok_or_else(|| StoreError::Database("query returned no row".into()))
    }

    /// Reads one scalar from the first column named `value`.
    pub async fn scalar<T: Column>(&mut self, query: Q) -> Result<T, StoreError> {
        self.fetch_one(query).await?.get("value")
    }

    /// Commits a transaction; a pool connection has nothing to commit.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Conn::SqliteTx(tx) => tx.commit().await?,
            Conn::PostgresTx(tx) => tx.commit().await?,
            Conn::SqlitePool(_) | Conn::PostgresPool(_) => {}
        }
        Ok(())
    }
}

/// Escapes `%`, `_` and `\` for a `LIKE … ESCAPE '\'` pattern.
pub fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Builds a query from fixed fragments and bound values: `and("c.status = $?", value)`
/// numbers the placeholder. Values never enter the text.
pub struct Builder {
    sql: String,
    args: Vec<Arg>,
}

impl Builder {
    pub fn new(base: &str) -> Builder {
        Builder {
            sql: base.to_string(),
            args: Vec::new(),
        }
    }

    /// Appends ` AND condition`, binding one value to each `$?` in it (all the same value).
    pub fn and(&mut self, condition: &str, value: impl Into<Arg>) -> &mut Builder {
        let value = value.into();
        self.sql.push_str(" AND ");
        let mut rest = condition;
        while let Some(at) = rest.find("$?") {
            self.sql.push_str(&rest[..at]);
            self.args.push(value.clone());
            self.sql.push_str(&format!("${}", self.args.len()));
            rest = &rest[at + 2..];
        }
        self.sql.push_str(rest);
        self
    }

    /// Appends the keyset condition of a sort after a cursor's position.
    pub fn after(
        &mut self,
        sort: &crate::page::Sort,
        alias: &str,
        key: Arg,
        id: i64,
    ) -> &mut Builder {
        self.sql.push_str(" AND ");
        self.sql.push_str(&sort.after(alias, self.args.len() + 1));
        self.args.push(key);
        self.args.push(Arg::Int(Some(id)));
        self
    }

    pub fn push(&mut self, text: &str) -> &mut Builder {
        self.sql.push_str(text);
        self
    }

    pub fn query(self) -> Q {
        Q {
            sql: Cow::Owned(self.sql),
            args: self.args,
        }
    }
}

impl Builder {
    /// Appends `($n, $n+1, …)` binding each value: one row of a multi-row INSERT.
    pub fn values(&mut self, values: &[Arg]) -> &mut Builder {
        self.sql.push('(');
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.args.push(value.clone());
            self.sql.push_str(&format!("${}", self.args.len()));
        }
        self.sql.push(')');
        self
    }
}
