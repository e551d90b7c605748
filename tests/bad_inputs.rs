//! The bad-input corpus: what an untrusted client can send to the detection endpoint (the
//! HTTP API is unauthenticated) or put in the upload bucket, each case with the status and the
//! part of the message it must get. The handler is called directly, as the Lambda runtime
//! would call it, with the real detector and no AWS.
//!
//! Rules for every case: no panic, never a 500 (request or image), the documented status, a
//! message that says what was wrong; refusals of oversized inputs are fast. The number of
//! cases is pinned in [`CORPUS_CASES`] and quoted in docs/SECURITY.md.

use std::io::Cursor;
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use detect_core::{Detector, DetectorConfig, ModelSource};
use image::{DynamicImage, ImageFormat, RgbImage};
use lambda_detect::handler::{result_key, App, AppConfig, HttpReply};
use lambda_detect::request::RequestLimits;
use lambda_detect::s3::S3Event;
use serde_json::{json, Value};

/// Named cases: [`http_cases`] + [`s3_event_cases`] + [`result_key_cases`]. The mutation
/// sweep ([`MUTATIONS_PER_FIXTURE`] per fixture image) comes on top.
const CORPUS_CASES: usize = 113;
/// Truncations and byte flips of each fixture image in [`mutated_fixtures_never_fail_with_500`].
const MUTATIONS_PER_FIXTURE: usize = 12;

/// The body limit the corpus is written against (the default, as deployed).
const LIMIT: usize = lambda_detect::request::DEFAULT_MAX_BODY_BYTES;

/// Loaded once per test binary (~120 ms).
static DETECTOR: LazyLock<Arc<Detector>> = LazyLock::new(|| {
    Arc::new(Detector::load(&ModelSource::Default, &DetectorConfig::default()).unwrap())
});

/// The deployed configuration (template.yaml): one allowed bucket, uploads under incoming/,
/// results under detections/, default limits. No S3 client: nothing here reaches a network.
fn app() -> App {
    let config = AppConfig {
        allowed_buckets: vec!["uploads".into()],
        input_prefix: Some("incoming/".into()),
        results_prefix: "detections/".into(),
        results_bucket: None,
        request_limits: RequestLimits::default(),
        max_object_bytes: 15 * 1024 * 1024,
        workers: 2,
    };
    App::new(DETECTOR.clone(), None, config, 1.0)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/images/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
    let mut out = Cursor::new(Vec::new());
    image.write_to(&mut out, format).unwrap();
    out.into_inner()
}

// ---------------------------------------------------------------------------------------
// Hand-made files

fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in data {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut checked = kind.to_vec();
    checked.extend_from_slice(data);
    out.extend_from_slice(&crc32(&checked).to_be_bytes());
    out
}

/// A PNG with the given header and compressed pixel data (chunk CRCs are correct).
fn png(width: u32, height: u32, bit_depth: u8, colour_type: u8, zlib: &[u8]) -> Vec<u8> {
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[bit_depth, colour_type, 0, 0, 0]);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend(png_chunk(b"IHDR", &ihdr));
    out.extend(png_chunk(b"IDAT", zlib));
    out.extend(png_chunk(b"IEND", b""));
    out
}

/// Deflate bit writer (RFC 1951: values LSB first, Huffman codes MSB first).
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    len: u32,
}

impl Bits {
    fn put(&mut self, value: u32, count: u32) {
        self.acc |= u64::from(value) << self.len;
        self.len += count;
        while self.len >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.len -= 8;
        }
    }
    fn code(&mut self, code: u32, count: u32) {
        self.put(code.reverse_bits() >> (32 - count), count);
    }
    fn finish(mut self) -> Vec<u8> {
        if self.len > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

/// A zlib stream of `n` zero bytes, ~13 bits per 258 bytes: one literal, then back-references
/// of length 258 at distance 1 (fixed Huffman codes), then literals for the rest.
fn zlib_zeros(n: usize) -> Vec<u8> {
    assert!(n > 0);
    let mut bits = Bits::default();
    bits.put(1, 1); // BFINAL
    bits.put(1, 2); // BTYPE 01: fixed Huffman
    bits.code(0x30, 8); // literal 0
    let rest = n - 1;
    for _ in 0..rest / 258 {
        bits.code(0xc5, 8); // length code 285 = 258
        bits.code(0, 5); // distance code 0 = 1
    }
    for _ in 0..rest % 258 {
        bits.code(0x30, 8);
    }
    bits.code(0, 7); // end of block (256)
    let mut out = vec![0x78, 0x01];
    out.extend(bits.finish());
    let adler = (((n % 65521) as u32) << 16) | 1; // a = 1, b = n: all bytes are zero
    out.extend_from_slice(&adler.to_be_bytes());
    out
}

/// A real decompression bomb: a black 1-bit greyscale PNG, every row filter byte 0.
fn png_zero_bomb(width: u32, height: u32) -> Vec<u8> {
    let row = 1 + (width as usize).div_ceil(8);
    png(width, height, 1, 0, &zlib_zeros(row * height as usize))
}

/// A PNG whose header claims `width` x `height` RGB pixels; the pixel data is a few bytes.
fn png_claiming(width: u32, height: u32) -> Vec<u8> {
    png(width, height, 8, 2, &zlib_zeros(64))
}

/// A GIF whose screen and only frame claim `width` x `height`; the LZW data is empty.
fn gif_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0]); // global colour table of 2 entries
    out.extend_from_slice(&[0, 0, 0, 255, 255, 255]);
    out.push(0x2c);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.push(0);
    out.extend_from_slice(&[2, 2, 0x44, 0x01, 0, 0x3b]); // clear, 0, end; trailer
    out
}

