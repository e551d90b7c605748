//! `detect`: the command-line face of the library. Argument parsing and printing only;
//! everything else lives in detect-core and detect-eval.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
mod annotate;
mod errors;

use annotate::annotate_file;
use detect_core::detector::ClassRef;
use detect_core::preprocess::IMAGE_EXTENSIONS;
use detect_core::{DetectOptions, Detector, DetectorConfig, ImageResult, ModelSource};
use errors::{image_status, EXIT_NO_IMAGE, EXIT_USAGE, UNREADABLE_STATUS};

#[derive(Parser)]
#[command(
    name = "detect",
    version,
    about = "Object detection with SSD MobileNet V2 COCO (tract-tflite)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Detect objects in image files and directories (searched recursively).
    Files(FilesArgs),
    /// Load the model and print what it is and how long loading took.
    Info(InfoArgs),
    /// Time inference (and the whole pipeline) on images, in-process.
    Bench(BenchArgs),
    /// Write a deterministic image collection (the seed's SMALL / MEDIUM / BIG).
    Dataset(DatasetArgs),
    /// Send a collection to the function over HTTP and record one row per image.
    Send(SendArgs),
    /// Run a collection in-process (no HTTP) and record rows like `send` (the local baseline).
    Local(LocalArgs),
    /// A throttling TCP proxy: an emulated link (bandwidth + delay) in front of a local endpoint.
    Proxy(ProxyArgs),
    /// Markdown report + SVG charts from result files (CSV or JSON of send/local/bench --out).
    Report(ReportArgs),
    /// The policy study's table (rows labelled "PROFILE / POLICY") as Markdown.
    PolicyReport(PolicyReportArgs),
}

#[derive(Args)]
struct PolicyReportArgs {
    /// Result files of `detect send --policy ...` (CSV or JSON).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Markdown file to write (printed to stdout without).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Text put above the table (setup, what is emulated).
    #[arg(long)]
    preamble: Option<String>,
}

#[derive(Args)]
struct ReportArgs {
    /// Result files (CSV or JSON).
    #[arg(required = true, value_name = "FILE")]
    files: Vec<PathBuf>,
    /// Directory for README.md and the SVGs (created).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    /// Machine description for the header (e.g. "2 cores, AMD EPYC").
    #[arg(long)]
    machine: Option<String>,
    /// Date for the header.
    #[arg(long)]
    date: Option<String>,
    /// Penalty of a cold start, ms, when the rows contain none to measure.
    #[arg(long, default_value_t = 150.0)]
    cold_start_ms: f64,
    /// USD per GB-s, Lambda arm64.
    #[arg(long)]
    price_gb_s_arm64: Option<f64>,
    /// USD per GB-s, Lambda x86_64.
    #[arg(long)]
    price_gb_s_x86_64: Option<f64>,
    /// USD per million Lambda requests.
    #[arg(long)]
    price_lambda_requests: Option<f64>,
    /// USD per million HTTP API requests.
    #[arg(long)]
    price_http_api_requests: Option<f64>,
    /// USD per image, Rekognition DetectLabels.
    #[arg(long)]
    price_rekognition: Option<f64>,
    /// USD per hour of the local machine.
    #[arg(long)]
    price_local_hour: Option<f64>,
    /// After writing, read the report back and fail unless its table equals the rows.
    #[arg(long)]
    check: bool,
}

#[derive(Args)]
struct ProxyArgs {
    /// Address to listen on, e.g. 127.0.0.1:9100.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Where to forward, e.g. 127.0.0.1:9000.
    #[arg(long)]
    target: std::net::SocketAddr,
    /// Link rate in Mbit/s, each direction (0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    bandwidth_mbit: f64,
    /// Added round-trip time in ms.
    #[arg(long, default_value_t = 0.0)]
    delay_ms: f64,
    /// A link that changes: `TIMEs:RATEmbit:DELAYms,...` (e.g. "0s:100mbit:10ms,4s:4mbit:80ms"),
    /// times from the first forwarded byte; before the first phase, --bandwidth-mbit/--delay-ms.
    #[arg(long)]
    schedule: Option<String>,
    /// Stop accepting after this many connections.
    #[arg(long, default_value_t = 64)]
    max_connections: usize,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 900)]
    timeout: u64,
}

