//! AVX2 kernels (with FMA), for x86 CPUs without AVX-512: the 8-bit GEMM on 256-bit
//! registers, as 16-bit multiply-adds (`vpmaddwd`: exact, where `vpmaddubsw` would saturate
//! its 16-bit pair sums of u8 x i8 products) or, with AVX-VNNI, `vpdpbusd` on the model's
//! 8-bit weights; the 3x3 depthwise kernel on padded row slots; the f32 depthwise loop compiled
//! for AVX2; the 8-lane loads and stores they share.
//! Reached only through [`AVX2`] and [`AVXVNNI`], which are handed out only on CPUs that run
//! them: that is what the safe wrappers' `unsafe` blocks rely on.

use std::arch::x86_64::*;

use super::depthwise::{Depthwise, PaddedRows, SlotLayout};
use super::gemm::PackedGemm;
use super::quant::{Bounds, InElem, OutElem};
use super::{portable, Depthwise3x3, Isa, KernelSet};

/// Rows per GEMM tile and 8-channel vectors per tile of the AVX-VNNI kernel: 4 x 3
/// accumulators, 3 weight vectors and a broadcast fit the 16 vector registers.
const R: usize = 4;
const V: usize = 3;

/// The same for the `vpmaddwd` kernel, which also needs a register for each product before
/// it is added: 6 x 2 accumulators, 2 weight vectors, a broadcast and a product.
const WIDE_R: usize = 6;
const WIDE_V: usize = 2;

/// Output pixels the 3x3 depthwise kernel computes at once (independent accumulators hide the
/// fused multiply-add's latency).
const PIXELS: usize = 4;

pub static AVX2: KernelSet = KernelSet {
    isa: Isa::Avx2,
    int8_convs: true,
    wide_weights: true,
    reads_whole_tiles: false,
    gemm_f32: gemm_avx2::<f32>,
    gemm_u8: gemm_avx2::<u8>,
    quantize,
    depthwise,
    depthwise_3x3: Some(DEPTHWISE_3X3),
};

pub static AVXVNNI: KernelSet = KernelSet {
    isa: Isa::AvxVnni,
    int8_convs: true,
    wide_weights: false,
    reads_whole_tiles: true,
    gemm_f32: gemm_avxvnni::<f32>,
    gemm_u8: gemm_avxvnni::<u8>,
    quantize,
    depthwise,
    depthwise_3x3: Some(DEPTHWISE_3X3),
};

const DEPTHWISE_3X3: Depthwise3x3 = Depthwise3x3 {
    f32_f32: depthwise_3x3_rows::<f32, f32>,
    f32_u8: depthwise_3x3_rows::<f32, u8>,
    u8_f32: depthwise_3x3_rows::<u8, f32>,
    u8_u8: depthwise_3x3_rows::<u8, u8>,
};

// The safe entry points of the tables. Safety of each `unsafe` block: `AVX2` is only handed
// out on CPUs with AVX2 and FMA, `AVXVNNI` only on those that also have AVX-VNNI
// (`KernelSet::for_isa`); the callees check their slice lengths with assertions.

fn gemm_avx2<O: Elem8>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    unsafe { gemm(p, a, sums, r0, r1, out) }
}

fn gemm_avxvnni<O: Elem8>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    out: &mut [O],
) {
    unsafe { gemm_vnni(p, a, sums, r0, r1, out) }
}

fn quantize(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
    unsafe { quantize_whole_vectors(x, inv, zp, out) }
}

fn depthwise(dw: &Depthwise, input: &[f32], output: &mut [f32]) {
    unsafe { depthwise_avx2(dw, input, output) }
}

fn depthwise_3x3_rows<I: Elem8, O: Elem8>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    unsafe { depthwise_3x3(dw, input, oy0, oy1, output) }
}

/// The portable depthwise loop, vectorized for AVX2 by the compiler (same operations, so the
/// same results).
///
/// Safety: AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_avx2(dw: &Depthwise, input: &[f32], output: &mut [f32]) {
    portable::depthwise_image(dw, input, output)
}

/// Quantize the first `x.len() / 8 * 8` values into `out` with [`Elem8::store`]; returns how
/// many.
///
/// Safety: AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn quantize_whole_vectors(x: &[f32], inv: f32, zp: f32, out: &mut [u8]) -> usize {
    assert!(out.len() >= x.len());
    let b = Bounds8::new(Bounds::new(f32::NEG_INFINITY, f32::INFINITY, inv, zp));
    let whole = x.len() / 8 * 8;
    for i in (0..whole).step_by(8) {
        let v = _mm256_loadu_ps(x.as_ptr().add(i));
        u8::store(out.as_mut_ptr().add(i), 8, v, &b);
    }
    whole
}

