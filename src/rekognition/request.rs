//! A DetectLabels request body (AWS JSON 1.1) read and checked against the constraints of
//! Rekognition's service model, before any image is decoded or fetched.

use base64::alphabet;
use base64::engine::{DecodePaddingMode, Engine as _, GeneralPurpose, GeneralPurposeConfig};
use serde::Deserialize;

use super::error::{ErrorKind, RekognitionError};

/// Largest `Image.Bytes` after base64 decoding: Rekognition's `ImageBlob` maximum (5 MB).
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;
/// Largest request body read: a maximal image in base64 plus room for the other fields.
/// Checked before parsing so an oversized body costs no JSON work.
pub const MAX_BODY_BYTES: usize = MAX_IMAGE_BYTES.div_ceil(3) * 4 + 64 * 1024;
/// Rekognition's default `MinConfidence`, in percent.
pub const DEFAULT_MIN_CONFIDENCE: f32 = 55.0;
/// Most entries in one label filter list (`GeneralLabelsFilterList`).
const MAX_FILTERS: usize = 100;
/// Longest filter value (`GeneralLabelsFilterValue`).
const MAX_FILTER_CHARS: usize = 50;

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct Body {
    image: Option<ImageBody>,
    max_labels: Option<i64>,
    min_confidence: Option<f64>,
    features: Option<Vec<String>>,
    settings: Option<SettingsBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ImageBody {
    bytes: Option<String>,
    s3_object: Option<S3ObjectBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct S3ObjectBody {
    bucket: Option<String>,
    name: Option<String>,
    version: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct SettingsBody {
    general_labels: Option<GeneralLabelsBody>,
    image_properties: Option<ImagePropertiesBody>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct GeneralLabelsBody {
    label_inclusion_filters: Option<Vec<String>>,
    label_exclusion_filters: Option<Vec<String>>,
    label_category_inclusion_filters: Option<Vec<String>>,
    label_category_exclusion_filters: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase", deny_unknown_fields)]
struct ImagePropertiesBody {
    max_dominant_colors: Option<i64>,
}

/// Where the image is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// Decoded `Image.Bytes`.
    Bytes(Vec<u8>),
    /// `Image.S3Object`.
    S3 {
        bucket: String,
        name: String,
        version: Option<String>,
    },
}

/// `Settings.GeneralLabels`: names compared case-insensitively.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelFilters {
    pub include: Vec<String>,
    pub exclude: Vec<String>,
    pub include_categories: Vec<String>,
    pub exclude_categories: Vec<String>,
}

/// A checked DetectLabels request.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelsRequest {
    pub image: ImageInput,
    /// Most labels returned (`MaxLabels`); `None` = no limit.
    pub max_labels: Option<usize>,
    /// `MinConfidence` in percent (0–100).
    pub min_confidence: f32,
    /// `Features` has `GENERAL_LABELS` (or `Features` is absent or empty).
    pub general_labels: bool,
    /// `Features` has `IMAGE_PROPERTIES`.
    pub image_properties: bool,
    pub filters: LabelFilters,
}

fn invalid(message: impl Into<String>) -> RekognitionError {
    RekognitionError::new(ErrorKind::InvalidParameter, message)
}

/// Parses and checks a DetectLabels body.
pub fn parse(body: &[u8]) -> Result<LabelsRequest, RekognitionError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(RekognitionError::new(
            ErrorKind::ImageTooLarge,
            format!(
                "the request body is {} bytes; Image.Bytes may hold at most {MAX_IMAGE_BYTES} bytes",
                body.len()
            ),
        ));
    }
    let body: Body = serde_json::from_slice(body).map_err(|e| {
        invalid(format!(
            "the request body is not a valid DetectLabels request: {e}"
        ))
    })?;
    let image = image_input(body.image.ok_or_else(|| invalid("Image is required"))?)?;
    let max_labels = match body.max_labels {
        Some(n) if n < 0 => return Err(invalid(format!("MaxLabels must be at least 0, got {n}"))),
        Some(n) => Some(usize::try_from(n).unwrap_or(usize::MAX)),
        None => None,
    };
    let min_confidence = match body.min_confidence {
        Some(c) if !(0.0..=100.0).contains(&c) => {
            return Err(invalid(format!(
                "MinConfidence must be between 0 and 100, got {c}"
            )))
        }
        Some(c) => c as f32,
        None => DEFAULT_MIN_CONFIDENCE,
    };
    let (general_labels, image_properties) = features(body.features.unwrap_or_default())?;
    let filters = settings(body.settings)?;
    Ok(LabelsRequest {
        image,
        max_labels,
        min_confidence,
        general_labels,
        image_properties,
        filters,
    })
}

