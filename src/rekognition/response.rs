//! A native per-image result as a DetectLabels response: one Label per class (COCO label in
//! Title Case), one Instance per box, confidences in percent, boxes as Left/Top/Width/Height.

use detect_core::schema::{Detection, ImageResult};
use serde_json::{json, Value};

use super::request::{LabelFilters, LabelsRequest};

/// "traffic light" → "Traffic Light": Rekognition's label casing.
pub fn title_case(label: &str) -> String {
    label
        .split(' ')
        .map(|word| {
            let mut chars = word.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn percent(score: f32) -> f64 {
    (f64::from(score) * 100.0).clamp(0.0, 100.0)
}

fn instance(d: &Detection) -> Value {
    let b = d.bbox;
    json!({
        "BoundingBox": {
            "Width": (b.xmax - b.xmin).max(0.0),
            "Height": (b.ymax - b.ymin).max(0.0),
            "Left": b.xmin,
            "Top": b.ymin,
        },
        "Confidence": percent(d.score),
    })
}

/// Labels grouped by class, highest confidence first (a label's confidence is its best box).
fn group(detections: &[Detection]) -> Vec<(String, f32, Vec<&Detection>)> {
    let mut groups: Vec<(String, f32, Vec<&Detection>)> = Vec::new();
    for d in detections {
        let name = title_case(&d.label);
        match groups.iter_mut().find(|(n, _, _)| *n == name) {
            Some((_, best, boxes)) => {
                *best = best.max(d.score);
                boxes.push(d);
            }
            None => groups.push((name, d.score, vec![d])),
        }
    }
    groups.sort_by(|a, b| b.1.total_cmp(&a.1));
    groups
}

/// Rekognition's filter rules on a label without parents or categories: an inclusion list
/// keeps only the names in it, an exclusion list drops its names; a category inclusion
/// list matches nothing (these labels have no categories), a category exclusion list
/// drops nothing.
fn keep(name: &str, filters: &LabelFilters) -> bool {
    let listed = |list: &[String]| list.iter().any(|f| f.trim().eq_ignore_ascii_case(name));
    (filters.include.is_empty() || listed(&filters.include))
        && !listed(&filters.exclude)
        && filters.include_categories.is_empty()
}

/// The `Labels` list of the response.
pub fn labels(result: &ImageResult, request: &LabelsRequest) -> Vec<Value> {
    if !request.general_labels {
        return Vec::new();
    }
    group(&result.detections)
        .into_iter()
        .filter(|(name, _, _)| keep(name, &request.filters))
        .take(request.max_labels.unwrap_or(usize::MAX))
        .map(|(name, best, boxes)| {
            json!({
                "Name": name,
                "Confidence": percent(best),
                "Instances": boxes.into_iter().map(instance).collect::<Vec<_>>(),
                "Parents": [],
                "Aliases": [],
                "Categories": [],
            })
        })
        .collect()
}

/// The whole response body. `ImageProperties` only when `IMAGE_PROPERTIES` was asked for;
/// it is an empty object (none of its members is computed).
pub fn body(result: &ImageResult, request: &LabelsRequest, model_version: &str) -> Value {
    let mut body = json!({
        "Labels": labels(result, request),
        "LabelModelVersion": model_version,
    });
    if request.image_properties {
        body["ImageProperties"] = json!({});
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rekognition::request::ImageInput;
    use detect_core::schema::{NormalizedBox, PixelBox, Timings};

    fn det(label: &str, score: f32, xmin: f32) -> Detection {
        Detection {
            class_id: 0,
            label: label.into(),
            score,
            bbox: NormalizedBox {
                xmin,
                ymin: 0.25,
                xmax: xmin + 0.5,
                ymax: 0.75,
            },
            box_px: PixelBox {
                x: 0,
                y: 0,
                width: 1,
                height: 1,
            },
        }
    }

    fn result(detections: Vec<Detection>) -> ImageResult {
        ImageResult {
            id: "i".into(),
            status: 200,
            error: None,
            width: Some(10),
            height: Some(10),
            detections,
            timings_ms: Timings::default(),
        }
    }

    fn request() -> LabelsRequest {
        LabelsRequest {
            image: ImageInput::Bytes(vec![1]),
            max_labels: None,
            min_confidence: 55.0,
            general_labels: true,
            image_properties: false,
            filters: LabelFilters::default(),
        }
    }

    fn names(labels: &[Value]) -> Vec<&str> {
        labels.iter().map(|l| l["Name"].as_str().unwrap()).collect()
    }

    #[test]
    fn title_case_matches_rekognition_names() {
        assert_eq!(title_case("person"), "Person");
        assert_eq!(title_case("traffic light"), "Traffic Light");
        assert_eq!(title_case("hot dog"), "Hot Dog");
    }

    #[test]
    fn one_label_per_class_one_instance_per_box() {
        let r = result(vec![
            det("person", 0.9, 0.1),
            det("cup", 0.8, 0.2),
            det("person", 0.6, 0.3),
        ]);
        let labels = labels(&r, &request());
        assert_eq!(names(&labels), ["Person", "Cup"]);
        let person = &labels[0];
        assert!((person["Confidence"].as_f64().unwrap() - 90.0).abs() < 1e-4);
        assert_eq!(person["Instances"].as_array().unwrap().len(), 2);
        let bbox = &person["Instances"][1]["BoundingBox"];
        assert!((bbox["Left"].as_f64().unwrap() - 0.3).abs() < 1e-6);
        assert!((bbox["Top"].as_f64().unwrap() - 0.25).abs() < 1e-6);
        assert!((bbox["Width"].as_f64().unwrap() - 0.5).abs() < 1e-6);
        assert!((bbox["Height"].as_f64().unwrap() - 0.5).abs() < 1e-6);
        assert!((person["Instances"][1]["Confidence"].as_f64().unwrap() - 60.0).abs() < 1e-4);
        assert_eq!(person["Parents"], json!([]));
    }

    #[test]
    fn labels_sorted_by_best_confidence_and_capped() {
        let r = result(vec![
            det("cup", 0.7, 0.1),
            det("dining table", 0.95, 0.1),
            det("cup", 0.99, 0.1),
        ]);
        assert_eq!(names(&labels(&r, &request())), ["Cup", "Dining Table"]);
        let capped = LabelsRequest {
            max_labels: Some(1),
            ..request()
        };
        assert_eq!(names(&labels(&r, &capped)), ["Cup"]);
        let none = LabelsRequest {
            max_labels: Some(0),
            ..request()
        };
        assert!(labels(&r, &none).is_empty());
    }

    #[test]
    fn filters_include_and_exclude_by_name() {
        let r = result(vec![det("cup", 0.9, 0.1), det("dining table", 0.8, 0.1)]);
        let with = |filters: LabelFilters| {
            let req = LabelsRequest {
                filters,
                ..request()
            };
            names(&labels(&r, &req))
                .into_iter()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let include = LabelFilters {
            include: vec!["dining TABLE".into()],
            ..Default::default()
        };
        assert_eq!(with(include), ["Dining Table"]);
        let exclude = LabelFilters {
            exclude: vec!["Cup".into()],
            ..Default::default()
        };
        assert_eq!(with(exclude), ["Dining Table"]);
        let unknown = LabelFilters {
            include: vec!["Unicorn".into()],
            ..Default::default()
        };
        assert!(with(unknown).is_empty());
        let category = LabelFilters {
            include_categories: vec!["Food and Beverage".into()],
            ..Default::default()
        };
        assert!(with(category).is_empty());
    }

    #[test]
    fn image_properties_only_when_asked() {
        let r = result(vec![det("cup", 0.9, 0.1)]);
        let plain = body(&r, &request(), "m");
        assert!(plain.get("ImageProperties").is_none());
        assert_eq!(plain["LabelModelVersion"], "m");
        let asked = LabelsRequest {
            image_properties: true,
            general_labels: false,
            ..request()
        };
        let b = body(&r, &asked, "m");
        assert_eq!(b["ImageProperties"], json!({}));
        assert_eq!(b["Labels"], json!([]));
    }
}
