//! `PUT /admin/v1/sites/{site}/history`: imports the daily figures of the counter
//! footfall replaced (CSV or the history's JSON); `DELETE` removes them again. The rules
//! (history only, live counts win unless `replace`, settled days only, bounds) are in
//! [`crate::imported`].

use std::collections::BTreeMap;

use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use bytes::Bytes;
use footfall::counter::settled_through;
use footfall::{Metric, Window};
use jiff::ToSpan;
use jiff::civil::Date;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::audit::{self, Action, AuditEntry};
use crate::error::AppError;
use crate::imported::{self, DayCounts, Import, ImportCounts, ParsedImport};
use crate::sites::Site;
use crate::state::AppState;
use crate::web::site::RegisteredSite;

use super::access::{ManagedSite, RequestActor};

/// The import's query.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// Show the imported figures on days that already have live counts (refused
    /// otherwise).
    #[serde(default)]
    pub replace: bool,
    /// Check and count only; write nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// What every import answer says about the all-time total.
const TOTAL_RULE: &str = "Imported days are history only: they are shown in the history and \
    its chart, never added to a total. The all-time total stays the baseline (the old \
    counter's own total, which already holds these days) plus what footfall counted.";

/// `PUT /admin/v1/sites/{site}/history?replace=&dry_run=`: imports days (`text/csv` or
/// `application/json`), idempotently, and audits what changed.
pub(super) async fn put_history(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    _scope: ManagedSite,
    RegisteredSite(site): RegisteredSite,
    query: Result<Query<ImportQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<axum::Json<Value>, AppError> {
    let Query(query) =
        query.map_err(|e| AppError::BadRequest(format!("query: {}", e.body_text())))?;
    let parsed = parse_body(&headers, body)?;
    check_document_matches(&parsed, &site)?;

    let now = state.clock.now();
    let store = state.store.as_ref();
    imported::check_settled(&parsed.days, settled_through(&site.rules, now))?;
    let live = live_counts(&state, &site, &parsed.days).await?;
    let counts = imported::import(
        store,
        &Import {
            site: &site.id,
            days: &parsed.days,
            live: &live,
            replace: query.replace,
            dry_run: query.dry_run,
        },
        now,
    )
    .await?;

    let today = site.rules.calendar().day(now);
    let oldest_shown = today.saturating_sub((i64::from(site.rules.retention_days()) - 1).days());
    let outside_retention = parsed
        .days
        .iter()
        .filter(|day| day.date < oldest_shown)
        .count();
    let (stored_days, sums) = imported::totals(store, &site.id, today.year(), now).await?;
    let baseline = baselines(&state, &site).await?;
    let exceeds: Vec<&str> = [
        (Metric::Pageviews, sums.pageviews),
        (Metric::Visits, sums.visits),
        (Metric::Visitors, sums.visitors),
    ]
    .into_iter()
    .filter(|(metric, sum)| *sum > baseline.get(metric.name()).copied().unwrap_or(0))
    .map(|(metric, _)| metric.name())
    .collect();

    let (first, last) = (parsed.days.first(), parsed.days.last());
    let summary = json!({
        "days": parsed.days.len(),
        "first": first.map(|d| d.date),
        "last": last.map(|d| d.date),
        "added": counts.added,
        "replaced": counts.replaced,
        "replaced_live": counts.replaced_live,
        "unchanged": counts.unchanged,
        "replace": query.replace,
    });
    if counts.changed() && !query.dry_run {
        audit::record(
            store,
            now,
            vec![AuditEntry::new(
                now,
                Action::HistoryImport,
                Some(site.id.as_str()),
                &actor,
                summary.clone(),
            )],
        )
        .await;
    }
    let mut warnings = Vec::new();
    if !exceeds.is_empty() {
        warnings.push(format!(
            "the imported days add up to more than the baseline for {}: the baseline should \
             be the old counter's all-time total, which includes every imported day; set it \
             with PUT /admin/v1/sites/{}/baseline",
            exceeds.join(", "),
            site.id
        ));
    }
    if outside_retention > 0 {
        warnings.push(format!(
            "{outside_retention} day(s) are older than the site's retention ({} days, from \
             {oldest_shown}): they are kept, and shown once retention_days reaches them",
            site.rules.retention_days()
        ));
    }
    let mut answer = json!({
        "site": site.id.as_str(),
        "dry_run": query.dry_run,
        "changed": counts.changed(),
        "message": message(&counts, query.dry_run),
        "imported_total": {
            "days": stored_days,
            "pageviews": sums.pageviews,
            "visits": sums.visits,
            "visitors": sums.visitors,
        },
        "baseline": baseline,
        "exceeds_baseline": exceeds,
        "outside_retention": outside_retention,
        "total_rule": TOTAL_RULE,
        "warnings": warnings,
    });
    if let (Value::Object(answer), Value::Object(summary)) = (&mut answer, summary) {
        answer.extend(summary);
    }
    Ok(axum::Json(answer))
}

/// The body's days: CSV or JSON by `Content-Type`.
fn parse_body(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<ParsedImport, AppError> {
    let essence = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let parse = match essence.as_str() {
        "text/csv" => imported::parse_csv,
        "application/json" => imported::parse_json,
        _ => {
            return Err(AppError::UnsupportedMediaType(
                "send the days as Content-Type: text/csv (header row date,pageviews,visits,visitors) \
                 or application/json (the history's document or its days)"
                    .to_owned(),
            ));
        }
    };
    let body = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::TooLarge(
                "the body is larger than the internal listener takes: send fewer days at a \
                 time (footfall import-history sends one year per request)"
                    .to_owned(),
            )
        } else {
            AppError::BadRequest(format!("cannot read the body: {rejection}"))
        }
    })?;
    Ok(parse(&body)?)
}

