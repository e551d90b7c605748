//! `detect local`: a collection in this process (no HTTP), rows like `detect send`: the local
//! baseline of the offload study.

use std::process::ExitCode;

use super::{load_detector, progress_bar, write_rows};
use crate::args::LocalArgs;
use crate::errors::image_status;
use crate::inputs::{collection, dataset_label, paths_or_samples};

pub fn run(args: LocalArgs) -> Result<ExitCode, String> {
    let paths = paths_or_samples(&args.paths);
    let files = collection(&paths)?;
    let detector = load_detector(&args.model)?;
    let bar = progress_bar(files.len(), "images");
    let location = args
        .output
        .label
        .clone()
        .unwrap_or_else(|| "in-process".into());
    let rows = detect_eval::local::run_local(
        &detector,
        &files,
        &dataset_label(&args.output, &paths),
        &location,
        args.warmup,
        args.jobs.into(),
        image_status,
        &|n| bar.inc(n),
    )?;
    bar.finish_and_clear();
    write_rows(&args.output, &rows)?;
    Ok(ExitCode::SUCCESS)
}
