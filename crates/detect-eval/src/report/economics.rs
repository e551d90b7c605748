//! Serverless economics, as a model: what 1000 images cost on Lambda against images per
//! request (request fees vs duration) and memory size (CPU share), and the sustained request
//! rate at which a rented machine beats Lambda. Inputs: the fitted compute time per image per
//! architecture (measured or labelled an estimate), the price list, and this machine's
//! measured throughput.

use std::fmt::Write;

use super::{f2, Fitted};
use crate::model::{lambda_compute_ms, lambda_cost_per_1000, ArchCompute, Prices, MEMORY_SIZES_MB};

/// Images per request the table shows; 20 is the function's default MAX_IMAGES.
pub const IMAGES_PER_REQUEST: [f64; 5] = [1.0, 2.0, 5.0, 10.0, 20.0];

/// The memory with one full vCPU, where single-threaded inference is fastest per dollar-second.
const ONE_VCPU_MB: f64 = 1769.0;

/// USD per 1000 images for `arch` at `memory_mb` with `k` images per request.
fn cost(p: &Prices, c: &ArchCompute, memory_mb: f64, k: f64) -> f64 {
    let per_image = lambda_compute_ms(c.ms, memory_mb, 1.0);
    lambda_cost_per_1000(p, c.arch, memory_mb, per_image * k, k)
}

/// Request fees (Lambda + HTTP API) per 1000 images at `k` images per request.
fn request_fees(p: &Prices, k: f64) -> f64 {
    1000.0 / k * (p.lambda_per_million_requests + p.http_api_per_million_requests) / 1e6
}

/// The memory size with the lowest Lambda cost per 1000 images for an architecture's compute
/// time at `k` images per request, and that cost.
pub(super) fn cheapest(p: &Prices, c: &ArchCompute, k: f64) -> (f64, f64) {
    MEMORY_SIZES_MB.iter().map(|&m| (m, cost(p, c, m, k))).fold(
        (f64::NAN, f64::INFINITY),
        |b, x| if x.1 < b.1 { x } else { b },
    )
}

/// Sustained images/s above which a machine rented at `per_hour` costs less than
/// `lambda_per_image` USD per image.
pub fn rented_break_even_rate(per_hour: f64, lambda_per_image: f64) -> f64 {
    per_hour / 3600.0 / lambda_per_image
}

