//! The 8-bit GEMM alone, per kernel set this CPU runs (or those `DETECT_TEST_ISAS` lists), on
//! the model's largest convolution shapes (rows = output pixels, k = patch length, n = output
//! channels), one thread, 8-bit output, the shapes in turn: ms per product and multiply-adds
//! per second. Prints figures; asserts nothing about speed. `cargo bench -p detect-core --bench
//! gemm` (PASSES=20 by default); under `cargo test`, one pass.

use std::time::Instant;

use detect_core::inference::kernels::gemm::PackedGemm;
use detect_core::inference::kernels::{Isa, KernelSet};
use detect_core::model::{QuantizedConv, TensorQuant};

/// (rows, k, n) of the model's convolutions with the most multiply-adds (1x1 unless k is a
/// multiple of 9 channels of a 3x3), 62 % of its 735 M.
const SHAPES: [(usize, usize, usize); 12] = [
    (100, 1280, 546),
    (361, 576, 273),
    (100, 320, 1280),
    (22500, 16, 96),
    (100, 1280, 256),
    (100, 960, 320),
    (25, 2304, 512),
    (361, 576, 96),
    (361, 96, 576),
    (22500, 27, 32),
    (5625, 144, 24),
    (5625, 24, 144),
];

fn spec(k: usize, n: usize) -> QuantizedConv {
    QuantizedConv {
        in_hw: (1, 1),
        kernel_hw: (1, 1),
        stride: (1, 1),
        same_padding: false,
        in_channels: k,
        out_channels: n,
        input_scale: 0.02,
        input_zero_point: 3,
        weights: (0..k * n)
            .map(|i| ((i * 37 % 251) as i32 - 125) as i8)
            .collect(),
        weight_zero_points: vec![1; n],
        weight_scales: vec![0.01; n],
        bias: vec![0.5; n],
        clamp: Some((0.0, 6.0)),
        output_quant: Some(TensorQuant {
            scale: 0.03,
            zero_point: 0,
        }),
    }
}

fn sets() -> Vec<&'static KernelSet> {
    let isas: Vec<Isa> = match std::env::var("DETECT_TEST_ISAS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|name| Isa::from_name(name.trim()).expect("a kernel set name"))
            .collect(),
        _ => Isa::available(),
    };
    isas.into_iter()
        .map(|isa| KernelSet::for_isa(isa).expect("a set this CPU runs"))
        .collect()
}

fn main() {
    // `cargo bench` passes --bench; `cargo test` runs each product once, as a check that the
    // bench still runs.
    let benching = std::env::args().any(|a| a == "--bench");
    let passes: usize = match std::env::var("PASSES").ok().and_then(|v| v.parse().ok()) {
        Some(n) if benching => n,
        _ if benching => 20,
        _ => 1,
    };
    for set in sets() {
        // Every shape packed up front and run in turn, as in an inference: each product finds
        // its weights where the others left the caches, not hot from its own last pass.
        let cases: Vec<_> = SHAPES
            .iter()
            .map(|&(m, k, n)| {
                let p = PackedGemm::new(&spec(k, n), set.wide_weights);
                let a: Vec<u8> = (0..m * p.k).map(|i| (i * 29 % 256) as u8).collect();
                let sums = p.row_sums(&a);
                (m, k, n, p, a, sums, vec![0u8; m * n])
            })
            .collect();
        let mut ms = vec![0f64; cases.len()];
        for pass in 0..=passes {
            for (i, (m, _, _, p, a, sums, out)) in cases.iter().enumerate() {
                let mut out = out.clone();
                let start = Instant::now();
                (set.gemm_u8)(p, a, sums, 0, *m, &mut out);
                if pass > 0 {
                    ms[i] += start.elapsed().as_secs_f64() * 1e3 / passes as f64;
                }
            }
        }
        let (mut total_ms, mut total_macs) = (0.0, 0.0);
        for ((m, k, n, ..), ms) in cases.iter().zip(&ms) {
            let macs = (m * k * n) as f64;
            total_ms += ms;
            total_macs += macs;
            println!(
                "{:<11} m {m:>5} k {k:>4} n {n:>4}: {ms:7.3} ms {:6.1} GMAC/s",
                set.isa.name(),
                macs / ms / 1e6
            );
        }
        println!(
            "{:<11} all {} shapes: {total_ms:.2} ms, {:.1} GMAC/s",
            set.isa.name(),
            SHAPES.len(),
            total_macs / total_ms / 1e6
        );
    }
}
