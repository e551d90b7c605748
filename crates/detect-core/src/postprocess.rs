//! The model's `TFLite_Detection_PostProcess` op in plain Rust: anchor decoding, IoU, fast
//! (class-agnostic) and regular (per-class) non-maximum suppression, plus the caller's filters
//! (score floor, result cap, class allow/deny lists).
//!
//! The reference is TensorFlow's `tensorflow/lite/kernels/detection_postprocess.cc`. Where this
//! module departs from it, the item that does so says why.

/// Per-class cap TFLite uses for regular NMS when the model has no `detections_per_class`
/// option (`kNumDetectionsPerClass` in detection_postprocess.cc). This module also uses it when
/// the option is 0: TFLite refuses 0 in regular NMS, and models that only run fast NMS (such as
/// SSD MobileNet V2 COCO) store 0 there, yet callers may still ask for regular NMS.
pub const DEFAULT_DETECTIONS_PER_CLASS: usize = 100;

/// One SSD anchor, normalized centre/size (the order stored in the model: yc, xc, h, w).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Anchor {
    pub yc: f32,
    pub xc: f32,
    pub h: f32,
    pub w: f32,
}

/// Normalized box as TFLite emits it (not clipped).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BoxN {
    pub ymin: f32,
    pub xmin: f32,
    pub ymax: f32,
    pub xmax: f32,
}

/// Parameters of the model's `TFLite_Detection_PostProcess` op (read from its custom options).
#[derive(Clone, Debug, PartialEq)]
pub struct PostprocessParams {
    /// Boxes kept by NMS (fast NMS: anchors, each emitted with up to
    /// `max_classes_per_detection` classes; regular NMS: detections).
    pub max_detections: usize,
    /// Fast NMS only: classes emitted per kept anchor (must be at least 1 there).
    pub max_classes_per_detection: usize,
    /// Regular NMS only: boxes kept per class; 0 means [`DEFAULT_DETECTIONS_PER_CLASS`].
    pub detections_per_class: usize,
    /// Scores below this never become candidates (`>=` passes).
    pub nms_score_threshold: f32,
    /// A box is suppressed when its IoU with a kept box is strictly greater than this.
    pub nms_iou_threshold: f32,
    /// Real classes, without background.
    pub num_classes: usize,
    pub use_regular_nms: bool,
    pub y_scale: f32,
    pub x_scale: f32,
    pub h_scale: f32,
    pub w_scale: f32,
}

impl PostprocessParams {
    /// Per-class cap regular NMS uses (see [`DEFAULT_DETECTIONS_PER_CLASS`] for 0).
    pub fn effective_detections_per_class(&self) -> usize {
        if self.detections_per_class == 0 {
            DEFAULT_DETECTIONS_PER_CLASS
        } else {
            self.detections_per_class
        }
    }

    /// Checks the values [`detect`] relies on. `max_classes_per_detection` is checked only when
    /// fast NMS actually runs, as TFLite does.
    pub fn validate(&self) -> Result<(), PostprocessError> {
        if self.num_classes == 0 {
            return Err(invalid("num_classes", 0, "at least 1"));
        }
        if self.nms_score_threshold.is_nan() {
            return Err(invalid(
                "nms_score_threshold",
                self.nms_score_threshold,
                "a number (not NaN)",
            ));
        }
        // TFLite requires > 0; 0 is accepted here and means "any overlap suppresses".
        if !UNIT.contains(&self.nms_iou_threshold) {
            return Err(invalid(
                "nms_iou_threshold",
                self.nms_iou_threshold,
                "a number in [0, 1]",
            ));
        }
        for (name, v) in [
            ("y_scale", self.y_scale),
            ("x_scale", self.x_scale),
            ("h_scale", self.h_scale),
            ("w_scale", self.w_scale),
        ] {
            // Encodings are divided by these: 0 or a non-finite value yields meaningless boxes.
            if !v.is_finite() || v == 0.0 {
                return Err(invalid(name, v, "a finite non-zero number"));
            }
        }
        Ok(())
    }
}

/// What the caller wants on top of the model's own postprocess. `Default` reproduces the
/// model's op exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct FilterOptions {
    /// Minimum score, in [0, 1]. `None` keeps only the model's `nms_score_threshold` (1e-8 for
    /// SSD MobileNet V2 COCO, i.e. nearly everything); the detector fills in 0.5.
    pub min_score: Option<f32>,
    /// `None` = the model's `max_detections`. Counts what the model's own cap counts: with fast
    /// NMS, kept anchors (each may carry up to `max_classes_per_detection` classes).
    pub max_results: Option<usize>,
    /// In [0, 1]. `None` = the model's `nms_iou_threshold`.
    pub iou_threshold: Option<f32>,
    /// Class ids (= label ids) to keep; `None` = all. Applied before NMS.
    pub allowed_classes: Option<Vec<usize>>,
    /// Class ids to drop, applied before NMS; wins over `allowed_classes`.
    pub denied_classes: Vec<usize>,
    /// `None` = the model's `use_regular_nms`.
    pub regular_nms: Option<bool>,
}

impl FilterOptions {
    /// Checks thresholds and that every class id is below `num_classes`.
    pub fn validate(&self, num_classes: usize) -> Result<(), PostprocessError> {
        if let Some(s) = self.min_score {
            if !UNIT.contains(&s) {
                return Err(invalid("min_score", s, "a number in [0, 1]"));
            }
        }
        if let Some(t) = self.iou_threshold {
            if !UNIT.contains(&t) {
                return Err(invalid("iou_threshold", t, "a number in [0, 1]"));
            }
        }
        let lists = [
            (
                "allowed_classes",
                self.allowed_classes.as_deref().unwrap_or(&[]),
            ),
            ("denied_classes", self.denied_classes.as_slice()),
        ];
        for (list, ids) in lists {
            if let Some(&class_id) = ids.iter().find(|&&c| c >= num_classes) {
                return Err(PostprocessError::ClassOutOfRange {
                    list,
                    class_id,
                    num_classes,
                });
            }
        }
        Ok(())
    }
}

