//! The read API: a site's counts with their definitions, and its per-day history.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use footfall::Window;
use footfall::counter::Snapshot;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::describe::{self, Lang};
use crate::error::AppError;
use crate::ingest::{host_of_url, registered_site};
use crate::sites::Site;
use crate::state::AppState;

/// Browsers and CDNs may reuse counts for 5 s and serve them 30 s longer while
/// revalidating: the numbers move slowly and widgets are on every page.
const COUNTS_CACHE_CONTROL: &str = "public, max-age=5, stale-while-revalidate=30";

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

/// Renders the counts body. Pure: the same snapshot gives the same bytes.
pub fn counts_json(site: &Site, snapshot: &Snapshot, stale: bool) -> Bytes {
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
    let body = CountsBody {
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
    };
    Bytes::from(serde_json::to_vec(&body).expect("counts always serialise"))
}

/// CORS for reads: the site's own pages may read its counts from scripts.
fn allow_origin(site: &Site, headers: &HeaderMap) -> Option<HeaderValue> {
    let origin = headers.get(header::ORIGIN)?;
    let host = host_of_url(origin.to_str().ok()?)?;
    site.allows_host(host).then(|| origin.clone())
}

/// The `{site}` path segment, percent-decoded. A segment that does not decode to UTF-8
/// (`%FF`) is a client mistake answered with the usual JSON error, not axum's plain text.
fn site_segment(path: Result<Path<String>, PathRejection>) -> Result<String, AppError> {
    path.map(|Path(site)| site)
        .map_err(|e| AppError::BadRequest(format!("site: {}", e.body_text())))
}

/// `GET /api/v1/sites/{site}/counts`.
pub async fn get_counts(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let site = registered_site(&state, &site_segment(path)?)?;
    let counts = state.counts.get(&site).await?;
    let not_modified = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|tags| {
            tags.split(',')
                .any(|tag| tag.trim() == counts.etag || tag.trim() == "*")
        });
    let mut response = if not_modified {
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
    if let Ok(etag) = HeaderValue::from_str(&counts.etag) {
        out.insert(header::ETAG, etag);
    }
    out.insert(header::VARY, HeaderValue::from_static("Origin"));
    if let Some(origin) = allow_origin(&site, &headers) {
        out.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    Ok(response)
}

/// The history query.
#[derive(Debug, Deserialize)]
pub struct HistoryQuery {
    /// How many days, today included (default 30, at most the retention).
    pub days: Option<u32>,
}

#[derive(Serialize)]
struct HistoryBody<'a> {
    site: &'a str,
    time_zone: &'a str,
    days: Vec<HistoryDay>,
}

#[derive(Serialize)]
struct HistoryDay {
    date: String,
    visits: u64,
    visitors: u64,
    pageviews: u64,
}

/// `GET /api/v1/sites/{site}/history?days=N`.
pub async fn get_history(
    State(state): State<AppState>,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let site = site_segment(path)?;
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let site = registered_site(&state, &site)?;
    let days = query.days.unwrap_or(30);
    if days == 0 || days > site.rules.retention_days() {
        return Err(AppError::BadRequest(format!(
            "days must be between 1 and {}",
            site.rules.retention_days()
        )));
    }
    let now = state.clock.now();
    let history = tokio::time::timeout(
        state.options.store_timeout,
        state
            .counts
            .settled()
            .history(state.store.as_ref(), &site.id, &site.rules, days, now),
    )
    .await
    .map_err(|_| AppError::Unavailable(None))??;
    let body = HistoryBody {
        site: site.id.as_str(),
        time_zone: site.rules.calendar().time_zone_name(),
        days: history
            .into_iter()
            .map(|d| HistoryDay {
                date: d.date.to_string(),
                visits: d.visits,
                visitors: d.visitors,
                pageviews: d.pageviews,
            })
            .collect(),
    };
    let mut response = Json(body).into_response();
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=60"),
    );
    if let Some(origin) = allow_origin(&site, &headers) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    Ok(response)
}
