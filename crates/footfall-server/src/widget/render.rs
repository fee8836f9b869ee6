//! Pure renderers of the footer box, the counter badge and the demo page: numbers and
//! options in, strings out, no HTTP types, so every output is snapshot-tested.
//!
//! Every piece of configured or requested text (titles, labels, names, the `label`
//! query of a badge) goes through [`escape_html`] in HTML and SVG and through
//! [`json_for_script`] when it travels as JSON, so no configuration can inject markup.

use std::fmt::Write as _;

use base64::Engine as _;
use footfall::counter::Snapshot;
use footfall::{Metric, Window};
use num_format::{Locale, ToFormattedString};
use serde_json::json;
use sha2::{Digest, Sha256};

use crate::describe::{self, Lang};
use crate::sites::Site;
use crate::text::{escape_html, width_base};
use crate::trust::render::{Verdict, status_text, tinnhiemmang_snippet};

/// The message shown instead of numbers on a page whose hostname is not the site's.
pub fn invalid_message(lang: Lang) -> &'static str {
    match lang {
        Lang::Vi => "không hợp lệ trên tên miền này",
        Lang::En => "not valid on this domain",
    }
}

/// Colours of the box.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Theme {
    /// Dark text on white.
    Light,
    /// Light text on a dark background.
    Dark,
    /// Follows the reader's `prefers-color-scheme`.
    Auto,
}

impl Theme {
    /// Parses `light`, `dark` or `auto`; anything else is light.
    pub fn parse(name: Option<&str>) -> Theme {
        match name {
            Some("dark") => Theme::Dark,
            Some("auto") => Theme::Auto,
            _ => Theme::Light,
        }
    }
}

/// How thousands are grouped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Grouping {
    /// `7,289,126`: what the portal shows today.
    Comma,
    /// `7.289.126`: CLDR Vietnamese.
    Dot,
}

impl Grouping {
    /// `dot` or `comma` (the settings' `number_format`); anything else is `comma`.
    pub fn parse(name: &str) -> Grouping {
        if name == "dot" {
            Grouping::Dot
        } else {
            Grouping::Comma
        }
    }
}

/// Formats a count with the grouping's separator.
pub fn format_number(n: u64, grouping: Grouping) -> String {
    match grouping {
        Grouping::Comma => n.to_formatted_string(&Locale::en),
        Grouping::Dot => n.to_formatted_string(&Locale::vi),
    }
}

/// One line of the box.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Line {
    /// The window.
    pub window: Window,
    /// The metric shown.
    pub metric: Metric,
    /// The label, e.g. "Hôm nay".
    pub label: String,
    /// The figure.
    pub value: u64,
    /// What the figure counts, one sentence.
    pub description: String,
}

/// A linked image in the box's trust-badge slot (filled by the trust module).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustSlot {
    /// Where the badge links to.
    pub href: String,
    /// The badge image.
    pub img_src: String,
    /// The image's text alternative.
    pub alt: String,
    /// For an official third-party seal, the issuer's own snippet, rendered unchanged
    /// where HTML is rendered (footfall never re-hosts another issuer's image).
    pub official_html: Option<String>,
}

/// The trust badge of `site`, if it has a trust record: the official tinnhiemmang.vn
/// seal when configured (linking to the issuer and its image), otherwise footfall's own
/// badge and verification page (paths on this service).
pub fn trust_slot(site: &Site, lang: Lang) -> Option<TrustSlot> {
    let trust = site.settings.trust.as_ref()?;
    if let Some(seal) = &trust.tinnhiemmang {
        let html = tinnhiemmang_snippet(&seal.domain, &seal.slug)?;
        return Some(TrustSlot {
            href: format!("https://tinnhiemmang.vn/danh-ba-tin-nhiem/{}", seal.slug),
            img_src: format!("https://tinnhiemmang.vn/handle_cert?id={}", seal.domain),
            alt: "Chung nhan Tin Nhiem Mang".to_owned(),
            official_html: Some(html),
        });
    }
    let id = site.id.as_str();
    Some(TrustSlot {
        href: format!("/trust/{id}?lang={}", lang.code()),
        img_src: format!("/trust/{id}/badge.svg?lang={}", lang.code()),
        alt: match lang {
            Lang::Vi => format!("Chứng nhận tín nhiệm: {}", trust.issuer),
            Lang::En => format!("Trust certificate: {}", trust.issuer),
        },
        official_html: None,
    })
}

