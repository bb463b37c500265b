//! Bulk import of customers (批量导入): many rows at once, each checked like
//! [`Store::create_customer`] checks one.
//!
//! A batch (up to [`MAX_BATCH_ROWS`] rows) is checked in Rust — by a [`BatchPreparer`],
//! which a caller may run on another thread while the previous batch is written — then
//! checked for duplicate contacts and ids against itself and the database (lookups of a
//! hundred values), then written: the customers, their contacts, their first
//! lifecycle state, and ONE audit record for the batch (`import` / `customer_import`).
//! Rows that break a rule come back as [`RowError`]s naming the line and the field; the
//! others are written. PostgreSQL gets multi-row `INSERT … RETURNING`; SQLite, which
//! runs in-process, gets single-row statements prepared once (see `write_rows_sqlite`).
//!
//! An imported customer is stored exactly as an API-created one would be (the same
//! search text, sort key, field sources and lifecycle record), so lists, search and the
//! customer page cannot tell them apart, except that the first lifecycle record says
//! `imported` and the fields' source is the import's.
//!
//! [`CustomerImport`] runs a whole file: committing every [`COMMIT_ROWS`] rows, or with
//! `atomic` all batches in one transaction that the caller commits or rolls back.

use crate::audit;
use crate::customers::{CustomFieldDefinition, FieldSource, NewCustomer};
use crate::sql::{Arg, Conn, q_dynamic};
use crate::{Actor, Clock, Result, Store, StoreError, new_public_id};
use kefu_domain::contacts::{ContactChannel, NormalisedContact};
use kefu_domain::customers::{
    CommunicationType, CustomerKind, InformationSource, LeadSource, LifecycleState, Position,
    Qualification, SupplyChainRole, ValueClass, builtin_field_kind,
};
use kefu_domain::{DomainError, Labelled, Timestamp, optional_text, required_text, text};
use serde::Serialize;
use serde_json::{Map, Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

/// The most rows in one batch (one duplicate check, one audit record); larger inputs
/// are split.
pub const MAX_BATCH_ROWS: usize = 1000;

/// Bound parameters per multi-row statement (PostgreSQL allows 65535).
const MAX_PARAMS: usize = 30_000;

/// Values per lookup query (`… IN ($1, …)`). Fixed-size chunks keep the statement
/// text the same from batch to batch, so it is prepared once.
const LOOKUP_CHUNK: usize = 100;

/// One customer to import, as read from a file.
#[derive(Debug, Clone, Default)]
pub struct ImportRow {
    /// Where the row came from (its line in the file), for the report.
    pub line: u64,
    /// Keep this public id instead of giving a new one (re-importing an export).
    pub id: Option<String>,
    /// The customer. `organization_id` and `referrer_id` may name a customer already
    /// stored or one on an earlier row of the same import.
    pub customer: NewCustomer,
    /// Why the customer was lost, for a row whose lifecycle is `lost`.
    pub lost_reason: Option<String>,
}

/// A rejected row: its line, the field at fault and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RowError {
    pub line: u64,
    /// The field (for a CSV file: the column) that broke a rule; `row` for the row as a
    /// whole.
    pub field: String,
    pub message: String,
}

impl RowError {
    pub fn new(line: u64, field: impl Into<String>, message: impl Into<String>) -> Self {
        RowError {
            line,
            field: field.into(),
            message: message.into(),
        }
    }

    /// A domain rule broken on `line`, with the domain's field name.
    pub fn from_domain(line: u64, error: &DomainError) -> Self {
        RowError::new(line, error.field(), domain_message(error))
    }
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}, {}: {}", self.line, self.field, self.message)
    }
}

/// The message of a domain error without its field prefix.
pub fn domain_message(error: &DomainError) -> String {
    match error {
        DomainError::Invalid { message, .. } => message.clone(),
        DomainError::UnknownVariant { value, allowed, .. } => {
            format!("`{value}` is not one of {allowed}")
        }
        DomainError::TransitionNotAllowed { .. } => error.to_string(),
    }
}

/// How an import runs.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// Where the information came from, for rows that do not say (`import` by default;
    /// `purchased_list`, `partner`, `public_source` for external lists).
    pub source: InformationSource,
    /// What the audit log calls this import (the file name, say).
    pub label: String,
}

impl Default for ImportOptions {
    fn default() -> Self {
        ImportOptions {
            source: InformationSource::Import,
            label: String::new(),
        }
    }
}

/// A customer written by an import.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ImportedCustomer {
    pub line: u64,
    pub id: String,
}

/// What one batch did.
#[derive(Debug, Clone, Default)]
pub struct BatchOutcome {
    pub imported: Vec<ImportedCustomer>,
    /// Rejected rows, in line order.
    pub rejected: Vec<RowError>,
}

/// Totals of a whole import.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ImportTotals {
    /// The id of the import in the audit log (`object_id` of its records).
    pub import_id: String,
    /// Rows written; after [`CustomerImport::commit`], rows stored.
    pub imported: u64,
    /// Rows stored for good so far (committed).
    pub committed_rows: u64,
    pub rejected: u64,
    pub batches: u64,
    /// Whether the import ended with its rows stored (false after a rollback).
    pub committed: bool,
}

/// Rows a non-atomic import writes per transaction. A batch is validated and audited
/// on its own, but committing every batch would write the pages the batch touched in
/// the random-keyed indexes (sort key, contact address) to the write-ahead log over and
/// over; committing every few dozen batches writes them once. A crash loses at most
/// this many rows of a non-atomic import; they are reported as not imported.
pub const COMMIT_ROWS: u64 = 50_000;

/// SQLite's page cache for the writer while an import runs, in KiB (negative: KiB, as
/// `PRAGMA cache_size` takes it). Inserting into indexes keyed by name and address
/// touches pages all over them; a cache that holds them saves re-reading each page.
const IMPORT_CACHE_KIB: i64 = 256 * 1024;

