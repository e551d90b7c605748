//! `detect send`: a collection to the function over HTTP (or, with a policy, partly or wholly
//! in this process), one row per image.

use std::process::ExitCode;

use super::{load_detector, progress_bar, signer, write_rows};
use crate::args::{EncodingArg, PolicyArg, SendArgs};
use crate::errors::image_status;
use crate::inputs::{collection, dataset_label};

pub fn run(args: SendArgs) -> Result<ExitCode, String> {
    use detect_eval::client::{send_collection, Encoding, SendConfig};
    let files = collection(&args.paths)?;
    let headers = args
        .headers
        .iter()
        .map(|h| {
            h.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .ok_or_else(|| format!("--header {h:?}: expected 'Name: value'"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let cfg = SendConfig {
        endpoint: args.endpoint.clone(),
        batch: args.batch.max(1),
        concurrency: args.concurrency.max(1),
        encoding: match args.encoding {
            EncodingArg::Json => Encoding::Json,
            EncodingArg::Binary => Encoding::Binary,
            EncodingArg::Multipart => Encoding::Multipart,
        },
        headers,
        dataset: dataset_label(&args.output, &args.paths),
        location: args.output.label.clone().unwrap_or_else(|| "remote".into()),
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        signer: signer(&args.sign, &args.endpoint)?,
    };
    if !(args.local_slowdown >= 1.0 && args.local_slowdown.is_finite()) {
        return Err("--local-slowdown must be at least 1".into());
    }
    if !(args.alpha > 0.0 && args.alpha <= 1.0) {
        return Err("--alpha must be in (0, 1]".into());
    }
    let bar = progress_bar(files.len(), "images");
    let rows = if args.policy == PolicyArg::Remote {
        send_collection(&files, &cfg, &|n| bar.inc(n))?
    } else {
        use detect_eval::adaptive::{run_policy, Policy, PolicyConfig};
        if args.concurrency > 1 || args.batch > 1 {
            eprintln!("note: --policy local|auto sends one image per request, one at a time");
        }
        let detector = load_detector(&args.model)?;
        let pc = PolicyConfig {
            policy: if args.policy == PolicyArg::Local {
                Policy::Local
            } else {
                Policy::Auto
            },
            local_slowdown: args.local_slowdown,
            alpha: args.alpha,
            explore_every: args.explore_every.max(1),
            max_explore_every: 4 * args.explore_every.max(1),
            warmup: args.warmup,
        };
        run_policy(&files, &cfg, &pc, &detector, image_status, &|n| bar.inc(n))?
    };
    bar.finish_and_clear();
    let remote = rows.iter().filter(|r| r.ran == "remote").count();
    eprintln!(
        "policy {}: {remote} of {} images ran remotely",
        match args.policy {
            PolicyArg::Local => "local",
            PolicyArg::Remote => "remote",
            PolicyArg::Auto => "auto",
        },
        rows.len()
    );
    write_rows(&args.output, &rows)?;
    let failed = rows.iter().filter(|r| !r.ok()).count();
    Ok(if failed == rows.len() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
