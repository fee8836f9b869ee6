//! Pure renderers: the badge SVG, the verification page and the tinnhiemmang.vn snippet,
//! from data to strings, with no HTTP types, so they snapshot-test.
//!
//! Every text that comes from configuration or from a request passes through
//! [`escape_markup`], which is correct in HTML and SVG (XML) text and in quoted
//! attribute values alike.

use jiff::Timestamp;
use jiff::tz::TimeZone;

use super::record::{LiveStatus, TrustRecord, valid_slug};
use crate::describe::Lang;
use crate::setting::normalize_hostname;
use crate::text::{escape_markup, width_base};

/// What a badge shows: the record's live status, or that the page showing it is not
/// one of the certified hostnames (which wins over every status).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The requesting page is certified; this is the record's live status.
    Status(LiveStatus),
    /// The requesting page's hostname is not certified, or unknown.
    NotForThisDomain,
}

/// The status in words, lowercase as on shields-style badges.
pub fn status_text(verdict: Verdict, lang: Lang) -> &'static str {
    match (lang, verdict) {
        (Lang::Vi, Verdict::Status(LiveStatus::Valid)) => "hợp lệ",
        (Lang::Vi, Verdict::Status(LiveStatus::NotYetValid)) => "chưa có hiệu lực",
        (Lang::Vi, Verdict::Status(LiveStatus::Expired)) => "hết hạn",
        (Lang::Vi, Verdict::Status(LiveStatus::Suspended)) => "tạm đình chỉ",
        (Lang::Vi, Verdict::Status(LiveStatus::Revoked)) => "đã thu hồi",
        (Lang::Vi, Verdict::NotForThisDomain) => "không xác thực cho tên miền này",
        (Lang::En, Verdict::Status(LiveStatus::Valid)) => "valid",
        (Lang::En, Verdict::Status(LiveStatus::NotYetValid)) => "not yet valid",
        (Lang::En, Verdict::Status(LiveStatus::Expired)) => "expired",
        (Lang::En, Verdict::Status(LiveStatus::Suspended)) => "suspended",
        (Lang::En, Verdict::Status(LiveStatus::Revoked)) => "revoked",
        (Lang::En, Verdict::NotForThisDomain) => "not verified for this domain",
    }
}

/// The fill of the status half of the badge. Every colour carries white 11 px text at
/// a contrast of at least 4.5:1, and no two verdicts share a hue: green valid, grey not
/// yet valid, amber expired, orange suspended, red revoked, purple wrong domain.
pub fn status_colour(verdict: Verdict) -> &'static str {
    match verdict {
        Verdict::Status(LiveStatus::Valid) => "#2e7d32",
        Verdict::Status(LiveStatus::NotYetValid) => "#58646e",
        Verdict::Status(LiveStatus::Expired) => "#8a6a00",
        Verdict::Status(LiveStatus::Suspended) => "#b04a00",
        Verdict::Status(LiveStatus::Revoked) => "#c62828",
        Verdict::NotForThisDomain => "#6a1b9a",
    }
}

/// Advance width of `c` in thousandths of an em, by character class, from Verdana's
/// metrics (the badge font; DejaVu Sans, its usual fallback, is within a few percent).
/// Classes rather than a per-glyph table: the estimate only has to be close, because the
/// badge also sets `textLength`, which fits the rendered text to the estimated width in
/// any font. Each class takes about the widest common glyph in it, so text is squeezed
/// a little rather than clipped.
fn char_width_milli_em(c: char) -> u32 {
    let c = width_base(c);
    match c {
        // Combining marks (text written decomposed) take no advance of their own.
        '\u{0300}'..='\u{036f}' => 0,
        ' ' => 350,
        'i' | 'j' | 'l' | 'I' | '!' | '|' | '.' | ',' | ':' | ';' | '\'' | '`' => 330,
        'f' | 'r' | 't' | '(' | ')' | '[' | ']' | '{' | '}' | '/' | '\\' | '-' | '"' => 450,
        'm' | 'w' | 'M' | 'W' | '%' | '@' => 1000,
        '0'..='9' => 640,
        'a'..='z' => 610,
        'A'..='Z' => 740,
        c if c.is_ascii() => 800,
        // Anything else (other scripts, symbols): a full em, wide rather than clipped.
        _ => 1000,
    }
}

