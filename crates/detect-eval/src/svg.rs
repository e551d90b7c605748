//! Hand-written SVG charts for the report: axes with ticks (linear or log), lines, bars,
//! markers, wrapped category labels and a legend. No dependencies; the output is plain text
//! that diffs well.
//!
//! The plot area has a fixed size; the margins around it are computed when the chart is
//! finished, from estimates of the texts' extents (font size × per-character widths of a wide
//! sans-serif such as DejaVu Sans), so tick labels, category labels and the legend fit inside
//! the view box. Every text's estimated box is returned with the SVG ([`Svg::check_layout`]).

use std::fmt::Write;

pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

/// Size of the plot area (inside the axes), pixels.
const PLOT_W: f64 = 480.0;
const PLOT_H: f64 = 325.0;
/// Space kept free around everything, pixels.
const PAD: f64 = 8.0;
const TITLE_SIZE: f64 = 15.0;
const AXIS_LABEL_SIZE: f64 = 12.0;
const TICK_SIZE: f64 = 11.0;
const CATEGORY_SIZE: f64 = 10.0;
const LEGEND_SIZE: f64 = 11.0;
const LEGEND_ROW: f64 = 18.0;
/// Legend swatch length and the gap before its text.
const SWATCH: f64 = 18.0;
const SWATCH_GAP: f64 = 6.0;

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Estimated advance of `text` at `size` px: per-character widths in em, rounded up from
/// DejaVu Sans (wider than Arial or Helvetica, so other renderers only get more room).
pub fn text_width(text: &str, size: f64) -> f64 {
    let em: f64 = text
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | 'I' | '.' | ',' | ':' | ';' | '\'' | '|' | '!' => 0.3,
            ' ' => 0.33,
            'f' | 'r' | 't' | '(' | ')' | '[' | ']' | '/' | '-' => 0.43,
            'm' | 'w' | 'M' | 'W' | '%' | '…' => 1.0,
            '+' | '=' | '<' | '>' | '×' => 0.84,
            c if c.is_ascii_uppercase() => 0.76,
            _ => 0.65,
        })
        .sum();
    em * size
}

/// An axis-aligned box, pixels, `x0 <= x1`, `y0 <= y1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TextBox {
    pub x0: f64,
    pub y0: f64,
    pub x1: f64,
    pub y1: f64,
}

impl TextBox {
    /// The box of `text` at `size` whose baseline starts (anchor "start"), is centred
    /// ("middle") or ends ("end") at (x, y).
    fn of(text: &str, size: f64, x: f64, y: f64, anchor: Anchor) -> Self {
        let w = text_width(text, size);
        let x0 = match anchor {
            Anchor::Start => x,
            Anchor::Middle => x - w / 2.0,
            Anchor::End => x - w,
        };
        // Ascent and descent of the font, a little generous.
        TextBox {
            x0,
            y0: y - 0.95 * size,
            x1: x0 + w,
            y1: y + 0.25 * size,
        }
    }

    pub fn overlaps(&self, o: &TextBox) -> bool {
        self.x0 < o.x1 && o.x0 < self.x1 && self.y0 < o.y1 && o.y0 < self.y1
    }

    pub fn inside(&self, width: f64, height: f64) -> bool {
        self.x0 >= 0.0 && self.y0 >= 0.0 && self.x1 <= width && self.y1 <= height
    }

