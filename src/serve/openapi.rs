//! The OpenAPI 3 document of the REST API (`GET /api/v1/openapi.json`), generated: the
//! routes, methods and query parameters from the router itself ([`super::rest::routes`]),
//! every request and response body from the Rust types the handlers serialise
//! ([`super::api_types`], `super::keys`, `super::search`, the plan's `PlanDocument`) through
//! schemars' OpenAPI 3.0 settings. Only the prose (summaries, parameter descriptions) is
//! written here. `tests/serve_openapi.rs` checks that every route is in it, every operation
//! declares its bodies, and that it parses as OpenAPI 3.

use super::api_types::*;
use super::keys::{History, KeyRow, Listing, VersionView};
use super::rest::routes;
use super::search::SearchPage;
use schemars::JsonSchema;
use schemars::generate::{SchemaGenerator, SchemaSettings};
use serde_json::{Map, Value, json};

/// What a query, path or header parameter means.
fn param_doc(name: &str) -> &'static str {
    match name {
        "namespace" => {
            "the namespace; it contains `/` (vars/job/api): every segment but the last; in a listing also a node of the tree (`vars/job`), whose subtree is listed"
        }
        "key" => "the last path segment (a `/` inside a key is sent as %2F)",
        "name" => "the token's name",
        "index" => {
            "block until the index of what this path names passes this: a key's, a namespace's (with ?prefix, ?recurse) or a subtree's last write serial, the state's serial elsewhere (the X-Kvform-Index of an earlier answer); woken by the write itself"
        }
        "wait" => "longest to block: 30s, 5m, PT1M (default 5m, at most 10m)",
        "prefix" => "only keys starting with this",
        "recurse" => {
            "the namespaces under this one too, in (namespace, key) order; a path that is a node of the tree but no namespace (`/kv/vars/job/`) always recurses"
        }
        "limit" => "page size, 1 to 1000 (listings: default every key; search: 50; applies: the newest N, default 100)",
        "cursor" => "the `next_cursor` of the previous page (opaque)",
        "q" => "the text to look for in key names and non-sensitive values, any case (required)",
        "error_on_missing" => "false: a missing key answers 200 (null on GET) instead of 404",
        "version" => "read this kept version instead of the current one (404 when not kept)",
        "cas" => "compare-and-set: the version the key must be at (0 = create only); 412 otherwise",
        "If-Match" => "compare-and-set like cas: the version (the ETag) the write expects",
        _ => "",
    }
}

fn param_schema(name: &str) -> Value {
    match name {
        "index" | "limit" | "cas" | "version" => json!({ "type": "integer", "minimum": 0 }),
        "recurse" | "error_on_missing" => json!({ "type": "boolean" }),
        _ => json!({ "type": "string" }),
    }
}