/// The badge's font size in pixels.
const FONT_PX: u32 = 11;
/// Padding on each side of a badge text, in hundredths of a pixel (6 px).
const PAD: u32 = 600;
/// The longest text drawn on a badge, in characters; longer ones end in "…". Keeps a
/// badge a badge, whatever an issuer's name.
const MAX_BADGE_CHARS: usize = 48;

/// The estimated rendered width of `text` at the badge font, in tenths of a pixel
/// (integers, so the SVG's numbers are exact and snapshots stable).
pub fn text_width_tenths(text: &str) -> u32 {
    let milli_em: u32 = text.chars().map(char_width_milli_em).sum();
    // milli-em × px/em = milli-px; /100 = tenths, rounded half up.
    (milli_em * FONT_PX + 50) / 100
}

/// Hundredths of a pixel as an SVG number: `5205` → `52.05`, `5200` → `52`.
fn px(hundredths: u32) -> String {
    let (whole, frac) = (hundredths / 100, hundredths % 100);
    match frac {
        0 => whole.to_string(),
        f if f % 10 == 0 => format!("{whole}.{}", f / 10),
        f => format!("{whole}.{f:02}"),
    }
}

fn shorten(text: &str) -> String {
    if text.chars().count() <= MAX_BADGE_CHARS {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(MAX_BADGE_CHARS - 1).collect();
    short.push('…');
    short
}

/// The accessible name of a badge: what it says, and which certificate it is about.
fn badge_label(record: &TrustRecord, site_name: &str, verdict: Verdict, lang: Lang) -> String {
    let status = status_text(verdict, lang);
    let level = if record.level.is_empty() {
        String::new()
    } else {
        format!(", {}", record.level)
    };
    match lang {
        Lang::Vi => format!(
            "{}: {status} (chứng nhận {}{level} cho {site_name})",
            record.issuer, record.certificate_id
        ),
        Lang::En => format!(
            "{}: {status} (certificate {}{level} for {site_name})",
            record.issuer, record.certificate_id
        ),
    }
}

/// The badge: issuer on the left, status on the right in its colour, with `role="img"`,
/// a `<title>` and an `aria-label` naming the certificate. `site_name` is the site's name
/// (or id). Widths come from [`text_width_tenths`].
pub fn badge_svg(record: &TrustRecord, site_name: &str, verdict: Verdict, lang: Lang) -> String {
    let left = shorten(&record.issuer);
    let right = status_text(verdict, lang);
    // Everything in hundredths of a pixel.
    let left_text = text_width_tenths(&left) * 10;
    let right_text = text_width_tenths(right) * 10;
    let left_w = left_text + 2 * PAD;
    let right_w = right_text + 2 * PAD;
    let label = escape_markup(&badge_label(record, site_name, verdict, lang));
    let colour = status_colour(verdict);
    let width = px(left_w + right_w);
    let left_x = px(left_w / 2);
    let right_x = px(left_w + right_w / 2);
    let (left_width, right_width) = (px(left_w), px(right_w));
    let (left_text, right_text) = (px(left_text), px(right_text));
    let left = escape_markup(&left);
    let right = escape_markup(right);
    let lang = lang.code();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="20" viewBox="0 0 {width} 20" role="img" aria-label="{label}" xml:lang="{lang}">
<title>{label}</title>
<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>
<clipPath id="r"><rect width="{width}" height="20" rx="3" fill="#fff"/></clipPath>
<g clip-path="url(#r)"><rect width="{left_width}" height="20" fill="#555"/><rect x="{left_width}" width="{right_width}" height="20" fill="{colour}"/><rect width="{width}" height="20" fill="url(#s)"/></g>
<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11" aria-hidden="true">
<text x="{left_x}" y="14" textLength="{left_text}" lengthAdjust="spacingAndGlyphs">{left}</text>
<text x="{right_x}" y="14" textLength="{right_text}" lengthAdjust="spacingAndGlyphs">{right}</text>
</g>
</svg>
"##
    )
}

