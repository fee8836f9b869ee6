//! The statistics page and its sign-in form: pure functions from figures and options to
//! HTML, with one stylesheet ([`STYLE`]) that the page's CSP allows by its hash. No
//! script, no `style` attribute, no image from elsewhere.

use std::fmt::Write as _;

use footfall::counter::{DayFigures, Snapshot};
use footfall::{Metric, Window};

use super::chart::{ChartText, Series, chart_svg};
use crate::describe::{self, Lang};
use crate::sites::Site;
use crate::text::escape_markup;
use crate::widget::render::{Grouping, format_number};

/// The ranges the chart offers, in days.
pub const RANGES: [u32; 3] = [30, 90, 365];
/// How many of the busiest days are listed.
const BUSIEST: usize = 10;

/// The page's only stylesheet: light by default, dark when the reader's system asks for
/// it, a print layout, and a single column from 320 px up. Text colours are at least
/// 4.5:1 against their backgrounds in both schemes.
pub const STYLE: &str = "\
:root{color-scheme:light dark}\
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;background:#f6f8fa;color:#1f2328}\
header,main{max-width:60rem;margin:0 auto;padding:1rem}\
header{display:flex;flex-wrap:wrap;gap:.5rem 1.5rem;align-items:baseline;justify-content:space-between}\
h1{font-size:1.5rem;margin:0;line-height:1.25}h2{font-size:1.2rem;margin:0 0 .5rem}h3{font-size:1rem;margin:0}\
p{margin:.25rem 0}.meta,.def,figcaption{color:#57606a;font-size:.875rem}\
a{color:#0b5394}nav{display:flex;gap:1rem;align-items:center;flex-wrap:wrap}\
section{margin:0 0 1.75rem}\
.cards{display:grid;grid-template-columns:repeat(auto-fit,minmax(13rem,1fr));gap:.75rem}\
.card,.panel{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:.75rem 1rem}\
.value{font-size:2rem;font-weight:700;margin:.1rem 0;color:#a11d1d;font-variant-numeric:tabular-nums}\
.others{display:flex;flex-wrap:wrap;gap:.25rem 1rem;margin:.25rem 0 0;font-size:.875rem}.others dt{font-weight:600}.others dd{margin:0}\
.ranges{margin:0 0 .75rem}.ranges a{padding:.3rem .75rem;border:1px solid #d0d7de;border-radius:6px;text-decoration:none;background:#fff}\
.ranges a[aria-current]{background:#0b5394;color:#fff;border-color:#0b5394}\
figure{margin:0}.chart{display:block;width:100%;height:auto;background:#fff;border:1px solid #d0d7de;border-radius:8px}\
.grid line{stroke:#d0d7de}.axis,.dates{color:#57606a}\
.plot{display:grid;grid-template-columns:3.5rem 1fr}.plot .chart{grid-column:2;grid-row:1}.axis{grid-column:1;grid-row:1;position:relative;font-size:.75rem;line-height:1}.axis .yl{position:absolute;right:0;padding-right:6px;transform:translateY(-50%);white-space:nowrap}.dates{grid-column:2;grid-row:2;display:flex;justify-content:space-between;margin:.2rem 1.67% 0 1.11%;font-size:.75rem}.g0{top:95.38%}.g1{top:72.69%}.g2{top:50.00%}.g3{top:27.31%}.g4{top:4.62%}\
.series polyline{fill:none;stroke-width:2}.s-pageviews{stroke:#0b5394;fill:#0b5394}\
.s-visits{stroke:#a11d1d;fill:#a11d1d}.s-visitors{stroke:#1a7f37;fill:#1a7f37}\
.s-visits polyline{stroke-dasharray:8 4}.s-visitors polyline{stroke-dasharray:2 3}\
.legend{list-style:none;padding:0;margin:.5rem 0;display:flex;flex-wrap:wrap;gap:.25rem 1.25rem;color:#1f2328}\
.key{display:inline-block;width:1.75rem;border-top:3px solid;vertical-align:middle;margin-right:.4rem}\
.key.s-pageviews{border-color:#0b5394}.key.s-visits{border-color:#a11d1d;border-top-style:dashed}.key.s-visitors{border-color:#1a7f37;border-top-style:dotted}\
.scroll{overflow-x:auto}table{border-collapse:collapse;width:100%;font-variant-numeric:tabular-nums}\
th,td{padding:.3rem .5rem;border-bottom:1px solid #d0d7de;text-align:right}th:first-child,td:first-child{text-align:left}\
details{margin-top:.75rem}summary{cursor:pointer;color:#0b5394}\
.baseline{background:#fff8c5;color:#3b2300;border-radius:4px;padding:0 .3rem}\
.stale{color:#7d4e00;font-weight:600}\
form{margin:0}label{display:block;font-weight:600;margin:.5rem 0 .25rem}\
input{font:inherit;padding:.45rem .5rem;border:1px solid #6e7781;border-radius:6px;width:100%;max-width:26rem;box-sizing:border-box;background:#fff;color:#1f2328}\
button{font:inherit;margin-top:.75rem;padding:.45rem 1rem;border-radius:6px;border:1px solid #0b5394;background:#0b5394;color:#fff;cursor:pointer}\
.link{margin:0;padding:0;border:0;background:none;color:#0b5394;text-decoration:underline}\
.error{color:#a11d1d;font-weight:600}\
@media (max-width:40rem){.value{font-size:1.75rem}}\
@media (prefers-color-scheme:dark){\
body{background:#0d1117;color:#e6edf3}.meta,.def,figcaption{color:#9da7b3}a,summary,.link{color:#79c0ff}\
.card,.panel,.chart,.ranges a,input{background:#161b22;border-color:#30363d;color:#e6edf3}\
.ranges a{color:#79c0ff}.ranges a[aria-current]{background:#79c0ff;color:#0d1117;border-color:#79c0ff}\
.value,.error{color:#ffa198}.legend{color:#e6edf3}.grid line{stroke:#30363d}.axis,.dates{color:#9da7b3}th,td{border-color:#30363d}\
.s-pageviews{stroke:#79c0ff;fill:#79c0ff}.s-visits{stroke:#ffa198;fill:#ffa198}.s-visitors{stroke:#7ee787;fill:#7ee787}\
.key.s-pageviews{border-color:#79c0ff}.key.s-visits{border-color:#ffa198}.key.s-visitors{border-color:#7ee787}\
.baseline{background:#3b2300;color:#f8e3a1}.stale{color:#e3b341}\
button{background:#79c0ff;border-color:#79c0ff;color:#0d1117}}\
@media print{body{background:#fff;color:#000;font-size:11pt}nav,form,.ranges,details{display:none}\
.card,.panel,.chart{border-color:#888;break-inside:avoid}header,main{max-width:none;padding:0}section{break-inside:avoid}}";

