//! The counts' wire format, owned here so the API and the widget serve what one module
//! writes: the counts body of `GET /api/v1/sites/{site}/counts`, and the widget's answer
//! (the same members plus `valid`, the footer's labels and its reader's share).

use std::collections::BTreeMap;

use bytes::Bytes;
use footfall::Window;
use footfall::counter::Snapshot;
use jiff::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::describe::{self, Lang};
use crate::recent::Reader;
use crate::sites::Site;

#[derive(Serialize)]
struct CountsBody<'a> {
    site: &'a str,
    as_of: Timestamp,
    stale: bool,
    time_zone: &'a str,
    online: BTreeMap<&'static str, u64>,
    today: BTreeMap<&'static str, u64>,
    week: BTreeMap<&'static str, u64>,
    month: BTreeMap<&'static str, u64>,
    total: BTreeMap<&'static str, u64>,
    definitions: BTreeMap<String, DefinitionBody>,
}

#[derive(Serialize)]
struct DefinitionBody {
    metric: &'static str,
    window: &'static str,
    accuracy: &'static str,
    time_zone: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    since: Option<Timestamp>,
    #[serde(skip_serializing_if = "Option::is_none")]
    window_minutes: Option<u32>,
    #[serde(skip_serializing_if = "is_zero")]
    baseline: u64,
    as_of: Timestamp,
    description: BTreeMap<&'static str, String>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The counts body of `site`. Pure: the same snapshot gives the same body.
fn counts_body<'a>(site: &'a Site, snapshot: &Snapshot, stale: bool) -> CountsBody<'a> {
    let mut windows: BTreeMap<Window, BTreeMap<&'static str, u64>> = BTreeMap::new();
    let mut definitions = BTreeMap::new();
    let timeout = site.settings.visit_timeout_minutes;
    for figure in &snapshot.figures {
        let d = &figure.definition;
        windows
            .entry(d.window)
            .or_default()
            .insert(d.metric.name(), figure.value);
        definitions.insert(
            format!("{}.{}", d.window.name(), d.metric.name()),
            DefinitionBody {
                metric: d.metric.name(),
                window: d.window.name(),
                accuracy: describe::accuracy_name(d.accuracy),
                time_zone: d.time_zone.clone(),
                since: d.since,
                window_minutes: d.window_minutes,
                baseline: d.baseline,
                as_of: d.as_of,
                description: [Lang::Vi, Lang::En]
                    .into_iter()
                    .map(|lang| (lang.code(), describe::describe(d, timeout, lang)))
                    .collect(),
            },
        );
    }
    let mut take = |window| windows.remove(&window).unwrap_or_default();
    CountsBody {
        site: site.id.as_str(),
        as_of: snapshot.as_of,
        stale,
        time_zone: site.rules.calendar().time_zone_name(),
        online: take(Window::Online),
        today: take(Window::Today),
        week: take(Window::Week),
        month: take(Window::Month),
        total: take(Window::Total),
        definitions,
    }
}

/// Renders the counts body. Pure: the same snapshot gives the same bytes.
pub fn counts_json(site: &Site, snapshot: &Snapshot, stale: bool) -> Bytes {
    let body = counts_body(site, snapshot, stale);
    Bytes::from(serde_json::to_vec(&body).expect("counts always serialise"))
}

/// What a page view adds for its own reader, as sent: 1 or 0 per figure.
#[derive(Serialize)]
struct ReaderBody {
    pageviews: u8,
    visits: u8,
    visitors: u8,
    online: u8,
}

impl From<Reader> for ReaderBody {
    fn from(reader: Reader) -> Self {
        ReaderBody {
            pageviews: reader.pageview.into(),
            visits: reader.visit.into(),
            visitors: reader.visitor.into(),
            online: reader.online.into(),
        }
    }
}