/// The official tinnhiemmang.vn seal, exactly as the issuer publishes it for embedding:
/// a link to the site's directory page around the issuer's own image (footfall never
/// re-hosts it). `None` unless `domain` is a lowercase hostname and `slug` is
/// `[a-z0-9-]+`, so nothing in them can leave the URL they are put in.
pub fn tinnhiemmang_snippet(domain: &str, slug: &str) -> Option<String> {
    if normalize_hostname(domain).as_deref() != Some(domain) || !valid_slug(slug) {
        return None;
    }
    Some(format!(
        r#"<a href="https://tinnhiemmang.vn/danh-ba-tin-nhiem/{slug}" title="Chung nhan Tin Nhiem Mang" target="_blank"><img src="https://tinnhiemmang.vn/handle_cert?id={domain}" width="150px" height="auto" alt="Chung nhan Tin Nhiem Mang"></a>"#
    ))
}

/// The verification page's only stylesheet; the page's CSP allows exactly this text by
/// its SHA-256 hash, so no other style and no script can run.
pub const PAGE_STYLE: &str = "body{font:16px/1.5 system-ui,sans-serif;margin:0;background:#f5f6f7;color:#1b1f23}\
main{max-width:44rem;margin:2rem auto;padding:1.5rem;background:#fff;border-radius:8px}\
h1{font-size:1.4rem;margin-top:0}.status{padding:.75rem 1rem;border-radius:6px;color:#fff;font-weight:600}\
.valid{background:#2e7d32}.not_yet_valid{background:#58646e}.expired{background:#8a6a00}\
.suspended{background:#b04a00}.revoked{background:#c62828}.wrong-domain{background:#6a1b9a}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0}\
code{word-break:break-all;font-size:.85rem}footer{margin-top:1.5rem;font-size:.9rem}";

/// Everything the verification page shows.
#[derive(Clone, Debug)]
pub struct PageInput<'a> {
    /// The site id.
    pub site_id: &'a str,
    /// The site's name (may be empty).
    pub site_name: &'a str,
    /// The record.
    pub record: &'a TrustRecord,
    /// Its live status now.
    pub status: LiveStatus,
    /// The site's time zone, for dates.
    pub time_zone: &'a str,
    /// The credential's key id.
    pub key_id: &'a str,
    /// The credential's fingerprint (SHA-256 of its payload, hex).
    pub fingerprint: &'a str,
    /// When that credential was issued.
    pub issued_at: Timestamp,
    /// The hostname the visitor came from (`Referer`, else `Origin`), if any.
    pub visitor_host: Option<&'a str>,
    /// The language.
    pub lang: Lang,
}