/// Everything the statistics page shows.
#[derive(Debug)]
pub struct PageModel<'a> {
    /// The site.
    pub site: &'a Site,
    /// Its figures now, as the counts API serves them.
    pub snapshot: &'a Snapshot,
    /// True when the figures could not be refreshed and may be old.
    pub stale: bool,
    /// The days of the chart, oldest first.
    pub days: &'a [DayFigures],
    /// The chart's range in days (one of `ranges`).
    pub range: u32,
    /// The ranges offered (those within the site's retention).
    pub ranges: &'a [u32],
    /// The language.
    pub lang: Lang,
    /// True on the internal listener after signing in: the page offers signing out.
    pub signed_in: bool,
}

fn t(lang: Lang, vi: &'static str, en: &'static str) -> &'static str {
    match lang {
        Lang::Vi => vi,
        Lang::En => en,
    }
}

fn metric_name(metric: Metric, lang: Lang) -> &'static str {
    match metric {
        Metric::Pageviews => t(lang, "Lượt xem trang", "Page views"),
        Metric::Visits => t(lang, "Lượt truy cập", "Visits"),
        Metric::Visitors => t(lang, "Số khách", "Visitors"),
    }
}

fn series_metric(series: Series) -> Metric {
    match series {
        Series::Pageviews => Metric::Pageviews,
        Series::Visits => Metric::Visits,
        Series::Visitors => Metric::Visitors,
    }
}

