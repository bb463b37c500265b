//! A thin layer that lets one SQL text run on either backend.
//!
//! Queries are written once with `$1`-style placeholders (SQLite accepts them too),
//! arguments are owned [`Arg`] values, and rows are read through [`Row::get`] for the
//! [`Column`] types both backends decode. PostgreSQL runs on sqlx; SQLite on rusqlite,
//! called directly: its statements take microseconds, so a hop to a worker thread per
//! statement (what an async SQLite driver does) would cost more than the statement.

use crate::StoreError;
use crate::db::{SqliteHandle, SqlitePools};
use rusqlite::types::{Value, ValueRef};
use sqlx::Postgres;
use std::borrow::Cow;
use std::sync::Arc;

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

impl rusqlite::ToSql for Arg {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Arg::Int(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Arg::Float(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Real(*v)),
            Arg::Text(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Text(v.as_bytes())),
            Arg::Bool(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Integer(i64::from(*v))),
            Arg::Bytes(Some(v)) => ToSqlOutput::Borrowed(ValueRef::Blob(v)),
            Arg::Int(None)
            | Arg::Float(None)
            | Arg::Text(None)
            | Arg::Bool(None)
            | Arg::Bytes(None) => ToSqlOutput::Borrowed(ValueRef::Null),
        })
    }
}

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

    /// Prepares (from the connection's statement cache) and binds. `$N` placeholders
    /// are bound by their number, wherever and however often they appear: SQLite numbers
    /// its parameter slots in order of first appearance, which [`placeholder_order`]
    /// reads off the text (asking SQLite for each slot's name is quadratic).
    fn sqlite_statement<'c>(
        &self,
        connection: &'c rusqlite::Connection,
    ) -> Result<rusqlite::CachedStatement<'c>, StoreError> {
        let mut statement = connection.prepare_cached(&self.sql)?;
        let order = placeholder_order(&self.sql);
        if order.len() != statement.parameter_count() {
            return Err(StoreError::Database(format!(
                "the placeholders of `{}` are not all of the form $N",
                self.sql
            )));
        }
        for (slot, number) in order.iter().enumerate() {
            let arg = self.args.get(number.wrapping_sub(1)).ok_or_else(|| {
                StoreError::Database(format!("no argument for ${number} in `{}`", self.sql))
            })?;
            statement.raw_bind_parameter(slot + 1, arg)?;
        }
        Ok(statement)
    }

    fn sqlite_execute(&self, connection: &rusqlite::Connection) -> Result<u64, StoreError> {
        let mut statement = self.sqlite_statement(connection)?;
        let changed = statement.raw_execute()?;
        Ok(changed as u64)
    }

    fn sqlite_fetch(
        &self,
        connection: &rusqlite::Connection,
        limit: Option<usize>,
    ) -> Result<Vec<Row>, StoreError> {
        let mut statement = self.sqlite_statement(connection)?;
        let columns: Arc<[String]> = statement
            .column_names()
            .into_iter()
            .map(str::to_string)
            .collect();
        let width = columns.len();
        let mut rows = statement.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next()? {
            let mut values = Vec::with_capacity(width);
            for index in 0..width {
                values.push(match row.get_ref(index)? {
                    ValueRef::Null => Value::Null,
                    ValueRef::Integer(i) => Value::Integer(i),
                    ValueRef::Real(f) => Value::Real(f),
                    ValueRef::Text(t) => Value::Text(String::from_utf8_lossy(t).into_owned()),
                    ValueRef::Blob(b) => Value::Blob(b.to_vec()),
                });
            }
            out.push(Row::Sqlite(SqliteRow {
                columns: columns.clone(),
                values,
            }));
            if limit.is_some_and(|l| out.len() >= l) {
                break;
            }
        }
        Ok(out)
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(failure, _) = &error {
            match failure.extended_code {
                rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                | rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                    return StoreError::conflict(
                        "duplicate",
                        None,
                        "a record with the same unique value already exists",
                    );
                }
                rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                    return StoreError::conflict(
                        "reference_missing",
                        None,
                        "a referenced record does not exist",
                    );
                }
                _ => {}
            }
        }
        StoreError::Database(error.to_string())
    }
}

