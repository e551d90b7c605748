//! The project's compute kernels (portable Rust and SIMD builds) and the one table that picks
//! them.
//!
//! Like tract-linalg's `plug()`, the instruction set is chosen once per process: the best set
//! this CPU runs, or the one `DETECT_ISA` names (`auto` or a [`Isa`] name; tests and
//! benchmarks use it to force a set). The ops hold the chosen `&'static` [`KernelSet`] and call
//! through it, so no kernel call re-checks CPU features. A set is only handed out for a CPU
//! that runs it ([`KernelSet::for_isa`] checks), which is what makes its safe entry points
//! sound: each one wraps a `#[target_feature]` function of its own ISA.

#[cfg(target_arch = "aarch64")]
mod aarch64_depthwise;
#[cfg(target_arch = "aarch64")]
mod aarch64_neon;
pub mod depthwise;
pub mod gemm;
pub mod parallel;
pub mod portable;
pub mod quant;
#[cfg(target_arch = "x86_64")]
mod x86_64_avx2;
#[cfg(target_arch = "x86_64")]
mod x86_64_avx512;

use std::sync::OnceLock;

use depthwise::Depthwise;
use gemm::PackedGemm;

/// The environment variable that overrides the automatic choice.
pub const ISA_ENV: &str = "DETECT_ISA";

/// An instruction set the kernels can be built for, best first within each architecture.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Isa {
    /// AVX-512 F/BW/VL with VNNI (`vpdpbusd` on 512-bit registers).
    Avx512Vnni,
    /// AVX2 + FMA with AVX-VNNI (`vpdpbusd` on 256-bit registers).
    AvxVnni,
    /// AVX2 + FMA (16-bit multiply-adds, `vpmaddwd`).
    Avx2,
    /// arm64 with the 8-bit matrix multiply (FEAT_I8MM).
    NeonI8mm,
    /// arm64 with the dot product (FEAT_DotProd).
    NeonDotprod,
    /// arm64 with plain NEON.
    Neon,
    /// Plain Rust, any CPU.
    Portable,
}

impl Isa {
    /// Every set, in order of preference.
    pub const ALL: [Isa; 7] = [
        Isa::Avx512Vnni,
        Isa::AvxVnni,
        Isa::Avx2,
        Isa::NeonI8mm,
        Isa::NeonDotprod,
        Isa::Neon,
        Isa::Portable,
    ];

    /// The name `DETECT_ISA` and reports use.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512Vnni => "avx512vnni",
            Isa::AvxVnni => "avxvnni",
            Isa::Avx2 => "avx2",
            Isa::NeonI8mm => "neon-i8mm",
            Isa::NeonDotprod => "neon-dotprod",
            Isa::Neon => "neon",
            Isa::Portable => "portable",
        }
    }

    pub fn from_name(name: &str) -> Option<Isa> {
        Isa::ALL.into_iter().find(|isa| isa.name() == name)
    }

    /// Whether this CPU has every feature the set's kernels are compiled for.
    pub fn runs_here(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            use std::is_x86_feature_detected as has;
            let avx2 = has!("avx2") && has!("fma");
            match self {
                Isa::Avx512Vnni => {
                    has!("avx512f") && has!("avx512bw") && has!("avx512vl") && has!("avx512vnni")
                }
                Isa::AvxVnni => avx2 && has!("avxvnni"),
                Isa::Avx2 => avx2,
                Isa::Portable => true,
                Isa::NeonI8mm | Isa::NeonDotprod | Isa::Neon => false,
            }
        }
        #[cfg(target_arch = "aarch64")]
        {
            use std::arch::is_aarch64_feature_detected as has;
            match self {
                Isa::NeonI8mm => has!("neon") && has!("i8mm"),
                Isa::NeonDotprod => has!("neon") && has!("dotprod"),
                Isa::Neon => has!("neon"),
                Isa::Portable => true,
                Isa::Avx512Vnni | Isa::AvxVnni | Isa::Avx2 => false,
            }
        }
        #[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
        {
            self == Isa::Portable
        }
    }

    /// The sets this CPU runs, best first (always ends with [`Isa::Portable`]).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|isa| isa.runs_here()).collect()
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A kernel set that cannot be used here: the start-up error `Detector::load` returns.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KernelError {
    #[error("{ISA_ENV}={0:?} is not a kernel set: use auto or one of {names}", names = names())]
    Unknown(String),
    #[error("this CPU cannot run the {isa} kernels (it runs: {runs})", runs = runs_here())]
    Unsupported { isa: Isa },
}