fn image_input(image: ImageBody) -> Result<ImageInput, RekognitionError> {
    match (image.bytes, image.s3_object) {
        (Some(text), None) => {
            let bytes = BASE64
                .decode(text.as_bytes())
                .map_err(|e| invalid(format!("Image.Bytes is not valid base64: {e}")))?;
            if bytes.is_empty() {
                return Err(invalid("Image.Bytes is empty"));
            }
            if bytes.len() > MAX_IMAGE_BYTES {
                return Err(RekognitionError::new(
                    ErrorKind::ImageTooLarge,
                    format!(
                        "Image.Bytes holds {} bytes; the limit is {MAX_IMAGE_BYTES}",
                        bytes.len()
                    ),
                ));
            }
            Ok(ImageInput::Bytes(bytes))
        }
        (None, Some(s3)) => s3_input(s3),
        _ => Err(invalid("Image must have exactly one of Bytes or S3Object")),
    }
}

fn s3_input(s3: S3ObjectBody) -> Result<ImageInput, RekognitionError> {
    let bucket = s3.bucket.unwrap_or_default();
    let valid_bucket = (3..=255).contains(&bucket.len())
        && bucket
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_'));
    if !valid_bucket {
        return Err(invalid(
            "Image.S3Object.Bucket must be 3 to 255 characters of letters, digits, '.', '-' or '_'",
        ));
    }
    let name = s3.name.unwrap_or_default();
    if !(1..=1024).contains(&name.len()) {
        return Err(invalid("Image.S3Object.Name must be 1 to 1024 bytes"));
    }
    if let Some(version) = &s3.version {
        if !(1..=1024).contains(&version.len()) {
            return Err(invalid("Image.S3Object.Version must be 1 to 1024 bytes"));
        }
    }
    Ok(ImageInput::S3 {
        bucket,
        name,
        version: s3.version,
    })
}

/// (`GENERAL_LABELS`, `IMAGE_PROPERTIES`) from `Features`; none given means general labels.
fn features(list: Vec<String>) -> Result<(bool, bool), RekognitionError> {
    if list.len() > 2 {
        return Err(invalid("Features has at most 2 entries"));
    }
    if list.is_empty() {
        return Ok((true, false));
    }
    let mut found = (false, false);
    for feature in &list {
        match feature.as_str() {
            "GENERAL_LABELS" => found.0 = true,
            "IMAGE_PROPERTIES" => found.1 = true,
            other => {
                return Err(invalid(format!(
                    "unknown feature {other:?}: use GENERAL_LABELS or IMAGE_PROPERTIES"
                )))
            }
        }
    }
    Ok(found)
}

fn settings(settings: Option<SettingsBody>) -> Result<LabelFilters, RekognitionError> {
    let Some(settings) = settings else {
        return Ok(LabelFilters::default());
    };
    if let Some(n) = settings
        .image_properties
        .and_then(|p| p.max_dominant_colors)
    {
        if !(0..=20).contains(&n) {
            return Err(invalid(format!(
                "Settings.ImageProperties.MaxDominantColors must be between 0 and 20, got {n}"
            )));
        }
    }
    let Some(general) = settings.general_labels else {
        return Ok(LabelFilters::default());
    };
    Ok(LabelFilters {
        include: filter_list("LabelInclusionFilters", general.label_inclusion_filters)?,
        exclude: filter_list("LabelExclusionFilters", general.label_exclusion_filters)?,
        include_categories: filter_list(
            "LabelCategoryInclusionFilters",
            general.label_category_inclusion_filters,
        )?,
        exclude_categories: filter_list(
            "LabelCategoryExclusionFilters",
            general.label_category_exclusion_filters,
        )?,
    })
}

