//! The admin API, on the internal listener, behind bearer tokens.
//!
//! Routes (under `/admin/v1`, JSON in and out, errors as `{"error": {"code", "message"}}`):
//!
//! | route | does |
//! |---|---|
//! | `GET /sites` | every site's settings and the registry version |
//! | `GET /sites/{site}` | one site's settings |
//! | `PUT /sites/{site}` | creates (201) or replaces (200) a site; the body is [`SiteSettings`], whose `id` may be omitted and otherwise must equal the path's |
//! | `DELETE /sites/{site}` | unregisters a site; its counters stay in the store |
//! | `PUT /sites/{site}/baseline` | sets an imported all-time baseline (absolute, idempotent) |
//! | `POST /salts/rotate` | replaces the salt of one site (`{"site": "…"}`) or of all (`{}`) |
//! | `GET /audit?limit=N` | the most recent audit entries, newest first |
//!
//! Every change is written to the audit log ([`crate::audit`]) with the fingerprint of
//! the token that made it.

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use bytes::Bytes;
use footfall::{Metric, SiteId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

use crate::audit::{self, Action, Actor, AuditEntry, TokenFingerprint};
use crate::error::AppError;
use crate::registry::{self, Edit};
use crate::sites::{Site, SiteSettings};
use crate::state::AppState;

/// The accepted admin tokens, kept only as SHA-256 digests. Several may be valid at once
/// so a token can be rotated without downtime.
#[derive(Clone)]
pub struct AdminTokens {
    digests: Vec<[u8; 32]>,
    fingerprints: Vec<TokenFingerprint>,
}

impl std::fmt::Debug for AdminTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens or their digests.
        write!(f, "AdminTokens({} configured)", self.digests.len())
    }
}

impl AdminTokens {
    /// Tokens from configuration (empty entries ignored).
    pub fn new(tokens: &[String]) -> Self {
        let digests: Vec<[u8; 32]> = tokens
            .iter()
            .map(|t| t.trim())
            .filter(|t| !t.is_empty())
            .map(|t| Sha256::digest(t.as_bytes()).into())
            .collect();
        let fingerprints = digests.iter().map(fingerprint_of_digest).collect();
        AdminTokens {
            digests,
            fingerprints,
        }
    }

    /// True when no token is configured (the admin API then refuses everything).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Checks a presented token. The presented token is hashed first, so the comparison
    /// time depends on neither the token's length nor how much of it matches; every
    /// configured digest is compared, so neither does it reveal which one matched.
    pub fn accepts(&self, presented: &str) -> bool {
        self.identify(presented).is_some()
    }

    /// Checks a presented token like [`accepts`](Self::accepts) and returns the
    /// fingerprint of the configured token it matched, picked without a data-dependent
    /// branch.
    pub fn identify(&self, presented: &str) -> Option<TokenFingerprint> {
        let digest: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut matched = subtle::Choice::from(0);
        let mut fingerprint = [0u8; 4];
        for (candidate, candidate_fingerprint) in self.digests.iter().zip(&self.fingerprints) {
            let this = candidate.ct_eq(&digest);
            for (byte, candidate_byte) in fingerprint.iter_mut().zip(candidate_fingerprint.0) {
                byte.conditional_assign(&candidate_byte, this);
            }
            matched |= this;
        }
        bool::from(matched).then_some(TokenFingerprint(fingerprint))
    }
}

/// The fingerprint of a token, from its digest: it names a token in the audit log
/// without revealing it (the token's digest is hashed again, so not even the digest
/// compared at login can be recovered).
pub fn fingerprint_of_digest(digest: &[u8; 32]) -> TokenFingerprint {
    let again = Sha256::digest(digest);
    TokenFingerprint([again[0], again[1], again[2], again[3]])
}

/// The admin routes (mounted under `/admin/v1`).
pub fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/sites", get(list_sites))
        .route(
            "/sites/{site}",
            get(get_site).put(put_site).delete(delete_site),
        )
        .route("/sites/{site}/baseline", put(put_baseline))
        .route("/salts/rotate", post(rotate_salts))
        .route("/audit", get(get_audit))
        .method_not_allowed_fallback(method_not_allowed)
}

async fn method_not_allowed() -> Response {
    json_error(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see the Allow header)",
    )
}

/// Middleware: requires `Authorization: Bearer <token>` with a configured token, and
/// tells the handlers which one ([`Actor`] in the request's extensions).
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let fingerprint = presented
        .filter(|token| !token.is_empty())
        .and_then(|token| state.admin.identify(token));
    match fingerprint {
        Some(fingerprint) => {
            request.extensions_mut().insert(Actor::Token(fingerprint));
            Ok(next.run(request).await)
        }
        None => Err(AppError::Unauthorized),
    }
}

/// The actor of a request; the middleware always sets it, so a request without one is
/// refused rather than audited anonymously.
struct RequestActor(Actor);

impl<S: Send + Sync> FromRequestParts<S> for RequestActor {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        _state: &S,
    ) -> Result<Self, AppError> {
        parts
            .extensions
            .get::<Actor>()
            .copied()
            .map(RequestActor)
            .ok_or(AppError::Unauthorized)
    }
}

/// A JSON request body: `application/json` (or `+json`) only, size-limited by the
/// router, and every refusal a JSON error (axum's own `Json` answers in plain text).
struct JsonBody<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(request: Request, state: &S) -> Result<Self, Response> {
        let is_json = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .map(|essence| {
                let essence = essence.trim().to_ascii_lowercase();
                essence == "application/json"
                    || (essence.starts_with("application/") && essence.ends_with("+json"))
            })
            .unwrap_or(false);
        if !is_json {
            return Err(AppError::UnsupportedMediaType(
                "send the body as Content-Type: application/json".to_owned(),
            )
            .into_response());
        }
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    payload_too_large()
                } else {
                    AppError::BadRequest(format!("cannot read the body: {rejection}"))
                        .into_response()
                }
            })?;
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| AppError::BadRequest(format!("invalid JSON body: {e}")).into_response())
    }
}

