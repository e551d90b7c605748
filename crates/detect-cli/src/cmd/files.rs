//! `detect files`: detections for image files and directories, in this process or through the
//! function at `--endpoint` (optionally SigV4-signed), as a table or JSON, optionally drawn
//! onto copies of the images.

use std::path::PathBuf;
use std::process::ExitCode;

use detect_core::detector::ClassRef;
use detect_core::{DetectOptions, ImageResult};

use super::{load_detector, progress_bar, signer};
use crate::annotate::annotate_file;
use crate::args::{FilesArgs, Format};
use crate::errors::{image_status, EXIT_NO_IMAGE, UNREADABLE_STATUS};
use crate::inputs::collect_images;

fn class_refs(list: &Option<Vec<String>>) -> Option<Vec<ClassRef>> {
    list.as_ref().map(|l| {
        l.iter()
            .filter(|s| !s.trim().is_empty())
            .map(|s| match s.trim().parse::<usize>() {
                Ok(id) => ClassRef::Id(id),
                Err(_) => ClassRef::Name(s.trim().to_string()),
            })
            .collect()
    })
}

/// `s`, or "…" and its last `n - 1` characters when it is longer than `n` characters.
fn last_chars(s: &str, n: usize) -> String {
    let len = s.chars().count();
    if len > n {
        let tail: String = s.chars().skip(len - (n - 1)).collect();
        format!("…{tail}")
    } else {
        s.to_string()
    }
}

fn print_table(results: &[ImageResult]) {
    println!(
        "{:<40} {:>11} {:<16} {:>6} {:>22} {:>9}",
        "image", "size", "label", "score", "box x,y,w,h (px)", "total ms"
    );
    for r in results {
        let size = match (r.width, r.height) {
            (Some(w), Some(h)) => format!("{w}x{h}"),
            _ => "-".into(),
        };
        let id = last_chars(&r.id, 40);
        if !r.ok() {
            println!(
                "{id:<40} {size:>11} error {}: {}",
                r.status,
                r.error.as_deref().unwrap_or("")
            );
            continue;
        }
        if r.detections.is_empty() {
            println!(
                "{id:<40} {size:>11} {:<16} {:>6} {:>22} {:>9.1}",
                "(nothing)", "", "", r.timings_ms.total
            );
        }
        for (i, d) in r.detections.iter().enumerate() {
            let b = &d.box_px;
            let (id, size) = if i == 0 {
                (id.as_str(), size.as_str())
            } else {
                ("", "")
            };
            let total = if i == 0 {
                format!("{:.1}", r.timings_ms.total)
            } else {
                String::new()
            };
            let bx = format!("{},{},{},{}", b.x, b.y, b.width, b.height);
            println!(
                "{id:<40} {size:>11} {:<16} {:>6.3} {bx:>22} {total:>9}",
                d.label, d.score
            );
        }
    }
}

pub fn run(args: FilesArgs) -> Result<ExitCode, String> {
    let (files, from_dirs) = collect_images(&args.paths)?;
    if files.is_empty() {
        return Err(
            "no images found (looked for .jpg .jpeg .png .webp .gif .bmp .tif .tiff)".into(),
        );
    }
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let progress = if from_dirs {
        progress_bar(files.len(), "images")
    } else {
        indicatif::ProgressBar::hidden()
    };
    let results = match &args.endpoint {
        Some(endpoint) => remote_results(&args, endpoint, &files, &progress)?,
        None => {
            if args.sign.sigv4 {
                return Err("--sigv4 signs the requests of --endpoint URL: give one".into());
            }
            local_results(&args, &files, &progress)?
        }
    };
    progress.finish_and_clear();
    if let Some(dir) = &args.annotate {
        for (r, path) in results.iter().zip(&files) {
            if !r.ok() {
                continue;
            }
            if let Err(e) = annotate_file(path, r, dir) {
                eprintln!("warning: cannot annotate {}: {e}", path.display());
            }
        }
    }
    match args.format {
        Format::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(&results).map_err(|e| e.to_string())?
            )
        }
        Format::Table => print_table(&results),
    }
    let failed = results.iter().filter(|r| !r.ok()).count();
    if failed > 0 {
        eprintln!(
            "{failed} of {} images could not be processed",
            results.len()
        );
    }
    Ok(if failed == results.len() {
        ExitCode::from(EXIT_NO_IMAGE)
    } else {
        ExitCode::SUCCESS
    })
}

