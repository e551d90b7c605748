//! `detect policy-report`: the policy study's table as Markdown.

use std::process::ExitCode;

use crate::args::PolicyReportArgs;

pub fn run(args: PolicyReportArgs) -> Result<ExitCode, String> {
    use detect_eval::{adaptive::policy_table, rows::read_rows};
    let mut all = Vec::new();
    for f in &args.files {
        all.extend(read_rows(f)?);
    }
    let mut md = String::new();
    if let Some(p) = &args.preamble {
        md.push_str(p);
        md.push_str("\n\n");
    }
    md.push_str(&policy_table(&all));
    match &args.out {
        Some(p) => std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?,
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}
