//! The read API: a site's counts with their definitions, and its per-day history.

use axum::Json;
use axum::extract::{Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use footfall::counter::DayFigures;

use crate::error::{AppError, error_response};
use crate::imported::{self, CSV_COLUMNS, HistoryDay, Source};
use crate::sites::Site;
use crate::state::AppState;
use crate::web::conditional::not_modified;
use crate::web::cors;
use crate::web::site::RegisteredSite;

/// Browsers and CDNs may reuse counts for 5 s and serve them 30 s longer while
/// revalidating: the numbers move slowly and widgets are on every page.
const COUNTS_CACHE_CONTROL: &str = "public, max-age=5, stale-while-revalidate=30";

/// `GET /api/v1/sites/{site}/counts`. The request is taken whole so that its headers are
/// read where they are (a `HeaderMap` argument would copy them for every read).
pub async fn get_counts(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    request: Request,
) -> Result<Response, AppError> {
    let headers = request.headers();
    let counts = state.counts.get(&site).await?;
    let etag = counts.etag.to_str().unwrap_or_default();
    let mut response = if not_modified(headers, etag) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        (
            [(header::CONTENT_TYPE, "application/json")],
            counts.json.clone(),
        )
            .into_response()
    };
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(COUNTS_CACHE_CONTROL),
    );
    out.insert(header::ETAG, counts.etag.clone());
    cors::allow_site_pages(&site, headers, out);
    Ok(response)
}

/// The history query.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// How many days, today included (default 30, at most the retention).
    pub days: Option<u32>,
    /// `json` or `csv`; wins over the `Accept` header.
    pub format: Option<String>,
}

/// The two forms of the history.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HistoryFormat {
    /// `application/json`: the site, its zone and the days.
    Json,
    /// `text/csv`: a header row, then one row per day.
    Csv,
}

impl HistoryFormat {
    /// The form asked for: `?format=` when given (an unknown one is a 400), else the
    /// `Accept` header (JSON when it allows both equally, or when there is none), else
    /// `None` when it allows neither (406).
    pub fn negotiate(
        format: Option<&str>,
        headers: &HeaderMap,
    ) -> Result<Option<HistoryFormat>, AppError> {
        if let Some(format) = format {
            return match format.to_ascii_lowercase().as_str() {
                "json" => Ok(Some(HistoryFormat::Json)),
                "csv" => Ok(Some(HistoryFormat::Csv)),
                _ => Err(AppError::BadRequest(format!(
                    "format: expected json or csv, not {format:?}"
                ))),
            };
        }
        let accept: Vec<&str> = headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        let accept = accept.join(",");
        if accept.trim().is_empty() {
            return Ok(Some(HistoryFormat::Json));
        }
        let json = quality(&accept, "application", "json");
        let csv = quality(&accept, "text", "csv");
        Ok(match (json, csv) {
            (0, 0) => None,
            (json, csv) if csv > json => Some(HistoryFormat::Csv),
            _ => Some(HistoryFormat::Json),
        })
    }
}

/// The quality, in thousandths, that an `Accept` header gives `kind/subtype`: that of
/// the most specific media range matching it (RFC 9110, section 12.5.1), 0 when none
/// does. A malformed `q` counts as 1, as if it were absent.
fn quality(accept: &str, kind: &str, subtype: &str) -> u16 {
    let mut best: Option<(u8, u16)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let Some((range_kind, range_subtype)) = parts.next().and_then(|m| m.split_once('/')) else {
            continue;
        };
        let (range_kind, range_subtype) = (range_kind.trim(), range_subtype.trim());
        let specificity = if range_kind.eq_ignore_ascii_case(kind) {
            if range_subtype.eq_ignore_ascii_case(subtype) {
                3
            } else if range_subtype == "*" {
                2
            } else {
                continue;
            }
        } else if range_kind == "*" && range_subtype == "*" {
            1
        } else {
            continue;
        };
        let q = parts
            .filter_map(|parameter| parameter.split_once('='))
            .find(|(name, _)| name.trim().eq_ignore_ascii_case("q"))
            .map_or(1000, |(_, value)| thousandths(value.trim()));
        if best.is_none_or(|(known, _)| specificity > known) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0, |(_, q)| q)
}

