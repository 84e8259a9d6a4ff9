//! The shape of `kvform serve`'s API (issue 26): typed JSON values, the subtree read and
//! paging of listings, unknown query parameters, `Allow`, `WWW-Authenticate`, `HEAD` and
//! `OPTIONS` — on both backends.

mod serve_support;
mod tf_support;

use serde_json::{Value, json};
use serve_support::*;

#[test]
fn values_are_typed_json_in_every_answer() {
    on_both_backends("values_are_typed_json_in_every_answer", |b| {
        let d = b.path();
        let admin = token(d, &["a", "--role", "admin", "--reveal"]);
        let reader = token(d, &["r", "--role", "reader"]);
        let s = serve(d);
        let base = "/api/v1/kv/vars/job/web";
        put(&s, &format!("{base}/replicas"), &admin, json!({"value": 3, "type": "number"}));
        // Digits a float would lose come back as written.
        put(&s, &format!("{base}/big"), &admin, json!({"value": "12345678901234567890123", "type": "number"}));
        put(&s, &format!("{base}/on"), &admin, json!({"value": true, "type": "boolean"}));
        put(&s, &format!("{base}/doc"), &admin, json!({"value": {"a": [1, 2]}, "type": "json"}));
        put(&s, &format!("{base}/label"), &admin, json!({"value": "42"}));
        put(&s, "/api/v1/kv/secrets/job/web/pin", &admin, json!({"value": "1234"}));

        let r = get(&s, &format!("{base}/replicas"), &reader);
        assert_eq!((r.body["value"].clone(), r.body["type"].clone()), (json!(3), json!("number")), "{}", r.text);
        let r = get(&s, &format!("{base}/big"), &reader);
        assert!(r.text.contains("\"value\":12345678901234567890123,"), "{}: {}", b.backend(), r.text);
        assert_eq!(get(&s, &format!("{base}/on"), &reader).body["value"], json!(true));
        assert_eq!(get(&s, &format!("{base}/doc"), &reader).body["value"], json!({"a": [1, 2]}));
        assert_eq!(get(&s, &format!("{base}/label"), &reader).body["value"], json!("42"), "a string stays one");
        // A secret stays a string, masked or revealed.
        assert_eq!(get(&s, "/api/v1/kv/secrets/job/web/pin", &reader).body["value"], json!("(sensitive)"));
        assert_eq!(get(&s, "/api/v1/kv/secrets/job/web/pin", &admin).body["value"], json!("1234"));

        // The listing, the history and a kept version answer the same types.
        let r = get(&s, &format!("{base}/"), &reader);
        let keys = r.body["keys"].as_array().unwrap();
        let value = |k: &str| keys.iter().find(|r| r["key"] == k).unwrap()["value"].clone();
        assert_eq!((value("replicas"), value("on"), value("doc")), (json!(3), json!(true), json!({"a": [1, 2]})));
        put(&s, &format!("{base}/replicas"), &admin, json!({"value": 4}));
        let r = get(&s, "/api/v1/history/vars/job/web/replicas", &reader);
        let versions: Vec<Value> = r.body["versions"].as_array().unwrap().iter().map(|v| v["value"].clone()).collect();
        assert_eq!(versions, [json!(3), json!(4)], "{}", r.text);
        assert_eq!(get(&s, &format!("{base}/replicas?version=1"), &reader).body["value"], json!(3));
        // The CLI still reads the text.
        assert_eq!(ok(d, &["kv", "get", "vars/job/web", "doc"]).trim(), "{\"a\":[1,2]}");
    });
}

#[test]
fn a_subtree_reads_recursively_and_listings_page_with_a_cursor() {
    on_both_backends("a_subtree_reads_recursively_and_listings_page_with_a_cursor", |b| {
        let d = b.path();
        let admin = token(d, &["a", "--role", "admin"]);
        let s = serve(d);
        for (job, key) in [("web", "a1"), ("web", "b2"), ("db", "a3"), ("db", "c4"), ("db", "d5")] {
            put(&s, &format!("/api/v1/kv/vars/job/{job}/{key}"), &admin, json!({"value": key}));
        }
        // `/kv/vars/job/` is a node of the tree, not a namespace: its subtree.
        let r = get(&s, "/api/v1/kv/vars/job/", &admin);
        assert_eq!(r.status, 200, "{}: {}", b.backend(), r.text);
        let all: Vec<(String, String)> = r.body["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| (k["namespace"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string()))
            .collect();
        for (ns, key) in [("vars/job/db", "a3"), ("vars/job/web", "b2")] {
            assert!(all.contains(&(ns.into(), key.into())), "{ns} {key} in {all:?}");
        }
        let mut sorted = all.clone();
        sorted.sort();
        assert_eq!(all, sorted, "(namespace, key) order");
        assert_eq!(r.body["next_cursor"], Value::Null);
        assert_eq!(r.body["recurse"], true);
        // ?recurse on a namespace lists the namespaces under it too; without, only its own.
        let own = get(&s, "/api/v1/kv/vars/job/web/", &admin);
        assert!(own.body["keys"].as_array().unwrap().iter().all(|k| k["namespace"] == "vars/job/web"));
        let r = get(&s, "/api/v1/kv/maand/job/web/?recurse", &admin);
        let nss: std::collections::BTreeSet<&str> =
            r.body["keys"].as_array().unwrap().iter().map(|k| k["namespace"].as_str().unwrap()).collect();
        assert!(nss.len() > 1 && nss.iter().any(|n| n.starts_with("maand/job/web/worker/")), "{nss:?}");

        // Pages of 2 walk the same rows, each once, then a null cursor.
        let mut paged = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..50 {
            let q = cursor.as_ref().map_or(String::new(), |c| format!("&cursor={c}"));
            let r = get(&s, &format!("/api/v1/kv/vars/job/?limit=2{q}"), &admin);
            assert_eq!(r.status, 200, "{}", r.text);
            let page = r.body["keys"].as_array().unwrap();
            assert!(page.len() <= 2);
            paged.extend(
                page.iter()
                    .map(|k| (k["namespace"].as_str().unwrap().to_string(), k["key"].as_str().unwrap().to_string())),
            );
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_string()),
                None => break,
            }
        }
        assert_eq!(paged, all, "{}", b.backend());
        // The namespace tree pages the same way.
        let whole: Vec<Value> = get(&s, "/api/v1/namespaces", &admin).body["namespaces"].as_array().unwrap().clone();
        let mut nodes = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = get(&s, &format!("/api/v1/namespaces?limit=3{cursor}"), &admin);
            let page = r.body["namespaces"].as_array().unwrap();
            assert!(page.len() <= 3, "{}", r.text);
            nodes.extend(page.iter().cloned());
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
        }
        assert!(whole.len() > 3);
        assert_eq!(nodes, whole);
        let r = get(&s, "/api/v1/kv/vars/job/web/?limit=0", &admin);
        assert_eq!(r.status, 400, "{}", r.text);
        let r = get(&s, "/api/v1/kv/vars/job/web/?cursor=nonsense", &admin);
        assert_eq!(r.status, 400, "{}", r.text);
        assert!(r.body["hint"].as_str().unwrap().contains("next_cursor"), "{}", r.text);
        // A node nothing is under.
        assert_eq!(get(&s, "/api/v1/kv/nothing/here/", &admin).status, 404);
    });
}

