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
                "summary": "Per-day figures for charts, oldest first.",
                "tags": ["public"],
                "parameters": [site_parameter(), { "name": "days", "in": "query", "schema": { "type": "integer", "minimum": 1, "default": 30 } }],
                "responses": {
                    "200": { "description": "Days.", "content": { "application/json": {} } },
                    "400": error_response("Bad days or site id."),
                    "404": error_response("No such site.")
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
