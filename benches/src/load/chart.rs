//! The report's chart: achieved throughput and latency percentiles against offered load,
//! as a small standalone SVG. A pure function of the numbers, so it snapshot-tests.

use std::fmt::Write;

/// One open-loop step of the ladder.
#[derive(Debug, Clone, serde::Serialize)]
pub struct LadderPoint {
    /// Offered hits per second.
    pub offered: f64,
    /// Achieved 2xx answers per second.
    pub achieved: f64,
    /// Latency percentiles in milliseconds.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Failed requests.
    pub errors: u64,
}

/// A latency series: name, colour, and how to read it from a point.
type Series = (&'static str, &'static str, fn(&LadderPoint) -> f64);

const WIDTH: f64 = 920.0;
const HEIGHT: f64 = 380.0;
const PANEL_WIDTH: f64 = 370.0;
const PANEL_HEIGHT: f64 = 260.0;
const TOP: f64 = 60.0;

/// Renders the two panels: throughput (linear) and latency (log scale) against offered load.
#[must_use]
pub fn render(title: &str, points: &[LadderPoint]) -> String {
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>
"#,
        WIDTH / 2.0,
        escape(title)
    );
    let max_x = points.iter().map(|p| p.offered).fold(1.0_f64, f64::max) * 1.05;
    let max_y = points
        .iter()
        .map(|p| p.achieved.max(p.offered))
        .fold(1.0_f64, f64::max)
        * 1.05;
    // Left panel: throughput.
    let left = 70.0;
    axes(
        &mut svg,
        left,
        "offered hits/s",
        "achieved hits/s",
        max_x,
        max_y,
        false,
    );
    let scale = |x: f64, y: f64| {
        (
            left + x / max_x * PANEL_WIDTH,
            TOP + PANEL_HEIGHT - y / max_y * PANEL_HEIGHT,
        )
    };
    let (x0, y0) = scale(0.0, 0.0);
    let (x1, y1) = scale(max_x.min(max_y), max_x.min(max_y));
    let _ = writeln!(
        svg,
        r##"<line x1="{x0:.1}" y1="{y0:.1}" x2="{x1:.1}" y2="{y1:.1}" stroke="#999" stroke-dasharray="4 4"/>"##
    );
    polyline(
        &mut svg,
        points.iter().map(|p| scale(p.offered, p.achieved)),
        "#1f77b4",
    );
    // Right panel: latency, log scale from 0.1 ms.
    let right = 70.0 + PANEL_WIDTH + 90.0;
    let max_ms = points
        .iter()
        .map(|p| p.p99_ms)
        .fold(1.0_f64, f64::max)
        .max(1.0);
    let decades_top = max_ms.log10().ceil().max(0.0);
    let low = -1.0_f64;
    axes(
        &mut svg,
        right,
        "offered hits/s",
        "latency (ms, log)",
        max_x,
        decades_top,
        true,
    );
    let scale_ms = |x: f64, ms: f64| {
        let v = ms.max(0.1).log10();
        (
            right + x / max_x * PANEL_WIDTH,
            TOP + PANEL_HEIGHT - (v - low) / (decades_top - low) * PANEL_HEIGHT,
        )
    };
    let series: [Series; 3] = [
        ("p50", "#2ca02c", |p| p.p50_ms),
        ("p90", "#ff7f0e", |p| p.p90_ms),
        ("p99", "#d62728", |p| p.p99_ms),
    ];
    for (i, (name, colour, value)) in series.iter().enumerate() {
        polyline(
            &mut svg,
            points.iter().map(|p| scale_ms(p.offered, value(p))),
            colour,
        );
        let y = TOP + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="12" height="3" fill="{colour}"/><text x="{:.1}" y="{:.1}">{name}</text>"#,
            right + 10.0,
            y - 4.0,
            right + 26.0,
            y
        );
    }
    svg.push_str("</svg>\n");
    svg
}

fn axes(
    svg: &mut String,
    left: f64,
    x_label: &str,
    y_label: &str,
    max_x: f64,
    max_y: f64,
    log: bool,
) {
    let bottom = TOP + PANEL_HEIGHT;
    let _ = writeln!(
        svg,
        r#"<rect x="{left}" y="{TOP}" width="{PANEL_WIDTH}" height="{PANEL_HEIGHT}" fill="none" stroke="black"/>"#
    );
    for i in 0..=4 {
        let fraction = f64::from(i) / 4.0;
        let x = left + fraction * PANEL_WIDTH;
        let _ = writeln!(
            svg,
            r#"<text x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
            bottom + 16.0,
            short(fraction * max_x)
        );
    }
    if log {
        let low = -1.0_f64;
        let decades = (max_y - low).round() as i32;
        for d in 0..=decades {
            let y = bottom - f64::from(d) / f64::from(decades) * PANEL_HEIGHT;
            let value = 10_f64.powf(low + f64::from(d));
            let _ = writeln!(
                svg,
                r##"<line x1="{left}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"##,
                left + PANEL_WIDTH,
                left - 6.0,
                y + 4.0,
                if value < 1.0 {
                    format!("{value:.1}")
                } else {
                    format!("{value:.0}")
                }
            );
        }
    } else {
        for i in 0..=4 {
            let fraction = f64::from(i) / 4.0;
            let y = bottom - fraction * PANEL_HEIGHT;
            let _ = writeln!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="end">{}</text>"#,
                left - 6.0,
                y + 4.0,
                short(fraction * max_y)
            );
        }
    }
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
        left + PANEL_WIDTH / 2.0,
        bottom + 36.0,
        escape(x_label)
    );
    let _ = writeln!(
        svg,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" transform="rotate(-90 {:.1} {:.1})">{}</text>"#,
        left - 50.0,
        TOP + PANEL_HEIGHT / 2.0,
        left - 50.0,
        TOP + PANEL_HEIGHT / 2.0,
        escape(y_label)
    );
}

fn polyline(svg: &mut String, points: impl Iterator<Item = (f64, f64)>, colour: &str) {
    let mut coordinates = String::new();
    let mut dots = String::new();
    for (x, y) in points {
        let _ = write!(coordinates, "{x:.1},{y:.1} ");
        let _ = write!(
            dots,
            r#"<circle cx="{x:.1}" cy="{y:.1}" r="3" fill="{colour}"/>"#
        );
    }
    let _ = writeln!(
        svg,
        r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>{dots}"#,
        coordinates.trim_end()
    );
}

fn short(value: f64) -> String {
    if value >= 1000.0 {
        format!("{:.0}k", value / 1000.0)
    } else {
        format!("{value:.0}")
    }
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_point_and_escapes_the_title() {
        let points: Vec<LadderPoint> = (1..=3)
            .map(|i| LadderPoint {
                offered: 1000.0 * f64::from(i),
                achieved: 1000.0 * f64::from(i),
                p50_ms: 0.3,
                p90_ms: 0.6,
                p99_ms: 2.0 * f64::from(i),
                errors: 0,
            })
            .collect();
        let svg = render("a < b", &points);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("a &lt; b"));
        // 3 points × 4 series.
        assert_eq!(svg.matches("<circle").count(), 12);
    }
}
