//! Drawing primitives for the report's inline SVG: escaping, linear
//! scales, "nice" tick values and their labels, and `Plot`, a chart frame
//! (axes, grid, legend) that charts draw marks into. Colours come from
//! CSS classes the page defines, so a chart is only geometry and text.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` safe inside HTML or SVG text and quoted attribute values.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['&', '<', '>', '"', '\'']) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    Cow::Owned(out)
}

/// `text` cut to `max` characters by an ellipsis in the middle, so that
/// labels sharing a prefix (or a suffix) stay apart.
pub fn shorten(text: &str, max: usize) -> Cow<'_, str> {
    let count = text.chars().count();
    if count <= max {
        return Cow::Borrowed(text);
    }
    let head = max.saturating_sub(1) / 2;
    let tail = max.saturating_sub(1) - head;
    let start: String = text.chars().take(head).collect();
    let end: String = text.chars().skip(count - tail).collect();
    Cow::Owned(format!("{start}…{end}"))
}

/// Maps a data interval onto a pixel interval.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    lo: f64,
    hi: f64,
    from: f64,
    to: f64,
}

impl Scale {
    /// A degenerate data interval is widened so that it still has a middle.
    pub fn new(lo: f64, hi: f64, from: f64, to: f64) -> Self {
        let (lo, hi) = if hi - lo > f64::EPSILON * lo.abs().max(1.0) { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
        Self { lo, hi, from, to }
    }

    pub fn at(&self, v: f64) -> f64 {
        self.from + (v - self.lo) / (self.hi - self.lo) * (self.to - self.from)
    }
}

/// The nice step (1, 2 or 5 times a power of ten) near `span / count`.
fn step_for(span: f64, count: usize) -> f64 {
    let raw = span / count.max(1) as f64;
    let power = 10f64.powf(raw.log10().floor());
    let unit = raw / power;
    let nice = if unit < 1.5 {
        1.0
    } else if unit < 3.0 {
        2.0
    } else if unit < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * power
}

/// About `count` evenly spaced round values covering `[lo, hi]`, and their step.
pub fn ticks(lo: f64, hi: f64, count: usize) -> (Vec<f64>, f64) {
    let (lo, hi) = if hi > lo { (lo, hi) } else { (lo - 1.0, hi + 1.0) };
    let step = step_for(hi - lo, count);
    let first = (lo / step).floor() as i64;
    let last = (hi / step).ceil() as i64;
    ((first..=last).map(|i| i as f64 * step).collect(), step)
}

/// The smallest nice number at or above `v` (for an axis that starts at 0).
pub fn nice_ceil(v: f64) -> f64 {
    let step = step_for(v, 5);
    ((v / step).ceil() * step).max(step)
}

/// A tick label: as many decimals as the step needs, thousands as k/M.
pub fn number(v: f64, step: f64) -> String {
    let v = if v.abs() < step * 1e-9 { 0.0 } else { v };
    for (unit, suffix) in [(1e9, "G"), (1e6, "M"), (1e3, "k")] {
        if v.abs() >= f64::max(unit, 1e4) {
            return format!("{}{suffix}", number(v / unit, step / unit));
        }
    }
    let decimals = if step >= 1.0 { 0 } else { (-step.log10() - 1e-9).ceil() as usize };
    format!("{v:.decimals$}")
}

/// A value in the text of the page: four significant digits, or an exponent.
pub fn value(v: f64) -> String {
    let a = v.abs();
    if v == 0.0 {
        "0".into()
    } else if !(1e-3..1e6).contains(&a) {
        format!("{v:.2e}")
    } else {
        let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
        format!("{v:.decimals$}")
    }
}

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy)]
pub enum Mark {
    Line,
    Dashed,
    Box,
    Dot,
}

/// A chart's frame: margins around a plot area, two scales, and the SVG
/// text written so far.
pub struct Plot {
    pub x: Scale,
    pub y: Scale,
    width: f64,
    height: f64,
    /// The plot area: left, top, right, bottom.
    area: (f64, f64, f64, f64),
    out: String,
}

/// Space around the plot area for ticks, axis titles and the legend.
pub struct Margins {
    pub top: f64,
    pub right: f64,
    pub bottom: f64,
    pub left: f64,
}