/// One detection: class id is the label id (score column index minus the background column).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RawDetection {
    pub class_id: usize,
    pub score: f32,
    pub bbox: BoxN,
}

/// Why [`detect`] refused its input.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum PostprocessError {
    #[error(
        "box encodings hold {len} values for {anchors} anchors; expected 4 per anchor \
         (ty, tx, th, tw), i.e. {expected}"
    )]
    EncodingsLength {
        len: usize,
        anchors: usize,
        expected: usize,
    },
    #[error(
        "class scores hold {len} values for {anchors} anchors and {num_classes} classes; \
         expected one row per anchor of num_classes + 1 columns (background first) \
         or of num_classes columns (no background)"
    )]
    ScoresLength {
        len: usize,
        anchors: usize,
        num_classes: usize,
    },
    #[error("{name} is {value}; allowed: {allowed}")]
    InvalidValue {
        name: &'static str,
        value: String,
        allowed: &'static str,
    },
    #[error(
        "class id {class_id} in {list} is out of range; allowed: 0 to {num_classes} exclusive \
         (the model has {num_classes} classes)"
    )]
    ClassOutOfRange {
        list: &'static str,
        class_id: usize,
        num_classes: usize,
    },
    #[error(
        "decoded box {index} is inverted ({bbox:?}); TFLite rejects such input: anchor heights \
         and widths must not be negative"
    )]
    InvertedBox { index: usize, bbox: BoxN },
}

const UNIT: std::ops::RangeInclusive<f32> = 0.0..=1.0;

fn invalid(name: &'static str, value: impl ToString, allowed: &'static str) -> PostprocessError {
    PostprocessError::InvalidValue {
        name,
        value: value.to_string(),
        allowed,
    }
}

/// Decodes one box per anchor (as many as both slices provide; [`detect`] checks the lengths).
/// Encodings per anchor: ty, tx, th, tw.
pub fn decode_boxes(encodings: &[f32], anchors: &[Anchor], p: &PostprocessParams) -> Vec<BoxN> {
    encodings
        .chunks_exact(4)
        .zip(anchors)
        .map(|(e, a)| decode_one([e[0], e[1], e[2], e[3]], a, p))
        .collect()
}

fn decode_one([ty, tx, th, tw]: [f32; 4], a: &Anchor, p: &PostprocessParams) -> BoxN {
    let d = f64::from;
    // TFLite computes centre and half-size in double and rounds each to float before the
    // final float add/subtract; doing the same keeps boxes bit-identical.
    let yc = (d(ty) / d(p.y_scale) * d(a.h) + d(a.yc)) as f32;
    let xc = (d(tx) / d(p.x_scale) * d(a.w) + d(a.xc)) as f32;
    let half_h = (0.5 * (d(th) / d(p.h_scale)).exp() * d(a.h)) as f32;
    let half_w = (0.5 * (d(tw) / d(p.w_scale)).exp() * d(a.w)) as f32;
    BoxN {
        ymin: yc - half_h,
        xmin: xc - half_w,
        ymax: yc + half_h,
        xmax: xc + half_w,
    }
}

/// Intersection over union as TFLite computes it: 0 when either area is not positive;
/// the intersection's sides clamp at 0. Never above 1 for valid boxes; NaN coordinates give
/// 0 or NaN, and NaN never counts as an overlap above a threshold.
pub fn iou(a: &BoxN, b: &BoxN) -> f32 {
    let area_a = (a.ymax - a.ymin) * (a.xmax - a.xmin);
    let area_b = (b.ymax - b.ymin) * (b.xmax - b.xmin);
    if area_a.is_nan() || area_b.is_nan() || area_a <= 0.0 || area_b <= 0.0 {
        return 0.0;
    }
    let ih = (a.ymax.min(b.ymax) - a.ymin.max(b.ymin)).max(0.0);
    let iw = (a.xmax.min(b.xmax) - a.xmin.max(b.xmin)).max(0.0);
    let inter = ih * iw;
    inter / (area_a + area_b - inter)
}

/// Runs the model's postprocess on raw outputs and applies the caller's filters.
///
/// `encodings`: 4 values per anchor (ty, tx, th, tw). `scores`: one row per anchor of
/// `num_classes + 1` columns, column 0 = background (label offset 1); rows of exactly
/// `num_classes` columns (no background), which TFLite also accepts, work too. Class ids in the
/// result are column index minus the offset. The result is sorted by score, descending.
pub fn detect(
    encodings: &[f32],
    scores: &[f32],
    anchors: &[Anchor],
    p: &PostprocessParams,
    opts: &FilterOptions,
) -> Result<Vec<RawDetection>, PostprocessError> {
    p.validate()?;
    opts.validate(p.num_classes)?;
    let n = anchors.len();
    let expected = n.saturating_mul(4);
    if encodings.len() != expected {
        return Err(PostprocessError::EncodingsLength {
            len: encodings.len(),
            anchors: n,
            expected,
        });
    }
    let scores_err = || PostprocessError::ScoresLength {
        len: scores.len(),
        anchors: n,
        num_classes: p.num_classes,
    };
    if n == 0 {
        return if scores.is_empty() {
            Ok(Vec::new())
        } else {
            Err(scores_err())
        };
    }
    // TFLite accepts rows with a background column (label offset 1) or without (offset 0).
    let fits = |cols: usize| n.checked_mul(cols) == Some(scores.len());
    let (cols, offset) = match p.num_classes.checked_add(1) {
        Some(cols) if fits(cols) => (cols, 1),
        _ if fits(p.num_classes) => (p.num_classes, 0),
        _ => return Err(scores_err()),
    };

    let boxes = decode_boxes(encodings, anchors, p);
    // TFLite validates every decoded box before NMS and fails the op on an inverted one.
    if let Some((index, bbox)) = boxes
        .iter()
        .enumerate()
        .find(|(_, b)| b.ymin > b.ymax || b.xmin > b.xmax)
    {
        return Err(PostprocessError::InvertedBox { index, bbox: *bbox });
    }

    let mut mask = vec![opts.allowed_classes.is_none(); p.num_classes];
    for &c in opts.allowed_classes.iter().flatten() {
        if let Some(m) = mask.get_mut(c) {
            *m = true;
        }
    }
    for &c in &opts.denied_classes {
        if let Some(m) = mask.get_mut(c) {
            *m = false;
        }
    }

    // Raising the model's threshold to min_score before NMS gives the same result as TFLite
    // followed by a `score >= min_score` filter: NMS visits boxes in descending score order, so
    // a box below min_score can only suppress boxes scoring no higher (also below min_score),
    // and the boxes at or above min_score form a prefix of TFLite's capped, sorted list.
    let threshold = opts
        .min_score
        .map_or(p.nms_score_threshold, |s| s.max(p.nms_score_threshold));
    let nms = Nms {
        boxes: &boxes,
        iou_threshold: opts.iou_threshold.unwrap_or(p.nms_iou_threshold),
    };
    let rows = Rows {
        scores,
        cols,
        offset,
    };
    let limit = opts.max_results.unwrap_or(p.max_detections);

    if opts.regular_nms.unwrap_or(p.use_regular_nms) {
        Ok(regular_nms(
            &nms,
            &rows,
            &mask,
            threshold,
            limit,
            p.effective_detections_per_class(),
        ))
    } else {
        if p.max_classes_per_detection == 0 {
            return Err(invalid(
                "max_classes_per_detection",
                0,
                "at least 1 (fast NMS emits that many classes per box)",
            ));
        }
        Ok(fast_nms(
            &nms,
            &rows,
            &mask,
            threshold,
            opts.min_score,
            limit,
            p.max_classes_per_detection,
        ))
    }
}

