//! `kefu export customers|cases|timeline`: JSON Lines (one API-shaped object per line)
//! or CSV (flat columns), page by page, so memory stays flat however large the data.
//!
//! A customers CSV has exactly the columns `kefu import customers` reads, so an export
//! can be imported into another kefu (ids, organisations and referrers included).

use crate::{CliError, CliResult};
use kefu_domain::Labelled;
use kefu_domain::contacts::ContactChannel;
use kefu_store::Store;
use kefu_store::cases::{Case, CaseFilter};
use kefu_store::customers::{Customer, CustomerFilter};
use kefu_store::page::{Page, PageRequest};
use kefu_store::timeline::{TimelineEntry, TimelineFilter};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    /// What to export.
    #[arg(value_enum)]
    pub what: What,
    /// jsonl or csv [default: csv when --output ends in .csv, jsonl otherwise].
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// Where to write [default: standard output]. The file appears complete or not at all.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum What {
    Customers,
    Cases,
    Timeline,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Jsonl,
    Csv,
}

const PAGE: u32 = 200;

pub async fn run(store: &Store, args: ExportArgs) -> CliResult<()> {
    let format = args.format.unwrap_or_else(|| match &args.output {
        Some(path)
            if path
                .extension()
                .is_some_and(|e| e.eq_ignore_ascii_case("csv")) =>
        {
            Format::Csv
        }
        _ => Format::Jsonl,
    });
    let mut sink = Sink::open(args.output.as_deref())?;
    let total = match args.what {
        What::Customers => store.customer_count().await?,
        What::Cases => store.case_count().await?,
        What::Timeline => store.timeline_count().await?,
    };
    let bar = crate::progress_bar(u64::try_from(total).unwrap_or(0), "exported");
    let result = export(store, args.what, format, &mut sink, &bar).await;
    bar.finish_and_clear();
    let count = match result {
        Ok(count) => count,
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => return Ok(()),
        Err(error) => {
            sink.abandon();
            return Err(CliError(format!("export failed: {error}")));
        }
    };
    let place = sink.finish()?;
    let noun = match args.what {
        What::Customers => "customers",
        What::Cases => "cases",
        What::Timeline => "timeline entries",
    };
    eprintln!("exported {count} {noun}{place}");
    Ok(())
}

/// Errors are I/O errors here so that a closed pipe (`kefu export … | head`) can end
/// the export quietly; store errors are wrapped.
async fn export(
    store: &Store,
    what: What,
    format: Format,
    sink: &mut Sink,
    bar: &indicatif::ProgressBar,
) -> std::io::Result<u64> {
    let out = sink.writer();
    match (what, format) {
        (What::Customers, Format::Jsonl) => {
            let fetch =
                |cursor| async move { store.customers(&customer_filter(), &request(cursor)).await };
            each_page(fetch, bar, |items: &[Customer]| write_jsonl(out, items)).await
        }
        (What::Customers, Format::Csv) => {
            let custom: Vec<String> = store
                .custom_fields()
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|d| d.key)
                .collect();
            let mut csv = csv::Writer::from_writer(out);
            let mut header: Vec<String> = CUSTOMER_COLUMNS_BEFORE_CONTACTS
                .iter()
                .map(|c| c.to_string())
                .collect();
            header.extend(ContactChannel::ALL.iter().map(|c| c.as_str().to_string()));
            header.extend(
                CUSTOMER_COLUMNS_AFTER_CONTACTS
                    .iter()
                    .map(|c| c.to_string()),
            );
            header.extend(custom.iter().map(|k| format!("custom.{k}")));
            header.extend(["created_at".to_string(), "updated_at".to_string()]);
            csv.write_record(&header).map_err(csv_error)?;
            let fetch =
                |cursor| async move { store.customers(&customer_filter(), &request(cursor)).await };
            let count = each_page(fetch, bar, |items: &[Customer]| {
                for customer in items {
                    csv.write_record(customer_record(customer, &custom))
                        .map_err(csv_error)?;
                }
                Ok(())
            })
            .await?;
            csv.flush()?;
            Ok(count)
        }
        (What::Cases, Format::Jsonl) => {
            let fetch = |cursor| async move { store.cases(&case_filter(), &request(cursor)).await };
            each_page(fetch, bar, |items: &[Case]| write_jsonl(out, items)).await
        }
        (What::Cases, Format::Csv) => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(CASE_COLUMNS).map_err(csv_error)?;
            let fetch = |cursor| async move { store.cases(&case_filter(), &request(cursor)).await };
            let count = each_page(fetch, bar, |items: &[Case]| {
                for case in items {
                    csv.write_record(flat_record(case, CASE_COLUMNS))
                        .map_err(csv_error)?;
                }
                Ok(())
            })
            .await?;
            csv.flush()?;
            Ok(count)
        }
        (What::Timeline, Format::Jsonl) => {
            let fetch = |cursor| async move {
                store
                    .timeline(&TimelineFilter::default(), &request(cursor))
                    .await
            };
            each_page(fetch, bar, |items: &[TimelineEntry]| {
                write_jsonl(out, items)
            })
            .await
        }
        (What::Timeline, Format::Csv) => {
            let mut csv = csv::Writer::from_writer(out);
            csv.write_record(TIMELINE_COLUMNS).map_err(csv_error)?;
            let fetch = |cursor| async move {
                store
                    .timeline(&TimelineFilter::default(), &request(cursor))
                    .await
            };
            let count = each_page(fetch, bar, |items: &[TimelineEntry]| {
                for entry in items {
                    csv.write_record(flat_record(entry, TIMELINE_COLUMNS))
                        .map_err(csv_error)?;
                }
                Ok(())
            })
            .await?;
            csv.flush()?;
            Ok(count)
        }
    }
}