/// JPEG segments after SOI: (marker, offset of the marker's 0xFF, segment length field).
fn jpeg_segments(jpeg: &[u8]) -> Vec<(u8, usize, usize)> {
    let mut segments = Vec::new();
    let mut at = 2;
    while at + 4 <= jpeg.len() && jpeg[at] == 0xff {
        let marker = jpeg[at + 1];
        let len = usize::from(u16::from_be_bytes([jpeg[at + 2], jpeg[at + 3]]));
        segments.push((marker, at, len));
        if marker == 0xda {
            break; // entropy-coded data follows
        }
        at += 2 + len;
    }
    segments
}

/// chelsea.jpg with its frame header (SOF0) claiming `width` x `height`.
fn jpeg_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut jpeg = fixture("chelsea.jpg");
    let (_, at, _) = jpeg_segments(&jpeg)
        .into_iter()
        .find(|(m, _, _)| *m == 0xc0)
        .expect("chelsea.jpg is baseline");
    jpeg[at + 5..at + 7].copy_from_slice(&height.to_be_bytes());
    jpeg[at + 7..at + 9].copy_from_slice(&width.to_be_bytes());
    jpeg
}

/// chelsea.jpg with an APP1 segment of `payload` inserted after SOI.
fn jpeg_with_app1(payload: &[u8]) -> Vec<u8> {
    let jpeg = fixture("chelsea.jpg");
    let mut out = jpeg[..2].to_vec();
    out.extend_from_slice(&[0xff, 0xe1]);
    out.extend_from_slice(&((payload.len() + 2) as u16).to_be_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&jpeg[2..]);
    out
}

/// A ~60 KB EXIF block: a valid little-endian TIFF header and IFD (Orientation = 1), padded.
fn big_exif() -> Vec<u8> {
    let mut exif = b"Exif\0\0II*\0".to_vec();
    exif.extend_from_slice(&8u32.to_le_bytes());
    exif.extend_from_slice(&1u16.to_le_bytes());
    exif.extend_from_slice(&0x0112u16.to_le_bytes()); // Orientation
    exif.extend_from_slice(&3u16.to_le_bytes()); // SHORT
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&1u32.to_le_bytes());
    exif.extend_from_slice(&0u32.to_le_bytes()); // no next IFD
    exif.resize(60_000, 0xa5);
    exif
}

/// An EXIF block whose IFD claims 65535 entries and points past its end.
fn lying_exif() -> Vec<u8> {
    let mut exif = b"Exif\0\0MM\0*".to_vec();
    exif.extend_from_slice(&8u32.to_be_bytes());
    exif.extend_from_slice(&0xffffu16.to_be_bytes());
    exif.extend_from_slice(&[
        0x01, 0x12, 0, 3, 0xff, 0xff, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff,
    ]);
    exif
}

/// chelsea.webp (lossy VP8) with its frame header claiming `width` x `height` (≤ 16383).
fn webp_claiming(width: u16, height: u16) -> Vec<u8> {
    let mut webp = fixture("chelsea.webp");
    assert_eq!(&webp[12..16], b"VP8 ");
    let start = (20..webp.len() - 3)
        .find(|&i| webp[i..i + 3] == [0x9d, 0x01, 0x2a])
        .unwrap();
    webp[start + 3..start + 5].copy_from_slice(&width.to_le_bytes());
    webp[start + 5..start + 7].copy_from_slice(&height.to_le_bytes());
    webp
}

/// chelsea.bmp with its header claiming `width` x `height`.
fn bmp_claiming(width: i32, height: i32) -> Vec<u8> {
    let mut bmp = fixture("chelsea.bmp");
    bmp[18..22].copy_from_slice(&width.to_le_bytes());
    bmp[22..26].copy_from_slice(&height.to_le_bytes());
    bmp
}

/// Two frames: the cat, then the coffee cup (same size). Decoders must use the first.
fn animated_gif() -> Vec<u8> {
    use image::codecs::gif::{GifEncoder, Repeat};
    use image::{Delay, Frame};
    let cat = image::load_from_memory(&fixture("chelsea.jpg"))
        .unwrap()
        .to_rgba8();
    let cup = image::load_from_memory(&fixture("coffee.jpg"))
        .unwrap()
        .crop_imm(0, 0, cat.width(), cat.height())
        .to_rgba8();
    let mut out = Vec::new();
    {
        let mut encoder = GifEncoder::new_with_speed(&mut out, 30);
        encoder.set_repeat(Repeat::Infinite).unwrap();
        let delay = Delay::from_numer_denom_ms(500, 1);
        encoder
            .encode_frames([
                Frame::from_parts(cat, 0, 0, delay),
                Frame::from_parts(cup, 0, 0, delay),
            ])
            .unwrap();
    }
    out
}