#[derive(Args)]
struct DatasetArgs {
    /// small (296 images), medium (2070) or big (4913).
    #[arg(long, default_value = "small")]
    preset: String,
    /// Directory to write into (created).
    #[arg(long, value_name = "DIR")]
    out: PathBuf,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Images to write instead of the preset's count (the first N of the preset's collection).
    #[arg(long)]
    count: Option<usize>,
    /// Threads encoding images (the bytes do not depend on it).
    #[arg(long, default_value_t = 2)]
    jobs: usize,
}

#[derive(Args)]
struct OutputArgs {
    /// Write the rows as CSV.
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    /// Write the summary and rows as JSON.
    #[arg(long = "json-out", value_name = "FILE")]
    json_out: Option<PathBuf>,
    /// Location label for the rows (e.g. "local watch", "emulated 10 Mbit/s + 60 ms").
    #[arg(long)]
    label: Option<String>,
    /// Dataset label for the rows (default: the directory's name).
    #[arg(long)]
    dataset: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
enum EncodingArg {
    Json,
    Binary,
    Multipart,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum PolicyArg {
    /// Every image in this process (the code path of `detect local`).
    Local,
    /// Every image to the endpoint.
    Remote,
    /// Per image, where the running estimates predict it is faster (with probes).
    Auto,
}

#[derive(Args)]
struct SendArgs {
    /// Where images run: remote (default), local, or auto (decided per image; one image per
    /// request, one at a time).
    #[arg(long, value_enum, default_value = "remote")]
    policy: PolicyArg,
    /// Emulate a slower local device: local images take F × their measured time (sleeping the
    /// rest); the rows hold the emulated time. Label such runs as emulated.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    local_slowdown: f64,
    /// auto: probe the option not chosen after it has not run for N images (doubling while
    /// probes confirm the choice, up to 4 N).
    #[arg(long, default_value_t = 10, value_name = "N")]
    explore_every: usize,
    /// auto: weight of a new sample in the running estimates (EWMA).
    #[arg(long, default_value_t = 0.5)]
    alpha: f64,
    /// local, auto: images run locally untimed before the first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[command(flatten)]
    model: ModelArgs,
    /// The detect URL: http://127.0.0.1:PORT/lambda-url/detect-lambda/api/detect for
    /// `cargo lambda watch`, or a deployed API's URL + /api/detect.
    #[arg(long)]
    endpoint: String,
    /// Images per request (json and multipart; binary sends one).
    #[arg(long, default_value_t = 1)]
    batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 1)]
    concurrency: usize,
    #[arg(long, value_enum, default_value = "binary")]
    encoding: EncodingArg,
    /// Extra request header, `Name: value` (repeatable; e.g. authorization).
    #[arg(long = "header", value_name = "'K: V'")]
    headers: Vec<String>,
    /// Seconds before one request is given up.
    #[arg(long, default_value_t = 60)]
    timeout: u64,
    #[command(flatten)]
    output: OutputArgs,
    /// The collection (a directory or files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct LocalArgs {
    #[command(flatten)]
    output: OutputArgs,
    /// Images run untimed first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    #[command(flatten)]
    model: ModelArgs,
    /// The collection (a directory or files).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
}

