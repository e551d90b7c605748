//! Stage 2: bytes → oriented RGB image → the model's input tensor.
//!
//! Dimensions are read from the header and checked against a pixel limit before any pixel is
//! decoded, so a small file that claims to be 60000x60000 is refused without allocating.

use std::io::Cursor;

use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageReader, RgbImage};

use crate::model::InputSpec;

/// File extensions of the formats [`decode`] reads (lowercase, without the dot).
pub const IMAGE_EXTENSIONS: &[&str] = &["jpg", "jpeg", "png", "webp", "gif", "bmp", "tif", "tiff"];

/// Limits on untrusted images.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ImageLimits {
    /// Largest accepted width × height (after the header is read, before decoding).
    pub max_pixels: u64,
    /// Largest allocation the decoder may make, in bytes.
    pub max_alloc: u64,
}

impl Default for ImageLimits {
    fn default() -> Self {
        // 50 MP covers current phone cameras; 512 MiB bounds a 16-bit RGBA decode of that.
        ImageLimits {
            max_pixels: 50_000_000,
            max_alloc: 512 * 1024 * 1024,
        }
    }
}

/// Why an image could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageError {
    #[error("the image is empty (0 bytes)")]
    Empty,
    #[error("unsupported image format: send JPEG, PNG, WebP, GIF, BMP or TIFF")]
    UnsupportedFormat,
    #[error("the image is {width}x{height} = {pixels} pixels, over the limit of {limit}; send a smaller image")]
    TooManyPixels {
        width: u32,
        height: u32,
        pixels: u64,
        limit: u64,
    },
    #[error("the image needs more memory to decode than the limit allows; send a smaller image")]
    TooLarge,
    #[error("cannot decode the image: {0}")]
    Corrupt(String),
}

fn from_image_error(e: image::ImageError) -> ImageError {
    match e {
        image::ImageError::Limits(_) => ImageError::TooLarge,
        image::ImageError::Unsupported(u) => match u.kind() {
            image::error::UnsupportedErrorKind::Format(_) => ImageError::UnsupportedFormat,
            _ => ImageError::Corrupt(u.to_string()),
        },
        other => ImageError::Corrupt(other.to_string()),
    }
}

/// Read only the header: format and dimensions (before EXIF orientation).
pub fn probe(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32), ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageError::UnsupportedFormat)?;
    let (w, h) = reader.into_dimensions().map_err(from_image_error)?;
    Ok((format, w, h))
}

/// Decode any supported format and colour type to upright 8-bit RGB.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(ImageError::UnsupportedFormat);
    }
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let mut decoder = reader.into_decoder().map_err(from_image_error)?;
    let (width, height) = decoder.dimensions();
    let pixels = width as u64 * height as u64;
    if pixels > limits.max_pixels {
        return Err(ImageError::TooManyPixels {
            width,
            height,
            pixels,
            limit: limits.max_pixels,
        });
    }
    if pixels == 0 {
        return Err(ImageError::Corrupt(format!(
            "the image has no pixels ({width}x{height})"
        )));
    }
    // A broken EXIF block must not cost the image: fall back to no rotation.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    image.apply_orientation(orientation);
    // Grey, grey+alpha, RGBA, 16-bit and float images all become 8-bit RGB (alpha dropped,
    // as the reference's PIL convert('RGB') does).
    Ok(match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    })
}

/// Average `factor` x `factor` blocks: a cheap first step for large downscales. Edge pixels
/// that do not fill a whole block are dropped (at most factor - 1 rows/columns).
fn box_downscale(image: &RgbImage, factor: u32) -> RgbImage {
    let (w, h) = (image.width() / factor, image.height() / factor);
    let src = image.as_raw();
    let stride = image.width() as usize * 3;
    let f = factor as usize;
    let area = (f * f) as u32;
    let mut out = vec![0u8; w as usize * h as usize * 3];
    let mut sums = vec![0u32; w as usize * 3];
    for (oy, row_out) in out.chunks_exact_mut(w as usize * 3).enumerate() {
        sums.iter_mut().for_each(|s| *s = 0);
        for dy in 0..f {
            let row = &src[(oy * f + dy) * stride..][..w as usize * f * 3];
            for (ox, block) in row.chunks_exact(f * 3).enumerate() {
                for px in block.chunks_exact(3) {
                    sums[ox * 3] += px[0] as u32;
                    sums[ox * 3 + 1] += px[1] as u32;
                    sums[ox * 3 + 2] += px[2] as u32;
                }
            }
        }
        for (o, &s) in row_out.iter_mut().zip(&sums) {
            *o = ((s + area / 2) / area) as u8;
        }
    }
    RgbImage::from_raw(w, h, out).expect("buffer sized to the image")
}

