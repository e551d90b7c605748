//! `detect bench`: inference and whole-pipeline times over repeated passes, and throughput
//! with several images in flight; or, with `--out`, one pass written as rows like `detect local`.

use std::process::ExitCode;
use std::time::Instant;

use detect_core::{DetectOptions, Detector};
use detect_eval::stats::{mean, percentile};

use super::load_detector;
use crate::args::{BenchArgs, LocalArgs, OutputArgs};
use crate::inputs::{collect_images, paths_or_samples};

pub fn run(args: BenchArgs) -> Result<ExitCode, String> {
    if let Some(out) = args.out.clone() {
        return super::local::run(LocalArgs {
            output: OutputArgs {
                out: Some(out),
                json_out: None,
                label: None,
                dataset: None,
            },
            warmup: args.warmup,
            jobs: args.jobs,
            model: args.model,
            paths: args.paths,
        });
    }
    let paths = paths_or_samples(&args.paths);
    let (files, _) = collect_images(&paths)?;
    let detector = load_detector(&args.model)?;
    let images = Images::read(&detector, &files)?;
    let passes = args.repeat.max(1);
    for _ in 0..args.warmup {
        for input in &images.inputs {
            detector.infer(input.clone())?;
        }
    }
    let (times, pipeline) = time_passes(&detector, &images, passes)?;
    let jobs = args.jobs as usize;
    let parallel_images_per_s = throughput(&detector, &images.inputs, jobs, passes);
    let mean = mean(times.iter().copied());
    let load_ms = detector.load_timings().total_ms;
    if args.json {
        let out = serde_json::json!({
            "runtime": "lambda-detect-tract",
            "threads": args.model.threads,
            "median_ms": percentile(&times, 50.0),
            "mean_ms": mean,
            "p90_ms": percentile(&times, 90.0),
            "images_per_s": 1000.0 / mean,
            "pipeline_median_ms": percentile(&pipeline, 50.0),
            "jobs": jobs,
            "parallel_images_per_s": parallel_images_per_s,
            "images": images.inputs.len(),
            "runs": times.len(),
            "load_ms": load_ms,
        });
        println!("{out}");
    } else {
        println!(
            "tract, {} thread(s): inference median {:.2} ms, mean {mean:.2} ms, p90 {:.2} ms ({:.1} images/s); whole pipeline median {:.2} ms; {} images x {passes} passes; {jobs} parallel job(s): {parallel_images_per_s:.1} images/s; model load {load_ms:.0} ms",
            args.model.threads,
            percentile(&times, 50.0),
            percentile(&times, 90.0),
            1000.0 / mean,
            percentile(&pipeline, 50.0),
            images.inputs.len(),
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The usable images, both as the model's input (to time inference alone) and as encoded
/// bytes with their ids (to time the whole pipeline).
struct Images {
    inputs: Vec<Vec<f32>>,
    encoded: Vec<(String, Vec<u8>)>,
}

impl Images {
    fn read(detector: &Detector, files: &[std::path::PathBuf]) -> Result<Images, String> {
        let mut images = Images {
            inputs: Vec::new(),
            encoded: Vec::new(),
        };
        for f in files {
            let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
            match detector.preprocess(&bytes) {
                Ok(input) => {
                    images.inputs.push(input);
                    images.encoded.push((f.display().to_string(), bytes));
                }
                Err(e) => eprintln!("skipping {}: {e}", f.display()),
            }
        }
        if images.inputs.is_empty() {
            return Err("no usable images".into());
        }
        Ok(images)
    }
}

/// Sorted ms per inference and per whole pipeline over `passes` passes of every image.
fn time_passes(
    detector: &Detector,
    images: &Images,
    passes: usize,
) -> Result<(Vec<f64>, Vec<f64>), String> {
    let options = detector
        .resolve_options(&DetectOptions::default())
        .map_err(|e| e.to_string())?;
    let mut times = Vec::with_capacity(images.inputs.len() * passes);
    let mut pipeline = Vec::with_capacity(images.inputs.len() * passes);
    for _ in 0..passes {
        for input in &images.inputs {
            let input = input.clone();
            let t = Instant::now();
            detector.infer(input)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for (id, bytes) in &images.encoded {
            pipeline.push(detector.detect(id, bytes, &options).timings_ms.total);
        }
    }
    times.sort_by(f64::total_cmp);
    pipeline.sort_by(f64::total_cmp);
    Ok((times, pipeline))
}

/// Images per second with `jobs` threads each running every input `passes` times, all at once.
fn throughput(detector: &Detector, inputs: &[Vec<f32>], jobs: usize, passes: usize) -> f64 {
    let t = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                for _ in 0..passes {
                    for input in inputs {
                        let _ = detector.infer(input.clone());
                    }
                }
            });
        }
    });
    (jobs * passes * inputs.len()) as f64 / t.elapsed().as_secs_f64()
}