/// Everything the box shows, already in one language.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BoxModel {
    /// The site id.
    pub site: String,
    /// The language of the texts.
    pub lang: Lang,
    /// The title, e.g. "Thống kê truy cập".
    pub title: String,
    /// The lines; ignored when `valid` is false.
    pub lines: Vec<Line>,
    /// False on a page whose hostname is not registered for the site.
    pub valid: bool,
    /// The trust badge under the lines, if any.
    pub trust: Option<TrustSlot>,
}

/// The label of a window on `site`: the configured one, else the portal's standard one.
pub fn label(site: &Site, window: Window, lang: Lang) -> String {
    let configured = site
        .settings
        .footer
        .lines
        .iter()
        .find(|line| line.window == window.name())
        .and_then(|line| match lang {
            Lang::Vi => line.label_vi.clone(),
            Lang::En => line.label_en.clone(),
        });
    configured.unwrap_or_else(|| describe::label(window, Metric::Visits, lang).to_owned())
}

/// The box title of `site`.
pub fn title(site: &Site, lang: Lang) -> String {
    match lang {
        Lang::Vi => site.settings.footer.title_vi.clone(),
        Lang::En => site.settings.footer.title_en.clone(),
    }
}

/// The box of `site` with the figures of `snapshot`, its configured lines in order.
pub fn box_model(site: &Site, snapshot: &Snapshot, lang: Lang, valid: bool) -> BoxModel {
    let timeout = site.settings.visit_timeout_minutes;
    let lines = site
        .lines
        .iter()
        .filter_map(|&(window, metric)| {
            let figure = snapshot
                .figures
                .iter()
                .find(|f| f.definition.window == window && f.definition.metric == metric)?;
            Some(Line {
                window,
                metric,
                label: label(site, window, lang),
                value: figure.value,
                description: describe::describe(&figure.definition, timeout, lang),
            })
        })
        .collect();
    BoxModel {
        site: site.id.as_str().to_owned(),
        lang,
        title: title(site, lang),
        lines,
        valid,
        trust: None,
    }
}

/// What `widget.js` needs besides the counts: title, lines, labels (the configured ones
/// or the portal's) and the grouping, in both languages; and the trust badge, whose text
/// alternative says what the image shows, the record's status at `now` on one of the
/// site's pages (`on_site`), "not verified for this domain" elsewhere, so a screen
/// reader hears whether the site is certified.
pub fn footer_json(site: &Site, now: jiff::Timestamp, on_site: bool) -> serde_json::Value {
    let labels: serde_json::Map<String, serde_json::Value> = Window::ALL
        .into_iter()
        .map(|window| {
            (
                window.name().to_owned(),
                json!({ "vi": label(site, window, Lang::Vi), "en": label(site, window, Lang::En) }),
            )
        })
        .collect();
    let lines: Vec<[&str; 2]> = site
        .lines
        .iter()
        .map(|(window, metric)| [window.name(), metric.name()])
        .collect();
    // Per language, since the badge and its text alternative follow the box's language.
    let trust: serde_json::Map<String, serde_json::Value> = [Lang::Vi, Lang::En]
        .into_iter()
        .filter_map(|lang| {
            let slot = trust_slot(site, lang)?;
            let alt = match (&slot.official_html, Site::trust_record(site)) {
                (None, Some(Ok(record))) => {
                    let verdict = if on_site {
                        Verdict::Status(record.status_at(now))
                    } else {
                        Verdict::NotForThisDomain
                    };
                    format!("{} \u{2013} {}", slot.alt, status_text(verdict, lang))
                }
                _ => slot.alt,
            };
            let entry = json!({ "href": slot.href, "img": slot.img_src, "alt": alt });
            Some((lang.code().to_owned(), entry))
        })
        .collect();
    json!({
        "title": { "vi": title(site, Lang::Vi), "en": title(site, Lang::En) },
        "number_format": site.settings.footer.number_format,
        "lines": lines,
        "labels": labels,
        "trust": trust,
    })
}