/// Resize to the model's input (bilinear, antialiased) and normalize to
/// `scale * (pixel - zero_point)`.
pub fn to_input(image: &RgbImage, input: &InputSpec) -> Vec<f32> {
    let (w, h) = (input.width as u32, input.height as u32);
    // A wide bilinear filter over a 12 MP photo costs more than the inference; averaging
    // blocks down to at least twice the target size first gives nearly the same pixels.
    let factor = (image.width() / (2 * w)).min(image.height() / (2 * h));
    let reduced;
    let image = if factor >= 2 {
        reduced = box_downscale(image, factor);
        &reduced
    } else {
        image
    };
    let resized;
    let pixels = if image.dimensions() == (w, h) {
        image
    } else {
        resized = image::imageops::resize(image, w, h, FilterType::Triangle);
        &resized
    };
    let q = input.quantization;
    pixels
        .as_raw()
        .iter()
        .map(|&p| q.scale * (p as f32 - q.zero_point))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::InputQuantization;

    fn spec() -> InputSpec {
        InputSpec {
            name: "input".into(),
            height: 4,
            width: 6,
            channels: 3,
            quantization: InputQuantization {
                scale: 1.0 / 128.0,
                zero_point: 128.0,
            },
        }
    }

    fn encode(image: DynamicImage, format: image::ImageFormat) -> Vec<u8> {
        let mut out = Cursor::new(Vec::new());
        image.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn normalizes_like_the_quantized_input() {
        let img = RgbImage::from_pixel(6, 4, image::Rgb([0, 128, 255]));
        let t = to_input(&img, &spec());
        assert_eq!(t.len(), 6 * 4 * 3);
        assert_eq!(&t[..3], &[-1.0, 0.0, 127.0 / 128.0]);
    }

    #[test]
    fn resizes_to_the_input_size() {
        let img = RgbImage::from_pixel(60, 40, image::Rgb([200, 10, 10]));
        let t = to_input(&img, &spec());
        assert_eq!(t.len(), 6 * 4 * 3);
        assert!((t[0] - (200.0 - 128.0) / 128.0).abs() < 1e-6);
    }

    #[test]
    fn large_images_are_block_averaged_first_with_nearly_the_same_result() {
        // A smooth gradient with fine texture: the two-step resize must stay close to the
        // direct wide bilinear filter.
        let big = RgbImage::from_fn(1230, 830, |x, y| {
            let t = ((x + y) % 7) as u8 * 3;
            image::Rgb([
                (x * 255 / 1230) as u8 ^ t,
                (y * 255 / 830) as u8,
                ((x * y) % 251) as u8,
            ])
        });
        let spec = InputSpec {
            height: 30,
            width: 40,
            ..spec()
        };
        let two_step = to_input(&big, &spec);
        let direct = image::imageops::resize(&big, 40, 30, FilterType::Triangle);
        let q = spec.quantization;
        let direct: Vec<f32> = direct
            .as_raw()
            .iter()
            .map(|&p| q.scale * (p as f32 - q.zero_point))
            .collect();
        let max_diff = two_step
            .iter()
            .zip(&direct)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        let mean_diff = two_step
            .iter()
            .zip(&direct)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / direct.len() as f32;
        assert!(mean_diff < 4.0 / 128.0, "mean difference {mean_diff}");
        assert!(max_diff < 24.0 / 128.0, "max difference {max_diff}");
    }

    #[test]
    fn box_downscale_averages_blocks() {
        let img = RgbImage::from_fn(5, 4, |x, y| {
            image::Rgb([(x * 10) as u8, (y * 10) as u8, 100])
        });
        let small = box_downscale(&img, 2);
        assert_eq!(small.dimensions(), (2, 2));
        // Block (0..2, 0..2): x in {0,10} → 5, y in {0,10} → 5.
        assert_eq!(small.get_pixel(0, 0).0, [5, 5, 100]);
        assert_eq!(small.get_pixel(1, 1).0, [25, 25, 100]);
    }

    #[test]
    fn grey_and_rgba_become_rgb() {
        let grey = DynamicImage::ImageLuma8(image::GrayImage::from_pixel(5, 3, image::Luma([77])));
        let rgb = decode(
            &encode(grey, image::ImageFormat::Png),
            &ImageLimits::default(),
        )
        .unwrap();
        assert_eq!(rgb.dimensions(), (5, 3));
        assert_eq!(rgb.get_pixel(0, 0).0, [77, 77, 77]);
        let rgba = DynamicImage::ImageRgba8(image::RgbaImage::from_pixel(
            2,
            2,
            image::Rgba([9, 8, 7, 0]),
        ));
        let rgb = decode(
            &encode(rgba, image::ImageFormat::Png),
            &ImageLimits::default(),
        )
        .unwrap();
        assert_eq!(rgb.get_pixel(1, 1).0, [9, 8, 7]);
    }

    #[test]
    fn errors_have_kinds() {
        let limits = ImageLimits::default();
        assert_eq!(decode(b"", &limits).unwrap_err(), ImageError::Empty);
        assert_eq!(
            decode(b"hello, this is text", &limits).unwrap_err(),
            ImageError::UnsupportedFormat
        );
        let png = encode(DynamicImage::new_rgb8(4, 4), image::ImageFormat::Png);
        let truncated = &png[..png.len() / 2];
        assert!(matches!(
            decode(truncated, &limits).unwrap_err(),
            ImageError::Corrupt(_)
        ));
    }

    #[test]
    fn pixel_limit_is_checked_before_decoding() {
        let png = encode(DynamicImage::new_rgb8(40, 30), image::ImageFormat::Png);
        let limits = ImageLimits {
            max_pixels: 1000,
            ..ImageLimits::default()
        };
        let err = decode(&png, &limits).unwrap_err();
        assert_eq!(
            err,
            ImageError::TooManyPixels {
                width: 40,
                height: 30,
                pixels: 1200,
                limit: 1000
            }
        );
    }
}