#[test]
fn unknown_parameters_methods_and_credentials_say_what_is_accepted() {
    let b = Bucket::sqlite();
    let d = b.path();
    let reader = token(d, &["r", "--role", "reader"]);
    let s = serve(d);
    let url = |p: &str| format!("{}{p}", s.base);

    // An unknown parameter is a 400 naming it and the ones accepted.
    let r = get(&s, "/api/v1/kv/maand/job/web/name?versoin=1", &reader);
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.body["error"].as_str().unwrap().contains("`versoin`"), "{}", r.text);
    assert!(r.body["hint"].as_str().unwrap().contains("`version`"), "{}", r.text);
    let r = get(&s, "/api/v1/namespaces?foo=1&bar=2", &reader);
    assert!(r.body["error"].as_str().unwrap().contains("`bar`, `foo`"), "{}", r.text);
    assert_eq!(get(&s, "/api/v1/kv/maand/job/web/?prefix=n&limit=5", &reader).status, 200);
    // So is an unknown body field, on every route with a body.
    let admin = token(d, &["adm", "--role", "admin"]);
    for (method, path, body) in [
        ("PUT", "/api/v1/kv/vars/job/web/k", json!({"value": "x", "vaule": "y"})),
        ("POST", "/api/v1/restore/vars/job/web/k", json!({"version": 1, "vaule": "y"})),
        ("POST", "/api/v1/tokens", json!({"name": "n", "role": "reader", "vaule": "y"})),
    ] {
        let r = request(method, &url(path), Some(&admin), Some(&body));
        assert_eq!(r.status, 400, "{method} {path}: {}", r.text);
        assert!(r.body["error"].as_str().unwrap().contains("\"vaule\""), "{}", r.text);
        assert!(r.body["hint"].as_str().unwrap().starts_with("fields: "), "{}", r.text);
    }

    // 405 with Allow.
    let r = request("POST", &url("/api/v1/namespaces"), Some(&reader), None);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, OPTIONS")), "{}", r.text);
    let r = request("POST", &url("/api/v1/kv/maand/job/web/name"), Some(&reader), None);
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, PUT, PATCH, DELETE, OPTIONS")));
    let r = request("PUT", &url("/api/v1/kv/vars/job/web/"), Some(&reader), Some(&json!({"value": "x"})));
    assert_eq!((r.status, r.header("allow")), (405, Some("GET, HEAD, OPTIONS")), "{}", r.text);

    // OPTIONS answers with Allow (no token needed).
    let r = request("OPTIONS", &url("/api/v1/tokens"), None, None);
    assert_eq!((r.status, r.header("allow")), (204, Some("GET, HEAD, POST, OPTIONS")));

    // 401 with WWW-Authenticate: Bearer.
    let r = request("GET", &url("/api/v1/namespaces"), None, None);
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"kvform\""));
    let r = request("GET", &url("/api/v1/namespaces"), Some("kvf_nope"), None);
    assert!(r.header("www-authenticate").unwrap().starts_with("Bearer realm=\"kvform\", error=\"invalid_token\""));

    // HEAD wherever GET: the GET's status and headers, no body.
    let g = get(&s, "/api/v1/kv/maand/job/web/name", &reader);
    let h = request("HEAD", &url("/api/v1/kv/maand/job/web/name"), Some(&reader), None);
    assert_eq!((h.status, h.header("etag")), (200, g.header("etag")));
    assert_eq!(h.header("content-length").map(str::to_string), Some(g.text.len().to_string()));
    assert_eq!(request("HEAD", &url("/api/v1/kv/maand/job/web/nope"), Some(&reader), None).status, 404);
    for path in ["/api/v1/namespaces", "/api/v1/applies", "/metrics", "/api/v1/openapi.json"] {
        assert_eq!(request("HEAD", &url(path), Some(&reader), None).status, 200, "HEAD {path}");
    }
}
