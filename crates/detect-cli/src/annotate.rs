//! Draw detections onto an image (boxes and labels) with a built-in 5x7 font, so annotated
//! copies need no font files.

use std::path::{Path, PathBuf};

use image::{Rgb, RgbImage};

use detect_core::preprocess::{decode, ImageLimits};
use detect_core::schema::{Detection, ImageResult};

/// Rows of a 5-pixel-wide glyph, top to bottom; bit 4 is the leftmost pixel.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [14, 17, 17, 31, 17, 17, 17],
        'B' => [30, 17, 17, 30, 17, 17, 30],
        'C' => [14, 17, 16, 16, 16, 17, 14],
        'D' => [30, 17, 17, 17, 17, 17, 30],
        'E' => [31, 16, 16, 30, 16, 16, 31],
        'F' => [31, 16, 16, 30, 16, 16, 16],
        'G' => [14, 17, 16, 23, 17, 17, 15],
        'H' => [17, 17, 17, 31, 17, 17, 17],
        'I' => [14, 4, 4, 4, 4, 4, 14],
        'J' => [7, 2, 2, 2, 2, 18, 12],
        'K' => [17, 18, 20, 24, 20, 18, 17],
        'L' => [16, 16, 16, 16, 16, 16, 31],
        'M' => [17, 27, 21, 21, 17, 17, 17],
        'N' => [17, 17, 25, 21, 19, 17, 17],
        'O' => [14, 17, 17, 17, 17, 17, 14],
        'P' => [30, 17, 17, 30, 16, 16, 16],
        'Q' => [14, 17, 17, 17, 21, 18, 13],
        'R' => [30, 17, 17, 30, 20, 18, 17],
        'S' => [15, 16, 16, 14, 1, 1, 30],
        'T' => [31, 4, 4, 4, 4, 4, 4],
        'U' => [17, 17, 17, 17, 17, 17, 14],
        'V' => [17, 17, 17, 17, 17, 10, 4],
        'W' => [17, 17, 17, 21, 21, 21, 10],
        'X' => [17, 17, 10, 4, 10, 17, 17],
        'Y' => [17, 17, 17, 10, 4, 4, 4],
        'Z' => [31, 1, 2, 4, 8, 16, 31],
        '0' => [14, 17, 19, 21, 25, 17, 14],
        '1' => [4, 12, 4, 4, 4, 4, 14],
        '2' => [14, 17, 1, 2, 4, 8, 31],
        '3' => [31, 2, 4, 2, 1, 17, 14],
        '4' => [2, 6, 10, 18, 31, 2, 2],
        '5' => [31, 16, 30, 1, 1, 17, 14],
        '6' => [6, 8, 16, 30, 17, 17, 14],
        '7' => [31, 1, 2, 4, 8, 8, 8],
        '8' => [14, 17, 17, 14, 17, 17, 14],
        '9' => [14, 17, 17, 15, 1, 2, 12],
        '.' => [0, 0, 0, 0, 0, 12, 12],
        '-' => [0, 0, 0, 31, 0, 0, 0],
        '%' => [24, 25, 2, 4, 8, 19, 3],
        _ => [0; 7],
    }
}

/// A distinct, stable colour per class.
fn colour(class_id: usize) -> Rgb<u8> {
    const PALETTE: [[u8; 3]; 8] = [
        [230, 25, 75],
        [60, 180, 75],
        [0, 130, 200],
        [245, 130, 48],
        [145, 30, 180],
        [70, 240, 240],
        [240, 50, 230],
        [210, 245, 60],
    ];
    Rgb(PALETTE[class_id % PALETTE.len()])
}

fn fill(img: &mut RgbImage, x0: i64, y0: i64, x1: i64, y1: i64, c: Rgb<u8>) {
    let (w, h) = (img.width() as i64, img.height() as i64);
    for y in y0.max(0)..y1.min(h) {
        for x in x0.max(0)..x1.min(w) {
            img.put_pixel(x as u32, y as u32, c);
        }
    }
}