/// Serialises JSON so that it is also safe inside an HTML `<script>` and in a JavaScript
/// string: `<`, `>`, `&`, U+2028 and U+2029 become `\uXXXX` escapes, which JSON reads back
/// as the same characters.
pub fn json_for_script(value: &serde_json::Value) -> String {
    let raw = value.to_string();
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// The `'sha256-…'` CSP source of an inline `<style>` body.
pub fn csp_hash(content: &str) -> String {
    let digest = Sha256::digest(content.as_bytes());
    format!(
        "'sha256-{}'",
        base64::engine::general_purpose::STANDARD.encode(digest)
    )
}

const LIGHT_COLOURS: &str = ".ff{background:#fff;color:#1f2328;border-color:#d0d7de}.ff h1{background:#0b5394}.ff strong{color:#a11d1d}";
const DARK_COLOURS: &str = ".ff{background:#161b22;color:#e6edf3;border-color:#30363d}.ff h1{background:#1f4f82}.ff strong{color:#ffa198}";

/// The embed page's line boxes, in pixels: the border (1 px above and below), the title
/// bar (a 20 px line and 6 px of padding above and below), the list's padding (6 px above
/// and below) and each line (a 22 px line and 2 px of padding above and below). Fixed in
/// pixels rather than relative to the font, so the page is as tall whatever font the
/// reader's system substitutes for Arial, and an iframe can be given its exact height.
const EMBED_BORDERS: u32 = 2;
const EMBED_TITLE: u32 = 32;
const EMBED_LIST_PADDING: u32 = 12;
const EMBED_LINE: u32 = 26;

/// The embed page's stylesheet for `theme`; the page's CSP allows it by hash.
pub fn embed_css(theme: Theme) -> String {
    let base = "body{margin:0;background:transparent;font:14px/22px Arial,Helvetica,sans-serif}\
.ff{border:1px solid;border-radius:4px;max-width:300px;overflow:hidden;box-sizing:border-box}\
.ff h1{margin:0;color:#fff;font-size:13px;line-height:20px;padding:6px 10px;text-transform:uppercase}\
.ff ul{list-style:none;margin:0;padding:6px 10px}.ff li{padding:2px 0}.ff .bad{font-style:italic}\
.ff .trust{padding:0 10px 8px}\
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}";
    match theme {
        Theme::Light => format!("{base}{LIGHT_COLOURS}"),
        Theme::Dark => format!("{base}{DARK_COLOURS}"),
        Theme::Auto => {
            format!("{base}{LIGHT_COLOURS}@media (prefers-color-scheme:dark){{{DARK_COLOURS}}}")
        }
    }
}

/// The height in pixels of the embed page showing `lines` lines and no seal: what an
/// iframe needs to show the box with no scroll bar and no empty space.
pub fn embed_height(lines: usize) -> u32 {
    let lines = u32::try_from(lines).unwrap_or(u32::MAX);
    EMBED_BORDERS + EMBED_TITLE + EMBED_LIST_PADDING + EMBED_LINE.saturating_mul(lines)
}

/// The `<iframe>` a page without JavaScript embeds the box with: as wide as the box and
/// exactly as tall (for `lines` lines), no border (a browser draws an inset one by
/// default), and a `title` (the frame's accessible name). `origin` is the service's,
/// e.g. `https://footfall.example.vn`.
pub fn iframe_snippet(origin: &str, site: &str, lang: Lang, title: &str, lines: usize) -> String {
    format!(
        "<iframe src=\"{origin}/embed/{site}?lang={lang}\" width=\"300\" height=\"{height}\" style=\"border:0\" title=\"{title}\"></iframe>",
        origin = escape_html(origin),
        site = escape_html(site),
        lang = lang.code(),
        height = embed_height(lines),
        title = escape_html(title),
    )
}

/// The box as the embed page's `<main>`, named by its title, the page's one heading (so
/// in an iframe it is a landmark of its own beside the host page's `<main>`); each figure
/// followed by what it counts, for screen readers (`.sr`, not drawn; the same text is the
/// tooltip). It never changes once drawn, so it is no live region.
pub fn box_html(model: &BoxModel, grouping: Grouping) -> String {
    let title = escape_html(&model.title);
    let mut out = String::new();
    let _ = write!(
        out,
        "<main class=\"ff\" data-footfall=\"{site}\" aria-labelledby=\"ff-title\">\n<h1 id=\"ff-title\">{title}</h1>\n<ul>\n",
        site = escape_html(&model.site),
    );
    if model.valid {
        for line in &model.lines {
            let value = format_number(line.value, grouping);
            let about = escape_html(&line.description);
            let _ = writeln!(
                out,
                "<li data-window=\"{window}\" data-metric=\"{metric}\">\u{2022} {label}: <strong title=\"{about}\">{value}</strong><span class=\"sr\"> \u{2013} {about}</span></li>",
                window = line.window.name(),
                metric = line.metric.name(),
                label = escape_html(&line.label),
            );
        }
    } else {
        let _ = writeln!(
            out,
            "<li class=\"bad\" data-invalid>{}</li>",
            invalid_message(model.lang)
        );
    }
    out.push_str("</ul>\n");
    if let Some(TrustSlot {
        official_html: Some(html),
        ..
    }) = &model.trust
    {
        // The issuer's snippet, unchanged (validated when it was built).
        let _ = writeln!(out, "<div class=\"trust\">{html}</div>");
    } else if let Some(trust) = &model.trust {
        let _ = writeln!(
            out,
            "<div class=\"trust\"><a href=\"{}\" target=\"_blank\" rel=\"noopener\"><img src=\"{}\" alt=\"{}\"></a></div>",
            escape_html(&trust.href),
            escape_html(&trust.img_src),
            escape_html(&trust.alt),
        );
    }
    out.push_str("</main>\n");
    out
}

/// The embed page: the box alone, no script, styled by `css` (allowed by its hash).
pub fn embed_html(model: &BoxModel, grouping: Grouping, css: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"{lang}\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"robots\" content=\"noindex\">\n<title>{title}</title>\n<style>{css}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        lang = model.lang.code(),
        title = escape_html(&model.title),
        body = box_html(model, grouping),
    )
}

