//! The OpenAPI 3.1 description of both listeners, served at `GET /openapi.json` on the
//! internal listener. Written as data next to the routers; a test sends a request for
//! every documented operation and checks that a real route answers it.

use serde_json::{Value, json};

fn error_response(description: &str) -> Value {
    json!({ "description": description, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn site_parameter() -> Value {
    json!({ "name": "site", "in": "path", "required": true, "schema": { "type": "string", "pattern": "^[a-z0-9][a-z0-9-]{0,62}$" } })
}

/// The document.
pub fn document() -> Value {
    let bearer = json!([{ "bearer": [] }]);
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "footfall",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Visitor counters and trust badges. The public listener (default 127.0.0.1:8080) takes hits and serves counts and widgets; the internal listener (default 127.0.0.1:9464) serves health, metrics and the admin API."
        },
        "servers": [
            { "url": "http://127.0.0.1:8080", "description": "public listener" },
            { "url": "http://127.0.0.1:9464", "description": "internal listener" }
        ],
        "paths": {
            "/api/v1/hit": { "post": {
                "summary": "Count a page view (beacon). Send as text/plain to avoid a CORS preflight.",
                "tags": ["public"],
                "requestBody": { "required": true, "content": {
                    "text/plain": { "schema": { "$ref": "#/components/schemas/Hit" } },
                    "application/json": { "schema": { "$ref": "#/components/schemas/Hit" } } } },
                "responses": {
                    "200": { "description": "With `?counts=1`: the widget's counts, with `reader` (what this page view adds for its own reader: pageviews, visits, visitors, online)." },
                    "204": { "description": "Accepted, or dropped as a robot, prefetch, foreign origin, DNT, over the rate limit or over the address's visitor budget (the answer is the same)." },
                    "400": error_response("Malformed body or site id."),
                    "404": error_response("No such site."),
                    "413": error_response("Body over 4 KiB."),
                    "415": error_response("Not text/plain or application/json.")
                } } },
            "/hit.gif": { "get": {
                "summary": "Count a page view (pixel, for pages without JavaScript).",
                "tags": ["public"],
                "parameters": [
                    { "name": "site", "in": "query", "required": true, "schema": { "type": "string" } },
                    { "name": "path", "in": "query", "schema": { "type": "string", "maxLength": 2048 } },
                    { "name": "referrer", "in": "query", "schema": { "type": "string", "maxLength": 2048 } }
                ],
                "responses": {
                    "200": { "description": "A 1×1 transparent GIF.", "content": { "image/gif": {} } },
                    "400": error_response("Malformed query."),
                    "404": error_response("No such site.")
                } } },
            "/api/v1/sites/{site}/counts": { "get": {
                "summary": "Every window's visits, visitors and pageviews, with their definitions.",
                "tags": ["public"],
                "parameters": [site_parameter()],
                "responses": {
                    "200": { "description": "Counts; cached briefly (ETag, stale-while-revalidate).", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Counts" } } } },
                    "304": { "description": "Not modified (If-None-Match)." },
                    "400": error_response("Malformed site id."),
                    "404": error_response("No such site."),
                    "503": error_response("The store is unavailable and nothing is cached yet.")
                } } },
            "/api/v1/sites/{site}/history": { "get": {
                "summary": "Per-day figures for charts, oldest first, in the site's time zone: each day live or imported from the earlier counter (`source`). JSON or CSV: `?format=` wins, else `Accept` (JSON when both or neither is preferred).",
                "tags": ["public"],
                "parameters": [site_parameter(),
                    { "name": "days", "in": "query", "schema": { "type": "integer", "minimum": 1, "default": 30 } },
                    { "name": "format", "in": "query", "schema": { "enum": ["json", "csv"] } }],
                "responses": {
                    "200": { "description": "Days. CSV: header row date,pageviews,visits,visitors,source; Content-Disposition attachment {site}-history.csv.", "content": {
                        "application/json": { "schema": { "$ref": "#/components/schemas/History" } },
                        "text/csv": { "schema": { "type": "string" } } } },
                    "400": error_response("Bad days, format or site id."),
                    "404": error_response("No such site."),
                    "406": error_response("Accept allows neither application/json nor text/csv.")
                } } },
            "/badge/{site}/{window}.json": { "get": {
                "summary": "shields.io endpoint badge (schemaVersion 1: label, message, color, labelColor, cacheSeconds and nothing else), the counter badge's label and number in the site's language.",
                "tags": ["public"],
                "parameters": [site_parameter(),
                    { "name": "window", "in": "path", "required": true, "schema": { "enum": ["online", "today", "week", "month", "total"] } },
                    { "name": "lang", "in": "query", "schema": { "enum": ["vi", "en"] } },
                    { "name": "metric", "in": "query", "schema": { "enum": ["visits", "visitors", "pageviews"] } },
                    { "name": "label", "in": "query", "schema": { "type": "string", "maxLength": 40 } }],
                "responses": {
                    "200": { "description": "The endpoint document; CORS open, revalidated every time (ETag).", "content": { "application/json": { "schema": { "type": "object", "additionalProperties": false, "required": ["schemaVersion", "label", "message"], "properties": {
                        "schemaVersion": { "const": 1 }, "label": { "type": "string" }, "message": { "type": "string" },
                        "color": { "type": "string" }, "labelColor": { "type": "string" }, "cacheSeconds": { "type": "integer" } } } } } },
                    "304": { "description": "Not modified." },
                    "404": error_response("No such site or window.")
                } } },
            "/trust/{site}/badge.svg": { "get": {
                "summary": "The site's trust badge: its live status, or \"not verified for this domain\" when the embedding page's host is not certified.",
                "tags": ["public"],
                "parameters": [site_parameter(), { "name": "lang", "in": "query", "schema": { "enum": ["vi", "en"] } }],
                "responses": { "200": { "description": "SVG badge.", "content": { "image/svg+xml": {} } }, "304": { "description": "Not modified." }, "404": error_response("No such site, or no trust record.") } } },
            "/trust/{site}": { "get": {
                "summary": "Verification page (vi/en): the record, its live status, the credential's fingerprint and the visitor's host; `/trust/{site}.json` is the signed credential.",
                "tags": ["public"],
                "parameters": [site_parameter(), { "name": "lang", "in": "query", "schema": { "enum": ["vi", "en"] } }],
                "responses": { "200": { "description": "HTML page, or with the .json suffix the Ed25519-signed credential." }, "404": error_response("No such site, or no trust record.") } } },
            "/.well-known/footfall-trust-keys": { "get": {
                "summary": "The issuer public keys that verify credentials.",
                "tags": ["public"],
                "responses": { "200": { "description": "Keys document.", "content": { "application/json": {} } } } } },
            "/livez": { "get": { "summary": "The process answers (never touches the store).", "tags": ["internal"], "responses": { "200": { "description": "ok" } } } },
            "/readyz": { "get": { "summary": "The store answers.", "tags": ["internal"], "responses": { "200": { "description": "Ready." }, "503": { "description": "Not ready." } } } },
            "/metrics": { "get": { "summary": "Prometheus metrics.", "tags": ["internal"], "responses": { "200": { "description": "Prometheus text format.", "content": { "text/plain": {} } } } } },
            "/openapi.json": { "get": { "summary": "This document.", "tags": ["internal"], "responses": { "200": { "description": "OpenAPI 3.1", "content": { "application/json": {} } } } } },
            "/admin/v1/sites": { "get": { "summary": "List sites.", "tags": ["admin"], "security": bearer, "responses": { "200": { "description": "Sites and the registry version." }, "401": error_response("No valid token.") } } },
            "/admin/v1/sites/{site}": {
                "get": { "summary": "One site's settings.", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()], "responses": { "200": { "description": "Settings." }, "401": error_response("No valid token."), "404": error_response("No such site.") } },
                "put": { "summary": "Create or replace a site. A full replacement: a setting the body leaves out takes its default and a trust record left out is removed (PATCH changes some settings only). A site of the sites file answers with a `warning`: the file's settings come back at the next start.", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()],
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/SiteSettings" } } } },
                    "responses": { "200": { "description": "Replaced." }, "201": { "description": "Created." }, "400": error_response("A setting is invalid; the message names it."), "401": error_response("No valid token."), "415": error_response("Not JSON.") } },
                "patch": { "summary": "Change some settings of a registered site: a JSON merge patch (RFC 7396) of its settings. Objects merge, null removes a setting (it takes its default), arrays replace; the result is validated as PUT validates, and audited with the diff. A site of the sites file answers with a `warning`: the file's settings come back at the next start.", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()],
                    "requestBody": { "required": true, "content": {
                        "application/merge-patch+json": { "schema": { "type": "object" } },
                        "application/json": { "schema": { "type": "object" } } } },
                    "responses": { "200": { "description": "The site's settings after the patch, and whether they changed." }, "400": error_response("The patched settings are invalid (the message names the setting); nothing changed."), "401": error_response("No valid token."), "404": error_response("No such site."), "415": error_response("Not JSON.") } },
                "delete": { "summary": "Remove a site (its counters stay in the store).", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()], "responses": { "200": { "description": "Deleted." }, "401": error_response("No valid token."), "404": error_response("No such site.") } }
            },
            "/admin/v1/sites/{site}/baseline": { "put": {
                "summary": "Set the imported total (absolute, idempotent, audited).", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()],
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["value"], "properties": {
                    "metric": { "enum": ["visits", "visitors", "pageviews"], "default": "visits" },
                    "value": { "type": "integer", "minimum": 0 },
                    "allow_decrease": { "type": "boolean", "default": false } } } } } },
                "responses": { "200": { "description": "Previous and current baseline." }, "401": error_response("No valid token."), "404": error_response("No such site."), "409": error_response("Lowering a public total needs allow_decrease.") } } },
            "/admin/v1/sites/{site}/history": {
                "put": { "summary": "Import the earlier counter's days (history only, never added to a total). Idempotent and audited; refuses days with live counts (409, naming them) unless replace=true; only settled days (through the day before yesterday), from 2000-01-01, at most 3660 days and the listener's body limit per request; visitors <= visits <= pageviews.", "tags": ["admin"], "security": bearer, "parameters": [site_parameter(),
                        { "name": "replace", "in": "query", "schema": { "type": "boolean", "default": false } },
                        { "name": "dry_run", "in": "query", "schema": { "type": "boolean", "default": false } }],
                    "requestBody": { "required": true, "content": {
                        "text/csv": { "schema": { "type": "string", "description": "Header row date,pageviews,visits,visitors (any order; a source column is ignored), one row per day." } },
                        "application/json": { "schema": { "$ref": "#/components/schemas/History" } } } },
                    "responses": { "200": { "description": "Days added, replaced (replaced_live of them hiding live counts) and unchanged; the sums of all imported days against the baseline." }, "400": error_response("A row breaks a rule (the message lists them), or too many days."), "401": error_response("No valid token."), "404": error_response("No such site."), "409": error_response("Days with live counts, without replace=true."), "413": error_response("Body over the listener's limit."), "415": error_response("Neither text/csv nor application/json.") } },
                "delete": { "summary": "Remove every imported day of the site (live counts are untouched).", "tags": ["admin"], "security": bearer, "parameters": [site_parameter()], "responses": { "200": { "description": "How many days were removed." }, "401": error_response("No valid token."), "404": error_response("No such site.") } }
            },
            "/admin/v1/salts/rotate": { "post": {
                "summary": "Replace visitor-id salts now (one site, or all with {}).", "tags": ["admin"], "security": bearer,
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "properties": { "site": { "type": "string" } } } } } },
                "responses": { "200": { "description": "Rotated sites." }, "401": error_response("No valid token."), "404": error_response("No such site.") } } },
            "/admin/v1/audit": { "get": {
                "summary": "The audit log, newest first.", "tags": ["admin"], "security": bearer,
                "parameters": [{ "name": "limit", "in": "query", "schema": { "type": "integer", "minimum": 1, "maximum": 10000, "default": 100 } }],
                "responses": { "200": { "description": "Entries." }, "401": error_response("No valid token.") } } }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "properties": { "error": { "type": "object", "properties": { "code": { "type": "string" }, "message": { "type": "string" } } } } },
                "Hit": { "type": "object", "required": ["site"], "properties": {
                    "site": { "type": "string" }, "path": { "type": "string", "maxLength": 2048 }, "referrer": { "type": "string", "maxLength": 2048 },
                    "heartbeat": { "type": "boolean", "description": "Keeps the reader online without a page view, visit or visitor." },
                    "record": { "type": "boolean", "default": true, "description": "false: an automated browser; nothing is counted, `?counts=1` still answers." } } },
                "History": { "type": "object", "properties": {
                    "site": { "type": "string" }, "time_zone": { "type": "string" },
                    "days": { "type": "array", "items": { "type": "object", "required": ["date", "pageviews", "visits", "visitors"], "properties": {
                        "date": { "type": "string", "format": "date" }, "pageviews": { "type": "integer" }, "visits": { "type": "integer" }, "visitors": { "type": "integer" },
                        "source": { "enum": ["live", "imported"] } } } } } },
                "Figures": { "type": "object", "properties": { "visits": { "type": "integer" }, "visitors": { "type": "integer" }, "pageviews": { "type": "integer" } } },
                "Counts": { "type": "object", "properties": {
                    "site": { "type": "string" }, "as_of": { "type": "string", "format": "date-time" }, "stale": { "type": "boolean" }, "time_zone": { "type": "string" },
                    "online": { "type": "object", "properties": { "visitors": { "type": "integer" } } },
                    "today": { "$ref": "#/components/schemas/Figures" }, "week": { "$ref": "#/components/schemas/Figures" },
                    "month": { "$ref": "#/components/schemas/Figures" }, "total": { "$ref": "#/components/schemas/Figures" },
                    "definitions": { "type": "object", "additionalProperties": { "type": "object", "properties": {
                        "metric": { "type": "string" }, "window": { "type": "string" }, "accuracy": { "enum": ["exact", "estimate", "estimate_per_salt_period"] },
                        "time_zone": { "type": "string" }, "since": { "type": "string", "format": "date-time" }, "window_minutes": { "type": "integer" },
                        "baseline": { "type": "integer" }, "as_of": { "type": "string", "format": "date-time" },
                        "description": { "type": "object", "properties": { "vi": { "type": "string" }, "en": { "type": "string" } } } } } } } },
                "SiteSettings": { "type": "object", "required": ["hostnames"], "properties": {
                    "id": { "type": "string" }, "name": { "type": "string" }, "hostnames": { "type": "array", "items": { "type": "string" } },
                    "time_zone": { "type": "string", "default": "Asia/Ho_Chi_Minh" }, "week": { "type": "string", "default": "monday" },
                    "visit_timeout_minutes": { "type": "integer", "default": 30 }, "online_window_minutes": { "type": "integer", "default": 5 },
                    "retention_days": { "type": "integer", "default": 400 }, "salt_rotation_hours": { "type": ["integer", "null"] },
                    "ip_truncation": { "type": "boolean" }, "respect_do_not_track": { "type": "boolean" },
                    "stats_public": { "type": "boolean", "default": false, "description": "Serve /stats/{site} to anyone on the public listener." },
                    "footer": { "type": "object" }, "trust": { "type": ["object", "null"] } } }
            }
        }
    })
}