/// A date as the page writes it, in a `<time>` element.
fn date_html(date: jiff::civil::Date, lang: Lang) -> String {
    let shown = match lang {
        Lang::Vi => date.strftime("%d/%m/%Y").to_string(),
        Lang::En => date.to_string(),
    };
    format!("<time datetime=\"{date}\">{shown}</time>")
}

/// The page title (shared by the sign-in form).
fn title(site: &str, lang: Lang) -> String {
    format!(
        "{} — {}",
        t(lang, "Thống kê truy cập", "Visitor statistics"),
        escape_markup(site)
    )
}

/// A link to the same page in the other language, keeping `query`.
fn other_language(lang: Lang, query: &str) -> String {
    let (code, name) = match lang {
        Lang::Vi => ("en", "English"),
        Lang::En => ("vi", "Tiếng Việt"),
    };
    format!("<a href=\"?{query}lang={code}\" hreflang=\"{code}\" lang=\"{code}\">{name}</a>")
}

fn head(lang: Lang, title: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{code}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <meta name=\"referrer\" content=\"no-referrer\">\n<meta name=\"robots\" content=\"noindex\">\n\
         <title>{title}</title>\n<style>{STYLE}</style>\n</head>\n",
        code = lang.code()
    )
}

fn sign_out_form(site: &str, lang: Lang) -> String {
    format!(
        "<form method=\"post\" action=\"/stats/{site}/sign-out\"><button class=\"link\" type=\"submit\">{}</button></form>",
        t(lang, "Đăng xuất", "Sign out")
    )
}