/// A JPEG padded after its EOI marker so that the whole JSON body is exactly `body_len` bytes
/// (trailing bytes after EOI are ignored by decoders). Whitespace inside base64 is allowed,
/// which makes the length exact.
fn json_body_of_len(body_len: usize) -> Vec<u8> {
    let head = br#"{"images": [{"id": "big", "data": ""#;
    let tail = br#""}]}"#;
    let room = body_len - head.len() - tail.len();
    let mut jpeg = fixture("chelsea.jpg");
    jpeg.resize(room / 4 * 3, 0); // base64 of this fits in `room`
    let mut data = b64(&jpeg).into_bytes();
    assert!(data.len() <= room);
    data.resize(room, b' ');
    let mut body = head.to_vec();
    body.extend(data);
    body.extend_from_slice(tail);
    assert_eq!(body.len(), body_len);
    body
}

fn multipart(boundary: &str, files: usize, content: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    for i in 0..files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"f\"; filename=\"{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    body
}

fn json_images(images: &[(&str, &[u8])]) -> Vec<u8> {
    let images: Vec<Value> = images
        .iter()
        .map(|(id, bytes)| json!({"id": id, "data": b64(bytes)}))
        .collect();
    json!({ "images": images }).to_string().into_bytes()
}

fn with_options(options: Value) -> Vec<u8> {
    json!({"images": [{"id": "cat", "data": b64(&fixture("chelsea.jpg"))}], "options": options})
        .to_string()
        .into_bytes()
}

fn s3_refs(refs: &[(&str, &str)]) -> Vec<u8> {
    let images: Vec<Value> = refs
        .iter()
        .map(|(bucket, key)| json!({"id": key, "s3": {"bucket": bucket, "key": key}}))
        .collect();
    json!({ "images": images }).to_string().into_bytes()
}

// ---------------------------------------------------------------------------------------
// HTTP cases

const JSON: Option<&str> = Some("application/json");

struct Case {
    name: &'static str,
    content_type: Option<&'static str>,
    query: Vec<(String, String)>,
    body: Vec<u8>,
    /// The request's status.
    status: u16,
    /// Per-image statuses; empty when the request itself is refused.
    images: Vec<u16>,
    /// Must appear in the request's error message, an image's error or a detected label.
    expect: &'static str,
    /// An upper bound on the handler's time, for refusals that must not do the work.
    fast: bool,
}

fn case(
    name: &'static str,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    images: &[u16],
    expect: &'static str,
) -> Case {
    Case {
        name,
        content_type,
        query: Vec::new(),
        body,
        status,
        images: images.to_vec(),
        expect,
        fast: false,
    }
}

impl Case {
    fn query(mut self, pairs: &[(&str, &str)]) -> Self {
        self.query = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self
    }
    fn fast(mut self) -> Self {
        self.fast = true;
        self
    }
}

