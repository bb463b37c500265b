//! `kefu import customers FILE`: CSV (with a header row) or JSON Lines, streamed.
//!
//! A reader thread parses the file into batches while the store writes the previous
//! batch, so parsing and writing overlap. Nothing holds the whole file: a batch of rows,
//! the report's first lines and counters are all that stay in memory.
//!
//! Rows that break a rule are reported with their line and field (on stderr, and in full
//! as CSV with `--errors FILE`); the valid rows are kept. With `--atomic` one bad row
//! means nothing is kept and the exit code is 1.

use crate::{CliError, CliResult};
use kefu_domain::Labelled;
use kefu_domain::contacts::ContactChannel;
use kefu_domain::customers::{
    CommunicationType, CustomFieldType, CustomerKind, InformationSource, LeadSource,
    LifecycleState, Position, Qualification, SupplyChainRole, ValueClass,
};
use kefu_store::customers::{CustomFieldDefinition, NewContact};
use kefu_store::import::{
    BatchPreparer, ImportOptions, ImportRow, MAX_BATCH_ROWS, PreparedBatch, RowError,
};
use kefu_store::{Actor, Store};
use serde_json::{Map, Value};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {
    /// Imports customers from CSV (with a header row) or JSON Lines.
    ///
    /// CSV columns: name (required), kind, email, phone, wechat, qq, whatsapp, telegram,
    /// line, weibo, other (several addresses separated by `;`, the first is primary),
    /// value_class, position, supply_chain_role, lifecycle, lost_reason, lead_source,
    /// language, needs, hobbies, notes, qualification_need,
    /// qualification_ability_to_pay, qualification_authority, communication_type,
    /// source, id, organization_id, referrer_id, and custom.KEY for custom fields.
    /// `kefu export customers --format csv` writes exactly these.
    Customers(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// The file to read; `-` reads standard input.
    pub file: PathBuf,
    /// csv or jsonl [default: from the file name; csv otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// All or nothing: one bad row and nothing is imported (exit code 1).
    #[arg(long)]
    pub atomic: bool,
    /// Writes every rejected row (line, field, message) to this CSV file.
    #[arg(long, value_name = "REPORT_FILE")]
    pub errors: Option<PathBuf>,
    /// Where the data came from: import, purchased_list, partner, public_source,
    /// registration, sales_record, service_contact or agent.
    #[arg(long, default_value = "import", value_parser = parse_source)]
    pub source: InformationSource,
    /// Columns (CSV) or keys (JSON Lines) to leave out, comma-separated, e.g. custom
    /// fields this kefu does not define: `--skip-columns custom.birthday,custom.industry`.
    #[arg(long, value_name = "COLUMNS", value_delimiter = ',')]
    pub skip_columns: Vec<String>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Csv,
    Jsonl,
}

fn parse_source(text: &str) -> Result<InformationSource, String> {
    InformationSource::parse(text).map_err(|e| kefu_store::import::domain_message(&e))
}

/// How many rejected rows are printed on stderr; `--errors` has them all.
const SHOWN_ERRORS: usize = 20;

pub async fn run(store: &Store, command: ImportCommand) -> CliResult<()> {
    match command {
        ImportCommand::Customers(args) => import_customers(store, args).await,
    }
}

/// What the reader thread sends: a batch of parsed and checked rows with the rows it
/// could not parse, or the reason the file cannot be read at all.
enum Batch {
    Rows {
        rows: PreparedBatch,
        errors: Vec<RowError>,
        /// Bytes read so far, for the progress bar.
        position: u64,
    },
    Fatal(String),
}

async fn import_customers(store: &Store, args: ImportArgs) -> CliResult<()> {
    let format = args.format.unwrap_or_else(|| guess_format(&args.file));
    let stdin = args.file.as_os_str() == "-";
    let (input, size): (Box<dyn Read + Send>, u64) = if stdin {
        (Box::new(std::io::stdin()), 0)
    } else {
        let file = std::fs::File::open(&args.file)
            .map_err(|e| CliError(format!("cannot read {}: {e}", args.file.display())))?;
        let size = file.metadata().map(|m| m.len()).unwrap_or(0);
        (Box::new(file), size)
    };
    let mut report = Report::new(args.errors.as_deref())?;
    let definitions = store.custom_fields().await?;
    let label = if stdin {
        "stdin".to_string()
    } else {
        args.file.display().to_string()
    };
    let options = ImportOptions {
        source: args.source,
        label,
    };
    let mut import = store
        .begin_customer_import(&Actor::cli(), options, args.atomic)
        .await?;
    // The reader thread parses and checks rows while this task writes the batch before.
    let preparer = import.preparer();
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<Batch>(2);
    let skip: Vec<String> = args
        .skip_columns
        .iter()
        .map(|c| column_name(c))
        .filter(|c| !c.is_empty())
        .collect();
    let reader = std::thread::spawn(move || {
        let out = Out {
            sender: &sender,
            preparer: &preparer,
        };
        match format {
            Format::Csv => read_csv(input, &definitions, &skip, &out),
            Format::Jsonl => read_jsonl(input, &skip, &out),
        }
    });
    let bar = progress_bar(size);
    let mut fatal = None;
    while let Some(batch) = receiver.recv().await {
        match batch {
            Batch::Fatal(message) => {
                fatal = Some(message);
                break;
            }
            Batch::Rows {
                rows,
                errors,
                position,
            } => {
                let outcome = match import.add_prepared(rows).await {
                    Ok(outcome) => outcome,
                    Err(error) => {
                        bar.finish_and_clear();
                        drop(receiver);
                        let _ = reader.join();
                        report.finish()?;
                        let kept = import.totals().committed_rows;
                        let _ = import.rollback().await;
                        return Err(CliError(if kept > 0 && !args.atomic {
                            format!("{error} ({kept} customers imported before it were kept)")
                        } else {
                            format!("{error} (nothing was imported)")
                        }));
                    }
                };
                let mut rejected = errors;
                rejected.extend(outcome.rejected);
                rejected.sort_by_key(|e| e.line);
                report.add(&rejected)?;
                bar.set_position(position);
                bar.set_message(format!("{} imported", import.totals().imported));
            }
        }
    }
    bar.finish_and_clear();
    drop(receiver);
    let _ = reader.join();
    report.finish()?;

    if let Some(message) = fatal {
        // Without --atomic, rows read before the file broke are kept, as bad rows are.
        if args.atomic || import.totals().imported == 0 {
            import.rollback().await?;
            return Err(CliError(format!("{message} (nothing was imported)")));
        }
        let totals = import.commit().await?;
        return Err(CliError(format!(
            "{message} ({} customers read before it were imported, {} rows rejected)",
            totals.imported, report.count
        )));
    }
    let where_ = report.where_to_look();
    if args.atomic && report.count > 0 {
        import.rollback().await?;
        return Err(CliError(format!(
            "nothing imported: {} rows rejected and --atomic was given ({where_})",
            report.count
        )));
    }
    let totals = import.commit().await?;
    if report.count == 0 {
        println!("imported {} customers, 0 rows rejected", totals.imported);
        return Ok(());
    }
    println!(
        "imported {} customers, {} rows rejected ({where_})",
        totals.imported, report.count
    );
    if totals.imported == 0 {
        return Err(CliError("every row was rejected".into()));
    }
    Ok(())
}

fn guess_format(path: &Path) -> Format {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) if ext.eq_ignore_ascii_case("jsonl") || ext.eq_ignore_ascii_case("ndjson") => {
            Format::Jsonl
        }
        _ => Format::Csv,
    }
}

