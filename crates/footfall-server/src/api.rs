//! The read API: a site's counts with their definitions, and its per-day history.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use footfall::counter::DayFigures;

use crate::error::AppError;
use crate::sites::Site;
use crate::state::AppState;
use crate::web::conditional::not_modified;
use crate::web::cors;
use crate::web::site::RegisteredSite;

/// Browsers and CDNs may reuse counts for 5 s and serve them 30 s longer while
/// revalidating: the numbers move slowly and widgets are on every page.
const COUNTS_CACHE_CONTROL: &str = "public, max-age=5, stale-while-revalidate=30";

/// `GET /api/v1/sites/{site}/counts`.
pub async fn get_counts(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let counts = state.counts.get(&site).await?;
    let mut response = if not_modified(&headers, &counts.etag) {
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
    cors::allow_site_pages(&site, &headers, out);
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

/// A site's last `days` local days (today included, oldest first, at most the retention),
/// bounded by the store timeout: the one reading of per-day history that the history
/// API and the statistics page share.
pub async fn read_history(
    state: &AppState,
    site: &Site,
    days: u32,
) -> Result<Vec<DayFigures>, AppError> {
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
    Ok(history)
}

/// `GET /api/v1/sites/{site}/history?days=N`.
pub async fn get_history(
    State(state): State<AppState>,
    RegisteredSite(site): RegisteredSite,
    query: Result<Query<HistoryQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Query(query) = query.map_err(|e| AppError::BadRequest(e.body_text()))?;
    let days = query.days.unwrap_or(30);
    if days == 0 || days > site.rules.retention_days() {
        return Err(AppError::BadRequest(format!(
            "days must be between 1 and {}",
            site.rules.retention_days()
        )));
    }
    let history = read_history(&state, &site, days).await?;
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
    cors::allow_site_pages(&site, &headers, response.headers_mut());
    Ok(response)
}
