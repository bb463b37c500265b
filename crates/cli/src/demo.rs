//! `kefu demo` (being written).

use crate::{CliError, CliResult};
use kefu_store::Store;

#[derive(clap::Args, Debug, Default)]
pub struct DemoArgs {}

pub async fn load(_store: &Store, _args: &DemoArgs) -> CliResult<String> {
    Err(CliError("demo is not available yet".into()))
}