/// Score rows without their background column.
struct Rows<'a> {
    scores: &'a [f32],
    cols: usize,
    offset: usize,
}

impl<'a> Rows<'a> {
    fn iter(&self) -> impl Iterator<Item = &'a [f32]> + '_ {
        self.scores
            .chunks_exact(self.cols)
            .map(|row| row.get(self.offset..).unwrap_or(&[]))
    }

    fn row(&self, anchor: usize) -> &'a [f32] {
        let start = anchor.saturating_mul(self.cols).saturating_add(self.offset);
        let end = anchor.saturating_add(1).saturating_mul(self.cols);
        self.scores.get(start..end).unwrap_or(&[])
    }
}

struct Nms<'a> {
    boxes: &'a [BoxN],
    iou_threshold: f32,
}

impl Nms<'_> {
    /// Greedy NMS over `(anchor, score)` candidates already sorted by descending score.
    /// Only kept boxes suppress (TFLite marks suppressed ones inactive), so checking each
    /// candidate against the kept list is equivalent and cheaper.
    fn select(&self, sorted: &[(usize, f32)], limit: usize) -> Vec<(usize, f32)> {
        let mut kept: Vec<(usize, f32)> = Vec::new();
        for &(anchor, score) in sorted {
            if kept.len() >= limit {
                break;
            }
            let Some(b) = self.boxes.get(anchor) else {
                continue;
            };
            // Strictly greater: IoU equal to the threshold survives, as in TFLite.
            let suppressed = kept.iter().any(|&(k, _)| {
                self.boxes
                    .get(k)
                    .is_some_and(|kb| iou(kb, b) > self.iou_threshold)
            });
            if !suppressed {
                kept.push((anchor, score));
            }
        }
        kept
    }

    fn detection(&self, anchor: usize, class_id: usize, score: f32) -> Option<RawDetection> {
        self.boxes.get(anchor).map(|&bbox| RawDetection {
            class_id,
            score,
            bbox,
        })
    }
}

/// Stable descending order by score. `+ 0.0` folds -0.0 into 0.0 so equal scores tie as they do
/// under TFLite's `>`; total_cmp keeps the order total even if a NaN slipped through.
fn sort_desc<T>(v: &mut [T], score: impl Fn(&T) -> f32) {
    v.sort_by(|a, b| (score(b) + 0.0).total_cmp(&(score(a) + 0.0)));
}

/// The best allowed class of a row: the first on ties (TFLite's ArgMaxVector uses a strict
/// `>`). NaN scores are never chosen.
fn best_class(row: &[f32], mask: &[bool]) -> Option<(usize, f32)> {
    let mut best: Option<(usize, f32)> = None;
    for (c, (&s, &allowed)) in row.iter().zip(mask).enumerate() {
        if allowed && !s.is_nan() && best.is_none_or(|(_, bs)| s > bs) {
            best = Some((c, s));
        }
    }
    best
}

/// Up to `k` best allowed classes of a row, descending, first class first on ties.
fn top_classes(row: &[f32], mask: &[bool], k: usize) -> Vec<(usize, f32)> {
    if k == 1 {
        return best_class(row, mask).into_iter().collect();
    }
    let mut all: Vec<(usize, f32)> = row
        .iter()
        .zip(mask)
        .enumerate()
        .filter(|(_, (s, &allowed))| allowed && !s.is_nan())
        .map(|(c, (&s, _))| (c, s))
        .collect();
    sort_desc(&mut all, |&(_, s)| s);
    all.truncate(k);
    all
}

/// TFLite's fast NMS: each anchor competes with its best allowed class score, NMS is
/// class-agnostic, and each kept anchor is emitted with its top `k` allowed classes.
fn fast_nms(
    nms: &Nms,
    rows: &Rows,
    mask: &[bool],
    threshold: f32,
    min_score: Option<f32>,
    limit: usize,
    k: usize,
) -> Vec<RawDetection> {
    let mut candidates: Vec<(usize, f32)> = rows
        .iter()
        .enumerate()
        .filter_map(|(anchor, row)| {
            best_class(row, mask)
                .filter(|&(_, s)| s >= threshold)
                .map(|(_, s)| (anchor, s))
        })
        .collect();
    sort_desc(&mut candidates, |&(_, s)| s);
    let kept = nms.select(&candidates, limit);

    let mut out = Vec::with_capacity(kept.len().saturating_mul(k.min(mask.len())));
    for (anchor, _) in kept {
        // TFLite emits the extra classes whatever their score (not even its own threshold
        // applies), so only the caller's min_score filters them, as it would filter TFLite's
        // output. The first class already passed the threshold.
        let classes = top_classes(rows.row(anchor), mask, k);
        for (class_id, score) in classes {
            if min_score.is_none_or(|m| score >= m) {
                out.extend(nms.detection(anchor, class_id, score));
            }
        }
    }
    // TFLite lists each anchor's classes together; callers want one global score order.
    sort_desc(&mut out, |d| d.score);
    out
}