/// The widget's answer on a site's own page, composed from the counts body already
/// rendered: `{`, its reader's share (when the request's page view was counted),
/// `"valid": true`, the footer's labels (JSON, escaped for a script), then every member
/// of the counts body. Nothing of it is kept per reader: a snapshot holds the counts
/// body and the footer once, and each answer copies them (about 6 KB) into one buffer,
/// where a cached answer per reader share took up to 17 of those per site.
pub(super) fn widget_json(counts_json: &[u8], footer: &RawValue, reader: Option<Reader>) -> Bytes {
    // The counts body is an object with members (its `site` first): its members and
    // closing brace follow the widget's own.
    let members = counts_json.strip_prefix(b"{").unwrap_or(b"}");
    let mut out = Vec::with_capacity(96 + footer.get().len() + members.len());
    out.push(b'{');
    if let Some(reader) = reader {
        out.extend_from_slice(br#""reader":"#);
        serde_json::to_writer(&mut out, &ReaderBody::from(reader))
            .expect("a reader's share always serialises");
        out.push(b',');
    }
    out.extend_from_slice(br#""valid":true,"footer":"#);
    out.extend_from_slice(footer.get().as_bytes());
    if members != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(members);
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The answer as serde writes it with the counts body's members flattened in: what
    /// the composed answer must equal, byte for byte.
    #[derive(Serialize)]
    struct WidgetBody<'a> {
        #[serde(skip_serializing_if = "Option::is_none")]
        reader: Option<ReaderBody>,
        valid: bool,
        footer: &'a RawValue,
        #[serde(flatten)]
        counts: CountsBody<'a>,
    }

    #[test]
    fn the_composed_widget_answer_is_what_serde_writes_for_every_reader_share() {
        let site = Site::from_settings(crate::sites::SiteSettings::demo(), "").unwrap();
        let figures = footfall::counter::Snapshot {
            site: site.id.clone(),
            as_of: "2026-11-30T03:00:00Z".parse().unwrap(),
            figures: Vec::new(),
        };
        let footer = RawValue::from_string(r#"{"title":"\u003cb>"}"#.to_owned()).unwrap();
        let readers = (0..16u8).map(|bits| {
            Some(Reader {
                pageview: bits & 1 != 0,
                visit: bits & 2 != 0,
                visitor: bits & 4 != 0,
                online: bits & 8 != 0,
            })
        });
        for stale in [false, true] {
            let counts = counts_json(&site, &figures, stale);
            for reader in std::iter::once(None).chain(readers.clone()) {
                let expected = serde_json::to_vec(&WidgetBody {
                    reader: reader.map(ReaderBody::from),
                    valid: true,
                    footer: &footer,
                    counts: counts_body(&site, &figures, stale),
                })
                .unwrap();
                let composed = widget_json(&counts, &footer, reader);
                assert_eq!(
                    std::str::from_utf8(&composed).unwrap(),
                    std::str::from_utf8(&expected).unwrap(),
                    "{reader:?} stale {stale}"
                );
            }
        }
    }

    #[test]
    fn the_widget_answer_is_the_counts_body_with_reader_valid_and_footer_first() {
        let site = Site::from_settings(crate::sites::SiteSettings::demo(), "").unwrap();
        let snapshot = Snapshot {
            site: site.id.clone(),
            as_of: "2026-11-30T03:00:00Z".parse().unwrap(),
            figures: Vec::new(),
        };
        let counts: serde_json::Value =
            serde_json::from_slice(&counts_json(&site, &snapshot, false)).unwrap();
        let footer = RawValue::from_string(r#"{"title":"<b>"}"#.to_owned()).unwrap();
        let reader = Reader {
            pageview: true,
            visit: true,
            visitor: false,
            online: true,
        };
        let bytes = widget_json(&counts_json(&site, &snapshot, false), &footer, Some(reader));
        let text = std::str::from_utf8(&bytes).unwrap();
        assert!(
            text.starts_with(
                r#"{"reader":{"pageviews":1,"visits":1,"visitors":0,"online":1},"valid":true,"footer":{"title":"<b>"},"#
            ),
            "{text}"
        );
        let mut widget: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        let object = widget.as_object_mut().unwrap();
        for member in ["reader", "valid", "footer"] {
            object.remove(member).expect(member);
        }
        assert_eq!(widget, counts, "every other member is the counts body's");
        let without: serde_json::Value = serde_json::from_slice(&widget_json(
            &counts_json(&site, &snapshot, false),
            &footer,
            None,
        ))
        .unwrap();
        assert!(without.get("reader").is_none());
    }
}
