//! The SVG charts of the HTML reports, drawn here (no script, no CDN):
//! axes on round numbers (1, 2, 2.5 or 5 times a power of ten), the
//! objectives' target, warning and critical levels as coloured bands with
//! their names, shaded spans (the warm-up), labelled vertical markers, and
//! each point's value as an SVG `<title>` (a tooltip without a script).
//! Charts scale to the page's width.

use super::junit::escape;
use super::num;
use std::fmt::Write;

/// One line of a chart: name, colour, points.
pub struct Series<'a> {
    pub name: &'a str,
    pub color: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// A level's band: from `from` to `to` along the chart's value axis
/// (`None`: to the edge), filled, with its label.
#[derive(Clone, Debug, PartialEq)]
pub struct Band {
    pub from: f64,
    pub to: Option<f64>,
    pub fill: &'static str,
    /// Its tooltip, and its text where it fits.
    pub label: String,
    /// Its text where `label` does not fit (`target 500`).
    pub short: String,
}

/// Band fills: light enough that the lines stay readable, distinct in
/// grey-scale too (their labels say which is which).
pub const TARGET_FILL: &str = "#fff3c4";
pub const WARNING_FILL: &str = "#ffd9a8";
pub const CRITICAL_FILL: &str = "#f9b8b4";
/// The warm-up's shade.
pub const SHADE_FILL: &str = "#ececec";

/// Which axis the bands lie along.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BandAxis {
    /// Horizontal bands over a value on the y axis (a latency over time).
    Y,
    /// Vertical bands over a value on the x axis (a latency's CDF).
    X,
}

pub struct Chart<'a> {
    pub title: String,
    /// Axis titles, with their units.
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series<'a>>,
    pub bands: Vec<Band>,
    pub band_axis: BandAxis,
    /// Spans of x shaded and labelled (the warm-up).
    pub shaded: Vec<(f64, f64, String)>,
    /// Labelled vertical lines.
    pub markers: Vec<(f64, String)>,
    /// Events at an x (a stall of the load generator, an injected fault):
    /// a mark under the axis with its words as a tooltip.
    pub events: Vec<(f64, String)>,
    /// The x axis starts here at the latest (0 for a time line).
    pub x_from: Option<f64>,
    /// The y axis ends here (100 for a percentage).
    pub y_max: Option<f64>,
    /// The drawing's width in its own units (its height is fixed): a
    /// chart that shares a row with others is narrower, so its text stays
    /// legible when it is scaled to the page.
    pub width: f64,
}

impl<'a> Chart<'a> {
    pub fn new(title: &str, x_label: &str, y_label: &str, series: Vec<Series<'a>>) -> Self {
        Chart {
            title: title.to_owned(),
            x_label: x_label.to_owned(),
            y_label: y_label.to_owned(),
            series,
            bands: Vec::new(),
            band_axis: BandAxis::Y,
            shaded: Vec::new(),
            markers: Vec::new(),
            events: Vec::new(),
            x_from: None,
            y_max: None,
            width: 960.0,
        }
    }
}

/// The bands of a `max` objective's levels (a `min` objective's below
/// its levels).
pub fn level_bands(name: &str, l: &crate::objective::Levels) -> Vec<Band> {
    let mut edges = vec![(l.target, TARGET_FILL, "target")];
    if let Some(w) = l.warning {
        edges.push((w, WARNING_FILL, "warning"));
    }
    if let Some(c) = l.critical {
        edges.push((c, CRITICAL_FILL, "critical"));
    }
    (0..edges.len())
        .map(|i| {
            let (edge, fill, word) = edges[i];
            let next = edges.get(i + 1).map(|e| e.0);
            let (from, to) = match l.direction {
                crate::objective::Direction::Max => (edge, next),
                // Worse is lower: the band runs down to the next level.
                crate::objective::Direction::Min => (next.unwrap_or(0.0).min(edge), Some(edge)),
            };
            Band {
                from,
                to,
                fill,
                label: format!("{name} {word} {}", num(edge)),
                short: format!("{word} {}", num(edge)),
            }
        })
        .collect()
}

/// Round ticks covering `[lo, hi]`: a step of 1, 2, 2.5 or 5 times a power
/// of ten, chosen so there are at most `most` intervals; the axis runs from
/// the first tick at or below `lo` to the first at or above `hi`.
pub fn ticks(lo: f64, hi: f64, most: usize) -> Vec<f64> {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo, lo + 1.0) };
    let raw = (hi - lo) / most.max(1) as f64;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * mag);
    let first = (lo / step + 1e-9).floor();
    let last = (hi / step - 1e-9).ceil();
    // Multiples of the step, computed as such (no drift from adding).
    (first as i64..=last as i64)
        .map(|k| clean(k as f64 * step))
        .collect()
}