#[derive(Args)]
struct BenchArgs {
    /// Image files or directories (default: the bundled sample images).
    #[arg(value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// Timed passes over all images.
    #[arg(long, default_value_t = 20)]
    repeat: usize,
    /// Untimed passes first.
    #[arg(long, default_value_t = 3)]
    warmup: usize,
    /// Print one JSON object (same keys as scripts/litert_bench.py).
    #[arg(long)]
    json: bool,
    /// Also measure throughput with this many images in flight on as many threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Instead of timing passes, run the collection once and write rows like `detect send`
    /// (CSV; the local baseline, location "in-process").
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

#[derive(Args, Clone)]
struct ModelArgs {
    /// A TFLite SSD model with a TFLite_Detection_PostProcess op (default: the bundled model,
    /// or $LAMBDA_DETECT_MODEL).
    #[arg(long, value_name = "FILE")]
    model: Option<PathBuf>,
    /// Label file for --model (`ID label` lines; default: coco_labels.txt beside the model).
    #[arg(long, value_name = "FILE", requires = "model")]
    labels: Option<PathBuf>,
    /// Threads tract uses inside one inference.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Keep every convolution in f32 (by default convolutions run in 8 bits on CPUs with
    /// AVX-512 VNNI).
    #[arg(long)]
    float: bool,
}

#[derive(Args)]
struct InfoArgs {
    #[command(flatten)]
    model: ModelArgs,
    /// Also time each op kind of the plan over this many inferences (mean ms per inference).
    #[arg(long, value_name = "RUNS")]
    profile: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Table,
    Json,
}

#[derive(Args)]
struct FilesArgs {
    /// Image files or directories.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    format: Format,
    /// Smallest score reported (0..1).
    #[arg(long, default_value_t = detect_core::detector::DEFAULT_MIN_SCORE)]
    min_score: f32,
    /// Most detections reported per image (default: the model's maximum).
    #[arg(long)]
    max_results: Option<usize>,
    /// IoU above which NMS drops the lower-scored box (default: the model's).
    #[arg(long)]
    iou_threshold: Option<f32>,
    /// Only these classes, by label or ID, comma-separated (e.g. person,cat,17).
    #[arg(long, value_delimiter = ',')]
    classes: Option<Vec<String>>,
    /// Never these classes, by label or ID, comma-separated.
    #[arg(long, value_delimiter = ',')]
    exclude_classes: Option<Vec<String>>,
    /// Per-class NMS instead of the model's class-agnostic NMS.
    #[arg(long)]
    regular_nms: bool,
    /// Images processed in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    jobs: u16,
    /// Write copies of the images with boxes and labels drawn into DIR.
    #[arg(long, value_name = "DIR")]
    annotate: Option<PathBuf>,
    #[command(flatten)]
    model: ModelArgs,
}

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

/// Files as given, plus images found under directories (sorted, so runs are repeatable).
fn collect_images(paths: &[PathBuf]) -> Result<(Vec<PathBuf>, bool), String> {
    let mut files = Vec::new();
    let mut from_dirs = false;
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
        let mut entries: Vec<_> = std::fs::read_dir(dir)?.collect::<Result<_, _>>()?;
        entries.sort_by_key(|e| e.path());
        for entry in entries {
            let path = entry.path();
            if entry.file_type()?.is_dir() {
                walk(&path, out)?;
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                out.push(path);
            }
        }
        Ok(())
    }
    for path in paths {
        if path.is_dir() {
            from_dirs = true;
            walk(path, &mut files)
                .map_err(|e| format!("cannot read directory {}: {e}", path.display()))?;
        } else if path.exists() {
            files.push(path.clone());
        } else {
            return Err(format!("{} does not exist", path.display()));
        }
    }
    Ok((files, from_dirs))
}