/// A `q` value (`0`, `0.5`, `1.000`) in thousandths; 1000 when malformed.
fn thousandths(value: &str) -> u16 {
    match value.parse::<f32>() {
        Ok(q) if (0.0..=1.0).contains(&q) => (q * 1000.0).round() as u16,
        _ => 1000,
    }
}

#[derive(Serialize)]
struct HistoryBody<'a> {
    site: &'a str,
    time_zone: &'a str,
    days: Vec<HistoryRow>,
}

/// One day of the history, in both forms: the CSV columns are these fields, in order.
#[derive(Serialize)]
struct HistoryRow {
    date: jiff::civil::Date,
    pageviews: u64,
    visits: u64,
    visitors: u64,
    source: Source,
}

/// A site's last `days` local days (today included, oldest first, at most the retention),
/// each live or, where the import says so, imported; bounded by the store timeout: the one
/// reading of per-day history that the history API and the statistics page share.
pub async fn read_history(
    state: &AppState,
    site: &Site,
    days: u32,
) -> Result<Vec<HistoryDay>, AppError> {
    let now = state.clock.now();
    let store = state.store.as_ref();
    let read = async {
        let live: Vec<DayFigures> = state
            .counts
            .settled()
            .history(store, &site.id, &site.rules, days, now)
            .await?;
        let (Some(first), Some(last)) = (live.first(), live.last()) else {
            return Ok(Vec::new());
        };
        let imported = imported::read_range(store, &site.id, first.date, last.date, now).await?;
        Ok::<_, AppError>(imported::merge(&live, &imported))
    };
    tokio::time::timeout(state.options.store_timeout, read)
        .await
        .map_err(|_| AppError::Unavailable(None))?
}

impl From<&HistoryDay> for HistoryRow {
    fn from(day: &HistoryDay) -> Self {
        HistoryRow {
            date: day.date,
            pageviews: day.counts.pageviews,
            visits: day.counts.visits,
            visitors: day.counts.visitors,
            source: day.source,
        }
    }
}

/// The CSV form: the header row `date,pageviews,visits,visitors,source`, then a row per
/// day. Its first four columns are what `PUT /admin/v1/sites/{site}/history` takes, so
/// an export imports as it is (the `source` column is ignored there).
pub fn history_csv(days: &[HistoryDay]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::WriterBuilder::new()
        .has_headers(false)
        .from_writer(Vec::with_capacity(32 * (days.len() + 1)));
    writer.write_record(CSV_COLUMNS.iter().chain(&["source"]))?;
    for day in days {
        writer.serialize(HistoryRow::from(day))?;
    }
    writer
        .into_inner()
        .map_err(|e| csv::Error::from(e.into_error()))
}

/// Browsers and CDNs may reuse a history for a minute: past days do not change.
const HISTORY_CACHE_CONTROL: &str = "public, max-age=60";