fn filter_list(name: &str, list: Option<Vec<String>>) -> Result<Vec<String>, RekognitionError> {
    let list = list.unwrap_or_default();
    if list.len() > MAX_FILTERS {
        return Err(invalid(format!(
            "Settings.GeneralLabels.{name} has at most {MAX_FILTERS} entries"
        )));
    }
    if let Some(long) = list.iter().find(|v| v.chars().count() > MAX_FILTER_CHARS) {
        return Err(invalid(format!(
            "Settings.GeneralLabels.{name}: {long:?} is longer than {MAX_FILTER_CHARS} characters"
        )));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse_json(value: serde_json::Value) -> Result<LabelsRequest, RekognitionError> {
        parse(value.to_string().as_bytes())
    }

    fn kind(value: serde_json::Value) -> ErrorKind {
        parse_json(value).unwrap_err().kind
    }

    #[test]
    fn bytes_request_with_defaults() {
        let r = parse_json(json!({"Image": {"Bytes": "aGVsbG8="}})).unwrap();
        assert_eq!(r.image, ImageInput::Bytes(b"hello".to_vec()));
        assert_eq!(r.min_confidence, 55.0);
        assert_eq!(r.max_labels, None);
        assert!(r.general_labels && !r.image_properties);
        assert_eq!(r.filters, LabelFilters::default());
    }

    #[test]
    fn s3_request_with_every_option() {
        let r = parse_json(json!({
            "Image": {"S3Object": {"Bucket": "my.bucket-1", "Name": "incoming/a.jpg", "Version": "v1"}},
            "MaxLabels": 3,
            "MinConfidence": 80.5,
            "Features": ["GENERAL_LABELS", "IMAGE_PROPERTIES"],
            "Settings": {
                "GeneralLabels": {"LabelInclusionFilters": ["Cat"], "LabelExclusionFilters": ["Dog"]},
                "ImageProperties": {"MaxDominantColors": 5}
            }
        }))
        .unwrap();
        assert_eq!(
            r.image,
            ImageInput::S3 {
                bucket: "my.bucket-1".into(),
                name: "incoming/a.jpg".into(),
                version: Some("v1".into())
            }
        );
        assert_eq!(r.max_labels, Some(3));
        assert_eq!(r.min_confidence, 80.5);
        assert!(r.general_labels && r.image_properties);
        assert_eq!(r.filters.include, vec!["Cat"]);
        assert_eq!(r.filters.exclude, vec!["Dog"]);
    }

    #[test]
    fn image_properties_alone_turns_labels_off() {
        let r = parse_json(json!({"Image": {"Bytes": "aGk="}, "Features": ["IMAGE_PROPERTIES"]}))
            .unwrap();
        assert!(!r.general_labels && r.image_properties);
    }

    #[test]
    fn bad_parameters_are_invalid_parameter() {
        let bad = [
            json!({}),
            json!({"Image": {}}),
            json!({"Image": {"Bytes": "aGk=", "S3Object": {"Bucket": "abc", "Name": "k"}}}),
            json!({"Image": {"Bytes": "!!!"}}),
            json!({"Image": {"Bytes": ""}}),
            json!({"Image": {"S3Object": {"Bucket": "ab", "Name": "k"}}}),
            json!({"Image": {"S3Object": {"Bucket": "a/b/c", "Name": "k"}}}),
            json!({"Image": {"S3Object": {"Bucket": "abc", "Name": ""}}}),
            json!({"Image": {"S3Object": {"Bucket": "abc", "Name": "k", "Version": ""}}}),
            json!({"Image": {"Bytes": "aGk="}, "MinConfidence": 100.5}),
            json!({"Image": {"Bytes": "aGk="}, "MinConfidence": -1}),
            json!({"Image": {"Bytes": "aGk="}, "MaxLabels": -1}),
            json!({"Image": {"Bytes": "aGk="}, "Features": ["FACES"]}),
            json!({"Image": {"Bytes": "aGk="}, "Unknown": 1}),
            json!({"Image": {"Bytes": "aGk="}, "Settings": {"ImageProperties": {"MaxDominantColors": 21}}}),
            json!({"Image": {"Bytes": "aGk="}, "Settings": {"GeneralLabels": {"LabelInclusionFilters": ["x".repeat(51)]}}}),
            json!({"Image": {"Bytes": "aGk="}, "Settings": {"GeneralLabels": {"LabelInclusionFilters": vec!["a"; 101]}}}),
        ];
        for body in bad {
            assert_eq!(kind(body.clone()), ErrorKind::InvalidParameter, "{body}");
        }
        assert_eq!(
            parse(b"not json").unwrap_err().kind,
            ErrorKind::InvalidParameter
        );
    }

    #[test]
    fn oversized_images_are_image_too_large() {
        use base64::engine::general_purpose::STANDARD;
        let big = STANDARD.encode(vec![0u8; MAX_IMAGE_BYTES + 1]);
        assert_eq!(
            kind(json!({"Image": {"Bytes": big}})),
            ErrorKind::ImageTooLarge
        );
        let body = vec![b' '; MAX_BODY_BYTES + 1];
        assert_eq!(parse(&body).unwrap_err().kind, ErrorKind::ImageTooLarge);
        let max = STANDARD.encode(vec![0u8; MAX_IMAGE_BYTES]);
        assert!(parse_json(json!({"Image": {"Bytes": max}})).is_ok());
    }
}
