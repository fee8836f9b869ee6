use expect_test::expect;
use footfall::{Accuracy, Definition, Figure};

use super::*;
use crate::sites::{Site, SiteSettings};

fn definition(window: Window, metric: Metric, baseline: u64) -> Definition {
    Definition {
        metric,
        window,
        time_zone: "Asia/Ho_Chi_Minh".into(),
        accuracy: if metric == Metric::Visitors {
            Accuracy::Estimate
        } else {
            Accuracy::Exact
        },
        since: None,
        window_minutes: (window == Window::Online).then_some(5),
        baseline,
        as_of: "2026-11-30T03:00:00Z".parse().unwrap(),
    }
}

/// The portal's numbers: online 29, today 1138, week 11,577, total 7,289,126.
fn portal_snapshot(site: &Site) -> Snapshot {
    let mut figures = vec![Figure {
        value: 29,
        definition: definition(Window::Online, Metric::Visitors, 0),
    }];
    for (window, value, baseline) in [
        (Window::Today, 1138, 0),
        (Window::Week, 11_577, 0),
        (Window::Month, 40_002, 0),
        (Window::Total, 7_289_126, 7_000_000),
    ] {
        for metric in Metric::ALL {
            figures.push(Figure {
                value,
                definition: definition(window, metric, baseline),
            });
        }
    }
    Snapshot {
        site: site.id.clone(),
        as_of: "2026-11-30T03:00:00Z".parse().unwrap(),
        figures,
    }
}

fn demo_site() -> Site {
    Site::from_settings(SiteSettings::demo(), "").unwrap()
}

#[test]
fn number_grouping() {
    assert_eq!(format_number(7_289_126, Grouping::Dot), "7.289.126");
    assert_eq!(format_number(7_289_126, Grouping::Comma), "7,289,126");
    assert_eq!(format_number(1138, Grouping::Comma), "1,138");
    assert_eq!(format_number(29, Grouping::Dot), "29");
    assert_eq!(
        format_number(u64::MAX, Grouping::Dot),
        "18.446.744.073.709.551.615"
    );
}

