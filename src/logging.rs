//! Structured JSON logs (tracing) on stderr-free stdout lines, as CloudWatch Logs ingests them.
//! Level from `RUST_LOG` (default `info`).

pub fn init() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Ignore the error when a subscriber is already set (tests call this more than once).
    let _ = tracing_subscriber::fmt()
        .json()
        .with_env_filter(filter)
        .with_current_span(false)
        .with_target(false)
        .without_time()
        .try_init();
}
