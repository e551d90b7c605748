//! The offload model: time per image run here vs offloaded, break-even points, and cost per
//! 1000 images on Lambda vs a machine of one's own vs Rekognition. Pure functions; every
//! input is a measured figure or a documented, configurable price.
//!
//! Time of an offloaded image (one image per request, requests in sequence):
//!
//! ```text
//! offload = rtt + payload·8 / uplink + remote_compute + cold_rate · cold_penalty
//! ```
//!
//! The response (a few hundred bytes of JSON) is neglected next to the payload.

use serde::Serialize;

/// ms to push `bytes` through an uplink of `mbit` Mbit/s.
pub fn transfer_ms(bytes: f64, mbit: f64) -> f64 {
    if mbit <= 0.0 {
        f64::INFINITY
    } else {
        bytes * 8.0 / (mbit * 1e3)
    }
}

/// One situation to decide: measured local time, remote compute, payload and the link.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Scenario {
    /// Time per image run here, ms (measured in-process).
    pub local_ms: f64,
    /// Time per image spent computing remotely, ms (the function's reported total).
    pub remote_compute_ms: f64,
    /// Bytes sent per image.
    pub payload_bytes: f64,
    pub uplink_mbit: f64,
    /// Network round-trip time plus fixed per-request overhead, ms.
    pub rtt_ms: f64,
    /// Fraction of requests that meet a cold start (0..1).
    pub cold_start_rate: f64,
    /// What a cold start adds, ms.
    pub cold_start_ms: f64,
}

impl Scenario {
    /// Predicted time per image when offloaded, ms.
    pub fn offload_ms(&self) -> f64 {
        self.rtt_ms
            + transfer_ms(self.payload_bytes, self.uplink_mbit)
            + self.remote_compute_ms
            + self.cold_start_rate * self.cold_start_ms
    }

    /// Offloading is faster than running here.
    pub fn offload_pays(&self) -> bool {
        self.offload_ms() < self.local_ms
    }

    /// Uplink (Mbit/s) above which offloading is faster; `None` if no bandwidth is enough
    /// (round trip + remote compute + cold starts alone already take longer than local).
    pub fn break_even_bandwidth_mbit(&self) -> Option<f64> {
        let slack = self.local_ms
            - self.rtt_ms
            - self.remote_compute_ms
            - self.cold_start_rate * self.cold_start_ms;
        (slack > 0.0).then(|| self.payload_bytes * 8.0 / (slack * 1e3))
    }

    /// How many times faster the remote computation must become for offloading to break even
    /// at this link (below 1: it may be that much slower); `None` if even an infinitely fast
    /// remote loses (the network alone takes longer than local).
    pub fn break_even_speedup(&self) -> Option<f64> {
        let available = self.local_ms
            - self.rtt_ms
            - transfer_ms(self.payload_bytes, self.uplink_mbit)
            - self.cold_start_rate * self.cold_start_ms;
        (available > 0.0).then(|| self.remote_compute_ms / available)
    }

    /// Round trip (ms) below which offloading is faster at this bandwidth; `None` if none is.
    pub fn break_even_rtt_ms(&self) -> Option<f64> {
        let rtt = self.local_ms
            - transfer_ms(self.payload_bytes, self.uplink_mbit)
            - self.remote_compute_ms
            - self.cold_start_rate * self.cold_start_ms;
        (rtt > 0.0).then_some(rtt)
    }
}

/// Prices, USD. Defaults: AWS us-east-1 list prices (2024) from the project's FACTS.md; the
/// local machine's hourly price is the seed's remote machine (EC2 t2.large on-demand,
/// Linux, us-east-1). Check current prices before relying on them.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Prices {
    pub lambda_gb_s_arm64: f64,
    pub lambda_gb_s_x86_64: f64,
    pub lambda_per_million_requests: f64,
    pub http_api_per_million_requests: f64,
    pub rekognition_per_image: f64,
    pub local_per_hour: f64,
}