fn load_detector(args: &ModelArgs) -> Result<Detector, String> {
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
        let id = if r.id.len() > 40 {
            format!("…{}", &r.id[r.id.len() - 39..])
        } else {
            r.id.clone()
        };
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

fn run_files(args: FilesArgs) -> Result<ExitCode, String> {
    let (files, from_dirs) = collect_images(&args.paths)?;
    if files.is_empty() {
        return Err(
            "no images found (looked for .jpg .jpeg .png .webp .gif .bmp .tif .tiff)".into(),
        );
    }
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
    let progress = if from_dirs {
        indicatif::ProgressBar::new(files.len() as u64)
    } else {
        indicatif::ProgressBar::hidden()
    };
    progress.set_style(
        indicatif::ProgressStyle::with_template(
            "{bar:40} {pos}/{len} images {elapsed} (eta {eta})",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Read and detect in chunks so memory stays bounded on large directories.
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
        let found: Vec<ImageResult> = outcomes
            .into_iter()
            .zip(chunk)
            .map(|(o, path)| match std::fs::metadata(path) {
                Err(e) => ImageResult::failed(
                    o.id,
                    UNREADABLE_STATUS,
                    format!("cannot read file: {e}"),
                    o.timings_ms,
                ),
                Ok(_) => o.into_result(image_status),
            })
            .collect();
        for (r, path) in found.iter().zip(chunk) {
            if let (Some(dir), true) = (&args.annotate, r.ok()) {
                if let Err(e) = annotate_file(path, r, dir) {
                    eprintln!("warning: cannot annotate {}: {e}", path.display());
                }
            }
            progress.inc(1);
        }
        results.extend(found);
    }
    progress.finish_and_clear();
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

fn run_info(args: InfoArgs) -> Result<ExitCode, String> {
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

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = q / 100.0 * (sorted.len() - 1) as f64;
    let (lo, hi) = (rank.floor() as usize, rank.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - lo as f64)
}

fn run_bench(args: BenchArgs) -> Result<ExitCode, String> {
    if let Some(out) = args.out.clone() {
        return run_local(LocalArgs {
            output: OutputArgs {
                out: Some(out),
                json_out: None,
                label: None,
                dataset: None,
            },
            warmup: args.warmup,
            model: args.model,
            paths: args.paths,
        });
    }
    let paths = paths_or_samples(&args.paths);
    let (files, _) = collect_images(&paths)?;
    let detector = load_detector(&args.model)?;
    let mut inputs = Vec::new();
    let mut encoded = Vec::new();
    for f in &files {
        let bytes = std::fs::read(f).map_err(|e| format!("{}: {e}", f.display()))?;
        match detector.preprocess(&bytes) {
            Ok(input) => {
                inputs.push(input);
                encoded.push((f.display().to_string(), bytes));
            }
            Err(e) => eprintln!("skipping {}: {e}", f.display()),
        }
    }
    if inputs.is_empty() {
        return Err("no usable images".into());
    }
    let options = detector
        .resolve_options(&DetectOptions::default())
        .map_err(|e| e.to_string())?;
    for _ in 0..args.warmup {
        for input in &inputs {
            detector.infer(input.clone())?;
        }
    }
    let mut times = Vec::with_capacity(inputs.len() * args.repeat);
    let mut pipeline = Vec::with_capacity(inputs.len() * args.repeat);
    for _ in 0..args.repeat.max(1) {
        for input in &inputs {
            let input = input.clone();
            let t = std::time::Instant::now();
            detector.infer(input)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        for (id, bytes) in &encoded {
            pipeline.push(detector.detect(id, bytes, &options).timings_ms.total);
        }
    }
    times.sort_by(f64::total_cmp);
    pipeline.sort_by(f64::total_cmp);
    // Throughput: `jobs` threads each run every input `repeat` times, all at once.
    let jobs = args.jobs as usize;
    let t = std::time::Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..jobs {
            scope.spawn(|| {
                for _ in 0..args.repeat.max(1) {
                    for input in &inputs {
                        let _ = detector.infer(input.clone());
                    }
                }
            });
        }
    });
    let parallel_images_per_s =
        (jobs * args.repeat.max(1) * inputs.len()) as f64 / t.elapsed().as_secs_f64();
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    let median = percentile(&times, 50.0);
    let out = serde_json::json!({
        "runtime": "lambda-detect-tract",
        "threads": args.model.threads,
        "median_ms": median,
        "mean_ms": mean,
        "p90_ms": percentile(&times, 90.0),
        "images_per_s": 1000.0 / mean,
        "pipeline_median_ms": percentile(&pipeline, 50.0),
        "jobs": jobs,
        "parallel_images_per_s": parallel_images_per_s,
        "images": inputs.len(),
        "runs": times.len(),
        "load_ms": detector.load_timings().total_ms,
    });
    if args.json {
        println!("{out}");
    } else {
        println!(
            "tract, {} thread(s): inference median {median:.2} ms, mean {mean:.2} ms, p90 {:.2} ms ({:.1} images/s); whole pipeline median {:.2} ms; {} images x {} passes; {jobs} parallel job(s): {parallel_images_per_s:.1} images/s; model load {:.0} ms",
            args.model.threads,
            percentile(&times, 90.0),
            1000.0 / mean,
            percentile(&pipeline, 50.0),
            inputs.len(),
            args.repeat.max(1),
            detector.load_timings().total_ms
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn progress_bar(len: usize, what: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(len as u64);
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} {{elapsed}} (eta {{eta}})"
        ))
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar
}

fn run_dataset(args: DatasetArgs) -> Result<ExitCode, String> {
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

/// The collection as (id, path): ids relative to the directory given.
fn collection(paths: &[PathBuf]) -> Result<Vec<(String, PathBuf)>, String> {
    let mut out = Vec::new();
    for p in paths {
        let (files, _) = collect_images(std::slice::from_ref(p))?;
        for f in files {
            let id = if p.is_dir() {
                detect_eval::client::image_id(p, &f)
            } else {
                f.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            };
            out.push((id, f));
        }
    }
    if out.is_empty() {
        return Err("no images found".into());
    }
    Ok(out)
}

fn dataset_label(output: &OutputArgs, paths: &[PathBuf]) -> String {
    output.dataset.clone().unwrap_or_else(|| {
        paths
            .first()
            .and_then(|p| p.canonicalize().ok())
            .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_else(|| "images".into())
    })
}

fn write_rows(output: &OutputArgs, rows: &[detect_eval::rows::Row]) -> Result<(), String> {
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

fn run_send(args: SendArgs) -> Result<ExitCode, String> {
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

/// The given paths, or the bundled sample images when none are given.
fn paths_or_samples(paths: &[PathBuf]) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/images"
        ))]
    } else {
        paths.to_vec()
    }
}