/// A counter badge's content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Badge {
    /// The left part, e.g. "Hôm nay".
    pub label: String,
    /// The right part: the formatted number, or the not-valid message.
    pub value: String,
    /// The accessible name and tooltip: what the number counts.
    pub title: String,
    /// False when the value is the not-valid message (drawn grey).
    pub valid: bool,
}

/// The width of `text` in Verdana 11 px, estimated per character as shields.io does, so
/// the two parts fit their text. A precomposed Vietnamese letter is as wide as its base
/// letter (the marks sit above or below it).
pub fn text_width(text: &str) -> f64 {
    text.chars().map(|c| char_width(width_base(c))).sum()
}

fn char_width(c: char) -> f64 {
    match c {
        ' ' => 3.9,
        'i' | 'l' | 'j' | '\'' | '|' | '!' => 3.1,
        '.' | ',' | ':' | ';' => 4.0,
        'f' | 't' | 'I' | 'r' => 4.5,
        'm' => 10.7,
        'w' => 8.9,
        'M' | 'W' => 10.9,
        '0'..='9' => 7.0,
        'a'..='z' => 6.6,
        'A'..='Z' => 7.6,
        // Wide symbols and CJK take about two digits; anything else about one.
        c if c as u32 >= 0x2E80 => 11.0,
        _ => 7.0,
    }
}

/// The badge's fills under its white 11 px text, each at least 4.5:1 against white (WCAG
/// AA for text of that size): the label, a valid value, and the not-valid message.
pub const BADGE_LABEL: &str = "#555";
/// See [`BADGE_LABEL`].
pub const BADGE_VALUE: &str = "#0b5394";
/// See [`BADGE_LABEL`]; darker than shields.io's light grey, which is 2.6:1.
pub const BADGE_INVALID: &str = "#707070";