/// A route's summary, request body and answers, by (template, method).
struct Op {
    summary: &'static str,
    body: Option<Value>,
    /// Success answers: status, description, schema (JSON unless `text`).
    ok: Vec<(u16, &'static str, Value)>,
    errors: &'static [u16],
    text: bool,
}

fn op(template: &str, method: &str, out: &mut SchemaGenerator, inp: &mut SchemaGenerator) -> Op {
    fn r<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
        g.subschema_for::<T>().to_value()
    }
    let o = |summary, ok, errors| Op { summary, body: None, ok, errors, text: false };
    match (template, method) {
        ("/api/v1/namespaces", _) => {
            o("Namespace tree with key counts", vec![(200, "the tree", r::<NamespaceTree>(out))], &[401])
        }
        ("/api/v1/kv/{namespace}/", _) => o(
            "Live keys of a namespace (or of a subtree) with metadata, paged",
            vec![(200, "keys in (namespace, key) order; X-Kvform-Index: the scope's index", r::<Listing>(out))],
            &[400, 401, 404],
        ),
        ("/api/v1/kv/{namespace}/{key}", "GET") => o(
            "One key (typed value); ETag: its version",
            vec![(
                200,
                "the key (a kept version with ?version=N), or null with error_on_missing=false",
                json!({ "oneOf": [r::<KeyRow>(out), r::<VersionView>(out)], "nullable": true }),
            )],
            &[400, 401, 404],
        ),
        ("/api/v1/kv/{namespace}/{key}", m @ ("PUT" | "PATCH")) => Op {
            summary: if m == "PUT" {
                "Write a key (vars/job/*, secrets/job/*; writer and admin tokens): what the body omits is kept"
            } else {
                "Edit a key: the same as PUT (only the fields the body names change)"
            },
            body: Some(r::<PutBody>(inp)),
            ok: vec![
                (200, "written (or unchanged); ETag: the new version", r::<Written>(out)),
                (201, "created", r::<Written>(out)),
            ],
            errors: &[400, 401, 403, 405, 409, 412, 413, 415, 503],
            text: false,
        },
        ("/api/v1/kv/{namespace}/{key}", _) => {
            o("Tombstone a key", vec![(200, "deleted", r::<Deleted>(out))], &[401, 403, 404, 405, 412, 503])
        }
        ("/api/v1/history/{namespace}/{key}", _) => {
            o("Every kept version of a key, oldest first", vec![(200, "versions", r::<History>(out))], &[401, 404])
        }
        ("/api/v1/restore/{namespace}/{key}", _) => Op {
            summary: "Write a kept version again as a new version (undeletes a deleted key)",
            body: Some(r::<RestoreBody>(inp)),
            ok: vec![(200, "restored; ETag: the new version", r::<Restored>(out))],
            errors: &[400, 401, 403, 404, 412, 503],
            text: false,
        },
        ("/api/v1/search", _) => o(
            "Keys of every namespace whose name, or whose value (never a secret's or a certificate key's), contains q; a sensitive value is always shown as (sensitive)",
            vec![(200, "hits in (namespace, key) order, each with what matched", r::<SearchPage>(out))],
            &[400, 401],
        ),
        ("/api/v1/applies", _) => o(
            "The audit trail: each apply with actor (`user@host`, or `token:<name>` for an API/UI write), time, counts, status and changes",
            vec![(200, "applies, newest first", r::<Applies>(out))],
            &[401],
        ),
        ("/api/v1/plan", _) => o(
            "The plan of the workspace against the state (read-only; the JSON of `kvform plan --format json`)",
            vec![(200, "the plan", r::<crate::plan::PlanDocument<'static>>(out))],
            &[401, 422],
        ),
        ("/api/v1/tokens", "POST") => Op {
            summary: "Create a token (admin), like `kvform token create`: the answer's `token` is shown this once",
            body: Some(r::<TokenCreateBody>(inp)),
            ok: vec![(201, "created", r::<TokenCreated>(out))],
            errors: &[400, 401, 403, 409],
            text: false,
        },
        ("/api/v1/tokens", _) => o(
            "API tokens (admin): name, role, namespaces, reveal, times, state; never a token or its hash",
            vec![(200, "tokens", r::<TokenList>(out))],
            &[401, 403],
        ),
        ("/api/v1/tokens/{name}", _) => {
            o("Revoke a token (admin)", vec![(200, "revoked", r::<Revoked>(out))], &[401, 403, 404])
        }
        ("/api/v1/openapi.json", _) => o(
            "This document (no token needed)",
            vec![(
                200,
                "OpenAPI 3.0",
                json!({ "type": "object", "additionalProperties": true, "description": "an OpenAPI 3.0 document" }),
            )],
            &[],
        ),
        ("/metrics", _) => Op {
            summary: "Prometheus metrics",
            body: None,
            ok: vec![(200, "Prometheus text format", json!({ "type": "string" }))],
            errors: &[401],
            text: true,
        },
        _ => o("", Vec::new(), &[]),
    }
}

pub fn document() -> Value {
    let mut out = SchemaSettings::openapi3().for_serialize().into_generator();
    let mut inp = SchemaSettings::openapi3().for_deserialize().into_generator();
    let error = json!({ "$ref": format!("#/components/schemas/{}", ErrorBody::schema_name()) });
    let _ = out.subschema_for::<ErrorBody>();
    let mut paths = Map::new();
    for route in routes() {
        let mut item = Map::new();
        for (method, accepted) in &route.params {
            let op = op(route.template, method, &mut out, &mut inp);
            let mut params: Vec<Value> = route
                .template
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .map(|p| json!({ "name": p, "in": "path", "required": true, "description": param_doc(p), "schema": { "type": "string" } }))
                .collect();
            params.extend(accepted.iter().map(|p| {
                let mut v = json!({ "name": p, "in": "query", "required": *p == "q", "description": param_doc(p), "schema": param_schema(p) });
                if *p == "recurse" {
                    v["allowEmptyValue"] = json!(true);
                }
                v
            }));
            if route.template.starts_with("/api/v1/kv/{namespace}/{key}") && *method != "GET"
                || route.template.starts_with("/api/v1/restore/")
            {
                params.push(json!({ "name": "If-Match", "in": "header", "required": false, "description": param_doc("If-Match"), "schema": { "type": "string" } }));
            }
            let mut responses = Map::new();
            for (status, desc, schema) in op.ok {
                let ct = if op.text { "text/plain; version=0.0.4" } else { "application/json" };
                responses.insert(
                    status.to_string(),
                    json!({ "description": desc, "content": { ct: { "schema": schema } } }),
                );
            }
            for status in op.errors {
                responses.insert(
                    status.to_string(),
                    json!({ "description": "error", "content": { "application/json": { "schema": error.clone() } } }),
                );
            }
            let mut o = json!({ "summary": op.summary, "parameters": params, "responses": responses });
            if let Some(body) = op.body {
                o["requestBody"] = json!({ "required": true, "content": { "application/json": { "schema": body } } });
            }
            if route.template == "/api/v1/openapi.json" {
                o["security"] = json!([]);
            }
            item.insert(method.to_lowercase(), o);
        }
        paths.insert(route.template.to_string(), Value::Object(item));
    }
    let mut schemas = out.take_definitions(true);
    schemas.extend(inp.take_definitions(true));
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "kvform serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The versioned key-value state of one kvform bucket. Every request needs `Authorization: Bearer <token>` (`kvform token create`; a 401 carries `WWW-Authenticate: Bearer`). Namespaces contain `/`: in /kv/{namespace}/{key} the last segment is the key. Values are typed: a `number` is a JSON number, a `boolean` true/false, a `json` value the document; other types and sensitive values are strings. Every GET also answers HEAD; OPTIONS, and a 405, carry `Allow`; an unknown query parameter is a 400 naming it and the ones accepted. Every answer carries X-Kvform-Index (what `?index` waits on)."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas
        },
        "security": [{ "bearer": [] }],
        "paths": paths
    })
}
