//! `kefu export` (being written).

use crate::{CliError, CliResult};
use kefu_store::Store;

#[derive(clap::Args, Debug)]
pub struct ExportArgs {
    pub what: String,
}

pub async fn run(_store: &Store, _args: ExportArgs) -> CliResult<()> {
    Err(CliError("export is not available yet".into()))
}
