//! One module per subcommand, each with a `run(args) -> Result<ExitCode, String>`; and what
//! several of them share: loading the model, the progress bar, writing result rows.

pub mod bench;
pub mod dataset;
pub mod files;
pub mod info;
pub mod local;
pub mod policy_report;
pub mod proxy;
pub mod report;
pub mod send;

use detect_core::{Detector, DetectorConfig, ModelSource};

use crate::args::{ModelArgs, OutputArgs, SignArgs};

/// The detector the model flags ask for (the bundled model, or $LAMBDA_DETECT_MODEL, by default).
pub fn load_detector(args: &ModelArgs) -> Result<Detector, String> {
    let source = match &args.model {
        Some(model) => ModelSource::Files {
            model: model.clone(),
            labels: args
                .labels
                .clone()
                .unwrap_or_else(|| model.with_file_name("coco_labels.txt")),
        },
        None => ModelSource::from_env(),
    };
    let config = DetectorConfig {
        threads: args.threads as usize,
        int8: !args.float,
        ..DetectorConfig::default()
    };
    Detector::load(&source, &config).map_err(|e| e.to_string())
}

/// The SigV4 signer the signing flags ask for, if any (credentials resolved once, here).
pub fn signer(
    args: &SignArgs,
    endpoint: &str,
) -> Result<Option<detect_eval::sigv4::Signer>, String> {
    if !args.sigv4 {
        return Ok(None);
    }
    let signer = detect_eval::sigv4::Signer::from_environment(args.region.as_deref(), endpoint)?;
    eprintln!(
        "signing requests with SigV4 (execute-api, {})",
        signer.region()
    );
    Ok(Some(signer))
}

/// A progress bar on stderr counting `what`.
pub fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

/// Write the rows where the output flags ask and print one summary line per dataset × location.
pub fn write_rows(output: &OutputArgs, rows: &[detect_eval::rows::Row]) -> Result<(), String> {
    use detect_eval::rows::{summarize, write_csv, write_json};
    if let Some(p) = &output.out {
        write_csv(p, rows).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    if let Some(p) = &output.json_out {
        write_json(p, rows).map_err(|e| format!("{}: {e}", p.display()))?;
    }
    for s in summarize(rows) {
        eprintln!(
            "{} / {}: {} images ({} ok), mean per image: inference {:.1} ms, upload {:.1} ms, total {:.1} ms; p50 {:.1} p90 {:.1} p99 {:.1} ms; {:.1} images/s",
            s.dataset, s.location, s.images, s.succeeded, s.mean_inference_ms, s.mean_upload_ms,
            s.mean_total_ms, s.p50_ms, s.p90_ms, s.p99_ms, s.images_per_s
        );
    }
    Ok(())
}