/// 8 lanes of an element type, to and from f32 vectors (one value at a time: [`InElem`],
/// [`OutElem`]).
trait Elem8: InElem + OutElem {
    /// Load 8 values as f32; 8-bit values are dequantized as `q * scale + offset`
    /// (`offset = -zero_point * scale`) with one rounding.
    ///
    /// Safety: AVX2 and FMA; `p` valid for 8 values.
    unsafe fn load(p: *const Self, scale: __m256, offset: __m256) -> __m256;

    /// Clamp to `b`'s `lo..=hi` and store the first `valid` lanes (1..=8); 8-bit values are
    /// quantized as `round(v * inv + zero_point)` clamped to 0..=255, rounding half to even
    /// (both clamps in one, in the quantized range: [`Bounds`]).
    ///
    /// Safety: AVX2 and FMA; `p` valid for `valid` values.
    unsafe fn store(p: *mut Self, valid: usize, v: __m256, b: &Bounds8);

    /// Store 16 values, `a`'s then `c`'s, as [`Elem8::store`] stores each.
    ///
    /// Safety: AVX2 and FMA; `p` valid for 16 values.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store16(p: *mut Self, a: __m256, c: __m256, b: &Bounds8) {
        Self::store(p, 8, a, b);
        Self::store(p.add(8), 8, c, b);
    }
}

/// [`Bounds`] in vectors.
struct Bounds8 {
    lo: __m256,
    hi: __m256,
    inv: __m256,
    zero_point: __m256,
    q_lo: __m256,
    q_hi: __m256,
}

impl Bounds8 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn new(b: Bounds) -> Self {
        Bounds8 {
            lo: _mm256_set1_ps(b.lo),
            hi: _mm256_set1_ps(b.hi),
            inv: _mm256_set1_ps(b.inv),
            zero_point: _mm256_set1_ps(b.zero_point),
            q_lo: _mm256_set1_ps(b.q_lo),
            q_hi: _mm256_set1_ps(b.q_hi),
        }
    }
}

impl Elem8 for f32 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const f32, _: __m256, _: __m256) -> __m256 {
        _mm256_loadu_ps(p)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(p: *mut f32, valid: usize, v: __m256, b: &Bounds8) {
        let v = _mm256_min_ps(_mm256_max_ps(v, b.lo), b.hi);
        if valid == 8 {
            _mm256_storeu_ps(p, v);
        } else {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), v);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, valid);
        }
    }
}

impl Elem8 for u8 {
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn load(p: *const u8, scale: __m256, offset: __m256) -> __m256 {
        let q = _mm256_cvtepu8_epi32(_mm_loadl_epi64(p as *const __m128i));
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(q), scale, offset)
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store(p: *mut u8, valid: usize, v: __m256, b: &Bounds8) {
        let i = quantized(v, b);
        let words = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256::<1>(i));
        let bytes = _mm_packus_epi16(words, words);
        if valid == 8 {
            _mm_storel_epi64(p as *mut __m128i, bytes);
        } else {
            let mut lanes = [0u8; 16];
            _mm_storeu_si128(lanes.as_mut_ptr() as *mut __m128i, bytes);
            std::ptr::copy_nonoverlapping(lanes.as_ptr(), p, valid);
        }
    }

    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn store16(p: *mut u8, a: __m256, c: __m256, b: &Bounds8) {
        // Per 128-bit lane the packs give a0-3 c0-3 a0-3 c0-3 | a4-7 c4-7 a4-7 c4-7 (as
        // 32-bit groups 0..8); groups 0, 4, 1, 5 are a0-7 c0-7.
        let words = _mm256_packus_epi32(quantized(a, b), quantized(c, b));
        let bytes = _mm256_packus_epi16(words, words);
        let ordered = _mm256_permutevar8x32_epi32(bytes, _mm256_setr_epi32(0, 4, 1, 5, 0, 0, 0, 0));
        _mm_storeu_si128(p as *mut __m128i, _mm256_castsi256_si128(ordered));
    }
}

/// `round(v * inv + zero_point)` clamped to `q_lo..=q_hi` (inside 0..=255) as 32-bit integers,
/// so the packs' saturation changes nothing: `min(q_hi, x)` keeps NaN (the second operand) and
/// `max(NaN, q_lo)` gives `q_lo`, as [`Bounds`] requires; the conversion rounds half to even
/// (the default rounding mode).
///
/// Safety: AVX2 and FMA.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn quantized(v: __m256, b: &Bounds8) -> __m256i {
    let x = _mm256_fmadd_ps(v, b.inv, b.zero_point);
    _mm256_cvtps_epi32(_mm256_max_ps(_mm256_min_ps(b.q_hi, x), b.q_lo))
}

