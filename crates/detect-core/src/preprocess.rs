//! Stage 2: bytes → oriented RGB image → the model's input tensor.
//!
//! Dimensions are read from the header and checked against a pixel limit before any pixel is
//! decoded, so a small file that claims to be 60000x60000 is refused without allocating.

use std::io::Cursor;

use image::metadata::Orientation;
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

/// Read only the header: format and dimensions (before EXIF orientation), checked against
/// the default limits like every decode.
pub fn probe(bytes: &[u8]) -> Result<(image::ImageFormat, u32, u32), ImageError> {
    let (format, decoder) = open(bytes, &ImageLimits::default())?;
    let (w, h) = decoder.dimensions();
    Ok((format, w, h))
}

/// An image decoder whose dimensions were checked against the limits.
type Checked<'a> = (image::ImageFormat, Box<dyn ImageDecoder + 'a>);

/// Read the header and check the dimensions against `limits` before any pixel is decoded.
fn open<'a>(bytes: &'a [u8], limits: &ImageLimits) -> Result<Checked<'a>, ImageError> {
    if bytes.is_empty() {
        return Err(ImageError::Empty);
    }
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let format = reader.format().ok_or(ImageError::UnsupportedFormat)?;
    let mut decoder_limits = image::Limits::default();
    decoder_limits.max_alloc = Some(limits.max_alloc);
    reader.limits(decoder_limits);
    let decoder = reader.into_decoder().map_err(from_image_error)?;
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
    Ok((format, Box::new(decoder)))
}

/// The EXIF orientation; a broken EXIF block must not cost the image: no rotation then.
fn read_orientation(decoder: &mut dyn ImageDecoder) -> Orientation {
    decoder.orientation().unwrap_or(Orientation::NoTransforms)
}

/// Decode every pixel, rotate upright, convert to 8-bit RGB.
fn decode_all(
    decoder: Box<dyn ImageDecoder + '_>,
    orientation: Orientation,
) -> Result<RgbImage, ImageError> {
    let mut image = DynamicImage::from_decoder(decoder).map_err(from_image_error)?;
    image.apply_orientation(orientation);
    Ok(to_rgb(image))
}

/// Grey, grey+alpha, RGBA, 16-bit and float images all become 8-bit RGB (alpha dropped, as the
/// reference's PIL convert('RGB') does).
fn to_rgb(image: DynamicImage) -> RgbImage {
    match image {
        DynamicImage::ImageRgb8(rgb) => rgb,
        other => other.to_rgb8(),
    }
}

/// Decode any supported format and colour type to upright 8-bit RGB at full size.
pub fn decode(bytes: &[u8], limits: &ImageLimits) -> Result<RgbImage, ImageError> {
    let (_, mut decoder) = open(bytes, limits)?;
    let orientation = read_orientation(decoder.as_mut());
    decode_all(decoder, orientation)
}

/// What [`decode_for`] gives: pixels for [`to_input`] and the size of the encoded image.
#[derive(Debug)]
pub struct Decoded {
    /// Upright 8-bit RGB, at full size or reduced by a power of two.
    pub image: RgbImage,
    /// Upright width and height of the encoded image (the size detections are reported for).
    pub width: u32,
    pub height: u32,
}

/// Decode for a model input of `input`'s size: as [`decode`], except that a JPEG at least twice
/// the input's size on both sides is decoded at 1/2, 1/4 or 1/8 of its size in the DCT domain
/// (the reduced IDCT, a low-pass downscale in itself), down to no less than the input's size.
/// Most generated and camera photos are 2–8 times the input's size: decoding every pixel and
/// then filtering them away in the resize cost more than the inference (docs/PERFORMANCE.md).
/// A JPEG the reduced decoder cannot read (CMYK, 12-bit, or anything it rejects) is decoded at
/// full size as before.
pub fn decode_for(
    bytes: &[u8],
    limits: &ImageLimits,
    input: &InputSpec,
) -> Result<Decoded, ImageError> {
    let (format, mut decoder) = open(bytes, limits)?;
    let orientation = read_orientation(decoder.as_mut());
    let (w, h) = decoder.dimensions();
    let (width, height) = if swaps_axes(orientation) {
        (h, w)
    } else {
        (w, h)
    };
    let scale = dct_scale(width, height, input);
    let reduced = match (format, scale) {
        (image::ImageFormat::Jpeg, 2..) => reduced_jpeg(bytes, scale, limits),
        _ => None,
    };
    let image = match reduced {
        Some(image) => {
            let mut image = DynamicImage::ImageRgb8(image);
            image.apply_orientation(orientation);
            to_rgb(image)
        }
        None => decode_all(decoder, orientation)?,
    };
    Ok(Decoded {
        image,
        width,
        height,
    })
}

fn swaps_axes(orientation: Orientation) -> bool {
    matches!(
        orientation,
        Orientation::Rotate90
            | Orientation::Rotate270
            | Orientation::Rotate90FlipH
            | Orientation::Rotate270FlipH
    )
}

/// The largest of 1, 2, 4, 8 that keeps an upright `width` x `height` image at least as large
/// as the input on both sides.
fn dct_scale(width: u32, height: u32, input: &InputSpec) -> u32 {
    let factor = (width / (input.width as u32).max(1)).min(height / (input.height as u32).max(1));
    match factor {
        0..=1 => 1,
        2..=3 => 2,
        4..=7 => 4,
        _ => 8,
    }
}