impl Default for Prices {
    fn default() -> Self {
        Prices {
            lambda_gb_s_arm64: 0.000_013_333_4,
            lambda_gb_s_x86_64: 0.000_016_666_7,
            lambda_per_million_requests: 0.20,
            http_api_per_million_requests: 1.00,
            rekognition_per_image: 0.001,
            local_per_hour: 0.0928,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Arch {
    Arm64,
    X86_64,
}

impl Arch {
    pub const ALL: [Arch; 2] = [Arch::Arm64, Arch::X86_64];

    pub fn name(self) -> &'static str {
        match self {
            Arch::Arm64 => "arm64",
            Arch::X86_64 => "x86_64",
        }
    }

    /// The architecture this program was built for, if Lambda offers it.
    pub fn this_build() -> Option<Arch> {
        match std::env::consts::ARCH {
            "aarch64" => Some(Arch::Arm64),
            "x86_64" => Some(Arch::X86_64),
            _ => None,
        }
    }
}

/// Where an architecture's compute time per image comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Source {
    /// Measured on this architecture.
    Measured,
    /// Not measured on this architecture: the time measured on the other one, used as an
    /// estimate (the kernels, and so the speed, differ between the two).
    EstimatedFrom(Arch),
}

/// One vCPU's compute time per image on a Lambda architecture, and where it comes from.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ArchCompute {
    pub arch: Arch,
    pub ms: f64,
    pub source: Source,
}

impl ArchCompute {
    /// What to say next to a figure computed from this time: "measured on arm64" or
    /// "estimate: x86_64 timing, not measured on arm64".
    pub fn provenance(&self) -> String {
        match self.source {
            Source::Measured => format!("measured on {}", self.arch.name()),
            Source::EstimatedFrom(other) => format!(
                "estimate: {} timing, not measured on {}",
                other.name(),
                self.arch.name()
            ),
        }
    }
}

/// The compute time per image of each Lambda architecture: a figure `given` for it (measured
/// there, e.g. on a deployed function); else the rows' remote time `measured_ms` if the rows
/// were measured on it (`measured_on`); else, labelled as an estimate, a time measured on the
/// other architecture (given, or the rows').
pub fn compute_by_arch(
    measured_ms: f64,
    measured_on: Option<Arch>,
    given: &[(Arch, f64)],
) -> Vec<ArchCompute> {
    let measured = |arch: Arch| {
        given
            .iter()
            .find(|(a, _)| *a == arch)
            .map(|(_, ms)| *ms)
            .or_else(|| (measured_on == Some(arch)).then_some(measured_ms))
    };
    Arch::ALL
        .iter()
        .map(|&arch| match measured(arch) {
            Some(ms) => ArchCompute {
                arch,
                ms,
                source: Source::Measured,
            },
            None => {
                let other = Arch::ALL.into_iter().find(|a| *a != arch).unwrap_or(arch);
                let (from, ms) = match measured(other) {
                    Some(ms) => (other, ms),
                    // Nothing measured on either: the rows' time, from wherever they ran.
                    None => (measured_on.unwrap_or(other), measured_ms),
                };
                ArchCompute {
                    arch,
                    ms,
                    source: Source::EstimatedFrom(from),
                }
            }
        })
        .collect()
}

/// Lambda's memory at which a function gets one full vCPU.
pub const FULL_VCPU_MB: f64 = 1769.0;

/// Lambda's memory sizes the report shows (512 MB .. the 10240 MB maximum).
pub const MEMORY_SIZES_MB: [f64; 10] = [
    512.0, 1024.0, 1536.0, 1769.0, 2048.0, 3008.0, 4096.0, 6144.0, 8192.0, 10240.0,
];

/// vCPUs (CPU share) at a memory size: proportional to memory, 1 at 1769 MB.
pub fn vcpus(memory_mb: f64) -> f64 {
    memory_mb / FULL_VCPU_MB
}