/// Rows `r0..r1` into `output` (those rows) with 16-bit multiply-adds. The rows are widened
/// to 16 bits once, so each pair broadcasts straight from memory.
///
/// Safety: AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn gemm<O: Elem8>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    output: &mut [O],
) {
    assert!(a.len() >= r1 * p.k && sums.len() >= r1);
    assert!(output.len() == (r1 - r0) * p.n);
    assert!(
        p.weights16.len() == p.n_blocks * 16 * p.k,
        "16-bit weights not packed"
    );
    let wide: Vec<u16> = a[r0 * p.k..r1 * p.k].iter().map(|&v| v as u16).collect();
    let vectors = p.n.div_ceil(8);
    let mut v0 = 0;
    while v0 < vectors {
        let vs = (vectors - v0).min(WIDE_V);
        for m0 in (r0..r1).step_by(WIDE_R) {
            let rows = &wide[(m0 - r0) * p.k..];
            let tile = Tile {
                m0,
                span: (r0, r1),
                v0,
            };
            match (vs, (r1 - m0).min(WIDE_R)) {
                (2, 6) => tile_wide::<6, 2, O>(p, rows, sums, tile, output),
                (2, 5) => tile_wide::<5, 2, O>(p, rows, sums, tile, output),
                (2, 4) => tile_wide::<4, 2, O>(p, rows, sums, tile, output),
                (2, 3) => tile_wide::<3, 2, O>(p, rows, sums, tile, output),
                (2, 2) => tile_wide::<2, 2, O>(p, rows, sums, tile, output),
                (2, _) => tile_wide::<1, 2, O>(p, rows, sums, tile, output),
                (_, 6) => tile_wide::<6, 1, O>(p, rows, sums, tile, output),
                (_, 5) => tile_wide::<5, 1, O>(p, rows, sums, tile, output),
                (_, 4) => tile_wide::<4, 1, O>(p, rows, sums, tile, output),
                (_, 3) => tile_wide::<3, 1, O>(p, rows, sums, tile, output),
                (_, 2) => tile_wide::<2, 1, O>(p, rows, sums, tile, output),
                _ => tile_wide::<1, 1, O>(p, rows, sums, tile, output),
            }
        }
        v0 += vs;
    }
}

/// Where a tile sits: its first row, the rows the caller stores (`span`), its first 8-channel
/// vector.
#[derive(Clone, Copy)]
struct Tile {
    m0: usize,
    span: (usize, usize),
    v0: usize,
}

/// One tile of [`gemm`]: `RR` rows from `rows` (widened), 8-channel vectors `v0..v0 + T`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn tile_wide<const RR: usize, const T: usize, O: Elem8>(
    p: &PackedGemm,
    rows: &[u16],
    sums: &[f32],
    tile: Tile,
    out: &mut [O],
) {
    assert!(rows.len() >= RR * p.k);
    let k2 = p.k / 2;
    let mut acc = [[_mm256_setzero_si256(); T]; RR];
    let pairs = rows.as_ptr() as *const i32;
    let w = p.weights16.as_ptr().add(tile.v0 * p.k * 8);
    for kk in 0..k2 {
        let mut wv = [_mm256_setzero_si256(); T];
        for (t, v) in wv.iter_mut().enumerate() {
            *v = _mm256_loadu_si256(w.add((t * k2 + kk) * 16) as *const __m256i);
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let av = _mm256_set1_epi32(pairs.add(r * k2 + kk).read_unaligned());
            for t in 0..T {
                acc_r[t] = _mm256_add_epi32(acc_r[t], _mm256_madd_epi16(av, wv[t]));
            }
        }
    }
    store_tile(p, &acc, sums, tile.m0, tile.span, tile.v0, out);
}

