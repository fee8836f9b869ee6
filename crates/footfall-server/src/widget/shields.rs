//! The shields.io endpoint badge, `GET /badge/{site}/{window}.json`: the counter badge's
//! label and number as the document shields.io's "endpoint" badge reads
//! (`https://img.shields.io/endpoint?url=…`), so a counter can be shown in shields' own
//! styles. The document holds exactly its schema's members (`schemaVersion` 1, `label`,
//! `message`, `color`, `labelColor`, `cacheSeconds`) and nothing else.
//!
//! The label and the number are the SVG badge's ([`Badge`]): same site language, metric,
//! grouping and `?label=`; same caching (revalidate every time, with an ETag) so it never
//! shows older numbers than the SVG. CORS is open to every origin: shields fetches
//! server-side, and the figures are public anyway.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use footfall::Window;
use serde::Serialize;

use crate::web::conditional::respond;
use crate::web::cors;
use crate::widget::render::Badge;

/// shields.io ignores any `cacheSeconds` below its floor for endpoint badges (300 s), so
/// that is the honest value: shields keeps the document 5 minutes whatever we say.
pub const CACHE_SECONDS: u32 = 300;

/// The value colour of a badge with a number: the SVG badge's blue.
const VALID_COLOR: &str = "0b5394";
/// The value colour of "not valid on this domain": the SVG badge's grey.
const INVALID_COLOR: &str = "9f9f9f";
/// The label colour: the SVG badge's.
const LABEL_COLOR: &str = "555";

/// What a badge file asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BadgeFormat {
    /// `{window}.svg`: the SVG badge.
    Svg,
    /// `{window}.json`: shields.io's endpoint document.
    ShieldsJson,
}

/// The 404 message for a badge file that is neither.
pub const UNKNOWN_BADGE: &str = "badges are online, today, week, month or total, as .svg \
    (an image) or .json (shields.io's endpoint badge)";

/// The window and format of a badge file name (`today.svg`, `total.json`).
pub fn badge_file(file: &str) -> Option<(Window, BadgeFormat)> {
    let (name, format) = if let Some(name) = file.strip_suffix(".svg") {
        (name, BadgeFormat::Svg)
    } else {
        (file.strip_suffix(".json")?, BadgeFormat::ShieldsJson)
    };
    Window::from_name(name).map(|window| (window, format))
}

/// shields.io's endpoint schema, version 1: these members and no others.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Endpoint<'a> {
    schema_version: u8,
    label: &'a str,
    message: &'a str,
    color: &'static str,
    label_color: &'static str,
    cache_seconds: u32,
}

/// The endpoint document of `badge`.
pub fn endpoint_json(badge: &Badge) -> String {
    let endpoint = Endpoint {
        schema_version: 1,
        label: &badge.label,
        message: &badge.value,
        color: if badge.valid {
            VALID_COLOR
        } else {
            INVALID_COLOR
        },
        label_color: LABEL_COLOR,
        cache_seconds: CACHE_SECONDS,
    };
    // Serialising a struct of strings and numbers cannot fail.
    serde_json::to_string(&endpoint).unwrap_or_default()
}

/// The answer for `badge`: the document, or 304 when the client has it; cached like the
/// SVG badge (`cache_control`), open to every origin.
pub fn endpoint_response(
    badge: &Badge,
    headers: &HeaderMap,
    cache_control: &'static str,
) -> Response {
    let mut response = respond(headers, endpoint_json(badge), "application/json");
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(cache_control),
    );
    out.insert(header::VARY, HeaderValue::from_static("Referer, Origin"));
    cors::allow_everyone(out);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn badge(valid: bool) -> Badge {
        Badge {
            label: "Hôm nay".to_owned(),
            value: "1.138".to_owned(),
            title: "not in the document".to_owned(),
            valid,
        }
    }

    #[test]
    fn the_document_has_exactly_the_schema_members() {
        let document: serde_json::Value =
            serde_json::from_str(&endpoint_json(&badge(true))).unwrap();
        assert_eq!(
            document,
            serde_json::json!({
                "schemaVersion": 1,
                "label": "Hôm nay",
                "message": "1.138",
                "color": "0b5394",
                "labelColor": "555",
                "cacheSeconds": 300,
            })
        );
        let invalid: serde_json::Value =
            serde_json::from_str(&endpoint_json(&badge(false))).unwrap();
        assert_eq!(invalid["color"], "9f9f9f");
    }

    #[test]
    fn badge_files_name_a_window_and_a_format() {
        assert_eq!(
            badge_file("today.svg"),
            Some((Window::Today, BadgeFormat::Svg))
        );
        assert_eq!(
            badge_file("total.json"),
            Some((Window::Total, BadgeFormat::ShieldsJson))
        );
        for bad in [
            "today",
            "today.png",
            "year.json",
            ".json",
            "today.json.svg",
            "TODAY.json",
        ] {
            assert_eq!(badge_file(bad), None, "{bad}");
        }
    }
}
