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

    let (status, headers, _) = send(&format!("{site}/login"), None, Some(&format!("token={token}")));
    assert_eq!(status, 303);
    let set = headers.iter().find(|(k, _)| k == "set-cookie").map(|(_, v)| v.clone()).unwrap();
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
    let csrf = page.split("name=csrf value=\"").nth(1).unwrap().split('"').next().unwrap().to_string();
    let (status, _, _) = send(
        &format!("{site}/ui/delete"),
        Some(&cookie),
        Some(&format!("csrf={csrf}&namespace=vars%2Fjob%2Fapi&key=evil")),
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
    let (status, _, page) = send(&format!("{site}/ui/key/secrets/job/api/db_password"), Some(&cookie), None);
    assert_eq!(status, 200);
    assert!(!page.contains("hunter2") && page.contains("name=keep_value value=1"), "{page}");
    assert!(page.contains("<textarea name=value placeholder="), "the value box starts empty: {page}");
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

    // Revoking the token ends the session at once.
    kvform(d, &["token", "revoke", "ui"]);
    assert_eq!(send(&format!("{site}/ui"), Some(&cookie), None).0, 401);
    let _ = child.kill();
    let _ = child.wait();
}