/// Fetches page after page and hands each to `write`; returns the number of items.
async fn each_page<T, Fut>(
    mut fetch: impl FnMut(Option<String>) -> Fut,
    bar: &indicatif::ProgressBar,
    mut write: impl FnMut(&[T]) -> std::io::Result<()>,
) -> std::io::Result<u64>
where
    Fut: std::future::Future<Output = kefu_store::Result<Page<T>>>,
{
    let mut count = 0u64;
    let mut cursor = None;
    loop {
        let page = fetch(cursor).await.map_err(store_error)?;
        write(&page.items)?;
        count += page.items.len() as u64;
        bar.set_position(count);
        match page.next_cursor {
            Some(next) => cursor = Some(next),
            None => return Ok(count),
        }
    }
}

fn store_error(error: kefu_store::StoreError) -> std::io::Error {
    std::io::Error::other(error.to_string())
}

fn case_filter() -> CaseFilter {
    CaseFilter {
        sort: Some("created".into()),
        ..CaseFilter::default()
    }
}

fn customer_filter() -> CustomerFilter {
    // Oldest first: organisations and referrers come before the customers that name
    // them, which is the order an import needs.
    CustomerFilter {
        sort: Some("created".into()),
        ..CustomerFilter::default()
    }
}

fn request(cursor: Option<String>) -> PageRequest {
    PageRequest {
        limit: Some(PAGE),
        cursor,
    }
}

fn csv_error(error: csv::Error) -> std::io::Error {
    match error.into_kind() {
        csv::ErrorKind::Io(error) => error,
        other => std::io::Error::other(format!("{other:?}")),
    }
}