fn progress_bar(size: u64) -> indicatif::ProgressBar {
    use std::io::IsTerminal as _;
    if size == 0 || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(size);
    if let Ok(style) = indicatif::ProgressStyle::with_template(
        "{msg:>18} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})",
    ) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

/// The rejected rows: counted, the first few printed on stderr, all of them written to
/// the `--errors` file.
struct Report {
    count: u64,
    path: Option<PathBuf>,
    file: Option<csv::Writer<std::io::BufWriter<std::fs::File>>>,
}

impl Report {
    fn new(path: Option<&Path>) -> CliResult<Report> {
        let file = match path {
            Some(path) => {
                let file = std::fs::File::create(path)
                    .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
                let mut writer = csv::Writer::from_writer(std::io::BufWriter::new(file));
                writer
                    .write_record(["line", "field", "message"])
                    .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
                Some(writer)
            }
            None => None,
        };
        Ok(Report {
            count: 0,
            path: path.map(Path::to_path_buf),
            file,
        })
    }

    fn add(&mut self, errors: &[RowError]) -> CliResult<()> {
        for error in errors {
            if self.count < SHOWN_ERRORS as u64 {
                eprintln!("rejected {error}");
            } else if self.count == SHOWN_ERRORS as u64 {
                eprintln!("… (more rejected rows not shown)");
            }
            self.count += 1;
            if let Some(file) = &mut self.file {
                file.write_record([
                    error.line.to_string().as_str(),
                    error.field.as_str(),
                    error.message.as_str(),
                ])
                .map_err(|e| CliError(format!("cannot write the error report: {e}")))?;
            }
        }
        Ok(())
    }

    fn finish(&mut self) -> CliResult<()> {
        if let Some(file) = &mut self.file {
            file.flush()
                .map_err(|e| CliError(format!("cannot write the error report: {e}")))?;
        }
        Ok(())
    }

    fn where_to_look(&self) -> String {
        match &self.path {
            Some(path) => format!("see {}", path.display()),
            None if self.count > SHOWN_ERRORS as u64 => {
                format!("the first {SHOWN_ERRORS} are listed above; --errors FILE writes them all")
            }
            None => "see above".into(),
        }
    }
}

/// Where the reader thread's batches go.
struct Out<'a> {
    sender: &'a tokio::sync::mpsc::Sender<Batch>,
    preparer: &'a BatchPreparer,
}

