//! The hook API beyond the access matrix: authentication, the maand header form, request
//! errors, `/kv/keys`, `/demands`, TTL reporting and semaphores.

mod hooks_common;

use hooks_common::*;
use kvform::hooks::api::ApiConfig;
use kvform::hooks::store::MemoryStore;
use kvform::hooks::token::HookIdentity;
use kvform::kv::KvType;
use kvform::workspace::types::Event;
use serde_json::json;
use std::time::{Duration, Instant};
use uuid::Uuid;

fn store() -> MemoryStore {
    MemoryStore::new()
        .with("vars/job/api", "b", "2")
        .with("vars/job/api", "a", "1")
        .with("secrets/job/api", "pw", "hunter2")
        .with("maand/bucket", "bucket_id", "x")
}

fn read(fx: &Fixture, headers: &[(&str, &str)]) -> u16 {
    let body = json!({"namespace": "vars/job/api", "key": "a"}).to_string();
    let mut h = headers.to_vec();
    h.push(("Content-Type", "application/json"));
    send(fx.addr(), "GET", "/kv", &h, Some(&body)).status
}

#[test]
fn binds_loopback_only() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    assert!(fx.addr().ip().is_loopback(), "{}", fx.addr());
    assert_eq!(fx.addr().ip().to_string(), "127.0.0.1");
    assert_ne!(fx.addr().port(), 0);
    assert_eq!(fx.server.base_url(), format!("http://127.0.0.1:{}", fx.addr().port()));
}

#[test]
fn tokens_are_required_bound_and_revocable() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::PostDeploy);
    let bearer = format!("Bearer {}", t.as_str());
    assert_eq!(read(&fx, &[("Authorization", &bearer)]), 200);
    // No token, a made-up token, a malformed header.
    assert_eq!(read(&fx, &[]), 401);
    assert_eq!(read(&fx, &[("Authorization", &format!("Bearer {}", "0".repeat(64)))]), 401);
    assert_eq!(read(&fx, &[("Authorization", t.as_str())]), 401);
    // The token names its hook: maand headers that disagree with it are refused.
    let alloc = fx.alloc_id.to_string();
    let ok = [("Authorization", bearer.as_str()), ("X-ALLOCATION-ID", &alloc), ("EVENT", "post_deploy")];
    assert_eq!(read(&fx, &ok), 200);
    assert_eq!(read(&fx, &[("Authorization", &bearer), ("EVENT", "pre_deploy")]), 401);
    assert_eq!(read(&fx, &[("Authorization", &bearer), ("COMMAND", "command_other")]), 401);
    let other = Uuid::from_u128(7).to_string();
    assert_eq!(read(&fx, &[("Authorization", &bearer), ("X-ALLOCATION-ID", &other)]), 401);
    // Another allocation's token acts as that allocation: it cannot read api's secrets.
    let web = fx
        .server
        .handle()
        .issue(HookIdentity {
            alloc_id: Uuid::from_u128(9),
            job: "api2".into(),
            host: HOST.into(),
            event: Event::PostDeploy,
            command: "command_a".into(),
        })
        .unwrap();
    let r = call(fx.addr(), &web, "GET", "/kv", json!({"namespace": "secrets/job/api", "key": "pw"}));
    assert_eq!(r.status, 403);
    // ... and cannot pose as api's allocation.
    let web_bearer = format!("Bearer {}", web.as_str());
    assert_eq!(read(&fx, &[("Authorization", &web_bearer), ("X-ALLOCATION-ID", &alloc)]), 401);
    // Revoked when the hook exits.
    fx.server.handle().revoke(&t);
    assert_eq!(read(&fx, &[("Authorization", &bearer)]), 401);
    // Token text never appears in a Debug print.
    assert!(!format!("{web:?}").contains(web.as_str()));
}

