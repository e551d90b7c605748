//! The custom options of `TFLite_Detection_PostProcess`: a flexbuffer map.
//!
//! Read, not hard-coded, so another SSD model with other thresholds or scales works unchanged.
//! Required keys and defaults follow TFLite's kernel (detection_postprocess.cc, `Init`).

use flexbuffers::{FlexBufferType, MapReader, Reader};

use super::ModelError;
use crate::postprocess::PostprocessParams;

/// The custom code of the op the conversion cuts off and the Rust postprocess replaces.
pub const POSTPROCESS_OP: &str = "TFLite_Detection_PostProcess";

/// TFLite's `kNumDetectionsPerClass`, used when the option is absent.
const DEFAULT_DETECTIONS_PER_CLASS: usize = 100;

fn entry<'a>(map: &MapReader<&'a [u8]>, key: &str) -> Option<Reader<&'a [u8]>> {
    map.index(key)
        .ok()
        .filter(|r| r.flexbuffer_type() != FlexBufferType::Null)
}

fn required_f32(map: &MapReader<&[u8]>, key: &str) -> Result<f32, ModelError> {
    let value = entry(map, key)
        .ok_or_else(|| ModelError::invalid(format!("{POSTPROCESS_OP} options lack '{key}'")))?
        .as_f64() as f32;
    if !value.is_finite() {
        return Err(ModelError::invalid(format!(
            "{POSTPROCESS_OP} option '{key}' is not finite"
        )));
    }
    Ok(value)
}

fn required_count(map: &MapReader<&[u8]>, key: &str) -> Result<usize, ModelError> {
    let value = entry(map, key)
        .ok_or_else(|| ModelError::invalid(format!("{POSTPROCESS_OP} options lack '{key}'")))?
        .as_i64();
    usize::try_from(value)
        .ok()
        .filter(|&v| v <= 100_000)
        .ok_or_else(|| {
            ModelError::invalid(format!(
                "{POSTPROCESS_OP} option '{key}' = {value} is out of range"
            ))
        })
}

/// Parse the op's flexbuffer options.
pub fn parse_postprocess_options(bytes: &[u8]) -> Result<PostprocessParams, ModelError> {
    let root = Reader::get_root(bytes).map_err(|e| {
        ModelError::invalid(format!(
            "{POSTPROCESS_OP} options are not a flexbuffer: {e}"
        ))
    })?;
    let map = root
        .get_map()
        .map_err(|e| ModelError::invalid(format!("{POSTPROCESS_OP} options are not a map: {e}")))?;
    let detections_per_class = match entry(&map, "detections_per_class") {
        Some(r) => usize::try_from(r.as_i64()).unwrap_or(DEFAULT_DETECTIONS_PER_CLASS),
        None => DEFAULT_DETECTIONS_PER_CLASS,
    };
    let params = PostprocessParams {
        max_detections: required_count(&map, "max_detections")?,
        max_classes_per_detection: required_count(&map, "max_classes_per_detection")?,
        detections_per_class,
        nms_score_threshold: required_f32(&map, "nms_score_threshold")?,
        nms_iou_threshold: required_f32(&map, "nms_iou_threshold")?,
        num_classes: required_count(&map, "num_classes")?,
        use_regular_nms: entry(&map, "use_regular_nms")
            .map(|r| r.as_bool())
            .unwrap_or(false),
        y_scale: required_f32(&map, "y_scale")?,
        x_scale: required_f32(&map, "x_scale")?,
        h_scale: required_f32(&map, "h_scale")?,
        w_scale: required_f32(&map, "w_scale")?,
    };
    if params.num_classes == 0
        || params.max_detections == 0
        || params.max_classes_per_detection == 0
    {
        return Err(ModelError::invalid(format!(
            "{POSTPROCESS_OP} options need num_classes, max_detections and max_classes_per_detection > 0"
        )));
    }
    if [
        params.y_scale,
        params.x_scale,
        params.h_scale,
        params.w_scale,
    ]
    .contains(&0.0)
    {
        return Err(ModelError::invalid(format!(
            "{POSTPROCESS_OP} box scales must be non-zero"
        )));
    }
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;
    use flexbuffers::Builder;

    fn options(skip: &str) -> Vec<u8> {
        let mut b = Builder::default();
        let mut m = b.start_map();
        for (k, v) in [
            ("max_detections", 20),
            ("max_classes_per_detection", 1),
            ("num_classes", 90),
        ] {
            if k != skip {
                m.push(k, v);
            }
        }
        for (k, v) in [
            ("nms_score_threshold", 1e-8f32),
            ("nms_iou_threshold", 0.6),
            ("y_scale", 10.0),
            ("x_scale", 10.0),
            ("h_scale", 5.0),
            ("w_scale", 5.0),
        ] {
            if k != skip {
                m.push(k, v);
            }
        }
        m.end_map();
        b.view().to_vec()
    }

    #[test]
    fn reads_values_and_defaults() {
        let p = parse_postprocess_options(&options("")).unwrap();
        assert_eq!(p.max_detections, 20);
        assert_eq!(p.num_classes, 90);
        assert_eq!(p.detections_per_class, DEFAULT_DETECTIONS_PER_CLASS);
        assert!(!p.use_regular_nms);
        assert!((p.nms_iou_threshold - 0.6).abs() < 1e-6);
        assert_eq!((p.y_scale, p.h_scale), (10.0, 5.0));
    }

    #[test]
    fn missing_required_key_is_named() {
        let err = parse_postprocess_options(&options("h_scale")).unwrap_err();
        assert!(err.to_string().contains("h_scale"), "{err}");
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x00",
            b"\xff\xff\xff\xff",
            b"not a flexbuffer at all",
        ] {
            assert!(parse_postprocess_options(bytes).is_err());
        }
    }
}
