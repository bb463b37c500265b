//! `kefu kb import FILE`: knowledge-base entries from CSV or JSON Lines.

use std::path::PathBuf;

use clap::{Args, Subcommand};
use kefu_domain::Labelled;
use kefu_domain::kb::{KbKind, KbLanguage, KbStatus};
use kefu_store::kb::NewKbEntry;
use kefu_store::{Actor, Store};
use serde::Deserialize;

use crate::{CliError, CliResult};

#[derive(Subcommand, Debug)]
pub enum KbCommand {
    /// Imports entries from CSV (header row) or JSON Lines.
    ///
    /// Fields: question and answer (required), similar (CSV: several separated by `|`;
    /// JSON: an array), category, language (zh|en, from the question otherwise), kind
    /// (faq|article), status (draft|published|archived; draft unless --publish).
    /// Bad rows are reported with their line and skipped; the others are imported.
    Import(KbImportArgs),
}

#[derive(Args, Debug)]
pub struct KbImportArgs {
    pub file: PathBuf,
    /// Publish the entries that name no status (draft otherwise).
    #[arg(long)]
    pub publish: bool,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Row {
    question: String,
    answer: String,
    #[serde(default)]
    similar: Similar,
    #[serde(default)]
    category: Option<String>,
    #[serde(default)]
    language: Option<String>,
    #[serde(default)]
    kind: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

/// Similar questions: a JSON array, or (from CSV) one text separated by `|`.
#[derive(Deserialize, Default)]
#[serde(untagged)]
enum Similar {
    #[default]
    None,
    List(Vec<String>),
    Text(String),
}

impl Similar {
    fn into_vec(self) -> Vec<String> {
        match self {
            Similar::None => Vec::new(),
            Similar::List(list) => list,
            Similar::Text(text) => text.split('|').map(str::to_string).collect(),
        }
    }
}

fn label<T: Labelled>(value: Option<String>, field: &str) -> Result<Option<T>, String> {
    match value.as_deref().map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => T::parse(v).map(Some).map_err(|e| format!("{field}: {e}")),
    }
}

fn entry(row: Row, publish: bool) -> Result<NewKbEntry, String> {
    let status: Option<KbStatus> = label(row.status, "status")?;
    Ok(NewKbEntry {
        kind: label::<KbKind>(row.kind, "kind")?,
        question: row.question,
        similar: row.similar.into_vec(),
        answer: row.answer,
        category: row.category,
        language: label::<KbLanguage>(row.language, "language")?,
        status: status.or(publish.then_some(KbStatus::Published)),
    })
}

/// Rows of the file as (line number, row or why not).
fn rows(args: &KbImportArgs) -> CliResult<Vec<(usize, Result<Row, String>)>> {
    let bytes = std::fs::read(&args.file)
        .map_err(|e| CliError(format!("cannot read {}: {e}", args.file.display())))?;
    let csv = args
        .file
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("csv"));
    let mut out = Vec::new();
    if csv {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(bytes.as_slice());
        let headers = reader
            .headers()
            .map_err(|e| CliError(format!("{}: no header row: {e}", args.file.display())))?
            .clone();
        for (i, record) in reader.records().enumerate() {
            let line = i + 2;
            let row = record.map_err(|e| e.to_string()).and_then(|record| {
                record
                    .deserialize::<Row>(Some(&headers))
                    .map_err(|e| e.to_string())
            });
            out.push((line, row));
        }
    } else {
        let text = String::from_utf8_lossy(&bytes);
        for (i, line) in text.lines().enumerate() {
            if line.trim().is_empty() {
                continue;
            }
            out.push((
                i + 1,
                serde_json::from_str::<Row>(line).map_err(|e| e.to_string()),
            ));
        }
    }
    Ok(out)
}

pub async fn run(store: &Store, command: KbCommand) -> CliResult<()> {
    let KbCommand::Import(args) = command;
    let rows = rows(&args)?;
    let (mut imported, mut failed) = (0usize, 0usize);
    for (line, row) in rows {
        let result = match row.and_then(|r| entry(r, args.publish)) {
            Ok(new) => store
                .create_kb_entry(&Actor::cli(), new)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(e) => Err(e),
        };
        match result {
            Ok(()) => imported += 1,
            Err(reason) => {
                failed += 1;
                eprintln!("{}:{line}: {reason}", args.file.display());
            }
        }
    }
    println!("imported {imported} entries, {failed} rows refused");
    if imported == 0 && failed > 0 {
        return Err(CliError("no entry was imported".into()));
    }
    Ok(())
}
