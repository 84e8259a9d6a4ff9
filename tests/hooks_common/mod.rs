//! Shared fixtures for the hooks integration tests: a raw HTTP/1.1 client (so the tests
//! see exactly the status and body the server sends) and a seeded server.
#![allow(dead_code)]

use kvform::hooks::api::{ApiConfig, ApiServer, SharedStore, Topology};
use kvform::hooks::store::MemoryStore;
use kvform::hooks::token::{HookIdentity, HookToken};
use kvform::model::types::DesiredJob;
use kvform::workspace::types::{Command, Demand, Event};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

pub const JOB: &str = "api";
pub const HOST: &str = "10.0.0.1";
pub const OTHER_HOST: &str = "10.0.0.2";

/// One HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub body: serde_json::Value,
    pub raw_body: String,
    pub headers: String,
}

/// Send one request with `Connection: close` and read the whole response.
pub fn send(addr: SocketAddr, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
    let mut s = TcpStream::connect(addr).expect("connect to the hook API");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    let body = body.unwrap_or("");
    req.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    let mut out = Vec::new();
    s.read_to_end(&mut out).unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, raw_body) = text.split_once("\r\n\r\n").expect("an HTTP response");
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).expect("a status code");
    let body = serde_json::from_str(raw_body).unwrap_or(serde_json::Value::Null);
    Resp { status, body, raw_body: raw_body.to_string(), headers: head.to_string() }
}

/// A JSON request with a bearer token.
pub fn call(addr: SocketAddr, token: &HookToken, method: &str, path: &str, body: serde_json::Value) -> Resp {
    let auth = format!("Bearer {}", token.as_str());
    let body = body.to_string();
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    send(addr, method, path, &headers, Some(&body))
}

pub fn command(name: &str, demands: Option<(&str, &str, &str)>) -> Command {
    Command {
        name: name.into(),
        executed_on: Event::ALL.to_vec(),
        demands: demands.map(|(job, command, config)| Demand {
            job: job.into(),
            command: command.into(),
            config_json: config.into(),
            min_version: None,
            max_version: None,
            span: kvform::diag::Span::new(0, 0..0),
            job_span: kvform::diag::Span::new(0, 0..0),
            command_span: kvform::diag::Span::new(0, 0..0),
        }),
        script: PathBuf::from(format!("workspace/jobs/x/_modules/{name}.sh")),
        span: kvform::diag::Span::new(0, 0..0),
    }
}

pub fn job(name: &str, upstreams: &[&str], commands: Vec<Command>) -> DesiredJob {
    DesiredJob {
        name: name.into(),
        job_id: Uuid::nil(),
        version: "1.0.0".into(),
        deployment_seq: 0,
        upstreams: upstreams.iter().map(|s| s.to_string()).collect(),
        max_concurrent_upgrades: 1,
        max_concurrent_starts: 1,
        commands: commands.into_iter().map(|c| (c.name.clone(), c)).collect(),
        active_hosts: vec![HOST.into(), OTHER_HOST.into()],
        disabled_hosts: vec![],
    }
}

/// api demands db; web demands api's command_setup (two commands, with config); api2 is
/// a look-alike name for segment-matching checks.
pub fn jobs() -> BTreeMap<String, DesiredJob> {
    let mut m = BTreeMap::new();
    m.insert("api".into(), job("api", &["db"], vec![command("command_setup", Some(("db", "command_init", "{}")))]));
    m.insert("db".into(), job("db", &[], vec![command("command_init", None)]));
    m.insert(
        "web".into(),
        job(
            "web",
            &["api"],
            vec![
                command("command_b", Some(("api", "command_setup", r#"{"replicas":2}"#))),
                command("command_a", Some(("api", "command_setup", "{}"))),
                command("command_c", Some(("api", "command_other", "{}"))),
            ],
        ),
    );
    m.insert("api2".into(), job("api2", &[], vec![]));
    m
}

pub struct Fixture {
    pub server: ApiServer,
    pub store: Arc<Mutex<MemoryStore>>,
    pub alloc_id: Uuid,
}

impl Fixture {
    pub fn start(store: MemoryStore, cfg: ApiConfig) -> Fixture {
        let store = Arc::new(Mutex::new(store));
        let shared: SharedStore = store.clone();
        let server = ApiServer::start(cfg, shared, Topology::from_jobs(&jobs())).expect("start the hook API");
        Fixture { server, store, alloc_id: Uuid::from_u128(0xa11c) }
    }

    pub fn addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    pub fn identity(&self, event: Event) -> HookIdentity {
        HookIdentity {
            alloc_id: self.alloc_id,
            job: JOB.into(),
            host: HOST.into(),
            event,
            command: "command_setup".into(),
        }
    }

    pub fn issue(&self, event: Event) -> HookToken {
        self.server.handle().issue(self.identity(event)).unwrap()
    }
}

/// A bucket dir holding one hook script at `workspace/jobs/api/_modules/<script_name>`;
/// returns the dir and the script path relative to it.
pub fn bucket_with(script_name: &str, body: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let rel = PathBuf::from("workspace/jobs/api/_modules").join(script_name);
    std::fs::create_dir_all(dir.path().join(rel.parent().unwrap())).unwrap();
    std::fs::write(dir.path().join(&rel), body).unwrap();
    (dir, rel)
}

/// A `command_setup` invocation of job [`JOB`] on [`HOST`] running `script` for `event`.
pub fn invocation(
    root: &std::path::Path,
    script: &std::path::Path,
    event: Event,
    alloc_index: usize,
    new_version: &str,
) -> kvform::hooks::runner::HookInvocation {
    kvform::hooks::runner::HookInvocation {
        bucket_root: root.to_path_buf(),
        script: script.to_path_buf(),
        job: JOB.into(),
        command: "command_setup".into(),
        event,
        alloc_id: Uuid::from_u128(0xa11c),
        host: HOST.into(),
        alloc_index,
        disabled: false,
        current_version: "1.0.0".into(),
        new_version: new_version.into(),
        env: Vec::new(),
        started_at: 1767323045,
        timeout: std::time::Duration::from_secs(30),
    }
}