/// The statistics page.
pub fn stats_html(model: &PageModel<'_>) -> String {
    let PageModel {
        site,
        snapshot,
        stale,
        days,
        range,
        ranges,
        lang,
        signed_in,
    } = *model;
    let grouping = Grouping::parse(&site.settings.footer.number_format);
    let number = |n: u64| format_number(n, grouping);
    let id = escape_markup(site.id.as_str());
    let name = if site.settings.name.is_empty() {
        site.id.to_string()
    } else {
        site.settings.name.clone()
    };
    let zone = site.rules.calendar().time_zone_name();
    let mut html = head(lang, &title(&name, lang));
    html.push_str("<body>\n<header>\n<div>\n");
    let _ = write!(
        html,
        "<h1>{}</h1>\n<p class=\"meta\">{} <code>{id}</code> · {} {} · {} {}</p>\n",
        title(&name, lang),
        t(lang, "Trang", "Site"),
        t(lang, "giờ", "time zone"),
        escape_markup(zone),
        t(lang, "số liệu lúc", "figures as of"),
        as_of(snapshot, zone, lang),
    );
    if stale {
        let _ = write!(
            html,
            "<p class=\"stale\">{}</p>",
            t(
                lang,
                "Không đọc được số liệu mới: đây là số liệu gần nhất.",
                "The store did not answer: these are the last figures known."
            )
        );
    }
    html.push_str("</div>\n<nav>");
    html.push_str(&other_language(lang, &format!("days={range}&amp;")));
    if signed_in {
        html.push_str(&sign_out_form(&id, lang));
    }
    html.push_str("</nav>\n</header>\n<main>\n");

    // The four windows of the footer, each with what it counts.
    let _ = write!(
        html,
        "<section aria-labelledby=\"windows\">\n<h2 id=\"windows\">{}</h2>\n<div class=\"cards\">\n",
        t(
            lang,
            "Bốn con số của hộp thống kê",
            "The four figures of the footer box"
        )
    );
    for window in [Window::Online, Window::Today, Window::Week, Window::Total] {
        html.push_str(&card(site, snapshot, window, lang, &number));
    }
    html.push_str("</div>\n</section>\n");

    // The daily chart, its range links, its legend and its table.
    let _ = write!(
        html,
        "<section aria-labelledby=\"daily\">\n<h2 id=\"daily\">{}</h2>\n<nav class=\"ranges\" aria-label=\"{}\">",
        t(lang, "Theo ngày", "Day by day"),
        t(lang, "Khoảng thời gian", "Range"),
    );
    for &days_option in ranges {
        let current = if days_option == range {
            " aria-current=\"page\""
        } else {
            ""
        };
        let _ = write!(
            html,
            "<a href=\"?days={days_option}&amp;lang={code}\"{current}>{days_option} {}</a> ",
            t(lang, "ngày", "days"),
            code = lang.code()
        );
    }
    html.push_str("</nav>\n<figure>\n");
    let chart_text = ChartText {
        title: format!(
            "{} — {range} {}",
            t(
                lang,
                "Lượt xem trang, lượt truy cập và số khách mỗi ngày",
                "Page views, visits and visitors per day"
            ),
            t(lang, "ngày gần nhất", "most recent days"),
        ),
        desc: chart_description(days, lang, &number),
        id: "daily-chart",
    };
    html.push_str(&chart_svg(days, &chart_text, number));
    html.push_str("\n<figcaption><ul class=\"legend\">");
    for series in Series::ALL {
        let _ = write!(
            html,
            "<li><span class=\"key {}\" aria-hidden=\"true\"></span>{}</li>",
            series.class(),
            metric_name(series_metric(series), lang)
        );
    }
    let _ = write!(
        html,
        "</ul>{}</figcaption>\n</figure>\n<details>\n<summary>{}</summary>\n<div class=\"scroll\">\n",
        escape_markup(&format!(
            "{} {zone}.",
            t(lang, "Mỗi ngày tính theo giờ", "Each day in the time zone")
        )),
        t(lang, "Bảng số liệu theo ngày", "The figures as a table"),
    );
    html.push_str(&days_table(
        days.iter().rev(),
        "days",
        t(
            lang,
            "Số liệu theo ngày, mới nhất trước",
            "Figures by day, newest first",
        ),
        lang,
        &number,
    ));
    html.push_str("</div>\n</details>\n</section>\n");

    // The busiest days of the range.
    let mut busiest: Vec<&DayFigures> = days.iter().filter(|d| d.pageviews > 0).collect();
    busiest.sort_by_key(|d| std::cmp::Reverse((d.visits, d.pageviews, d.date)));
    busiest.truncate(BUSIEST);
    let _ = write!(
        html,
        "<section aria-labelledby=\"busiest\">\n<h2 id=\"busiest\">{} ({range} {})</h2>\n",
        t(lang, "Những ngày đông nhất", "The busiest days"),
        t(lang, "ngày gần nhất", "most recent days"),
    );
    if busiest.is_empty() {
        let _ = write!(
            html,
            "<p>{}</p>",
            t(
                lang,
                "Chưa có lượt xem nào trong khoảng này.",
                "No page views in this range yet."
            )
        );
    } else {
        html.push_str("<div class=\"scroll panel\">\n");
        html.push_str(&days_table(
            busiest.into_iter(),
            "busiest-days",
            t(lang, "Xếp theo lượt truy cập", "By visits"),
            lang,
            &number,
        ));
        html.push_str("</div>\n");
    }
    html.push_str("</section>\n");

    // All time, with the imported baseline set apart.
    html.push_str(&all_time(snapshot, lang, &number));
    html.push_str("</main>\n</body>\n</html>\n");
    html
}