/// An import in progress. Without `atomic` rows are committed every [`COMMIT_ROWS`]
/// (and at [`CustomerImport::commit`]); with it, everything waits for `commit`, and
/// [`CustomerImport::rollback`] (or dropping the import) takes it all back.
pub struct CustomerImport {
    store: Store,
    actor: Actor,
    options: ImportOptions,
    definitions: Arc<Vec<CustomFieldDefinition>>,
    /// The open transaction.
    tx: Option<Conn>,
    atomic: bool,
    /// Rows written in the open transaction.
    pending: u64,
    /// The writer's page cache before the import (SQLite), restored at the end.
    cache_size: Option<i64>,
    totals: ImportTotals,
}

impl Store {
    /// Starts an import. With `atomic`, the transaction opens now and holds the write
    /// lock (on SQLite) until [`CustomerImport::commit`] or [`CustomerImport::rollback`].
    pub async fn begin_customer_import(
        &self,
        actor: &Actor,
        options: ImportOptions,
        atomic: bool,
    ) -> Result<CustomerImport> {
        let definitions = Arc::new(self.custom_fields().await?);
        let mut import = CustomerImport {
            store: self.clone(),
            actor: actor.clone(),
            options,
            definitions,
            tx: None,
            atomic,
            pending: 0,
            cache_size: None,
            totals: ImportTotals {
                import_id: new_public_id(),
                ..ImportTotals::default()
            },
        };
        if atomic {
            import.open().await?;
        }
        Ok(import)
    }

    /// Imports rows in batches of up to [`MAX_BATCH_ROWS`], with one audit record per
    /// batch, and commits them. Valid rows are written; the others come back as errors.
    pub async fn import_customers(
        &self,
        actor: &Actor,
        rows: Vec<ImportRow>,
        options: &ImportOptions,
    ) -> Result<BatchOutcome> {
        let mut import = self
            .begin_customer_import(actor, options.clone(), false)
            .await?;
        let outcome = import.add_batch(rows).await?;
        import.commit().await?;
        Ok(outcome)
    }
}

impl CustomerImport {
    /// The id of this import in the audit log.
    pub fn id(&self) -> &str {
        &self.totals.import_id
    }

    pub fn totals(&self) -> &ImportTotals {
        &self.totals
    }

    /// Opens the transaction (and, the first time, enlarges SQLite's page cache).
    async fn open(&mut self) -> Result<()> {
        if self.tx.is_some() {
            return Ok(());
        }
        let mut conn = self.store.write().await?;
        if conn.dialect() == crate::Dialect::Sqlite && self.cache_size.is_none() {
            let current: i64 = conn
                .fetch_one(q_dynamic("PRAGMA cache_size".into()))
                .await?
                .get("cache_size")?;
            if current > -IMPORT_CACHE_KIB {
                conn.execute(q_dynamic(format!(
                    "PRAGMA cache_size = {}",
                    -IMPORT_CACHE_KIB
                )))
                .await?;
            }
            self.cache_size = Some(current);
        }
        self.tx = Some(conn);
        Ok(())
    }

    /// Commits the open transaction, if any.
    async fn commit_pending(&mut self) -> Result<()> {
        if let Some(conn) = self.tx.take() {
            conn.commit().await?;
        }
        self.totals.committed_rows += self.pending;
        self.pending = 0;
        Ok(())
    }

    /// Gives the writer its page cache back.
    async fn restore_cache(&mut self) -> Result<()> {
        if let Some(size) = self.cache_size.take() {
            let mut conn = self.store.write().await?;
            conn.execute(q_dynamic(format!("PRAGMA cache_size = {size}")))
                .await?;
            conn.commit().await?;
        }
        Ok(())
    }

    /// A preparer for this import's rows, for use on another thread.
    pub fn preparer(&self) -> BatchPreparer {
        BatchPreparer {
            clock: self.store.clock.clone(),
            definitions: self.definitions.clone(),
            source: self.options.source,
        }
    }

    /// Validates and writes rows (split into batches of [`MAX_BATCH_ROWS`]). On a
    /// database error the open transaction is rolled back: for a non-atomic import
    /// the rows committed before stay (see [`ImportTotals::committed_rows`]).
    pub async fn add_batch(&mut self, rows: Vec<ImportRow>) -> Result<BatchOutcome> {
        let preparer = self.preparer();
        let mut outcome = BatchOutcome::default();
        let mut rows = rows.into_iter().peekable();
        while rows.peek().is_some() {
            let chunk: Vec<ImportRow> = rows.by_ref().take(MAX_BATCH_ROWS).collect();
            let part = self.add_prepared(preparer.prepare(chunk)).await?;
            outcome.imported.extend(part.imported);
            outcome.rejected.extend(part.rejected);
        }
        Ok(outcome)
    }

    /// Writes one batch checked by [`BatchPreparer::prepare`], as one batch (one audit
    /// record), whatever its size.
    pub async fn add_prepared(&mut self, batch: PreparedBatch) -> Result<BatchOutcome> {
        self.open().await?;
        let Some(conn) = self.tx.as_mut() else {
            return Err(StoreError::Database(
                "the import's transaction is closed".into(),
            ));
        };
        let written = write_batch(
            conn,
            &self.actor,
            &self.options,
            &self.totals.import_id,
            batch,
        )
        .await;
        let part = match written {
            Ok(part) => part,
            Err(error) => {
                self.tx = None;
                self.pending = 0;
                self.totals.imported = self.totals.committed_rows;
                return Err(error);
            }
        };
        self.totals.batches += 1;
        self.pending += part.imported.len() as u64;
        self.totals.imported += part.imported.len() as u64;
        self.totals.rejected += part.rejected.len() as u64;
        // PostgreSQL plans the duplicate lookups from table statistics, which lag far
        // behind a bulk load (a plan made for an empty table scans it whole). Refresh
        // them as the tables grow: after batches 1, 2, 4, 8 …, a logarithmic cost.
        if self.totals.batches.is_power_of_two()
            && let Some(conn) = self.tx.as_mut()
            && conn.dialect() == crate::Dialect::Postgres
        {
            conn.execute(q_dynamic("ANALYZE customers, customer_contacts".into()))
                .await?;
        }
        if !self.atomic && self.pending >= COMMIT_ROWS {
            self.commit_pending().await?;
        }
        Ok(part)
    }