fn names() -> String {
    Isa::ALL.map(Isa::name).join(", ")
}

fn runs_here() -> String {
    Isa::available()
        .into_iter()
        .map(Isa::name)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rows `r0..r1` of an 8-bit GEMM (row buffer, per-row sums) into `out` (those rows).
pub type GemmFn<O> = fn(&PackedGemm, &[u8], &[f32], usize, usize, &mut [O]);
/// Whole vectors of a quantization (`x`, 1 / scale, zero point, `out`); returns how many
/// values it wrote (the caller rounds the rest with the scalar rule).
pub type QuantizeFn = fn(&[f32], f32, f32, &mut [u8]) -> usize;
/// One f32 image of a depthwise convolution.
pub type DepthwiseFn = fn(&Depthwise, &[f32], &mut [f32]);
/// Output rows `oy0..oy1` of one image of a 3x3 depthwise convolution, any element types.
pub type Depthwise3x3Fn<I, O> = fn(&Depthwise, &[I], usize, usize, &mut [O]);

/// 3x3 depthwise kernels reading and writing f32 or 8-bit values directly.
#[derive(Clone, Copy)]
pub struct Depthwise3x3 {
    pub f32_f32: Depthwise3x3Fn<f32, f32>,
    pub f32_u8: Depthwise3x3Fn<f32, u8>,
    pub u8_f32: Depthwise3x3Fn<u8, f32>,
    pub u8_u8: Depthwise3x3Fn<u8, u8>,
}

/// The kernels of one instruction set.
pub struct KernelSet {
    pub isa: Isa,
    /// Whether the 8-bit convolutions beat tract's f32 ones here (otherwise the model keeps
    /// its convolutions in f32; the portable GEMM stays correct, only slow).
    pub int8_convs: bool,
    /// Whether [`PackedGemm`] must carry the 16-bit weight layout this set's GEMM reads.
    pub wide_weights: bool,
    /// Whether the GEMM reads whole tiles of rows (the row buffer must be padded to a
    /// multiple of [`gemm::MR`] rows); if not, 8-bit input can be the rows in place.
    pub reads_whole_tiles: bool,
    pub gemm_f32: GemmFn<f32>,
    pub gemm_u8: GemmFn<u8>,
    pub quantize: QuantizeFn,
    pub depthwise: DepthwiseFn,
    pub depthwise_3x3: Option<Depthwise3x3>,
}

impl std::fmt::Debug for KernelSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KernelSet({})", self.isa)
    }
}

/// Plain Rust: runs anywhere, bit-identical reference for the others' 8-bit results.
static PORTABLE: KernelSet = KernelSet {
    isa: Isa::Portable,
    int8_convs: false,
    wide_weights: false,
    reads_whole_tiles: false,
    gemm_f32: portable::gemm::<f32>,
    gemm_u8: portable::gemm::<u8>,
    quantize: |_, _, _, _| 0,
    depthwise: portable::depthwise_image,
    depthwise_3x3: None,
};