/// A JPEG decoded at 1/`scale` of its size by jpeg-decoder's reduced IDCT, as 8-bit RGB in the
/// stored (not yet rotated) orientation; None if it cannot: the caller decodes at full size.
fn reduced_jpeg(bytes: &[u8], scale: u32, limits: &ImageLimits) -> Option<RgbImage> {
    // Any panic in the second decoder costs the fast path only, never the image.
    std::panic::catch_unwind(|| {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder
            .set_max_decoding_buffer_size(usize::try_from(limits.max_alloc).unwrap_or(usize::MAX));
        decoder.read_info().ok()?;
        let info = decoder.info()?;
        let scale = scale as u16;
        // Asking for ceil(side / scale) makes the decoder pick exactly 1/scale.
        let (w, h) = decoder
            .scale(info.width.div_ceil(scale), info.height.div_ceil(scale))
            .ok()?;
        let pixels = decoder.decode().ok()?;
        let rgb = match info.pixel_format {
            jpeg_decoder::PixelFormat::RGB24 => pixels,
            jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&v| [v, v, v]).collect(),
            jpeg_decoder::PixelFormat::L16 | jpeg_decoder::PixelFormat::CMYK32 => return None,
        };
        RgbImage::from_raw(w as u32, h as u32, rgb)
    })
    .ok()
    .flatten()
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

/// Antialiased bilinear resize (the filter of the reference's PIL `Image.BILINEAR`), by
/// fast_image_resize's fixed-point SIMD convolution: the `image` crate's resize of a 1 MP photo
/// took longer than the inference.
fn resize_bilinear(image: &RgbImage, width: u32, height: u32) -> RgbImage {
    use fast_image_resize::{
        images::Image, FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer,
    };
    let src = fast_image_resize::images::ImageRef::new(
        image.width(),
        image.height(),
        image.as_raw(),
        PixelType::U8x3,
    )
    .expect("an RgbImage's buffer holds width x height RGB pixels");
    let mut dst = Image::new(width, height, PixelType::U8x3);
    let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
    Resizer::new()
        .resize(&src, &mut dst, &options)
        .expect("source and destination are both 8-bit RGB");
    RgbImage::from_raw(width, height, dst.into_vec()).expect("buffer sized to the image")
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
        resized = resize_bilinear(image, w, h);
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
    use image::imageops::FilterType;

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

    fn square_spec(side: usize) -> InputSpec {
        InputSpec {
            height: side,
            width: side,
            ..spec()
        }
    }

    fn fixture(name: &str) -> Vec<u8> {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/images");
        std::fs::read(std::path::Path::new(dir).join(name)).unwrap()
    }

    /// Mean absolute difference of two images of the same size, in 8-bit levels.
    fn mean_abs_diff(a: &RgbImage, b: &RgbImage) -> f64 {
        assert_eq!(a.dimensions(), b.dimensions());
        let sum: u64 = a
            .as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(&x, &y)| x.abs_diff(y) as u64)
            .sum();
        sum as f64 / a.as_raw().len() as f64
    }

    #[test]
    fn large_jpegs_are_decoded_at_a_reduced_scale_upright_and_in_rgb() {
        // A 50x50 input makes the 400-600 pixel fixtures "large": 1/4 or 1/8 scale. EXIF
        // rotation, greyscale and colour must come out as the full decode's.
        let input = square_spec(50);
        let limits = ImageLimits::default();
        for name in [
            "coffee.jpg",
            "chelsea_exif_orientation6.jpg",
            "chelsea_gray.jpg",
        ] {
            let bytes = fixture(name);
            let full = decode(&bytes, &limits).unwrap();
            let reduced = decode_for(&bytes, &limits, &input).unwrap();
            assert_eq!((reduced.width, reduced.height), full.dimensions(), "{name}");
            let (w, h) = full.dimensions();
            let s = dct_scale(w, h, &input);
            assert!(s >= 4, "{name}: scale 1/{s}");
            assert_eq!(
                reduced.image.dimensions(),
                (w.div_ceil(s), h.div_ceil(s)),
                "{name}: decoded at 1/{s}"
            );
            // The full image averaged over the same blocks (the last partial block aside).
            let averaged = box_downscale(&full, s);
            let cropped = image::imageops::crop_imm(&reduced.image, 0, 0, w / s, h / s).to_image();
            let diff = mean_abs_diff(&cropped, &averaged);
            // Measured: 1.1 (grey) to 3.2 levels (colour: chroma is upsampled differently); a
            // mirrored image differs by 33-45 levels, one shifted by a pixel by about 9.
            assert!(diff < 5.0, "{name}: mean difference {diff:.2} levels");
        }
    }

    #[test]
    fn jpegs_the_reduced_decoder_does_not_read_are_decoded_in_full() {
        // CMYK: jpeg-decoder gives CMYK, which the `image` crate converts; small: nothing to gain.
        let input = square_spec(50);
        let limits = ImageLimits::default();
        let cmyk = fixture("coffee_cmyk.jpg");
        let decoded = decode_for(&cmyk, &limits, &input).unwrap();
        assert_eq!(decoded.image, decode(&cmyk, &limits).unwrap());
        let small = square_spec(300);
        let coffee = fixture("coffee.jpg");
        let decoded = decode_for(&coffee, &limits, &small).unwrap();
        assert_eq!(decoded.image, decode(&coffee, &limits).unwrap());
    }

    #[test]
    fn dct_scale_keeps_at_least_the_input_size() {
        let input = square_spec(300);
        assert_eq!(dct_scale(599, 2400, &input), 1);
        assert_eq!(dct_scale(600, 2400, &input), 2);
        assert_eq!(dct_scale(2400, 1600, &input), 4);
        assert_eq!(dct_scale(4000, 3000, &input), 8);
        assert_eq!(dct_scale(9000, 6000, &input), 8);
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
