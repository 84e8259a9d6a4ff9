//! The web UI's browser tests' harness: `kvform serve` on an applied quickstart copy and
//! Chromium headless driven through chromedriver's WebDriver protocol (plain JSON over
//! loopback HTTP with ureq: a dozen calls do not need a WebDriver crate and its TLS stack).
//! Used by tests/serve_browser.rs and tests/serve_browser_search.rs.
#![allow(dead_code)]

use base64::Engine;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Kill(pub Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

pub fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

pub fn kvform(dir: &Path, args: &[&str]) -> String {
    let o =
        Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

pub fn kvform_stdin(dir: &Path, args: &[&str], input: &str) {
    use std::io::Write;
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(input.as_bytes()).unwrap();
    let o = c.wait_with_output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
}

pub fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

pub struct Driver {
    base: String,
    agent: ureq::Agent,
    shots: PathBuf,
    n: usize,
}

impl Driver {
    pub fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.try_call(method, path, body);
        assert!(v.get("error").is_none(), "{method} {path}: {v}");
        v
    }
    /// The answer's `value`, which holds an `error` when the command failed.
    pub fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.base);
        let r = match (method, body) {
            ("GET", _) => self.agent.get(&url).call(),
            ("DELETE", _) => self.agent.delete(&url).call(),
            (_, b) => self.agent.post(&url).send_json(b.unwrap_or(json!({}))),
        };
        let mut r = r.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let v: Value = r.body_mut().read_json().unwrap();
        v["value"].clone()
    }
    pub fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }
    pub fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }
    pub fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/clear"), None);
        self.call("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }
    pub fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), None);
    }
    /// The page's text, once a click's navigation has settled (the old page's elements go
    /// stale meanwhile).
    pub fn text(&self) -> String {
        for _ in 0..100 {
            let found = self.try_call("POST", "/element", Some(json!({ "using": "css selector", "value": "body" })));
            let Some(e) = found
                .as_object()
                .and_then(|o| o.values().next())
                .and_then(Value::as_str)
                .filter(|_| found.get("error").is_none())
            else {
                std::thread::sleep(Duration::from_millis(50));
                continue;
            };
            let v = self.try_call("GET", &format!("/element/{e}/text"), None);
            if let Some(t) = v.as_str() {
                return t.to_string();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the page did not settle")
    }
    /// The page's text once it contains `needle` (a click's navigation may not have started
    /// when the click returns); the last text seen after 15 s otherwise.
    pub fn wait_for(&self, needle: &str) -> String {
        let start = Instant::now();
        loop {
            let t = self.text();
            if t.contains(needle) || start.elapsed() > Duration::from_secs(15) {
                return t;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    /// An input's or textarea's current value (what the user sees in the box).
    pub fn value_of(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/property/value"), None).as_str().unwrap_or("").to_string()
    }
    /// Run a script in the page (only WebDriver does; the page's CSP allows none).
    pub fn exec(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }
    pub fn resize(&self, width: u32, height: u32) {
        self.call("POST", "/window/rect", Some(json!({ "width": width, "height": height })));
    }
    /// The page is no wider than the window (nothing scrolls sideways).
    pub fn fits(&self) -> bool {
        self.exec("return document.documentElement.scrollWidth <= window.innerWidth").as_bool().unwrap()
    }
    /// Every type pill and time cell is on one line (a pill broken inside its word reads
    /// "numbe r", a time broken at its dash "2026-12-" over "08T01:38:50Z").
    pub fn unbroken(&self) -> bool {
        self.exec(
            "return [...document.querySelectorAll('.pill, td.ts')].every(e => { \
             const r = document.createRange(); r.selectNodeContents(e); \
             return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size <= 1 })",
        )
        .as_bool()
        .unwrap()
    }
    pub fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }
    pub fn shot(&mut self, name: &str) {
        self.n += 1;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png).unwrap();
    }
}

/// A logged-out browser on a running `kvform serve` of the bucket at `dir`: the server,
/// chromedriver and the profile live as long as this value.
pub struct Session {
    pub b: Driver,
    /// `http://127.0.0.1:PORT` of the server.
    pub site: String,
    _server: Kill,
    _driver: Kill,
    _profile: tempfile::TempDir,
}

/// Start `kvform serve` on `dir` and a headless Chromium session (1280x900, 5 s implicit
/// waits). `None` (with a note) when chromium/chromedriver are missing outside CI; under CI
/// their absence fails the test.
pub fn start(dir: &Path) -> Option<Session> {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium and chromium-driver (.ci/run installs them)");
        eprintln!("SKIPPED: chromium/chromedriver not installed");
        return None;
    };
    let port = free_port();
    let server = Kill(
        Command::new(env!("CARGO_BIN_EXE_kvform"))
            .arg("-C")
            .arg(dir)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dport = free_port();
    let driver = Kill(
        Command::new(chromedriver)
            .arg(format!("--port={dport}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_port(port);
    wait_port(dport);
    let profile = tempfile::tempdir().unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let caps = json!({ "capabilities": { "alwaysMatch": { "browserName": "chrome", "goog:chromeOptions": {
        "binary": chromium.to_str().unwrap(),
        "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,900", format!("--user-data-dir={}", profile.path().display())] } } } });
    let mut r = agent.post(&format!("http://127.0.0.1:{dport}/session")).send_json(caps).unwrap();
    let v: Value = r.body_mut().read_json().unwrap();
    let session = v["value"]["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {v}")).to_string();
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/serve-screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let b = Driver { base: format!("http://127.0.0.1:{dport}/session/{session}"), agent, shots, n: 0 };
    // Element look-ups wait up to 5 s for a page that is still loading.
    b.call("POST", "/timeouts", Some(json!({ "implicit": 5000 })));
    Some(Session { b, site: format!("http://127.0.0.1:{port}"), _server: server, _driver: driver, _profile: profile })
}