    /// Commits what the import wrote.
    pub async fn commit(mut self) -> Result<ImportTotals> {
        self.commit_pending().await?;
        self.restore_cache().await?;
        self.totals.committed = true;
        Ok(self.totals)
    }

    /// Rolls back what is not committed yet: everything for an atomic import; for a
    /// non-atomic one, the rows since its last commit.
    pub async fn rollback(mut self) -> Result<ImportTotals> {
        // Dropping an open transaction rolls it back.
        drop(self.tx.take());
        self.pending = 0;
        self.restore_cache().await?;
        self.totals.imported = self.totals.committed_rows;
        self.totals.committed = false;
        Ok(self.totals)
    }
}

/// Checks rows on their own — validation, sort key, search text, field sources —
/// without the database, so that a caller can do it on another thread while the
/// previous batch is written. Made by [`CustomerImport::preparer`].
#[derive(Clone)]
pub struct BatchPreparer {
    clock: Arc<dyn Clock>,
    definitions: Arc<Vec<CustomFieldDefinition>>,
    source: InformationSource,
}

/// Rows checked by a [`BatchPreparer`], for [`CustomerImport::add_prepared`].
pub struct PreparedBatch {
    /// When the rows were checked; their creation time.
    now: i64,
    rows: Vec<Option<Prepared>>,
    rejected: Vec<RowError>,
}

impl PreparedBatch {
    /// Rows in the batch, rejected ones included.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }
}

impl BatchPreparer {
    pub fn prepare(&self, rows: Vec<ImportRow>) -> PreparedBatch {
        let now = self.clock.now_ms();
        let mut sources = SourcesCache {
            at: now,
            cache: HashMap::new(),
        };
        let mut prepared = Vec::with_capacity(rows.len());
        let mut rejected = Vec::new();
        for row in rows {
            match prepare(row, &self.definitions, self.source, &mut sources) {
                Ok(p) => prepared.push(Some(p)),
                Err(e) => rejected.push(e),
            }
        }
        PreparedBatch {
            now,
            rows: prepared,
            rejected,
        }
    }
}

/// A row that passed the checks of its own, ready to be written.
struct Prepared {
    line: u64,
    public_id: String,
    /// Whether the id came from the file (and so may clash with a stored one).
    kept_id: bool,
    kind: CustomerKind,
    name: String,
    value_class: ValueClass,
    position: Position,
    supply_chain_role: Option<SupplyChainRole>,
    lifecycle: LifecycleState,
    lead_source: Option<LeadSource>,
    qualification: Qualification,
    communication_type: Option<CommunicationType>,
    language: String,
    needs: String,
    hobbies: String,
    notes: String,
    lost_reason: Option<String>,
    custom_fields: String,
    field_sources: String,
    search_text: String,
    sort_key: String,
    source: InformationSource,
    contacts: Vec<PreparedContact>,
    organization_ref: Option<String>,
    referrer_ref: Option<String>,
    organization: Option<Ref>,
    referrer: Option<Ref>,
}

struct PreparedContact {
    channel: ContactChannel,
    value: String,
    display: String,
    is_primary: bool,
}

/// A reference to another customer: stored already, or written by this batch.
#[derive(Clone, Copy)]
enum Ref {
    Stored(i64),
    InBatch(usize),
}

/// Field sources, serialised once per set of fields and source (most rows of a file
/// share both).
struct SourcesCache {
    at: i64,
    cache: HashMap<(u32, InformationSource), String>,
}

const BUILTIN_FIELDS: &[&str] = &[
    "name",
    "kind",
    "value_class",
    "position",
    "lifecycle",
    "organization_id",
    "supply_chain_role",
    "lead_source",
    "referrer_id",
    "qualification",
    "communication_type",
    "language",
    "needs",
    "hobbies",
    "notes",
    "contacts",
];

impl SourcesCache {
    fn sources(
        &mut self,
        present: u32,
        source: InformationSource,
        custom: &[(String, kefu_domain::customers::InformationKind)],
    ) -> String {
        let build = |at: i64| {
            let mut sources = BTreeMap::new();
            for (bit, field) in BUILTIN_FIELDS.iter().enumerate() {
                if present & (1 << bit) == 0 {
                    continue;
                }
                if let Some(kind) = builtin_field_kind(field) {
                    sources.insert(
                        field.to_string(),
                        FieldSource {
                            kind,
                            source,
                            at: Timestamp(at),
                        },
                    );
                }
            }
            for (field, kind) in custom {
                sources.insert(
                    field.clone(),
                    FieldSource {
                        kind: *kind,
                        source,
                        at: Timestamp(at),
                    },
                );
            }
            serde_json::to_string(&sources).unwrap_or_else(|_| "{}".into())
        };
        if !custom.is_empty() {
            return build(self.at);
        }
        let at = self.at;
        self.cache
            .entry((present, source))
            .or_insert_with(|| build(at))
            .clone()
    }
}

