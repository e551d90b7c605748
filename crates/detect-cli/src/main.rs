//! `detect`: the command-line face of the library. `main` parses the arguments ([`args`]) and
//! hands each subcommand to its module in [`cmd`]; errors map to statuses and exit codes in
//! [`errors`]. Detection lives in detect-core, the offload study in detect-eval.

use std::process::ExitCode;

use clap::Parser;

mod annotate;
mod args;
mod cmd;
mod errors;
mod inputs;

use args::{Cli, Command};

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Files(args) => cmd::files::run(args),
        Command::Info(args) => cmd::info::run(args),
        Command::Bench(args) => cmd::bench::run(args),
        Command::Dataset(args) => cmd::dataset::run(args),
        Command::Send(args) => cmd::send::run(args),
        Command::Local(args) => cmd::local::run(args),
        Command::Proxy(args) => cmd::proxy::run(args),
        Command::Report(args) => cmd::report::run(args),
        Command::PolicyReport(args) => cmd::policy_report::run(args),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(errors::EXIT_USAGE)
    })
}