fn format_instant(instant: Timestamp, time_zone: &str, lang: Lang) -> String {
    let Ok(zone) = TimeZone::get(time_zone) else {
        return instant.to_string();
    };
    let zoned = instant.to_zoned_datetime(zone);
    let pattern = match lang {
        Lang::Vi => "%H:%M ngày %d/%m/%Y",
        Lang::En => "%Y-%m-%d %H:%M",
    };
    format!("{} ({time_zone})", zoned.strftime(pattern))
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The verification page (HTML, no script, one hashed stylesheet).
pub fn verification_page(input: &PageInput<'_>) -> String {
    let PageInput {
        site_id,
        site_name,
        record,
        status,
        time_zone,
        key_id,
        fingerprint,
        issued_at,
        visitor_host,
        lang,
    } = *input;
    let e = escape_markup;
    let vi = lang == Lang::Vi;
    let t = |vi_text: &'static str, en_text: &'static str| if vi { vi_text } else { en_text };
    let certified = visitor_host.is_some_and(|host| record.certifies_host(host));
    let display_name = if site_name.is_empty() {
        site_id
    } else {
        site_name
    };
    let status_words = capitalized(status_text(Verdict::Status(status), lang));
    let (banner_class, banner) = match visitor_host {
        Some(_) if !certified => (
            "wrong-domain",
            capitalized(status_text(Verdict::NotForThisDomain, lang)),
        ),
        _ => (status.name(), status_words.clone()),
    };
    let visitor = match visitor_host {
        Some(host) if certified => format!(
            "<code>{}</code> — {}",
            e(host),
            t(
                "được chứng nhận trong hồ sơ này",
                "certified by this record"
            )
        ),
        Some(host) => format!(
            "<code>{}</code> — {}",
            e(host),
            t(
                "KHÔNG có trong hồ sơ này: huy hiệu trên trang đó không được xác thực",
                "NOT in this record: a badge shown on that page is not verified"
            )
        ),
        None => t(
            "không rõ (trình duyệt không gửi Referer)",
            "unknown (the browser sent no Referer)",
        )
        .to_owned(),
    };
    let hostnames: String = record
        .hostnames
        .iter()
        .map(|host| format!("<li><code>{}</code></li>", e(host)))
        .collect();
    let level = if record.level.is_empty() {
        "—".to_owned()
    } else {
        e(&record.level)
    };
    let other_lang = match lang {
        Lang::Vi => "<a href=\"?lang=en\" hreflang=\"en\" lang=\"en\">English</a>",
        Lang::En => "<a href=\"?lang=vi\" hreflang=\"vi\" lang=\"vi\">Tiếng Việt</a>",
    };
    let site_path = e(site_id);
    format!(
        r#"<!doctype html>
<html lang="{lang_code}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{title} — {name}</title>
<style>{PAGE_STYLE}</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p class="status {banner_class}">{banner}</p>
<dl>
<dt>{l_site}</dt><dd>{name} (<code>{site_path}</code>)</dd>
<dt>{l_issuer}</dt><dd>{issuer}</dd>
<dt>{l_certificate}</dt><dd>{certificate}</dd>
<dt>{l_level}</dt><dd>{level}</dd>
<dt>{l_hostnames}</dt><dd><ul>{hostnames}</ul></dd>
<dt>{l_issued}</dt><dd>{issued}</dd>
<dt>{l_expires}</dt><dd>{expires}</dd>
<dt>{l_status}</dt><dd>{status_words}</dd>
<dt>{l_visitor}</dt><dd>{visitor}</dd>
</dl>
<h2>{l_credential}</h2>
<p>{l_credential_text}</p>
<dl>
<dt>{l_key}</dt><dd><code>{key_id}</code></dd>
<dt>SHA-256</dt><dd><code>{fingerprint}</code></dd>
<dt>{l_issued_at}</dt><dd>{issued_at}</dd>
</dl>
<p><a href="/trust/{site_path}.json">/trust/{site_path}.json</a> · <a href="/.well-known/footfall-trust-keys">/.well-known/footfall-trust-keys</a></p>
<footer>{other_lang}</footer>
</main>
</body>
</html>
"#,
        lang_code = lang.code(),
        title = t(
            "Xác minh chứng nhận tín nhiệm",
            "Trust certificate verification"
        ),
        name = e(display_name),
        issuer = e(&record.issuer),
        certificate = e(&record.certificate_id),
        issued = format_instant(record.issued, time_zone, lang),
        expires = format_instant(record.expires, time_zone, lang),
        issued_at = format_instant(issued_at, time_zone, lang),
        key_id = e(key_id),
        fingerprint = e(fingerprint),
        l_site = t("Trang web", "Website"),
        l_issuer = t("Tổ chức chứng nhận", "Issuer"),
        l_certificate = t("Số chứng nhận", "Certificate"),
        l_level = t("Cấp độ", "Level"),
        l_hostnames = t("Tên miền được chứng nhận", "Certified hostnames"),
        l_issued = t("Ngày cấp", "Issued"),
        l_expires = t("Hết hạn", "Expires"),
        l_status = t("Trạng thái hiện tại", "Current status"),
        l_visitor = t("Bạn đến từ", "You came from"),
        l_credential = t("Chứng thư ký số", "Signed credential"),
        l_credential_text = t(
            "Chứng thư JSON dưới đây được ký bằng khóa Ed25519 của tổ chức chứng nhận; khóa công khai được công bố để ai cũng kiểm tra được (footfall trust verify).",
            "The JSON credential below is signed with the issuer's Ed25519 key; the public keys are published so anyone can check it offline (footfall trust verify)."
        ),
        l_key = t("Mã khóa", "Key id"),
        l_issued_at = t("Ký lúc", "Signed at"),
    )
}