/// The distinct `$N` numbers of a statement in order of first appearance, skipping
/// quoted text.
fn placeholder_order(sql: &str) -> Vec<usize> {
    let bytes = sql.as_bytes();
    let mut order: Vec<usize> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    let mut index = 0;
    while index < bytes.len() {
        match bytes[index] {
            quote @ (b'\'' | b'"') => {
                index += 1;
                while index < bytes.len() && bytes[index] != quote {
                    index += 1;
                }
                index += 1;
            }
            b'$' => {
                let start = index + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end].is_ascii_digit() {
                    end += 1;
                }
                if let Some(number) = sql[start..end]
                    .parse::<usize>()
                    .ok()
                    .filter(|n| seen.insert(*n))
                {
                    order.push(number);
                }
                index = end.max(start);
            }
            _ => index += 1,
        }
    }
    order
}

/// A SQLite row: its column names (shared by the rows of one query) and values.
pub struct SqliteRow {
    columns: Arc<[String]>,
    values: Vec<Value>,
}

/// A row from either backend.
pub enum Row {
    Sqlite(SqliteRow),
    Postgres(sqlx::postgres::PgRow),
}

/// The types a column is read as, on either backend.
pub trait Column: Sized {
    fn from_sqlite(value: &Value) -> Option<Self>;
    fn from_postgres(row: &sqlx::postgres::PgRow, column: &str) -> Result<Self, sqlx::Error>;
}

macro_rules! column {
    ($ty:ty, |$v:ident| $sqlite:expr) => {
        impl Column for $ty {
            fn from_sqlite($v: &Value) -> Option<Self> {
                $sqlite
            }
            fn from_postgres(
                row: &sqlx::postgres::PgRow,
                column: &str,
            ) -> Result<Self, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
        }
        impl Column for Option<$ty> {
            fn from_sqlite(value: &Value) -> Option<Self> {
                match value {
                    Value::Null => Some(None),
                    other => <$ty as Column>::from_sqlite(other).map(Some),
                }
            }
            fn from_postgres(
                row: &sqlx::postgres::PgRow,
                column: &str,
            ) -> Result<Self, sqlx::Error> {
                sqlx::Row::try_get(row, column)
            }
        }
    };
}
column!(i64, |v| match v {
    Value::Integer(i) => Some(*i),
    _ => None,
});
column!(f64, |v| match v {
    Value::Real(f) => Some(*f),
    Value::Integer(i) => Some(*i as f64),
    _ => None,
});
column!(bool, |v| match v {
    Value::Integer(i) => Some(*i != 0),
    _ => None,
});
column!(String, |v| match v {
    Value::Text(t) => Some(t.clone()),
    _ => None,
});
column!(Vec<u8>, |v| match v {
    Value::Blob(b) => Some(b.clone()),
    Value::Text(t) => Some(t.clone().into_bytes()),
    _ => None,
});

impl Row {
    pub fn get<T: Column>(&self, column: &str) -> Result<T, StoreError> {
        match self {
            Row::Sqlite(row) => {
                let index = row
                    .columns
                    .iter()
                    .position(|c| c == column)
                    .ok_or_else(|| StoreError::Database(format!("no column {column}")))?;
                let value = &row.values[index];
                T::from_sqlite(value).ok_or_else(|| {
                    StoreError::Database(format!(
                        "column {column}: cannot read {value:?} as {}",
                        std::any::type_name::<T>()
                    ))
                })
            }
            Row::Postgres(row) => T::from_postgres(row, column)
                .map_err(|error| StoreError::Database(format!("column {column}: {error}"))),
        }
    }
}