impl Out<'_> {
    /// Checks and sends parsed rows; false when the importer has stopped listening.
    fn rows(&self, rows: Vec<ImportRow>, errors: Vec<RowError>, position: u64) -> bool {
        let rows = self.preparer.prepare(rows);
        self.sender
            .blocking_send(Batch::Rows {
                rows,
                errors,
                position,
            })
            .is_ok()
    }

    fn fatal(&self, message: String) {
        let _ = self.sender.blocking_send(Batch::Fatal(message));
    }
}

// ---------------------------------------------------------------------------------
// CSV

/// What a CSV column holds.
#[derive(Debug, Clone)]
enum Column {
    Id,
    Name,
    Kind,
    OrganizationId,
    Contact(ContactChannel),
    ValueClass,
    Position,
    SupplyChainRole,
    Lifecycle,
    LostReason,
    LeadSource,
    ReferrerId,
    QualificationNeed,
    QualificationAbilityToPay,
    QualificationAuthority,
    CommunicationType,
    Language,
    Needs,
    Hobbies,
    Notes,
    Source,
    Custom(CustomFieldDefinition),
    /// Written by `kefu export` but set by kefu itself on import (timestamps, card).
    Ignored,
}

/// Columns that `kefu export` writes and kefu sets by itself on import.
const IGNORED_COLUMNS: &[&str] = &[
    "card",
    "created_at",
    "updated_at",
    "lifecycle_changed_at",
    "lost_at",
    "version",
];

fn column(name: &str, definitions: &[CustomFieldDefinition]) -> Option<Column> {
    if let Some(key) = name.strip_prefix("custom.") {
        return definitions
            .iter()
            .find(|d| d.key == key)
            .cloned()
            .map(Column::Custom);
    }
    if let Ok(channel) = ContactChannel::parse(name) {
        return Some(Column::Contact(channel));
    }
    Some(match name {
        "id" => Column::Id,
        "name" => Column::Name,
        "kind" => Column::Kind,
        "organization_id" => Column::OrganizationId,
        "value_class" => Column::ValueClass,
        "position" => Column::Position,
        "supply_chain_role" => Column::SupplyChainRole,
        "lifecycle" => Column::Lifecycle,
        "lost_reason" => Column::LostReason,
        "lead_source" => Column::LeadSource,
        "referrer_id" => Column::ReferrerId,
        "qualification_need" => Column::QualificationNeed,
        "qualification_ability_to_pay" => Column::QualificationAbilityToPay,
        "qualification_authority" => Column::QualificationAuthority,
        "communication_type" => Column::CommunicationType,
        "language" => Column::Language,
        "needs" => Column::Needs,
        "hobbies" => Column::Hobbies,
        "notes" => Column::Notes,
        "source" => Column::Source,
        _ if IGNORED_COLUMNS.contains(&name) => Column::Ignored,
        _ => return None,
    })
}

/// Reads the header row and maps each column; an unknown or repeated column stops the
/// import before any row is read.
/// A header's column name as compared: trimmed, lower case (custom keys as written).
fn column_name(text: &str) -> String {
    let trimmed = text.trim();
    match trimmed.strip_prefix("custom.") {
        Some(key) => format!("custom.{key}"),
        None => trimmed.to_ascii_lowercase(),
    }
}

