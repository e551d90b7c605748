//! `detect proxy`: the throttling TCP proxy that emulates a link in front of a local endpoint.

use std::process::ExitCode;

use crate::args::ProxyArgs;

pub fn run(args: ProxyArgs) -> Result<ExitCode, String> {
    let cfg = detect_eval::proxy::ProxyConfig {
        listen: args.listen,
        target: args.target,
        bandwidth_mbit: args.bandwidth_mbit,
        delay_ms: args.delay_ms,
        max_connections: args.max_connections.max(1),
        schedule: match &args.schedule {
            Some(s) => detect_eval::proxy::parse_schedule(s)?,
            None => Vec::new(),
        },
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
    };
    for p in &cfg.schedule {
        eprintln!(
            "  from {:.1} s after the first byte: {} Mbit/s, +{} ms round trip",
            p.at.as_secs_f64(),
            p.mbit,
            p.delay_ms
        );
    }
    eprintln!(
        "proxy {} -> {}: {} Mbit/s, +{} ms round trip (emulated link), up to {} connections, {} s",
        cfg.listen, cfg.target, cfg.bandwidth_mbit, cfg.delay_ms, cfg.max_connections, args.timeout
    );
    let n = detect_eval::proxy::run(&cfg).map_err(|e| format!("proxy: {e}"))?;
    eprintln!("proxy done after {n} connection(s)");
    Ok(ExitCode::SUCCESS)
}