/// `GET /openapi.json`.
pub async fn openapi_endpoint() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_has_responses_and_a_tag() {
        let doc = document();
        let paths = doc["paths"].as_object().expect("paths");
        assert!(paths.len() >= 12);
        // History out (JSON and CSV) and in, and the shields.io endpoint badge.
        let history = &paths["/api/v1/sites/{site}/history"]["get"];
        assert!(history["responses"]["200"]["content"]["text/csv"].is_object());
        assert!(history["responses"]["406"].is_object());
        let import = &paths["/admin/v1/sites/{site}/history"];
        assert!(import["put"]["requestBody"]["content"]["text/csv"].is_object());
        assert!(import["put"]["responses"]["409"].is_object());
        assert!(import["delete"].is_object());
        let shields = &paths["/badge/{site}/{window}.json"]["get"]["responses"]["200"];
        let schema = &shields["content"]["application/json"]["schema"];
        assert_eq!(schema["additionalProperties"], false);
        assert_eq!(schema["properties"].as_object().map(|p| p.len()), Some(6));
        for (path, operations) in paths {
            for (method, operation) in operations.as_object().expect("operations") {
                assert!(
                    ["get", "post", "put", "patch", "delete"].contains(&method.as_str()),
                    "{method} {path}"
                );
                assert!(
                    operation["responses"]
                        .as_object()
                        .is_some_and(|r| !r.is_empty()),
                    "{method} {path}"
                );
                assert!(operation["tags"].is_array(), "{method} {path}");
            }
        }
    }
}
