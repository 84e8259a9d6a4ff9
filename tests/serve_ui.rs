//! The web UI without a browser: the session cookie's flags, CSRF refusal, HTML escaping of
//! stored values, and logout.

mod quickstart_copy;

use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn kvform(dir: &Path, args: &[&str]) -> String {
    let o =
        Command::new(env!("CARGO_BIN_EXE_kvform")).arg("-C").arg(dir).args(args).env("NO_COLOR", "1").output().unwrap();
    assert!(o.status.success(), "{args:?}: {}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8(o.stdout).unwrap()
}

fn send(url: &str, cookie: Option<&str>, form: Option<&str>) -> (u16, Vec<(String, String)>, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    let mut req = ureq::http::Request::builder().uri(url).method(if form.is_some() { "POST" } else { "GET" });
    if let Some(c) = cookie {
        req = req.header("Cookie", c);
    }
    let resp = match form {
        Some(f) => {
            agent.run(req.header("Content-Type", "application/x-www-form-urlencoded").body(f.to_string()).unwrap())
        }
        None => agent.run(req.body(()).unwrap()),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().iter().map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string())).collect();
    (status, headers, resp.into_body().read_to_string().unwrap())
}

/// The login page's pre-session CSRF pair: its `kvform_login` cookie and hidden field.
fn login_form(site: &str) -> (String, String) {
    let (status, headers, body) = send(&format!("{site}/"), None, None);
    assert_eq!(status, 200, "{body}");
    let set = headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("kvform_login="))
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("the login page sets its CSRF cookie: {headers:?}"));
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict") && set.contains("Path=/login"), "{set}");
    let cookie = set.split(';').next().unwrap().to_string();
    let field =
        body.split("name=\"login_csrf\" value=\"").nth(1).expect("a login_csrf field").split('"').next().unwrap();
    assert_eq!(cookie, format!("kvform_login={field}"), "the cookie and the field carry one value");
    (cookie, field.to_string())
}

/// Log in as a browser does: the login page, then its form.
fn login(site: &str, token: &str) -> (u16, Vec<(String, String)>, String) {
    let (cookie, field) = login_form(site);
    send(&format!("{site}/login"), Some(&cookie), Some(&format!("login_csrf={field}&token={token}")))
}

fn start_serve(d: &Path) -> (std::process::Child, String) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    (child, format!("http://127.0.0.1:{port}"))
}

/// `POST /login` from the client bound to `source` (another loopback address is another
/// client to the server), raw HTTP: (status, head).
fn login_from(source: &str, site: &str, form: &str, cookie: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let addr: std::net::SocketAddr = site.trim_start_matches("http://").parse().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread().enable_io().build().unwrap();
    let tcp = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4().unwrap();
        s.bind(format!("{source}:0").parse().unwrap()).unwrap();
        s.connect(addr).await.unwrap()
    });
    let mut tcp = tcp.into_std().unwrap();
    tcp.set_nonblocking(false).unwrap();
    let req = format!(
        "POST /login HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{form}",
        form.len()
    );
    tcp.write_all(req.as_bytes()).unwrap();
    let mut out = String::new();
    tcp.read_to_string(&mut out).unwrap();
    let head = out.split("\r\n\r\n").next().unwrap().to_string();
    (head[9..12].parse().unwrap(), head)
}