fn http_cases() -> Vec<Case> {
    let cat = fixture("chelsea.jpg");
    let rgba = fixture("coffee_rgba.png");
    let webp = fixture("chelsea.webp");
    let flip = |bytes: &[u8], from: usize, every: usize| {
        let mut out = bytes.to_vec();
        for b in out.iter_mut().skip(from).step_by(every) {
            *b ^= 0xff;
        }
        out
    };
    let one_px = encode(&DynamicImage::new_rgb8(1, 1), ImageFormat::Png);
    let sliver = encode(
        &DynamicImage::ImageRgb8(RgbImage::from_pixel(1, 20_000, image::Rgb([90, 90, 90]))),
        ImageFormat::Png,
    );
    let nested = |depth: usize| {
        let mut s = String::from("{\"images\": ");
        s.push_str(&"[".repeat(depth));
        s.push_str(&"]".repeat(depth));
        s.push('}');
        s.into_bytes()
    };
    let too_many_json = json!({"images": vec![json!({"data": ""}); 5000]})
        .to_string()
        .into_bytes();
    let too_many_legacy = {
        let map: serde_json::Map<String, Value> =
            (0..5000).map(|i| (format!("{i}.jpg"), json!(""))).collect();
        Value::Object(map).to_string().into_bytes()
    };
    let mut raw_at_limit = cat.clone();
    raw_at_limit.resize(LIMIT, 0);
    let mut raw_over = raw_at_limit.clone();
    raw_over.push(0);
    let text = b"hello, this is plain text, not an image".to_vec();

    vec![
        // --- corrupt and truncated images
        case("JPEG cut after its header", Some("image/jpeg"), cat[..600].to_vec(), 422, &[422], "cannot decode"),
        // Lenient like libjpeg: a JPEG cut inside its scan decodes what is there (the rest is
        // grey) rather than failing; the caller gets the detections of the visible part.
        case("JPEG cut in half", Some("image/jpeg"), cat[..cat.len() / 2].to_vec(), 200, &[200], "cat"),
        case("JPEG with every 97th byte of its scan flipped", Some("image/jpeg"), flip(&cat, 700, 97), 200, &[200], ""),
        case("JPEG magic only", Some("image/jpeg"), vec![0xff, 0xd8, 0xff], 422, &[422], "cannot decode"),
        case("PNG cut in half", Some("image/png"), rgba[..rgba.len() / 2].to_vec(), 422, &[422], "cannot decode"),
        case("PNG with a flipped IHDR byte (CRC mismatch)", Some("image/png"), flip(&rgba, 20, rgba.len()), 422, &[422], "cannot decode"),
        case("PNG signature only", Some("image/png"), rgba[..8].to_vec(), 422, &[422], "cannot decode"),
        case("WebP cut in half", Some("image/webp"), webp[..webp.len() / 2].to_vec(), 422, &[422], "cannot decode"),
        case("WebP with its VP8 data flipped", Some("image/webp"), flip(&webp, 40, 13), 422, &[422], "cannot decode"),
        case("WebP RIFF header only", Some("image/webp"), webp[..16].to_vec(), 422, &[422], "cannot decode"),
        case("GIF cut in half", Some("image/gif"), fixture("coffee.gif")[..27_000].to_vec(), 422, &[422], "cannot decode"),
        case("TIFF cut after its header", Some("image/tiff"), fixture("astronaut.tiff")[..300].to_vec(), 422, &[422], "cannot decode"),
        case("BMP cut in half", Some("image/bmp"), fixture("chelsea.bmp")[..20_000].to_vec(), 422, &[422], "cannot decode"),
        // --- empty and not-an-image bodies
        case("zero bytes, raw", Some("image/jpeg"), vec![], 400, &[], "empty body"),
        case("zero bytes in JSON", JSON, json_images(&[("empty", b"")]), 422, &[400], "empty (0 bytes)"),
        case("zero bytes next to a good image", JSON, json_images(&[("empty", b""), ("cat", &cat)]), 200, &[400, 200], "cat"),
        case("text sent as image/jpeg", Some("image/jpeg"), text.clone(), 422, &[415], "unsupported image format"),
        case("text sent as application/octet-stream", Some("application/octet-stream"), text.clone(), 422, &[415], "unsupported image format"),
        case("HTML sent base64 in JSON", JSON, json_images(&[("page", b"<html><body>hi</body></html>")]), 422, &[415], "unsupported image format"),
        case("SVG (not decoded)", Some("image/svg+xml"), b"<svg xmlns=\"http://www.w3.org/2000/svg\"/>".to_vec(), 422, &[415], "unsupported image format"),
        // --- wrong content types for a valid image
        case("JPEG sent as application/xml", Some("application/xml"), cat.clone(), 415, &[], "unsupported content type `application/xml`"),
        case("JPEG sent as text/plain", Some("text/plain"), cat.clone(), 415, &[], "unsupported content type `text/plain`"),
        case("JPEG sent as a form", Some("application/x-www-form-urlencoded"), cat.clone(), 415, &[], "unsupported content type"),
        case("JPEG sent as multipart without boundary", Some("multipart/form-data"), cat.clone(), 400, &[], "no boundary parameter"),
        case("JPEG sent as JSON", JSON, cat.clone(), 400, &[], "malformed JSON body"),
        case("JPEG with no content type (sniffed as raw)", None, cat.clone(), 200, &[200], "cat"),
        // --- sizes and shapes
        case("1x1 image", Some("image/png"), one_px, 200, &[200], ""),
        case("1x20000 sliver", Some("image/png"), sliver, 200, &[200], ""),
        case("PNG header claiming 20000x20000", Some("image/png"), png_claiming(20_000, 20_000), 422, &[413], "over the limit of 50000000").fast(),
        case("PNG bomb: 20000x20000 black, ~300 KB", Some("image/png"), png_zero_bomb(20_000, 20_000), 422, &[413], "20000x20000 = 400000000 pixels").fast(),
        case("PNG header claiming 4294967295x4294967295", Some("image/png"), png_claiming(u32::MAX, u32::MAX), 422, &[413], "needs more memory to decode than the limit allows").fast(),
        case("JPEG header claiming 65000x65000", Some("image/jpeg"), jpeg_claiming(65_000, 65_000), 422, &[413], "over the limit").fast(),
        case("GIF header claiming 65535x65535", Some("image/gif"), gif_claiming(65_535, 65_535), 422, &[413], "over the limit").fast(),
        case("WebP header claiming 16383x16383", Some("image/webp"), webp_claiming(16_383, 16_383), 422, &[413], "over the limit").fast(),
        case("BMP header claiming 30000x30000", Some("image/bmp"), bmp_claiming(30_000, 30_000), 422, &[413], "over the limit").fast(),
        case("bomb next to a good image", JSON, json_images(&[("bomb", &png_zero_bomb(20_000, 20_000)), ("cat", &cat)]), 200, &[413, 200], "cat"),
        case("PNG bomb within the pixel limit: 7000x7000 black", Some("image/png"), png_zero_bomb(7_000, 7_000), 200, &[200], ""),
        // The most memory one image can take: 50 MP of 16-bit RGBA = 400 MB decoded, under the
        // 512 MiB decoder allocation limit, from a ~2.4 MB file.
        case("PNG bomb at the pixel limit: 7071x7071 16-bit RGBA", Some("image/png"), png(7_071, 7_071, 16, 6, &zlib_zeros(7_071 * (1 + 7_071 * 8))), 200, &[200], ""),
        // --- formats and metadata
        case("animated GIF: the first frame is used", Some("image/gif"), animated_gif(), 200, &[200], "cat"),
        case("16-bit greyscale PNG", Some("image/png"), fixture("astronaut_gray16.png"), 200, &[200], "person"),
        case("CMYK JPEG", Some("image/jpeg"), fixture("coffee_cmyk.jpg"), 200, &[200], "cup"),
        case("JPEG with a 60 KB EXIF segment", Some("image/jpeg"), jpeg_with_app1(&big_exif()), 200, &[200], "cat"),
        case("JPEG with a lying EXIF IFD", Some("image/jpeg"), jpeg_with_app1(&lying_exif()), 200, &[200], "cat"),
        // --- JSON structure
        case("JSON nested 100000 deep", JSON, nested(100_000), 400, &[], "recursion limit exceeded"),
        case("JSON nested 100000 deep in options", JSON, format!("{{\"images\": [], \"options\": {}}}", "[".repeat(100_000)).into_bytes(), 400, &[], "recursion limit exceeded"),
        case("JSON that is an array", JSON, b"[1, 2, 3]".to_vec(), 400, &[], "a JSON object"),
        case("JSON truncated", JSON, with_options(json!({}))[..100].to_vec(), 400, &[], "EOF while parsing"),
        case("JSON with a NUL byte", JSON, b"{\"images\": [\0]}".to_vec(), 400, &[], "malformed JSON body"),
        case("images entry is a number", JSON, b"{\"images\": [42]}".to_vec(), 400, &[], "images[0] must be an object"),
        case("duplicate images field", JSON, b"{\"images\": [], \"images\": []}".to_vec(), 400, &[], "duplicate field `images`"),
        case("data and s3 together", JSON, br#"{"images": [{"data": "AAAA", "s3": {"bucket": "uploads", "key": "incoming/a.jpg"}}]}"#.to_vec(), 400, &[], "exactly one of `data`"),
        case("base64 with invalid characters", JSON, br#"{"images": [{"id": "x", "data": "!!!!"}]}"#.to_vec(), 400, &[], "invalid base64"),
        case("base64 of the wrong length", JSON, br#"{"images": [{"id": "x", "data": "QUJDR"}]}"#.to_vec(), 400, &[], "invalid base64"),
        // --- body size
        case("JSON body of exactly 6 MiB", JSON, json_body_of_len(LIMIT), 200, &[200], "cat"),
        case("JSON body of 6 MiB + 1 byte", JSON, json_body_of_len(LIMIT + 1), 413, &[], "the limit is 6291456 bytes").fast(),
        case("raw body of exactly 6 MiB", Some("image/jpeg"), raw_at_limit, 200, &[200], "cat"),
        case("raw body of 6 MiB + 1 byte", Some("image/jpeg"), raw_over, 413, &[], "the limit is 6291456 bytes").fast(),
        // --- image count
        case("5000 images in JSON", JSON, too_many_json, 413, &[], "too many images: at most 20 per request").fast(),
        case("5000 images in the legacy form", JSON, too_many_legacy, 413, &[], "too many images: at most 20 per request").fast(),
        case("5000 multipart files", Some("multipart/form-data; boundary=b"), multipart("b", 5000, b"x"), 413, &[], "too many images: at most 20 per request").fast(),
        case("21 images", JSON, json_images(&vec![("cat", &cat[..]); 21]), 413, &[], "at most 20").fast(),
        case("20 images", JSON, json_images(&vec![("cat", &cat[..]); 20]), 200, &[200; 20], "cat"),
        case("no images", JSON, br#"{"images": []}"#.to_vec(), 422, &[], "no images in the request"),
        // --- options
        case("unknown option", JSON, with_options(json!({"min_scor": 0.3})), 400, &[], "unknown field `min_scor`"),
        case("unknown top-level field", JSON, br#"{"images": [], "debug": true}"#.to_vec(), 400, &[], "unknown top-level field `debug`"),
        case("unknown query parameter", Some("image/jpeg"), cat.clone(), 400, &[], "unknown query parameter `threshold`").query(&[("threshold", "0.1")]),
        case("unknown option in a multipart part", Some("multipart/form-data; boundary=b"), {
            let mut body = multipart("b", 1, &cat);
            let close = body.len() - "--b--\r\n".len();
            body.splice(close..close, b"--b\r\nContent-Disposition: form-data; name=\"options\"\r\n\r\n{\"verbose\": 1}\r\n".iter().copied());
            body
        }, 400, &[], "unknown field `verbose`"),
        case("min_score -1", JSON, with_options(json!({"min_score": -1})), 400, &[], "min_score must be between 0 and 1, got -1"),
        case("min_score 1.5", JSON, with_options(json!({"min_score": 1.5})), 400, &[], "min_score must be between 0 and 1"),
        case("iou_threshold 2", JSON, with_options(json!({"iou_threshold": 2})), 400, &[], "iou_threshold must be between 0 and 1, got 2"),
        case("min_score 1e999 (out of range)", JSON, {
            let mut body = with_options(json!({"min_score": 0.25}));
            let at = body.windows(4).position(|w| w == b"0.25").unwrap();
            body.splice(at..at + 4, b"1e999".iter().copied());
            body
        }, 400, &[], "number out of range"),
        case("min_score as a string", JSON, with_options(json!({"min_score": "0.5"})), 400, &[], "options.min_score"),
        case("max_results -1", JSON, with_options(json!({"max_results": -1})), 400, &[], "options.max_results"),
        case("max_results 0", JSON, with_options(json!({"max_results": 0})), 400, &[], "max_results must be at least 1"),
        case("classes with an unknown label", JSON, with_options(json!({"classes": ["unicorn"]})), 400, &[], "unknown class"),
        case("classes with a huge id", JSON, with_options(json!({"classes": [u64::MAX]})), 400, &[], "unknown class"),
        case("query min_score=NaN", Some("image/jpeg"), cat.clone(), 400, &[], "`min_score`: `NaN` is not a number").query(&[("min_score", "NaN")]),
        case("query min_score=inf", Some("image/jpeg"), cat.clone(), 400, &[], "is not a number").query(&[("min_score", "inf")]),
        case("query iou_threshold=-0.5", Some("image/jpeg"), cat.clone(), 400, &[], "iou_threshold must be between 0 and 1").query(&[("iou_threshold", "-0.5")]),
        case("query min_score twice", Some("image/jpeg"), cat.clone(), 400, &[], "more than once").query(&[("min_score", "0.1"), ("min_score", "0.9")]),
        case("query max_results=1e3", Some("image/jpeg"), cat.clone(), 400, &[], "must be a non-negative integer").query(&[("max_results", "1e3")]),
        // --- S3 references from HTTP callers
        case("S3 bucket not in the allow-list", JSON, s3_refs(&[("someone-elses-bucket", "incoming/a.jpg")]), 422, &[403], "not in this function's allow-list"),
        case("S3 bucket differing only in case", JSON, s3_refs(&[("Uploads", "incoming/a.jpg")]), 422, &[403], "not in this function's allow-list"),
        case("S3 key outside the input prefix", JSON, s3_refs(&[("uploads", "detections/incoming/a.jpg.json")]), 422, &[403], "outside the input prefix"),
        case("S3 key climbing out of the input prefix", JSON, s3_refs(&[("uploads", "../secret.jpg")]), 422, &[403], "outside the input prefix"),
        case("S3 key with ../ under the prefix (literal for S3)", JSON, s3_refs(&[("uploads", "incoming/../secret.jpg")]), 422, &[501], "S3 is not configured"),
        case("S3 bucket too long", JSON, s3_refs(&[(&"b".repeat(300), "incoming/a.jpg")]), 400, &[], "s3.bucket must be a non-empty string"),
        case("S3 key too long", JSON, s3_refs(&[("uploads", &format!("incoming/{}", "k".repeat(1100)))]), 400, &[], "s3.key must be a non-empty string"),
        case("S3 refs mixed with a good image", JSON, {
            json!({"images": [
                {"id": "denied", "s3": {"bucket": "other", "key": "incoming/a.jpg"}},
                {"id": "cat", "data": b64(&cat)},
            ]}).to_string().into_bytes()
        }, 200, &[403, 200], "cat"),
    ]
}

fn reply_text(reply: &HttpReply) -> String {
    let mut text = reply.body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    for result in reply.body["results"].as_array().into_iter().flatten() {
        text.push('\n');
        text.push_str(result["error"].as_str().unwrap_or_default());
        for d in result["detections"].as_array().into_iter().flatten() {
            text.push('\n');
            text.push_str(d["label"].as_str().unwrap_or_default());
        }
    }
    text
}

#[test]
fn http_corpus() {
    let app = app();
    let rt = rt();
    let mut failures = Vec::new();
    for case in http_cases() {
        let start = Instant::now();
        let reply = rt.block_on(app.handle_http(
            "POST",
            "/api/detect",
            case.content_type,
            &case.body,
            &case.query,
            "bad-input",
        ));
        let elapsed = start.elapsed();
        let statuses: Vec<u16> = reply.body["results"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|r| r["status"].as_u64().unwrap_or(0) as u16)
            .collect();
        let text = reply_text(&reply);
        let mut wrong = Vec::new();
        if reply.status != case.status {
            wrong.push(format!("status {} (want {})", reply.status, case.status));
        }
        if reply.status != 200 && reply.body["error"]["status"] != reply.status {
            wrong.push("error.status differs from the status".into());
        }
        if statuses != case.images {
            wrong.push(format!(
                "image statuses {statuses:?} (want {:?})",
                case.images
            ));
        }
        if !text.contains(case.expect) {
            wrong.push(format!("no `{}` in the messages", case.expect));
        }
        if case.fast && elapsed > Duration::from_secs(1) {
            wrong.push(format!("took {elapsed:?}"));
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{}: {}\n    {}",
                case.name,
                wrong.join("; "),
                text.replace('\n', " | ")
            ));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------
// S3 events (anyone who can write to incoming/ controls the key)

struct EventCase {
    /// The key as S3 puts it in the event (URL-encoded, space as `+`).
    raw_key: String,
    /// The decoded key reported for the record.
    key: &'static str,
    outcome: &'static str,
    reason: &'static str,
}

fn event_case(
    raw_key: &str,
    key: &'static str,
    outcome: &'static str,
    reason: &'static str,
) -> EventCase {
    EventCase {
        raw_key: raw_key.to_string(),
        key,
        outcome,
        reason,
    }
}

/// This test app has no S3 client, so a record that passes every check fails with "S3 is not
/// configured": that reason proves the checks before the fetch let it through.
fn s3_event_cases() -> Vec<EventCase> {
    const FETCH: &str = "S3 is not configured";
    vec![
        event_case("incoming/a+b.jpg", "incoming/a b.jpg", "failed", FETCH),
        event_case("incoming/a%2Bb.jpg", "incoming/a+b.jpg", "failed", FETCH),
        event_case(
            "incoming/caf%C3%A9+%E2%98%95.jpg",
            "incoming/café ☕.jpg",
            "failed",
            FETCH,
        ),
        event_case("incoming/café.jpg", "incoming/café.jpg", "failed", FETCH),
        event_case("incoming%2Fa.jpg", "incoming/a.jpg", "failed", FETCH),
        event_case(
            "incoming/a%252F..%252Fb.jpg",
            "incoming/a%2F..%2Fb.jpg",
            "failed",
            FETCH,
        ),
        // `..` means nothing to S3: the key is used as is and its result key stays under
        // detections/ (see result_key_cases).
        event_case(
            "incoming/../../etc.jpg",
            "incoming/../../etc.jpg",
            "failed",
            FETCH,
        ),
        event_case(
            "incoming/..%2F..%2Fetc.jpg",
            "incoming/../../etc.jpg",
            "failed",
            FETCH,
        ),
        event_case(
            "incoming/%FF%FE.jpg",
            "incoming/%FF%FE.jpg",
            "failed",
            "not valid UTF-8",
        ),
        event_case("incoming/100%.jpg", "incoming/100%.jpg", "failed", FETCH),
        event_case(
            "detections/incoming/a.jpg.json",
            "detections/incoming/a.jpg.json",
            "skipped",
            "under the results prefix",
        ),
        event_case(
            "detections/x.jpg",
            "detections/x.jpg",
            "skipped",
            "under the results prefix",
        ),
        event_case(
            "incoming/notes.txt",
            "incoming/notes.txt",
            "skipped",
            "not an image key",
        ),
        event_case(
            "secret/a.jpg",
            "secret/a.jpg",
            "skipped",
            "outside the input prefix",
        ),
        event_case(
            "../incoming/a.jpg",
            "../incoming/a.jpg",
            "skipped",
            "outside the input prefix",
        ),
        event_case("", "", "skipped", "outside the input prefix"),
        event_case(
            &format!("incoming/{}.jpg", "k".repeat(1010)),
            "",
            "failed",
            "over S3's 1024-byte key limit",
        ),
    ]
}

/// events/s3-put.json (a real notification's shape) with one record per key.
fn s3_event(bucket: &str, raw_keys: &[&str]) -> S3Event {
    let template: Value = serde_json::from_str(include_str!("../events/s3-put.json")).unwrap();
    let records: Vec<Value> = raw_keys
        .iter()
        .map(|key| {
            let mut record = template["Records"][0].clone();
            record["s3"]["bucket"]["name"] = json!(bucket);
            record["s3"]["object"]["key"] = json!(key);
            record["s3"]["object"]["size"] = json!(1);
            record
        })
        .collect();
    serde_json::from_value(json!({ "Records": records })).unwrap()
}

#[test]
fn s3_event_corpus() {
    let app = app();
    let cases = s3_event_cases();
    let keys: Vec<&str> = cases.iter().map(|c| c.raw_key.as_str()).collect();
    let outcome = rt()
        .block_on(app.handle_s3_event(s3_event("uploads", &keys), "bad-keys"))
        .unwrap_err();
    let records = outcome["records"].as_array().unwrap();
    assert_eq!(records.len(), cases.len());
    let mut failures = Vec::new();
    for (case, record) in cases.iter().zip(records) {
        let key = record["key"].as_str().unwrap_or_default();
        let reason = record["reason"].as_str().unwrap_or_default();
        let ok = (case.key.is_empty() || key == case.key)
            && record["outcome"] == case.outcome
            && reason.contains(case.reason)
            && record["result_key"].is_null();
        if !ok {
            failures.push(format!("{:?}: {record}", case.raw_key));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
    // One failed record fails the invocation (Lambda retries); nothing was written.
    assert_eq!(outcome["written"], 0);
}

/// Result keys are `<results prefix><source key>.json`. S3 keys are flat strings: `/` and `..`
/// are ordinary characters to S3 and to IAM's `detections/*` pattern, and neither the SDK nor
/// S3 normalizes paths. So a source key with `..` gets a result key that starts with the
/// results prefix like every other: it cannot land outside it, and keeping the key verbatim
/// keeps the mapping source → result one-to-one (a rewritten key could collide with another
/// upload's result). tests/integration/test_failures.py checks this against a real S3 server.
fn result_key_cases() -> Vec<(&'static str, Result<&'static str, &'static str>)> {
    vec![
        ("incoming/a.jpg", Ok("detections/incoming/a.jpg.json")),
        (
            "incoming/../../etc.jpg",
            Ok("detections/incoming/../../etc.jpg.json"),
        ),
        (
            "../../etc/passwd.jpg",
            Ok("detections/../../etc/passwd.jpg.json"),
        ),
        ("/abs.jpg", Ok("detections//abs.jpg.json")),
        (
            "incoming/café ☕.jpg",
            Ok("detections/incoming/café ☕.jpg.json"),
        ),
        (
            "incoming/a%2Fb.jpg",
            Ok("detections/incoming/a%2Fb.jpg.json"),
        ),
        ("", Err("empty")),
    ]
}

#[test]
fn result_keys_stay_under_the_results_prefix() {
    for (key, want) in result_key_cases() {
        let got = result_key("detections/", key);
        match want {
            Ok(want) => assert_eq!(got.as_deref(), Ok(want), "{key:?}"),
            Err(reason) => assert!(got.is_err_and(|e| e.contains(reason)), "{key:?}"),
        }
        if let Ok(k) = result_key("detections/", key) {
            assert!(k.starts_with("detections/") && k.ends_with(".json"));
        }
    }
    let longest = "k".repeat(1024 - "detections/".len() - ".json".len());
    assert!(result_key("detections/", &longest).is_ok());
    let over = format!("{longest}k");
    assert!(result_key("detections/", &over).is_err_and(|e| e.contains("1024")));
}

#[test]
fn corpus_count_is_pinned() {
    assert_eq!(
        http_cases().len() + s3_event_cases().len() + result_key_cases().len(),
        CORPUS_CASES,
        "update CORPUS_CASES and docs/SECURITY.md"
    );
}

// ---------------------------------------------------------------------------------------
// Mutation sweep

/// Every fixture image, truncated at several points and with bytes flipped at deterministic
/// pseudo-random places, sent 20 at a time: each image gets a documented status (never 500)
/// and the requests never fail as a whole except with 422 (nothing usable).
#[test]
fn mutated_fixtures_never_fail_with_500() {
    let dir = format!("{}/tests/fixtures/images", env!("CARGO_MANIFEST_DIR"));
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".md"))
        .collect();
    names.sort();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut variants: Vec<(String, Vec<u8>)> = Vec::new();
    for name in &names {
        let original = fixture(name);
        let len = original.len();
        let before = variants.len();
        for cut in [1, 16, 64, len / 10, len / 3, len - 2] {
            variants.push((format!("{name} cut at {cut}"), original[..cut].to_vec()));
        }
        for flips in [1, 2, 4, 8, 32, 128] {
            let mut bytes = original.clone();
            for _ in 0..flips {
                let at = (next() % len as u64) as usize;
                bytes[at] ^= 1 << (next() % 8);
            }
            variants.push((format!("{name} with {flips} bits flipped"), bytes));
        }
        assert_eq!(variants.len() - before, MUTATIONS_PER_FIXTURE);
    }
    let app = app();
    let rt = rt();
    let mut failures = Vec::new();
    for batch in variants.chunks(20) {
        let images: Vec<(&str, &[u8])> = batch
            .iter()
            .map(|(id, bytes)| (id.as_str(), bytes.as_slice()))
            .collect();
        let reply = rt.block_on(app.handle_http(
            "POST",
            "/api/detect",
            JSON,
            &json_images(&images),
            &[],
            "sweep",
        ));
        if reply.status != 200 && reply.status != 422 {
            failures.push(format!("request status {}: {}", reply.status, reply.body));
            continue;
        }
        for result in reply.body["results"].as_array().unwrap() {
            let status = result["status"].as_u64().unwrap_or(0);
            if ![200, 400, 413, 415, 422].contains(&status) {
                failures.push(format!("{}: {status} {}", result["id"], result["error"]));
            }
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}