/// Compute time at a memory size, from the time on one full core, for work that can use
/// `parallelism` cores (1 for single-threaded inference: memory above 1769 MB does not help).
pub fn lambda_compute_ms(one_core_ms: f64, memory_mb: f64, parallelism: f64) -> f64 {
    one_core_ms / vcpus(memory_mb).min(parallelism.max(1.0))
}

/// USD per 1000 images on Lambda behind an HTTP API: `duration_ms` per request (billed per
/// ms, rounded up), `images_per_request` images in each.
pub fn lambda_cost_per_1000(
    prices: &Prices,
    arch: Arch,
    memory_mb: f64,
    duration_ms: f64,
    images_per_request: f64,
) -> f64 {
    let requests = 1000.0 / images_per_request.max(1.0);
    let gb_s = memory_mb / 1024.0 * duration_ms.ceil() / 1000.0;
    let gb_s_price = match arch {
        Arch::Arm64 => prices.lambda_gb_s_arm64,
        Arch::X86_64 => prices.lambda_gb_s_x86_64,
    };
    requests
        * (gb_s * gb_s_price
            + (prices.lambda_per_million_requests + prices.http_api_per_million_requests) / 1e6)
}

/// USD per 1000 images on a machine rented by the hour and kept busy at `images_per_s`.
pub fn local_cost_per_1000(prices: &Prices, images_per_s: f64) -> f64 {
    prices.local_per_hour * (1000.0 / images_per_s) / 3600.0
}

