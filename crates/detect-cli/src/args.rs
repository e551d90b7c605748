//! The command line: clap's argument structs, one per subcommand, and the flags they share
//! (the model, the outputs of measurements). No behaviour here; `cmd` runs them.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "detect",
    version,
    about = "Object detection with SSD MobileNet V2 COCO (tract-tflite)"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
pub struct PolicyReportArgs {
    /// Result files of `detect send --policy ...` (CSV or JSON).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Markdown file to write (printed to stdout without).
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Text put above the table (setup, what is emulated).
    #[arg(long)]
    pub preamble: Option<String>,
    /// Write nothing: re-derive the table from the rows and fail unless it stands in --out.
    #[arg(long)]
    pub check_only: bool,
}

#[derive(Args)]
pub struct ReportArgs {
    /// Result files (CSV or JSON).
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Directory for README.md and the SVGs (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Machine description for the header (e.g. "2 cores, AMD EPYC").
    #[arg(long)]
    pub machine: Option<String>,
    /// Date for the header.
    #[arg(long)]
    pub date: Option<String>,
    /// Penalty of a cold start, ms, when the rows contain none to measure.
    #[arg(long, default_value_t = 150.0)]
    pub cold_start_ms: f64,
    /// Drift allowed between runs made one after another, % of the local time: "does
    /// offloading pay here" answers yes or no only for a larger difference.
    #[arg(long, default_value_t = detect_eval::report::DRIFT_PCT)]
    pub drift_pct: f64,
    /// The architecture the remote rows ran on (default: this machine's): its time prices
    /// that Lambda architecture as measured, the other's prices are labelled estimates.
    #[arg(long, value_enum)]
    pub remote_arch: Option<ArchArg>,
    /// Compute per image, ms on one vCPU, measured on Lambda arm64 (e.g. a deployed function's
    /// server time): prices arm64 as measured instead of estimating it.
    #[arg(long, value_name = "MS")]
    pub compute_ms_arm64: Option<f64>,
    /// As --compute-ms-arm64, for x86_64.
    #[arg(long, value_name = "MS")]
    pub compute_ms_x86_64: Option<f64>,
    /// USD per GB-s, Lambda arm64.
    #[arg(long)]
    pub price_gb_s_arm64: Option<f64>,
    /// USD per GB-s, Lambda x86_64.
    #[arg(long)]
    pub price_gb_s_x86_64: Option<f64>,
    /// USD per million Lambda requests.
    #[arg(long)]
    pub price_lambda_requests: Option<f64>,
    /// USD per million HTTP API requests.
    #[arg(long)]
    pub price_http_api_requests: Option<f64>,
    /// USD per image, Rekognition DetectLabels.
    #[arg(long)]
    pub price_rekognition: Option<f64>,
    /// USD per hour of the local machine.
    #[arg(long)]
    pub price_local_hour: Option<f64>,
    /// After writing, read the report back and fail unless its table equals the rows.
    #[arg(long)]
    pub check: bool,
    /// Write nothing: re-derive every table from the rows and fail unless each stands, line
    /// for line, in the report already in --out (e.g. the committed one, from its data/).
    #[arg(long, conflicts_with = "check")]
    pub check_only: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ArchArg {
    Arm64,
    #[value(name = "x86_64")]
    X86_64,
}

#[derive(Args)]
pub struct ProxyArgs {
    /// Address to listen on, e.g. 127.0.0.1:9100.
    #[arg(long)]
    pub listen: std::net::SocketAddr,
    /// Where to forward, e.g. 127.0.0.1:9000.
    #[arg(long)]
    pub target: std::net::SocketAddr,
    /// Link rate in Mbit/s, each direction (0 = unlimited).
    #[arg(long, default_value_t = 0.0)]
    pub bandwidth_mbit: f64,
    /// Added round-trip time in ms.
    #[arg(long, default_value_t = 0.0)]
    pub delay_ms: f64,
    /// A link that changes: `TIMEs:RATEmbit:DELAYms,...` (e.g. "0s:100mbit:10ms,4s:4mbit:80ms"),
    /// times from the first forwarded byte; before the first phase, --bandwidth-mbit/--delay-ms.
    #[arg(long)]
    pub schedule: Option<String>,
    /// Stop accepting after this many connections.
    #[arg(long, default_value_t = 64)]
    pub max_connections: usize,
    /// Exit after this many seconds.
    #[arg(long, default_value_t = 900)]
    pub timeout: u64,
}

#[derive(Args)]
pub struct DatasetArgs {
    /// small (296 images), medium (2070) or big (4913).
    #[arg(long, default_value = "small")]
    pub preset: String,
    /// Directory to write into (created).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Images to write instead of the preset's count (the first N of the preset's collection).
    #[arg(long)]
    pub count: Option<usize>,
    /// Threads encoding images (the bytes do not depend on it).
    #[arg(long, default_value_t = 2)]
    pub jobs: usize,
}

#[derive(Args)]
pub struct OutputArgs {
    /// Write the rows as CSV.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Write the summary and rows as JSON.
    #[arg(long = "json-out", value_name = "FILE")]
    pub json_out: Option<PathBuf>,
    /// Location label for the rows (e.g. "local watch", "emulated 10 Mbit/s + 60 ms").
    #[arg(long)]
    pub label: Option<String>,
    /// Dataset label for the rows (default: the directory's name).
    #[arg(long)]
    pub dataset: Option<String>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum EncodingArg {
    Json,
    Binary,
    Multipart,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PolicyArg {
    /// Every image in this process (the code path of `detect local`).
    Local,
    /// Every image to the endpoint.
    Remote,
    /// Per image, where the running estimates predict it is faster (with probes).
    Auto,
}

#[derive(Args)]
pub struct SendArgs {
    /// Where images run: remote (default), local, or auto (decided per image; one image per
    /// request, one at a time).
    #[arg(long, value_enum, default_value = "remote")]
    pub policy: PolicyArg,
    /// Emulate a slower local device: local images take F × their measured time (sleeping the
    /// rest); the rows hold the emulated time. Label such runs as emulated.
    #[arg(long, default_value_t = 1.0, value_name = "F")]
    pub local_slowdown: f64,
    /// auto: probe the option not chosen after it has not run for N images (doubling while
    /// probes confirm the choice, up to 4 N).
    #[arg(long, default_value_t = 10, value_name = "N")]
    pub explore_every: usize,
    /// auto: weight of a new sample in the running estimates (EWMA).
    #[arg(long, default_value_t = 0.5)]
    pub alpha: f64,
    /// local, auto: images run locally untimed before the first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The detect URL: http://127.0.0.1:PORT/lambda-url/detect-lambda/api/detect for
    /// `cargo lambda watch`, or a deployed API's URL + /api/detect.
    #[arg(long)]
    pub endpoint: String,
    /// Images per request (json and multipart; binary sends one).
    #[arg(long, default_value_t = 1)]
    pub batch: usize,
    /// Requests in flight.
    #[arg(long, default_value_t = 1)]
    pub concurrency: usize,
    #[arg(long, value_enum, default_value = "binary")]
    pub encoding: EncodingArg,
    /// Extra request header, `Name: value` (repeatable; e.g. authorization).
    #[arg(long = "header", value_name = "'K: V'")]
    pub headers: Vec<String>,
    /// Seconds before one request is given up.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// The collection (a directory or files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args)]
pub struct LocalArgs {
    #[command(flatten)]
    pub output: OutputArgs,
    /// Images run untimed first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Images in flight at once, each on its own thread (1: one after another).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    #[command(flatten)]
    pub model: ModelArgs,
    /// The collection (a directory or files).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args)]
pub struct BenchArgs {
    /// Image files or directories (default: the bundled sample images).
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Timed passes over all images.
    #[arg(long, default_value_t = 20)]
    pub repeat: usize,
    /// Untimed passes first.
    #[arg(long, default_value_t = 3)]
    pub warmup: usize,
    /// Print one JSON object (same keys as scripts/litert_bench.py).
    #[arg(long)]
    pub json: bool,
    /// Also measure throughput with this many images in flight on as many threads.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Instead of timing passes, run the collection once and write rows like `detect send`
    /// (CSV; the local baseline, location "in-process").
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    #[command(flatten)]
    pub model: ModelArgs,
}

#[derive(Args, Clone)]
pub struct ModelArgs {
    /// A TFLite SSD model with a TFLite_Detection_PostProcess op (default: the bundled model,
    /// or $LAMBDA_DETECT_MODEL).
    #[arg(long, value_name = "FILE")]
    pub model: Option<PathBuf>,
    /// Label file for --model (`ID label` lines; default: coco_labels.txt beside the model).
    #[arg(long, value_name = "FILE", requires = "model")]
    pub labels: Option<PathBuf>,
    /// Threads tract uses inside one inference.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub threads: u16,
    /// Keep every convolution in f32 (by default convolutions run in 8 bits where the kernel
    /// set has fast 8-bit products: AVX-512 VNNI, AVX-VNNI, AVX2, arm64 dot product / i8mm).
    #[arg(long)]
    pub float: bool,
}

#[derive(Args)]
pub struct InfoArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    /// Also time each op kind of the plan over this many inferences (mean ms per inference).
    #[arg(long, value_name = "RUNS")]
    pub profile: Option<usize>,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
}

#[derive(Args)]
pub struct FilesArgs {
    /// Image files or directories.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Smallest score reported (0..1).
    #[arg(long, default_value_t = detect_core::detector::DEFAULT_MIN_SCORE)]
    pub min_score: f32,
    /// Most detections reported per image (default: the model's maximum).
    #[arg(long)]
    pub max_results: Option<usize>,
    /// IoU above which NMS drops the lower-scored box (default: the model's).
    #[arg(long)]
    pub iou_threshold: Option<f32>,
    /// Only these classes, by label or ID, comma-separated (e.g. person,cat,17).
    #[arg(long, value_delimiter = ',')]
    pub classes: Option<Vec<String>>,
    /// Never these classes, by label or ID, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub exclude_classes: Option<Vec<String>>,
    /// Per-class NMS instead of the model's class-agnostic NMS.
    #[arg(long)]
    pub regular_nms: bool,
    /// Images processed in parallel.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub jobs: u16,
    /// Write copies of the images with boxes and labels drawn into DIR.
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Detect through the function at this URL instead of in this process, one image per
    /// request, --jobs requests in flight: http://127.0.0.1:PORT/lambda-url/detect-lambda/api/detect
    /// for `cargo lambda watch`, or a deployed API's URL + /api/detect.
    #[arg(long, value_name = "URL")]
    pub endpoint: Option<String>,
    /// --endpoint: seconds before one request is given up.
    #[arg(long, default_value_t = 60, requires = "endpoint")]
    pub timeout: u64,
    #[command(flatten)]
    pub sign: SignArgs,
    #[command(flatten)]
    pub model: ModelArgs,
}

/// Request signing for a deployed API behind IAM auth (the template's default AuthMode).
#[derive(Args)]
pub struct SignArgs {
    /// Sign each request with AWS SigV4 (service execute-api), with credentials from the
    /// standard AWS chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, roles).
    #[arg(long)]
    pub sigv4: bool,
    /// Region to sign for (default: AWS_REGION, AWS_DEFAULT_REGION, else the one in an
    /// execute-api host name).
    #[arg(long, requires = "sigv4")]
    pub region: Option<String>,
}