/// Rows `r0..r1` (r0 a multiple of R) into `output` (those rows) with AVX-VNNI `vpdpbusd`
/// on the 8-bit weights (two 256-bit halves of each 16-channel block).
///
/// Safety: AVX2, FMA and AVX-VNNI.
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn gemm_vnni<O: Elem8>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    r0: usize,
    r1: usize,
    output: &mut [O],
) {
    let tiles_end = r1.div_ceil(R) * R;
    assert!(r0.is_multiple_of(R) && a.len() >= tiles_end * p.k && sums.len() >= tiles_end);
    assert!(output.len() == (r1 - r0) * p.n);
    let vectors = p.n.div_ceil(8);
    let mut v0 = 0;
    while v0 < vectors {
        let vs = (vectors - v0).min(V);
        for m0 in (r0..tiles_end).step_by(R) {
            let span = (r0, r1);
            match vs {
                3 => tile_vnni::<3, O>(p, a, sums, m0, span, v0, output),
                2 => tile_vnni::<2, O>(p, a, sums, m0, span, v0, output),
                _ => tile_vnni::<1, O>(p, a, sums, m0, span, v0, output),
            }
        }
        v0 += vs;
    }
}

/// One tile of [`gemm_vnni`]: rows `m0..m0 + R`, 8-channel vectors `v0..v0 + T`.
#[inline]
#[target_feature(enable = "avx2,fma,avxvnni")]
unsafe fn tile_vnni<const T: usize, O: Elem8>(
    p: &PackedGemm,
    a: &[u8],
    sums: &[f32],
    m0: usize,
    span: (usize, usize),
    v0: usize,
    out: &mut [O],
) {
    let k4 = p.k / 4;
    let mut acc = [[_mm256_setzero_si256(); T]; R];
    let rows = a.as_ptr().add(m0 * p.k);
    let w: [*const i8; T] = std::array::from_fn(|t| {
        let v = v0 + t;
        p.weights.as_ptr().add((v / 2) * k4 * 64 + (v % 2) * 32)
    });
    for kk in 0..k4 {
        let mut wv = [_mm256_setzero_si256(); T];
        for (t, v) in wv.iter_mut().enumerate() {
            *v = _mm256_loadu_si256(w[t].add(kk * 64) as *const __m256i);
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            let px = (rows.add(r * p.k + kk * 4) as *const i32).read_unaligned();
            let av = _mm256_set1_epi32(px);
            for t in 0..T {
                acc_r[t] = _mm256_dpbusd_avx_epi32(acc_r[t], av, wv[t]);
            }
        }
    }
    store_tile(p, &acc, sums, m0, span, v0, out);
}

/// The float epilogue of a tile, lane for lane the portable one: `dot * mult + (sum(a) *
/// sum_mult + offset)` with fused multiply-adds, clamp, then f32 or quantized 8-bit out.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn store_tile<const RR: usize, const T: usize, O: Elem8>(
    p: &PackedGemm,
    acc: &[[__m256i; T]; RR],
    sums: &[f32],
    m0: usize,
    (first, end): (usize, usize),
    v0: usize,
    out: &mut [O],
) {
    let bounds = Bounds8::new(p.bounds());
    let mut y = [[_mm256_setzero_ps(); T]; RR];
    for t in 0..T {
        let col = (v0 + t) * 8;
        let mult = _mm256_loadu_ps(p.mult.as_ptr().add(col));
        let sum_mult = _mm256_loadu_ps(p.sum_mult.as_ptr().add(col));
        let offset = _mm256_loadu_ps(p.offset.as_ptr().add(col));
        for (r, acc_r) in acc.iter().enumerate() {
            let row = (m0 + r).min(end - 1);
            let base = _mm256_fmadd_ps(_mm256_set1_ps(sums[row]), sum_mult, offset);
            y[r][t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(acc_r[t]), mult, base);
        }
    }
    for (r, y_r) in y.iter().enumerate() {
        let row = m0 + r;
        if row >= end {
            break;
        }
        let dst = out.as_mut_ptr().add((row - first) * p.n);
        let mut t = 0;
        while t < T {
            let col = (v0 + t) * 8;
            if t + 1 < T && col + 16 <= p.n {
                O::store16(dst.add(col), y_r[t], y_r[t + 1], &bounds);
                t += 2;
            } else {
                O::store(dst.add(col), (p.n - col).min(8), y_r[t], &bounds);
                t += 1;
            }
        }
    }
}

