//! The admin API, on the internal listener, behind bearer tokens.
//!
//! Routes (under `/admin/v1`, JSON in and out, errors as `{"error": {"code", "message"}}`),
//! all declared in [`ROUTES`] with who may call them ([`Access`]):
//!
//! | route | does | a site's token |
//! |---|---|---|
//! | `GET /sites` | every site's settings and the registry version | its sites only |
//! | `GET /sites/{site}` | one site's settings | its sites |
//! | `PUT /sites/{site}` | creates (201) or replaces (200) a site: a full replacement, so a setting the body leaves out takes its default (a trust record left out is removed); the body is [`SiteSettings`], whose `id` may be omitted and otherwise must equal the path's | replaces its sites; creates none |
//! | `PATCH /sites/{site}` | changes some settings of a registered site (JSON merge patch, RFC 7396): what the body leaves out is kept, `null` resets a setting to its default (removes an optional one), arrays replace; the result is validated as `PUT` validates it | its sites |
//! | `DELETE /sites/{site}` | unregisters a site; its counters stay in the store | no |
//! | `PUT /sites/{site}/baseline` | sets an imported all-time baseline (absolute, idempotent) | its sites |
//! | `PUT /sites/{site}/history` | imports the earlier counter's days (CSV or JSON; `?replace=true`, `?dry_run=true`), see [`history`] | its sites |
//! | `DELETE /sites/{site}/history` | removes the imported days | its sites |
//! | `POST /salts/rotate` | replaces the salt of one site (`{"site": "…"}`) or of all (`{}`) | its sites (`{}`: all of its sites) |
//! | `GET /audit?limit=N` | the most recent audit entries, newest first | its sites' entries only |
//!
//! An operator's token may call every route. A site's token that asks for another site
//! gets 403 `forbidden`; so does one that would change a site's trust record (the
//! issuer's word, signed with the issuer's key: only an operator changes it). Every
//! change is written to the audit log ([`crate::audit`]) with the fingerprint and the
//! scope of the token that made it.
//!
//! A site the sites file names (or the built-in demo site) is registered again at every
//! start-up with the file's settings: the file is configuration management and wins. A
//! change to such a site still applies until then, and its answer carries a `warning`
//! saying so (logged at WARN too).

use axum::Json;
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use bytes::Bytes;
use footfall::{Metric, SiteId};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::audit::{self, Action, Actor, AuditEntry};
use crate::error::{AppError, error_response};
use crate::registry::{self, Edit};
use crate::sites::{Site, SiteSettings};
use crate::state::AppState;

pub use tokens::{AdminTokens, Caller, Scope, fingerprint_of_digest};

mod access;
pub mod history;
pub mod tokens;

use access::{AccessChecked, RequestActor, SitePath, parse_site_id, require_operator};
pub use access::{ManagedSite, RequestCaller};

/// Who may call an admin route besides an operator's token, which may call every one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A token of the site the route's `{site}` names.
    Site,
    /// Any token; the answer shows only the token's own sites.
    Filtered,
    /// Any token; the handler checks the sites the body names ([`ManagedSite::check`]).
    SiteInBody,
    /// An operator's token only.
    Operator,
}

/// One admin route: its method and path (under `/admin/v1`), who may call it, and its
/// handler. The router is built from [`ROUTES`] only, each route behind the check of its
/// [`Access`], so no route escapes the scope check (a test walks the list).
#[derive(Debug)]
pub struct AdminRoute {
    /// The method.
    pub method: Method,
    /// The path under `/admin/v1`.
    pub path: &'static str,
    /// Who may call it.
    pub access: Access,
    /// The handler, on `method`.
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
}

/// Every admin route. To add one: a line here, and in a `{site}` route's handler the
/// [`ManagedSite`] extractor (a site's token for another site is refused with 403 before
/// the handler runs, and the extractor says so again where the site is used). A handler
/// mounted some other way cannot extract its caller ([`RequestCaller`], [`ManagedSite`]
/// fail with a 500 naming the route), so no route escapes the list.
pub static ROUTES: &[AdminRoute] = &[
    route(Method::GET, "/sites", Access::Filtered, |m| {
        on(m, list_sites)
    }),
    route(Method::GET, "/sites/{site}", Access::Site, |m| {
        on(m, get_site)
    }),
    route(Method::PUT, "/sites/{site}", Access::Site, |m| {
        on(m, put_site)
    }),
    route(Method::PATCH, "/sites/{site}", Access::Site, |m| {
        on(m, patch_site)
    }),
    route(Method::DELETE, "/sites/{site}", Access::Operator, |m| {
        on(m, delete_site)
    }),
    route(Method::PUT, "/sites/{site}/baseline", Access::Site, |m| {
        on(m, put_baseline)
    }),
    route(Method::PUT, "/sites/{site}/history", Access::Site, |m| {
        on(m, history::put_history)
    }),
    route(Method::DELETE, "/sites/{site}/history", Access::Site, |m| {
        on(m, history::delete_history)
    }),
    route(Method::POST, "/salts/rotate", Access::SiteInBody, |m| {
        on(m, rotate_salts)
    }),
    route(Method::GET, "/audit", Access::Filtered, |m| {
        on(m, get_audit)
    }),
];

const fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> AdminRoute {
    AdminRoute {
        method,
        path,
        access,
        handler,
    }
}

/// The admin routes (mounted under `/admin/v1`), built from [`ROUTES`].
pub fn routes() -> axum::Router<AppState> {
    let mut router = axum::Router::new();
    for route in ROUTES {
        let filter = MethodFilter::try_from(route.method.clone())
            .expect("admin routes use standard methods");
        let access = route.access;
        let guarded = (route.handler)(filter).route_layer(axum::middleware::from_fn(
            move |request: Request, next: Next| check_access(access, request, next),
        ));
        // Routes on one path merge their methods.
        router = router.route(route.path, guarded);
    }
    router.method_not_allowed_fallback(method_not_allowed)
}

/// The scope check every admin route runs before its handler: a site's token is refused
/// (403) on operator routes and on `{site}` routes of sites it does not manage.
async fn check_access(access: Access, request: Request, next: Next) -> Response {
    let (mut parts, body) = request.into_parts();
    // What the handler's extractors require: a handler of a route left out of ROUTES
    // (so never checked here) cannot learn its caller, and fails instead of running.
    parts.extensions.insert(AccessChecked);
    let checked = match access {
        Access::Operator => RequestCaller::from_request_parts(&mut parts, &())
            .await
            .and_then(|RequestCaller(caller)| require_operator(&caller)),
        Access::Site => ManagedSite::from_request_parts(&mut parts, &())
            .await
            .map(|_| ()),
        Access::Filtered | Access::SiteInBody => RequestCaller::from_request_parts(&mut parts, &())
            .await
            .map(|_| ()),
    };
    match checked {
        Ok(()) => next.run(Request::from_parts(parts, body)).await,
        Err(error) => error.into_response(),
    }
}

async fn method_not_allowed() -> Response {
    error_response(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "this route does not take that method (see the Allow header)".to_owned(),
    )
}

/// Middleware: requires `Authorization: Bearer <token>` with a configured token, and
/// tells the handlers which one ([`Caller`] in the request's extensions).
pub async fn require_token(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Result<Response, AppError> {
    match bearer_caller(&state.admin, request.headers()) {
        Some(caller) => {
            request.extensions_mut().insert(caller);
            Ok(next.run(request).await)
        }
        None => Err(AppError::Unauthorized),
    }
}

/// The caller an `Authorization: Bearer <token>` header identifies, if any.
pub fn bearer_caller(tokens: &AdminTokens, headers: &axum::http::HeaderMap) -> Option<Caller> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|token| !token.is_empty())
        .and_then(|token| tokens.identify(token))
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

fn payload_too_large() -> Response {
    AppError::TooLarge("the body is too large".to_owned()).into_response()
}

fn unknown_site(id: &SiteId) -> AppError {
    AppError::NotFound(format!("no site {:?} is registered", id.as_str()))
}

/// `GET /admin/v1/sites`: every site's settings the caller manages, sorted by id.
async fn list_sites(
    State(state): State<AppState>,
    RequestCaller(caller): RequestCaller,
) -> Json<Value> {
    let all = state.sites.all();
    let sites: Vec<&SiteSettings> = all
        .iter()
        .filter(|site| caller.scope.covers(site.id.as_str()))
        .map(|site| &site.settings)
        .collect();
    Json(json!({
        "registry_version": state.registry.version(),
        "sites": sites,
    }))
}

/// `GET /admin/v1/sites/{site}`.
async fn get_site(
    State(state): State<AppState>,
    ManagedSite { id, .. }: ManagedSite,
) -> Result<Json<Value>, AppError> {
    let site = state.sites.get(&id).ok_or_else(|| unknown_site(&id))?;
    Ok(Json(json!({
        "registry_version": state.registry.version(),
        "site": site.settings,
    })))
}

