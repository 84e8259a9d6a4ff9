//! The OpenAPI document (issue 24, 26): generated from the router and the handlers' body
//! types; every route the router answers is in it with exactly its methods and query
//! parameters, every operation declares its bodies (no bare `{"type": "object"}`), every
//! `$ref` resolves, and the whole parses as OpenAPI 3.0 (`openapiv3`).

use serde_json::Value;
use std::collections::BTreeSet;

fn doc() -> Value {
    kvform::serve::openapi::document()
}

/// Every schema in `v` that is an object with nothing said about its properties.
fn bare_objects(v: &Value, at: &str, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            if m.get("type") == Some(&Value::String("object".into()))
                && !m.contains_key("properties")
                && !m.contains_key("additionalProperties")
                && !m.contains_key("allOf")
            {
                out.push(at.to_string());
            }
            for (k, v) in m {
                bare_objects(v, &format!("{at}/{k}"), out);
            }
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                bare_objects(v, &format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
}

fn refs(v: &Value, out: &mut BTreeSet<String>) {
    match v {
        Value::Object(m) => {
            if let Some(Value::String(r)) = m.get("$ref") {
                out.insert(r.clone());
            }
            m.values().for_each(|v| refs(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn every_route_is_documented_with_its_methods_and_parameters() {
    let d = doc();
    let paths = d["paths"].as_object().unwrap();
    let routes = kvform::serve::rest::routes();
    assert!(routes.iter().all(|r| !r.methods.is_empty()), "a sample path does not resolve: {routes:?}");
    let templates: BTreeSet<&str> = routes.iter().map(|r| r.template).collect();
    assert_eq!(templates.len(), routes.len(), "two samples resolve to one route: {routes:?}");
    assert_eq!(templates, paths.keys().map(String::as_str).collect(), "the document's paths are the router's");
    for r in &routes {
        let item = paths[r.template].as_object().unwrap();
        let methods: BTreeSet<String> = item.keys().map(|m| m.to_uppercase()).collect();
        assert_eq!(methods, r.methods.iter().map(|m| m.to_string()).collect(), "{}", r.template);
        for (method, accepted) in &r.params {
            let op = &item[&method.to_lowercase()];
            let query: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "query")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            assert_eq!(query, accepted.iter().copied().collect(), "{method} {}", r.template);
            assert!(
                op["parameters"].as_array().unwrap().iter().all(|p| p["description"] != ""),
                "{method} {}",
                r.template
            );
        }
    }
}

#[test]
fn every_operation_declares_its_bodies() {
    let d = doc();
    for (path, item) in d["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let what = format!("{} {path}", method.to_uppercase());
            assert!(!op["summary"].as_str().unwrap().is_empty(), "{what}: no summary");
            if ["put", "patch", "post"].contains(&method.as_str()) {
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                assert!(schema["$ref"].is_string(), "{what}: no request body schema: {op}");
            }
            let responses = op["responses"].as_object().unwrap();
            let ok: Vec<_> = responses.iter().filter(|(s, _)| s.starts_with('2')).collect();
            assert!(!ok.is_empty(), "{what}: no success answer");
            for (status, r) in responses {
                let content = r["content"].as_object().unwrap_or_else(|| panic!("{what} {status}: no body declared"));
                assert!(content.values().all(|c| c["schema"].is_object()), "{what} {status}");
            }
        }
    }
    // PATCH/PUT say which fields are kept when omitted.
    let put = &d["components"]["schemas"]["PutBody"];
    for field in ["value", "type", "ttl", "description"] {
        let text = put["properties"][field]["description"].as_str().unwrap_or("");
        assert!(text.contains("mitted"), "PutBody.{field} does not say what an omission keeps: {put}");
    }
    let mut bare = Vec::new();
    bare_objects(&d, "", &mut bare);
    assert!(bare.is_empty(), "schemas that say nothing: {bare:?}");
    // The value is typed (any JSON), documented as such.
    let value = &d["components"]["schemas"]["KeyRow"]["properties"]["value"];
    assert!(value["description"].as_str().unwrap().contains("JSON number"), "{value}");
}

#[test]
fn the_document_is_valid_openapi_3() {
    let d = doc();
    let parsed: openapiv3::OpenAPI =
        serde_json::from_value(d.clone()).unwrap_or_else(|e| panic!("not OpenAPI 3.0: {e}"));
    assert_eq!(parsed.openapi, "3.0.3");
    assert_eq!(parsed.paths.paths.len(), d["paths"].as_object().unwrap().len());
    let schemas = d["components"]["schemas"].as_object().unwrap();
    let mut all = BTreeSet::new();
    refs(&d, &mut all);
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or_else(|| panic!("{r} is not a component"));
        assert!(schemas.contains_key(name), "{r} does not resolve");
    }
}