/// The checks a row can pass on its own, in the order and with the limits of
/// `create_customer`.
fn prepare(
    row: ImportRow,
    definitions: &[CustomFieldDefinition],
    default_source: InformationSource,
    sources: &mut SourcesCache,
) -> std::result::Result<Prepared, RowError> {
    let line = row.line;
    let input = row.customer;
    let domain = |e: DomainError| RowError::from_domain(line, &e);
    let name = required_text("name", &input.name, 200).map_err(domain)?;
    let kind = input.kind.unwrap_or(CustomerKind::Person);
    let lifecycle = input.lifecycle.unwrap_or(LifecycleState::Potential);
    let source = input.source.unwrap_or(default_source);
    let language =
        optional_text("language", input.language.as_deref().unwrap_or(""), 35).map_err(domain)?;
    let needs =
        optional_text("needs", input.needs.as_deref().unwrap_or(""), 5000).map_err(domain)?;
    let hobbies =
        optional_text("hobbies", input.hobbies.as_deref().unwrap_or(""), 2000).map_err(domain)?;
    let notes =
        optional_text("notes", input.notes.as_deref().unwrap_or(""), 20000).map_err(domain)?;
    let lost_reason = if lifecycle == LifecycleState::Lost {
        Some(
            optional_text(
                "lost_reason",
                row.lost_reason.as_deref().unwrap_or(""),
                2000,
            )
            .map_err(domain)?,
        )
    } else {
        None
    };
    let public_id = match row.id.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(id) => uuid::Uuid::parse_str(id)
            .map(|u| u.to_string())
            .map_err(|_| RowError::new(line, "id", format!("`{id}` is not a kefu id (a UUID)")))?,
        None => new_public_id(),
    };
    let organization_ref = input
        .organization_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    if let (Some(id), CustomerKind::Organization) = (&organization_ref, kind) {
        return Err(RowError::new(
            line,
            "organization_id",
            format!("an organisation cannot belong to another (`{id}`)"),
        ));
    }
    let referrer_ref = input
        .referrer_id
        .as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string);
    let mut custom = Map::new();
    let mut custom_sources = Vec::new();
    if let Some(values) = &input.custom_fields {
        for (key, value) in values {
            let field = format!("custom.{key}");
            let definition = definitions.iter().find(|d| &d.key == key).ok_or_else(|| {
                RowError::new(line, field.clone(), "is not a defined custom field")
            })?;
            definition
                .field_type
                .check(key, value, &definition.options)
                .map_err(|e| RowError::new(line, field.clone(), domain_message(&e)))?;
            if !value.is_null() {
                custom.insert(key.clone(), value.clone());
            }
            custom_sources.push((format!("custom_fields.{key}"), definition.information_kind));
        }
    }
    let mut contacts: Vec<PreparedContact> = Vec::new();
    for contact in input.contacts.iter().flatten() {
        let channel = contact.channel.as_str();
        let normalised = NormalisedContact::parse(contact.channel, &contact.value)
            .map_err(|e| RowError::new(line, channel, domain_message(&e)))?;
        if contacts
            .iter()
            .any(|c| c.channel == normalised.channel && c.value == normalised.value)
        {
            return Err(RowError::new(
                line,
                channel,
                format!("`{}` is listed twice", normalised.value),
            ));
        }
        contacts.push(PreparedContact {
            channel: normalised.channel,
            value: normalised.value,
            display: contact.value.trim().to_string(),
            is_primary: contact.is_primary,
        });
    }
    // Which fields are set, as `create_customer` notes them.
    let mut present: u32 = 0b11111; // name, kind, value_class, position, lifecycle
    for (bit, set) in [
        (5, organization_ref.is_some()),
        (6, input.supply_chain_role.is_some()),
        (7, input.lead_source.is_some()),
        (8, referrer_ref.is_some()),
        (9, input.qualification.is_some()),
        (10, input.communication_type.is_some()),
        (11, !language.is_empty()),
        (12, !needs.is_empty()),
        (13, !hobbies.is_empty()),
        (14, !notes.is_empty()),
        (15, !contacts.is_empty()),
    ] {
        if set {
            present |= 1 << bit;
        }
    }
    let field_sources = sources.sources(present, source, &custom_sources);
    // The search text exactly as `refresh_search_text` writes it.
    let mut search_text = text::search_key(&name);
    for contact in &contacts {
        search_text.push('\u{1f}');
        search_text.push_str(&contact.value);
        search_text.push('\u{1f}');
        search_text.push_str(&text::search_key(&contact.display));
    }
    Ok(Prepared {
        line,
        kept_id: row.id.as_deref().is_some_and(|s| !s.trim().is_empty()),
        public_id,
        kind,
        sort_key: text::sort_key(&name),
        name,
        value_class: input.value_class.unwrap_or(ValueClass::Ordinary),
        position: input.position.unwrap_or(Position::External),
        supply_chain_role: input.supply_chain_role,
        lifecycle,
        lead_source: input.lead_source,
        qualification: input.qualification.unwrap_or_default(),
        communication_type: input.communication_type,
        language,
        needs,
        hobbies,
        notes,
        lost_reason,
        custom_fields: Value::Object(custom).to_string(),
        field_sources,
        search_text,
        source,
        contacts,
        organization_ref,
        referrer_ref,
        organization: None,
        referrer: None,
    })
}