/// A shields-style two-part badge: grey label, coloured value.
pub fn badge_svg(badge: &Badge) -> String {
    // 5 px of padding each side of each text, rounded to whole pixels.
    let label_w = (text_width(&badge.label) + 10.0).round();
    let value_w = (text_width(&badge.value) + 10.0).round();
    let width = label_w + value_w;
    let colour = if badge.valid {
        BADGE_VALUE
    } else {
        BADGE_INVALID
    };
    let label = escape_html(&badge.label);
    let value = escape_html(&badge.value);
    let title = escape_html(&badge.title);
    let text = |x: f64, text_w: f64, content: &str| {
        format!(
            "<text x=\"{x}\" y=\"15\" fill=\"#010101\" fill-opacity=\".3\" textLength=\"{text_w}\">{content}</text><text x=\"{x}\" y=\"14\" textLength=\"{text_w}\">{content}</text>"
        )
    };
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"20\" role=\"img\" aria-label=\"{title}\">\
<title>{title}</title>\
<linearGradient id=\"s\" x2=\"0\" y2=\"100%\"><stop offset=\"0\" stop-color=\"#bbb\" stop-opacity=\".1\"/><stop offset=\"1\" stop-opacity=\".1\"/></linearGradient>\
<clipPath id=\"r\"><rect width=\"{width}\" height=\"20\" rx=\"3\" fill=\"#fff\"/></clipPath>\
<g clip-path=\"url(#r)\"><rect width=\"{label_w}\" height=\"20\" fill=\"{BADGE_LABEL}\"/><rect x=\"{label_w}\" width=\"{value_w}\" height=\"20\" fill=\"{colour}\"/><rect width=\"{width}\" height=\"20\" fill=\"url(#s)\"/></g>\
<g fill=\"#fff\" text-anchor=\"middle\" font-family=\"Verdana,Geneva,DejaVu Sans,sans-serif\" font-size=\"11\">{label_text}{value_text}</g></svg>\n",
        label_text = text(label_w / 2.0, label_w - 10.0, &label),
        value_text = text(label_w + value_w / 2.0, value_w - 10.0, &value),
    )
}

/// What the demo page shows around the live widget.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DemoPage {
    /// The page's language (the widget's `data-lang`).
    pub lang: Lang,
    /// The service's origin as the browser sees it, e.g. `http://127.0.0.1:8080`.
    pub origin: String,
    /// The versioned script path, `/widget.<hash>.js`.
    pub script_path: String,
    /// The script's SRI value, `sha384-…`.
    pub integrity: String,
    /// The demo box's title in the page's language (the iframe snippet's `title`).
    pub box_title: String,
    /// How many lines the demo box shows (the iframe snippet's height).
    pub box_lines: usize,
}

const DEMO_CSS: &str = "body{margin:0;font:15px/1.55 Arial,Helvetica,sans-serif;color:#1f2328;background:#eef2f6}\
header{background:#0b5394;color:#fff;padding:14px 24px;display:flex;justify-content:space-between;align-items:center}\
header a{color:#fff}main,.web-team{max-width:960px;margin:0 auto;padding:16px 24px}main h1{font-size:20px}\
.portal{background:#fff;border-top:4px solid #a11d1d;padding:20px 24px;display:flex;flex-wrap:wrap;gap:32px;max-width:960px;margin:0 auto}\
.agency{flex:1 1 360px}.agency p{margin:4px 0}.agency .org{font-weight:bold;color:#a11d1d;text-transform:uppercase}\
.stats{flex:0 1 300px}.trust{display:block;margin-top:12px}\
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:10px;overflow:auto;white-space:pre-wrap;word-break:break-all}";

/// The demo page's stylesheet (allowed by its hash in the page's CSP).
pub fn demo_css() -> &'static str {
    DEMO_CSS
}

