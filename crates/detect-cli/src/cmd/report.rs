//! `detect report`: the Markdown report and SVG charts from result files, optionally checked
//! against the rows after writing (`--check`), or only checked (`--check-only`: every table
//! of an existing report re-derived from its rows).

use std::process::ExitCode;

use crate::args::{ArchArg, ReportArgs};

pub fn run(args: ReportArgs) -> Result<ExitCode, String> {
    use detect_eval::model::{Arch, Prices};
    use detect_eval::{report, rows};
    let mut all = Vec::new();
    for f in &args.files {
        all.extend(rows::read_rows(f)?);
    }
    if all.is_empty() {
        return Err("no rows in the given files".into());
    }
    let d = Prices::default();
    let mut compute_ms = Vec::new();
    for (arch, flag, ms) in [
        (Arch::Arm64, "--compute-ms-arm64", args.compute_ms_arm64),
        (Arch::X86_64, "--compute-ms-x86-64", args.compute_ms_x86_64),
    ] {
        match ms {
            Some(ms) if ms > 0.0 && ms.is_finite() => compute_ms.push((arch, ms)),
            Some(ms) => return Err(format!("{flag}: {ms} is not a time in ms")),
            None => {}
        }
    }
    let opts = report::ReportOptions {
        machine: args.machine,
        date: args.date,
        prices: Prices {
            lambda_gb_s_arm64: args.price_gb_s_arm64.unwrap_or(d.lambda_gb_s_arm64),
            lambda_gb_s_x86_64: args.price_gb_s_x86_64.unwrap_or(d.lambda_gb_s_x86_64),
            lambda_per_million_requests: args
                .price_lambda_requests
                .unwrap_or(d.lambda_per_million_requests),
            http_api_per_million_requests: args
                .price_http_api_requests
                .unwrap_or(d.http_api_per_million_requests),
            rekognition_per_image: args.price_rekognition.unwrap_or(d.rekognition_per_image),
            local_per_hour: args.price_local_hour.unwrap_or(d.local_per_hour),
        },
        cold_start_ms: args.cold_start_ms,
        drift_pct: args.drift_pct,
        remote_arch: match args.remote_arch {
            Some(ArchArg::Arm64) => Some(Arch::Arm64),
            Some(ArchArg::X86_64) => Some(Arch::X86_64),
            None => Arch::this_build(),
        },
        compute_ms,
        inputs: args
            .files
            .iter()
            .map(|f| {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            })
            .collect(),
    };
    if !args.check_only {
        report::write_report(&all, &args.out, &opts)
            .map_err(|e| format!("{}: {e}", args.out.display()))?;
        eprintln!(
            "report: {} ({} rows)",
            args.out.join("README.md").display(),
            all.len()
        );
    }
    if args.check || args.check_only {
        let path = args.out.join("README.md");
        let md = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        let checks = report::check_table(&md, &all).and_then(|groups| {
            report::check_every_table(&md, &all, &opts).map(|tables| (groups, tables))
        });
        match checks {
            Ok((groups, tables)) => eprintln!(
                "check: the dataset × location table equals the rows ({groups} groups); all {tables} tables re-derived from them stand in the report"
            ),
            Err(e) => {
                eprintln!("check failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
