//! The web UI in a real browser: `kvform serve` on an applied quickstart copy, Chromium
//! headless driven through chromedriver's WebDriver protocol (plain JSON over loopback HTTP
//! with ureq: a dozen calls do not need a WebDriver crate and its TLS stack). Logs in,
//! opens a namespace, creates a typed key with a TTL of `1h` (a failed save first, which
//! keeps the input), edits it, views the history diff, meets a conflict with another
//! writer, checks that the pages fit 420 px, deletes it through the confirmation, checking
//! each page; screenshots (desktop and 420 px) go to target/serve-screenshots/.
//!
//! Skipped only outside CI when chromium/chromedriver are missing; with `CI` set it fails.

mod quickstart_copy;

use base64::Engine;
use serde_json::{Value, json};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Kill(Child);
impl Drop for Kill {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn wait_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30), "nothing listens on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn kvform(dir: &Path, args: &[&str]) -> String {
    let o =
        Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn kvform_stdin(dir: &Path, args: &[&str], input: &str) {
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

fn which(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?.to_str()?.split(':').map(|d| Path::new(d).join(name)).find(|p| p.is_file())
}

struct Driver {
    base: String,
    agent: ureq::Agent,
    shots: PathBuf,
    n: usize,
}

impl Driver {
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let v = self.try_call(method, path, body);
        assert!(v.get("error").is_none(), "{method} {path}: {v}");
        v
    }
    /// The answer's `value`, which holds an `error` when the command failed.
    fn try_call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
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
    fn go(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }
    fn find(&self, css: &str) -> String {
        let v = self.call("POST", "/element", Some(json!({ "using": "css selector", "value": css })));
        v.as_object().and_then(|o| o.values().next()).and_then(Value::as_str).unwrap().to_string()
    }
    fn type_in(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/clear"), None);
        self.call("POST", &format!("/element/{e}/value"), Some(json!({ "text": text })));
    }
    fn click(&self, css: &str) {
        let e = self.find(css);
        self.call("POST", &format!("/element/{e}/click"), None);
    }
    /// The page's text, once a click's navigation has settled (the old page's elements go
    /// stale meanwhile).
    fn text(&self) -> String {
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
    fn wait_for(&self, needle: &str) -> String {
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
    fn value_of(&self, css: &str) -> String {
        let e = self.find(css);
        self.call("GET", &format!("/element/{e}/property/value"), None).as_str().unwrap_or("").to_string()
    }
    /// Run a script in the page (only WebDriver does; the page's CSP allows none).
    fn exec(&self, script: &str) -> Value {
        self.call("POST", "/execute/sync", Some(json!({ "script": script, "args": [] })))
    }
    fn resize(&self, width: u32, height: u32) {
        self.call("POST", "/window/rect", Some(json!({ "width": width, "height": height })));
    }
    /// The page is no wider than the window (nothing scrolls sideways).
    fn fits(&self) -> bool {
        self.exec("return document.documentElement.scrollWidth <= window.innerWidth").as_bool().unwrap()
    }
    /// Every type pill and time cell is on one line (a pill broken inside its word reads
    /// "numbe r", a time broken at its dash "2026-12-" over "08T01:38:50Z").
    fn unbroken(&self) -> bool {
        self.exec(
            "return [...document.querySelectorAll('.pill, td.ts')].every(e => { \
             const r = document.createRange(); r.selectNodeContents(e); \
             return new Set([...r.getClientRects()].map(x => Math.round(x.top))).size <= 1 })",
        )
        .as_bool()
        .unwrap()
    }
    fn url(&self) -> String {
        self.call("GET", "/url", None).as_str().unwrap().to_string()
    }
    fn shot(&mut self, name: &str) {
        self.n += 1;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD.decode(b64.as_str().unwrap()).unwrap();
        std::fs::write(self.shots.join(format!("{:02}-{name}.png", self.n)), png).unwrap();
    }
}

#[test]
fn log_in_create_edit_diff_delete_in_a_browser() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        assert!(std::env::var_os("CI").is_none(), "CI must have chromium and chromium-driver (.ci/run installs them)");
        eprintln!("skipped: chromium/chromedriver not installed");
        return;
    };
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let token =
        kvform(d, &["token", "create", "browser", "--role", "writer", "--namespaces", "vars/job/*,secrets/job/*"])
            .trim()
            .to_string();
    kvform_stdin(d, &["kv", "set", "secrets/job/api", "db_password", "-"], "hunter2");
    let port = free_port();
    let _server = Kill(
        Command::new(env!("CARGO_BIN_EXE_kvform"))
            .arg("-C")
            .arg(d)
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let dport = free_port();
    let _driver = Kill(
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
    let mut b = Driver { base: format!("http://127.0.0.1:{dport}/session/{session}"), agent, shots, n: 0 };
    let site = format!("http://127.0.0.1:{port}");
    // Element look-ups wait up to 5 s for a page that is still loading.
    b.call("POST", "/timeouts", Some(json!({ "implicit": 5000 })));

    // Log in (a wrong token first).
    b.go(&format!("{site}/"));
    assert!(b.text().contains("Paste an API token"));
    b.type_in("input[name=token]", "kvf_wrong");
    b.click("button.p");
    let t = b.wait_for("unknown token");
    assert!(t.contains("unknown token"), "{t}");
    b.type_in("input[name=token]", &token);
    b.click("button.p");
    let t = b.wait_for("browser · writer");
    assert!(t.contains("Namespaces") && t.contains("browser · writer"), "{t}");
    b.shot("namespaces");

    // Search, then open vars/job/api.
    b.type_in("input[name=q]", "vars/job");
    b.click("form button.p");
    assert!(b.wait_for("vars/job/api").contains("vars/job/api"));
    b.click("a[href='/ui/ns/vars/job/api/']");
    b.wait_for("Create a key");
    assert!(b.url().ends_with("/ui/ns/vars/job/api/"), "{}", b.url());
    b.shot("namespace");
    assert!(b.unbroken(), "a type pill or a time of the key table breaks over two lines");

    // Create a typed key with a TTL of 1h (a bad number first: refused, nothing written, and
    // the form comes back with everything typed and the error at the value).
    b.type_in("input[name=key]", "max_replicas");
    b.click("select[name=type] > option:nth-child(2)"); // number
    b.type_in("input[name=ttl]", "1h");
    b.type_in("textarea[name=value]", "three");
    b.type_in("input[name=description]", "how many");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("is not a number");
    assert!(t.contains("is not a number"), "{t}");
    assert_eq!(b.value_of("input[name=key]"), "max_replicas");
    assert_eq!(b.value_of("textarea[name=value]"), "three", "the failed save kept the input");
    assert_eq!(b.value_of("input[name=description]"), "how many");
    assert_eq!(b.value_of("input[name=ttl]"), "1h");
    assert_eq!(b.value_of("select[name=type]"), "number");
    b.find("textarea.bad[name=value] + .ferr");
    b.shot("failed-save-keeps-input");
    assert!(!kvform(d, &["kv", "keys", "vars/job/api"]).contains("max_replicas"));
    b.type_in("textarea[name=value]", "3");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("token:browser");
    assert!(b.url().ends_with("/ui/key/vars/job/api/max_replicas"), "`_` unencoded: {}", b.url());
    assert!(t.contains("number") && t.contains("how many") && t.contains("token:browser"), "{t}");
    assert!(!t.contains("expires never"), "a TTL of 1h: {t}");
    let got: Value =
        serde_json::from_str(&kvform(d, &["kv", "get", "vars/job/api", "max_replicas", "--format", "json"])).unwrap();
    assert_eq!(got["ttl"], 3600, "{got}");
    // The read view: no form until Edit; the title is not smaller than the breadcrumb.
    assert!(b.exec("return document.querySelector('form[action=\"/ui/put\"]') === null").as_bool().unwrap());
    let sizes = b.exec(
        "return [parseFloat(getComputedStyle(document.querySelector('h1')).fontSize), parseFloat(getComputedStyle(document.querySelector('.crumbs')).fontSize)]",
    );
    assert!(sizes[0].as_f64().unwrap() > sizes[1].as_f64().unwrap(), "title vs breadcrumb: {sizes}");
    b.shot("created");

    // Edit it: a bad TTL first (refused at the field, the typed value kept), then a new version.
    b.click("a[href$='?edit=1#edit']");
    b.type_in("textarea[name=value]", "5");
    b.type_in("input[name=ttl]", "soon");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("is not a duration");
    assert!(t.contains("`soon` is not a duration"), "{t}");
    assert_eq!(b.value_of("textarea[name=value]"), "5");
    b.type_in("input[name=ttl]", "1h");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("version 2");
    assert!(t.contains("version 2"), "{t}");
    b.shot("edited");

    // The diff between versions 1 and 2 (the default pair).
    let diff = b.find(".diff");
    let diff_text = b.call("GET", &format!("/element/{diff}/text"), None);
    let diff_text = diff_text.as_str().unwrap();
    assert!(diff_text.contains("- 3") && diff_text.contains("+ 5"), "{diff_text}");
    b.shot("diff");

    // A conflict: another writer saves while the form is open; the save shows the newer
    // value and a diff against the input, keeps the input, and overwrites nothing.
    b.click("a[href$='?edit=1#edit']");
    kvform(d, &["kv", "set", "vars/job/api", "max_replicas", "7"]);
    b.type_in("textarea[name=value]", "6");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("Conflict");
    assert!(t.contains("Conflict: your edit was not saved") && t.contains("saved version 3"), "{t}");
    let diff = b.find(".diff");
    let diff_text = b.call("GET", &format!("/element/{diff}/text"), None);
    assert!(diff_text.as_str().unwrap().contains("- 7") && diff_text.as_str().unwrap().contains("+ 6"), "{diff_text}");
    assert_eq!(b.value_of("textarea[name=value]"), "6", "the conflict page keeps the input");
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "max_replicas"]).trim(), "7", "nothing overwritten");
    b.shot("conflict");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("version 4");
    assert!(t.contains("version 4"), "{t}");
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "max_replicas"]).trim(), "6");

    // Narrow screens: the key table and the key page fit 420 px.
    b.resize(420, 900);
    b.go(&format!("{site}/ui/ns/vars/job/api/"));
    b.wait_for("max_replicas");
    b.shot("namespace-420px");
    assert!(b.fits(), "the namespace page scrolls sideways at 420 px");
    assert!(b.unbroken(), "a type pill breaks over two lines at 420 px");
    b.go(&format!("{site}/ui/key/vars/job/api/max_replicas"));
    b.wait_for("History");
    b.shot("key-420px");
    assert!(b.fits(), "the key page scrolls sideways at 420 px");
    assert!(b.unbroken(), "a type pill breaks over two lines on the key page at 420 px");
    b.go(&format!("{site}/ui/applies"));
    b.wait_for("Applies");
    b.shot("applies-420px");
    assert!(b.fits(), "the applies page scrolls sideways at 420 px");
    assert!(b.unbroken(), "a time on the applies page breaks over two lines at 420 px");
    b.go(&format!("{site}/ui/key/vars/job/api/max_replicas"));
    b.wait_for("History");
    b.resize(1280, 900);

    // Delete it: a confirmation first, then the deletion.
    b.click("a[href$='?delete=1']");
    let t = b.wait_for("the history is kept");
    assert!(t.contains("Delete max_replicas from vars/job/api?"), "{t}");
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "max_replicas"]).trim(), "6", "asking deletes nothing");
    b.shot("delete-confirm");
    b.click("form[action='/ui/delete'] button.d");
    let t = b.wait_for("deleted max_replicas");
    assert!(t.contains("deleted max_replicas"), "{t}");
    assert!(!t.contains("token:browser"), "the key is gone from the table: {t}");
    b.shot("deleted");

    // A masked secret: change only its description. The value box is empty (the token
    // cannot reveal); saving must keep the secret, not write "" as its new version.
    b.go(&format!("{site}/ui/key/secrets/job/api/db_password?edit=1"));
    let t = b.wait_for("masked");
    assert!(t.contains("(sensitive)") && !t.contains("hunter2"), "{t}");
    b.type_in("input[name=description]", "the primary's password");
    b.click("form[action='/ui/put'] button.p");
    let t = b.wait_for("version 2");
    assert!(t.contains("version 2") && t.contains("the primary's password"), "{t}");
    b.shot("secret-description");
    let got = kvform(d, &["kv", "get", "secrets/job/api", "db_password", "--reveal"]);
    assert_eq!(got.trim(), "hunter2", "the secret's value survived a description edit");

    // The applies and plan pages.
    b.go(&format!("{site}/ui/applies"));
    assert!(b.wait_for("serve delete").contains("serve delete"));
    // A pending change: the plan page pictures its rollout (waves, jobs, demands, batches).
    let m = d.join("workspace/jobs/api/manifest.json");
    std::fs::write(&m, std::fs::read_to_string(&m).unwrap().replacen("\"version\": \"", "\"version\": \"9", 1))
        .unwrap();
    b.go(&format!("{site}/ui/plan"));
    assert!(b.wait_for("Pending plan").contains("Pending plan"));
    b.find("svg.rollout");
    b.shot("plan");
    b.call("DELETE", "", None);
}