fn text(img: &mut RgbImage, s: &str, x: i64, y: i64, scale: i64, c: Rgb<u8>) {
    for (i, ch) in s.chars().enumerate() {
        let gx = x + i as i64 * 6 * scale;
        for (row, bits) in glyph(ch).iter().enumerate() {
            for col in 0..5 {
                if bits & (1 << (4 - col)) != 0 {
                    let (px, py) = (gx + col * scale, y + row as i64 * scale);
                    fill(img, px, py, px + scale, py + scale, c);
                }
            }
        }
    }
}

/// Draw each detection's box and "label score" onto the image (pixel boxes of this image).
pub fn draw_detections(img: &mut RgbImage, detections: &[Detection]) {
    let scale = (img.width().min(img.height()) as i64 / 300).max(1);
    let line = 2 * scale;
    for d in detections {
        let c = colour(d.class_id);
        let b = &d.box_px;
        let (x0, y0) = (b.x as i64, b.y as i64);
        let (x1, y1) = (x0 + b.width as i64, y0 + b.height as i64);
        fill(img, x0, y0, x1, y0 + line, c);
        fill(img, x0, y1 - line, x1, y1, c);
        fill(img, x0, y0, x0 + line, y1, c);
        fill(img, x1 - line, y0, x1, y1, c);
        let label = format!("{} {:.0}%", d.label, d.score * 100.0);
        let (tw, th) = (
            label.chars().count() as i64 * 6 * scale + 2 * scale,
            9 * scale,
        );
        // Label above the box, or inside it when the box touches the top edge.
        let ty = if y0 >= th { y0 - th } else { y0 };
        fill(img, x0, ty, x0 + tw, ty + th, c);
        text(
            img,
            &label,
            x0 + 2 * scale,
            ty + scale,
            scale,
            Rgb([255, 255, 255]),
        );
    }
}

/// Decode `source`, draw the result's detections, and save `<dir>/<file stem>.annotated.jpg`.
/// Decoding again (rather than keeping the detector's decoded images) keeps `detect files`
/// at one full-size image per worker in memory, however large the photos.
pub fn annotate_file(source: &Path, result: &ImageResult, dir: &Path) -> Result<PathBuf, String> {
    let bytes = std::fs::read(source).map_err(|e| e.to_string())?;
    let mut img = decode(&bytes, &ImageLimits::default()).map_err(|e| e.to_string())?;
    draw_detections(&mut img, &result.detections);
    let stem = source
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "image".into());
    let out = dir.join(format!("{stem}.annotated.jpg"));
    img.save_with_format(&out, image::ImageFormat::Jpeg)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use detect_core::schema::{NormalizedBox, PixelBox};

    #[test]
    fn draws_box_edges_and_label_inside_the_image() {
        let mut img = RgbImage::from_pixel(100, 80, Rgb([0, 0, 0]));
        let d = Detection {
            class_id: 0,
            label: "person".into(),
            score: 0.9,
            bbox: NormalizedBox {
                xmin: 0.1,
                ymin: 0.25,
                xmax: 0.9,
                ymax: 0.95,
            },
            box_px: PixelBox {
                x: 10,
                y: 20,
                width: 80,
                height: 56,
            },
        };
        draw_detections(&mut img, &[d]);
        assert_eq!(*img.get_pixel(10, 50), colour(0), "left edge");
        assert_eq!(*img.get_pixel(89, 50), colour(0), "right edge");
        assert_eq!(
            *img.get_pixel(50, 50),
            Rgb([0, 0, 0]),
            "inside stays untouched"
        );
        assert_eq!(
            *img.get_pixel(11, 12),
            colour(0),
            "label background above the box"
        );
    }

    #[test]
    fn boxes_past_the_edges_do_not_panic() {
        let mut img = RgbImage::new(5, 5);
        let d = Detection {
            class_id: 3,
            label: "a very long label".into(),
            score: 1.0,
            bbox: NormalizedBox {
                xmin: 0.0,
                ymin: 0.0,
                xmax: 1.0,
                ymax: 1.0,
            },
            box_px: PixelBox {
                x: 0,
                y: 0,
                width: 500,
                height: 500,
            },
        };
        draw_detections(&mut img, &[d]);
        assert_eq!(*img.get_pixel(0, 0), colour(3));
    }
}