/// An error in the shape of [`AppError`]'s answers, for statuses it has no variant for.
fn json_error(status: StatusCode, code: &str, message: &str) -> Response {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

fn payload_too_large() -> Response {
    json_error(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload_too_large",
        "the body is too large",
    )
}

/// The `{site}` path segment, validated, or a JSON 400 (axum's `Path` answers in plain
/// text, e.g. for a segment that is not UTF-8 once percent-decoded).
struct SitePath(SiteId);

impl<S: Send + Sync> FromRequestParts<S> for SitePath {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &S,
    ) -> Result<Self, AppError> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state)
            .await
            .map_err(|e| AppError::BadRequest(format!("site id: {}", e.body_text())))?;
        parse_site_id(&raw).map(SitePath)
    }
}

fn parse_site_id(raw: &str) -> Result<SiteId, AppError> {
    SiteId::new(raw).map_err(|e| AppError::BadRequest(format!("site id {raw:?}: {e}")))
}

fn unknown_site(id: &SiteId) -> AppError {
    AppError::NotFound(format!("no site {:?} is registered", id.as_str()))
}

/// `GET /admin/v1/sites`: every site's settings, sorted by id.
async fn list_sites(State(state): State<AppState>) -> Json<Value> {
    let all = state.sites.all();
    let sites: Vec<&SiteSettings> = all.iter().map(|site| &site.settings).collect();
    Json(json!({
        "registry_version": state.registry.version(),
        "sites": sites,
    }))
}

/// `GET /admin/v1/sites/{site}`.
async fn get_site(
    State(state): State<AppState>,
    SitePath(id): SitePath,
) -> Result<Json<Value>, AppError> {
    let site = state.sites.get(&id).ok_or_else(|| unknown_site(&id))?;
    Ok(Json(json!({
        "registry_version": state.registry.version(),
        "site": site.settings,
    })))
}

