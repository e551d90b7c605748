//! Deterministic image collections for the offload study: the seed's SMALL / MEDIUM / BIG
//! (296 / 2070 / 4913 JPEGs of 14–495 KB) made from the four bundled photos by cropping,
//! scaling, flipping, adding grain and re-encoding at various JPEG qualities.
//!
//! Same seed → byte-identical files: every random choice comes from [`SplitMix64`] and the
//! `image` crate's resize and JPEG encoder are deterministic.

use std::path::{Path, PathBuf};

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::RgbImage;

/// Smallest and largest file the generator writes (the seed's 14–495 KB, KB = 1000 bytes).
pub const MIN_BYTES: usize = 14_000;
pub const MAX_BYTES: usize = 495_000;
/// Longest side of a generated image (about a 4 MP photo at most).
pub const MAX_SIDE: u32 = 2400;

/// The bundled photos (public domain / CC0, see tests/fixtures/images/LICENSES.md).
const SOURCES: [(&str, &[u8]); 4] = [
    (
        "astronaut",
        include_bytes!("../../../tests/fixtures/images/astronaut.jpg"),
    ),
    (
        "chelsea",
        include_bytes!("../../../tests/fixtures/images/chelsea.jpg"),
    ),
    (
        "coffee",
        include_bytes!("../../../tests/fixtures/images/coffee.jpg"),
    ),
    (
        "rocket",
        include_bytes!("../../../tests/fixtures/images/rocket.jpg"),
    ),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Preset {
    Small,
    Medium,
    Big,
}

impl Preset {
    /// Images in the seed's dataset of this name.
    pub fn count(self) -> usize {
        match self {
            Preset::Small => 296,
            Preset::Medium => 2070,
            Preset::Big => 4913,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Preset::Small => "small",
            Preset::Medium => "medium",
            Preset::Big => "big",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "small" => Some(Preset::Small),
            "medium" => Some(Preset::Medium),
            "big" => Some(Preset::Big),
            _ => None,
        }
    }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny, fast, good enough to drive image variations.
#[derive(Clone, Debug)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in [lo, hi).
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next_f64()
    }

    /// Uniform integer in [lo, hi] (inclusive).
    pub fn int(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }
}

/// How one image of the collection was made (for the manifest and for tests).
#[derive(Clone, Debug, serde::Serialize)]
pub struct Variant {
    pub file: String,
    pub source: &'static str,
    pub crop: [u32; 4],
    pub flip: bool,
    pub grain: u8,
    pub quality: u8,
    pub width: u32,
    pub height: u32,
    pub bytes: usize,
}

fn encode(img: &RgbImage, quality: u8) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, quality)
        .encode_image(img)
        .expect("encoding an RGB image into memory cannot fail");
    out
}

/// Image number `index` of the collection with `seed`: independent of every other image, so
/// any subset (`--count`) is a prefix of the full collection.
pub fn make_image(seed: u64, index: usize, sources: &[RgbImage]) -> (Vec<u8>, Variant) {
    // One stream per image: mixing the index into the seed keeps images independent.
    let mut rng = SplitMix64::new(seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03));
    rng.next_u64();
    let which = rng.int(0, sources.len() as u64 - 1) as usize;
    let src = &sources[which];
    let (w, h) = src.dimensions();
    // Crop 55–100 % of each side at a random position.
    let cw = ((w as f64) * rng.range(0.55, 1.0)).round().max(16.0) as u32;
    let ch = ((h as f64) * rng.range(0.55, 1.0)).round().max(16.0) as u32;
    let cx = rng.int(0, (w - cw) as u64) as u32;
    let cy = rng.int(0, (h - ch) as u64) as u32;
    let flip = rng.next_u64() & 1 == 1;
    // Target file size, log-uniform over the seed's range (with a margin inside the bounds);
    // larger files get higher qualities and more grain, so pixel counts stay photo-like.
    let (lo, hi) = ((16_000f64).ln(), (470_000f64).ln());
    let target = rng.range(lo, hi).exp();
    let t = (target.ln() - lo) / (hi - lo);
    let quality = (50.0 + 45.0 * (0.7 * t + 0.3 * rng.next_f64())).round() as u8;
    let grain = (6.0 * (0.6 * t + 0.4 * rng.next_f64())).round() as u8;
    let grain_seed = rng.next_u64();

    let mut base = imageops::crop_imm(src, cx, cy, cw, ch).to_image();
    if flip {
        base = imageops::flip_horizontal(&base);
    }
    // First guess of the scale from a rough bytes-per-pixel figure, then correct it from the
    // measured size (a few deterministic iterations).
    let bpp_guess = 0.08 + 0.012 * (quality as f64 - 50.0) + 0.05 * grain as f64;
    let mut scale = (target / bpp_guess / (cw as f64 * ch as f64)).sqrt();
    let mut best: Option<(Vec<u8>, u32, u32)> = None;
    for _ in 0..8 {
        let nw = ((cw as f64 * scale).round() as u32).clamp(32, MAX_SIDE);
        let nh = ((ch as f64 * scale).round() as u32).clamp(32, MAX_SIDE);
        let mut img = if (nw, nh) == (cw, ch) {
            base.clone()
        } else {
            imageops::resize(&base, nw, nh, FilterType::Triangle)
        };
        if grain > 0 {
            let mut g = SplitMix64::new(grain_seed);
            let amp = grain as i32;
            for p in img.pixels_mut() {
                let r = g.next_u64();
                for (c, v) in p.0.iter_mut().enumerate() {
                    let n = ((r >> (c * 8)) & 0xff) as i32 % (2 * amp + 1) - amp;
                    *v = (*v as i32 + n).clamp(0, 255) as u8;
                }
            }
        }
        let bytes = encode(&img, quality);
        let len = bytes.len() as f64;
        let in_bounds = (MIN_BYTES..=MAX_BYTES).contains(&bytes.len());
        let close = (len / target - 1.0).abs() < 0.2;
        best = Some((bytes, nw, nh));
        if in_bounds && close {
            break;
        }
        scale *= (target / len).sqrt();
    }
    let (bytes, nw, nh) = best.expect("at least one encoding");
    let variant = Variant {
        file: file_name(index),
        source: SOURCES[which].0,
        crop: [cx, cy, cw, ch],
        flip,
        grain,
        quality,
        width: nw,
        height: nh,
        bytes: bytes.len(),
    };
    (bytes, variant)
}