/// `k * step` without binary noise (0.30000000000000004 -> 0.3).
fn clean(v: f64) -> f64 {
    (v * 1e9).round() / 1e9
}

const H: f64 = 300.0;
const PAD_L: f64 = 64.0;
const PAD_R: f64 = 16.0;
const PAD_T: f64 = 30.0;
const PAD_B: f64 = 42.0;
/// Points a series may have and still get one tooltip each.
const HOVER_POINTS: usize = 600;

impl Chart<'_> {
    pub fn svg(&self) -> String {
        #[allow(non_snake_case)]
        let W = self.width;
        let data = self.series.iter().flat_map(|s| s.points.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
        for &(x, y) in data {
            x0 = x0.min(x);
            x1 = x1.max(x);
            y0 = y0.min(y);
            y1 = y1.max(y);
        }
        let mut o = String::new();
        let _ = write!(
            o,
            r#"<figure><figcaption>{t}</figcaption><svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="100%" preserveAspectRatio="xMidYMid meet" role="img" aria-label="{t}">"#,
            t = escape(&self.title)
        );
        let _ = write!(
            o,
            r##"<rect x="0" y="0" width="{W}" height="{H}" fill="#ffffff"/>"##
        );
        if x0 > x1 {
            let _ = write!(
                o,
                r##"<text x="{}" y="{}" text-anchor="middle" fill="#666">no data</text></svg></figure>"##,
                W / 2.0,
                H / 2.0
            );
            return o;
        }
        if let Some(f) = self.x_from {
            x0 = x0.min(f);
        }
        for (a, b, _) in &self.shaded {
            x0 = x0.min(*a);
            x1 = x1.max(*b);
        }
        // The first band's edge is always on the chart: a run far below its
        // target still shows where the target is.
        if let Some(b) = self.bands.first() {
            match self.band_axis {
                BandAxis::Y => y1 = y1.max(b.from * 1.1),
                BandAxis::X => x1 = x1.max(b.from * 1.1),
            }
        }
        let xt = ticks(x0, x1, if W < 700.0 { 5 } else { 8 });
        let yt = match self.y_max {
            Some(top) => ticks(y0, top, 5),
            None => ticks(y0, y1 * 1.02, 5),
        };
        let f = Frame {
            width: W,
            x: (xt[0], *xt.last().expect("ticks")),
            y: (yt[0], *yt.last().expect("ticks")),
        };
        self.shaded_spans(&mut o, &f);
        self.bands_drawn(&mut o, &f);
        self.axes(&mut o, &f, (&xt, &yt));
        self.markers_and_events(&mut o, &f);
        self.lines(&mut o, &f);
        o.push_str("</svg></figure>");
        o
    }

    /// The shaded spans (the warm-up, alerts firing), labelled.
    fn shaded_spans(&self, o: &mut String, f: &Frame) {
        for (a, b, label) in &self.shaded {
            let (l, r) = (f.px(f.clamp_x(*a)), f.px(f.clamp_x(*b)));
            let _ = write!(
                o,
                r##"<rect x="{l:.1}" y="{PAD_T}" width="{:.1}" height="{:.1}" fill="{SHADE_FILL}"><title>{}</title></rect><text x="{:.1}" y="{:.1}" font-size="11" fill="#555">{}</text>"##,
                (r - l).max(0.0),
                H - PAD_T - PAD_B,
                escape(label),
                l + 4.0,
                H - PAD_B - 6.0,
                escape(label)
            );
        }
    }

    /// The objective's bands, each with the label that fits.
    fn bands_drawn(&self, o: &mut String, f: &Frame) {
        #[allow(non_snake_case)]
        let W = f.width;
        let (x1, y1) = (f.x.1, f.y.1);
        for b in &self.bands {
            let (from, to) = (b.from, b.to);
            let (x, y, w, h, lx, ly) = match self.band_axis {
                BandAxis::Y => {
                    let top = f.py(f.clamp_y(to.unwrap_or(y1)));
                    let bottom = f.py(f.clamp_y(from));
                    (
                        PAD_L,
                        top,
                        W - PAD_L - PAD_R,
                        bottom - top,
                        W - PAD_R - 4.0,
                        bottom - 4.0,
                    )
                }
                BandAxis::X => {
                    let l = f.px(f.clamp_x(from));
                    let r = f.px(f.clamp_x(to.unwrap_or(x1)));
                    (l, PAD_T, r - l, H - PAD_T - PAD_B, l + 4.0, PAD_T + 12.0)
                }
            };
            if w <= 0.0 || h <= 0.0 {
                continue;
            }
            let anchor = if self.band_axis == BandAxis::Y {
                "end"
            } else {
                "start"
            };
            // About 6 units a character at this size: the text that fits.
            let room = if self.band_axis == BandAxis::Y {
                W - PAD_L - PAD_R
            } else {
                w - 6.0
            };
            let text = [&b.label, &b.short]
                .into_iter()
                .find(|t| t.chars().count() as f64 * 6.0 <= room)
                .map_or(String::new(), |t| escape(t));
            let _ = write!(
                o,
                r##"<rect class="band" x="{x:.1}" y="{y:.1}" width="{w:.1}" height="{h:.1}" fill="{}"><title>{}</title></rect><text x="{lx:.1}" y="{ly:.1}" text-anchor="{anchor}" font-size="11" fill="#5a3b00">{text}</text>"##,
                b.fill,
                escape(&b.label)
            );
        }
    }

    /// Grid lines, ticks, the axes and their labels.
    fn axes(&self, o: &mut String, f: &Frame, (xt, yt): (&[f64], &[f64])) {
        #[allow(non_snake_case)]
        let W = f.width;
        for &y in yt {
            let _ = write!(
                o,
                r##"<line x1="{PAD_L}" y1="{v:.1}" x2="{}" y2="{v:.1}" stroke="#000" stroke-opacity="0.08"/><text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#444">{}</text>"##,
                W - PAD_R,
                PAD_L - 6.0,
                f.py(y) + 4.0,
                num(y),
                v = f.py(y)
            );
        }
        for &x in xt {
            let _ = write!(
                o,
                r##"<text x="{:.1}" y="{}" text-anchor="middle" font-size="11" fill="#444">{}</text>"##,
                f.px(x),
                H - PAD_B + 16.0,
                num(x)
            );
        }
        let _ = write!(
            o,
            r##"<line x1="{PAD_L}" y1="{b}" x2="{}" y2="{b}" stroke="#444"/><line x1="{PAD_L}" y1="{PAD_T}" x2="{PAD_L}" y2="{b}" stroke="#444"/>"##,
            W - PAD_R,
            b = H - PAD_B
        );
        let _ = write!(
            o,
            r##"<text x="{}" y="{}" text-anchor="middle" font-size="12" fill="#222">{}</text><text x="14" y="{m}" text-anchor="middle" font-size="12" fill="#222" transform="rotate(-90 14 {m})">{}</text>"##,
            (PAD_L + W - PAD_R) / 2.0,
            H - 6.0,
            escape(&self.x_label),
            escape(&self.y_label),
            m = H / 2.0
        );
    }

    /// The timeline's markers and the stalls' triangles.
    fn markers_and_events(&self, o: &mut String, f: &Frame) {
        let (x0, x1) = f.x;
        for (i, (x, label)) in self.markers.iter().enumerate() {
            if *x < x0 || *x > x1 {
                continue;
            }
            // Labels one under the other: markers may stand close.
            let label_y = PAD_T + 12.0 + 14.0 * i as f64;
            let _ = write!(
                o,
                r##"<line x1="{v:.1}" y1="{PAD_T}" x2="{v:.1}" y2="{}" stroke="#b3261e" stroke-width="2" stroke-dasharray="6 4"/><text x="{:.1}" y="{}" font-size="11" fill="#b3261e">{}</text>"##,
                H - PAD_B,
                f.px(*x) + 4.0,
                label_y,
                escape(label),
                v = f.px(*x)
            );
        }
        for (x, what) in &self.events {
            if *x < x0 || *x > x1 {
                continue;
            }
            let (cx, b) = (f.px(*x), H - PAD_B);
            let _ = write!(
                o,
                r##"<path class="event" d="M{:.1} {:.1} L{:.1} {:.1} L{:.1} {:.1} Z" fill="#b3261e"><title>{}</title></path>"##,
                cx,
                b - 9.0,
                cx - 5.0,
                b,
                cx + 5.0,
                b,
                escape(what)
            );
        }
    }

    /// Each series' line, its hover points and its legend entry.
    fn lines(&self, o: &mut String, f: &Frame) {
        for (i, s) in self.series.iter().enumerate() {
            if s.points.is_empty() {
                continue;
            }
            let pts: Vec<String> = s
                .points
                .iter()
                .map(|&(x, y)| format!("{:.1},{:.1}", f.px(x), f.py(y)))
                .collect();
            let _ = write!(
                o,
                r#"<polyline fill="none" stroke="{}" stroke-width="2" points="{}"><title>{}</title></polyline>"#,
                s.color,
                pts.join(" "),
                escape(s.name)
            );
            if s.points.len() <= HOVER_POINTS {
                for &(x, y) in &s.points {
                    let _ = write!(
                        o,
                        r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}" fill-opacity="0.01"><title>{}: {} at {}</title></circle>"#,
                        f.px(x),
                        f.py(y),
                        s.color,
                        escape(s.name),
                        num(y),
                        num(x)
                    );
                }
            }
            let lx = PAD_L + 8.0 + i as f64 * 160.0;
            let _ = write!(
                o,
                r##"<rect x="{lx}" y="8" width="12" height="4" fill="{}"/><text x="{}" y="14" font-size="11" fill="#222">{}</text>"##,
                s.color,
                lx + 16.0,
                escape(s.name)
            );
        }
    }
}

