//! `detect policy-report`: the policy study's table as Markdown, or (`--check-only`) the
//! table re-derived from the rows and required to stand in an existing file.

use std::process::ExitCode;

use crate::args::PolicyReportArgs;

pub fn run(args: PolicyReportArgs) -> Result<ExitCode, String> {
    use detect_eval::{policy_table::policy_table, rows::read_rows};
    let mut all = Vec::new();
    for f in &args.files {
        all.extend(read_rows(f)?);
    }
    let table = policy_table(&all);
    if args.check_only {
        let Some(path) = &args.out else {
            return Err("--check-only needs --out FILE (the report to check)".into());
        };
        let md = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        if md.contains(&table) {
            eprintln!(
                "check: the policy table re-derived from the rows stands in {}",
                path.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
        eprintln!(
            "check failed: {} does not hold this table:\n{table}",
            path.display()
        );
        return Ok(ExitCode::FAILURE);
    }
    let mut md = String::new();
    if let Some(p) = &args.preamble {
        md.push_str(p);
        md.push_str("\n\n");
    }
    md.push_str(&table);
    match &args.out {
        Some(p) => std::fs::write(p, &md).map_err(|e| format!("{}: {e}", p.display()))?,
        None => print!("{md}"),
    }
    Ok(ExitCode::SUCCESS)
}