pub fn file_name(index: usize) -> String {
    format!("img_{index:05}.jpg")
}

/// The bundled photos, decoded.
pub fn sources() -> Vec<RgbImage> {
    SOURCES
        .iter()
        .map(|(name, bytes)| {
            image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg)
                .unwrap_or_else(|e| panic!("bundled photo {name} does not decode: {e}"))
                .to_rgb8()
        })
        .collect()
}

/// Write `count` images into `out` (created if needed) plus `manifest.json`; calls `progress`
/// after each image. Images are made on `jobs` threads; the bytes do not depend on `jobs`.
pub fn generate(
    out: &Path,
    seed: u64,
    count: usize,
    jobs: usize,
    progress: &(dyn Fn() + Sync),
) -> std::io::Result<Vec<Variant>> {
    std::fs::create_dir_all(out)?;
    let sources = sources();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let variants = std::sync::Mutex::new(Vec::with_capacity(count));
    let error = std::sync::Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..jobs.max(1) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let (bytes, variant) = make_image(seed, i, &sources);
                let path: PathBuf = out.join(&variant.file);
                if let Err(e) = std::fs::write(&path, &bytes) {
                    *error.lock().unwrap() = Some(e);
                    break;
                }
                variants.lock().unwrap().push(variant);
                progress();
            });
        }
    });
    if let Some(e) = error.into_inner().unwrap() {
        return Err(e);
    }
    let mut variants = variants.into_inner().unwrap();
    variants.sort_by(|a, b| a.file.cmp(&b.file));
    let manifest = serde_json::json!({ "seed": seed, "count": count, "images": variants });
    std::fs::write(
        out.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?,
    )?;
    Ok(variants)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix_reference_values() {
        // First outputs for seed 1234567 (the algorithm's published reference sequence).
        let mut r = SplitMix64::new(1234567);
        assert_eq!(r.next_u64(), 6457827717110365317);
        assert_eq!(r.next_u64(), 3203168211198807973);
    }

    #[test]
    fn presets() {
        assert_eq!(Preset::parse("SMALL").map(Preset::count), Some(296));
        assert_eq!(Preset::parse("medium").map(Preset::count), Some(2070));
        assert_eq!(Preset::parse("big").map(Preset::count), Some(4913));
        assert_eq!(Preset::parse("huge"), None);
    }

    #[test]
    fn image_is_deterministic_and_in_bounds() {
        let src = sources();
        let (a, va) = make_image(7, 3, &src);
        let (b, _) = make_image(7, 3, &src);
        assert_eq!(a, b);
        assert!((MIN_BYTES..=MAX_BYTES).contains(&va.bytes), "{va:?}");
        let (c, _) = make_image(8, 3, &src);
        assert_ne!(a, c);
    }
}