/// Login CSRF (SPEC §9): `/login` needs the login page's cookie and hidden field, equal;
/// failed logins are limited per client address (10 a minute, then 429 with `Retry-After`,
/// even for a good token), and another address is not held back.
#[test]
fn login_needs_its_csrf_pair_and_failed_logins_are_limited_per_address() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let token = kvform(d, &["token", "create", "ui", "--role", "reader"]).trim().to_string();
    let (mut child, site) = start_serve(d);
    let session_set =
        |h: &[(String, String)]| h.iter().any(|(k, v)| k == "set-cookie" && v.starts_with("kvform_session="));

    // A good token without the pair, with only one half, or with halves that differ: 403,
    // no session.
    let (cookie, field) = login_form(&site);
    let (other_cookie, _) = login_form(&site);
    for (c, f) in [
        (None, String::new()),
        (None, format!("login_csrf={field}&")),
        (Some(cookie.as_str()), String::new()),
        (Some(other_cookie.as_str()), format!("login_csrf={field}&")),
    ] {
        let (status, headers, body) = send(&format!("{site}/login"), c, Some(&format!("{f}token={token}")));
        assert_eq!(status, 403, "{c:?} {f}: {body}");
        assert!(!session_set(&headers), "{headers:?}");
        assert!(body.contains("log in again from this page"), "{body}");
    }
    let (status, headers, _) = login(&site, &token);
    assert!(status == 303 && session_set(&headers), "{status} {headers:?}");
    assert!(
        headers.iter().any(|(k, v)| k == "set-cookie" && v.starts_with("kvform_login=;") && v.contains("Max-Age=0")),
        "a login spends its CSRF cookie: {headers:?}"
    );

    // Ten failures from 127.0.0.3 are answered 401; the eleventh try, even with the good
    // token, is 429 with Retry-After.
    let (cookie, field) = login_form(&site);
    for i in 0..10 {
        let (status, head) = login_from("127.0.0.3", &site, &format!("login_csrf={field}&token=kvf_wrong{i}"), &cookie);
        assert_eq!(status, 401, "failure {i}: {head}");
    }
    let (status, head) = login_from("127.0.0.3", &site, &format!("login_csrf={field}&token={token}"), &cookie);
    assert_eq!(status, 429, "{head}");
    let retry: u64 = head
        .lines()
        .find_map(|l| l.to_ascii_lowercase().strip_prefix("retry-after: ").map(str::to_string))
        .expect("a Retry-After header")
        .trim()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    // Another address logs in.
    let (status, head) = login_from("127.0.0.4", &site, &format!("login_csrf={field}&token={token}"), &cookie);
    assert_eq!(status, 303, "{head}");
    let _ = child.kill();
    let _ = child.wait();
}

/// `X-Content-Type-Options: nosniff` on every answer: API (200, 401, 404), metrics, the
/// OpenAPI document, UI pages and redirects.
#[test]
fn every_answer_says_nosniff() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let token = kvform(d, &["token", "create", "r", "--role", "reader"]).trim().to_string();
    let (mut child, site) = start_serve(d);
    let (_, headers, _) = login(&site, &token);
    let session = headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("kvform_session="))
        .map(|(_, v)| v.split(';').next().unwrap().to_string())
        .unwrap();
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).max_redirects(0).build().into();
    for (path, bearer, cookie, want) in [
        ("/api/v1/namespaces", true, false, 200),
        ("/api/v1/namespaces", false, false, 401),
        ("/api/v1/nope", true, false, 404),
        ("/api/v1/openapi.json", false, false, 200),
        ("/metrics", true, false, 200),
        ("/", false, false, 200),
        ("/", false, true, 303),
        ("/ui", false, true, 200),
        ("/ui", false, false, 401),
    ] {
        let mut req = ureq::http::Request::builder().uri(format!("{site}{path}"));
        if bearer {
            req = req.header("Authorization", format!("Bearer {token}"));
        }
        if cookie {
            req = req.header("Cookie", &session);
        }
        let resp = agent.run(req.body(()).unwrap()).unwrap();
        assert_eq!(resp.status().as_u16(), want, "{path}");
        let nosniff = resp.headers().get("x-content-type-options").and_then(|v| v.to_str().ok());
        assert_eq!(nosniff, Some("nosniff"), "{path} (bearer {bearer}, cookie {cookie})");
    }
    let _ = child.kill();
    let _ = child.wait();
}