/// `PUT /admin/v1/sites/{site}`: creates or replaces a site. A full replacement: a
/// setting the body leaves out takes its default ([`patch_site`] changes some only).
async fn put_site(
    State(state): State<AppState>,
    ManagedSite { id, caller }: ManagedSite,
    JsonBody(body): JsonBody<Value>,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let actor = caller.actor();
    let Value::Object(object) = body else {
        return Err(AppError::BadRequest(
            "the body must be a JSON object of site settings".to_owned(),
        ));
    };
    let settings = validated_settings(&id, object)?;

    let updated = registry::update(&state.registry, |document| -> Result<_, AppError> {
        let current = document.sites.get(id.as_str());
        if current.is_none() {
            require_operator(&caller)?;
        }
        check_trust_change(&caller, current, &settings)?;
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
        record_settings_change(&state, &actor, &id, previous.as_ref(), &settings).await;
    }
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    let mut answer = json!({
        "site": settings,
        "created": created,
        "changed": updated.changed,
        "registry_version": updated.version,
    });
    warn_if_startup_site(&state, &id, "PUT", &mut answer);
    Ok((status, Json(answer)))
}

/// `PATCH /admin/v1/sites/{site}`: changes some settings of a registered site. The body
/// is a JSON merge patch (RFC 7396, `application/merge-patch+json` or
/// `application/json`) applied to the stored settings: objects merge, `null` removes
/// (the setting takes its default), arrays replace. The result is validated as
/// [`put_site`] validates a body, and nothing changes when it is refused.
async fn patch_site(
    State(state): State<AppState>,
    ManagedSite { id, caller }: ManagedSite,
    JsonBody(patch): JsonBody<Value>,
) -> Result<Json<Value>, AppError> {
    let actor = caller.actor();
    if !patch.is_object() {
        return Err(AppError::BadRequest(
            "the body must be a JSON object: a merge patch of the site's settings".to_owned(),
        ));
    }
    // Applied to the newest stored document inside the read-modify-write, so a change
    // another instance made in the meantime is patched rather than overwritten.
    let updated = registry::update(&state.registry, |document| -> Result<_, AppError> {
        let current = document
            .sites
            .get(id.as_str())
            .ok_or_else(|| unknown_site(&id))?;
        let mut merged = serde_json::to_value(current)
            .map_err(|e| AppError::Internal(format!("serialising site settings: {e}")))?;
        merge_patch(&mut merged, &patch);
        let Value::Object(object) = merged else {
            return Err(AppError::BadRequest(
                "the patched settings are not a JSON object".to_owned(),
            ));
        };
        let settings = validated_settings(&id, object)?;
        check_trust_change(&caller, Some(current), &settings)?;
        let previous = document.sites.insert(id.to_string(), settings.clone());
        Ok(if previous.as_ref() == Some(&settings) {
            Edit::Unchanged((previous, settings))
        } else {
            Edit::Changed((previous, settings))
        })
    })
    .await?;
    let (previous, settings) = updated.value;
    if updated.changed {
        record_settings_change(&state, &actor, &id, previous.as_ref(), &settings).await;
    }
    let mut answer = json!({
        "site": settings,
        "created": false,
        "changed": updated.changed,
        "registry_version": updated.version,
    });
    warn_if_startup_site(&state, &id, "PATCH", &mut answer);
    Ok(Json(answer))
}

/// A site's trust record is the issuer's statement about the site, signed with the
/// issuer's key: a site's own token may keep it but not change it.
fn check_trust_change(
    caller: &Caller,
    current: Option<&SiteSettings>,
    settings: &SiteSettings,
) -> Result<(), AppError> {
    let unchanged = current.map(|current| &current.trust) == Some(&settings.trust);
    if unchanged || caller.scope.is_operator() {
        return Ok(());
    }
    Err(AppError::Forbidden(
        "trust: the trust record is certified by the issuer and signed with its key; only \
         an operator's token changes it (send the site's current trust record, or leave \
         it out of a PATCH)"
            .to_owned(),
    ))
}

/// Applies a JSON merge patch (RFC 7396) to `target`: an object patch merges key by key
/// (recursively), a `null` member removes the key, anything else replaces the target.
fn merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(serde_json::Map::new());
    }
    let Value::Object(target) = target else {
        return;
    };
    for (name, value) in patch {
        if value.is_null() {
            target.remove(name);
        } else {
            merge_patch(target.entry(name.clone()).or_insert(Value::Null), value);
        }
    }
}

/// The site settings of a body (`PUT`) or a patched document (`PATCH`), validated. The
/// path names the site: the settings may repeat its id but not contradict it.
fn validated_settings(
    id: &SiteId,
    mut object: serde_json::Map<String, Value>,
) -> Result<SiteSettings, AppError> {
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
    Ok(settings)
}

