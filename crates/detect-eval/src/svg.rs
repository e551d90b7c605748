//! Hand-written SVG charts for the report: axes with ticks (linear or log), lines, bars,
//! markers and a legend. No dependencies; the output is plain text that diffs well.

use std::fmt::Write;

pub const PALETTE: [&str; 8] = [
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
];

pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
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

/// A chart under construction.
pub struct Chart {
    pub width: f64,
    pub height: f64,
    left: f64,
    right: f64,
    top: f64,
    bottom: f64,
    pub x: Axis,
    pub y: Axis,
    body: String,
    legend: Vec<(String, String, bool)>,
}

impl Chart {
    pub fn new(title: &str, x: Axis, y: Axis, x_label: &str, y_label: &str) -> Self {
        let mut c = Chart {
            width: 760.0,
            height: 420.0,
            left: 70.0,
            right: 210.0,
            top: 40.0,
            bottom: 55.0,
            x,
            y,
            body: String::new(),
            legend: Vec::new(),
        };
        let (w, h) = (c.width, c.height);
        let _ = write!(
            c.body,
            r#"<text x="{}" y="22" font-size="15" text-anchor="middle" font-weight="bold">{}</text>"#,
            (c.left + w - c.right) / 2.0,
            escape(title)
        );
        let _ = write!(
            c.body,
            r#"<text x="{}" y="{}" font-size="12" text-anchor="middle">{}</text>"#,
            (c.left + w - c.right) / 2.0,
            h - 12.0,
            escape(x_label)
        );
        let _ = write!(
            c.body,
            r#"<text x="16" y="{}" font-size="12" text-anchor="middle" transform="rotate(-90 16 {})">{}</text>"#,
            (c.top + h - c.bottom) / 2.0,
            (c.top + h - c.bottom) / 2.0,
            escape(y_label)
        );
        c
    }

    pub fn px(&self, v: f64) -> f64 {
        self.left + self.x.frac(v) * (self.width - self.left - self.right)
    }

    pub fn py(&self, v: f64) -> f64 {
        self.height - self.bottom - self.y.frac(v) * (self.height - self.top - self.bottom)
    }

    pub fn plot_width(&self) -> f64 {
        self.width - self.left - self.right
    }

    fn axes(&mut self, x_ticks: bool) {
        let (x0, x1) = (self.left, self.width - self.right);
        let (y0, y1) = (self.height - self.bottom, self.top);
        let mut s = String::new();
        for t in self.y.ticks() {
            let y = self.py(t);
            let _ = write!(
                s,
                r##"<line x1="{x0:.1}" y1="{y:.1}" x2="{x1:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{}</text>"##,
                x0 - 5.0,
                y + 4.0,
                fmt_tick(t)
            );
        }
        if x_ticks {
            for t in self.x.ticks() {
                let x = self.px(t);
                let _ = write!(
                    s,
                    r##"<line x1="{x:.1}" y1="{y0:.1}" x2="{x:.1}" y2="{y1:.1}" stroke="#eee"/><text x="{x:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"##,
                    y0 + 16.0,
                    fmt_tick(t)
                );
            }
        }
        let _ = write!(
            s,
            r##"<line x1="{x0}" y1="{y0}" x2="{x1}" y2="{y0}" stroke="#333"/><line x1="{x0}" y1="{y0}" x2="{x0}" y2="{y1}" stroke="#333"/>"##
        );
        self.body.insert_str(0, &s);
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

    pub fn marker(&mut self, x: f64, y: f64, color: &str, text: Option<&str>) {
        let (cx, cy) = (self.px(x), self.py(y));
        let _ = write!(
            self.body,
            r##"<circle cx="{cx:.1}" cy="{cy:.1}" r="5" fill="{color}" stroke="#000"/>"##
        );
        if let Some(t) = text {
            let _ = write!(
                self.body,
                r#"<text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                cx + 7.0,
                cy - 7.0,
                escape(t)
            );
        }
    }

    pub fn vline(&mut self, x: f64, color: &str, text: &str) {
        let px = self.px(x);
        let _ = write!(
            self.body,
            r#"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="{color}" stroke-dasharray="2 3"/><text x="{:.1}" y="{:.1}" font-size="11" fill="{color}">{}</text>"#,
            self.height - self.bottom,
            self.top,
            px + 3.0,
            self.top + 12.0,
            escape(text)
        );
    }

    /// A bar from the x axis (or the y axis minimum) to `y`, `x` and `w` in pixels.
    pub fn bar(&mut self, x_px: f64, w_px: f64, y: f64, color: &str) {
        let (top, base) = (self.py(y), self.py(self.y.min));
        let _ = write!(
            self.body,
            r#"<rect x="{x_px:.1}" y="{top:.1}" width="{w_px:.1}" height="{:.1}" fill="{color}"/>"#,
            (base - top).max(0.0)
        );
    }

    /// A category label under the x axis at pixel `x`.
    pub fn x_label(&mut self, x_px: f64, text: &str) {
        let y = self.height - self.bottom + 14.0;
        let _ = write!(
            self.body,
            r#"<text x="{x_px:.1}" y="{y:.1}" font-size="10" text-anchor="middle">{}</text>"#,
            escape(text)
        );
    }

    pub fn legend_entry(&mut self, label: &str, color: &str) {
        self.legend
            .push((label.to_string(), color.to_string(), false));
    }

    pub fn finish(mut self, x_ticks: bool) -> String {
        self.axes(x_ticks);
        let lx = self.width - self.right + 12.0;
        let mut legend = String::new();
        for (i, (label, color, dashed)) in self.legend.iter().enumerate() {
            let y = self.top + 10.0 + 18.0 * i as f64;
            let dash = if *dashed {
                r#" stroke-dasharray="6 4""#
            } else {
                ""
            };
            let _ = write!(
                legend,
                r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="6"{dash}/><text x="{:.1}" y="{:.1}" font-size="11">{}</text>"#,
                lx + 18.0,
                lx + 24.0,
                y + 4.0,
                escape(label)
            );
        }
        format!(
            r#"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif"><rect width="{w}" height="{h}" fill="white"/>{}{}</svg>
"#,
            self.body,
            legend,
            w = self.width,
            h = self.height
        )
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
        let s = c.finish(true);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert!(s.contains("t &lt;&amp;&gt;"));
    }
}
