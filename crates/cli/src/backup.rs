//! `kefu backup FILE`: a consistent online copy of the SQLite database.

use crate::CliResult;
use kefu_store::Store;
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct BackupArgs {
    /// Where to write the copy; must not exist yet.
    pub target: PathBuf,
}

pub async fn run(store: &Store, args: BackupArgs) -> CliResult<()> {
    store.backup_sqlite(&args.target).await?;
    println!("backed up to {}", args.target.display());
    Ok(())
}
