//! The OpenAPI 3 document of the REST API (`GET /api/v1/openapi.json`), written out by hand
//! from the routes in [`super::rest`]; a test checks every route it names answers.

use crate::kv::KvType;
use serde_json::{Value, json};

fn error_ref() -> Value {
    json!({ "description": "error", "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } } })
}

fn ok(desc: &str, schema: Value) -> Value {
    json!({ "description": desc, "content": { "application/json": { "schema": schema } } })
}

fn params(names: &[(&str, &str, &str)]) -> Value {
    Value::Array(
        names
            .iter()
            .map(|(name, inn, desc)| json!({ "name": name, "in": inn, "required": *inn == "path", "description": desc, "schema": { "type": "string" } }))
            .collect(),
    )
}

pub fn document() -> Value {
    let types: Vec<&str> = KvType::ALL.iter().map(|(_, n, _)| *n).collect();
    let watch = [
        ("index", "query", "block until the state's serial passes this (the X-Kvform-Index of an earlier answer)"),
        ("wait", "query", "longest to block: 30s, 5m (default 5m, at most 10m)"),
    ];
    let ns_key = [
        ("namespace", "path", "the namespace; it contains `/` (vars/job/api): every segment but the last"),
        ("key", "path", "the last path segment (a `/` inside a key is sent as %2F)"),
    ];
    let mut key_params = ns_key.to_vec();
    key_params.push(("error_on_missing", "query", "false: a missing key answers 200 null instead of 404"));
    key_params.push(("version", "query", "read this kept version instead of the current one (404 when not kept)"));
    let mut write_params = ns_key.to_vec();
    write_params.push((
        "If-Match",
        "header",
        "compare-and-set: the version (the ETag) the write expects; 412 when the key is at another",
    ));
    write_params.push(("cas", "query", "compare-and-set like If-Match; 0 = create only"));
    key_params.extend(watch);
    let mut list_params = vec![
        ("namespace", "path", "the namespace (vars/job/api); end the path with / to always list"),
        ("prefix", "query", "only keys starting with this"),
    ];
    list_params.extend(watch);
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "kvform serve",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "The versioned key-value state of one kvform bucket. Every request needs `Authorization: Bearer <token>` (`kvform token create`). Namespaces contain `/`: in /kv/{namespace}/{key} the last segment is the key."
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": { "type": "object", "required": ["error", "hint"], "properties": {
                    "error": { "type": "string" }, "hint": { "type": "string" }, "rule": { "type": "string", "description": "403 only: the access rule that denied" } } },
                "Key": { "type": "object", "properties": {
                    "namespace": { "type": "string" }, "key": { "type": "string" },
                    "value": { "type": "string", "description": "`(sensitive)` for secrets (`secrets/*`) and certificate private keys (`certs/<name>.key` in `maand/job/<job>/worker/<host>`) unless the token has --reveal, which reads the plaintext (PEM); never the stored ciphertext" },
                    "type": { "type": "string", "enum": types }, "description": { "type": "string" },
                    "version": { "type": "integer" }, "versions": { "type": "integer" }, "ttl": { "type": "integer" },
                    "created_at": { "type": "string", "format": "date-time" }, "updated_at": { "type": "string", "format": "date-time" },
                    "expires_at": { "type": "string", "format": "date-time", "nullable": true }, "expired": { "type": "boolean" },
                    "writer": { "type": "string" }, "serial": { "type": "integer" } } },
                "Put": { "type": "object", "description": "An edit: every field is optional and one that is omitted is kept (the value, the type, the description, and the expiry of a ttl)", "properties": {
                    "value": { "description": "string, number or boolean (lists/objects with type json); omitted: the current value is kept" },
                    "type": { "type": "string", "enum": types, "description": "omitted: kept (string for a new key)" },
                    "ttl": { "description": "seconds, or a duration such as \"1h\", \"30m\", \"P30D\"; 0 = never expires; at most 100 years; omitted: the expiry is kept" },
                    "description": { "type": "string", "description": "omitted: kept" },
                    "cas": { "type": "integer", "minimum": 0, "description": "compare-and-set: the live version expected (0 = create only); 412 otherwise" },
                    "overwrite": { "type": "boolean", "default": true, "description": "false: 409 when the key exists" } } },
                "Restore": { "type": "object", "required": ["version"], "properties": {
                    "version": { "type": "integer", "minimum": 1, "description": "the kept version whose value, type and description are written again" },
                    "cas": { "type": "integer", "minimum": 0, "description": "compare-and-set (0: only while the key is deleted)" } } }
            }
        },
        "security": [{ "bearer": [] }],
        "paths": {
            "/api/v1/namespaces": { "get": { "summary": "Namespace tree with key counts", "parameters": params(&watch),
                "responses": { "200": ok("namespaces", json!({ "type": "object" })), "401": error_ref() } } },
            "/api/v1/kv/{namespace}": { "get": { "summary": "Live keys of a namespace with metadata", "parameters": params(&list_params),
                "responses": { "200": ok("keys", json!({ "type": "object", "properties": { "keys": { "type": "array", "items": { "$ref": "#/components/schemas/Key" } } } })), "401": error_ref(), "404": error_ref() } } },
            "/api/v1/kv/{namespace}/{key}": {
                "get": { "summary": "One key", "parameters": params(&key_params),
                    "responses": { "200": ok("the key, or null with error_on_missing=false", json!({ "$ref": "#/components/schemas/Key" })), "401": error_ref(), "404": error_ref() } },
                "put": { "summary": "Write a key (vars/job/*, secrets/job/*; writer and admin tokens); what the body omits is kept", "parameters": params(&write_params),
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Put" } } } },
                    "responses": { "200": ok("written (or unchanged); ETag: the new version; `warnings` and `managed_by` when the workspace declares the key (the next apply writes it back)", json!({ "type": "object" })), "201": ok("created", json!({ "type": "object" })),
                        "400": error_ref(), "401": error_ref(), "403": error_ref(), "409": error_ref(), "412": error_ref(), "413": error_ref(), "415": error_ref(), "503": error_ref() } },
                "patch": { "summary": "Edit a key: the same as PUT (only what the body names changes)", "parameters": params(&write_params),
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Put" } } } },
                    "responses": { "200": ok("written (or unchanged)", json!({ "type": "object" })), "400": error_ref(), "401": error_ref(), "403": error_ref(), "412": error_ref() } },
                "delete": { "summary": "Tombstone a key", "parameters": params(&[ns_key[0], ns_key[1], ("error_on_missing", "query", "false: deleting a missing key is 200"), write_params[2], write_params[3]]),
                    "responses": { "200": ok("deleted; `warnings` and `managed_by` when the workspace declares the key (the next apply writes it back)", json!({ "type": "object" })), "401": error_ref(), "403": error_ref(), "404": error_ref(), "412": error_ref() } }
            },
            "/api/v1/restore/{namespace}/{key}": { "post": { "summary": "Write a kept version again as a new version (undeletes a deleted key)", "parameters": params(&ns_key),
                "requestBody": { "required": true, "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Restore" } } } },
                "responses": { "200": ok("restored; ETag: the new version", json!({ "type": "object" })), "400": error_ref(), "401": error_ref(), "403": error_ref(), "404": error_ref(), "412": error_ref() } } },
            "/api/v1/history/{namespace}/{key}": { "get": { "summary": "Every kept version of a key", "parameters": params(&ns_key),
                "responses": { "200": ok("versions, oldest first", json!({ "type": "object" })), "404": error_ref() } } },
            "/api/v1/applies": { "get": { "summary": "The audit trail: each apply with actor (`user@host`, or `token:<name>` for an API/UI write), time, counts, status and changes",
                "parameters": params(&[("limit", "query", "newest N (default 100)")]),
                "responses": { "200": ok("applies, newest first", json!({ "type": "object" })) } } },
            "/api/v1/plan": { "get": { "summary": "The plan of the workspace against the state (read-only; the JSON of `kvform plan --format json`)",
                "responses": { "200": ok("plan", json!({ "type": "object" })), "422": error_ref() } } },
            "/api/v1/tokens": {
                "get": { "summary": "API tokens (admin): name, role, namespaces, reveal, times, state; never a token or its hash",
                    "responses": { "200": ok("tokens", json!({ "type": "object" })), "401": error_ref(), "403": error_ref() } },
                "post": { "summary": "Create a token (admin), like `kvform token create`: the answer's `token` is shown this once",
                    "requestBody": { "required": true, "content": { "application/json": { "schema": { "type": "object", "required": ["name", "role"], "properties": {
                        "name": { "type": "string" }, "role": { "type": "string", "enum": ["reader", "writer", "admin"] },
                        "namespaces": { "type": "array", "items": { "type": "string" }, "description": "write patterns such as vars/job/*" },
                        "reveal": { "type": "boolean", "default": false }, "expires": { "type": "string", "description": "a duration such as 30d" } } } } } },
                    "responses": { "201": ok("created", json!({ "type": "object" })), "400": error_ref(), "401": error_ref(), "403": error_ref(), "409": error_ref() } }
            },
            "/api/v1/tokens/{name}": { "delete": { "summary": "Revoke a token (admin)", "parameters": params(&[("name", "path", "the token's name")]),
                "responses": { "200": ok("revoked", json!({ "type": "object" })), "401": error_ref(), "403": error_ref(), "404": error_ref() } } },
            "/metrics": { "get": { "summary": "Prometheus metrics", "responses": { "200": { "description": "Prometheus text format" } } } },
            "/api/v1/openapi.json": { "get": { "summary": "This document", "security": [], "responses": { "200": { "description": "OpenAPI 3" } } } }
        }
    })
}