fn csv_columns(
    headers: &csv::ByteRecord,
    definitions: &[CustomFieldDefinition],
    skip: &[String],
) -> Result<Vec<(String, Column)>, String> {
    let mut columns = Vec::with_capacity(headers.len());
    let mut unknown = Vec::new();
    let mut names: Vec<String> = Vec::new();
    for (index, raw) in headers.iter().enumerate() {
        let text = std::str::from_utf8(raw)
            .map_err(|_| format!("the header's column {} is not valid UTF-8", index + 1))?;
        let text = if index == 0 {
            text.trim_start_matches('\u{feff}')
        } else {
            text
        };
        let name = column_name(text);
        if names.contains(&name) {
            return Err(format!("the header names column `{name}` twice"));
        }
        if skip.contains(&name) {
            columns.push((name.clone(), Column::Ignored));
            names.push(name);
            continue;
        }
        match column(&name, definitions) {
            Some(column) => columns.push((name.clone(), column)),
            None => unknown.push(if name.is_empty() {
                format!("(empty, column {})", index + 1)
            } else {
                name.clone()
            }),
        }
        names.push(name);
    }
    if !unknown.is_empty() {
        let custom_hint = if unknown.iter().any(|u| u.starts_with("custom.")) {
            " (a custom.KEY column needs a custom field with that key: define it first with POST /api/v1/custom-fields, or leave the column out with --skip-columns)"
        } else {
            ""
        };
        return Err(format!(
            "unknown columns: {}{custom_hint}. Known columns: name, kind, email, phone, wechat, qq, whatsapp, telegram, line, weibo, other, value_class, position, supply_chain_role, lifecycle, lost_reason, lead_source, language, needs, hobbies, notes, qualification_need, qualification_ability_to_pay, qualification_authority, communication_type, source, id, organization_id, referrer_id, custom.KEY",
            unknown.join(", ")
        ));
    }
    if !names.iter().any(|n| n == "name") {
        return Err("the header has no `name` column; every customer needs a name".into());
    }
    Ok(columns)
}

fn read_csv(
    input: Box<dyn Read + Send>,
    definitions: &[CustomFieldDefinition],
    skip: &[String],
    out: &Out<'_>,
) {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .buffer_capacity(1 << 20)
        .from_reader(input);
    let columns = match reader.byte_headers() {
        Ok(headers) => match csv_columns(headers, definitions, skip) {
            Ok(columns) => columns,
            Err(message) => {
                out.fatal(message);
                return;
            }
        },
        Err(error) => {
            out.fatal(format!("cannot read the header: {error}"));
            return;
        }
    };
    let mut record = csv::ByteRecord::new();
    let mut rows = Vec::with_capacity(MAX_BATCH_ROWS);
    let mut errors = Vec::new();
    loop {
        match reader.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(error) => {
                if let csv::ErrorKind::Io(_) = error.kind() {
                    out.fatal(format!("cannot read the file: {error}"));
                    return;
                }
                let line = error.position().map_or(0, |p| p.line());
                errors.push(RowError::new(line, "row", error.to_string()));
                continue;
            }
        }
        let line = record.position().map_or(0, |p| p.line());
        if record.len() == 1 && record.get(0).is_some_and(|f| f.is_empty()) {
            continue; // a blank line
        }
        match csv_row(line, &record, &columns) {
            Ok(row) => rows.push(row),
            Err(mut row_errors) => errors.append(&mut row_errors),
        }
        if rows.len() + errors.len() >= MAX_BATCH_ROWS {
            let position = reader.position().byte();
            let batch = std::mem::replace(&mut rows, Vec::with_capacity(MAX_BATCH_ROWS));
            if !out.rows(batch, std::mem::take(&mut errors), position) {
                return;
            }
        }
    }
    if !rows.is_empty() || !errors.is_empty() {
        out.rows(rows, errors, reader.position().byte());
    }
}

