//! `skillsync bench`: reproducible figures for the claims the README makes about API calls,
//! wall time and planning at scale. Not a test: it prints figures and checks only that each run
//! did what its scenario asks.

mod bound;
mod chaos;
mod child;
mod naive;
mod plan_scale;
pub(crate) mod scenario;
mod serve;
mod sim_load;
mod sync;
mod timed_journal;

use std::process::ExitCode;

use crate::args::{BenchArgs, BenchCommand};

/// Runs the chosen benchmark.
pub async fn run(args: &BenchArgs) -> anyhow::Result<ExitCode> {
    match &args.command {
        BenchCommand::Sync(sync_args) => sync::run(sync_args).await,
        BenchCommand::Plan(plan_args) => plan_scale::run(plan_args).await,
        BenchCommand::Chaos(chaos_args) => chaos::run(chaos_args).await,
        BenchCommand::Serve(serve_args) => serve::run(serve_args).await,
        BenchCommand::Sim(sim_args) => sim_load::run(sim_args).await,
    }
}