/// Builds `INSERT … VALUES (…), (…)` statements over `rows`, each under the parameter
/// limit. `shared` values are bound first as `$1…$k`; `template` is one row's `VALUES`
/// tuple in which each `?` is the next value `bind_row` binds for that row (it may move
/// values out of the row).
fn insert_statements<T>(
    head: &str,
    shared: &[Arg],
    template: &str,
    tail: &str,
    rows: &mut [T],
    mut bind_row: impl FnMut(&mut T, &mut Vec<Arg>),
) -> Vec<crate::sql::Q> {
    use std::fmt::Write as _;
    let per_row = template.matches('?').count();
    let pieces: Vec<&str> = template.split('?').collect();
    let text = |rows: usize| {
        let mut sql = String::with_capacity(head.len() + rows * (template.len() + per_row * 6));
        sql.push_str(head);
        for row in 0..rows {
            if row > 0 {
                sql.push_str(", ");
            }
            let first = shared.len() + row * per_row + 1;
            for (n, piece) in pieces.iter().enumerate() {
                sql.push_str(piece);
                if n + 1 < pieces.len() {
                    let _ = write!(sql, "${}", first + n);
                }
            }
        }
        sql.push_str(tail);
        sql
    };
    let rows_per_statement = ((MAX_PARAMS - shared.len()) / per_row.max(1)).max(1);
    let mut statements = Vec::with_capacity(rows.len().div_ceil(rows_per_statement));
    for chunk in rows.chunks_mut(rows_per_statement) {
        let mut query = q_dynamic(text(chunk.len()));
        let mut args: Vec<Arg> = Vec::with_capacity(shared.len() + chunk.len() * per_row);
        args.extend(shared.iter().cloned());
        for row in chunk.iter_mut() {
            bind_row(row, &mut args);
        }
        debug_assert_eq!(args.len(), shared.len() + chunk.len() * per_row);
        for arg in args {
            query = query.bind(arg);
        }
        statements.push(query);
    }
    statements
}

/// Writes `$n` for the next bound value (numbered after those already bound).
struct Placeholders {
    next: usize,
}

impl Placeholders {
    fn push(&mut self, sql: &mut String) {
        use std::fmt::Write as _;
        if !sql.ends_with('(') {
            sql.push_str(", ");
        }
        let _ = write!(sql, "${}", self.next);
        self.next += 1;
    }
}

async fn write_batch(
    conn: &mut Conn,
    actor: &Actor,
    options: &ImportOptions,
    import_id: &str,
    batch: PreparedBatch,
) -> Result<BatchOutcome> {
    let PreparedBatch {
        now,
        rows: mut prepared,
        mut rejected,
    } = batch;

    // Contacts: unique within the batch (the first row keeps it) and in the database.
    let mut seen: HashMap<(ContactChannel, &str), u64> = HashMap::new();
    let mut reject: Vec<(usize, RowError)> = Vec::new();
    for (index, row) in prepared.iter().enumerate() {
        let Some(row) = row else { continue };
        let mut clash = None;
        for contact in &row.contacts {
            if let Some(first) = seen.get(&(contact.channel, contact.value.as_str())) {
                clash = Some(RowError::new(
                    row.line,
                    contact.channel.as_str(),
                    format!("`{}` is already on line {first}", contact.value),
                ));
                break;
            }
        }
        match clash {
            Some(error) => reject.push((index, error)),
            None => {
                for contact in &row.contacts {
                    seen.insert((contact.channel, contact.value.as_str()), row.line);
                }
            }
        }
    }
    drop(seen);
    apply_rejections(&mut prepared, &mut rejected, reject);

    let stored = stored_contacts(conn, &prepared).await?;
    if !stored.is_empty() {
        let mut reject = Vec::new();
        for (index, row) in prepared.iter().enumerate() {
            let Some(row) = row else { continue };
            if let Some((contact, owner)) = row.contacts.iter().find_map(|c| {
                stored
                    .get(&(c.channel, c.value.clone()))
                    .map(|owner| (c, owner))
            }) {
                reject.push((
                    index,
                    RowError::new(
                        row.line,
                        contact.channel.as_str(),
                        format!("`{}` already belongs to customer {owner}", contact.value),
                    ),
                ));
            }
        }
        apply_rejections(&mut prepared, &mut rejected, reject);
    }

    check_ids(conn, &mut prepared, &mut rejected).await?;
    resolve_references(conn, &mut prepared, &mut rejected).await?;

    // In-batch references point into `prepared`; renumber them for the rows kept.
    let mut position = vec![usize::MAX; prepared.len()];
    let mut kept = 0;
    for (index, row) in prepared.iter().enumerate() {
        if row.is_some() {
            position[index] = kept;
            kept += 1;
        }
    }
    let renumber = |reference: Option<Ref>| match reference {
        Some(Ref::InBatch(index)) => Some(Ref::InBatch(position[index])),
        other => other,
    };
    let mut rows: Vec<Prepared> = prepared
        .into_iter()
        .flatten()
        .map(|mut row| {
            row.organization = renumber(row.organization);
            row.referrer = renumber(row.referrer);
            row
        })
        .collect();
    rejected.sort_by_key(|e| e.line);
    if rows.is_empty() {
        return Ok(BatchOutcome {
            imported: Vec::new(),
            rejected,
        });
    }

    // The customers. Shared: $1 = now, $2 = the creating user.
    match conn {
        Conn::Sqlite(handle) => write_rows_sqlite(handle.connection(), &rows, now, actor)?,
        _ => write_rows(conn, &mut rows, now, actor).await?,
    }

    let imported: Vec<ImportedCustomer> = rows
        .iter()
        .map(|row| ImportedCustomer {
            line: row.line,
            id: row.public_id.clone(),
        })
        .collect();
    let after = json!({
        "label": options.label,
        "source": options.source,
        "first_line": imported.first().map(|c| c.line),
        "last_line": imported.last().map(|c| c.line),
        "imported": imported.len(),
        "rejected": rejected.len(),
        "customer_ids": imported.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
    });
    audit::record(
        conn,
        actor,
        now,
        "import",
        "customer_import",
        import_id,
        None,
        Some(&after),
    )
    .await?;
    Ok(BatchOutcome { imported, rejected })
}

