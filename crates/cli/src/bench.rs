//! `kefu bench` (being written).

use crate::config::Config;
use crate::{CliError, CliResult};

#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

pub async fn run(_config: &Config, _args: BenchArgs) -> CliResult<()> {
    Err(CliError("bench is not available yet".into()))
}
