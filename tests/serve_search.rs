//! `GET /api/v1/search` (issue 26): key names and non-sensitive values across namespaces,
//! paged, secrets never matched by value nor shown — on both backends.

mod serve_support;
mod tf_support;

use serde_json::{Value, json};
use serve_support::*;

fn hits(r: &Resp) -> Vec<(String, String, Value)> {
    r.body["matches"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", r.text))
        .iter()
        .map(|m| (m["namespace"].as_str().unwrap().into(), m["key"].as_str().unwrap().into(), m["matched"].clone()))
        .collect()
}

#[test]
fn search_finds_key_names_and_values_never_secrets() {
    on_both_backends("search_finds_key_names_and_values_never_secrets", |b| {
        let d = b.path();
        let admin = token(d, &["a", "--role", "admin", "--reveal"]);
        let s = serve(d);
        put(&s, "/api/v1/kv/vars/job/web/database_url", &admin, json!({"value": "postgres://db.internal/app"}));
        put(&s, "/api/v1/kv/vars/job/db/note", &admin, json!({"value": "reads DATABASE_URL at start"}));
        put(&s, "/api/v1/kv/vars/job/db/port", &admin, json!({"value": 5432, "type": "number"}));
        put(&s, "/api/v1/kv/secrets/job/web/database_url_password", &admin, json!({"value": "hunter2-database_url"}));
        put(&s, "/api/v1/kv/secrets/job/db/token", &admin, json!({"value": "zebra-crossing-77"}));

        // By key name (any case) and by value, in (namespace, key) order.
        let r = get(&s, "/api/v1/search?q=Database_URL", &admin);
        assert_eq!(r.status, 200, "{}: {}", b.backend(), r.text);
        assert_eq!(
            hits(&r),
            [
                ("secrets/job/web".into(), "database_url_password".into(), json!(["key"])),
                ("vars/job/db".into(), "note".into(), json!(["value"])),
                ("vars/job/web".into(), "database_url".into(), json!(["key"])),
            ],
            "{}",
            b.backend()
        );
        // A secret matched by name is never shown, even to a token that may reveal it.
        let secret = &r.body["matches"][0];
        assert_eq!((secret["value"].clone(), secret["sensitive"].clone()), (json!("(sensitive)"), json!(true)));
        assert!(!r.text.contains("hunter2"), "{}", r.text);
        // Typed like every answer.
        assert_eq!(get(&s, "/api/v1/search?q=5432", &admin).body["matches"][0]["value"], json!(5432));
        // A secret's value is never searched.
        let r = get(&s, "/api/v1/search?q=zebra-crossing", &admin);
        assert_eq!((r.status, hits(&r).len()), (200, 0), "{}", r.text);
        assert_eq!(r.body["next_cursor"], Value::Null);

        // Pages of one walk the same hits.
        let all = hits(&get(&s, "/api/v1/search?q=database_url", &admin));
        let mut paged = Vec::new();
        let mut cursor = String::new();
        loop {
            let r = get(&s, &format!("/api/v1/search?q=database_url&limit=1{cursor}"), &admin);
            paged.extend(hits(&r));
            match r.body["next_cursor"].as_str() {
                Some(c) => cursor = format!("&cursor={c}"),
                None => break,
            }
            assert!(paged.len() <= all.len(), "{paged:?}");
        }
        assert_eq!(paged, all);

        // Refusals say what to send.
        let r = get(&s, "/api/v1/search", &admin);
        assert_eq!(r.status, 400);
        assert!(r.body["hint"].as_str().unwrap().contains("?q="), "{}", r.text);
        let r = get(&s, "/api/v1/search?query=x", &admin);
        assert_eq!(r.status, 400);
        assert!(r.body["hint"].as_str().unwrap().contains("`q`"), "{}", r.text);
        let r = get(&s, "/api/v1/search?q=x&limit=5000", &admin);
        assert_eq!(r.status, 400, "{}", r.text);
    });
}