/// Where a query runs: inside a transaction, or on a pool for one-off reads.
pub enum Conn {
    /// A SQLite connection held for a transaction (the writer, or a reader snapshot).
    Sqlite(SqliteHandle),
    /// One-off SQLite reads: each statement borrows a reader for its duration.
    SqlitePool(Arc<SqlitePools>),
    PostgresTx(sqlx::Transaction<'static, Postgres>),
    PostgresPool(sqlx::PgPool),
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        match self {
            Conn::Sqlite(_) | Conn::SqlitePool(_) => Dialect::Sqlite,
            Conn::PostgresTx(_) | Conn::PostgresPool(_) => Dialect::Postgres,
        }
    }

    /// Runs a statement and returns the number of rows it changed.
    pub async fn execute(&mut self, query: Q) -> Result<u64, StoreError> {
        let affected = match self {
            Conn::Sqlite(handle) => query.sqlite_execute(handle.connection())?,
            Conn::SqlitePool(pools) => {
                let reader = pools.reader().await?;
                query.sqlite_execute(reader.connection())?
            }
            Conn::PostgresTx(tx) => query.postgres().execute(&mut **tx).await?.rows_affected(),
            Conn::PostgresPool(pool) => query.postgres().execute(&*pool).await?.rows_affected(),
        };
        Ok(affected)
    }