fn write_jsonl<T: serde::Serialize>(
    out: &mut (dyn Write + Send),
    items: &[T],
) -> std::io::Result<()> {
    for item in items {
        serde_json::to_writer(&mut *out, item)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

const CUSTOMER_COLUMNS_BEFORE_CONTACTS: &[&str] = &["id", "name", "kind", "organization_id"];
const CUSTOMER_COLUMNS_AFTER_CONTACTS: &[&str] = &[
    "value_class",
    "position",
    "supply_chain_role",
    "lifecycle",
    "lost_reason",
    "lead_source",
    "referrer_id",
    "qualification_need",
    "qualification_ability_to_pay",
    "qualification_authority",
    "communication_type",
    "language",
    "needs",
    "hobbies",
    "notes",
];

fn customer_record(customer: &Customer, custom: &[String]) -> Vec<String> {
    let label = |v: Option<&'static str>| v.unwrap_or_default().to_string();
    let yes_no = |v: Option<bool>| match v {
        Some(true) => "true".to_string(),
        Some(false) => "false".to_string(),
        None => String::new(),
    };
    let mut record = vec![
        customer.id.clone(),
        customer.name.clone(),
        customer.kind.as_str().to_string(),
        customer.organization_id.clone().unwrap_or_default(),
    ];
    // One column per channel; several addresses joined with `;`, the primary first.
    for channel in ContactChannel::ALL {
        let mut addresses: Vec<&kefu_store::customers::Contact> = customer
            .contacts
            .iter()
            .filter(|c| c.channel == *channel)
            .collect();
        addresses.sort_by_key(|c| !c.is_primary);
        record.push(
            addresses
                .iter()
                .map(|c| c.display_value.as_str())
                .collect::<Vec<_>>()
                .join("; "),
        );
    }
    record.extend([
        customer.value_class.as_str().to_string(),
        customer.position.as_str().to_string(),
        label(customer.supply_chain_role.map(Labelled::as_str)),
        customer.lifecycle.as_str().to_string(),
        customer.lost_reason.clone().unwrap_or_default(),
        label(customer.lead_source.map(Labelled::as_str)),
        customer.referrer_id.clone().unwrap_or_default(),
        yes_no(customer.qualification.need),
        yes_no(customer.qualification.ability_to_pay),
        yes_no(customer.qualification.authority),
        label(customer.communication_type.map(Labelled::as_str)),
        customer.language.clone(),
        customer.needs.clone(),
        customer.hobbies.clone(),
        customer.notes.clone(),
    ]);
    for key in custom {
        record.push(cell(
            customer.custom_fields.get(key).unwrap_or(&Value::Null),
        ));
    }
    record.push(customer.created_at.to_string());
    record.push(customer.updated_at.to_string());
    record
}

const CASE_COLUMNS: &[&str] = &[
    "id",
    "number",
    "customer_id",
    "customer_name",
    "kind",
    "subject",
    "status",
    "priority",
    "channel",
    "service_stage",
    "technical",
    "charging",
    "service_mode",
    "recurrence",
    "team_id",
    "assignee_id",
    "first_owner_id",
    "merged_into_id",
    "created_at",
    "updated_at",
    "first_response_at",
    "solved_at",
    "closed_at",
    "version",
];

const TIMELINE_COLUMNS: &[&str] = &[
    "id",
    "customer_id",
    "case_id",
    "case_number",
    "kind",
    "channel",
    "direction",
    "interaction_type",
    "content_type",
    "summary",
    "data",
    "actor_id",
    "occurred_at",
    "created_at",
];

/// The named fields of an API object as CSV cells.
fn flat_record<T: serde::Serialize>(item: &T, columns: &[&str]) -> Vec<String> {
    let value = serde_json::to_value(item).unwrap_or(Value::Null);
    columns
        .iter()
        .map(|column| cell(value.get(column).unwrap_or(&Value::Null)))
        .collect()
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        other => other.to_string(),
    }
}

/// Standard output, or a file written beside its final name and renamed into place
/// when complete.
struct Sink {
    out: Box<dyn Write + Send>,
    target: Option<(PathBuf, PathBuf)>,
}

impl Sink {
    fn open(path: Option<&Path>) -> CliResult<Sink> {
        match path {
            None => Ok(Sink {
                out: Box::new(std::io::BufWriter::with_capacity(
                    1 << 16,
                    std::io::stdout(),
                )),
                target: None,
            }),
            Some(path) if path.as_os_str() == "-" => Sink::open(None),
            Some(path) => {
                let mut partial = path.as_os_str().to_owned();
                partial.push(format!(".partial-{}", std::process::id()));
                let partial = PathBuf::from(partial);
                let file = std::fs::File::create(&partial)
                    .map_err(|e| CliError(format!("cannot write {}: {e}", path.display())))?;
                Ok(Sink {
                    out: Box::new(std::io::BufWriter::with_capacity(1 << 16, file)),
                    target: Some((partial, path.to_path_buf())),
                })
            }
        }
    }

    fn writer(&mut self) -> &mut (dyn Write + Send) {
        &mut *self.out
    }

    /// Flushes and moves the file into place; returns " to FILE" for the summary.
    fn finish(mut self) -> CliResult<String> {
        match self.out.flush() {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
            Err(e) => {
                self.abandon();
                return Err(CliError(format!("export failed: {e}")));
            }
        }
        drop(self.out);
        match self.target.take() {
            Some((partial, path)) => {
                std::fs::rename(&partial, &path).map_err(|e| {
                    let _ = std::fs::remove_file(&partial);
                    CliError(format!("cannot write {}: {e}", path.display()))
                })?;
                Ok(format!(" to {}", path.display()))
            }
            None => Ok(String::new()),
        }
    }

    fn abandon(&mut self) {
        if let Some((partial, _)) = self.target.take() {
            let _ = std::fs::remove_file(partial);
        }
    }
}