/// The section for one dataset. `rented_images_per_s`: what one rented machine like this one
/// serves at most (its measured in-process throughput).
pub fn section(
    f: &Fitted,
    p: &Prices,
    compute: &[ArchCompute],
    rented_images_per_s: f64,
) -> String {
    let mut md = String::new();
    let d = &f.dataset;
    let _ = writeln!(md, "### {d}: serverless economics (model)\n");
    let _ = writeln!(
        md,
        "**A model**, not a bill: Lambda's CPU share taken as proportional to memory (one vCPU at {ONE_VCPU_MB} MB, this machine's core = 1 vCPU; inference is single-threaded, so more memory does not make an image faster), duration billed per ms per request, request fees of Lambda and the HTTP API per request. Compute per image: {}.\n",
        compute
            .iter()
            .map(|c| format!("{} {} ms ({})", c.arch.name(), f2(c.ms), c.provenance()))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // Images per request: request fees shrink with k, duration does not.
    let arch_cols: Vec<String> = compute
        .iter()
        .map(|c| {
            format!(
                "{0} duration $ | {0} total $ | {0} fees share",
                c.arch.name()
            )
        })
        .collect();
    let _ = writeln!(
        md,
        "Cost per 1000 images at {ONE_VCPU_MB} MB against images per request (`--batch`; the function takes up to 20 by default):\n"
    );
    let _ = writeln!(
        md,
        "| images per request | request fees $ | {} |",
        arch_cols.join(" | ")
    );
    let _ = writeln!(md, "|---:|---:|{}", "---:|---:|---:|".repeat(compute.len()));
    for k in IMAGES_PER_REQUEST {
        let fees = request_fees(p, k);
        let cells: Vec<String> = compute
            .iter()
            .map(|c| {
                let total = cost(p, c, ONE_VCPU_MB, k);
                format!(
                    "{:.5} | {:.5} | {} %",
                    total - fees,
                    total,
                    f2(fees / total * 100.0)
                )
            })
            .collect();
        let _ = writeln!(md, "| {k} | {fees:.5} | {} |", cells.join(" | "));
    }
    // Memory size: more memory, more CPU share, until one full vCPU.
    let _ = writeln!(
        md,
        "\nCost per 1000 images against memory size (one image per request):\n"
    );
    let _ = writeln!(
        md,
        "| memory MB | vCPU share | {} |",
        compute
            .iter()
            .map(|c| format!("{0} ms per image | {0} $", c.arch.name()))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(md, "|---:|---:|{}", "---:|---:|".repeat(compute.len()));
    for m in MEMORY_SIZES_MB {
        let cells: Vec<String> = compute
            .iter()
            .map(|c| {
                format!(
                    "{} | {:.5}",
                    f2(lambda_compute_ms(c.ms, m, 1.0)),
                    cost(p, c, m, 1.0)
                )
            })
            .collect();
        let _ = writeln!(
            md,
            "| {m} | {} | {} |",
            f2(m / ONE_VCPU_MB),
            cells.join(" | ")
        );
    }
    // A rented machine: a fixed price per hour, up to its capacity.
    let machine_per_1000 = p.local_per_hour / 3600.0 / rented_images_per_s * 1000.0;
    let _ = writeln!(md);
    for c in compute {
        let (m1, one) = cheapest(p, c, 1.0);
        let (m20, twenty) = cheapest(p, c, 20.0);
        let r1 = rented_break_even_rate(p.local_per_hour, one / 1000.0);
        let r20 = rented_break_even_rate(p.local_per_hour, twenty / 1000.0);
        let verdict = if r1 <= rented_images_per_s {
            format!(
                "below its measured capacity of {} images/s, so one busy machine is the cheaper of the two",
                f2(rented_images_per_s)
            )
        } else {
            format!(
                "above its measured capacity of {} images/s, so at any rate it can serve Lambda is cheaper",
                f2(rented_images_per_s)
            )
        };
        let _ = writeln!(
            md,
            "- **Lambda {} vs a rented machine** (${}/h, kept busy ${:.5} per 1000 images): Lambda costs ${:.5} per 1000 images at best ({m1} MB, one image per request), ${:.5} with 20 per request ({m20} MB). The machine is cheaper above **{} images/s** sustained ({} million images per day; {} images/s with 20 per request): {verdict}.",
            c.arch.name(),
            p.local_per_hour,
            machine_per_1000,
            one,
            twenty,
            f2(r1),
            f2(r1 * 86_400.0 / 1e6),
            f2(r20),
        );
    }
    let _ = writeln!(md);
    md
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Arch, Source};

    fn fitted() -> Fitted {
        crate::report::tests::fitted()
    }

    #[test]
    fn request_fees_shrink_with_images_per_request() {
        let p = Prices::default();
        // $1.20 per million requests: 1000 requests = $0.0012; 20 per request: 50 requests.
        assert!((request_fees(&p, 1.0) - 0.0012).abs() < 1e-12);
        assert!((request_fees(&p, 20.0) - 0.00006).abs() < 1e-12);
        let c = ArchCompute {
            arch: Arch::Arm64,
            ms: 15.0,
            source: Source::Measured,
        };
        // 1769 MB, 15 ms per image: 20 images = 300 ms per request.
        let gb_s = 1769.0 / 1024.0 * 0.3;
        let want = 50.0 * (gb_s * p.lambda_gb_s_arm64 + 1.2e-6);
        assert!((cost(&p, &c, 1769.0, 20.0) - want).abs() < 1e-12);
        assert!(cost(&p, &c, 1769.0, 20.0) < cost(&p, &c, 1769.0, 1.0));
    }

    #[test]
    fn a_rented_machine_pays_above_the_rate_where_its_hour_equals_lambdas() {
        // $0.36/h = $0.0001/s; Lambda $0.000001 per image: 100 images/s.
        assert!((rented_break_even_rate(0.36, 1e-6) - 100.0).abs() < 1e-9);
        let p = Prices::default();
        let c = [ArchCompute {
            arch: Arch::Arm64,
            ms: 15.0,
            source: Source::EstimatedFrom(Arch::X86_64),
        }];
        let md = section(&fitted(), &p, &c, 100.0);
        assert!(
            md.contains("estimate: x86_64 timing, not measured on arm64"),
            "{md}"
        );
        assert!(md.contains("| 20 | 0.00006 |"), "{md}");
        assert!(md.contains("| 1769 | 1.00 | 15.00 |"), "{md}");
        let (_, one) = cheapest(&p, &c[0], 1.0);
        let r = rented_break_even_rate(p.local_per_hour, one / 1000.0);
        assert!(
            md.contains(&format!("cheaper above **{} images/s**", f2(r))),
            "{md}"
        );
    }
}