/// An exported JSON document names its site and zone: both must be this site's, or the
/// days would land on the wrong site or shift by the zones' difference.
fn check_document_matches(parsed: &ParsedImport, site: &Site) -> Result<(), AppError> {
    if let Some(other) = parsed.site.as_deref().filter(|s| *s != site.id.as_str()) {
        return Err(AppError::BadRequest(format!(
            "site: the document is the history of {other:?}, not of {:?}",
            site.id.as_str()
        )));
    }
    let zone = site.rules.calendar().time_zone_name();
    if let Some(other) = parsed.time_zone.as_deref().filter(|z| *z != zone) {
        return Err(AppError::BadRequest(format!(
            "time_zone: the document's days are in {other}, and {} counts days in {zone}",
            site.id
        )));
    }
    Ok(())
}

/// The live figures of the imported dates that the retention still holds.
async fn live_counts(
    state: &AppState,
    site: &Site,
    days: &[imported::ImportedDay],
) -> Result<BTreeMap<Date, DayCounts>, AppError> {
    let Some(first) = days.first() else {
        return Ok(BTreeMap::new());
    };
    let now = state.clock.now();
    let today = site.rules.calendar().day(now);
    let back = first
        .date
        .until(today)
        .map_or(0, |span| span.get_days())
        .saturating_add(1);
    let back = u32::try_from(back)
        .unwrap_or(u32::MAX)
        .min(site.rules.retention_days());
    let live = state
        .counts
        .settled()
        .history(state.store.as_ref(), &site.id, &site.rules, back, now)
        .await?;
    Ok(live
        .iter()
        .map(|day| (day.date, DayCounts::of(day)))
        .filter(|(_, counts)| !counts.is_zero())
        .collect())
}

/// The site's baseline of each metric, by name.
async fn baselines(
    state: &AppState,
    site: &std::sync::Arc<Site>,
) -> Result<BTreeMap<&'static str, u64>, AppError> {
    let counts = state.counts.get(site).await?;
    Ok([Metric::Pageviews, Metric::Visits, Metric::Visitors]
        .into_iter()
        .map(|metric| {
            let baseline = counts
                .snapshot
                .get(Window::Total, metric)
                .map_or(0, |figure| figure.definition.baseline);
            (metric.name(), baseline)
        })
        .collect())
}

fn message(counts: &ImportCounts, dry_run: bool) -> String {
    let verb = if dry_run { "would be" } else { "were" };
    if !counts.changed() {
        return format!(
            "nothing {}: all {} day(s) already show these imported figures",
            if dry_run { "would change" } else { "changed" },
            counts.unchanged
        );
    }
    format!(
        "{} day(s) {verb} added, {} replaced ({} of them hiding live counts), {} unchanged",
        counts.added, counts.replaced, counts.replaced_live, counts.unchanged
    )
}

/// `DELETE /admin/v1/sites/{site}/history`: removes every imported day of the site (live
/// counts are untouched). Audited when there were any.
pub(super) async fn delete_history(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    _scope: ManagedSite,
    RegisteredSite(site): RegisteredSite,
) -> Result<axum::Json<Value>, AppError> {
    let now = state.clock.now();
    let this_year = site.rules.calendar().day(now).year();
    let store = state.store.as_ref();
    let removed = imported::delete_all(store, &site.id, this_year, now).await?;
    if removed > 0 {
        audit::record(
            store,
            now,
            vec![AuditEntry::new(
                now,
                Action::HistoryDelete,
                Some(site.id.as_str()),
                &actor,
                json!({ "days": removed }),
            )],
        )
        .await;
    }
    Ok(axum::Json(json!({
        "site": site.id.as_str(),
        "deleted_days": removed,
        "changed": removed > 0,
    })))
}

#[cfg(test)]
mod tests;