impl Plot {
    pub fn new(size: (f64, f64), m: Margins, x: (f64, f64), y: (f64, f64), title: &str) -> Self {
        let (width, height) = size;
        let area = (m.left, m.top, width - m.right, height - m.bottom);
        let mut out = String::with_capacity(8 * 1024);
        _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" xmlns="http://www.w3.org/2000/svg"><title>{}</title>"#,
            escape(title)
        );
        Self {
            x: Scale::new(x.0, x.1, area.0, area.2),
            y: Scale::new(y.0, y.1, area.3, area.1),
            width,
            height,
            area,
            out,
        }
    }

    pub fn area(&self) -> (f64, f64, f64, f64) {
        self.area
    }

    /// Raw SVG markup; callers escape any text in it.
    pub fn raw(&mut self, markup: &str) {
        self.out.push_str(markup);
    }

    /// Vertical grid lines and labels under the plot area, and the axis title.
    pub fn x_axis(&mut self, ticks: &[(f64, String)], title: &str) {
        let (left, top, right, bottom) = self.area;
        for (v, label) in ticks {
            let x = self.x.at(*v);
            if x < left - 0.5 || x > right + 0.5 {
                continue;
            }
            // A label centred on a tick near an edge would be cut off: align it to the edge.
            let half = label.chars().count() as f64 * 3.3;
            let anchor = if x + half > self.width - 2.0 {
                "end"
            } else if x - half < 2.0 {
                "start"
            } else {
                "middle"
            };
            _ = write!(
                self.out,
                r#"<line class="grid" x1="{x:.1}" y1="{top:.1}" x2="{x:.1}" y2="{bottom:.1}"/><text class="tick" x="{x:.1}" y="{:.1}" text-anchor="{anchor}">{}</text>"#,
                bottom + 15.0,
                escape(label)
            );
        }
        _ = write!(
            self.out,
            r#"<line class="axis" x1="{left:.1}" y1="{bottom:.1}" x2="{right:.1}" y2="{bottom:.1}"/><text class="axis-title" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            (left + right) / 2.0,
            self.height - 6.0,
            escape(title)
        );
    }

    /// Horizontal grid lines and labels left of the plot area, and the axis title.
    pub fn y_axis(&mut self, ticks: &[(f64, String)], title: &str) {
        let (left, top, right, bottom) = self.area;
        for (v, label) in ticks {
            let y = self.y.at(*v);
            if y < top - 0.5 || y > bottom + 0.5 {
                continue;
            }
            _ = write!(
                self.out,
                r#"<line class="grid" x1="{left:.1}" y1="{y:.1}" x2="{right:.1}" y2="{y:.1}"/><text class="tick" x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                y + 4.0,
                escape(label)
            );
        }
        let middle = (top + bottom) / 2.0;
        _ = write!(
            self.out,
            r#"<line class="axis" x1="{left:.1}" y1="{top:.1}" x2="{left:.1}" y2="{bottom:.1}"/><text class="axis-title" x="14" y="{middle:.1}" text-anchor="middle" transform="rotate(-90 14 {middle:.1})">{}</text>"#,
            escape(title)
        );
    }

    /// A row of legend entries (CSS class, label, mark) above the plot area.
    pub fn legend(&mut self, entries: &[(&str, &str, Mark)]) {
        let mut x = self.area.0;
        let y = 14.0;
        for (class, label, mark) in entries {
            let swatch = match mark {
                Mark::Line => format!(r#"<line class="{class}" x1="{x:.1}" y1="{y}" x2="{:.1}" y2="{y}"/>"#, x + 22.0),
                Mark::Dashed => {
                    format!(r#"<line class="{class} dashed" x1="{x:.1}" y1="{y}" x2="{:.1}" y2="{y}"/>"#, x + 22.0)
                }
                Mark::Box => format!(r#"<rect class="{class}" x="{x:.1}" y="{}" width="22" height="10"/>"#, y - 5.0),
                Mark::Dot => format!(r#"<circle class="{class}" cx="{:.1}" cy="{y}" r="4"/>"#, x + 11.0),
            };
            self.out.push_str(&swatch);
            _ = write!(
                self.out,
                r#"<text class="legend" x="{:.1}" y="{}">{}</text>"#,
                x + 28.0,
                y + 4.0,
                escape(label)
            );
            // About 6.5 px per character of the 12 px legend font.
            x += 28.0 + label.chars().count() as f64 * 6.5 + 18.0;
        }
    }

    /// A polyline through data points.
    pub fn polyline(&mut self, points: &[(f64, f64)], class: &str) {
        if points.is_empty() {
            return;
        }
        self.out.push_str(r#"<polyline class=""#);
        self.out.push_str(class);
        self.out.push_str(r#"" points=""#);
        for (x, y) in points {
            _ = write!(self.out, "{:.1},{:.1} ", self.x.at(*x), self.y.at(*y));
        }
        self.out.push_str(r#""/>"#);
    }

    pub fn finish(mut self) -> String {
        self.out.push_str("</svg>");
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(escape(r#"<b a="1">'x' & y</b>"#), "&lt;b a=&quot;1&quot;&gt;&#39;x&#39; &amp; y&lt;/b&gt;");
        assert!(matches!(escape("plain"), Cow::Borrowed(_)));
        assert_eq!(shorten("abcdef", 4), "a…ef");
        assert_eq!(shorten("a long label 11", 9), "a lo…l 11");
        assert_eq!(shorten("abc", 4), "abc");
    }

    #[test]
    fn ticks_are_round_and_cover_the_range() {
        let (t, step) = ticks(0.3, 97.2, 5);
        assert_eq!((t.first().copied(), t.last().copied(), step), (Some(0.0), Some(100.0), 20.0));
        let (t, step) = ticks(0.0, 0.37, 5);
        assert_eq!(step, 0.1);
        assert_eq!(t.iter().map(|v| number(*v, step)).collect::<Vec<_>>(), ["0.0", "0.1", "0.2", "0.3", "0.4"]);
        assert_eq!(number(25_000.0, 5_000.0), "25k");
        assert_eq!(number(1_500_000.0, 500_000.0), "1.5M");
        assert_eq!(number(500_000.0, 500_000.0), "500k");
        assert_eq!(number(0.05, 0.05), "0.05");
        assert_eq!(nice_ceil(0.37), 0.4);
        assert!(ticks(5.0, 5.0, 4).0.len() >= 2);
    }

    #[test]
    fn values_keep_four_significant_digits() {
        assert_eq!(value(0.4712345), "0.4712");
        assert_eq!(value(52.61234), "52.61");
        assert_eq!(value(1.2e-7), "1.20e-7");
        assert_eq!(value(0.0), "0");
    }
}