/// Parses one record; every field that cannot be read is reported.
fn csv_row(
    line: u64,
    record: &csv::ByteRecord,
    columns: &[(String, Column)],
) -> Result<ImportRow, Vec<RowError>> {
    if record.len() != columns.len() {
        return Err(vec![RowError::new(
            line,
            "row",
            format!(
                "has {} fields; the header has {}",
                record.len(),
                columns.len()
            ),
        )]);
    }
    let mut errors = Vec::new();
    let mut row = ImportRow {
        line,
        ..ImportRow::default()
    };
    let customer = &mut row.customer;
    let mut contacts: Vec<NewContact> = Vec::new();
    let mut qualification = Qualification::default();
    let mut qualified = false;
    let mut custom = Map::new();
    for ((name, column), raw) in columns.iter().zip(record.iter()) {
        let Ok(text) = std::str::from_utf8(raw) else {
            errors.push(RowError::new(line, name.as_str(), "is not valid UTF-8"));
            continue;
        };
        let value = text.trim();
        if value.is_empty() {
            continue;
        }
        let mut fail = |message: String| errors.push(RowError::new(line, name.as_str(), message));
        let owned = || Some(value.to_string());
        match column {
            Column::Id => row.id = owned(),
            Column::Name => customer.name = value.to_string(),
            Column::Kind => customer.kind = label(value).map_err(&mut fail).ok(),
            Column::OrganizationId => customer.organization_id = owned(),
            Column::Contact(channel) => {
                for (i, address) in value
                    .split(';')
                    .map(str::trim)
                    .filter(|a| !a.is_empty())
                    .enumerate()
                {
                    contacts.push(NewContact {
                        channel: *channel,
                        value: address.to_string(),
                        is_primary: i == 0,
                    });
                }
            }
            Column::ValueClass => customer.value_class = label(value).map_err(&mut fail).ok(),
            Column::Position => customer.position = label(value).map_err(&mut fail).ok(),
            Column::SupplyChainRole => {
                customer.supply_chain_role = label(value).map_err(&mut fail).ok()
            }
            Column::Lifecycle => customer.lifecycle = label(value).map_err(&mut fail).ok(),
            Column::LostReason => row.lost_reason = owned(),
            Column::LeadSource => customer.lead_source = label(value).map_err(&mut fail).ok(),
            Column::ReferrerId => customer.referrer_id = owned(),
            Column::QualificationNeed => {
                qualified = true;
                qualification.need = yes_no(value).map_err(&mut fail).ok();
            }
            Column::QualificationAbilityToPay => {
                qualified = true;
                qualification.ability_to_pay = yes_no(value).map_err(&mut fail).ok();
            }
            Column::QualificationAuthority => {
                qualified = true;
                qualification.authority = yes_no(value).map_err(&mut fail).ok();
            }
            Column::CommunicationType => {
                customer.communication_type = label(value).map_err(&mut fail).ok()
            }
            Column::Language => customer.language = owned(),
            Column::Needs => customer.needs = owned(),
            Column::Hobbies => customer.hobbies = owned(),
            Column::Notes => customer.notes = owned(),
            Column::Source => customer.source = label(value).map_err(&mut fail).ok(),
            Column::Custom(definition) => match custom_value(definition, value) {
                Ok(v) => {
                    custom.insert(definition.key.clone(), v);
                }
                Err(message) => fail(message),
            },
            Column::Ignored => {}
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    if qualified {
        customer.qualification = Some(qualification);
    }
    if !contacts.is_empty() {
        customer.contacts = Some(contacts);
    }
    if !custom.is_empty() {
        customer.custom_fields = Some(custom);
    }
    Ok(row)
}

/// A closed-vocabulary value: its stored name (`key`), or its English or Chinese label
/// (`Key customer`, `关键客户`) as people write them in spreadsheets.
fn label<T: Labelled>(value: &str) -> Result<T, String> {
    if let Ok(parsed) = T::parse(value) {
        return Ok(parsed);
    }
    let lower = value.to_lowercase().replace([' ', '-'], "_");
    T::ALL
        .iter()
        .copied()
        .find(|v| {
            v.as_str() == lower
                || v.label_en().eq_ignore_ascii_case(value)
                || v.label_zh() == value
                || v.label_zh().trim_end_matches(['客', '户']) == value
        })
        .ok_or_else(|| {
            let allowed: Vec<&str> = T::ALL.iter().map(|v| v.as_str()).collect();
            format!("`{value}` is not one of {}", allowed.join(", "))
        })
}

fn yes_no(value: &str) -> Result<bool, String> {
    match value.to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "是" | "有" => Ok(true),
        "false" | "no" | "n" | "0" | "否" | "無" | "无" => Ok(false),
        _ => Err(format!(
            "`{value}` is not yes or no (true/false, 1/0, 是/否)"
        )),
    }
}

/// A custom field's cell as the JSON value its type stores.
fn custom_value(definition: &CustomFieldDefinition, value: &str) -> Result<Value, String> {
    Ok(match definition.field_type {
        CustomFieldType::Number => {
            if let Ok(n) = value.parse::<i64>() {
                Value::from(n)
            } else {
                value
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .map(Value::Number)
                    .ok_or_else(|| format!("`{value}` is not a number"))?
            }
        }
        CustomFieldType::Boolean => Value::Bool(yes_no(value)?),
        CustomFieldType::Text | CustomFieldType::Date | CustomFieldType::Select => {
            Value::String(value.to_string())
        }
    })
}

// ---------------------------------------------------------------------------------
// JSON Lines

fn read_jsonl(input: Box<dyn Read + Send>, skip: &[String], out: &Out<'_>) {
    let mut reader = BufReader::with_capacity(1 << 20, input);
    let mut buffer = Vec::new();
    let mut line: u64 = 0;
    let mut position: u64 = 0;
    let mut rows = Vec::with_capacity(MAX_BATCH_ROWS);
    let mut errors = Vec::new();
    loop {
        buffer.clear();
        let read = match reader.read_until(b'\n', &mut buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(error) => {
                out.fatal(format!("cannot read the file: {error}"));
                return;
            }
        };
        line += 1;
        position += read as u64;
        let bytes = buffer
            .strip_suffix(b"\n")
            .map(|b| b.strip_suffix(b"\r").unwrap_or(b))
            .unwrap_or(&buffer);
        let bytes = if line == 1 {
            bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes)
        } else {
            bytes
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match json_row(line, bytes, skip) {
            Ok(row) => rows.push(row),
            Err(mut row_errors) => errors.append(&mut row_errors),
        }
        if rows.len() + errors.len() >= MAX_BATCH_ROWS {
            let batch = std::mem::replace(&mut rows, Vec::with_capacity(MAX_BATCH_ROWS));
            if !out.rows(batch, std::mem::take(&mut errors), position) {
                return;
            }
        }
    }
    if !rows.is_empty() || !errors.is_empty() {
        out.rows(rows, errors, position);
    }
}

/// Keys of an exported customer that kefu sets by itself on import.
const IGNORED_KEYS: &[&str] = &[
    "card",
    "created_at",
    "updated_at",
    "lifecycle_changed_at",
    "lost_at",
    "version",
    "qualification_assessment",
    "field_sources",
];

/// Parses one JSON object: the fields of a new customer (as the API takes them), plus
/// what `kefu export customers` writes.
fn json_row(line: u64, bytes: &[u8], skip: &[String]) -> Result<ImportRow, Vec<RowError>> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| vec![RowError::new(line, "row", "is not valid UTF-8")])?;
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(_) => {
            return Err(vec![RowError::new(line, "row", "is not a JSON object")]);
        }
        Err(error) => {
            return Err(vec![RowError::new(
                line,
                "row",
                format!("is not valid JSON: {error}"),
            )]);
        }
    };
    let mut errors = Vec::new();
    let mut row = ImportRow {
        line,
        ..ImportRow::default()
    };
    let mut name_seen = false;
    for (key, value) in object {
        if value.is_null() || skip.contains(&key) {
            continue;
        }
        let mut fail = |message: String| errors.push(RowError::new(line, key.clone(), message));
        let customer = &mut row.customer;
        match key.as_str() {
            "id" => row.id = string(&value).map_err(&mut fail).ok(),
            "name" => {
                name_seen = true;
                customer.name = string(&value).map_err(&mut fail).unwrap_or_default();
            }
            "kind" => customer.kind = json_label::<CustomerKind>(&value).map_err(&mut fail).ok(),
            "organization_id" => customer.organization_id = string(&value).map_err(&mut fail).ok(),
            "value_class" => {
                customer.value_class = json_label::<ValueClass>(&value).map_err(&mut fail).ok()
            }
            "position" => {
                customer.position = json_label::<Position>(&value).map_err(&mut fail).ok()
            }
            "supply_chain_role" => {
                customer.supply_chain_role = json_label::<SupplyChainRole>(&value)
                    .map_err(&mut fail)
                    .ok()
            }
            "lifecycle" => {
                customer.lifecycle = json_label::<LifecycleState>(&value).map_err(&mut fail).ok()
            }
            "lost_reason" => row.lost_reason = string(&value).map_err(&mut fail).ok(),
            "lead_source" => {
                customer.lead_source = json_label::<LeadSource>(&value).map_err(&mut fail).ok()
            }
            "referrer_id" => customer.referrer_id = string(&value).map_err(&mut fail).ok(),
            "qualification" => {
                customer.qualification = serde_json::from_value::<Qualification>(value.clone())
                    .map_err(|e| fail(e.to_string()))
                    .ok()
            }
            "communication_type" => {
                customer.communication_type = json_label::<CommunicationType>(&value)
                    .map_err(&mut fail)
                    .ok()
            }
            "language" => customer.language = string(&value).map_err(&mut fail).ok(),
            "needs" => customer.needs = string(&value).map_err(&mut fail).ok(),
            "hobbies" => customer.hobbies = string(&value).map_err(&mut fail).ok(),
            "notes" => customer.notes = string(&value).map_err(&mut fail).ok(),
            "source" => {
                customer.source = json_label::<InformationSource>(&value)
                    .map_err(&mut fail)
                    .ok()
            }
            "custom_fields" => match value {
                Value::Object(mut map) => {
                    map.retain(|k, _| !skip.contains(&format!("custom.{k}")));
                    customer.custom_fields = Some(map);
                }
                _ => fail("must be an object".into()),
            },
            "contacts" => customer.contacts = json_contacts(&value).map_err(&mut fail).ok(),
            _ if IGNORED_KEYS.contains(&key.as_str()) => {}
            _ => fail("is not a customer field".into()),
        }
    }
    if !name_seen && errors.is_empty() {
        errors.push(RowError::new(line, "name", "must not be empty"));
    }
    if errors.is_empty() {
        Ok(row)
    } else {
        Err(errors)
    }
}