/// Writes checked rows with multi-row statements through the portable layer (what
/// PostgreSQL gets: few round trips, `RETURNING` for the keys).
async fn write_rows(conn: &mut Conn, rows: &mut [Prepared], now: i64, actor: &Actor) -> Result<()> {
    let keys = insert_customers(conn, rows, now, actor).await?;
    let key_of = |index: usize| keys[index];

    // References to rows of this batch are set once those rows have keys.
    for (index, row) in rows.iter().enumerate() {
        let organization = match row.organization {
            Some(Ref::InBatch(target)) => Some(key_of(target)),
            _ => None,
        };
        let referrer = match row.referrer {
            Some(Ref::InBatch(target)) => Some(key_of(target)),
            _ => None,
        };
        if organization.is_some() || referrer.is_some() {
            conn.execute(
                q_dynamic("UPDATE customers SET organization_id = COALESCE($1, organization_id), referrer_id = COALESCE($2, referrer_id) WHERE id = $3".into())
                    .bind(organization)
                    .bind(referrer)
                    .bind(key_of(index)),
            )
            .await?;
        }
    }

    // Contacts: $1 = now.
    let mut contacts: Vec<(i64, PreparedContact, InformationSource)> = Vec::new();
    for (index, row) in rows.iter_mut().enumerate() {
        let source = row.source;
        for contact in std::mem::take(&mut row.contacts) {
            contacts.push((key_of(index), contact, source));
        }
    }
    if !contacts.is_empty() {
        let statements = insert_statements(
            "INSERT INTO customer_contacts (public_id, customer_id, channel, value, display_value, is_primary, source, created_at) VALUES ",
            &[Arg::Int(Some(now))],
            "(?, ?, ?, ?, ?, ?, ?, $1)",
            "",
            &mut contacts,
            |(key, contact, source): &mut (i64, PreparedContact, InformationSource), args| {
                args.push(Arg::Text(Some(new_public_id())));
                args.push(Arg::Int(Some(*key)));
                args.push(Arg::Text(Some(contact.channel.as_str().to_string())));
                args.push(Arg::Text(Some(std::mem::take(&mut contact.value))));
                args.push(Arg::Text(Some(std::mem::take(&mut contact.display))));
                args.push(Arg::Bool(Some(contact.is_primary)));
                args.push(Arg::Text(Some(source.as_str().to_string())));
            },
        );
        run_all(conn, statements).await?;
    }

    // The first lifecycle state: $1 = reason, $2 = actor id, $3 = actor label, $4 = now.
    let mut transitions: Vec<(i64, LifecycleState)> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| (key_of(index), row.lifecycle))
        .collect();
    let statements = insert_statements(
        "INSERT INTO lifecycle_transitions (customer_id, from_state, to_state, reason, actor_id, actor_label, at) VALUES ",
        &[
            Arg::Text(Some("imported".into())),
            Arg::Int(actor.user_id),
            Arg::Text(Some(actor.label.clone())),
            Arg::Int(Some(now)),
        ],
        "(?, NULL, ?, $1, $2, $3, $4)",
        "",
        &mut transitions,
        |(key, lifecycle): &mut (i64, LifecycleState), args| {
            args.push(Arg::Int(Some(*key)));
            args.push(Arg::Text(Some(lifecycle.as_str().to_string())));
        },
    );
    run_all(conn, statements).await?;
    Ok(())
}

/// Writes checked rows on SQLite. The writer has the database to itself for the
/// transaction, and SQLite runs in this process, so rows go in one by one through
/// statements prepared once and bound by position: a single-row `INSERT` needs no
/// statement journal, `last_insert_rowid` gives each key without `RETURNING` (which
/// SQLite runs as a trigger, with a statement journal), and nothing is copied into
/// intermediate argument lists. The SQL is the portable layer's, with `?N` parameters.
fn write_rows_sqlite(
    connection: &rusqlite::Connection,
    rows: &[Prepared],
    now: i64,
    actor: &Actor,
) -> Result<()> {
    use rusqlite::params;
    let stored = |reference: Option<Ref>| match reference {
        Some(Ref::Stored(key)) => Some(key),
        _ => None,
    };
    let mut insert = connection.prepare_cached(
        "INSERT INTO customers (public_id, kind, name, organization_id, value_class, position, supply_chain_role, lifecycle, lead_source, referrer_id, qualification_need, qualification_ability_to_pay, qualification_authority, communication_type, language, needs, hobbies, notes, lost_at, lost_reason, custom_fields, field_sources, search_text, sort_key, lifecycle_changed_at, created_by, created_at, updated_at, version) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?25, ?25, 1)",
    )?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        insert.execute(params![
            row.public_id,
            row.kind.as_str(),
            row.name,
            stored(row.organization),
            row.value_class.as_str(),
            row.position.as_str(),
            row.supply_chain_role.map(Labelled::as_str),
            row.lifecycle.as_str(),
            row.lead_source.map(Labelled::as_str),
            stored(row.referrer),
            row.qualification.need,
            row.qualification.ability_to_pay,
            row.qualification.authority,
            row.communication_type.map(Labelled::as_str),
            row.language,
            row.needs,
            row.hobbies,
            row.notes,
            row.lost_reason.is_some().then_some(now),
            row.lost_reason,
            row.custom_fields,
            row.field_sources,
            row.search_text,
            row.sort_key,
            now,
            actor.user_id,
        ])?;
        keys.push(connection.last_insert_rowid());
    }
    // References to rows of this batch are set once those rows have keys.
    for (index, row) in rows.iter().enumerate() {
        let in_batch = |reference: Option<Ref>| match reference {
            Some(Ref::InBatch(target)) => Some(keys[target]),
            _ => None,
        };
        let (organization, referrer) = (in_batch(row.organization), in_batch(row.referrer));
        if organization.is_some() || referrer.is_some() {
            connection
                .prepare_cached("UPDATE customers SET organization_id = COALESCE(?1, organization_id), referrer_id = COALESCE(?2, referrer_id) WHERE id = ?3")?
                .execute(params![organization, referrer, keys[index]])?;
        }
    }
    let mut contact = connection.prepare_cached(
        "INSERT INTO customer_contacts (public_id, customer_id, channel, value, display_value, is_primary, source, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for (row, key) in rows.iter().zip(&keys) {
        for c in &row.contacts {
            contact.execute(params![
                new_public_id(),
                key,
                c.channel.as_str(),
                c.value,
                c.display,
                c.is_primary,
                row.source.as_str(),
                now,
            ])?;
        }
    }
    let mut transition = connection.prepare_cached(
        "INSERT INTO lifecycle_transitions (customer_id, from_state, to_state, reason, actor_id, actor_label, at) VALUES (?1, NULL, ?2, 'imported', ?3, ?4, ?5)",
    )?;
    for (row, key) in rows.iter().zip(&keys) {
        transition.execute(params![
            key,
            row.lifecycle.as_str(),
            actor.user_id,
            actor.label,
            now
        ])?;
    }
    Ok(())
}

