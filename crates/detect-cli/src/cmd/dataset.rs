//! `detect dataset`: write a deterministic image collection and summarize its sizes.

use std::process::ExitCode;

use super::progress_bar;
use crate::args::DatasetArgs;

pub fn run(args: DatasetArgs) -> Result<ExitCode, String> {
    use detect_eval::dataset::{generate, Preset};
    let preset = Preset::parse(&args.preset)
        .ok_or_else(|| format!("unknown preset {:?} (small, medium, big)", args.preset))?;
    let count = args.count.unwrap_or(preset.count());
    let bar = progress_bar(count, "images");
    let variants = generate(&args.out, args.seed, count, args.jobs, &|| bar.inc(1))
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    bar.finish_and_clear();
    let sizes: Vec<usize> = variants.iter().map(|v| v.bytes).collect();
    let total: usize = sizes.iter().sum();
    eprintln!(
        "{count} images ({} preset, seed {}) in {}: {:.1} MB, {:.1}–{:.1} KB, mean {:.1} KB",
        preset.name(),
        args.seed,
        args.out.display(),
        total as f64 / 1e6,
        sizes.iter().min().copied().unwrap_or(0) as f64 / 1e3,
        sizes.iter().max().copied().unwrap_or(0) as f64 / 1e3,
        total as f64 / count.max(1) as f64 / 1e3
    );
    Ok(ExitCode::SUCCESS)
}
