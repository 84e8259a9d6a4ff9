//! `kvform serve` over real HTTP for the API tests of issue 26 (shape, search, watch): a
//! served bucket on either backend (jobs `web` and `db`, applied), tokens, and requests.
#![allow(dead_code)]

use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub use crate::tf_support::ok;

/// A bucket with jobs `web` and `db`, applied: SQLite, or PostgreSQL when the test database
/// is configured (`None` otherwise: the PostgreSQL half of a test is skipped).
pub enum Bucket {
    Sqlite(tempfile::TempDir),
    Postgres(crate::tf_support::BucketDir),
}

impl Bucket {
    pub fn sqlite() -> Bucket {
        let b = Bucket::Sqlite(crate::tf_support::bucket());
        ok(b.path(), &["apply", "--auto-approve"]);
        b
    }
    pub fn postgres(test: &str) -> Option<Bucket> {
        crate::tf_support::pg_url(test)?;
        let b = Bucket::Postgres(crate::tf_support::pg_bucket());
        ok(b.path(), &["apply", "--auto-approve"]);
        Some(b)
    }
    pub fn path(&self) -> &Path {
        match self {
            Bucket::Sqlite(d) => d.path(),
            Bucket::Postgres(d) => d.path(),
        }
    }
    pub fn backend(&self) -> &'static str {
        match self {
            Bucket::Sqlite(_) => "sqlite",
            Bucket::Postgres(_) => "postgres",
        }
    }
}

/// `body` on SQLite, then on PostgreSQL when configured.
pub fn on_both_backends(test: &str, body: impl Fn(&Bucket)) {
    body(&Bucket::sqlite());
    if let Some(b) = Bucket::postgres(test) {
        body(&b);
    }
}

pub fn token(dir: &Path, args: &[&str]) -> String {
    let mut a = vec!["token", "create"];
    a.extend(args);
    ok(dir, &a).trim().to_string()
}

pub struct Served {
    pub child: Child,
    pub base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn serve(dir: &Path) -> Served {
    serve_with(dir, &[], &[])
}

/// `kvform serve` on `dir` with more arguments and environment (e.g. `KVFORM_NOW`), on a
/// free loopback port, once it accepts connections.
pub fn serve_with(dir: &Path, extra: &[&str], env: &[(&str, &str)]) -> Served {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(extra)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "kvform serve did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Served { child, base: format!("http://127.0.0.1:{port}") }
}

pub struct Resp {
    pub status: u16,
    pub body: Value,
    pub text: String,
    pub headers: Vec<(String, String)>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// One request: the bearer token, a JSON body.
pub fn request(method: &str, url: &str, token: Option<&str>, body: Option<&Value>) -> Resp {
    let a: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let mut req = ureq::http::Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("Authorization", format!("Bearer {t}"));
    }
    let resp = match body {
        Some(b) => a.run(req.header("Content-Type", "application/json").body(b.to_string()).unwrap()),
        None => a.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    let text = if method == "HEAD" { String::new() } else { resp.into_body().read_to_string().unwrap() };
    let body = serde_json::from_str(&text).unwrap_or(Value::Null);
    Resp { status, body, text, headers }
}

pub fn get(s: &Served, path: &str, t: &str) -> Resp {
    request("GET", &format!("{}{path}", s.base), Some(t), None)
}

pub fn put(s: &Served, path: &str, t: &str, body: Value) -> Resp {
    let r = request("PUT", &format!("{}{path}", s.base), Some(t), Some(&body));
    assert!(r.status == 200 || r.status == 201, "PUT {path}: {} {}", r.status, r.text);
    r
}
