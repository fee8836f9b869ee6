//! Pure renderers: the badge SVG, the verification page and the tinnhiemmang.vn snippet,
//! from data to strings, with no HTTP types, so they snapshot-test.
//!
//! Every text that comes from configuration or from a request passes through
//! [`escape_markup`], which is correct in HTML and SVG (XML) text and in quoted
//! attribute values alike.

use jiff::civil::{Date, Time};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ZonedDateTime};

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
h1{font-size:1.4rem;margin-top:0}h3{font-size:1rem}.status{padding:.75rem 1rem;border-radius:6px;color:#fff;font-weight:600}\
.valid{background:#2e7d32}.not_yet_valid{background:#58646e}.expired{background:#8a6a00}\
.suspended{background:#b04a00}.revoked{background:#c62828}.wrong-domain{background:#6a1b9a}\
dl{display:grid;grid-template-columns:max-content 1fr;gap:.4rem 1rem}dt{font-weight:600}dd{margin:0}\
code{word-break:break-all;font-size:.85rem}\
pre{background:#f5f6f7;padding:.75rem;border-radius:6px;white-space:pre-wrap;word-break:break-all}\
footer{margin-top:1.5rem;font-size:.9rem}";

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
    /// The id of the service's issuer key that signs the credential.
    pub key_id: &'a str,
    /// The credential's fingerprint (SHA-256 of its payload, hex).
    pub fingerprint: &'a str,
    /// The credential exactly as `/trust/{site}.json` serves it.
    pub credential_json: &'a str,
    /// Its payload, decoded and indented.
    pub payload_json: &'a str,
    /// The hostname the visitor came from (`Referer`, else `Origin`), if any.
    pub visitor_host: Option<&'a str>,
    /// The language.
    pub lang: Lang,
}

/// A bound of the validity period as people write it: a whole day when it falls on the
/// site's midnight (a date in the settings; for the end, the last day still valid),
/// otherwise the instant.
enum Bound {
    Day(Date),
    Instant(ZonedDateTime),
}

impl Bound {
    /// The first instant of validity.
    fn start(instant: Timestamp, zone: &TimeZone) -> Bound {
        let zoned = instant.to_zoned_datetime(zone.clone());
        if zoned.time() == Time::midnight() {
            Bound::Day(zoned.date())
        } else {
            Bound::Instant(zoned)
        }
    }

    /// The end of validity, `expires` being the first instant no longer valid: at
    /// midnight, the day before is the last valid day ("expires 2027-05-31" is stored
    /// as 2027-06-01 00:00 and shown as 2027-05-31 again).
    fn end(expires: Timestamp, zone: &TimeZone) -> Bound {
        let zoned = expires.to_zoned_datetime(zone.clone());
        match zoned.date().yesterday() {
            Ok(last_day) if zoned.time() == Time::midnight() => Bound::Day(last_day),
            _ => Bound::Instant(zoned),
        }
    }

    /// A `<time>` element: machine-readable ISO 8601 in `datetime`, the reader's
    /// format in the text (`31/05/2027` in Vietnamese, `2027-05-31` in English).
    fn html(&self, lang: Lang) -> String {
        let (datetime, text) = match (self, lang) {
            (Bound::Day(date), Lang::Vi) => {
                (date.to_string(), date.strftime("%d/%m/%Y").to_string())
            }
            (Bound::Day(date), Lang::En) => (date.to_string(), date.to_string()),
            (Bound::Instant(zoned), Lang::Vi) => (
                zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                zoned.strftime("%H:%M ngày %d/%m/%Y").to_string(),
            ),
            (Bound::Instant(zoned), Lang::En) => (
                zoned.strftime("%Y-%m-%dT%H:%M:%S%:z").to_string(),
                zoned.strftime("%Y-%m-%d %H:%M").to_string(),
            ),
        };
        format!("<time datetime=\"{datetime}\">{text}</time>")
    }
}

/// [`escape_markup`] line by line, keeping the line breaks: for a `<pre>` block.
fn escape_lines(text: &str) -> String {
    text.lines()
        .map(escape_markup)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Items joined as a reader lists them: `a`, `a and b`, `a, b and c`.
fn join_words(items: &[String], and: &str) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} {and} {last}", init.join(", ")),
    }
}

fn capitalized(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The record in words: who certifies which site at which level, for exactly which
/// hostnames, from when through when. Every configured text arrives escaped.
struct Summary<'a> {
    issuer: &'a str,
    name: &'a str,
    certificate: &'a str,
    level: &'a str,
    hostnames: &'a [String],
    start: &'a Bound,
    end: &'a Bound,
    zone: &'a str,
}

impl Summary<'_> {
    fn html(&self, lang: Lang) -> String {
        let Summary {
            issuer,
            name,
            certificate,
            level,
            hostnames,
            start,
            end,
            zone,
        } = *self;
        let (from, until) = (start.html(lang), end.html(lang));
        match lang {
            Lang::Vi => {
                let level = if level.is_empty() {
                    ", không ghi cấp độ".to_owned()
                } else {
                    format!(", mức “{level}”")
                };
                let from = match start {
                    Bound::Day(_) => format!("ngày {from}"),
                    Bound::Instant(_) => from,
                };
                let until = match end {
                    Bound::Day(_) => format!("đến hết ngày {until}"),
                    Bound::Instant(_) => format!("đến trước {until}"),
                };
                format!(
                    "<p>{issuer} chứng nhận trang web {name}{level}, số chứng nhận {certificate}. \
                     Chứng nhận chỉ áp dụng cho đúng {hosts}; trang ở tên miền khác, kể cả tên \
                     miền con, không được chứng nhận. Hiệu lực từ {from} {until} (giờ {zone}).</p>",
                    hosts = join_words(hostnames, "và"),
                )
            }
            Lang::En => {
                let level = if level.is_empty() {
                    ", with no level stated".to_owned()
                } else {
                    format!(" at the level “{level}”")
                };
                let until = match end {
                    Bound::Day(_) => format!("through {until}"),
                    Bound::Instant(_) => format!("until {until}"),
                };
                format!(
                    "<p>{issuer} certifies the website {name}{level}, certificate {certificate}. \
                     It covers exactly {hosts}; a page on any other hostname, a subdomain \
                     included, is not certified. Valid from {from} {until} ({zone} time).</p>",
                    hosts = join_words(hostnames, "and"),
                )
            }
        }
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
        credential_json,
        payload_json,
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
    let hostnames: Vec<String> = record
        .hostnames
        .iter()
        .map(|host| format!("<code>{}</code>", e(host)))
        .collect();
    let hostname_items: String = hostnames
        .iter()
        .map(|host| format!("<li>{host}</li>"))
        .collect();
    let level = if record.level.is_empty() {
        "—".to_owned()
    } else {
        e(&record.level)
    };
    // The zone is the site's, already validated; UTC only if that ever failed.
    let (zone, zone_name) = match TimeZone::get(time_zone) {
        Ok(zone) => (zone, time_zone),
        Err(_) => (TimeZone::UTC, "UTC"),
    };
    let (start, end) = (
        Bound::start(record.issued, &zone),
        Bound::end(record.expires, &zone),
    );
    let name = e(display_name);
    let (issuer, certificate) = (e(&record.issuer), e(&record.certificate_id));
    let summary = Summary {
        issuer: &issuer,
        name: &name,
        certificate: &certificate,
        level: if record.level.is_empty() { "" } else { &level },
        hostnames: &hostnames,
        start: &start,
        end: &end,
        zone: &e(zone_name),
    }
    .html(lang);
    let l_end = match (&end, lang) {
        (Bound::Day(_), Lang::Vi) => "Hiệu lực đến hết ngày",
        (Bound::Day(_), Lang::En) => "Valid through",
        (Bound::Instant(_), Lang::Vi) => "Hết hiệu lực lúc",
        (Bound::Instant(_), Lang::En) => "Valid until",
    };
    let zone_suffix = format!(" ({})", e(zone_name));
    let other_lang = match lang {
        Lang::Vi => "<a href=\"?lang=en\" hreflang=\"en\" lang=\"en\">English</a>",
        Lang::En => "<a href=\"?lang=vi\" hreflang=\"vi\" lang=\"vi\">Tiếng Việt</a>",
    };
    let site_path = e(site_id);
    let key_id = e(key_id);
    let credential_text = match lang {
        Lang::Vi => format!(
            "Hồ sơ trên được dịch vụ footfall này ký bằng khóa phát hành của dịch vụ \
             (Ed25519, mã khóa <code>{key_id}</code>); khóa công khai được công bố tại \
             <a href=\"/.well-known/footfall-trust-keys\">/.well-known/footfall-trust-keys</a>. \
             Chữ ký chứng tỏ dịch vụ này công bố đúng hồ sơ trên; giấy chứng nhận do {issuer} \
             cấp. Ai cũng kiểm tra được chứng thư JSON dưới đây mà không cần mạng \
             (<code>footfall trust verify</code>)."
        ),
        Lang::En => format!(
            "This footfall service signs the record above with its issuer key (Ed25519, key \
             id <code>{key_id}</code>), whose public key is published at \
             <a href=\"/.well-known/footfall-trust-keys\">/.well-known/footfall-trust-keys</a>. \
             The signature shows that this service publishes exactly this record; the \
             certificate itself is {issuer}'s. Anyone can check the JSON credential below \
             offline (<code>footfall trust verify</code>)."
        ),
    };
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
{summary}
<dl>
<dt>{l_site}</dt><dd>{name} (<code>{site_path}</code>)</dd>
<dt>{l_issuer}</dt><dd>{issuer}</dd>
<dt>{l_certificate}</dt><dd>{certificate}</dd>
<dt>{l_level}</dt><dd>{level}</dd>
<dt>{l_hostnames}</dt><dd><ul>{hostname_items}</ul></dd>
<dt>{l_start}</dt><dd>{start_html}{zone_suffix}</dd>
<dt>{l_end}</dt><dd>{end_html}{zone_suffix}</dd>
<dt>{l_status}</dt><dd>{status_words}</dd>
<dt>{l_visitor}</dt><dd>{visitor}</dd>
</dl>
<h2>{l_credential}</h2>
<p>{credential_text}</p>
<dl>
<dt>{l_key}</dt><dd><code>{key_id}</code></dd>
<dt>{l_fingerprint}</dt><dd><code>{fingerprint}</code></dd>
</dl>
<p>{l_fingerprint_text}</p>
<h3>{l_json} (<a href="/trust/{site_path}.json">/trust/{site_path}.json</a>)</h3>
<pre><code>{credential_json}</code></pre>
<h3>{l_payload}</h3>
<pre><code>{payload_json}</code></pre>
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
        start_html = start.html(lang),
        end_html = end.html(lang),
        fingerprint = e(fingerprint),
        credential_json = escape_lines(credential_json.trim_end()),
        payload_json = escape_lines(payload_json.trim_end()),
        l_site = t("Trang web", "Website"),
        l_issuer = t("Tổ chức chứng nhận", "Issuer"),
        l_certificate = t("Số chứng nhận", "Certificate"),
        l_level = t("Cấp độ", "Level"),
        l_hostnames = t("Tên miền được chứng nhận", "Certified hostnames"),
        l_start = t("Hiệu lực từ", "Valid from"),
        l_status = t("Trạng thái hiện tại", "Current status"),
        l_visitor = t("Bạn đến từ", "You came from"),
        l_credential = t("Chứng thư ký số", "Signed credential"),
        l_key = t("Mã khóa ký", "Signing key id"),
        l_fingerprint = t("Dấu vân tay SHA-256", "SHA-256 fingerprint"),
        l_fingerprint_text = t(
            "Dấu vân tay là SHA-256 của nội dung đã ký (trường payload sau khi giải mã base64url); nó không đổi chừng nào hồ sơ và khóa ký không đổi.",
            "The fingerprint is SHA-256 of the signed content (the payload member, base64url-decoded); it stays the same as long as the record and the signing key do."
        ),
        l_json = t("Chứng thư JSON", "JSON credential"),
        l_payload = t(
            "Nội dung đã ký (payload, đã giải mã)",
            "Signed content (payload, decoded)"
        ),
    )
}