/// Runs statements whose placeholders were numbered per statement.
async fn run_all(conn: &mut Conn, statements: Vec<crate::sql::Q>) -> Result<()> {
    for statement in statements {
        conn.execute(statement).await?;
    }
    Ok(())
}

fn apply_rejections(
    prepared: &mut [Option<Prepared>],
    rejected: &mut Vec<RowError>,
    reject: Vec<(usize, RowError)>,
) {
    for (index, error) in reject {
        prepared[index] = None;
        rejected.push(error);
    }
}

/// Which of the batch's contacts are stored already, with their owners' ids.
async fn stored_contacts(
    conn: &mut Conn,
    prepared: &[Option<Prepared>],
) -> Result<HashMap<(ContactChannel, String), String>> {
    // Per channel, the distinct addresses, looked up as exact (channel, value) pairs
    // on the unique index.
    let mut by_channel: Vec<(ContactChannel, Vec<&str>)> = Vec::new();
    let mut unique: HashSet<(ContactChannel, &str)> = HashSet::new();
    for row in prepared.iter().flatten() {
        for contact in &row.contacts {
            if !unique.insert((contact.channel, contact.value.as_str())) {
                continue;
            }
            match by_channel.iter_mut().find(|(c, _)| *c == contact.channel) {
                Some((_, values)) => values.push(contact.value.as_str()),
                None => by_channel.push((contact.channel, vec![contact.value.as_str()])),
            }
        }
    }
    let mut found = HashMap::new();
    for (channel, values) in &by_channel {
        for chunk in values.chunks(LOOKUP_CHUNK) {
            let mut sql = String::from(
                "SELECT cc.value, c.public_id FROM customer_contacts cc JOIN customers c ON c.id = cc.customer_id WHERE cc.channel = $1 AND cc.value IN (",
            );
            let mut p = Placeholders { next: 2 };
            for _ in chunk {
                p.push(&mut sql);
            }
            sql.push(')');
            let mut query = q_dynamic(sql).bind(channel.as_str());
            for value in chunk {
                query = query.bind(*value);
            }
            for row in conn.fetch_all(query).await? {
                found.insert((*channel, row.get("value")?), row.get("public_id")?);
            }
        }
    }
    Ok(found)
}

/// Kept ids must be new: not twice in the batch, not stored already.
async fn check_ids(
    conn: &mut Conn,
    prepared: &mut [Option<Prepared>],
    rejected: &mut Vec<RowError>,
) -> Result<()> {
    let mut first_line: HashMap<String, u64> = HashMap::new();
    let mut reject = Vec::new();
    for (index, row) in prepared.iter().enumerate() {
        let Some(row) = row else { continue };
        if let Some(line) = first_line.get(&row.public_id) {
            reject.push((
                index,
                RowError::new(
                    row.line,
                    "id",
                    format!("`{}` is already on line {line}", row.public_id),
                ),
            ));
        } else {
            first_line.insert(row.public_id.clone(), row.line);
        }
    }
    apply_rejections(prepared, rejected, reject);
    // New ids are fresh UUIDv7s; only kept ids can clash, so only they are looked up.
    let kept: Vec<String> = prepared
        .iter()
        .flatten()
        .filter(|row| row.kept_id)
        .map(|row| row.public_id.clone())
        .collect();
    let existing = lookup_customers(conn, &kept).await?;
    if existing.is_empty() {
        return Ok(());
    }
    let mut reject = Vec::new();
    for (index, row) in prepared.iter().enumerate() {
        let Some(row) = row else { continue };
        if existing.contains_key(&row.public_id) {
            reject.push((
                index,
                RowError::new(
                    row.line,
                    "id",
                    format!("a customer with id `{}` already exists", row.public_id),
                ),
            ));
        }
    }
    apply_rejections(prepared, rejected, reject);
    Ok(())
}

/// Stored customers among `ids`: public id → (key, kind).
async fn lookup_customers(
    conn: &mut Conn,
    ids: &[String],
) -> Result<HashMap<String, (i64, String)>> {
    let mut found = HashMap::new();
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        if chunk.is_empty() {
            continue;
        }
        let mut sql =
            String::from("SELECT id, public_id, kind FROM customers WHERE public_id IN (");
        let mut p = Placeholders { next: 1 };
        for _ in chunk {
            p.push(&mut sql);
        }
        sql.push(')');
        let mut query = q_dynamic(sql);
        for id in chunk {
            query = query.bind(id.as_str());
        }
        for row in conn.fetch_all(query).await? {
            found.insert(row.get("public_id")?, (row.get("id")?, row.get("kind")?));
        }
    }
    Ok(found)
}