fn as_of(snapshot: &Snapshot, zone: &str, lang: Lang) -> String {
    let Ok(tz) = jiff::tz::TimeZone::get(zone) else {
        return snapshot.as_of.to_string();
    };
    let at = snapshot.as_of.to_zoned_datetime(tz);
    let shown = match lang {
        Lang::Vi => at.strftime("%H:%M %d/%m/%Y").to_string(),
        Lang::En => at.strftime("%Y-%m-%d %H:%M").to_string(),
    };
    format!("<time datetime=\"{}\">{shown}</time>", snapshot.as_of)
}

/// One window's card: the footer's figure large, its definition, the other metrics.
fn card(
    site: &Site,
    snapshot: &Snapshot,
    window: Window,
    lang: Lang,
    number: &impl Fn(u64) -> String,
) -> String {
    let main = if window == Window::Online {
        Metric::Visitors
    } else {
        site.lines
            .iter()
            .find(|(w, _)| *w == window)
            .map_or(Metric::Visits, |(_, m)| *m)
    };
    let mut html = String::from("<article class=\"card\">");
    let _ = write!(
        html,
        "<h3>{}</h3><p class=\"value\">{}</p><p class=\"def\">{}</p>",
        describe::label(window, main, lang),
        number(snapshot.value(window, main)),
        snapshot
            .get(window, main)
            .map(|f| escape_markup(&describe::describe(
                &f.definition,
                site.settings.visit_timeout_minutes,
                lang
            )))
            .unwrap_or_default(),
    );
    if window != Window::Online {
        html.push_str("<dl class=\"others\">");
        for metric in [Metric::Visits, Metric::Visitors, Metric::Pageviews] {
            if metric != main {
                let _ = write!(
                    html,
                    "<div><dt>{}</dt><dd>{}</dd></div>",
                    metric_name(metric, lang),
                    number(snapshot.value(window, metric))
                );
            }
        }
        html.push_str("</dl>");
    }
    html.push_str("</article>\n");
    html
}

/// One sentence of what the chart shows, for its `<desc>`: the range, the totals and the
/// busiest day.
fn chart_description(days: &[DayFigures], lang: Lang, number: &impl Fn(u64) -> String) -> String {
    let (Some(first), Some(last)) = (days.first(), days.last()) else {
        return t(lang, "Chưa có số liệu.", "No figures yet.").to_owned();
    };
    let sum = |series: Series| -> u64 { days.iter().map(|d| series.of(d)).sum() };
    let peak = days.iter().max_by_key(|d| (d.visits, d.pageviews));
    let mut text = match lang {
        Lang::Vi => format!(
            "Từ {} đến {}: tổng {} lượt xem trang, {} lượt truy cập.",
            first.date.strftime("%d/%m/%Y"),
            last.date.strftime("%d/%m/%Y"),
            number(sum(Series::Pageviews)),
            number(sum(Series::Visits)),
        ),
        Lang::En => format!(
            "From {} to {}: {} page views and {} visits in all.",
            first.date,
            last.date,
            number(sum(Series::Pageviews)),
            number(sum(Series::Visits)),
        ),
    };
    if let Some(peak) = peak.filter(|d| d.visits > 0) {
        let _ = match lang {
            Lang::Vi => write!(
                text,
                " Ngày đông nhất: {} với {} lượt truy cập. Bảng số liệu ở dưới.",
                peak.date.strftime("%d/%m/%Y"),
                number(peak.visits)
            ),
            Lang::En => write!(
                text,
                " The busiest day: {} with {} visits. The table below has every figure.",
                peak.date,
                number(peak.visits)
            ),
        };
    }
    text
}