/// The demo page: the portal's footer with the live widget, and what a web team pastes.
pub fn demo_html(page: &DemoPage) -> String {
    let vi = page.lang == Lang::Vi;
    let t = |vi_text: &'static str, en_text: &'static str| if vi { vi_text } else { en_text };
    let script_path = escape_html(&page.script_path);
    let integrity = escape_html(&page.integrity);
    let lang = page.lang.code();
    let snippet = format!(
        "<script async src=\"{o}{p}\" integrity=\"{i}\" crossorigin=\"anonymous\" data-site=\"demo\" data-lang=\"{lang}\"></script>",
        o = page.origin,
        p = page.script_path,
        i = page.integrity,
    );
    let csp = format!(
        "script-src {o}; connect-src {o}; img-src {o}",
        o = page.origin
    );
    let iframe = iframe_snippet(
        &page.origin,
        "demo",
        page.lang,
        &page.box_title,
        page.box_lines,
    );
    let (switch_href, switch_lang, switch_text) = if vi {
        ("?lang=en", "en", "English")
    } else {
        ("?lang=vi", "vi", "Tiếng Việt")
    };
    format!(
        "<!doctype html>
<html lang=\"{lang}\">
<head>
<meta charset=\"utf-8\">
<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">
<title>{page_title}</title>
<style>{css}</style>
</head>
<body>
<header><strong lang=\"vi\">WEBSITE BAN TUYÊN GIÁO TỈNH ỦY TRÀ VINH</strong> <span>{demo_note}</span> <a href=\"{switch_href}\" hreflang=\"{switch_lang}\" lang=\"{switch_lang}\">{switch_text}</a></header>
<main>
<h1>{page_title}</h1>
<p>{intro}</p>
</main>
<footer class=\"portal\">
<div class=\"agency\" lang=\"vi\">
<p class=\"org\">BAN TUYÊN GIÁO TỈNH UỶ TRÀ VINH</p>
<p>Trưởng Ban biên tập: Trần Quốc Tuấn</p>
<p>Địa chỉ: số 4, Nguyễn Thái Học, Khóm 4, Phường 1, Thành phố Trà Vinh</p>
<p>Điện thoại: 02943.853574</p>
<p>Email: btgtutravinh@travinh.gov.vn</p>
<p>Website: tuyengiao.travinh.gov.vn</p>
<p>Ghi rõ nguồn \"Trang tin điện tử Ban Tuyên giáo Tỉnh ủy Trà Vinh\" khi phát hành lại thông tin từ website này.</p>
</div>
<div class=\"stats\" id=\"stats\">
<script async src=\"{script_path}\" integrity=\"{integrity}\" crossorigin=\"anonymous\" data-site=\"demo\" data-lang=\"{lang}\"></script>
</div>
</footer>
<section class=\"web-team\" aria-labelledby=\"web-team\">
<h2 id=\"web-team\">{paste_heading}</h2>
<p>{paste_intro}</p>
<pre><code>{snippet}</code></pre>
<p>{sri_text} <code>{integrity}</code> (<a href=\"/widget.json\">/widget.json</a>)</p>
<p>{csp_intro}</p>
<pre><code>{csp}</code></pre>
<p>{other_forms} <a href=\"/embed/demo?lang={lang}\">/embed/demo</a> · <a href=\"/badge/demo/today.svg?lang={lang}\">/badge/demo/today.svg</a> · <a href=\"/api/v1/sites/demo/counts\">/api/v1/sites/demo/counts</a></p>
<p>{iframe_intro}</p>
<pre><code>{iframe}</code></pre>
</section>
</body>
</html>
",
        css = DEMO_CSS,
        page_title = t(
            "footfall: Thống kê truy cập (trang trình diễn)",
            "footfall: visitor statistics (demo page)"
        ),
        demo_note = t("(trang trình diễn footfall)", "(footfall demo page)"),
        intro = t(
            "Chân trang dưới đây tái hiện chân trang của cổng thông tin: hộp \u{201c}Thống kê truy cập\u{201d} do widget.js thật vẽ ra, mỗi lần tải trang được tính một lượt xem.",
            "The footer below reproduces the portal's: the \u{201c}<span lang=\"vi\">Thống kê truy cập</span>\u{201d} box is drawn by the real widget.js, and every load of this page counts one page view."
        ),
        paste_heading = t("Dành cho đội web", "For web teams"),
        paste_intro = t(
            "Dán đoạn mã này vào chân trang, ở chỗ hộp thống kê cần hiện, và thay demo trong data-site bằng mã trang của bạn. Huy hiệu tín nhiệm của trang (nếu có) hiện ngay dưới hộp, như ở trên:",
            "Paste this into the footer, where the box should appear, with your site's id in place of demo in data-site. The site's trust badge (if it has one) shows under the box, as above:"
        ),
        snippet = escape_html(&snippet),
        sri_text = t("Mã băm SRI:", "SRI hash:"),
        csp_intro = t(
            "Nếu trang có Content-Security-Policy, thêm nguồn của dịch vụ:",
            "If the page has a Content-Security-Policy, add the service's origin:"
        ),
        csp = escape_html(&csp),
        other_forms = t(
            "Không dùng JavaScript:",
            "Without JavaScript:"
        ),
        iframe_intro = t(
            "Khung nhúng vừa khít hộp (không viền, không khoảng trống; thêm frame-src với nguồn của dịch vụ nếu trang có Content-Security-Policy):",
            "The box in an iframe that fits it (no border, no empty space; add frame-src with the service's origin if the page has a Content-Security-Policy):"
        ),
        iframe = escape_html(&iframe),
    )
}

#[cfg(test)]
mod tests;