/// USD per 1000 images with Rekognition DetectLabels.
pub fn rekognition_cost_per_1000(prices: &Prices) -> f64 {
    1000.0 * prices.rekognition_per_image
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9 * b.abs().max(1.0)
    }

    fn scenario() -> Scenario {
        Scenario {
            local_ms: 200.0,
            remote_compute_ms: 40.0,
            payload_bytes: 125_000.0,
            uplink_mbit: 10.0,
            rtt_ms: 60.0,
            cold_start_rate: 0.0,
            cold_start_ms: 500.0,
        }
    }

    #[test]
    fn transfer() {
        // 125 000 B = 1 Mbit → 100 ms at 10 Mbit/s, 10 ms at 100.
        assert!(close(transfer_ms(125_000.0, 10.0), 100.0));
        assert!(close(transfer_ms(125_000.0, 100.0), 10.0));
        assert!(transfer_ms(1.0, 0.0).is_infinite());
    }

    #[test]
    fn offload_time_and_decision() {
        let mut s = scenario();
        // 60 + 100 + 40 = 200: a tie is not a win.
        assert!(close(s.offload_ms(), 200.0));
        assert!(!s.offload_pays());
        // 10 % cold starts of 500 ms add 50.
        s.cold_start_rate = 0.1;
        assert!(close(s.offload_ms(), 250.0));
        s.cold_start_rate = 0.0;
        s.uplink_mbit = 20.0;
        assert!(close(s.offload_ms(), 150.0));
        assert!(s.offload_pays());
    }

    #[test]
    fn break_even_bandwidth() {
        let mut s = scenario();
        // Slack 200 − 60 − 40 = 100 ms for 1 Mbit → 10 Mbit/s.
        assert!(close(s.break_even_bandwidth_mbit().unwrap(), 10.0));
        // Cold starts 10 % × 500 ms eat 50 ms: 1 Mbit in 50 ms → 20 Mbit/s.
        s.cold_start_rate = 0.1;
        assert!(close(s.break_even_bandwidth_mbit().unwrap(), 20.0));
        // Round trip alone longer than local: never.
        s.rtt_ms = 250.0;
        assert_eq!(s.break_even_bandwidth_mbit(), None);
    }

    #[test]
    fn break_even_speedup_and_rtt() {
        let mut s = scenario();
        s.remote_compute_ms = 80.0;
        // 200 − 60 − 100 = 40 ms left for 80 ms of compute: 2x faster needed.
        assert!(close(s.break_even_speedup().unwrap(), 2.0));
        // 200 − 100 − 80 = 20 ms of round trip allowed.
        assert!(close(s.break_even_rtt_ms().unwrap(), 20.0));
        s.uplink_mbit = 5.0; // 200 ms transfer alone
        assert_eq!(s.break_even_speedup(), None);
        assert_eq!(s.break_even_rtt_ms(), None);
    }

    #[test]
    fn cpu_share() {
        assert!(close(vcpus(1769.0), 1.0));
        assert!(close(vcpus(10240.0), 10240.0 / 1769.0));
        // Half a vCPU: twice as long; more than one vCPU does not speed up one thread.
        assert!(close(lambda_compute_ms(40.0, 884.5, 1.0), 80.0));
        assert!(close(lambda_compute_ms(40.0, 4096.0, 1.0), 40.0));
        assert!(close(lambda_compute_ms(40.0, 3538.0, 2.0), 20.0));
    }

    #[test]
    fn compute_per_architecture_says_where_it_comes_from() {
        // Rows measured on x86_64, nothing given: arm64 is x86_64's time, as an estimate.
        let c = compute_by_arch(15.0, Some(Arch::X86_64), &[]);
        assert_eq!(c[0].arch, Arch::Arm64);
        assert_eq!(
            (c[0].ms, c[0].source),
            (15.0, Source::EstimatedFrom(Arch::X86_64))
        );
        assert_eq!(
            c[0].provenance(),
            "estimate: x86_64 timing, not measured on arm64"
        );
        assert_eq!((c[1].ms, c[1].source), (15.0, Source::Measured));
        assert_eq!(c[1].provenance(), "measured on x86_64");
        // A figure measured on arm64 replaces the estimate.
        let c = compute_by_arch(15.0, Some(Arch::X86_64), &[(Arch::Arm64, 22.0)]);
        assert_eq!((c[0].ms, c[0].source), (22.0, Source::Measured));
        assert_eq!(
            (c[0].source, c[1].source),
            (Source::Measured, Source::Measured)
        );
        // Rows from an unknown machine, arm64 given: x86_64 is estimated from arm64's figure.
        let c = compute_by_arch(15.0, None, &[(Arch::Arm64, 22.0)]);
        assert_eq!(
            (c[1].ms, c[1].source),
            (22.0, Source::EstimatedFrom(Arch::Arm64))
        );
    }

    #[test]
    fn costs() {
        let p = Prices::default();
        // arm64, 2048 MB, 40 ms: 2 GB × 0.04 s = 0.08 GB-s × 0.0000133334 = 1.066672e-6 USD,
        // + (0.20 + 1.00) / 1e6 per request → 2.266672e-6 per image, × 1000.
        assert!(close(
            lambda_cost_per_1000(&p, Arch::Arm64, 2048.0, 40.0, 1.0),
            0.002_266_672
        ));
        // Billed per ms, rounded up: 39.2 ms bills as 40.
        assert!(close(
            lambda_cost_per_1000(&p, Arch::Arm64, 2048.0, 39.2, 1.0),
            0.002_266_672
        ));
        // x86_64, 1024 MB, 100 ms, 10 images per request: 100 requests × (0.1 GB-s ×
        // 0.0000166667 + 1.2e-6) = 100 × 2.86667e-6.
        assert!(close(
            lambda_cost_per_1000(&p, Arch::X86_64, 1024.0, 100.0, 10.0),
            100.0 * (0.1 * 0.000_016_666_7 + 1.2e-6)
        ));
        // 0.0928 USD/h at 25 images/s: 1000 images in 40 s.
        assert!(close(local_cost_per_1000(&p, 25.0), 0.0928 * 40.0 / 3600.0));
        assert!(close(rekognition_cost_per_1000(&p), 1.0));
    }
}