/// 3x3 depthwise rows `oy0..oy1` of one image: per output row and 8-channel block the nine
/// weight vectors stay in registers while the row's pixels stream past, [`PIXELS`] at a time;
/// input rows come from [`PaddedRows`] (8-bit ones dequantized once; blocked, so a pixel's taps
/// are fixed offsets; the padding as zeros, so no pixel needs edge checks), 8-bit output is
/// quantized on store. The same operations in the same order as the AVX-512 kernel, so the
/// same results; channels past the last whole block take the same steps one at a time.
///
/// Safety: AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn depthwise_3x3<I: Elem8, O: Elem8>(
    dw: &Depthwise,
    input: &[I],
    oy0: usize,
    oy1: usize,
    output: &mut [O],
) {
    let params = dw.params_3x3(input, oy0, oy1, output);
    let (ow, c) = (dw.out_hw.1, dw.channels);
    let blocks = c / 8;
    let bounds = Bounds8::new(params.bounds());
    let mut padded = PaddedRows::new(dw, input, 8, blocks);
    let layout = padded.layout();
    let fill = |src: &[I], dst: &mut [f32], l: SlotLayout| {
        fill_blocks(src, dst, l, c, params.scale, params.offset)
    };
    let (w, y) = (dw.kernel.as_ptr(), output.as_mut_ptr());
    for oy in oy0..oy1 {
        let x = padded.get(dw.rows_3x3(oy), fill);
        for block in 0..blocks {
            let ch = block * 8;
            let run = Run {
                rows: x.map(|r| r.add(layout.at(block, 0))),
                weights: std::array::from_fn(|t| _mm256_loadu_ps(w.add(t * c + ch))),
                bias: _mm256_loadu_ps(dw.bias.as_ptr().add(ch)),
                out: y.add((oy - oy0) * ow * c + ch),
                c,
            };
            // The stride as a constant where it is one, so the taps' offsets are.
            match dw.stride.1 {
                1 => run.row(1, ow, &bounds),
                2 => run.row(2, ow, &bounds),
                sx => run.row(sx, ow, &bounds),
            }
        }
        let out_row = &mut output[(oy - oy0) * ow * c..][..ow * c];
        dw.row_3x3_tail(input, oy, blocks * 8, &params, out_row);
    }
}

/// One output row of one 8-channel block of [`depthwise_3x3`]: the block's input rows (at
/// column 0), its nine weights and bias, its first output.
struct Run<O> {
    rows: [*const f32; 3],
    weights: [__m256; 9],
    bias: __m256,
    out: *mut O,
    c: usize,
}

impl<O: Elem8> Run<O> {
    /// The row's `ow` pixels, [`PIXELS`] at a time, then one at a time.
    ///
    /// Safety: AVX2 and FMA; `rows` and `out` valid for the row.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn row(&self, stride: usize, ow: usize, bounds: &Bounds8) {
        let mut ox = 0;
        while ox + PIXELS <= ow {
            self.pixels::<PIXELS>(ox, stride, bounds);
            ox += PIXELS;
        }
        for ox in ox..ow {
            self.pixels::<1>(ox, stride, bounds);
        }
    }

    /// Pixels `ox..ox + N`: `N` independent chains of nine fused multiply-adds in kernel order
    /// (independent chains hide the latency), clamp, store.
    ///
    /// Safety: AVX2 and FMA; as [`Run::row`].
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn pixels<const N: usize>(&self, ox: usize, stride: usize, bounds: &Bounds8) {
        let mut acc = [self.bias; N];
        for (ky, row) in self.rows.iter().enumerate() {
            let p = row.add(ox * stride * 8);
            for kx in 0..3 {
                for (j, acc) in acc.iter_mut().enumerate() {
                    let v = _mm256_loadu_ps(p.add((j * stride + kx) * 8));
                    *acc = _mm256_fmadd_ps(v, self.weights[ky * 3 + kx], *acc);
                }
            }
        }
        let out = self.out.add(ox * self.c);
        for (j, acc) in acc.into_iter().enumerate() {
            O::store(out.add(j * self.c), 8, acc, bounds);
        }
    }
}

/// Convert a row of input (`c` channels per pixel) into its [`PaddedRows`] slot as
/// [`Elem8::load`] does (8-bit values dequantized, f32 copied), whole 8-channel blocks.
///
/// Safety: AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
unsafe fn fill_blocks<I: Elem8>(
    src: &[I],
    dst: &mut [f32],
    l: SlotLayout,
    c: usize,
    scale: f32,
    offset: f32,
) {
    let iw = src.len() / c;
    assert!(src.len() == iw * c && l.lanes == 8 && l.blocks * 8 <= c);
    assert!(l.lead + iw <= l.width && dst.len() == l.values());
    let (vs, vo) = (_mm256_set1_ps(scale), _mm256_set1_ps(offset));
    for block in 0..l.blocks {
        let d = dst.as_mut_ptr().add(l.at(block, l.lead));
        let s = src.as_ptr().add(block * 8);
        for x in 0..iw {
            _mm256_storeu_ps(d.add(x * 8), I::load(s.add(x * c), vs, vo));
        }
    }
}