#[test]
fn header_form_matches_a_running_hook() {
    let fx = Fixture::start(store(), ApiConfig { port: 0, header_auth: true });
    let alloc = fx.alloc_id.to_string();
    let hdr = |event: &'static str, cmd: &'static str| -> Vec<(&'static str, String)> {
        vec![("X-ALLOCATION-ID", alloc.clone()), ("EVENT", event.to_string()), ("COMMAND", cmd.to_string())]
    };
    let as_refs = |v: &Vec<(&'static str, String)>| -> Vec<(&'static str, String)> { v.clone() };
    let go = |h: Vec<(&'static str, String)>, method: &str, body: serde_json::Value| {
        let mut hs: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        hs.push(("Content-Type", "application/json"));
        send(fx.addr(), method, "/kv", &hs, Some(&body.to_string()))
    };
    let read_body = json!({"namespace": "vars/job/api", "key": "a"});
    let write_body = json!({"namespace": "vars/job/api", "key": "c", "value": "3"});
    // Nothing running yet.
    assert_eq!(go(hdr("post_deploy", "command_setup"), "GET", read_body.clone()).status, 401);
    let t = fx.issue(Event::PostDeploy);
    let h = hdr("post_deploy", "command_setup");
    assert_eq!(go(as_refs(&h), "GET", read_body.clone()).status, 200);
    assert_eq!(go(as_refs(&h), "PUT", write_body.clone()).status, 200);
    assert_eq!(
        fx.store.lock().unwrap().entry("vars/job/api", "c").unwrap().writer,
        "api:10.0.0.1/post_deploy/command_setup"
    );
    // Wrong event, wrong command, missing header: no such running hook.
    assert_eq!(go(hdr("pre_deploy", "command_setup"), "GET", read_body.clone()).status, 401);
    assert_eq!(go(hdr("post_deploy", "command_x"), "GET", read_body.clone()).status, 401);
    assert_eq!(go(vec![("X-ALLOCATION-ID", alloc.clone())], "GET", read_body.clone()).status, 401);
    // Access rules still apply in the header form.
    let denied = go(as_refs(&h), "PUT", json!({"namespace": "vars/job/db", "key": "c", "value": "3"}));
    assert_eq!(denied.status, 403);
    fx.server.handle().revoke(&t);
    assert_eq!(go(h, "GET", read_body).status, 401);

    // Without header_auth (ephemeral port) the header form is refused.
    let fx2 = Fixture::start(store(), ApiConfig::for_port(0));
    let _t2 = fx2.issue(Event::PostDeploy);
    let hs = [("X-ALLOCATION-ID", alloc.as_str()), ("EVENT", "post_deploy"), ("COMMAND", "command_setup")];
    assert_eq!(read(&fx2, &hs), 401);
}