/// `PUT /admin/v1/sites/{site}`: creates or replaces a site.
async fn put_site(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    SitePath(id): SitePath,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let Value::Object(mut object) = body else {
        return Err(AppError::BadRequest(
            "the body must be a JSON object of site settings".to_owned(),
        ));
    };
    // The path names the site; the body may repeat its id but not contradict it.
    match object.get("id") {
        None => {
            object.insert("id".to_owned(), Value::String(id.to_string()));
        }
        Some(Value::String(body_id)) if body_id == id.as_str() => {}
        Some(other) => {
            return Err(AppError::BadRequest(format!(
                "id: the body's id {other} does not match the path's {:?}",
                id.as_str()
            )));
        }
    }
    let settings: SiteSettings = serde_json::from_value(Value::Object(object))
        .map_err(|e| AppError::BadRequest(format!("invalid site settings: {e}")))?;
    Site::from_settings(settings.clone(), "").map_err(|e| AppError::BadRequest(e.to_string()))?;

    let updated = registry::update(&state, |document| -> Result<_, AppError> {
        let previous = document.sites.insert(id.to_string(), settings.clone());
        Ok(if previous.as_ref() == Some(&settings) {
            Edit::Unchanged(previous)
        } else {
            Edit::Changed(previous)
        })
    })
    .await?;
    let previous = updated.value;
    let created = previous.is_none();
    if updated.changed {
        let (action, summary) = match &previous {
            None => (Action::SiteCreate, json!({ "settings": settings })),
            Some(old) => (
                Action::SiteUpdate,
                json!({ "changes": settings_diff(old, &settings) }),
            ),
        };
        audit::record(
            &state,
            vec![AuditEntry::new(
                state.clock.now(),
                action,
                Some(id.as_str()),
                &actor,
                summary,
            )],
        )
        .await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((
        status,
        Json(json!({
            "site": settings,
            "created": created,
            "changed": updated.changed,
            "registry_version": updated.version,
        })),
    ))
}

/// The settings that differ, as `{"setting": {"old": …, "new": …}}` (top-level
/// settings; `footer` as a whole).
fn settings_diff(old: &SiteSettings, new: &SiteSettings) -> Value {
    let (Ok(Value::Object(old)), Ok(Value::Object(new))) =
        (serde_json::to_value(old), serde_json::to_value(new))
    else {
        return Value::Null;
    };
    let mut changes = serde_json::Map::new();
    for (name, new_value) in &new {
        let old_value = old.get(name).unwrap_or(&Value::Null);
        if old_value != new_value {
            changes.insert(name.clone(), json!({ "old": old_value, "new": new_value }));
        }
    }
    Value::Object(changes)
}

/// `DELETE /admin/v1/sites/{site}`: unregisters a site. Its counters, baselines and
/// (until they expire) salts stay in the store, so registering it again resumes them.
async fn delete_site(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    SitePath(id): SitePath,
) -> Result<Json<Value>, AppError> {
    let updated = registry::update(&state, |document| -> Result<_, AppError> {
        let removed = document
            .sites
            .remove(id.as_str())
            .ok_or_else(|| unknown_site(&id))?;
        document.salt_rotations.remove(id.as_str());
        Ok(Edit::Changed(removed))
    })
    .await?;
    // The registry reload dropped them already; this covers a newer document having
    // been loaded in between (it lacks the site too).
    state.counts.forget(&id);
    state.salts.forget(&id);
    let in_file = state.registry.from_sites_file(id.as_str());
    audit::record(
        &state,
        vec![AuditEntry::new(
            state.clock.now(),
            Action::SiteDelete,
            Some(id.as_str()),
            &actor,
            json!({ "settings": updated.value, "counters_kept": true }),
        )],
    )
    .await;
    let mut note = "The site is no longer registered: its hits are refused from now on. \
        Its counters and baselines stay in the store (salts expire within 48 h), so \
        registering it again resumes its totals."
        .to_owned();
    if in_file {
        note.push_str(" It is listed in the sites file, so it is registered again at the next start-up unless removed from there.");
    }
    Ok(Json(json!({
        "site": id.as_str(),
        "deleted": true,
        "counters_kept": true,
        "registry_version": updated.version,
        "note": note,
    })))
}

/// The largest baseline accepted: far above any portal's total, and below `i64::MAX` so
/// a Redis `INCRBY` on the total can never overflow.
const MAX_BASELINE: u64 = 1_000_000_000_000_000;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct BaselineRequest {
    #[serde(default = "default_baseline_metric")]
    metric: String,
    value: u64,
    #[serde(default)]
    allow_decrease: bool,
}

fn default_baseline_metric() -> String {
    Metric::Visits.name().to_owned()
}

/// `PUT /admin/v1/sites/{site}/baseline`: sets the imported all-time baseline.
async fn put_baseline(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    SitePath(id): SitePath,
    JsonBody(request): JsonBody<BaselineRequest>,
) -> Result<Json<Value>, AppError> {
    let site = state.sites.get(&id).ok_or_else(|| unknown_site(&id))?;
    let metric = Metric::from_name(&request.metric).ok_or_else(|| {
        AppError::BadRequest(format!(
            "metric: expected visits, visitors or pageviews, not {:?}",
            request.metric
        ))
    })?;
    if request.value > MAX_BASELINE {
        return Err(AppError::BadRequest(format!(
            "value: at most {MAX_BASELINE}"
        )));
    }
    let change = footfall::counter::set_baseline(
        state.store.as_ref(),
        &site.id,
        metric,
        request.value,
        request.allow_decrease,
        state.clock.now(),
    )
    .await
    .map_err(|error| match error {
        footfall::Error::BaselineDecrease { .. } => AppError::Conflict(format!(
            "{error}; send \"allow_decrease\": true to correct it on purpose"
        )),
        other => AppError::from(other),
    })?;
    let changed = change.previous != change.current;
    if changed {
        // Show the new total at once rather than after the cache's next refresh.
        state.counts.forget(&site.id);
        audit::record(
            &state,
            vec![AuditEntry::new(
                state.clock.now(),
                Action::BaselineSet,
                Some(id.as_str()),
                &actor,
                json!({
                    "metric": metric.name(),
                    "old": change.previous,
                    "new": change.current,
                    "allow_decrease": request.allow_decrease,
                }),
            )],
        )
        .await;
    }
    Ok(Json(json!({
        "site": id.as_str(),
        "metric": metric.name(),
        "previous": change.previous,
        "current": change.current,
        "changed": changed,
    })))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RotateRequest {
    #[serde(default)]
    site: Option<String>,
}

/// `POST /admin/v1/salts/rotate`: replaces the current salt of one site or of all. Open
/// visits end (their visitors get new ids). Other instances drop their cached salt at
/// their next registry sync.
async fn rotate_salts(
    State(state): State<AppState>,
    RequestActor(actor): RequestActor,
    JsonBody(request): JsonBody<RotateRequest>,
) -> Result<Json<Value>, AppError> {
    let sites = match &request.site {
        Some(raw) => {
            let id = parse_site_id(raw)?;
            vec![state.sites.get(&id).ok_or_else(|| unknown_site(&id))?]
        }
        None => state.sites.all(),
    };
    let now = state.clock.now();
    let mut rotated = Vec::with_capacity(sites.len());
    let mut entries = Vec::with_capacity(sites.len());
    let mut failure = None;
    for site in &sites {
        match state.salts.rotate_now(site, now).await {
            Ok(()) => {
                rotated.push(site.id.to_string());
                entries.push(AuditEntry::new(
                    now,
                    Action::SaltRotate,
                    Some(site.id.as_str()),
                    &actor,
                    json!({ "period_salt": "replaced" }),
                ));
            }
            Err(error) => {
                failure = Some(error);
                break;
            }
        }
    }
    // Tell the other instances through the registry, even after a partial failure: the
    // salts that were replaced must not stay cached elsewhere.
    if !rotated.is_empty() {
        let marked = registry::update(&state, |document| -> Result<_, AppError> {
            for id in &rotated {
                if document.sites.contains_key(id) {
                    document.salt_rotations.insert(id.clone(), now);
                }
            }
            Ok(Edit::Changed(()))
        })
        .await;
        if let Err(error) = marked {
            tracing::warn!(error = %error, "salt rotation not announced to other instances; they switch at their next period");
        }
        audit::record(&state, entries).await;
    }
    if let Some(error) = failure {
        return Err(AppError::from(error));
    }
    Ok(Json(json!({ "rotated": rotated, "at": now })))
}

/// The default number of audit entries returned.
const DEFAULT_AUDIT_LIMIT: usize = 100;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditQuery {
    limit: Option<usize>,
}

/// `GET /admin/v1/audit?limit=N`: the most recent entries, newest first.
async fn get_audit(State(state): State<AppState>, uri: Uri) -> Result<Json<Value>, AppError> {
    let query = axum::extract::Query::<AuditQuery>::try_from_uri(&uri)
        .map_err(|e| AppError::BadRequest(format!("query: {}", e.body_text())))?;
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=audit::MAX_ENTRIES).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: expected 1 to {}",
            audit::MAX_ENTRIES
        )));
    }
    let (entries, total) = audit::recent(state.store.as_ref(), limit, state.clock.now())
        .await
        .map_err(|error| match error {
            audit::AuditError::Store(error) => AppError::Unavailable(Some(error.into())),
            other => AppError::Internal(other.to_string()),
        })?;
    Ok(Json(json!({ "entries": entries, "total": total })))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::Router;
    use axum::body::Body;
    use footfall::clock::ManualClock;
    use footfall::keys;
    use footfall::store::{AnyStore, MemoryStore, Read, Store};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use super::*;
    use crate::app::{RequestLimits, internal_app};
    use crate::registry::SyncOutcome;
    use crate::sites::Sites;
    use crate::state::Options;

    const TOKEN: &str = "first-admin-token-5f1c0e9a";
    const ROTATED: &str = "second-admin-token-77b2d4";

    /// One service instance over `store`: its state and its internal router.
    fn instance(store: &Arc<AnyStore>) -> (AppState, Router) {
        let clock = Arc::new(ManualClock::new("2026-11-30T17:00:00Z".parse().unwrap()));
        // Instances sharing a store share the salt secret, as deployments must.
        let options = Options {
            admin_tokens: vec![TOKEN.to_owned(), ROTATED.to_owned()],
            salt_secrets: Some(
                footfall::salts::SaltSecrets::parse("admin tests: a salt secret of 32+ bytes")
                    .unwrap(),
            ),
            ..Options::default()
        };
        let (state, _flusher) =
            AppState::new(Arc::clone(store), clock, Sites::default(), options).unwrap();
        let app = internal_app(state.clone(), RequestLimits::default());
        (state, app)
    }

    async fn send_request(app: &Router, request: axum::http::Request<Body>) -> (StatusCode, Value) {
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Sends `body` (if any) as JSON with `token` (if any).
    async fn send(
        app: &Router,
        method: &str,
        uri: &str,
        token: Option<&str>,
        body: Option<&str>,
    ) -> (StatusCode, Value) {
        let mut builder = axum::http::Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            builder = builder.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            builder = builder.header(header::CONTENT_TYPE, "application/json");
        }
        let request = builder
            .body(Body::from(body.unwrap_or_default().to_owned()))
            .unwrap();
        send_request(app, request).await
    }

    fn message(body: &Value) -> &str {
        body["error"]["message"].as_str().unwrap_or_default()
    }

    fn settings_json(id: &str, hostname: &str) -> String {
        serde_json::to_string(&SiteSettings::new(id, &[hostname])).unwrap()
    }

    /// `PUT /admin/v1/sites/{id}` of a site with one `hostname`, as `token`.
    async fn put_site(app: &Router, token: &str, id: &str, hostname: &str) -> (StatusCode, Value) {
        let uri = format!("/admin/v1/sites/{id}");
        send(
            app,
            "PUT",
            &uri,
            Some(token),
            Some(&settings_json(id, hostname)),
        )
        .await
    }

    async fn stored_bytes(store: &AnyStore, key: &footfall::keys::Key) -> Option<Vec<u8>> {
        store
            .get(key, "2026-11-30T17:00:00Z".parse().unwrap())
            .await
            .unwrap()
    }

    fn fingerprint(token: &str) -> String {
        // Computed here independently: SHA-256 of the token's SHA-256, first 4 bytes.
        let digest = Sha256::digest(token.as_bytes());
        hex::encode(&Sha256::digest(digest)[..4])
    }

    #[test]
    fn tokens_match_exactly() {
        let tokens = AdminTokens::new(&["old-token".into(), " new-token ".into(), "".into()]);
        assert!(tokens.accepts("old-token"));
        assert!(tokens.accepts("new-token"));
        for wrong in [
            "",
            "old-toke",
            "old-token ",
            "OLD-TOKEN",
            "new-token\0",
            "x",
        ] {
            assert!(!tokens.accepts(wrong), "{wrong:?}");
        }
        assert!(AdminTokens::new(&[]).is_empty());
        assert!(!format!("{tokens:?}").contains("token\""));
        assert_eq!(
            tokens.identify("new-token").unwrap().to_string(),
            fingerprint("new-token")
        );
        assert_ne!(tokens.identify("old-token"), tokens.identify("new-token"));
    }

    #[tokio::test]
    async fn every_route_requires_a_configured_token() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (_state, app) = instance(&store);
        let routes = [
            ("GET", "/admin/v1/sites", None),
            ("GET", "/admin/v1/sites/demo", None),
            ("PUT", "/admin/v1/sites/demo", Some("{}")),
            ("DELETE", "/admin/v1/sites/demo", None),
            (
                "PUT",
                "/admin/v1/sites/demo/baseline",
                Some("{\"value\":1}"),
            ),
            ("POST", "/admin/v1/salts/rotate", Some("{}")),
            ("GET", "/admin/v1/audit", None),
        ];
        for (method, uri, body) in routes {
            for token in [
                None,
                Some("wrong-token"),
                Some(""),
                Some("first-admin-token"),
            ] {
                let (status, response) = send(&app, method, uri, token, body).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {token:?}");
                assert_eq!(response["error"]["code"], "unauthorized");
            }
        }
        let request = axum::http::Request::get("/admin/v1/sites")
            .header(header::AUTHORIZATION, format!("Basic {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send_request(&app, request).await.0,
            StatusCode::UNAUTHORIZED
        );
        for token in [TOKEN, ROTATED] {
            let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(token), None).await;
            assert_eq!(status, StatusCode::OK, "{token}");
            assert_eq!(body["sites"], json!([]));
        }
    }

    #[tokio::test]
    async fn sites_are_created_read_replaced_and_deleted() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, app) = instance(&store);
        // The body may omit the id: the path names the site.
        let (status, body) = send(
            &app,
            "PUT",
            "/admin/v1/sites/caukee",
            Some(TOKEN),
            Some(r#"{"name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"]}"#),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["created"], true);
        assert_eq!(body["changed"], true);
        assert_eq!(body["site"]["id"], "caukee");
        assert_eq!(body["site"]["time_zone"], "Asia/Ho_Chi_Minh");
        assert_eq!(body["registry_version"], 1);
        let id = SiteId::new("caukee").unwrap();
        assert!(
            state.sites.get(&id).is_some(),
            "served at once by this instance"
        );

        let (status, body) = send(&app, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["site"]["name"], "Cầu Kè");

        // The same settings again (id now given, and equal): nothing changes.
        let same = r#"{"id": "caukee", "name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"]}"#;
        let (status, body) = send(
            &app,
            "PUT",
            "/admin/v1/sites/caukee",
            Some(TOKEN),
            Some(same),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["created"].clone(), body["changed"].clone()),
            (json!(false), json!(false))
        );
        assert_eq!(body["registry_version"], 1);

        let replaced =
            r#"{"name": "Cầu Kè", "hostnames": ["caukee.travinh.gov.vn"], "week": "rolling"}"#;
        let (status, body) = send(
            &app,
            "PUT",
            "/admin/v1/sites/caukee",
            Some(ROTATED),
            Some(replaced),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["changed"], true);
        assert_eq!(body["registry_version"], 2);
        assert_eq!(state.sites.get(&id).unwrap().settings.week, "rolling");

        let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["sites"][0]["id"], "caukee");
        assert_eq!(body["registry_version"], 2);

        // Counters survive deletion.
        let baseline = keys::baseline(&id, Metric::Visits);
        store.set(&baseline, b"42", None).await.unwrap();
        let (status, body) =
            send(&app, "DELETE", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["deleted"], true);
        assert_eq!(body["counters_kept"], true);
        assert!(body["note"].as_str().unwrap().contains("stay in the store"));
        assert!(state.sites.get(&id).is_none());
        assert_eq!(
            stored_bytes(&store, &baseline).await.as_deref(),
            Some(&b"42"[..])
        );

        for (method, uri) in [
            ("GET", "/admin/v1/sites/caukee"),
            ("DELETE", "/admin/v1/sites/caukee"),
        ] {
            let (status, body) = send(&app, method, uri, Some(TOKEN), None).await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
            assert!(message(&body).contains("caukee"), "{body}");
        }
    }

    #[tokio::test]
    async fn put_site_refuses_bad_bodies_with_a_clear_message() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, app) = instance(&store);
        let uri = "/admin/v1/sites/caukee";
        let valid = settings_json("caukee", "caukee.vn");
        let cases: Vec<(String, StatusCode, &str)> = vec![
            ("{\"hostnames\": [".to_owned(), StatusCode::BAD_REQUEST, "invalid JSON"),
            ("[1, 2]".to_owned(), StatusCode::BAD_REQUEST, "JSON object"),
            (
                r#"{"hostnames": ["caukee.vn"], "time_zone": "Mars/Olympus"}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "time_zone",
            ),
            (
                r#"{"hostnames": ["caukee.vn"], "online_window_minutes": 31}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "online_window_minutes",
            ),
            (
                r#"{"hostnames": ["caukee.vn"], "footer": {"lines": [{"window": "year", "metric": "visits"}]}}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "footer.lines[0].window",
            ),
            (
                r#"{"id": "tuyengiao", "hostnames": ["caukee.vn"]}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "id: the body's id \"tuyengiao\" does not match",
            ),
            (
                r#"{"id": 7, "hostnames": ["caukee.vn"]}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "id:",
            ),
            (
                r#"{"hostnames": ["caukee.vn"], "colour": "red"}"#.to_owned(),
                StatusCode::BAD_REQUEST,
                "colour",
            ),
            (r#"{"name": "x"}"#.to_owned(), StatusCode::BAD_REQUEST, "hostnames"),
        ];
        for (body, status, needle) in cases {
            let (got, response) = send(&app, "PUT", uri, Some(TOKEN), Some(&body)).await;
            assert_eq!(got, status, "{body} → {response}");
            assert_eq!(response["error"]["code"], "bad_request");
            assert!(
                message(&response).contains(needle),
                "{needle:?} not in {response}"
            );
        }
        let (status, body) = send(
            &app,
            "PUT",
            "/admin/v1/sites/Cau_Ke",
            Some(TOKEN),
            Some(&valid),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message(&body).contains("Cau_Ke"), "{body}");
        for uri in [
            "/admin/v1/sites/%FF",
            "/admin/v1/sites/a%2Fb",
            "/admin/v1/sites/%20",
        ] {
            let (status, body) = send(&app, "GET", uri, Some(TOKEN), None).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}");
            assert!(message(&body).starts_with("site id"), "{uri}: {body}");
        }

        for content_type in [
            None,
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
        ] {
            let mut builder = axum::http::Request::put(uri)
                .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"));
            if let Some(content_type) = content_type {
                builder = builder.header(header::CONTENT_TYPE, content_type);
            }
            let request = builder.body(Body::from(valid.clone())).unwrap();
            let (status, body) = send_request(&app, request).await;
            assert_eq!(
                status,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "{content_type:?}"
            );
            assert!(message(&body).contains("application/json"), "{body}");
        }
        let request = axum::http::Request::put(uri)
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json; charset=utf-8")
            .body(Body::from(valid.clone()))
            .unwrap();
        assert_eq!(send_request(&app, request).await.0, StatusCode::CREATED);

        let huge = format!(
            r#"{{"hostnames": ["caukee.vn"], "name": "{}"}}"#,
            "x".repeat(70_000)
        );
        let (status, _) = send(&app, "PUT", uri, Some(TOKEN), Some(&huge)).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);

        // Only the one valid request changed anything.
        assert_eq!(state.registry.version(), 1);
        let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
        assert_eq!(audit["total"], 1, "{audit}");
    }

    #[tokio::test]
    async fn baselines_are_absolute_idempotent_and_never_lowered_silently() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, app) = instance(&store);
        let uri = "/admin/v1/sites/caukee/baseline";
        let (status, _) = send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 1}"#)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "unknown site");
        let site = settings_json("caukee", "caukee.vn");
        send(
            &app,
            "PUT",
            "/admin/v1/sites/caukee",
            Some(TOKEN),
            Some(&site),
        )
        .await;

        let (status, body) = send(
            &app,
            "PUT",
            uri,
            Some(TOKEN),
            Some(r#"{"metric": "visits", "value": 7289126, "allow_decrease": false}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(
            body,
            json!({"site": "caukee", "metric": "visits", "previous": 0, "current": 7289126, "changed": true})
        );
        // Again, with the metric left to its default: the same state, no change.
        let (status, body) =
            send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 7289126}"#)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            (body["previous"].clone(), body["changed"].clone()),
            (json!(7289126), json!(false))
        );

        let (status, body) =
            send(&app, "PUT", uri, Some(TOKEN), Some(r#"{"value": 7000000}"#)).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(
            message(&body).contains("7289126") && message(&body).contains("allow_decrease"),
            "{body}"
        );
        let (status, body) = send(
            &app,
            "PUT",
            uri,
            Some(TOKEN),
            Some(r#"{"value": 7000000, "allow_decrease": true}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["current"], 7000000);

        let id = SiteId::new("caukee").unwrap();
        let stored = store
            .read(
                &[Read::Counter(keys::baseline(&id, Metric::Visits))],
                state.clock.now(),
            )
            .await
            .unwrap();
        assert_eq!(stored, [7000000]);

        for (body, needle) in [
            (r#"{"metric": "hits", "value": 1}"#, "metric"),
            (r#"{"value": -1}"#, "invalid JSON"),
            (r#"{"value": 1, "extra": true}"#, "extra"),
            (r#"{"metric": "visits"}"#, "value"),
            (r#"{"value": 18446744073709551615}"#, "value: at most"),
        ] {
            let (status, response) = send(&app, "PUT", uri, Some(TOKEN), Some(body)).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
            assert!(
                message(&response).contains(needle),
                "{needle:?} not in {response}"
            );
        }
        // Two changes audited; the idempotent repeat and the refusals are not.
        let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
        let entries = audit["entries"].as_array().unwrap();
        let baselines: Vec<&Value> = entries
            .iter()
            .filter(|e| e["action"] == "baseline.set")
            .collect();
        assert_eq!(baselines.len(), 2, "{audit}");
        assert_eq!(baselines[0]["summary"]["old"], 7289126);
        assert_eq!(baselines[0]["summary"]["new"], 7000000);
        assert_eq!(baselines[1]["summary"]["old"], 0);
    }

    #[tokio::test]
    async fn salts_rotate_for_one_site_or_all() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, app) = instance(&store);
        for id in ["a", "b"] {
            let site = settings_json(id, &format!("{id}.vn"));
            send(
                &app,
                "PUT",
                &format!("/admin/v1/sites/{id}"),
                Some(TOKEN),
                Some(&site),
            )
            .await;
        }
        let now = state.clock.now();
        let salt_of = |id: &str| {
            let site = state.sites.get(&SiteId::new(id).unwrap()).unwrap();
            let store = Arc::clone(&store);
            async move {
                let period = site
                    .rules
                    .salt_rotation()
                    .period(site.rules.calendar(), now);
                stored_bytes(&store, &keys::salt(&site.id, &period.id)).await
            }
        };
        for id in ["a", "b"] {
            let site = state.sites.get(&SiteId::new(id).unwrap()).unwrap();
            state
                .salts
                .secrets()
                .load(store.as_ref(), &site.id, &site.rules, now)
                .await
                .unwrap();
        }
        let (a0, b0) = (salt_of("a").await.unwrap(), salt_of("b").await.unwrap());

        let (status, body) = send(
            &app,
            "POST",
            "/admin/v1/salts/rotate",
            Some(TOKEN),
            Some(r#"{"site": "a"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["rotated"], json!(["a"]));
        let (a1, b1) = (salt_of("a").await.unwrap(), salt_of("b").await.unwrap());
        assert_ne!(a0, a1);
        assert_eq!(b0, b1);

        let (status, body) = send(
            &app,
            "POST",
            "/admin/v1/salts/rotate",
            Some(TOKEN),
            Some("{}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["rotated"], json!(["a", "b"]));
        assert_ne!(salt_of("a").await.unwrap(), a1);
        assert_ne!(salt_of("b").await.unwrap(), b1);

        let (status, _) = send(
            &app,
            "POST",
            "/admin/v1/salts/rotate",
            Some(TOKEN),
            Some(r#"{"site": "zz"}"#),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);
        let (status, _) = send(
            &app,
            "POST",
            "/admin/v1/salts/rotate",
            Some(TOKEN),
            Some(r#"{"sites": []}"#),
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        // An empty body is not "all sites": rotating everything must be asked for.
        let request = axum::http::Request::post("/admin/v1/salts/rotate")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .body(Body::empty())
            .unwrap();
        assert_eq!(
            send_request(&app, request).await.0,
            StatusCode::UNSUPPORTED_MEDIA_TYPE
        );

        let (_, audit) = send(&app, "GET", "/admin/v1/audit?limit=3", Some(TOKEN), None).await;
        let sites: Vec<&Value> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["site"])
            .collect();
        assert_eq!(sites, [&json!("b"), &json!("a"), &json!("a")], "{audit}");
        assert!(
            audit["entries"]
                .as_array()
                .unwrap()
                .iter()
                .all(|e| e["action"] == "salt.rotate")
        );
    }

    #[tokio::test]
    async fn audit_names_the_token_by_fingerprint_only() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (_state, app) = instance(&store);
        put_site(&app, TOKEN, "a", "a.vn").await;
        put_site(&app, ROTATED, "b", "b.vn").await;
        put_site(&app, ROTATED, "a", "a2.vn").await;

        let (status, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(audit["total"], 3);
        let entries = audit["entries"].as_array().unwrap();
        let summary: Vec<(&str, &str, &str)> = entries
            .iter()
            .map(|e| {
                (
                    e["action"].as_str().unwrap(),
                    e["site"].as_str().unwrap(),
                    e["actor"].as_str().unwrap(),
                )
            })
            .collect();
        let (first, second) = (
            format!("token:{}", fingerprint(TOKEN)),
            format!("token:{}", fingerprint(ROTATED)),
        );
        assert_eq!(
            summary,
            [
                ("site.update", "a", second.as_str()),
                ("site.create", "b", second.as_str()),
                ("site.create", "a", first.as_str()),
            ]
        );
        assert_eq!(entries[0]["at"], "2026-11-30T17:00:00Z");
        assert_eq!(
            entries[0]["summary"]["changes"],
            json!({"hostnames": {"old": ["a.vn"], "new": ["a2.vn"]}})
        );

        let stored =
            String::from_utf8(stored_bytes(&store, &keys::audit()).await.unwrap()).unwrap();
        for secret in [
            TOKEN.to_owned(),
            ROTATED.to_owned(),
            hex::encode(Sha256::digest(TOKEN)),
            hex::encode(Sha256::digest(ROTATED)),
        ] {
            assert!(!stored.contains(&secret), "the audit log holds {secret}");
        }

        let (status, audit) = send(&app, "GET", "/admin/v1/audit?limit=1", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(audit["entries"].as_array().unwrap().len(), 1);
        assert_eq!(audit["entries"][0]["action"], "site.update");
        for query in ["limit=0", "limit=abc", "limit=10001", "limt=5"] {
            let (status, body) = send(
                &app,
                "GET",
                &format!("/admin/v1/audit?{query}"),
                Some(TOKEN),
                None,
            )
            .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
            assert_eq!(body["error"]["code"], "bad_request", "{query}");
        }
    }

    #[tokio::test]
    async fn two_instances_over_one_store_converge() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (a, app_a) = instance(&store);
        let (b, app_b) = instance(&store);
        registry::import_at_startup(&a, vec![SiteSettings::demo()]).await;
        registry::import_at_startup(&b, vec![SiteSettings::demo()]).await;
        assert_eq!((a.registry.version(), b.registry.version()), (1, 1));

        put_site(&app_a, TOKEN, "caukee", "caukee.vn").await;
        assert_eq!(
            send(&app_b, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None)
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            registry::sync(&b).await.unwrap(),
            SyncOutcome::Reloaded { version: 2 }
        );
        assert_eq!(registry::sync(&b).await.unwrap(), SyncOutcome::Unchanged);
        let (status, body) = send(&app_b, "GET", "/admin/v1/sites/caukee", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["site"]["hostnames"], json!(["caukee.vn"]));

        // B edits, A follows; A deletes, B follows.
        put_site(&app_b, TOKEN, "caukee", "caukee.travinh.gov.vn").await;
        registry::sync(&a).await.unwrap();
        let id = SiteId::new("caukee").unwrap();
        assert_eq!(
            a.sites.get(&id).unwrap().settings.hostnames,
            ["caukee.travinh.gov.vn"]
        );
        send(
            &app_a,
            "DELETE",
            "/admin/v1/sites/caukee",
            Some(TOKEN),
            None,
        )
        .await;
        registry::sync(&b).await.unwrap();
        assert!(b.sites.get(&id).is_none());
        assert!(b.sites.get(&SiteId::new("demo").unwrap()).is_some());
        assert_eq!(a.registry.version(), b.registry.version());
    }

    #[tokio::test]
    async fn a_salt_rotated_on_one_instance_is_dropped_by_the_others_at_sync() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (a, app_a) = instance(&store);
        let (b, _app_b) = instance(&store);
        registry::import_at_startup(&a, vec![SiteSettings::new("caukee", &["caukee.vn"])]).await;
        registry::import_at_startup(&b, vec![SiteSettings::new("caukee", &["caukee.vn"])]).await;
        let site = b.sites.get(&SiteId::new("caukee").unwrap()).unwrap();
        let ip = "203.0.113.7".parse().unwrap();
        let identify = || b.salts.identify(&site, ip, "Mozilla/5.0", b.clock.now());
        let before = identify().await.unwrap().visitor;

        let (status, _) = send(
            &app_a,
            "POST",
            "/admin/v1/salts/rotate",
            Some(TOKEN),
            Some("{}"),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            identify().await.unwrap().visitor,
            before,
            "B still has the old salt cached"
        );
        assert!(matches!(
            registry::sync(&b).await.unwrap(),
            SyncOutcome::Reloaded { .. }
        ));
        assert_ne!(
            identify().await.unwrap().visitor,
            before,
            "B dropped it at sync"
        );
    }

    /// A `tracing` writer into a shared buffer.
    #[derive(Clone, Default)]
    struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[tokio::test]
    async fn audit_log_lines_carry_the_fingerprint_and_never_the_token() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::DEBUG)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        // With a single dispatcher registered, tracing computes a callsite's interest from
        // the default of whichever thread hits it first, and other test threads have
        // none: the audit callsite could be cached as "never" while this test runs. A
        // second live dispatcher makes it ask every registered dispatcher, this one too.
        let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
        let _guard = tracing::subscriber::set_default(subscriber);
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (_state, app) = instance(&store);
        let request = axum::http::Request::put("/admin/v1/sites/caukee")
            .header(header::AUTHORIZATION, format!("Bearer {TOKEN}"))
            .header(header::CONTENT_TYPE, "application/json")
            .header("x-forwarded-for", "198.51.100.23")
            .body(Body::from(settings_json("caukee", "caukee.vn")))
            .unwrap();
        assert_eq!(send_request(&app, request).await.0, StatusCode::CREATED);
        send(
            &app,
            "GET",
            "/admin/v1/sites",
            Some("wrong-token-value"),
            None,
        )
        .await;

        let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("admin change"), "{logs}");
        assert!(
            logs.contains(&format!("token:{}", fingerprint(TOKEN))),
            "{logs}"
        );
        assert!(logs.contains("site.create"), "{logs}");
        for secret in [
            TOKEN,
            "wrong-token-value",
            "198.51.100.23",
            &hex::encode(Sha256::digest(TOKEN)),
        ] {
            assert!(!logs.contains(secret), "the logs hold {secret}: {logs}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_creates_on_two_instances_lose_nothing() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (a, app_a) = instance(&store);
        let (b, app_b) = instance(&store);
        let mut tasks = Vec::new();
        for n in 0..24 {
            let app = if n % 2 == 0 {
                app_a.clone()
            } else {
                app_b.clone()
            };
            tasks.push(tokio::spawn(async move {
                let id = format!("site-{n}");
                put_site(&app, TOKEN, &id, "x.vn").await.0
            }));
        }
        for task in tasks {
            assert_eq!(task.await.unwrap(), StatusCode::CREATED);
        }
        for state in [&a, &b] {
            registry::sync(state).await.unwrap();
            assert_eq!(state.sites.len(), 24);
            assert_eq!(state.registry.version(), 24);
        }
        let (_, audit) = send(&app_b, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
        assert_eq!(audit["total"], 24, "every audit entry landed");
    }

    #[tokio::test]
    async fn an_unreadable_registry_keeps_the_last_one_and_is_not_overwritten() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, app) = instance(&store);
        registry::import_at_startup(&state, vec![SiteSettings::demo()]).await;
        put_site(&app, TOKEN, "caukee", "caukee.vn").await;

        for garbage in [
            &b"{not json"[..],
            b"",
            b"[]",
            br#"{"format": 2, "version": 9, "sites": {}}"#,
            &[0xff, 0xfe][..],
        ] {
            store.set(&keys::registry(), garbage, None).await.unwrap();
            assert!(matches!(
                registry::sync(&state).await,
                Err(registry::RegistryError::Unreadable { .. })
            ));
            // Seen once: not parsed (or logged) again.
            assert_eq!(
                registry::sync(&state).await.unwrap(),
                SyncOutcome::Unchanged
            );
            let (status, body) = send(&app, "GET", "/admin/v1/sites", Some(TOKEN), None).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(body["sites"].as_array().unwrap().len(), 2, "{body}");
            let (status, body) = put_site(&app, TOKEN, "x", "x.vn").await;
            assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{body}");
            assert_eq!(
                stored_bytes(&store, &keys::registry()).await.as_deref(),
                Some(garbage)
            );
        }

        // A wiped key is written back whole by the next change.
        store.delete(&[keys::registry()]).await.unwrap();
        assert_eq!(registry::sync(&state).await.unwrap(), SyncOutcome::Missing);
        assert_eq!(state.sites.len(), 2);
        let (status, _) = put_site(&app, TOKEN, "x", "x.vn").await;
        assert_eq!(status, StatusCode::CREATED);
        let stored = registry::RegistryDocument::parse(
            &stored_bytes(&store, &keys::registry()).await.unwrap(),
        )
        .unwrap();
        assert_eq!(
            stored.sites.keys().collect::<Vec<_>>(),
            ["caukee", "demo", "x"]
        );
    }

    #[tokio::test]
    async fn an_invalid_site_in_the_stored_registry_keeps_its_previous_settings() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let (state, _app) = instance(&store);
        registry::import_at_startup(&state, vec![SiteSettings::new("caukee", &["caukee.vn"])])
            .await;
        let mut document = registry::RegistryDocument::parse(
            &stored_bytes(&store, &keys::registry()).await.unwrap(),
        )
        .unwrap();
        document.version += 1;
        document.sites.get_mut("caukee").unwrap().time_zone = "Mars/Olympus".to_owned();
        document.sites.insert(
            "other".to_owned(),
            SiteSettings::new("other", &["other.vn"]),
        );
        document
            .sites
            .insert("wrong".to_owned(), SiteSettings::new("notwrong", &["w.vn"]));
        store
            .set(
                &keys::registry(),
                &serde_json::to_vec(&document).unwrap(),
                None,
            )
            .await
            .unwrap();
        assert_eq!(
            registry::sync(&state).await.unwrap(),
            SyncOutcome::Reloaded { version: 2 }
        );
        let ids: Vec<String> = state.sites.all().iter().map(|s| s.id.to_string()).collect();
        assert_eq!(ids, ["caukee", "other"]);
        assert_eq!(
            state
                .sites
                .get(&SiteId::new("caukee").unwrap())
                .unwrap()
                .settings
                .time_zone,
            "Asia/Ho_Chi_Minh"
        );
    }

    #[tokio::test]
    async fn restarts_keep_api_sites_and_the_file_wins_for_its_own() {
        let store = Arc::new(AnyStore::Memory(MemoryStore::new()));
        let file = vec![
            SiteSettings::demo(),
            SiteSettings::new("caukee", &["caukee.vn"]),
        ];
        let (first, app) = instance(&store);
        registry::import_at_startup(&first, file.clone()).await;
        put_site(&app, TOKEN, "extra", "extra.vn").await;
        put_site(&app, TOKEN, "caukee", "edited.vn").await;
        let (status, body) = send(&app, "DELETE", "/admin/v1/sites/demo", Some(TOKEN), None).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            body["note"].as_str().unwrap().contains("sites file"),
            "{body}"
        );

        // A restart with the same file: a new instance over the same store.
        let (second, app) = instance(&store);
        registry::import_at_startup(&second, file.clone()).await;
        let ids: Vec<String> = second
            .sites
            .all()
            .iter()
            .map(|s| s.id.to_string())
            .collect();
        assert_eq!(ids, ["caukee", "demo", "extra"]);
        assert_eq!(
            second
                .sites
                .get(&SiteId::new("caukee").unwrap())
                .unwrap()
                .settings
                .hostnames,
            ["caukee.vn"]
        );

        // A third start changes nothing, so it writes and audits nothing.
        let version = second.registry.version();
        let (third, _) = instance(&store);
        registry::import_at_startup(&third, file).await;
        assert_eq!(third.registry.version(), version);

        let (_, audit) = send(&app, "GET", "/admin/v1/audit", Some(TOKEN), None).await;
        let imports: Vec<&Value> = audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["action"] == "registry.import")
            .collect();
        assert_eq!(imports.len(), 2, "{audit}");
        assert_eq!(imports[0]["actor"], "startup");
        assert_eq!(imports[0]["summary"]["added"], json!(["demo"]));
        assert_eq!(imports[0]["summary"]["updated"], json!(["caukee"]));
        assert_eq!(imports[1]["summary"]["added"], json!(["demo", "caukee"]));
    }
}