/// Resolves `organization_id` and `referrer_id`: a stored customer, or one on an
/// earlier row of this batch. An organisation reference must name an organisation.
async fn resolve_references(
    conn: &mut Conn,
    prepared: &mut [Option<Prepared>],
    rejected: &mut Vec<RowError>,
) -> Result<()> {
    let wanted: Vec<String> = prepared
        .iter()
        .flatten()
        .flat_map(|row| [row.organization_ref.clone(), row.referrer_ref.clone()])
        .flatten()
        .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    if wanted.is_empty()
        && prepared
            .iter()
            .flatten()
            .all(|r| r.organization_ref.is_none() && r.referrer_ref.is_none())
    {
        return Ok(());
    }
    let stored = lookup_customers(conn, &wanted).await?;
    // Rows written by this batch so far (in line order): public id → (index, kind).
    let mut earlier: HashMap<String, (usize, CustomerKind)> = HashMap::new();
    let organisation = CustomerKind::Organization.as_str();
    for (index, slot) in prepared.iter_mut().enumerate() {
        let Some(row) = slot.as_mut() else {
            continue;
        };
        let resolve = |id: &str,
                       field: &'static str|
         -> std::result::Result<(Ref, bool), RowError> {
            let normal = uuid::Uuid::parse_str(id).map(|u| u.to_string()).ok();
            let missing = || {
                RowError::new(
                    row.line,
                    field,
                    format!(
                        "no customer has id `{id}` (it must be stored already, or imported on an earlier row)"
                    ),
                )
            };
            let normal = normal.ok_or_else(missing)?;
            if let Some((key, kind)) = stored.get(&normal) {
                return Ok((Ref::Stored(*key), kind == organisation));
            }
            if let Some((target, kind)) = earlier.get(&normal) {
                return Ok((Ref::InBatch(*target), *kind == CustomerKind::Organization));
            }
            Err(missing())
        };
        let mut result: std::result::Result<(), RowError> = Ok(());
        if let Some(id) = row.organization_ref.as_deref() {
            match resolve(id, "organization_id") {
                Ok((reference, true)) => row.organization = Some(reference),
                Ok((_, false)) => {
                    result = Err(RowError::new(
                        row.line,
                        "organization_id",
                        format!("customer `{id}` is a person, not an organisation"),
                    ))
                }
                Err(e) => result = Err(e),
            }
        }
        if let (Ok(()), Some(id)) = (&result, row.referrer_ref.as_deref()) {
            match resolve(id, "referrer_id") {
                Ok((reference, _)) => row.referrer = Some(reference),
                Err(e) => result = Err(e),
            }
        }
        match result {
            Ok(()) => {
                earlier.insert(row.public_id.clone(), (index, row.kind));
            }
            Err(error) => {
                *slot = None;
                rejected.push(error);
            }
        }
    }
    Ok(())
}

/// Inserts the customers and returns their keys, in the order of `rows`.
async fn insert_customers(
    conn: &mut Conn,
    rows: &mut [Prepared],
    now: i64,
    actor: &Actor,
) -> Result<Vec<i64>> {
    let statements = insert_statements(
        "INSERT INTO customers (public_id, kind, name, organization_id, value_class, position, supply_chain_role, lifecycle, lead_source, referrer_id, qualification_need, qualification_ability_to_pay, qualification_authority, communication_type, language, needs, hobbies, notes, lost_at, lost_reason, custom_fields, field_sources, search_text, sort_key, lifecycle_changed_at, created_by, created_at, updated_at, version) VALUES ",
        &[Arg::Int(Some(now)), Arg::Int(actor.user_id)],
        "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, $1, $2, $1, $1, 1)",
        " RETURNING id, public_id",
        rows,
        |row: &mut Prepared, args| {
            let stored = |r: Option<Ref>| match r {
                Some(Ref::Stored(key)) => Some(key),
                _ => None,
            };
            let text = |s: &str| Arg::Text(Some(s.to_string()));
            let label = |s: Option<&'static str>| Arg::Text(s.map(str::to_string));
            args.push(text(&row.public_id));
            args.push(text(row.kind.as_str()));
            args.push(Arg::Text(Some(std::mem::take(&mut row.name))));
            args.push(Arg::Int(stored(row.organization)));
            args.push(text(row.value_class.as_str()));
            args.push(text(row.position.as_str()));
            args.push(label(row.supply_chain_role.map(Labelled::as_str)));
            args.push(text(row.lifecycle.as_str()));
            args.push(label(row.lead_source.map(Labelled::as_str)));
            args.push(Arg::Int(stored(row.referrer)));
            args.push(Arg::Bool(row.qualification.need));
            args.push(Arg::Bool(row.qualification.ability_to_pay));
            args.push(Arg::Bool(row.qualification.authority));
            args.push(label(row.communication_type.map(Labelled::as_str)));
            args.push(Arg::Text(Some(std::mem::take(&mut row.language))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.needs))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.hobbies))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.notes))));
            args.push(Arg::Int(row.lost_reason.is_some().then_some(now)));
            args.push(Arg::Text(row.lost_reason.take()));
            args.push(Arg::Text(Some(std::mem::take(&mut row.custom_fields))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.field_sources))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.search_text))));
            args.push(Arg::Text(Some(std::mem::take(&mut row.sort_key))));
        },
    );
    let mut by_public_id: HashMap<String, i64> = HashMap::with_capacity(rows.len());
    for statement in statements {
        for row in conn.fetch_all(statement).await? {
            by_public_id.insert(row.get("public_id")?, row.get("id")?);
        }
    }
    rows.iter()
        .map(|row| {
            by_public_id.get(&row.public_id).copied().ok_or_else(|| {
                StoreError::Database(format!(
                    "the insert returned no key for customer {}",
                    row.public_id
                ))
            })
        })
        .collect()
}
