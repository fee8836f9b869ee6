//! The daily chart: an inline SVG of page views, visits and visitors per day, a pure
//! function of the days. Colours come from the page's stylesheet (classes, no `style`
//! attribute, so the page's hash-only CSP allows it), and each series also has its own
//! dash pattern, so the lines stay apart without colour and in print.
//!
//! The axis labels are HTML beside the drawing, placed by the stylesheet's classes at
//! the gridlines' heights: text inside an SVG has no background a checker (or a reader's
//! high-contrast mode) can resolve, and HTML text keeps the page's size on a phone.

use std::fmt::Write as _;

use footfall::counter::DayFigures;

use crate::text::escape_markup;

/// The drawing's coordinate space; the SVG scales to its container's width.
const WIDTH: u32 = 720;
const HEIGHT: u32 = 260;
/// Margins of the plot inside the drawing (the labels are HTML beside it).
const LEFT: u32 = 8;
const RIGHT: u32 = 12;
const TOP: u32 = 12;
const BOTTOM: u32 = 12;
/// Up to this many days each day gets a dot too (a single day is then still seen).
const DOTS_UP_TO: usize = 31;

/// One series of the chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Series {
    /// Page views.
    Pageviews,
    /// Visits.
    Visits,
    /// Visitors.
    Visitors,
}

impl Series {
    /// The three, in drawing order.
    pub const ALL: [Series; 3] = [Series::Pageviews, Series::Visits, Series::Visitors];

    /// The class the stylesheet colours.
    pub fn class(self) -> &'static str {
        match self {
            Series::Pageviews => "s-pageviews",
            Series::Visits => "s-visits",
            Series::Visitors => "s-visitors",
        }
    }

    /// The day's value of this series.
    pub fn of(self, day: &DayFigures) -> u64 {
        match self {
            Series::Pageviews => day.pageviews,
            Series::Visits => day.visits,
            Series::Visitors => day.visitors,
        }
    }
}

/// The texts of a chart, in the page's language.
#[derive(Clone, Debug)]
pub struct ChartText {
    /// The SVG's `<title>`.
    pub title: String,
    /// The SVG's `<desc>`: what it shows, in a sentence or two.
    pub desc: String,
    /// The id prefix of `title` and `desc` (unique in the page).
    pub id: &'static str,
}

/// The smallest "round" number (1, 2 or 5 times a power of ten) at least `max`, so the
/// gridlines fall on readable values.
fn nice_ceiling(max: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for factor in [1, 2, 5] {
            let candidate = step.saturating_mul(factor);
            if candidate >= max {
                return candidate.max(1);
            }
        }
        if step > u64::MAX / 10 {
            return u64::MAX;
        }
        step *= 10;
    }
}