/// In this process: read and detect in chunks so memory stays bounded on large directories.
fn local_results(
    args: &FilesArgs,
    files: &[PathBuf],
    progress: &indicatif::ProgressBar,
) -> Result<Vec<ImageResult>, String> {
    let detector = load_detector(&args.model)?;
    let options = DetectOptions {
        min_score: Some(args.min_score),
        max_results: args.max_results,
        iou_threshold: args.iou_threshold,
        classes: class_refs(&args.classes),
        exclude_classes: class_refs(&args.exclude_classes),
        regular_nms: args.regular_nms.then_some(true),
    };
    let filter = detector
        .resolve_options(&options)
        .map_err(|e| e.to_string())?;
    let mut results = Vec::with_capacity(files.len());
    for chunk in files.chunks(64) {
        let images: Vec<(String, Vec<u8>)> = chunk
            .iter()
            .map(|p| {
                (
                    p.display().to_string(),
                    std::fs::read(p).unwrap_or_default(),
                )
            })
            .collect();
        let outcomes = detector.detect_batch(&images, &filter, args.jobs as usize);
        results.extend(outcomes.into_iter().zip(chunk).map(|(o, path)| {
            progress.inc(1);
            match std::fs::metadata(path) {
                Err(e) => ImageResult::failed(
                    o.id,
                    UNREADABLE_STATUS,
                    format!("cannot read file: {e}"),
                    o.timings_ms,
                ),
                Ok(_) => o.into_result(image_status),
            }
        }));
    }
    Ok(results)
}

/// Through the function at `endpoint`, the options as query parameters, --jobs requests in
/// flight.
fn remote_results(
    args: &FilesArgs,
    endpoint: &str,
    files: &[PathBuf],
    progress: &indicatif::ProgressBar,
) -> Result<Vec<ImageResult>, String> {
    use detect_eval::remote::{detect_remote, RemoteConfig};
    let cfg = RemoteConfig {
        endpoint: endpoint.to_string(),
        query: query_options(args),
        signer: signer(&args.sign, endpoint)?,
        concurrency: args.jobs as usize,
        timeout: std::time::Duration::from_secs(args.timeout.max(1)),
        unreadable_status: UNREADABLE_STATUS,
    };
    let named: Vec<(String, PathBuf)> = files
        .iter()
        .map(|p| (p.display().to_string(), p.clone()))
        .collect();
    Ok(detect_remote(&named, &cfg, &|n| progress.inc(n)))
}

/// The detection flags as the API's query parameters (docs/API.md).
fn query_options(args: &FilesArgs) -> Vec<(String, String)> {
    let mut q = vec![("min_score".to_string(), args.min_score.to_string())];
    if let Some(n) = args.max_results {
        q.push(("max_results".into(), n.to_string()));
    }
    if let Some(t) = args.iou_threshold {
        q.push(("iou_threshold".into(), t.to_string()));
    }
    for (key, list) in [
        ("classes", &args.classes),
        ("exclude_classes", &args.exclude_classes),
    ] {
        if let Some(l) = list.as_ref().filter(|l| !l.is_empty()) {
            q.push((key.into(), l.join(",")));
        }
    }
    if args.regular_nms {
        q.push(("regular_nms".into(), "true".into()));
    }
    q
}

#[cfg(test)]
mod tests {
    use super::last_chars;

    #[test]
    fn long_ids_keep_their_end_on_char_boundaries() {
        assert_eq!(last_chars("short.jpg", 40), "short.jpg");
        let long = format!("{}/cat.jpg", "é".repeat(40));
        let shown = last_chars(&long, 40);
        assert_eq!(shown.chars().count(), 40);
        assert!(shown.starts_with('…') && shown.ends_with("/cat.jpg"));
    }
}