/// Audits a site created (no `previous`) or changed, with the settings that differ.
async fn record_settings_change(
    state: &AppState,
    actor: &Actor,
    id: &SiteId,
    previous: Option<&SiteSettings>,
    settings: &SiteSettings,
) {
    let (action, summary) = match previous {
        None => (Action::SiteCreate, json!({ "settings": settings })),
        Some(old) => (
            Action::SiteUpdate,
            json!({ "changes": registry::settings_diff(old, settings) }),
        ),
    };
    audit::record(
        state.store.as_ref(),
        state.clock.now(),
        vec![AuditEntry::new(
            state.clock.now(),
            action,
            Some(id.as_str()),
            actor,
            summary,
        )],
    )
    .await;
}

/// For a site registered at every start-up (the sites file's, or the built-in demo
/// site): adds a `warning` to the answer and logs it, since the next start puts the
/// file's settings back whatever this change did.
fn warn_if_startup_site(state: &AppState, id: &SiteId, method: &str, answer: &mut Value) {
    if !state.registry.from_sites_file(id.as_str()) {
        return;
    }
    let undone = if method == "DELETE" {
        "it is registered again, with the file's settings, at the next start"
    } else {
        "the file's settings replace this change at the next start"
    };
    let warning = format!(
        "{id} is in the sites file (or is the built-in demo site), which is registered at \
         every start-up: {undone}; make the change in the sites file too",
        id = id.as_str()
    );
    tracing::warn!(site = %id, method, "{warning}");
    if let Value::Object(answer) = answer {
        answer.insert("warning".to_owned(), Value::String(warning));
    }
}

/// `DELETE /admin/v1/sites/{site}`: unregisters a site. Its counters, baselines and
/// (until they expire) salts stay in the store, so registering it again resumes them.
async fn delete_site(
    State(state): State<AppState>,
    RequestCaller(caller): RequestCaller,
    SitePath(id): SitePath,
) -> Result<Json<Value>, AppError> {
    require_operator(&caller)?;
    let actor = caller.actor();
    let updated = registry::update(&state.registry, |document| -> Result<_, AppError> {
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
        state.store.as_ref(),
        state.clock.now(),
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
    let mut answer = json!({
        "site": id.as_str(),
        "deleted": true,
        "counters_kept": true,
        "registry_version": updated.version,
        "note": note,
    });
    warn_if_startup_site(&state, &id, "DELETE", &mut answer);
    Ok(Json(answer))
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
    ManagedSite { id, .. }: ManagedSite,
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
            state.store.as_ref(),
            state.clock.now(),
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
    RequestCaller(caller): RequestCaller,
    JsonBody(request): JsonBody<RotateRequest>,
) -> Result<Json<Value>, AppError> {
    let actor = caller.actor();
    let sites = match &request.site {
        Some(raw) => {
            let id = parse_site_id(raw)?;
            ManagedSite::check(&caller, &id)?;
            vec![state.sites.get(&id).ok_or_else(|| unknown_site(&id))?]
        }
        None => state
            .sites
            .all()
            .into_iter()
            .filter(|site| caller.scope.covers(site.id.as_str()))
            .collect(),
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
        let marked = registry::update(&state.registry, |document| -> Result<_, AppError> {
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
        audit::record(state.store.as_ref(), state.clock.now(), entries).await;
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

/// `GET /admin/v1/audit?limit=N`: the most recent entries, newest first; for a site's
/// token, only the entries of its sites.
async fn get_audit(
    State(state): State<AppState>,
    RequestCaller(caller): RequestCaller,
    uri: Uri,
) -> Result<Json<Value>, AppError> {
    let query = axum::extract::Query::<AuditQuery>::try_from_uri(&uri)
        .map_err(|e| AppError::BadRequest(format!("query: {}", e.body_text())))?;
    let limit = query.limit.unwrap_or(DEFAULT_AUDIT_LIMIT);
    if !(1..=audit::MAX_ENTRIES).contains(&limit) {
        return Err(AppError::BadRequest(format!(
            "limit: expected 1 to {}",
            audit::MAX_ENTRIES
        )));
    }
    let shown = |entry: &AuditEntry| {
        caller.scope.is_operator()
            || entry
                .site
                .as_deref()
                .is_some_and(|site| caller.scope.covers(site))
    };
    let (entries, total) = audit::recent(state.store.as_ref(), limit, state.clock.now(), shown)
        .await
        .map_err(|error| match error {
            audit::AuditError::Store(error) => AppError::Unavailable(Some(error.into())),
            other => AppError::Internal(other.to_string()),
        })?;
    Ok(Json(json!({ "entries": entries, "total": total })))
}

#[cfg(test)]
mod tests;