    pub async fn fetch_all(&mut self, query: Q) -> Result<Vec<Row>, StoreError> {
        let rows = match self {
            Conn::Sqlite(handle) => query.sqlite_fetch(handle.connection(), None)?,
            Conn::SqlitePool(pools) => {
                let reader = pools.reader().await?;
                query.sqlite_fetch(reader.connection(), None)?
            }
            Conn::PostgresTx(tx) => query
                .postgres()
                .fetch_all(&mut **tx)
                .await?
                .into_iter()
                .map(Row::Postgres)
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
            Conn::Sqlite(handle) => query.sqlite_fetch(handle.connection(), Some(1))?.pop(),
            Conn::SqlitePool(pools) => {
                let reader = pools.reader().await?;
                query.sqlite_fetch(reader.connection(), Some(1))?.pop()
            }
            Conn::PostgresTx(tx) => query
                .postgres()
                .fetch_optional(&mut **tx)
                .await?
                .map(Row::Postgres),
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

    /// Commits a transaction; a pool connection has nothing to commit. A transaction
    /// dropped without commit is rolled back.
    pub async fn commit(self) -> Result<(), StoreError> {
        match self {
            Conn::Sqlite(handle) => handle.commit().await?,
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

impl Dialect {
    /// A scalar subquery that gathers rows into one JSON array of objects, as text, so
    /// that a page's related lists come back with its main row in one round trip.
    ///
    /// `fields` pairs each object key with the expression that fills it; `from` is the
    /// rest of the subquery (`FROM … WHERE …`, usually a derived table that applies the
    /// `LIMIT`); `order_by` orders the array. No rows give `[]`. Booleans come back as
    /// `0`/`1` from SQLite and `true`/`false` from PostgreSQL: read them with
    /// [`JsonRow::boolean`].
    pub fn json_array(self, fields: &[(&str, &str)], from: &str, order_by: &str) -> String {
        let pairs = fields
            .iter()
            .map(|(key, expression)| format!("'{key}', {expression}"))
            .collect::<Vec<_>>()
            .join(", ");
        match self {
            Dialect::Sqlite => format!(
                "(SELECT json_group_array(json_object({pairs}) ORDER BY {order_by}) {from})"
            ),
            Dialect::Postgres => format!(
                "(SELECT COALESCE(json_agg(json_build_object({pairs}) ORDER BY {order_by}), '[]')::text {from})"
            ),
        }
    }
}

/// One object of a [`Dialect::json_array`] column, read with the same typed care as a
/// [`Row`].
pub struct JsonRow(serde_json::Map<String, serde_json::Value>);

impl JsonRow {
    /// Parses a column produced by [`Dialect::json_array`].
    pub fn parse_all(row: &Row, column: &str) -> Result<Vec<JsonRow>, StoreError> {
        let text: String = row.get(column)?;
        let values: Vec<serde_json::Map<String, serde_json::Value>> =
            serde_json::from_str(&text)
                .map_err(|error| StoreError::Database(format!("column {column}: {error}")))?;
        Ok(values.into_iter().map(JsonRow).collect())
    }

    fn field(&self, key: &str) -> Result<&serde_json::Value, StoreError> {
        self.0
            .get(key)
            .ok_or_else(|| StoreError::Database(format!("no field {key}")))
    }

    fn wrong(key: &str, wanted: &str) -> StoreError {
        StoreError::Database(format!("field {key} is not {wanted}"))
    }

    pub fn text(&self, key: &str) -> Result<String, StoreError> {
        self.optional_text(key)?
            .ok_or_else(|| Self::wrong(key, "text"))
    }

    pub fn optional_text(&self, key: &str) -> Result<Option<String>, StoreError> {
        match self.field(key)? {
            serde_json::Value::Null => Ok(None),
            serde_json::Value::String(text) => Ok(Some(text.clone())),
            _ => Err(Self::wrong(key, "text")),
        }
    }

    pub fn int(&self, key: &str) -> Result<i64, StoreError> {
        self.field(key)?
            .as_i64()
            .ok_or_else(|| Self::wrong(key, "an integer"))
    }

    /// A boolean column: JSON `true`/`false` (PostgreSQL) or `1`/`0` (SQLite).
    pub fn boolean(&self, key: &str) -> Result<bool, StoreError> {
        match self.field(key)? {
            serde_json::Value::Bool(value) => Ok(*value),
            serde_json::Value::Number(n) if n.as_i64() == Some(0) => Ok(false),
            serde_json::Value::Number(n) if n.as_i64() == Some(1) => Ok(true),
            _ => Err(Self::wrong(key, "a boolean")),
        }
    }

    pub fn label<T: kefu_domain::Labelled>(&self, key: &str) -> Result<T, StoreError> {
        let text = self.text(key)?;
        T::parse(&text).map_err(|e| StoreError::Database(format!("stored {key}: {e}")))
    }

    pub fn optional_label<T: kefu_domain::Labelled>(
        &self,
        key: &str,
    ) -> Result<Option<T>, StoreError> {
        self.optional_text(key)?
            .map(|text| {
                T::parse(&text).map_err(|e| StoreError::Database(format!("stored {key}: {e}")))
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_numbered_in_order_of_first_appearance() {
        assert_eq!(
            placeholder_order("SELECT $2, $1, $2 WHERE x = '$9' AND y = $10"),
            vec![2, 1, 10]
        );
        assert_eq!(
            placeholder_order("VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $9, 1)"),
            (1..=9).collect::<Vec<_>>()
        );
    }

    /// kefu's reads join and bind; a SQLite that re-plans such a statement on every run
    /// (3.54 does) costs a third of the write path. Guard the bundled version.
    #[test]
    fn cached_joins_are_not_prepared_again() {
        let connection = rusqlite::Connection::open_in_memory().expect("open");
        connection
            .execute_batch(
                "CREATE TABLE a (id INTEGER PRIMARY KEY, b_id BIGINT); CREATE TABLE b (id INTEGER PRIMARY KEY, name TEXT);
                 INSERT INTO b VALUES (1, 'x'); INSERT INTO a VALUES (1, 1), (2, 1);",
            )
            .expect("schema");
        let query = q("SELECT a.id, b.name FROM a JOIN b ON b.id = a.b_id WHERE a.id = $1");
        for id in [1i64, 2, 1, 2] {
            let rows = query
                .clone()
                .bind(id)
                .sqlite_fetch(&connection, None)
                .expect("fetch");
            assert_eq!(rows.len(), 1);
        }
        let statement = connection
            .prepare_cached("SELECT a.id, b.name FROM a JOIN b ON b.id = a.b_id WHERE a.id = $1")
            .expect("cached");
        assert_eq!(
            statement.get_status(rusqlite::StatementStatus::RePrepare),
            0
        );
    }
}