fn string(value: &Value) -> Result<String, String> {
    value
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| "must be a string".into())
}

fn json_label<T: Labelled>(value: &Value) -> Result<T, String> {
    label(value.as_str().ok_or("must be a string")?)
}

/// `[{"channel": "email", "value": "…", "is_primary": true}]`; an exported contact's
/// `display_value` (the address as entered) is preferred to its normalised `value`.
fn json_contacts(value: &Value) -> Result<Vec<NewContact>, String> {
    let items = value.as_array().ok_or("must be an array")?;
    let mut contacts = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let object = item
            .as_object()
            .ok_or_else(|| format!("item {} is not an object", index + 1))?;
        let mut channel = None;
        let mut address = None;
        let mut display = None;
        let mut is_primary = false;
        for (key, v) in object {
            match key.as_str() {
                "channel" => {
                    channel = Some(
                        json_label::<ContactChannel>(v)
                            .map_err(|e| format!("item {}: channel: {e}", index + 1))?,
                    )
                }
                "value" => address = v.as_str().map(str::to_string),
                "display_value" => display = v.as_str().map(str::to_string),
                "is_primary" => is_primary = v.as_bool().unwrap_or(false),
                "id" | "source" => {}
                other => {
                    return Err(format!(
                        "item {}: `{other}` is not a contact field (channel, value, is_primary)",
                        index + 1
                    ));
                }
            }
        }
        let channel = channel.ok_or_else(|| format!("item {} has no channel", index + 1))?;
        let value = display
            .filter(|d| !d.trim().is_empty())
            .or(address)
            .ok_or_else(|| format!("item {} has no value", index + 1))?;
        contacts.push(NewContact {
            channel,
            value,
            is_primary,
        });
    }
    Ok(contacts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_accept_names_and_people_s_words() {
        assert_eq!(label::<ValueClass>("key"), Ok(ValueClass::Key));
        assert_eq!(label::<ValueClass>("关键客户"), Ok(ValueClass::Key));
        assert_eq!(label::<ValueClass>("Key customer"), Ok(ValueClass::Key));
        assert_eq!(
            label::<LifecycleState>("Potential"),
            Ok(LifecycleState::Potential)
        );
        assert!(label::<ValueClass>("vip").is_err());
    }

    #[test]
    fn json_rows_name_the_bad_field() {
        let errors = json_row(3, br#"{"name":"A","lifecycle":"gone","colour":"red"}"#, &[])
            .expect_err("two bad fields");
        let fields: Vec<&str> = errors.iter().map(|e| e.field.as_str()).collect();
        assert!(
            fields.contains(&"lifecycle") && fields.contains(&"colour"),
            "{errors:?}"
        );
        assert!(errors.iter().all(|e| e.line == 3));
    }
}