impl KernelSet {
    /// The table for `isa`, if this CPU runs it.
    pub fn for_isa(isa: Isa) -> Result<&'static KernelSet, KernelError> {
        if !isa.runs_here() {
            return Err(KernelError::Unsupported { isa });
        }
        Ok(match isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512Vnni => &x86_64_avx512::SET,
            #[cfg(target_arch = "x86_64")]
            Isa::AvxVnni => &x86_64_avx2::AVXVNNI,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => &x86_64_avx2::AVX2,
            #[cfg(target_arch = "aarch64")]
            Isa::NeonI8mm => &aarch64_neon::I8MM,
            #[cfg(target_arch = "aarch64")]
            Isa::NeonDotprod => &aarch64_neon::DOTPROD,
            #[cfg(target_arch = "aarch64")]
            Isa::Neon => &aarch64_neon::NEON,
            // Portable, and the other architecture's sets (`runs_here` refused those above).
            _ => &PORTABLE,
        })
    }

    /// The table for a `DETECT_ISA` value (`None`, empty or `auto`: the best this CPU runs).
    pub fn from_setting(value: Option<&str>) -> Result<&'static KernelSet, KernelError> {
        let isa = match value.map(str::trim) {
            None | Some("") | Some("auto") => Isa::available()[0],
            Some(name) => {
                Isa::from_name(name).ok_or_else(|| KernelError::Unknown(name.to_string()))?
            }
        };
        KernelSet::for_isa(isa)
    }

    /// The process's table: chosen on first use from `DETECT_ISA`, then fixed.
    pub fn selected() -> Result<&'static KernelSet, KernelError> {
        static SELECTED: OnceLock<Result<&'static KernelSet, KernelError>> = OnceLock::new();
        SELECTED
            .get_or_init(|| KernelSet::from_setting(std::env::var(ISA_ENV).ok().as_deref()))
            .clone()
    }

    /// The portable table (tests compare every other set against it).
    pub fn portable() -> &'static KernelSet {
        &PORTABLE
    }
}

/// The kernel sets unit tests compare with the portable one: those `DETECT_TEST_ISAS` lists
/// (comma-separated; a set this CPU lacks fails the test instead of being skipped), or every
/// set this CPU runs.
#[cfg(test)]
pub fn sets_under_test() -> Vec<&'static KernelSet> {
    let isas: Vec<Isa> = match std::env::var("DETECT_TEST_ISAS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(',')
            .map(|name| Isa::from_name(name.trim()).unwrap_or_else(|| panic!("unknown ISA {name}")))
            .collect(),
        _ => Isa::available(),
    };
    isas.into_iter()
        .map(|isa| KernelSet::for_isa(isa).unwrap_or_else(|e| panic!("{e}")))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_auto_picks_the_best_set_here() {
        for isa in Isa::ALL {
            assert_eq!(Isa::from_name(isa.name()), Some(isa));
        }
        let best = KernelSet::from_setting(Some("auto")).unwrap();
        assert_eq!(best.isa, Isa::available()[0]);
        // The test scripts know the (emulated) CPU and name the set it must get.
        if let Ok(want) = std::env::var("DETECT_TEST_EXPECT_BEST") {
            assert_eq!(best.isa.name(), want.trim());
        }
        assert_eq!(KernelSet::from_setting(None).unwrap().isa, best.isa);
        assert_eq!(
            KernelSet::from_setting(Some("portable")).unwrap().isa,
            Isa::Portable
        );
    }

    #[test]
    fn unknown_names_and_sets_this_cpu_lacks_are_refused() {
        let err = KernelSet::from_setting(Some("avx9000")).unwrap_err();
        assert_eq!(err, KernelError::Unknown("avx9000".into()));
        assert!(
            err.to_string().contains("avx512vnni, avxvnni, avx2"),
            "{err}"
        );
        for isa in Isa::ALL.into_iter().filter(|isa| !isa.runs_here()) {
            let err = KernelSet::from_setting(Some(isa.name())).unwrap_err();
            assert_eq!(err, KernelError::Unsupported { isa });
            assert!(err.to_string().contains("portable"), "{err}");
        }
        #[cfg(target_arch = "x86_64")]
        assert!(KernelSet::for_isa(Isa::NeonDotprod).is_err());
    }
}