#[test]
fn request_errors() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::Cli);
    let bearer = format!("Bearer {}", t.as_str());
    let auth = ("Authorization", bearer.as_str());
    let json_ct = ("Content-Type", "application/json");
    let r = send(fx.addr(), "PUT", "/kv", &[auth, json_ct], Some("{\"namespace\": "));
    assert_eq!(r.status, 400, "{}", r.raw_body);
    assert!(r.body["error"].as_str().unwrap().contains("not valid JSON"));
    assert_eq!(send(fx.addr(), "PUT", "/kv", &[auth, json_ct], Some("[1]")).status, 400);
    let missing = send(fx.addr(), "PUT", "/kv", &[auth, json_ct], Some(r#"{"namespace":"vars/job/api","key":"k"}"#));
    assert_eq!((missing.status, missing.body["error"].as_str()), (400, Some("missing field \"value\"")));
    for bad_ttl in ["-1", "\"soon\"", "\"1.5s\"", "[1]"] {
        let body = format!(r#"{{"namespace":"vars/job/api","key":"k","value":"v","ttl":{bad_ttl}}}"#);
        let r = send(fx.addr(), "PUT", "/kv", &[auth, json_ct], Some(&body));
        assert_eq!(r.status, 400, "{bad_ttl}: {}", r.raw_body);
        assert!(r.body["error"].as_str().unwrap().contains("help: 0 (or no ttl) = never expires"), "{}", r.raw_body);
    }
    // The one duration grammar of every door: seconds, `1h`, ISO 8601.
    for (given, seconds) in [("90", 90), ("\"90\"", 90), ("\"1h\"", 3600), ("\"P1D\"", 86400), ("\"1h30m\"", 5400)] {
        let body = format!(r#"{{"namespace":"vars/job/api","key":"t","value":"v","ttl":{given}}}"#);
        let r = send(fx.addr(), "PUT", "/kv", &[auth, json_ct], Some(&body));
        assert_eq!((r.status, r.body["ttl"].as_u64()), (200, Some(seconds)), "{given}: {}", r.raw_body);
        assert_eq!(fx.store.lock().unwrap().entry("vars/job/api", "t").unwrap().ttl, seconds, "{given}");
    }
    let body = r#"{"namespace":"vars/job/api","key":"k","value":"v"}"#;
    let r = send(fx.addr(), "PUT", "/kv", &[auth, ("Content-Type", "text/plain")], Some(body));
    assert_eq!(r.status, 415);
    assert_eq!(send(fx.addr(), "PUT", "/kv", &[auth], Some(body)).status, 415);
    let charset = ("Content-Type", "application/json; charset=utf-8");
    assert_eq!(send(fx.addr(), "PUT", "/kv", &[auth, charset], Some(body)).status, 200);
    let r = send(fx.addr(), "GET", "/nope", &[auth], None);
    assert_eq!(r.status, 404);
    assert!(r.body["error"].as_str().unwrap().contains("/kv"));
    let r = send(fx.addr(), "POST", "/kv", &[auth], None);
    assert_eq!(r.status, 405);
    // Header names are case-insensitive (hyper sends them lower-case).
    assert!(r.headers.to_ascii_lowercase().contains("\nallow: get, put, delete"), "{}", r.headers);
    assert_eq!(send(fx.addr(), "GET", "/kv/secret", &[auth], None).status, 405);
    // A missing key is 404 for reads and deletes.
    assert_eq!(call(fx.addr(), &t, "GET", "/kv", json!({"namespace": "vars/job/api", "key": "zz"})).status, 404);
    assert_eq!(call(fx.addr(), &t, "DELETE", "/kv", json!({"namespace": "vars/job/api", "key": "zz"})).status, 404);
}

#[test]
fn reads_take_a_query_string_and_report_expiry() {
    let mut s = store();
    s.entries.get_mut("vars/job/api").unwrap().get_mut("a").unwrap().expired_at = Some(1_700_000_000);
    let fx = Fixture::start(s, ApiConfig::for_port(0));
    let t = fx.issue(Event::PostDeploy);
    let bearer = format!("Bearer {}", t.as_str());
    let r = send(fx.addr(), "GET", "/kv?namespace=vars%2Fjob%2Fapi&key=b", &[("Authorization", &bearer)], None);
    assert_eq!(r.status, 200, "{}", r.raw_body);
    assert_eq!(r.body, json!({"namespace": "vars/job/api", "key": "b", "value": "2", "version": 1}));
    let r = call(fx.addr(), &t, "GET", "/kv", json!({"namespace": "vars/job/api", "key": "a"}));
    assert_eq!((r.body["expired"].clone(), r.body["expired_at"].clone()), (json!(true), json!(1_700_000_000)));
    // Secrets are read back decrypted but never echoed by writes.
    let r = call(fx.addr(), &t, "GET", "/kv", json!({"namespace": "secrets/job/api", "key": "pw"}));
    assert_eq!(r.body["value"], "hunter2");
    let r = call(
        fx.addr(),
        &t,
        "PUT",
        "/kv/secret",
        json!({"namespace": "secrets/job/api", "key": "pw2", "value": "s3cr3t", "ttl": 60}),
    );
    assert_eq!(r.status, 200);
    assert!(!r.raw_body.contains("s3cr3t"));
    let e = fx.store.lock().unwrap().entry("secrets/job/api", "pw2").cloned().unwrap();
    assert_eq!((e.value.as_str(), e.ttl), ("s3cr3t", 60));
    // Values are trimmed; numbers are stored as their text.
    call(fx.addr(), &t, "PUT", "/kv", json!({"namespace": "vars/job/api", "key": "n", "value": 42}));
    call(fx.addr(), &t, "PUT", "/kv", json!({"namespace": "vars/job/api", "key": "s", "value": "  x \n"}));
    let st = fx.store.lock().unwrap();
    assert_eq!(
        (st.entry("vars/job/api", "n").unwrap().value.as_str(), st.entry("vars/job/api", "s").unwrap().value.as_str()),
        ("42", "x")
    );
}

#[test]
fn keys_and_demands() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::HealthCheck);
    let r = call(fx.addr(), &t, "GET", "/kv/keys", json!({}));
    assert_eq!(r.body, json!({"namespaces": {"vars/job/api": ["a", "b"], "secrets/job/api": ["pw"]}}));
    let r = call(fx.addr(), &t, "GET", "/demands", json!({}));
    assert_eq!(
        r.body,
        json!([
            {"job": "web", "command": "command_a", "demand_config": {}},
            {"job": "web", "command": "command_b", "demand_config": {"replicas": 2}},
        ])
    );
    // db's init command is demanded by api's setup.
    let db = fx
        .server
        .handle()
        .issue(HookIdentity {
            alloc_id: Uuid::from_u128(3),
            job: "db".into(),
            host: HOST.into(),
            event: Event::PostDeploy,
            command: "command_init".into(),
        })
        .unwrap();
    let r = call(fx.addr(), &db, "GET", "/demands", json!({}));
    assert_eq!(r.body, json!([{"job": "api", "command": "command_setup", "demand_config": {}}]));
}

fn sem(fx: &Fixture, t: &kvform::hooks::token::HookToken, op: &str, body: serde_json::Value) -> Resp {
    let method = if op == "status" { "GET" } else { "POST" };
    call(fx.addr(), t, method, &format!("/semaphore/{op}"), body)
}

#[test]
fn semaphores_over_http() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let h = fx.server.handle();
    let ids: Vec<Uuid> = (1..=3).map(Uuid::from_u128).collect();
    let mk = |i: usize| {
        h.issue(HookIdentity {
            alloc_id: ids[i],
            job: JOB.into(),
            host: format!("h{i}"),
            event: Event::PostDeploy,
            command: "command_setup".into(),
        })
        .unwrap()
    };
    let (a, b, c) = (mk(0), mk(1), mk(2));
    let acq = |cap: i64, timeout: i64| json!({"name": "leave", "capacity": cap, "timeout_seconds": timeout});
    let r = sem(&fx, &a, "acquire", acq(2, 1));
    assert_eq!(r.status, 200);
    assert_eq!(r.body, json!({"name": "leave", "allocation_id": ids[0].to_string(), "capacity": 2, "acquired": true}));
    assert_eq!(sem(&fx, &b, "acquire", acq(2, 1)).status, 200);
    // Re-acquire by a holder is idempotent (maand), not a second slot.
    assert_eq!(sem(&fx, &a, "acquire", acq(2, 1)).status, 200);
    // Full: the third waits for its timeout_seconds and gets 408.
    let started = Instant::now();
    let r = sem(&fx, &c, "acquire", acq(2, 1));
    assert_eq!(r.status, 408, "{}", r.raw_body);
    assert!(started.elapsed() >= Duration::from_millis(900));
    // Misuse: another capacity, release without holding, capacity above 64.
    assert_eq!(sem(&fx, &c, "acquire", acq(3, 1)).status, 409);
    assert_eq!(sem(&fx, &c, "release", json!({"name": "leave"})).status, 409);
    assert_eq!(sem(&fx, &c, "acquire", json!({"name": "big", "capacity": 65})).status, 409);
    assert_eq!(sem(&fx, &c, "acquire", json!({"capacity": 1})).status, 400, "a name is required");
    let st = call(fx.addr(), &c, "GET", "/semaphore/status?name=leave", json!({}));
    assert_eq!(
        st.body,
        json!({"name": "leave", "capacity": 2, "holders": [ids[0].to_string(), ids[1].to_string()],
               "waiting": 0, "available": 0})
    );
    // Unknown: free, capacity 1. Capacity < 1 means 1.
    let st = call(fx.addr(), &c, "GET", "/semaphore/status?name=nobody", json!({}));
    assert_eq!(st.body, json!({"name": "nobody", "capacity": 1, "holders": [], "waiting": 0, "available": 1}));
    let r = sem(&fx, &c, "acquire", json!({"name": "zero", "capacity": 0, "timeout_seconds": 1}));
    assert_eq!(r.body["capacity"], 1);
    // A waiter gets the slot as soon as a holder's hook exits without releasing, and shows
    // as waiting meanwhile.
    let waiter = std::thread::scope(|s| {
        let w = s.spawn(|| sem(&fx, &c, "acquire", acq(2, 30)).status);
        let t0 = Instant::now();
        while call(fx.addr(), &b, "GET", "/semaphore/status?name=leave", json!({})).body["waiting"] != 1 {
            assert!(t0.elapsed() < Duration::from_secs(20), "the waiter never queued");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(h.revoke(&a), 1, "the forgotten hold is released");
        w.join().unwrap()
    });
    assert_eq!(waiter, 200);
    assert_eq!(sem(&fx, &b, "release", json!({"name": "leave"})).status, 200);
    assert_eq!(sem(&fx, &c, "release", json!({"name": "leave"})).status, 200);
    // Empty again: a new capacity is accepted; other events are other semaphores.
    assert_eq!(sem(&fx, &b, "acquire", acq(1, 1)).status, 200);
    let other_event = fx.issue(Event::PreDeploy);
    assert_eq!(sem(&fx, &other_event, "acquire", acq(5, 1)).status, 200);
}

#[test]
fn shutdown_wakes_waiters_and_joins() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let a = fx.issue(Event::Cli);
    // Another allocation (the same one would just hold the slot again).
    let b = fx
        .server
        .handle()
        .issue(HookIdentity {
            alloc_id: Uuid::from_u128(0xb),
            job: JOB.into(),
            host: "h2".into(),
            event: Event::Cli,
            command: "command_setup".into(),
        })
        .unwrap();
    assert_eq!(sem(&fx, &a, "acquire", json!({"name": "x"})).status, 200);
    let addr = fx.addr();
    let w = std::thread::spawn(move || {
        call(addr, &b, "POST", "/semaphore/acquire", json!({"name": "x", "timeout": 3600})).status
    });
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    fx.server.shutdown();
    assert_eq!(w.join().unwrap(), 503);
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn hook_writes_obey_the_kv_set_key_rules() {
    let fx = Fixture::start(store().with("maand/job/api", "workers", "10.0.0.1,10.0.0.2"), ApiConfig::for_port(0));
    let t = fx.issue(Event::Cli);
    let put = |ns: &str, key: &str, value: &str| {
        call(fx.addr(), &t, "PUT", "/kv", json!({"namespace": ns, "key": key, "value": value}))
    };
    let long = "k".repeat(1_000_000);
    for (key, rule) in [(long.as_str(), "key-length"), ("a/../../x", "key-segments"), ("-x", "key-characters")] {
        let r = put("vars/job/api", key, "v");
        assert_eq!(
            (r.status, r.body["rule"].as_str()),
            (400, Some(rule)),
            "{}",
            &r.raw_body[..r.raw_body.len().min(300)]
        );
        assert!(r.raw_body.len() < 1000, "the refusal does not echo the key");
        let r =
            call(fx.addr(), &t, "PUT", "/kv/secret", json!({"namespace": "secrets/job/api", "key": key, "value": "s"}));
        assert_eq!(r.status, 400, "secrets follow the same rules");
    }
    assert!(fx.store.lock().unwrap().entry("vars/job/api", "a/../../x").is_none());
    assert_eq!(put("vars/job/api", "tls/cert.pem", "v").status, 200);
    // rollout_order: only the job's active allocations, each once.
    let r = put("maand/job/api", "rollout_order", "10.0.0.2,10.0.0.9");
    assert_eq!((r.status, r.body["rule"].as_str()), (400, Some("rollout-order-hosts")), "{}", r.raw_body);
    assert!(r.body["error"].as_str().unwrap().contains("10.0.0.9"));
    assert_eq!(put("maand/job/api", "rollout_order", "10.0.0.2,10.0.0.2").status, 400);
    assert_eq!(put("maand/job/api", "rollout_order", "10.0.0.2,10.0.0.1").status, 200);
}

/// Read one HTTP/1.1 response (headers + Content-Length body) from a kept-alive stream.
fn read_response(r: &mut std::io::BufReader<std::net::TcpStream>) -> (u16, String) {
    use std::io::{BufRead, Read};
    let (mut status, mut len) = (0u16, 0usize);
    loop {
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(rest) = line.strip_prefix("HTTP/1.1 ") {
            status = rest[..3].parse().unwrap();
        } else if let Some((k, v)) = line.split_once(':')
            && k.eq_ignore_ascii_case("content-length")
        {
            len = v.trim().parse().unwrap();
        }
    }
    let mut body = vec![0; len];
    r.read_exact(&mut body).unwrap();
    (status, String::from_utf8(body).unwrap())
}

#[test]
fn connections_are_kept_alive_and_large_bodies_refused() {
    use std::io::Write;
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::PostDeploy);
    let stream = std::net::TcpStream::connect(fx.addr()).unwrap();
    let mut reader = std::io::BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    // Three requests on one connection (what a Python http.client hook does).
    for key in ["a", "b", "a"] {
        let req = format!(
            "GET /kv?namespace=vars%2Fjob%2Fapi&key={key} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\r\n",
            t.as_str()
        );
        w.write_all(req.as_bytes()).unwrap();
        let (status, body) = read_response(&mut reader);
        assert_eq!(status, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["value"], if key == "a" { "1" } else { "2" });
    }
    // A body over the 1 MiB limit is 413 with a JSON error, and nothing is written.
    let big = format!(r#"{{"namespace":"vars/job/api","key":"big","value":"{}"}}"#, "x".repeat(1 << 20));
    let auth = format!("Bearer {}", t.as_str());
    let r =
        send(fx.addr(), "PUT", "/kv", &[("Authorization", &auth), ("Content-Type", "application/json")], Some(&big));
    assert_eq!(r.status, 413, "{}", r.raw_body);
    assert!(r.body["error"].as_str().unwrap().contains("larger than"), "{}", r.raw_body);
    assert!(fx.store.lock().unwrap().entry("vars/job/api", "big").is_none());
}

#[test]
fn writes_take_a_type_and_description_checked_like_kv_set() {
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::Cli);
    let put = |body: serde_json::Value| call(fx.addr(), &t, "PUT", "/kv", body);
    let r =
        put(json!({"namespace": "vars/job/api", "key": "n", "value": 3, "type": "number", "description": "replicas"}));
    assert_eq!((r.status, r.body["type"].as_str()), (200, Some("number")), "{}", r.raw_body);
    let r = put(json!({"namespace": "vars/job/api", "key": "j", "value": {"b": [1]}, "type": "json"}));
    assert_eq!(r.status, 200, "{}", r.raw_body);
    {
        let st = fx.store.lock().unwrap();
        let n = st.entry("vars/job/api", "n").unwrap();
        assert_eq!((n.value.as_str(), n.kv_type, n.description.as_str()), ("3", KvType::Number, "replicas"));
        assert_eq!(st.entry("vars/job/api", "j").unwrap().value, r#"{"b":[1]}"#);
    }
    // A value that does not fit: 400 with `kv set --type`'s text, nothing written.
    let r = put(json!({"namespace": "vars/job/api", "key": "n", "value": "three", "type": "number"}));
    assert_eq!(r.status, 400);
    let error = r.body["error"].as_str().unwrap();
    assert!(
        error.starts_with("vars/job/api n: \"three\" is not a number: a JSON number such as 42 or -1.5"),
        "{error}"
    );
    assert_eq!(fx.store.lock().unwrap().entry("vars/job/api", "n").unwrap().value, "3");
    let r = put(json!({"namespace": "vars/job/api", "key": "n", "value": "1", "type": "int"}));
    assert_eq!(r.status, 400);
    assert!(r.body["error"].as_str().unwrap().starts_with("unknown type \"int\"; use one of string, number"));
    assert_eq!(put(json!({"namespace": "vars/job/api", "key": "n", "value": "1", "type": 5})).status, 400);
    // Lists need "type": "json".
    assert_eq!(put(json!({"namespace": "vars/job/api", "key": "l", "value": [1]})).status, 400);
    // A secret that does not fit its type is not quoted back.
    let r = call(
        fx.addr(),
        &t,
        "PUT",
        "/kv/secret",
        json!({"namespace": "secrets/job/api", "key": "pin", "value": "s3cr3t-pin", "type": "number"}),
    );
    assert_eq!(r.status, 400);
    assert!(!r.raw_body.contains("s3cr3t-pin"), "{}", r.raw_body);
    // maand's untyped write: a string again, the description kept.
    assert_eq!(put(json!({"namespace": "vars/job/api", "key": "n", "value": "4"})).status, 200);
    let st = fx.store.lock().unwrap();
    let n = st.entry("vars/job/api", "n").unwrap();
    assert_eq!((n.kv_type, n.description.as_str()), (KvType::String, "replicas"));
}

/// A body far over the limit (a hook that PUTs a whole file) gets its 413 — the client is
/// still writing when the server decides, so the server must read the rest instead of
/// closing the connection under it (which reset the socket: the client saw "connection
/// reset" or a broken pipe, never the answer). Declared length, chunked, and
/// `Expect: 100-continue` (curl's way for large bodies, answered before any byte is sent).
#[test]
fn a_body_far_over_the_limit_is_answered_413_not_a_closed_connection() {
    use std::io::{Read, Write};
    let fx = Fixture::start(store(), ApiConfig::for_port(0));
    let t = fx.issue(Event::PostDeploy);
    let size = 24 << 20;
    for framing in ["length", "chunked", "expect"] {
        let stream = std::net::TcpStream::connect(fx.addr()).unwrap();
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut w = stream.try_clone().unwrap();
        let head = match framing {
            "chunked" => "Transfer-Encoding: chunked\r\n".to_string(),
            "expect" => format!("Content-Length: {size}\r\nExpect: 100-continue\r\n"),
            _ => format!("Content-Length: {size}\r\n"),
        };
        let req = format!(
            "PUT /kv HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\n{head}\r\n",
            t.as_str()
        );
        w.write_all(req.as_bytes()).unwrap();
        // The body in a thread of its own, as a client streams a file; for `Expect` the
        // client waits for the server's word and sends nothing.
        let writer = (framing != "expect").then(|| {
            std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 << 10];
                let mut sent = 0;
                while sent < size {
                    let r = if framing == "chunked" {
                        w.write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
                            .and_then(|_| w.write_all(&chunk))
                            .and_then(|_| w.write_all(b"\r\n"))
                    } else {
                        w.write_all(&chunk)
                    };
                    if r.is_err() {
                        return Err(sent);
                    }
                    sent += chunk.len();
                }
                if framing == "chunked" {
                    let _ = w.write_all(b"0\r\n\r\n");
                }
                Ok(sent)
            })
        });
        let mut out = Vec::new();
        let read = (&stream).read_to_end(&mut out);
        if let Some(writer) = writer {
            let wrote = writer.join().unwrap();
            assert!(
                wrote.is_ok(),
                "{framing}: the server closed the connection under the client after {wrote:?} bytes"
            );
        }
        assert!(read.is_ok(), "{framing}: {read:?}, read {} bytes: {}", out.len(), String::from_utf8_lossy(&out));
        let text = String::from_utf8_lossy(&out).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("{framing}: no response: {text}"));
        assert!(head.starts_with("HTTP/1.1 413"), "{framing}: {head}");
        let v: serde_json::Value = serde_json::from_str(body).unwrap_or_else(|_| panic!("{framing}: not JSON: {body}"));
        let error = v["error"].as_str().unwrap();
        assert!(error.contains("larger than 1048576 bytes"), "{framing}: {error}");
        assert!(v["hint"].as_str().unwrap().contains("1 MiB"), "{framing}: {body}");
    }
    assert!(fx.store.lock().unwrap().entry("vars/job/api", "big").is_none());
}