/// A table of days: date, page views, visits, visitors; each row and cell marked with its
/// date and metric (`data-date`, `data-metric`).
fn days_table<'d>(
    days: impl Iterator<Item = &'d DayFigures>,
    id: &str,
    caption: &str,
    lang: Lang,
    number: &impl Fn(u64) -> String,
) -> String {
    let mut html = format!(
        "<table id=\"{id}\"><caption class=\"meta\">{caption}</caption><thead><tr><th scope=\"col\">{}</th>",
        t(lang, "Ngày", "Date")
    );
    for series in Series::ALL {
        let _ = write!(
            html,
            "<th scope=\"col\">{}</th>",
            metric_name(series_metric(series), lang)
        );
    }
    html.push_str("</tr></thead><tbody>");
    for day in days {
        let _ = write!(
            html,
            "<tr data-date=\"{}\"><th scope=\"row\">{}</th>",
            day.date,
            date_html(day.date, lang)
        );
        for series in Series::ALL {
            let _ = write!(
                html,
                "<td data-metric=\"{}\">{}</td>",
                series_metric(series).name(),
                number(series.of(day))
            );
        }
        html.push_str("</tr>");
    }
    html.push_str("</tbody></table>\n");
    html
}

/// The all-time totals, each with the imported baseline it includes marked apart.
fn all_time(snapshot: &Snapshot, lang: Lang, number: &impl Fn(u64) -> String) -> String {
    let mut html = format!(
        "<section aria-labelledby=\"all-time\">\n<h2 id=\"all-time\">{}</h2>\n<div class=\"panel\"><dl class=\"totals\">",
        t(lang, "Tổng từ trước đến nay", "All time")
    );
    for metric in [Metric::Visits, Metric::Pageviews, Metric::Visitors] {
        let Some(figure) = snapshot.get(Window::Total, metric) else {
            continue;
        };
        let baseline = figure.definition.baseline;
        let counted = figure.value.saturating_sub(baseline);
        let _ = write!(
            html,
            "<dt>{}</dt><dd data-metric=\"{}\"><strong>{}</strong>",
            metric_name(metric, lang),
            metric.name(),
            number(figure.value)
        );
        if baseline > 0 {
            let _ = write!(
                html,
                " = <span class=\"baseline\" data-baseline=\"{baseline}\">{} {}</span> + {} {}",
                number(baseline),
                t(
                    lang,
                    "nhập từ hệ thống cũ",
                    "imported from the previous counter"
                ),
                number(counted),
                t(lang, "đếm bởi footfall", "counted by footfall"),
            );
        }
        html.push_str("</dd>");
    }
    html.push_str("</dl></div>\n</section>\n");
    html
}

/// The sign-in form of the internal listener: a token of the site, posted to
/// `/stats/{site}/sign-in`. `message` says why the form is shown again.
pub fn sign_in_html(site: &str, lang: Lang, message: Option<&str>) -> String {
    let page_title = title(site, lang);
    let site = escape_markup(site);
    let mut html = head(lang, &page_title);
    let _ = write!(
        html,
        "<body>\n<header><div><h1>{title}</h1><p class=\"meta\">{intro}</p></div><nav>{other}</nav></header>\n<main>\n<div class=\"panel\">\n",
        title = page_title,
        intro = t(
            lang,
            "Trang riêng của người quản trị trang web: đăng nhập bằng mã truy cập (token) của trang.",
            "The site owner's page: sign in with a token of the site."
        ),
        other = other_language(lang, ""),
    );
    if let Some(message) = message {
        let _ = write!(
            html,
            "<p class=\"error\" role=\"alert\">{}</p>",
            escape_markup(message)
        );
    }
    let _ = write!(
        html,
        "<form method=\"post\" action=\"/stats/{site}/sign-in?lang={code}\">\n\
         <label for=\"token\">{label}</label>\n\
         <input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"off\" required spellcheck=\"false\">\n\
         <button type=\"submit\">{button}</button>\n</form>\n\
         <p class=\"meta\">{note}</p>\n</div>\n</main>\n</body>\n</html>\n",
        code = lang.code(),
        label = t(lang, "Mã truy cập", "Token"),
        button = t(lang, "Đăng nhập", "Sign in"),
        note = t(
            lang,
            "Phiên đăng nhập hết hạn sau 12 giờ. Mã không được lưu lại.",
            "The session ends after 12 hours. The token is not kept."
        ),
    );
    html
}

