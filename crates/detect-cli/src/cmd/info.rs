//! `detect info`: what the model is, how long loading took, the plan's ops and optionally
//! a per-op-kind profile, as JSON.

use std::process::ExitCode;

use super::load_detector;
use crate::args::InfoArgs;

pub fn run(args: InfoArgs) -> Result<ExitCode, String> {
    let detector = load_detector(&args.model)?;
    let mut out = serde_json::json!({
        "model": detector.info(),
        "load_ms": detector.load_timings(),
        "tract_plan_ops": detector.plan_op_counts(),
    });
    if let Some(runs) = args.profile {
        out["profile_ms_per_inference"] = serde_json::json!(detector.profile(runs)?);
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out).map_err(|e| e.to_string())?
    );
    Ok(ExitCode::SUCCESS)
}