#[test]
fn box_snapshot_vi_comma() {
    let site = demo_site();
    let model = box_model(&site, &portal_snapshot(&site), Lang::Vi, true);
    expect![[r#"
        <main class="ff" data-footfall="demo" aria-labelledby="ff-title">
        <h1 id="ff-title">Thống kê truy cập</h1>
        <ul>
        <li data-window="online" data-metric="visitors">• Đang online: <strong title="Số khách có hoạt động trong 5 phút gần nhất (ước tính)">29</strong><span class="sr"> – Số khách có hoạt động trong 5 phút gần nhất (ước tính)</span></li>
        <li data-window="today" data-metric="visits">• Hôm nay: <strong title="Lượt truy cập từ 00:00 hôm nay (giờ Asia/Ho_Chi_Minh); một lượt mới bắt đầu sau 30 phút không hoạt động">1,138</strong><span class="sr"> – Lượt truy cập từ 00:00 hôm nay (giờ Asia/Ho_Chi_Minh); một lượt mới bắt đầu sau 30 phút không hoạt động</span></li>
        <li data-window="week" data-metric="visits">• Trong tuần: <strong title="Lượt truy cập trong tuần này (giờ Asia/Ho_Chi_Minh); một lượt mới bắt đầu sau 30 phút không hoạt động">11,577</strong><span class="sr"> – Lượt truy cập trong tuần này (giờ Asia/Ho_Chi_Minh); một lượt mới bắt đầu sau 30 phút không hoạt động</span></li>
        <li data-window="total" data-metric="visits">• Tất cả: <strong title="Lượt truy cập từ trước đến nay; một lượt mới bắt đầu sau 30 phút không hoạt động, gồm số liệu của hệ thống cũ">7,289,126</strong><span class="sr"> – Lượt truy cập từ trước đến nay; một lượt mới bắt đầu sau 30 phút không hoạt động, gồm số liệu của hệ thống cũ</span></li>
        </ul>
        </main>
    "#]]
    .assert_eq(&box_html(&model, Grouping::Comma));
}

#[test]
fn box_snapshot_en_dot_invalid_and_trust_slot() {
    let site = demo_site();
    let mut model = box_model(&site, &portal_snapshot(&site), Lang::En, false);
    model.trust = Some(TrustSlot {
        href: "/trust/demo".into(),
        img_src: "/trust/demo/badge.svg".into(),
        alt: "Network trust".into(),
        official_html: None,
    });
    expect![[r#"
        <main class="ff" data-footfall="demo" aria-labelledby="ff-title">
        <h1 id="ff-title">Visitor statistics</h1>
        <ul>
        <li class="bad" data-invalid>not valid on this domain</li>
        </ul>
        <div class="trust"><a href="/trust/demo" target="_blank" rel="noopener"><img src="/trust/demo/badge.svg" alt="Network trust"></a></div>
        </main>
    "#]]
    .assert_eq(&box_html(&model, Grouping::Dot));
    model.valid = true;
    let html = box_html(&model, Grouping::Dot);
    assert!(html.contains(">7.289.126</strong>"), "{html}");
    assert!(html.contains("• All time: "), "{html}");
}

#[test]
fn badge_snapshot() {
    let badge = Badge {
        label: "Hôm nay".into(),
        value: format_number(1138, Grouping::Dot),
        title: "Hôm nay: 1.138 – Lượt truy cập".into(),
        valid: true,
    };
    expect![[r##"
        <svg xmlns="http://www.w3.org/2000/svg" width="101" height="20" role="img" aria-label="Hôm nay: 1.138 – Lượt truy cập"><title>Hôm nay: 1.138 – Lượt truy cập</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="101" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="59" height="20" fill="#555"/><rect x="59" width="42" height="20" fill="#0b5394"/><rect width="101" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="29.5" y="15" fill="#010101" fill-opacity=".3" textLength="49">Hôm nay</text><text x="29.5" y="14" textLength="49">Hôm nay</text><text x="80" y="15" fill="#010101" fill-opacity=".3" textLength="32">1.138</text><text x="80" y="14" textLength="32">1.138</text></g></svg>
    "##]]
    .assert_eq(&badge_svg(&badge));
}

/// The WCAG 2 contrast ratio of two `#rgb` or `#rrggbb` colours.
fn contrast(a: &str, b: &str) -> f64 {
    let luminance = |hex: &str| {
        let hex = hex.trim_start_matches('#');
        let hex: String = if hex.len() == 3 {
            hex.chars().flat_map(|c| [c, c]).collect()
        } else {
            hex.to_owned()
        };
        let channel = |i: usize| {
            let c = f64::from(u8::from_str_radix(&hex[i..i + 2], 16).unwrap()) / 255.0;
            if c <= 0.039_28 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        };
        0.2126 * channel(0) + 0.7152 * channel(2) + 0.0722 * channel(4)
    };
    let (la, lb) = (luminance(a), luminance(b));
    (la.max(lb) + 0.05) / (la.min(lb) + 0.05)
}

#[test]
fn badge_text_has_aa_contrast_on_every_fill() {
    // Known values: black on white is 21:1; shields.io's grey under white text is not AA.
    assert!((contrast("#000", "#fff") - 21.0).abs() < 1e-9);
    assert!(contrast("#9f9f9f", "#fff") < 4.5);
    for fill in [BADGE_LABEL, BADGE_VALUE, BADGE_INVALID] {
        let ratio = contrast(fill, "#fff");
        assert!(ratio >= 4.5, "white on {fill}: {ratio:.2}:1");
    }
    let invalid = badge_svg(&Badge {
        label: "Hôm nay".into(),
        value: invalid_message(Lang::Vi).into(),
        title: "Hôm nay: không hợp lệ".into(),
        valid: false,
    });
    assert!(
        invalid.contains(&format!("fill=\"{BADGE_INVALID}\"")),
        "{invalid}"
    );
}

#[test]
fn iframe_snippet_fits_the_box_without_a_border() {
    // Border 2 + title bar 32 + list padding 12 + 26 a line.
    assert_eq!(embed_height(4), 150);
    assert_eq!(embed_height(1), 72);
    expect![[r#"<iframe src="https://footfall.example.vn/embed/caukee?lang=vi" width="300" height="150" style="border:0" title="Thống kê truy cập"></iframe>"#]]
    .assert_eq(&iframe_snippet(
        "https://footfall.example.vn",
        "caukee",
        Lang::Vi,
        "Thống kê truy cập",
        4,
    ));
    let hostile = iframe_snippet("https://x", "a", Lang::En, "\"><script>", 2);
    assert!(!hostile.contains("<script>"), "{hostile}");
    // The stylesheet's line boxes are the ones the height is computed from.
    let css = embed_css(Theme::Light);
    for rule in [
        "font:14px/22px",
        "line-height:20px;padding:6px 10px",
        ".ff ul{list-style:none;margin:0;padding:6px 10px}.ff li{padding:2px 0}",
        "border:1px solid",
    ] {
        assert!(css.contains(rule), "{rule} in {css}");
    }
}

#[test]
fn vietnamese_letters_are_as_wide_as_their_base() {
    assert_eq!(text_width("Tất cả"), text_width("Tat ca"));
    assert_eq!(text_width("Trong tuần"), text_width("Trong tuan"));
    assert_eq!(text_width("ĐANG ONLINE"), text_width("DANG ONLINE"));
    assert_eq!(text_width("Hôm nay"), text_width("Hom nay"));
    // Wider text, wider badge.
    assert!(text_width("không hợp lệ trên tên miền này") > text_width("7.289.126"));
}

#[test]
fn embed_css_hash_is_the_csp_source_of_its_style() {
    for theme in [Theme::Light, Theme::Dark, Theme::Auto] {
        let css = embed_css(theme);
        assert!(!css.contains("</"), "{css}");
        let hash = csp_hash(&css);
        assert!(
            hash.starts_with("'sha256-") && hash.ends_with('\''),
            "{hash}"
        );
    }
    assert!(embed_css(Theme::Auto).contains("prefers-color-scheme:dark"));
    // Known vector: the hash of the empty string.
    assert_eq!(
        csp_hash(""),
        "'sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU='"
    );
}

#[test]
fn demo_page_names_the_script_and_switches_language() {
    let page = DemoPage {
        lang: Lang::Vi,
        origin: "http://127.0.0.1:8080".into(),
        script_path: "/widget.0123456789abcdef.js".into(),
        integrity: "sha384-abc".into(),
        box_title: "Thống kê truy cập".into(),
        box_lines: 4,
    };
    let html = demo_html(&page);
    assert!(html.contains("<html lang=\"vi\">"));
    // The real snippet: the widget draws the site's trust badge under the box itself.
    assert!(html.contains("<script async src=\"/widget.0123456789abcdef.js\" integrity=\"sha384-abc\" crossorigin=\"anonymous\" data-site=\"demo\" data-lang=\"vi\"></script>"));
    assert!(!html.contains("data-trust"));
    assert!(html.contains("href=\"?lang=en\""));
    assert!(html.contains("BAN TUYÊN GIÁO TỈNH UỶ TRÀ VINH"));
    assert!(html.contains("Địa chỉ: số 4, Nguyễn Thái Học"));
    assert!(
        !html.contains("<img"),
        "no badge of its own: the snippet's is shown"
    );
    // One main landmark, one top-level heading.
    assert_eq!(html.matches("<main").count(), 1);
    assert_eq!(html.matches("<h1>").count(), 1);
    // The snippet is shown, escaped, with the service's origin.
    assert!(html.contains(
        "&lt;script async src=&quot;http://127.0.0.1:8080/widget.0123456789abcdef.js&quot;"
    ));
    assert!(html.contains("script-src http://127.0.0.1:8080; connect-src http://127.0.0.1:8080; img-src http://127.0.0.1:8080"));
    // The iframe snippet, escaped, fitted to the demo's four lines.
    assert!(html.contains(&escape_html(&iframe_snippet(
        "http://127.0.0.1:8080",
        "demo",
        Lang::Vi,
        "Thống kê truy cập",
        4
    ))));
    // Vietnamese text is marked as such, also on the English page.
    assert!(html.contains("<div class=\"agency\" lang=\"vi\">"));
    // No inline script or style attribute: the page's CSP allows neither.
    assert_eq!(html.matches("<script").count(), 1);
    assert!(!html.contains("style=\""));
    let en = demo_html(&DemoPage {
        lang: Lang::En,
        ..page
    });
    assert!(en.contains("data-lang=\"en\""));
    assert!(en.contains("href=\"?lang=vi\""));
    assert!(en.contains("<span lang=\"vi\">Thống kê truy cập</span>"));
    assert!(en.contains("<strong lang=\"vi\">WEBSITE BAN TUYÊN GIÁO"));
}

/// Hostile text a site's operator (or a badge URL) could put in a title, a label or a
/// name, as far as `Site::from_settings` accepts it.
const CORPUS: &[&str] = &[
    "<script>alert(1)</script>",
    "\"><svg onload=alert(1)>",
    "'><img src=x onerror=alert(1)>",
    "</title><script>alert(1)</script>",
    "</style><script>alert(1)</script>",
    "&amp; &lt; &#x3c;",
    "]]><x/>",
    // U+2028 and U+2029 are refused in labels (sites.rs); the JSON encoder's escaping of
    // them is checked below.
    "`${alert(1)}`",
    "Tất cả \"quoted\" 'single'",
];

fn hostile_site(text: &str) -> Site {
    let mut settings = SiteSettings::demo();
    settings.name = text.to_owned();
    settings.footer.title_vi = text.to_owned();
    settings.footer.title_en = text.to_owned();
    for line in &mut settings.footer.lines {
        line.label_vi = Some(text.to_owned());
        line.label_en = Some(text.to_owned());
    }
    Site::from_settings(settings, "").unwrap_or_else(|e| panic!("{text:?} refused: {e}"))
}

fn assert_escaped(output: &str, text: &str, context: &str) {
    let escaped = escape_html(text);
    assert!(
        output.contains(&escaped),
        "{context}: {text:?} not found escaped in {output}"
    );
    if text.contains(['<', '>', '"', '\'']) {
        assert!(
            !output.contains(text),
            "{context}: {text:?} appears unescaped in {output}"
        );
    }
    for tag in ["<script", "<svg onload", "<img", "<x/>"] {
        assert!(
            !output.contains(tag),
            "{context}: {tag} injected by {text:?}"
        );
    }
}

#[test]
fn xss_corpus_is_escaped_in_html_svg_and_js() {
    for text in CORPUS {
        let site = hostile_site(text);
        let snapshot = portal_snapshot(&site);
        for lang in [Lang::Vi, Lang::En] {
            let model = box_model(&site, &snapshot, lang, true);
            let html = embed_html(&model, Grouping::Dot, &embed_css(Theme::Auto));
            assert_escaped(&html, text, "embed html");
            assert_eq!(html.matches("<title>").count(), 1, "{html}");
            assert_eq!(html.matches("</style>").count(), 1, "{html}");
            let invalid = box_html(&box_model(&site, &snapshot, lang, false), Grouping::Dot);
            assert_escaped(&invalid, text, "invalid box");

            let svg = badge_svg(&Badge {
                label: label(&site, Window::Today, lang),
                value: "1.138".into(),
                title: format!("{}: 1.138", label(&site, Window::Today, lang)),
                valid: true,
            });
            assert_escaped(&svg, text, "badge svg");
            assert_eq!(svg.matches("<title>").count(), 1, "{svg}");
        }

        let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
        let json = json_for_script(&footer_json(&site, now, true));
        for raw in ['<', '>', '&', '\u{2028}', '\u{2029}'] {
            assert!(!json.contains(raw), "{raw:?} raw in JS context: {json}");
        }
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back["title"]["vi"], *text);
        assert_eq!(back["labels"]["today"]["en"], *text);
    }
}

#[test]
fn bidi_and_control_characters_never_reach_a_renderer() {
    for text in ["a\u{202e}b", "a\u{2066}b", "a\u{0007}b", "a\nb"] {
        let mut settings = SiteSettings::demo();
        settings.footer.title_vi = text.to_owned();
        assert!(Site::from_settings(settings, "").is_err(), "{text:?}");
    }
}

#[test]
fn trust_slot_is_footfalls_badge_or_the_official_seal_unchanged() {
    let demo = demo_site();
    let own = trust_slot(&demo, Lang::Vi).expect("the demo site has a trust record");
    assert_eq!(own.img_src, "/trust/demo/badge.svg?lang=vi");
    assert_eq!(own.href, "/trust/demo?lang=vi");
    assert_eq!(own.official_html, None);
    let now: jiff::Timestamp = "2026-11-30T03:00:00Z".parse().unwrap();
    let footer = footer_json(&demo, now, true);
    assert_eq!(
        footer["trust"]["en"]["img"],
        "/trust/demo/badge.svg?lang=en"
    );
    // The text alternative says what the image shows: the status on the site's pages,
    // "not verified" elsewhere, "expired" after the last day.
    let alt = |footer: &serde_json::Value, lang: &str| {
        footer["trust"][lang]["alt"].as_str().unwrap().to_owned()
    };
    assert!(
        alt(&footer, "vi").ends_with("\u{2013} hợp lệ"),
        "{}",
        alt(&footer, "vi")
    );
    assert!(
        alt(&footer, "en").ends_with("\u{2013} valid"),
        "{}",
        alt(&footer, "en")
    );
    let elsewhere = footer_json(&demo, now, false);
    assert!(alt(&elsewhere, "vi").ends_with("không xác thực cho tên miền này"));
    let later: jiff::Timestamp = "2037-06-01T03:00:00Z".parse().unwrap();
    assert!(alt(&footer_json(&demo, later, true), "en").ends_with("expired"));

    let mut settings = crate::sites::SiteSettings::demo();
    if let Some(trust) = settings.trust.as_mut() {
        trust.tinnhiemmang = Some(crate::trust::record::TinnhiemmangSettings {
            domain: "tuyengiao.travinh.gov.vn".to_owned(),
            slug: "ban-tuyen-giao-tinh-uy-tra-vinh".to_owned(),
        });
    }
    let sealed = crate::sites::Site::from_settings(settings, "").unwrap();
    let seal = trust_slot(&sealed, Lang::Vi).unwrap();
    let snippet = crate::trust::render::tinnhiemmang_snippet(
        "tuyengiao.travinh.gov.vn",
        "ban-tuyen-giao-tinh-uy-tra-vinh",
    )
    .unwrap();
    assert_eq!(seal.official_html.as_deref(), Some(snippet.as_str()));
    assert_eq!(
        seal.img_src,
        "https://tinnhiemmang.vn/handle_cert?id=tuyengiao.travinh.gov.vn"
    );
    let mut model = box_model(&sealed, &portal_snapshot(&sealed), Lang::Vi, true);
    model.trust = Some(seal);
    let html = box_html(&model, Grouping::Comma);
    assert!(
        html.contains(&snippet),
        "the issuer's snippet is rendered unchanged: {html}"
    );
}
