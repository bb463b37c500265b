//! `kefu import customers FILE` (being written).

use crate::{CliError, CliResult};
use kefu_store::Store;
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum ImportCommand {
    /// Imports customers from CSV or JSON Lines.
    Customers(ImportArgs),
}

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    pub file: PathBuf,
    #[arg(long)]
    pub atomic: bool,
}

pub async fn run(_store: &Store, _command: ImportCommand) -> CliResult<()> {
    Err(CliError("import is not available yet".into()))
}