/// A chart's drawing area: its width and the data range its axes span.
struct Frame {
    width: f64,
    x: (f64, f64),
    y: (f64, f64),
}

impl Frame {
    fn px(&self, x: f64) -> f64 {
        let (x0, x1) = self.x;
        PAD_L + (x - x0) / (x1 - x0) * (self.width - PAD_L - PAD_R)
    }

    fn py(&self, y: f64) -> f64 {
        let (y0, y1) = self.y;
        H - PAD_B - (y - y0) / (y1 - y0) * (H - PAD_T - PAD_B)
    }

    fn clamp_x(&self, x: f64) -> f64 {
        x.clamp(self.x.0, self.x.1)
    }

    fn clamp_y(&self, y: f64) -> f64 {
        y.clamp(self.y.0, self.y.1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;

    /// Whether `step` is 1, 2, 2.5 or 5 times a power of ten.
    fn round(step: f64) -> bool {
        let mag = 10f64.powf(step.log10().floor());
        let m = step / mag;
        [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .any(|r| (m - r).abs() < 1e-6)
    }

    #[test]
    fn ticks_are_round_cover_the_data_and_are_few() {
        let mut rng = Rng(0x5eed_1234);
        for case in 0..5000 {
            // Data from a thousandth to a million, any width, some at 0.
            let scale = 10f64.powf(rng.uniform() * 9.0 - 3.0);
            let lo = if case % 3 == 0 {
                0.0
            } else {
                rng.uniform() * scale
            };
            let hi = lo + rng.uniform() * scale + 1e-9;
            let t = ticks(lo, hi, 8);
            assert!(t.len() >= 2 && t.len() <= 10, "{lo}..{hi}: {t:?}");
            assert!(t[0] <= lo && *t.last().unwrap() >= hi, "{lo}..{hi}: {t:?}");
            let step = t[1] - t[0];
            assert!(round(step), "{lo}..{hi}: step {step}");
            for w in t.windows(2) {
                assert!(((w[1] - w[0]) - step).abs() <= step * 1e-6, "{t:?}");
            }
            // Each tick a multiple of the step: labels like 250, 500, 750.
            for v in &t {
                let k = v / step;
                assert!((k - k.round()).abs() < 1e-6, "{v} in {t:?}");
            }
        }
        assert_eq!(
            ticks(0.0, 1040.0, 5),
            [0.0, 250.0, 500.0, 750.0, 1000.0, 1250.0]
        );
        assert_eq!(ticks(0.0, 10.5, 8), [0.0, 2.0, 4.0, 6.0, 8.0, 10.0, 12.0]);
        assert_eq!(ticks(0.0, 0.3, 3), [0.0, 0.1, 0.2, 0.3]);
    }

    #[test]
    fn bands_shades_and_tooltips_are_drawn() {
        let mut c = Chart::new(
            "first token",
            "seconds since start",
            "ms",
            vec![Series {
                name: "p95",
                color: "#ff7f0e",
                points: vec![(5.0, 420.0), (6.0, 610.0)],
            }],
        );
        c.bands = vec![
            Band {
                from: 500.0,
                to: Some(1000.0),
                fill: TARGET_FILL,
                label: "target 500".into(),
                short: "target 500".into(),
            },
            Band {
                from: 1000.0,
                to: None,
                fill: WARNING_FILL,
                label: "warning 1000".into(),
                short: "warning 1000".into(),
            },
        ];
        c.shaded = vec![(0.0, 5.0, "warm-up".into())];
        c.x_from = Some(0.0);
        let svg = c.svg();
        assert!(
            svg.contains(&format!("fill=\"{TARGET_FILL}\"><title>target 500</title>")),
            "{svg}"
        );
        // The warning band starts above the data (610): still drawn when
        // inside the axis, which ends on a round number.
        assert!(svg.contains("<title>p95: 610 at 6</title>"), "{svg}");
        assert!(svg.contains("<title>warm-up</title>"), "{svg}");
        assert!(svg.contains("width=\"100%\""));
        // Far below its target, the target is still on the chart.
        let low = Chart {
            bands: vec![Band {
                from: 2000.0,
                to: None,
                fill: CRITICAL_FILL,
                label: "critical 2000".into(),
                short: "critical 2000".into(),
            }],
            ..Chart::new(
                "low",
                "s",
                "ms",
                vec![Series {
                    name: "p50",
                    color: "#000",
                    points: vec![(0.0, 50.0), (1.0, 60.0)],
                }],
            )
        }
        .svg();
        assert!(low.contains("<title>critical 2000</title>"), "{low}");
    }
}