#[test]
fn sessions_csrf_and_escaping() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    kvform(d, &["kv", "set", "vars/job/api", "evil", "<script>alert(1)</script>"]);
    let token = kvform(d, &["token", "create", "ui", "--role", "writer"]).trim().to_string();
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(start.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(50));
    }
    let site = format!("http://127.0.0.1:{port}");

    // Not logged in: the login page, and pages answer 401.
    let (status, _, body) = send(&format!("{site}/"), None, None);
    assert!(status == 200 && body.contains("Paste an API token"), "{status}");
    assert_eq!(send(&format!("{site}/ui"), None, None).0, 401);

    let (status, headers, _) = login(&site, &token);
    assert_eq!(status, 303);
    let set = headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with("kvform_session="))
        .map(|(_, v)| v.clone())
        .unwrap();
    assert!(set.contains("HttpOnly") && set.contains("SameSite=Strict"), "{set}");
    assert!(!set.contains(&token), "the cookie holds a session id, not the token");
    let cookie = set.split(';').next().unwrap().to_string();

    // Stored values are escaped.
    let (status, _, page) = send(&format!("{site}/ui/ns/vars/job/api/"), Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
    assert!(!page.contains("<script>"), "{page}");

    // A form without the session's CSRF token is refused and changes nothing.
    let (status, _, _) = send(&format!("{site}/ui/delete"), Some(&cookie), Some("namespace=vars%2Fjob%2Fapi&key=evil"));
    assert_eq!(status, 403);
    let (_, _, page) = send(&format!("{site}/ui/ns/vars/job/api/"), Some(&cookie), None);
    assert!(page.contains("evil"));
    // Links keep `_` as it is (`database_url`, not `database%5Furl`).
    assert!(page.contains(r#"href="/ui/key/vars/job/api/database_url""#), "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // One click does not delete: without the confirmation's `confirmed`, the answer is the
    // confirmation page, and the key stays.
    let (status, headers, _) = send(
        &format!("{site}/ui/delete"),
        Some(&cookie),
        Some(&format!("csrf={csrf}&namespace=vars%2Fjob%2Fapi&key=evil")),
    );
    assert_eq!(status, 303);
    let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.as_str());
    assert_eq!(location, Some("/ui/key/vars/job/api/evil?delete=1"));
    assert!(kvform(d, &["kv", "keys", "vars/job/api"]).contains("evil"));
    let (_, _, page) = send(&format!("{site}/ui/key/vars/job/api/evil?delete=1"), Some(&cookie), None);
    assert!(page.contains(r#"<input type="hidden" name="confirmed" value="1">"#), "{page}");
    let (status, _, _) = send(
        &format!("{site}/ui/delete"),
        Some(&cookie),
        Some(&format!("csrf={csrf}&namespace=vars%2Fjob%2Fapi&key=evil&confirmed=1")),
    );
    assert_eq!(status, 303);
    assert!(!kvform(d, &["kv", "keys", "vars/job/api"]).contains("evil"));

    // A masked secret's form: the value box is empty and carries `keep_value`; a save that
    // changes only the description keeps the value (it used to write "" as version 2).
    let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(d)
        .args(["kv", "set", "secrets/job/api", "db_password", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut c.stdin.take().unwrap(), b"hunter2").unwrap();
    assert!(c.wait().unwrap().success());
    // The key page is a read view with an Edit button; the form opens with `?edit=1`.
    let (status, _, page) = send(&format!("{site}/ui/key/secrets/job/api/db_password"), Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(
        !page.contains("/ui/put") && page.contains(r#"href="/ui/key/secrets/job/api/db_password?edit=1#edit""#),
        "{page}"
    );
    let (status, _, page) = send(&format!("{site}/ui/key/secrets/job/api/db_password?edit=1"), Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(!page.contains("hunter2") && page.contains(r#"name="keep_value" value="1""#), "{page}");
    assert!(page.contains(r#"<textarea name="value" placeholder="#), "the value box starts empty: {page}");
    let (status, _, _) = send(
        &format!("{site}/ui/put"),
        Some(&cookie),
        Some(&format!(
            "csrf={csrf}&namespace=secrets%2Fjob%2Fapi&key=db_password&type=string&ttl=0&description=rotated+monthly&value=&keep_value=1&overwrite=on"
        )),
    );
    assert_eq!(status, 303);
    let got = kvform(d, &["kv", "get", "secrets/job/api", "db_password", "--reveal"]);
    assert_eq!(got.trim(), "hunter2");
    assert!(kvform(d, &["kv", "history", "secrets/job/api", "db_password"]).contains("rotated monthly"));

    // The plan page pictures the pending rollout: waves, jobs, their batches and demands.
    let (_, _, page) = send(&format!("{site}/ui/plan"), Some(&cookie), None);
    assert!(page.contains("No changes") && !page.contains("<svg"), "nothing pending, no picture: {page}");
    let m = d.join("workspace/jobs/api/manifest.json");
    let text = std::fs::read_to_string(&m).unwrap();
    std::fs::write(&m, text.replacen("\"version\": \"", "\"version\": \"8", 1)).unwrap();
    let (_, _, page) = send(&format!("{site}/ui/plan"), Some(&cookie), None);
    assert!(page.contains(">demands database (unchanged)<"), "{page}");
    std::fs::write(&m, text).unwrap();
    for job in ["api", "database"] {
        let m = d.join(format!("workspace/jobs/{job}/manifest.json"));
        let text = std::fs::read_to_string(&m).unwrap();
        std::fs::write(&m, text.replacen("\"version\": \"", "\"version\": \"9", 1)).unwrap();
    }
    let (status, _, page) = send(&format!("{site}/ui/plan"), Some(&cookie), None);
    assert_eq!(status, 200);
    let svg = &page[page.find("<svg").expect(&page)..page.find("</svg>").expect(&page)];
    assert!(svg.contains(">wave 0<") && svg.contains(">wave 1<"), "{svg}");
    assert!(svg.contains(">database<") && svg.contains(">api<"), "{svg}");
    assert!(svg.contains("<title>api demands database</title>"), "{svg}");
    assert!(svg.contains(">changed: 10.0.0.1"), "{svg}");

    // A key the workspace declares carries the badge on its page.
    let (_, _, page) = send(&format!("{site}/ui/key/vars/job/api/base_path"), Some(&cookie), None);
    assert!(page.contains("managed by workspace (vars.hcl:2)"), "{page}");
    // A warning (the next apply undoes an edit), not the green "saved" notice.
    assert!(page.contains(r#"<div class="warn"><span class="pill">managed by workspace"#), "{page}");
    let (_, _, page) = send(&format!("{site}/ui/key/secrets/job/api/db_password"), Some(&cookie), None);
    assert!(!page.contains("managed by workspace"));

    // Revoking the token ends the session at once.
    kvform(d, &["token", "revoke", "ui"]);
    assert_eq!(send(&format!("{site}/ui"), Some(&cookie), None).0, 401);
    let _ = child.kill();
    let _ = child.wait();
}

/// The session cookie of a login with `token`.
fn session(site: &str, token: &str) -> String {
    let (status, headers, _) = login(site, token);
    assert_eq!(status, 303);
    let set = headers.iter().find(|(k, v)| k == "set-cookie" && v.starts_with("kvform_session=")).unwrap();
    set.1.split(';').next().unwrap().to_string()
}

/// The key page's history has a Restore button per earlier version where the token may write
/// (POST /ui/restore with the CSRF token and the loaded live version as `cas`): restoring
/// version 1 writes its value as a new version; a stale page's restore is refused and shown.
#[test]
fn restore_a_version_from_the_key_page() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    kvform(d, &["kv", "set", "vars/job/api", "color", "red"]);
    kvform(d, &["kv", "set", "vars/job/api", "color", "blue"]);
    let writer = kvform(d, &["token", "create", "w", "--role", "writer"]).trim().to_string();
    let reader = kvform(d, &["token", "create", "r", "--role", "reader"]).trim().to_string();
    let (mut child, site) = start_serve(d);
    let page_url = format!("{site}/ui/key/vars/job/api/color");

    // A reader sees the history without Restore buttons.
    let (status, _, page) = send(&page_url, Some(&session(&site, &reader)), None);
    assert_eq!(status, 200);
    assert!(page.contains("History") && !page.contains("/ui/restore"), "{page}");

    // A writer: a button for version 1 (cas = the live version 2), none for the live one.
    let cookie = session(&site, &writer);
    let (_, _, page) = send(&page_url, Some(&cookie), None);
    assert!(page.contains("Compare version"), "two versions: a diff to pick: {page}");
    kvform(d, &["kv", "set", "vars/job/api", "single", "only"]);
    let (_, _, one) = send(&format!("{site}/ui/key/vars/job/api/single"), Some(&cookie), None);
    assert!(one.contains("History") && !one.contains("Compare version"), "one version: nothing to compare: {one}");
    assert!(
        page.contains(r#"name="version" value="1"><input type="hidden" name="cas" value="2"><button>Restore</button>"#),
        "{page}"
    );
    assert!(
        !page.contains(r#"name="version" value="2"><input type="hidden" name="cas""#),
        "no button for the live version: {page}"
    );
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();

    // Without the CSRF token: refused, nothing written.
    let form = "namespace=vars%2Fjob%2Fapi&key=color&version=1&cas=2";
    assert_eq!(send(&format!("{site}/ui/restore"), Some(&cookie), Some(form)).0, 403);
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "color"]).trim(), "blue");

    // With it: version 1's value as version 3, and back on the key page.
    let (status, headers, _) = send(&format!("{site}/ui/restore"), Some(&cookie), Some(&format!("csrf={csrf}&{form}")));
    assert_eq!(status, 303);
    let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.as_str());
    assert_eq!(location, Some("/ui/key/vars/job/api/color"));
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "color"]).trim(), "red");
    assert_eq!(kvform(d, &["kv", "get", "vars/job/api", "color", "--version", "3"]).trim(), "red");

    // The same (now stale) form again: refused with the conflict shown, nothing written.
    let (status, headers, _) = send(&format!("{site}/ui/restore"), Some(&cookie), Some(&format!("csrf={csrf}&{form}")));
    assert_eq!(status, 303);
    let location = headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).unwrap();
    assert!(location.contains("error=") && location.contains("version%203"), "{location}");
    let history = kvform(d, &["kv", "history", "vars/job/api", "color"]);
    let versions: Vec<&str> = history.lines().skip(1).filter_map(|l| l.split_whitespace().next()).collect();
    assert_eq!(versions, ["1", "2", "3"], "{history}");
    let _ = child.kill();
    let _ = child.wait();
}

/// A save over a version another writer saved meanwhile is a conflict page (409), not an
/// overwrite: for a secret the newer value stays masked and no diff is drawn (a diff would
/// show it), even to a token that may reveal; the input is kept in the form.
#[test]
fn a_conflicting_save_of_a_secret_shows_no_plaintext() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let set_secret = |value: &str| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_kvform"))
            .arg("-C")
            .arg(d)
            .args(["kv", "set", "secrets/job/api", "api_key", "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap();
        std::io::Write::write_all(&mut c.stdin.take().unwrap(), value.as_bytes()).unwrap();
        assert!(c.wait().unwrap().success());
    };
    set_secret("first-secret");
    let writer = kvform(d, &["token", "create", "w", "--role", "writer", "--reveal"]).trim().to_string();
    let (mut child, site) = start_serve(d);
    let cookie = session(&site, &writer);
    let (_, _, page) = send(&format!("{site}/ui/key/secrets/job/api/api_key?edit=1"), Some(&cookie), None);
    assert!(page.contains(r#"name="version" value="1""#), "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    // Another writer saves version 2 while the form is open.
    set_secret("newer-secret");
    let (status, _, page) = send(
        &format!("{site}/ui/put"),
        Some(&cookie),
        Some(&format!(
            "csrf={csrf}&namespace=secrets%2Fjob%2Fapi&key=api_key&origin=key&type=string&ttl=0&ttl_was=0&version=1&description=&value=my-input&overwrite=on"
        )),
    );
    assert_eq!(status, 409, "{page}");
    assert!(page.contains("Conflict: your edit was not saved") && page.contains("saved version 2"), "{page}");
    assert!(!page.contains("newer-secret") && !page.contains("first-secret"), "{page}");
    assert!(page.contains("no diff is shown") && !page.contains("class=\"card diff"), "{page}");
    assert!(page.contains(">my-input</textarea>") && page.contains(r#"name="version" value="2""#), "{page}");
    let got = kvform(d, &["kv", "get", "secrets/job/api", "api_key", "--reveal"]);
    assert_eq!(got.trim(), "newer-secret", "nothing overwritten");
    let _ = child.kill();
    let _ = child.wait();
}

/// Deleting a key the workspace declares from the web UI: the notice after the delete says
/// that the next apply writes the workspace's value back, as the REST answer's `warnings` do.
#[test]
fn deleting_a_declared_key_in_the_ui_says_the_next_apply_writes_it_back() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    kvform(d, &["kv", "set", "vars/job/api", "own", "1"]);
    let writer = kvform(d, &["token", "create", "w", "--role", "writer"]).trim().to_string();
    let (mut child, site) = start_serve(d);
    let cookie = session(&site, &writer);
    let (_, _, page) = send(&format!("{site}/ui/key/vars/job/api/base_path?delete=1"), Some(&cookie), None);
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let delete = |key: &str| {
        let form = format!("csrf={csrf}&namespace=vars%2Fjob%2Fapi&key={key}&confirmed=1");
        let (status, headers, _) = send(&format!("{site}/ui/delete"), Some(&cookie), Some(&form));
        assert_eq!(status, 303);
        headers.iter().find(|(k, _)| k == "location").map(|(_, v)| v.clone()).unwrap()
    };
    let location = delete("base_path");
    let (status, _, page) = send(&format!("{site}{location}"), Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(
        page.contains("deleted base_path — vars/job/api base_path is declared by the workspace (workspace/jobs/api/vars.hcl:2): the next apply writes the workspace&#39;s value back")
            || page.contains("deleted base_path — vars/job/api base_path is declared by the workspace (workspace/jobs/api/vars.hcl:2): the next apply writes the workspace's value back"),
        "{page}"
    );
    assert!(!kvform(d, &["kv", "keys", "vars/job/api"]).lines().any(|k| k == "base_path"));
    // A key the workspace does not declare: the plain notice.
    let location = delete("own");
    let (_, _, page) = send(&format!("{site}{location}"), Some(&cookie), None);
    assert!(page.contains("deleted own") && !page.contains("declared by the workspace"), "{page}");
    let _ = child.kill();
    let _ = child.wait();
}