/// `GET /api/v1/sites/{site}/history?days=N&format=json|csv`: the last N local days,
/// oldest first, each live or imported (`source`), as JSON or CSV (`format`, else
/// `Accept`).
pub async fn get_history(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let Some(format) = HistoryFormat::negotiate(query.format.as_deref(), &headers)? else {
        let mut refusal = error_response(
            StatusCode::NOT_ACCEPTABLE,
            "not_acceptable",
            "the history is served as application/json or text/csv (or ask with ?format=csv)"
                .to_owned(),
        );
        refusal
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Accept"));
        return Ok(refusal);
    };
    let days = query.days.unwrap_or(30);
    if days == 0 || days > site.rules.retention_days() {
        return Err(AppError::BadRequest(format!(
            "days must be between 1 and {}",
            site.rules.retention_days()
        )));
    }
    let history = read_history(&state, &site, days).await?;
    let mut response = match format {
        HistoryFormat::Json => Json(HistoryBody {
            site: site.id.as_str(),
            time_zone: site.rules.calendar().time_zone_name(),
            days: history.iter().map(HistoryRow::from).collect(),
        })
        .into_response(),
        HistoryFormat::Csv => {
            let body = history_csv(&history)
                .map_err(|e| AppError::Internal(format!("writing the history as CSV: {e}")))?;
            let disposition = format!("attachment; filename=\"{}-history.csv\"", site.id);
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                ],
                body,
            )
                .into_response()
        }
    };
    let out = response.headers_mut();
    out.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(HISTORY_CACHE_CONTROL),
    );
    cors::allow_site_pages(&site, &headers, out);
    // Appended after the CORS policy, which sets its own `Vary: Origin`.
    out.append(header::VARY, HeaderValue::from_static("Accept"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accepting(accept: &str) -> Option<HistoryFormat> {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_str(accept).unwrap());
        HistoryFormat::negotiate(None, &headers).unwrap()
    }

    #[test]
    fn accept_chooses_by_quality_then_specificity() {
        use HistoryFormat::{Csv, Json};
        let cases = [
            ("", Some(Json)),
            ("*/*", Some(Json)),
            ("text/csv", Some(Csv)),
            ("TEXT/CSV; charset=utf-8", Some(Csv)),
            ("text/*", Some(Csv)),
            ("application/json", Some(Json)),
            ("text/csv, application/json", Some(Json)),
            ("text/csv, application/json;q=0.9", Some(Csv)),
            ("text/csv;q=0.5, */*;q=0.8", Some(Json)),
            ("text/csv, */*;q=0.8", Some(Csv)),
            // A browser's navigation: JSON through the wildcard.
            (
                "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
                Some(Json),
            ),
            // The most specific range wins even when a wildcard says more.
            ("*/*;q=1, text/csv;q=0", Some(Json)),
            ("*/*;q=0.1, application/json;q=0", Some(Csv)),
            ("image/png", None),
            ("text/html", None),
            ("application/json;q=0, text/csv;q=0", None),
            ("text/csv;q=bogus", Some(Csv)),
            ("garbage", None),
        ];
        for (accept, expected) in cases {
            assert_eq!(accepting(accept), expected, "Accept: {accept}");
        }
    }

    #[test]
    fn the_query_wins_and_unknown_formats_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::ACCEPT, HeaderValue::from_static("image/png"));
        assert_eq!(
            HistoryFormat::negotiate(Some("CSV"), &headers).unwrap(),
            Some(HistoryFormat::Csv)
        );
        assert_eq!(
            HistoryFormat::negotiate(Some("json"), &headers).unwrap(),
            Some(HistoryFormat::Json)
        );
        assert!(matches!(
            HistoryFormat::negotiate(Some("xml"), &headers),
            Err(AppError::BadRequest(message)) if message.contains("json or csv")
        ));
    }

    #[test]
    fn the_csv_has_a_header_row_and_one_row_per_day() {
        let day = |date: &str, pageviews, source| HistoryDay {
            date: date.parse().unwrap(),
            counts: imported::DayCounts {
                pageviews,
                visits: 2,
                visitors: 1,
            },
            source,
        };
        let csv = history_csv(&[
            day("2026-02-27", 40, Source::Imported),
            day("2026-02-28", 3, Source::Live),
        ])
        .unwrap();
        assert_eq!(
            String::from_utf8(csv).unwrap(),
            "date,pageviews,visits,visitors,source\n\
             2026-02-27,40,2,1,imported\n\
             2026-02-28,3,2,1,live\n"
        );
        assert_eq!(
            String::from_utf8(history_csv(&[]).unwrap()).unwrap(),
            "date,pageviews,visits,visitors,source\n"
        );
    }
}