fn run_local(args: LocalArgs) -> Result<ExitCode, String> {
    let paths = paths_or_samples(&args.paths);
    let files = collection(&paths)?;
    let detector = load_detector(&args.model)?;
    let bar = progress_bar(files.len(), "images");
    let location = args
        .output
        .label
        .clone()
        .unwrap_or_else(|| "in-process".into());
    let rows = detect_eval::local::run_local(
        &detector,
        &files,
        &dataset_label(&args.output, &paths),
        &location,
        args.warmup,
        image_status,
        &|n| bar.inc(n),
    )?;
    bar.finish_and_clear();
    write_rows(&args.output, &rows)?;
    Ok(ExitCode::SUCCESS)
}

fn run_proxy(args: ProxyArgs) -> Result<ExitCode, String> {
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

fn run_report(args: ReportArgs) -> Result<ExitCode, String> {
    use detect_eval::{model::Prices, report, rows};
    let mut all = Vec::new();
    for f in &args.files {
        all.extend(rows::read_rows(f)?);
    }
    if all.is_empty() {
        return Err("no rows in the given files".into());
    }
    let d = Prices::default();
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
    report::write_report(&all, &args.out, &opts)
        .map_err(|e| format!("{}: {e}", args.out.display()))?;
    eprintln!(
        "report: {} ({} rows)",
        args.out.join("README.md").display(),
        all.len()
    );
    if args.check {
        let md = std::fs::read_to_string(args.out.join("README.md")).map_err(|e| e.to_string())?;
        match report::check_table(&md, &all) {
            Ok(n) => eprintln!("check: the report's table equals the rows ({n} groups)"),
            Err(e) => {
                eprintln!("check failed: {e}");
                return Ok(ExitCode::FAILURE);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn run_policy_report(args: PolicyReportArgs) -> Result<ExitCode, String> {
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Files(args) => run_files(args),
        Command::Info(args) => run_info(args),
        Command::Bench(args) => run_bench(args),
        Command::Dataset(args) => run_dataset(args),
        Command::Send(args) => run_send(args),
        Command::Local(args) => run_local(args),
        Command::Proxy(args) => run_proxy(args),
        Command::Report(args) => run_report(args),
        Command::PolicyReport(args) => run_policy_report(args),
    };
    outcome.unwrap_or_else(|e| {
        eprintln!("error: {e}");
        ExitCode::from(EXIT_USAGE)
    })
}