/// The SVG of `days` (oldest first); `label` formats a value as the page shows numbers.
pub fn chart_svg(days: &[DayFigures], text: &ChartText, label: impl Fn(u64) -> String) -> String {
    let max = days
        .iter()
        .flat_map(|day| Series::ALL.map(|series| series.of(day)))
        .max()
        .unwrap_or(0);
    // Four gridline steps of a round size, the top one at or above every value.
    let step = nice_ceiling(max.div_ceil(4).max(1));
    let top = step.saturating_mul(4);
    let plot_w = f64::from(WIDTH - LEFT - RIGHT);
    let plot_h = f64::from(HEIGHT - TOP - BOTTOM);
    let x = |index: usize| -> f64 {
        if days.len() <= 1 {
            f64::from(LEFT) + plot_w / 2.0
        } else {
            f64::from(LEFT) + plot_w * index as f64 / (days.len() - 1) as f64
        }
    };
    let y = |value: u64| -> f64 { f64::from(TOP) + plot_h * (1.0 - value as f64 / top as f64) };
    let mut svg = String::with_capacity(2048 + days.len() * 60);
    svg.push_str(r#"<div class="plot">"#);
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-title {id}-desc" xmlns="http://www.w3.org/2000/svg"><title id="{id}-title">{title}</title><desc id="{id}-desc">{desc}</desc>"#,
        id = text.id,
        title = escape_markup(&text.title),
        desc = escape_markup(&text.desc),
    );
    let mut labels = String::new();
    svg.push_str(r#"<g class="grid" aria-hidden="true">"#);
    for line in 0..=4u64 {
        let value = step.saturating_mul(line);
        let at = y(value);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{}" y1="{at:.1}" y2="{at:.1}"/>"#,
            WIDTH - RIGHT,
        );
        // `g{line}`: the stylesheet's top for the gridline (see GRIDLINE_TOPS).
        let _ = write!(
            labels,
            r#"<span class="yl g{line}">{}</span>"#,
            escape_markup(&label(value)),
        );
    }
    svg.push_str("</g>");
    for series in Series::ALL {
        let _ = write!(svg, r#"<g class="series {}">"#, series.class());
        if days.len() > 1 {
            svg.push_str(r#"<polyline fill="none" points=""#);
            for (index, day) in days.iter().enumerate() {
                let _ = write!(svg, "{:.1},{:.1} ", x(index), y(series.of(day)));
            }
            svg.push_str(r#""/>"#);
        }
        if days.len() <= DOTS_UP_TO {
            for (index, day) in days.iter().enumerate() {
                let _ = write!(
                    svg,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3"/>"#,
                    x(index),
                    y(series.of(day))
                );
            }
        }
        svg.push_str("</g>");
    }
    svg.push_str("</svg>");
    // The labels are what the drawing's title, description and the data table say
    // already: hidden from assistive technology, shown to the eye.
    let _ = write!(
        svg,
        r#"<div class="axis" aria-hidden="true">{labels}</div>"#
    );
    if let (Some(first), Some(last)) = (days.first(), days.last()) {
        let _ = write!(
            svg,
            r#"<div class="dates" aria-hidden="true"><span>{first}</span>"#,
            first = first.date
        );
        if days.len() > 1 {
            let _ = write!(svg, "<span>{last}</span>", last = last.date);
        }
        svg.push_str("</div>");
    }
    svg.push_str("</div>");
    svg
}

/// The stylesheet rules placing the value labels (the page's stylesheet holds them, and
/// a test checks it does): `.g{k}` at the height of the gridline
/// of `k` steps, in percent of the drawing's height, right-aligned at the plot's left
/// edge; the dates under the plot's ends. Derived from the drawing's geometry so the two
/// cannot drift apart.
#[cfg(test)]
pub fn label_css() -> String {
    let plot_h = f64::from(HEIGHT - TOP - BOTTOM);
    // A grid: the value labels in a column of their own left of the drawing (so no
    // text lies over it), the dates under the plot's ends.
    let mut css = format!(
        ".plot{{display:grid;grid-template-columns:3.5rem 1fr}}.plot .chart{{grid-column:2;grid-row:1}}\
.axis{{grid-column:1;grid-row:1;position:relative;font-size:.75rem;line-height:1}}.axis .yl{{position:absolute;right:0;padding-right:6px;transform:translateY(-50%);white-space:nowrap}}\
.dates{{grid-column:2;grid-row:2;display:flex;justify-content:space-between;margin:.2rem {:.2}% 0 {:.2}%;font-size:.75rem}}",
        100.0 * f64::from(RIGHT) / f64::from(WIDTH),
        100.0 * f64::from(LEFT) / f64::from(WIDTH),
    );
    for line in 0..=4u32 {
        let at = f64::from(TOP) + plot_h * (1.0 - f64::from(line) / 4.0);
        let _ = write!(
            css,
            ".g{line}{{top:{:.2}%}}",
            100.0 * at / f64::from(HEIGHT)
        );
    }
    css
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, pageviews: u64, visits: u64, visitors: u64) -> DayFigures {
        DayFigures {
            date: date.parse().unwrap(),
            visits,
            visitors,
            pageviews,
        }
    }

    #[test]
    fn gridlines_fall_on_round_values() {
        assert_eq!(nice_ceiling(0), 1);
        assert_eq!(nice_ceiling(4), 5);
        assert_eq!(nice_ceiling(7), 10);
        assert_eq!(nice_ceiling(1_138), 2_000);
        assert_eq!(nice_ceiling(11_577), 20_000);
        assert_eq!(nice_ceiling(u64::MAX), u64::MAX);
    }

    #[test]
    fn the_chart_has_a_title_a_description_and_each_series() {
        let days = [day("2026-03-01", 10, 4, 3), day("2026-03-02", 20, 8, 5)];
        let text = ChartText {
            title: "Daily <figures>".into(),
            desc: "Page views & visits".into(),
            id: "daily",
        };
        let svg = chart_svg(&days, &text, |n| n.to_string());
        assert!(
            svg.contains(r#"aria-labelledby="daily-title daily-desc""#),
            "{svg}"
        );
        assert!(
            svg.contains("<title id=\"daily-title\">Daily &lt;figures&gt;</title>"),
            "{svg}"
        );
        assert!(svg.contains("Page views &amp; visits"), "{svg}");
        for series in Series::ALL {
            assert!(svg.contains(series.class()), "{svg}");
        }
        // Gridlines every 5 up to 20 (the largest value), the highest point on the top one.
        for value in [0, 5, 10, 15, 20] {
            assert!(svg.contains(&format!(">{value}</span>")), "{svg}");
        }
        assert!(svg.contains(&format!("{:.1},{:.1}", 708.0, 12.0)), "{svg}");
        assert!(
            !svg.contains("style="),
            "the page's CSP allows no style attribute"
        );
        assert!(
            !svg.contains("<text"),
            "labels are HTML, beside the drawing"
        );

        assert!(svg.contains("2026-03-01") && svg.contains("2026-03-02"));
    }
}