/// Why the sign-in form is shown again, in `lang`.
pub fn refusal(reason: Refusal, lang: Lang) -> &'static str {
    match reason {
        Refusal::WrongToken => t(
            lang,
            "Mã truy cập không đúng.",
            "That token is not accepted.",
        ),
        Refusal::OtherSite => t(
            lang,
            "Mã này không quản lý trang này: hãy dùng mã của chính trang.",
            "That token does not manage this site: use a token of this site.",
        ),
        Refusal::Expired => t(
            lang,
            "Phiên đăng nhập đã hết hạn: hãy đăng nhập lại.",
            "The session has ended: sign in again.",
        ),
    }
}

/// Why a request did not get the page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// No such token.
    WrongToken,
    /// A token of other sites.
    OtherSite,
    /// A session that ended (or whose token was removed).
    Expired,
}

#[cfg(test)]
mod tests {
    use expect_test::expect_file;
    use footfall::store::MemoryStore;

    use super::*;

    /// The stylesheet places the chart's labels where the drawing's geometry puts its
    /// gridlines and plot (the rules are derived from it in `chart.rs`).
    #[test]
    fn the_stylesheet_places_the_chart_labels_by_its_geometry() {
        let rules = super::super::chart::label_css();
        assert!(STYLE.contains(&rules), "STYLE lacks:\n{rules}");
    }
    use crate::sites::SiteSettings;

    const HOSTILE: &str = "<script>alert(1)</script>\"'&";

    async fn page_of(settings: SiteSettings, lang: Lang) -> String {
        let site = Site::from_settings(settings, "").unwrap();
        let now: jiff::Timestamp = "2026-03-02T03:00:00Z".parse().unwrap();
        let store = MemoryStore::new();
        let snapshot = footfall::counter::snapshot(&store, &site.id, &site.rules, now)
            .await
            .unwrap();
        let days = footfall::counter::history(&store, &site.id, &site.rules, 3, now)
            .await
            .unwrap();
        stats_html(&PageModel {
            site: &site,
            snapshot: &snapshot,
            stale: true,
            days: &days,
            range: 30,
            ranges: &RANGES,
            lang,
            signed_in: true,
        })
    }

    #[tokio::test]
    async fn configured_text_is_escaped_and_nothing_runs() {
        let mut settings = SiteSettings::new("caukee", &["caukee.vn"]);
        settings.name = HOSTILE.to_owned();
        settings.footer.lines[1].label_vi = Some(HOSTILE.to_owned());
        for lang in [Lang::Vi, Lang::En] {
            let html = page_of(settings.clone(), lang).await;
            assert!(!html.contains("<script"), "{html}");
            assert!(
                html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{html}"
            );
            assert!(!html.contains("style=\""), "{html}");
        }
        let form = sign_in_html("caukee", Lang::Vi, Some(HOSTILE));
        assert!(!form.contains("<script"), "{form}");
        assert!(
            form.contains("<title>Thống kê truy cập — caukee</title>"),
            "{form}"
        );
    }

    #[tokio::test]
    async fn the_page_and_the_form_look_as_reviewed() {
        let mut settings = SiteSettings::new("caukee", &["caukee.vn"]);
        settings.name = "Cầu Kè".to_owned();
        // The stylesheet is reviewed where it is written, not in every snapshot.
        let without_style = |html: String| html.replace(STYLE, "/* STYLE */");
        expect_file!["snapshots/page.en.html"]
            .assert_eq(&without_style(page_of(settings, Lang::En).await));
        expect_file!["snapshots/sign-in.vi.html"].assert_eq(&without_style(sign_in_html(
            "caukee",
            Lang::Vi,
            Some(refusal(Refusal::Expired, Lang::Vi)),
        )));
    }
}