/// TFLite's regular NMS: NMS per allowed class (at most `per_class` boxes each), then the best
/// `limit` of all classes. Ties keep class order, then anchor order; TFLite's partial sort does
/// not define an order for ties across classes, so this is the deterministic choice.
fn regular_nms(
    nms: &Nms,
    rows: &Rows,
    mask: &[bool],
    threshold: f32,
    limit: usize,
    per_class: usize,
) -> Vec<RawDetection> {
    let mut out = Vec::new();
    let mut candidates: Vec<(usize, f32)> = Vec::new();
    for (class_id, _) in mask.iter().enumerate().filter(|(_, &allowed)| allowed) {
        candidates.clear();
        candidates.extend(rows.iter().enumerate().filter_map(|(anchor, row)| {
            row.get(class_id)
                .copied()
                .filter(|&s| s >= threshold)
                .map(|s| (anchor, s))
        }));
        sort_desc(&mut candidates, |&(_, s)| s);
        for (anchor, score) in nms.select(&candidates, per_class) {
            out.extend(nms.detection(anchor, class_id, score));
        }
    }
    // Stable sort then cut equals TFLite's running top-`limit` merge after each class.
    sort_desc(&mut out, |d| d.score);
    out.truncate(limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const PERSON: usize = 0;
    const CUP: usize = 2;

    fn params(num_classes: usize) -> PostprocessParams {
        // The SSD MobileNet V2 COCO options, with a small class count.
        PostprocessParams {
            max_detections: 20,
            max_classes_per_detection: 1,
            detections_per_class: 0,
            nms_score_threshold: 1e-8,
            nms_iou_threshold: 0.6,
            num_classes,
            use_regular_nms: false,
            y_scale: 10.0,
            x_scale: 10.0,
            h_scale: 5.0,
            w_scale: 5.0,
        }
    }

    fn bx(ymin: f32, xmin: f32, ymax: f32, xmax: f32) -> BoxN {
        BoxN {
            ymin,
            xmin,
            ymax,
            xmax,
        }
    }

    /// Anchors whose zero encoding decodes to the given boxes (exactly, for dyadic
    /// coordinates), and the score rows as given (background first).
    fn scene(items: &[(BoxN, &[f32])]) -> (Vec<f32>, Vec<f32>, Vec<Anchor>) {
        let anchors = items
            .iter()
            .map(|(b, _)| Anchor {
                yc: (b.ymin + b.ymax) / 2.0,
                xc: (b.xmin + b.xmax) / 2.0,
                h: b.ymax - b.ymin,
                w: b.xmax - b.xmin,
            })
            .collect::<Vec<_>>();
        let scores = items.iter().flat_map(|(_, r)| r.iter().copied()).collect();
        (vec![0.0; 4 * items.len()], scores, anchors)
    }

    fn run(
        items: &[(BoxN, &[f32])],
        p: &PostprocessParams,
        opts: &FilterOptions,
    ) -> Vec<RawDetection> {
        let (enc, scores, anchors) = scene(items);
        detect(&enc, &scores, &anchors, p, opts).expect("valid input")
    }

    fn summary(d: &[RawDetection]) -> Vec<(usize, f32)> {
        d.iter().map(|d| (d.class_id, d.score)).collect()
    }

    fn assert_box_close(a: BoxN, b: BoxN) {
        let pairs = [
            (a.ymin, b.ymin),
            (a.xmin, b.xmin),
            (a.ymax, b.ymax),
            (a.xmax, b.xmax),
        ];
        for (x, y) in pairs {
            assert!((x - y).abs() < 1e-6, "{a:?} != {b:?}");
        }
    }

    // Unit box, a box inside it with IoU 0.75, and a disjoint one.
    const A: BoxN = BoxN {
        ymin: 0.0,
        xmin: 0.0,
        ymax: 1.0,
        xmax: 1.0,
    };
    const A_75: BoxN = BoxN {
        ymin: 0.0,
        xmin: 0.0,
        ymax: 1.0,
        xmax: 0.75,
    };
    const FAR: BoxN = BoxN {
        ymin: 0.0,
        xmin: 2.0,
        ymax: 1.0,
        xmax: 3.0,
    };
    const FAR2: BoxN = BoxN {
        ymin: 2.0,
        xmin: 0.0,
        ymax: 3.0,
        xmax: 1.0,
    };

    // ---- decoding ----

    #[test]
    fn zero_encoding_returns_the_anchor_box() {
        let a = Anchor {
            yc: 0.5,
            xc: 0.5,
            h: 0.2,
            w: 0.4,
        };
        let boxes = decode_boxes(&[0.0; 4], &[a], &params(1));
        assert_eq!(boxes.len(), 1);
        assert_box_close(boxes[0], bx(0.4, 0.3, 0.6, 0.7));
    }

    #[test]
    fn nonzero_encoding_decodes_by_hand_and_is_not_clipped() {
        let a = Anchor {
            yc: 0.5,
            xc: 0.25,
            h: 0.2,
            w: 0.4,
        };
        // yc = 1/10*0.2 + 0.5 = 0.52; xc = -2/10*0.4 + 0.25 = 0.17;
        // h = exp(5 ln2 / 5)*0.2 = 0.4; w = exp(0)*0.4 = 0.4.
        let enc = [1.0, -2.0, 5.0 * std::f32::consts::LN_2, 0.0];
        let boxes = decode_boxes(&enc, &[a], &params(1));
        assert_box_close(boxes[0], bx(0.32, -0.03, 0.72, 0.37));
    }

    #[test]
    fn decode_uses_each_scale() {
        let a = Anchor {
            yc: 0.0,
            xc: 0.0,
            h: 1.0,
            w: 1.0,
        };
        let p = PostprocessParams {
            y_scale: 2.0,
            x_scale: 4.0,
            h_scale: 1.0,
            w_scale: 0.5,
            ..params(1)
        };
        // yc = 1/2*1 = 0.5, xc = 1/4*1 = 0.25, h = exp(ln2 / 1) = 2, w = exp(-ln2/2 / 0.5) = 0.5.
        let ln2 = std::f32::consts::LN_2;
        let enc = [1.0, 1.0, ln2, -0.5 * ln2];
        let b = decode_boxes(&enc, &[a], &p)[0];
        assert_box_close(b, bx(-0.5, 0.0, 1.5, 0.5));
    }

    // ---- IoU ----

    #[test]
    fn iou_identical_is_one() {
        assert_eq!(iou(&A, &A), 1.0);
    }

    #[test]
    fn iou_disjoint_and_touching_are_zero() {
        assert_eq!(iou(&A, &FAR), 0.0);
        let right = bx(0.0, 1.0, 1.0, 2.0);
        assert_eq!(iou(&A, &right), 0.0);
        let below = bx(1.0, 0.0, 2.0, 1.0);
        assert_eq!(iou(&A, &below), 0.0);
    }

    #[test]
    fn iou_contained_box_is_area_ratio() {
        let inner = bx(0.25, 0.25, 0.75, 0.75);
        assert_eq!(iou(&A, &inner), 0.25);
        assert_eq!(iou(&inner, &A), 0.25);
    }

    #[test]
    fn iou_zero_area_or_inverted_is_zero() {
        assert_eq!(iou(&bx(0.2, 0.2, 0.2, 0.6), &A), 0.0);
        assert_eq!(iou(&A, &bx(0.2, 0.2, 0.6, 0.2)), 0.0);
        // Inverted in one axis: negative area.
        assert_eq!(iou(&bx(0.6, 0.2, 0.2, 0.8), &A), 0.0);
        // Inverted in both axes: positive area, but the intersection clamps to 0.
        assert_eq!(iou(&bx(0.6, 0.6, 0.2, 0.2), &A), 0.0);
    }

    #[test]
    fn iou_partial_overlap_by_hand() {
        // Areas 0.25 each, intersection 0.0625, union 0.4375: IoU 1/7.
        let a = bx(0.0, 0.0, 0.5, 0.5);
        let b = bx(0.25, 0.25, 0.75, 0.75);
        assert!((iou(&a, &b) - 1.0 / 7.0).abs() < 1e-7);
    }

    #[test]
    fn iou_nan_box_does_not_panic_or_exceed_one() {
        let nan = bx(f32::NAN, 0.0, 1.0, 1.0);
        assert_eq!(iou(&nan, &A), 0.0);
    }

    // ---- fast NMS ----

    #[test]
    fn fast_nms_suppresses_above_threshold() {
        let d = run(
            &[
                (A, &[0.0, 0.9, 0.0]),
                (A_75, &[0.0, 0.0, 0.8]),
                (FAR, &[0.0, 0.0, 0.7]),
            ],
            &params(2),
            &FilterOptions::default(),
        );
        assert_eq!(summary(&d), vec![(0, 0.9), (1, 0.7)]);
        assert_eq!(d[0].bbox, A);
        assert_eq!(d[1].bbox, FAR);
    }

    #[test]
    fn iou_equal_to_threshold_is_kept() {
        // A_HALF inside A: IoU exactly 0.5.
        let a_half = bx(0.0, 0.0, 1.0, 0.5);
        assert_eq!(iou(&A, &a_half), 0.5);
        let items: &[(BoxN, &[f32])] = &[(A, &[0.0, 0.9]), (a_half, &[0.0, 0.8])];
        let at = FilterOptions {
            iou_threshold: Some(0.5),
            ..Default::default()
        };
        assert_eq!(run(items, &params(1), &at).len(), 2);
        let below = FilterOptions {
            iou_threshold: Some(0.4999),
            ..Default::default()
        };
        assert_eq!(run(items, &params(1), &below).len(), 1);
    }

    #[test]
    fn equal_scores_keep_anchor_order() {
        // Overlapping boxes with the same score: the lower anchor index wins, whichever box.
        let first_a = run(
            &[(A, &[0.0, 0.7]), (A_75, &[0.0, 0.7])],
            &params(1),
            &FilterOptions::default(),
        );
        assert_eq!(first_a.len(), 1);
        assert_eq!(first_a[0].bbox, A);
        let first_a75 = run(
            &[(A_75, &[0.0, 0.7]), (A, &[0.0, 0.7])],
            &params(1),
            &FilterOptions::default(),
        );
        assert_eq!(first_a75.len(), 1);
        assert_eq!(first_a75[0].bbox, A_75);
        // Disjoint boxes with equal scores come out in anchor order.
        let d = run(
            &[(FAR, &[0.0, 0.5]), (A, &[0.0, 0.5]), (FAR2, &[0.0, 0.5])],
            &params(1),
            &FilterOptions::default(),
        );
        let boxes: Vec<BoxN> = d.iter().map(|d| d.bbox).collect();
        assert_eq!(boxes, vec![FAR, A, FAR2]);
    }

    #[test]
    fn equal_class_scores_pick_the_first_class() {
        let d = run(
            &[(A, &[0.1, 0.2, 0.6, 0.6])],
            &params(3),
            &FilterOptions::default(),
        );
        assert_eq!(summary(&d), vec![(1, 0.6)]);
    }

    #[test]
    fn max_results_and_max_detections_cut() {
        let items: &[(BoxN, &[f32])] = &[(FAR, &[0.0, 0.7]), (A, &[0.0, 0.9]), (FAR2, &[0.0, 0.8])];
        let two = FilterOptions {
            max_results: Some(2),
            ..Default::default()
        };
        assert_eq!(
            summary(&run(items, &params(1), &two)),
            vec![(0, 0.9), (0, 0.8)]
        );
        let p = PostprocessParams {
            max_detections: 1,
            ..params(1)
        };
        assert_eq!(
            summary(&run(items, &p, &FilterOptions::default())),
            vec![(0, 0.9)]
        );
        let zero = FilterOptions {
            max_results: Some(0),
            ..Default::default()
        };
        assert!(run(items, &params(1), &zero).is_empty());
    }

    #[test]
    fn min_score_cut_keeps_equal_scores() {
        let items: &[(BoxN, &[f32])] = &[(A, &[0.0, 0.9]), (FAR, &[0.0, 0.4]), (FAR2, &[0.0, 0.6])];
        let half = FilterOptions {
            min_score: Some(0.5),
            ..Default::default()
        };
        assert_eq!(
            summary(&run(items, &params(1), &half)),
            vec![(0, 0.9), (0, 0.6)]
        );
        let at = FilterOptions {
            min_score: Some(0.6),
            ..Default::default()
        };
        assert_eq!(
            summary(&run(items, &params(1), &at)),
            vec![(0, 0.9), (0, 0.6)]
        );
        // Without min_score, the model threshold (1e-8) lets 0.4 through; exactly 0 does not.
        let d = run(
            &[(A, &[0.0, 0.4]), (FAR, &[0.0, 0.0])],
            &params(1),
            &FilterOptions::default(),
        );
        assert_eq!(summary(&d), vec![(0, 0.4)]);
    }

    #[test]
    fn background_column_is_ignored() {
        let d = run(
            &[(A, &[0.99, 0.2, 0.1]), (FAR, &[0.99, 0.0, 0.0])],
            &params(2),
            &FilterOptions::default(),
        );
        assert_eq!(summary(&d), vec![(0, 0.2)]);
        assert_eq!(d[0].bbox, A);
    }

    #[test]
    fn scores_without_background_column_are_accepted() {
        let d = run(
            &[(A, &[0.1, 0.8]), (FAR, &[0.3, 0.2])],
            &params(2),
            &FilterOptions::default(),
        );
        assert_eq!(summary(&d), vec![(1, 0.8), (0, 0.3)]);
    }

    /// A person box and an overlapping cup box (IoU 0.75), 3 classes.
    fn person_and_cup() -> Vec<(BoxN, &'static [f32])> {
        vec![(A, &[0.0, 0.9, 0.0, 0.05]), (A_75, &[0.0, 0.2, 0.0, 0.7])]
    }

    #[test]
    fn only_cups_finds_the_cup_under_the_person() {
        let items = person_and_cup();
        // Plain fast NMS: the person suppresses the cup box.
        let plain = run(&items, &params(3), &FilterOptions::default());
        assert_eq!(summary(&plain), vec![(PERSON, 0.9)]);
        let cups = FilterOptions {
            allowed_classes: Some(vec![CUP]),
            ..Default::default()
        };
        let d = run(&items, &params(3), &cups);
        // The cup at 0.7 wins; the person anchor's 0.05 cup score is suppressed by it.
        assert_eq!(summary(&d), vec![(CUP, 0.7)]);
        assert_eq!(d[0].bbox, A_75);
    }

    #[test]
    fn deny_list_masks_before_picking_the_best_class() {
        let items = person_and_cup();
        let no_person = FilterOptions {
            denied_classes: vec![PERSON],
            min_score: Some(0.5),
            ..Default::default()
        };
        let d = run(&items, &params(3), &no_person);
        assert_eq!(summary(&d), vec![(CUP, 0.7)]);
        // Deny wins over allow.
        let both = FilterOptions {
            allowed_classes: Some(vec![PERSON, CUP]),
            denied_classes: vec![PERSON],
            ..Default::default()
        };
        assert_eq!(summary(&run(&items, &params(3), &both)), vec![(CUP, 0.7)]);
        // Same anchor: a masked top class gives way to the next allowed one.
        let same = run(
            &[(A, &[0.0, 0.9, 0.0, 0.6])],
            &params(3),
            &FilterOptions {
                allowed_classes: Some(vec![CUP]),
                ..Default::default()
            },
        );
        assert_eq!(summary(&same), vec![(CUP, 0.6)]);
        // An empty allow-list keeps nothing.
        let none = FilterOptions {
            allowed_classes: Some(vec![]),
            ..Default::default()
        };
        assert!(run(&items, &params(3), &none).is_empty());
    }

    #[test]
    fn several_classes_per_detection() {
        let p = PostprocessParams {
            max_classes_per_detection: 2,
            ..params(3)
        };
        let items: &[(BoxN, &[f32])] = &[(A, &[0.0, 0.9, 0.2, 0.0]), (FAR, &[0.0, 0.4, 0.5, 0.1])];
        let d = run(items, &p, &FilterOptions::default());
        // Each kept anchor carries its two best classes; output sorted globally.
        assert_eq!(summary(&d), vec![(0, 0.9), (1, 0.5), (0, 0.4), (1, 0.2)]);
        assert_eq!([d[0].bbox, d[3].bbox], [A, A]);
        assert_eq!([d[1].bbox, d[2].bbox], [FAR, FAR]);
        // The cap counts anchors, as TFLite's max_detections does.
        let one = FilterOptions {
            max_results: Some(1),
            ..Default::default()
        };
        assert_eq!(summary(&run(items, &p, &one)), vec![(0, 0.9), (1, 0.2)]);
        // min_score filters the extra classes too.
        let half = FilterOptions {
            min_score: Some(0.45),
            ..Default::default()
        };
        assert_eq!(summary(&run(items, &p, &half)), vec![(0, 0.9), (1, 0.5)]);
        // Ties among the extra classes keep class order.
        let tie = run(&[(A, &[0.0, 0.3, 0.3, 0.3])], &p, &FilterOptions::default());
        assert_eq!(summary(&tie), vec![(0, 0.3), (1, 0.3)]);
    }

    // ---- regular NMS ----

    #[test]
    fn regular_nms_keeps_overlapping_boxes_of_different_classes() {
        let items: &[(BoxN, &[f32])] =
            &[(A, &[0.0, 0.9, 0.0, 0.1]), (A_75, &[0.0, 0.85, 0.0, 0.8])];
        let fast = run(items, &params(3), &FilterOptions::default());
        assert_eq!(summary(&fast), vec![(PERSON, 0.9)]);
        let regular = FilterOptions {
            regular_nms: Some(true),
            ..Default::default()
        };
        let d = run(items, &params(3), &regular);
        // Per class: person keeps A (A_75 at 0.85 suppressed); cup keeps A_75 (A at 0.1
        // suppressed).
        assert_eq!(summary(&d), vec![(PERSON, 0.9), (CUP, 0.8)]);
        assert_eq!([d[0].bbox, d[1].bbox], [A, A_75]);
        // The model flag selects it too.
        let p = PostprocessParams {
            use_regular_nms: true,
            ..params(3)
        };
        assert_eq!(run(items, &p, &FilterOptions::default()), d);
    }

    #[test]
    fn regular_nms_caps_per_class_and_overall() {
        let items: &[(BoxN, &[f32])] = &[
            (A, &[0.0, 0.9, 0.5]),
            (FAR, &[0.0, 0.8, 0.0]),
            (FAR2, &[0.0, 0.7, 0.0]),
        ];
        let regular = FilterOptions {
            regular_nms: Some(true),
            ..Default::default()
        };
        // detections_per_class 0 -> default 100: everything stays.
        let d = run(items, &params(2), &regular);
        assert_eq!(summary(&d), vec![(0, 0.9), (0, 0.8), (0, 0.7), (1, 0.5)]);
        let p = PostprocessParams {
            detections_per_class: 2,
            ..params(2)
        };
        assert_eq!(
            summary(&run(items, &p, &regular)),
            vec![(0, 0.9), (0, 0.8), (1, 0.5)]
        );
        let p = PostprocessParams {
            max_detections: 2,
            ..params(2)
        };
        assert_eq!(summary(&run(items, &p, &regular)), vec![(0, 0.9), (0, 0.8)]);
    }

    #[test]
    fn regular_nms_ties_keep_class_then_anchor_order() {
        let items: &[(BoxN, &[f32])] = &[(A, &[0.0, 0.0, 0.5]), (FAR, &[0.0, 0.5, 0.0])];
        let opts = FilterOptions {
            regular_nms: Some(true),
            max_results: Some(1),
            ..Default::default()
        };
        let d = run(items, &params(2), &opts);
        assert_eq!(summary(&d), vec![(0, 0.5)]);
        assert_eq!(d[0].bbox, FAR);
    }

    #[test]
    fn regular_nms_applies_class_masks() {
        let items: &[(BoxN, &[f32])] =
            &[(A, &[0.0, 0.9, 0.0, 0.1]), (A_75, &[0.0, 0.85, 0.0, 0.8])];
        let opts = FilterOptions {
            regular_nms: Some(true),
            allowed_classes: Some(vec![CUP]),
            ..Default::default()
        };
        let d = run(items, &params(3), &opts);
        assert_eq!(summary(&d), vec![(CUP, 0.8)]);
    }

    /// Small deterministic generator for the property test below.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> f32 {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (self.0 >> 40) as f32 / (1u64 << 24) as f32
        }
    }

    #[test]
    fn raising_the_threshold_equals_filtering_afterwards() {
        let mut rng = Lcg(7);
        let n = 400;
        let num_classes = 4;
        let anchors: Vec<Anchor> = (0..n)
            .map(|_| Anchor {
                yc: rng.next(),
                xc: rng.next(),
                h: 0.05 + 0.4 * rng.next(),
                w: 0.05 + 0.4 * rng.next(),
            })
            .collect();
        let enc: Vec<f32> = (0..4 * n).map(|_| rng.next() - 0.5).collect();
        let scores: Vec<f32> = (0..n * (num_classes + 1)).map(|_| rng.next()).collect();
        for (regular, k) in [(false, 1), (false, 2), (true, 1)] {
            let p = PostprocessParams {
                use_regular_nms: regular,
                max_classes_per_detection: k,
                detections_per_class: 5,
                ..params(num_classes)
            };
            let all = detect(&enc, &scores, &anchors, &p, &FilterOptions::default()).unwrap();
            assert!(!all.is_empty());
            assert!(all.windows(2).all(|w| w[0].score >= w[1].score));
            for min in [0.3, 0.9, 0.97] {
                let opts = FilterOptions {
                    min_score: Some(min),
                    ..Default::default()
                };
                let pre = detect(&enc, &scores, &anchors, &p, &opts).unwrap();
                let post: Vec<RawDetection> =
                    all.iter().copied().filter(|d| d.score >= min).collect();
                assert_eq!(pre, post, "regular={regular} k={k} min={min}");
            }
        }
    }

    #[test]
    fn model_sized_input_runs() {
        let mut rng = Lcg(11);
        let n = 1917;
        let anchors: Vec<Anchor> = (0..n)
            .map(|_| Anchor {
                yc: rng.next(),
                xc: rng.next(),
                h: 0.1 + 0.5 * rng.next(),
                w: 0.1 + 0.5 * rng.next(),
            })
            .collect();
        let enc: Vec<f32> = (0..4 * n).map(|_| 2.0 * rng.next() - 1.0).collect();
        let scores: Vec<f32> = (0..n * 91).map(|_| rng.next()).collect();
        let d = detect(
            &enc,
            &scores,
            &anchors,
            &params(90),
            &FilterOptions::default(),
        )
        .unwrap();
        assert_eq!(d.len(), 20);
        assert!(d.iter().all(|d| d.class_id < 90));
        for (i, a) in d.iter().enumerate() {
            for b in &d[i + 1..] {
                assert!(iou(&a.bbox, &b.bbox) <= 0.6);
            }
        }
    }

    // ---- errors and hostile input ----

    fn err(
        enc: &[f32],
        scores: &[f32],
        anchors: &[Anchor],
        p: &PostprocessParams,
        opts: &FilterOptions,
    ) -> String {
        detect(enc, scores, anchors, p, opts)
            .expect_err("input must be rejected")
            .to_string()
    }

    #[test]
    fn length_mismatches_are_errors() {
        let (enc, scores, anchors) = scene(&[(A, &[0.0, 0.9]), (FAR, &[0.0, 0.8])]);
        let opts = FilterOptions::default();
        let msg = err(&enc[..7], &scores, &anchors, &params(1), &opts);
        assert!(
            msg.contains("7 values for 2 anchors") && msg.contains("8"),
            "{msg}"
        );
        let msg = err(&enc, &scores[..3], &anchors, &params(1), &opts);
        assert!(msg.contains("num_classes + 1"), "{msg}");
        // Divisible, but the wrong number of columns for the class count.
        let msg = err(&enc, &scores, &anchors, &params(3), &opts);
        assert!(msg.contains("3 classes"), "{msg}");
        let msg = err(&[], &[0.5], &[], &params(1), &opts);
        assert!(msg.contains("0 anchors"), "{msg}");
        // A class count that would overflow the column arithmetic.
        let huge = params(usize::MAX);
        assert!(detect(&enc, &scores, &anchors, &huge, &opts).is_err());
        // No anchors at all is fine.
        assert_eq!(detect(&[], &[], &[], &params(1), &opts), Ok(vec![]));
    }

    #[test]
    fn invalid_thresholds_are_errors() {
        let (enc, scores, anchors) = scene(&[(A, &[0.0, 0.9])]);
        for (opts, name) in [
            (
                FilterOptions {
                    min_score: Some(f32::NAN),
                    ..Default::default()
                },
                "min_score",
            ),
            (
                FilterOptions {
                    min_score: Some(-0.1),
                    ..Default::default()
                },
                "min_score",
            ),
            (
                FilterOptions {
                    min_score: Some(1.5),
                    ..Default::default()
                },
                "min_score",
            ),
            (
                FilterOptions {
                    iou_threshold: Some(1.01),
                    ..Default::default()
                },
                "iou_threshold",
            ),
            (
                FilterOptions {
                    iou_threshold: Some(f32::NAN),
                    ..Default::default()
                },
                "iou_threshold",
            ),
        ] {
            let msg = err(&enc, &scores, &anchors, &params(1), &opts);
            assert!(msg.starts_with(name) && msg.contains("[0, 1]"), "{msg}");
        }
        let opts = FilterOptions::default();
        let bad_params = [
            PostprocessParams {
                nms_score_threshold: f32::NAN,
                ..params(1)
            },
            PostprocessParams {
                nms_iou_threshold: -0.5,
                ..params(1)
            },
            PostprocessParams {
                h_scale: 0.0,
                ..params(1)
            },
            PostprocessParams {
                num_classes: 0,
                ..params(1)
            },
            PostprocessParams {
                max_classes_per_detection: 0,
                ..params(1)
            },
        ];
        for p in bad_params {
            let msg = err(&enc, &scores, &anchors, &p, &opts);
            assert!(msg.contains("allowed"), "{msg}");
        }
    }

    #[test]
    fn class_ids_out_of_range_are_errors() {
        let (enc, scores, anchors) = scene(&[(A, &[0.0, 0.9, 0.1, 0.1])]);
        let allow = FilterOptions {
            allowed_classes: Some(vec![CUP, 3]),
            ..Default::default()
        };
        let msg = err(&enc, &scores, &anchors, &params(3), &allow);
        assert!(msg.contains("class id 3 in allowed_classes"), "{msg}");
        let deny = FilterOptions {
            denied_classes: vec![99],
            ..Default::default()
        };
        let msg = err(&enc, &scores, &anchors, &params(3), &deny);
        assert!(msg.contains("class id 99 in denied_classes"), "{msg}");
    }

    #[test]
    fn negative_anchor_size_is_an_error() {
        let anchors = [Anchor {
            yc: 0.5,
            xc: 0.5,
            h: -0.2,
            w: 0.2,
        }];
        let msg = err(
            &[0.0; 4],
            &[0.0, 0.9],
            &anchors,
            &params(1),
            &FilterOptions::default(),
        );
        assert!(msg.contains("decoded box 0 is inverted"), "{msg}");
    }

    #[test]
    fn nan_scores_never_pass_and_never_panic() {
        let nan = f32::NAN;
        let items: &[(BoxN, &[f32])] = &[
            (A, &[nan, nan, 0.7]),
            (FAR, &[nan, nan, nan]),
            (FAR2, &[0.0, 0.4, nan]),
        ];
        for regular in [false, true] {
            for k in [1, 2] {
                let p = PostprocessParams {
                    max_classes_per_detection: k,
                    ..params(2)
                };
                let opts = FilterOptions {
                    regular_nms: Some(regular),
                    ..Default::default()
                };
                let d = run(items, &p, &opts);
                assert_eq!(
                    summary(&d),
                    vec![(1, 0.7), (0, 0.4)],
                    "regular={regular} k={k}"
                );
            }
        }
    }

    #[test]
    fn nan_and_infinite_encodings_do_not_panic() {
        let anchors = [
            Anchor {
                yc: 0.5,
                xc: 0.5,
                h: 0.5,
                w: 0.5,
            },
            Anchor {
                yc: 0.5,
                xc: 0.5,
                h: 0.5,
                w: 0.5,
            },
            Anchor {
                yc: 0.5,
                xc: 0.5,
                h: 0.0,
                w: 0.5,
            },
        ];
        let enc = [
            f32::NAN,
            0.0,
            0.0,
            0.0,
            0.0,
            0.0,
            1e30,
            f32::INFINITY,
            0.0,
            0.0,
            f32::INFINITY,
            0.0,
        ];
        let scores = [0.0, 0.9, 0.0, 0.8, 0.0, 0.7];
        for regular in [false, true] {
            let opts = FilterOptions {
                regular_nms: Some(regular),
                ..Default::default()
            };
            let d = detect(&enc, &scores, &anchors, &params(1), &opts);
            assert_eq!(d.map(|d| d.len()), Ok(3));
        }
    }
}