    fn shifted(self, dx: f64, dy: f64) -> Self {
        TextBox {
            x0: self.x0 + dx,
            y0: self.y0 + dy,
            x1: self.x1 + dx,
            y1: self.y1 + dy,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Anchor {
    Start,
    Middle,
    End,
}

impl Anchor {
    fn svg(self) -> &'static str {
        match self {
            Anchor::Start => "start",
            Anchor::Middle => "middle",
            Anchor::End => "end",
        }
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Axis {
    pub min: f64,
    pub max: f64,
    pub log: bool,
}

impl Axis {
    pub fn linear(min: f64, max: f64) -> Self {
        Axis {
            min,
            max: if max > min { max } else { min + 1.0 },
            log: false,
        }
    }

    pub fn log(min: f64, max: f64) -> Self {
        let min = min.max(1e-9);
        Axis {
            min,
            max: if max > min { max } else { min * 10.0 },
            log: true,
        }
    }

    /// Position in 0..1.
    fn frac(&self, v: f64) -> f64 {
        if self.log {
            (v.max(1e-12).ln() - self.min.ln()) / (self.max.ln() - self.min.ln())
        } else {
            (v - self.min) / (self.max - self.min)
        }
    }

    /// Round tick values covering the axis.
    pub fn ticks(&self) -> Vec<f64> {
        if self.log {
            let mut t = Vec::new();
            let mut d = 10f64.powf(self.min.log10().floor());
            while d <= self.max * 1.0001 {
                for m in [1.0, 2.0, 5.0] {
                    let v = d * m;
                    if v >= self.min * 0.9999 && v <= self.max * 1.0001 {
                        t.push(v);
                    }
                }
                d *= 10.0;
            }
            t
        } else {
            let span = self.max - self.min;
            let raw = span / 6.0;
            let mag = 10f64.powf(raw.log10().floor());
            let step = [1.0, 2.0, 2.5, 5.0, 10.0]
                .iter()
                .map(|m| m * mag)
                .find(|s| *s >= raw)
                .unwrap_or(10.0 * mag);
            let mut v = (self.min / step).ceil() * step;
            let mut t = Vec::new();
            while v <= self.max + step * 1e-6 {
                t.push(v);
                v += step;
            }
            t
        }
    }
}

pub fn fmt_tick(v: f64) -> String {
    if v == 0.0 {
        "0".into()
    } else if v.abs() >= 1000.0 || (v.fract() == 0.0 && v.abs() >= 1.0) {
        format!("{v:.0}")
    } else if v.abs() >= 1.0 {
        format!("{v:.1}")
    } else {
        let s = format!("{v:.6}");
        s.trim_end_matches('0').to_string()
    }
}

/// A finished chart: the SVG text and the estimated box of every text in it.
#[derive(Clone, Debug)]
pub struct Svg {
    pub text: String,
    pub width: f64,
    pub height: f64,
    pub text_boxes: Vec<(String, TextBox)>,
}

impl Svg {
    /// Every text inside the view box and no two texts overlapping (by the estimates).
    pub fn check_layout(&self) -> Result<(), String> {
        for (i, (a, ba)) in self.text_boxes.iter().enumerate() {
            if !ba.inside(self.width, self.height) {
                return Err(format!(
                    "{a:?} at {ba:?} leaves the {}x{} view box",
                    self.width, self.height
                ));
            }
            for (b, bb) in &self.text_boxes[i + 1..] {
                if ba.overlaps(bb) {
                    return Err(format!("{a:?} at {ba:?} overlaps {b:?} at {bb:?}"));
                }
            }
        }
        Ok(())
    }
}

/// A text placed inside the plot area (plot coordinates).
struct PlotText {
    text: String,
    x: f64,
    y: f64,
    anchor: Anchor,
}

impl PlotText {
    fn bbox(&self) -> TextBox {
        TextBox::of(&self.text, TICK_SIZE, self.x, self.y, self.anchor)
    }
}

/// A chart under construction. Drawing calls take data units (or plot pixels where said) in
/// the plot area's own coordinates, origin at its top left; [`Chart::finish`] adds the
/// margins.
pub struct Chart {
    title: String,
    x_label: String,
    y_label: String,
    pub x: Axis,
    pub y: Axis,
    body: String,
    texts: Vec<PlotText>,
    /// Category labels under the x axis: (centre, width available, text).
    categories: Vec<(f64, f64, String)>,
    legend: Vec<(String, String, bool)>,
}

impl Chart {
    pub fn new(title: &str, x: Axis, y: Axis, x_label: &str, y_label: &str) -> Self {
        Chart {
            title: title.into(),
            x_label: x_label.into(),
            y_label: y_label.into(),
            x,
            y,
            body: String::new(),
            texts: Vec::new(),
            categories: Vec::new(),
            legend: Vec::new(),
        }
    }

    pub fn px(&self, v: f64) -> f64 {
        self.x.frac(v) * PLOT_W
    }

    pub fn py(&self, v: f64) -> f64 {
        PLOT_H - self.y.frac(v) * PLOT_H
    }

    pub fn plot_width(&self) -> f64 {
        PLOT_W
    }

    /// A polyline through the points (in data units); `dashed` for model curves.
    pub fn line(&mut self, points: &[(f64, f64)], color: &str, dashed: bool, label: Option<&str>) {
        let pts: Vec<String> = points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let _ = write!(
            self.body,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        if let Some(l) = label {
            self.legend.push((l.to_string(), color.to_string(), dashed));
        }
    }

    /// A circle at (x, y) in data units, its text beside it: above right if that fits in the
    /// plot area without touching an earlier text, else above left, below right, below left.
    pub fn marker(&mut self, x: f64, y: f64, color: &str, text: Option<&str>) {
        let (cx, cy) = (self.px(x), self.py(y));
        let _ = write!(
            self.body,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{color}" stroke="#000"/>"##
        );
        let Some(t) = text else { return };
        let candidates = [
            (cx + 7.0, cy - 7.0, Anchor::Start),
            (cx - 7.0, cy - 7.0, Anchor::End),
            (cx + 7.0, cy + 16.0, Anchor::Start),
            (cx - 7.0, cy + 16.0, Anchor::End),
        ];
        let placed = candidates.iter().map(|&(x, y, anchor)| PlotText {
            text: t.to_string(),
            x,
            y,
            anchor,
        });
        let fits = |p: &PlotText| {
            let b = p.bbox();
            b.inside(PLOT_W, PLOT_H) && !self.texts.iter().any(|o| o.bbox().overlaps(&b))
        };
        let chosen = placed
            .clone()
            .find(|p| fits(p))
            .or_else(|| placed.clone().find(|p| p.bbox().inside(PLOT_W, PLOT_H)))
            .or_else(|| placed.clone().next());
        self.texts.extend(chosen);
    }

    /// A bar from the x axis (or the y axis minimum) to `y`, `x` and `w` in plot pixels.
    pub fn bar(&mut self, x_px: f64, w_px: f64, y: f64, color: &str) {
        let (top, base) = (self.py(y), self.py(self.y.min));
        let _ = write!(
            self.body,
            r#"<rect x="{x_px:.1}" y="{top:.1}" width="{w_px:.1}" height="{:.1}" fill="{color}"/>"#,
            (base - top).max(0.0)
        );
    }

    /// A category label under the x axis, centred at plot pixel `x_px`, wrapped at spaces into
    /// lines no wider than `width_px`.
    pub fn category(&mut self, x_px: f64, width_px: f64, text: &str) {
        self.categories.push((x_px, width_px, text.to_string()));
    }

    pub fn legend_entry(&mut self, label: &str, color: &str) {
        self.legend
            .push((label.to_string(), color.to_string(), false));
    }

    /// The SVG, with margins fitted to the texts; `x_ticks` false for category charts.
    pub fn finish(self, x_ticks: bool) -> Svg {
        let mut out = Layout::new(&self, x_ticks);
        out.title(&self.title);
        out.y_axis(&self);
        out.x_axis(&self, x_ticks);
        out.plot(&self);
        out.legend(&self.legend);
        out.into_svg()
    }
}

/// Greedy word wrap of `text` into lines no wider than `width` at `size` (a single word
/// wider than that gets a line of its own).
pub fn wrap(text: &str, size: f64, width: f64) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        match lines.last_mut() {
            Some(line) if text_width(&format!("{line} {word}"), size) <= width => {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// The y tick labels (value, text) and the x tick labels that fit side by side.
fn tick_labels(axis: &Axis, to_px: impl Fn(f64) -> f64, horizontal: bool) -> Vec<(f64, String)> {
    let mut kept: Vec<(f64, String)> = Vec::new();
    for t in axis.ticks() {
        let text = fmt_tick(t);
        let p = to_px(t);
        let clear = kept.last().is_none_or(|(q, prev)| {
            // Distance needed between centres: half of each label plus a gap.
            let need = if horizontal {
                (text_width(prev, TICK_SIZE) + text_width(&text, TICK_SIZE)) / 2.0 + 4.0
            } else {
                TICK_SIZE * 1.3
            };
            (p - q).abs() >= need
        });
        if clear {
            kept.push((p, text));
        }
    }
    kept
}

/// The finished chart being written: margins, the SVG text outside the plot, and the boxes.
struct Layout {
    left: f64,
    top: f64,
    width: f64,
    height: f64,
    y_ticks: Vec<(f64, String)>,
    x_ticks: Vec<(f64, String)>,
    /// Wrapped category labels: (centre, lines).
    categories: Vec<(f64, Vec<String>)>,
    svg: String,
    boxes: Vec<(String, TextBox)>,
}

impl Layout {
    fn new(c: &Chart, x_ticks: bool) -> Self {
        let y_ticks = tick_labels(&c.y, |v| c.py(v), false);
        let x_ticks = if x_ticks {
            tick_labels(&c.x, |v| c.px(v), true)
        } else {
            Vec::new()
        };
        let categories: Vec<(f64, Vec<String>)> = c
            .categories
            .iter()
            .map(|(x, w, t)| (*x, wrap(t, CATEGORY_SIZE, *w)))
            .collect();
        let tick_w = y_ticks
            .iter()
            .map(|(_, t)| text_width(t, TICK_SIZE))
            .fold(0.0, f64::max);
        // Rotated y label, a gap, the tick labels, 5 px to the axis.
        let left = PAD + AXIS_LABEL_SIZE * 1.2 + 8.0 + tick_w + 5.0;
        let top = PAD + TITLE_SIZE * 1.2 + 14.0;
        // Under the axis: tick labels or category lines, a gap, the axis label.
        let tick_rows: f64 = if x_ticks.is_empty() { 0.0 } else { 20.0 };
        let category_rows = categories
            .iter()
            .map(|(_, l)| 6.0 + CATEGORY_SIZE * 1.25 * l.len() as f64)
            .fold(0.0, f64::max);
        let bottom = tick_rows.max(category_rows) + 10.0 + AXIS_LABEL_SIZE * 1.25 + PAD;
        let legend_w = c
            .legend
            .iter()
            .map(|(l, _, _)| SWATCH + SWATCH_GAP + text_width(l, LEGEND_SIZE))
            .fold(0.0, f64::max);
        let right = if c.legend.is_empty() {
            PAD + 10.0
        } else {
            16.0 + legend_w + PAD
        };
        let title_w = text_width(&c.title, TITLE_SIZE) * 1.1 + 2.0 * PAD;
        let width = (left + PLOT_W + right).max(title_w).ceil();
        let legend_h = LEGEND_ROW * c.legend.len() as f64 + PAD;
        let height = (top + PLOT_H + bottom).max(top + legend_h).ceil();
        Layout {
            left,
            top,
            width,
            height,
            y_ticks,
            x_ticks,
            categories,
            svg: String::new(),
            boxes: Vec::new(),
        }
    }

    /// A text in chart coordinates, recorded with its box.
    fn text(&mut self, text: &str, size: f64, x: f64, y: f64, anchor: Anchor, extra: &str) {
        let _ = write!(
            self.svg,
            r#"<text x="{x:.1}" y="{y:.1}" font-size="{size}" text-anchor="{}"{extra}>{}</text>"#,
            anchor.svg(),
            escape(text)
        );
        let mut b = TextBox::of(text, size, x, y, anchor);
        if extra.contains("bold") {
            // Bold runs about a tenth wider.
            let grow = (b.x1 - b.x0) * 0.1;
            b = match anchor {
                Anchor::Start => TextBox {
                    x1: b.x1 + grow,
                    ..b
                },
                Anchor::Middle => TextBox {
                    x0: b.x0 - grow / 2.0,
                    x1: b.x1 + grow / 2.0,
                    ..b
                },
                Anchor::End => TextBox {
                    x0: b.x0 - grow,
                    ..b
                },
            };
        }
        self.boxes.push((text.to_string(), b));
    }

    fn title(&mut self, title: &str) {
        let half = text_width(title, TITLE_SIZE) * 0.55;
        let centre = (self.left + PLOT_W / 2.0).clamp(PAD + half, self.width - PAD - half);
        let y = PAD + TITLE_SIZE;
        self.text(
            title,
            TITLE_SIZE,
            centre,
            y,
            Anchor::Middle,
            r#" font-weight="bold""#,
        );
    }

    fn y_axis(&mut self, c: &Chart) {
        let (x0, x1) = (self.left, self.left + PLOT_W);
        for (p, label) in std::mem::take(&mut self.y_ticks) {
            let y = self.top + p;
            let _ = write!(
                self.svg,
                r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/>"##
            );
            self.text(&label, TICK_SIZE, x0 - 5.0, y + 4.0, Anchor::End, "");
        }
        // The axis label, rotated: its box is the rotated extent.
        let (cx, cy) = (PAD + AXIS_LABEL_SIZE, self.top + PLOT_H / 2.0);
        let _ = write!(
            self.svg,
            r#"<text x="{cx:.1}" y="{cy:.1}" font-size="{AXIS_LABEL_SIZE}" text-anchor="middle" transform="rotate(-90 {cx:.1} {cy:.1})">{}</text>"#,
            escape(&c.y_label)
        );
        let half = text_width(&c.y_label, AXIS_LABEL_SIZE) / 2.0;
        let b = TextBox {
            x0: cx - 0.95 * AXIS_LABEL_SIZE,
            x1: cx + 0.25 * AXIS_LABEL_SIZE,
            y0: cy - half,
            y1: cy + half,
        };
        self.boxes.push((c.y_label.clone(), b));
    }

    fn x_axis(&mut self, c: &Chart, x_ticks: bool) {
        let (y0, y1) = (self.top + PLOT_H, self.top);
        if x_ticks {
            for (p, label) in std::mem::take(&mut self.x_ticks) {
                let x = self.left + p;
                let _ = write!(
                    self.svg,
                    r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="#eee"/>"##
                );
                self.text(&label, TICK_SIZE, x, y0 + 16.0, Anchor::Middle, "");
            }
        }
        for (p, lines) in std::mem::take(&mut self.categories) {
            for (i, line) in lines.iter().enumerate() {
                let y = y0 + 6.0 + CATEGORY_SIZE * (1.0 + 1.25 * i as f64);
                self.text(line, CATEGORY_SIZE, self.left + p, y, Anchor::Middle, "");
            }
        }
        let y = self.height - PAD - 0.25 * AXIS_LABEL_SIZE;
        let x = self.left + PLOT_W / 2.0;
        self.text(&c.x_label, AXIS_LABEL_SIZE, x, y, Anchor::Middle, "");
    }

    /// The plot's drawing, moved into place, under the axes' lines.
    fn plot(&mut self, c: &Chart) {
        let (left, top) = (self.left, self.top);
        let _ = write!(
            self.svg,
            r#"<g transform="translate({left:.1} {top:.1})">{}"#,
            c.body
        );
        for t in &c.texts {
            let _ = write!(
                self.svg,
                r#"<text x="{:.1}" y="{:.1}" font-size="{TICK_SIZE}" text-anchor="{}">{}</text>"#,
                t.x,
                t.y,
                t.anchor.svg(),
                escape(&t.text)
            );
            self.boxes
                .push((t.text.clone(), t.bbox().shifted(left, top)));
        }
        let (x1, y0) = (left + PLOT_W, top + PLOT_H);
        let _ = write!(
            self.svg,
            r##"</g><line x1="{left:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y0:.1}" stroke="#333"/><line x1="{left:.1}" y1="{y0:.1}" x2="{left:.1}" y2="{top:.1}" stroke="#333"/>"##
        );
    }

    fn legend(&mut self, legend: &[(String, String, bool)]) {
        let lx = self.left + PLOT_W + 16.0;
        for (i, (label, color, dashed)) in legend.iter().enumerate() {
            let y = self.top + 10.0 + LEGEND_ROW * i as f64;
            let dash = if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                self.svg,
                r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="6"{dash}/>"#,
                lx + SWATCH
            );
            let x = lx + SWATCH + SWATCH_GAP;
            self.text(label, LEGEND_SIZE, x, y + 4.0, Anchor::Start, "");
        }
    }

    fn into_svg(self) -> Svg {
        let (w, h) = (self.width, self.height);
        Svg {
            text: format!(
                r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="{w}" height="{h}" fill="white"/>{}</svg>
"#,
                self.svg
            ),
            width: w,
            height: h,
            text_boxes: self.boxes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks() {
        assert_eq!(
            Axis::linear(0.0, 100.0).ticks(),
            vec![0.0, 20.0, 40.0, 60.0, 80.0, 100.0]
        );
        assert_eq!(
            Axis::log(1.0, 100.0).ticks(),
            vec![1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0]
        );
    }

    #[test]
    fn svg_is_well_formed_enough() {
        let mut c = Chart::new(
            "t <&>",
            Axis::linear(0.0, 10.0),
            Axis::linear(0.0, 1.0),
            "x",
            "y",
        );
        c.line(&[(0.0, 0.0), (10.0, 1.0)], PALETTE[0], false, Some("a"));
        let s = c.finish(true).text;
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("t &lt;&amp;&gt;"));
    }

    #[test]
    fn boxes_overlap_only_when_they_share_area() {
        let a = TextBox::of("measured", 11.0, 100.0, 50.0, Anchor::Start);
        let right = TextBox::of("x", 11.0, a.x1 + 1.0, 50.0, Anchor::Start);
        let below = TextBox::of("x", 11.0, 100.0, 50.0 + 14.0, Anchor::Start);
        let on = TextBox::of("x", 11.0, a.x1 - 2.0, 52.0, Anchor::Start);
        assert!(!a.overlaps(&right) && !a.overlaps(&below));
        assert!(a.overlaps(&on) && on.overlaps(&a));
        assert!(a.inside(200.0, 100.0) && !a.inside(150.0, 100.0));
    }

    #[test]
    fn long_legend_labels_widen_the_chart() {
        let mut c = Chart::new(
            "t",
            Axis::log(1.0, 1000.0),
            Axis::log(1.0, 1000.0),
            "x",
            "y",
        );
        let label = "offload model, +60 ms round trip, with a long explanation";
        c.line(
            &[(1.0, 1.0), (1000.0, 1000.0)],
            PALETTE[0],
            true,
            Some(label),
        );
        let svg = c.finish(true);
        svg.check_layout().unwrap();
        let (_, b) = svg.text_boxes.iter().find(|(t, _)| t == label).unwrap();
        assert!(b.x1 <= svg.width - PAD);
    }

    #[test]
    fn long_categories_wrap_instead_of_overlapping() {
        let mut c = Chart::new(
            "t",
            Axis::linear(0.0, 4.0),
            Axis::linear(0.0, 10.0),
            "x",
            "y",
        );
        let group = c.plot_width() / 4.0;
        for i in 0..4 {
            let x = group * (i as f64 + 0.5);
            let text = format!("small / emul. {i}00 Mbit/s + 10 ms, 1 vCPU");
            c.bar(x - 10.0, 20.0, 5.0, PALETTE[0]);
            c.category(x, group * 0.9, &text);
        }
        let svg = c.finish(false);
        svg.check_layout().unwrap();
        assert!(svg.text.matches("Mbit/s").count() == 4);
    }

    #[test]
    fn marker_texts_move_aside_at_the_edge_and_from_each_other() {
        let mut c = Chart::new(
            "t",
            Axis::log(1.0, 1000.0),
            Axis::log(1.0, 1000.0),
            "x",
            "y",
        );
        c.marker(1000.0, 10.0, "#fff", Some("measured (emulated)"));
        c.marker(900.0, 11.0, "#fff", Some("break-even 900.0 Mbit/s"));
        c.marker(1.0, 1000.0, "#fff", Some("top left corner"));
        c.finish(true).check_layout().unwrap();
    }

    #[test]
    fn the_layout_check_catches_overlaps_and_escapes() {
        let b = TextBox::of("abc", 11.0, 10.0, 20.0, Anchor::Start);
        let svg = |boxes: Vec<(String, TextBox)>| Svg {
            text: String::new(),
            width: 100.0,
            height: 50.0,
            text_boxes: boxes,
        };
        assert!(svg(vec![("a".into(), b)]).check_layout().is_ok());
        assert!(
            svg(vec![("a".into(), b), ("b".into(), b.shifted(5.0, 2.0))])
                .check_layout()
                .is_err()
        );
        assert!(svg(vec![("a".into(), b.shifted(90.0, 0.0))])
            .check_layout()
            .is_err());
    }

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let lines = wrap("small / emul. 100 Mbit/s + 10 ms, 1 vCPU", 10.0, 100.0);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|l| text_width(l, 10.0) <= 100.0));
        assert_eq!(lines.join(" "), "small / emul. 100 Mbit/s + 10 ms, 1 vCPU");
    }
}
