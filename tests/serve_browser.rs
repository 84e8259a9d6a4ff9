//! The web UI in a real browser: `kvform serve` on an applied quickstart copy, Chromium
//! headless driven through chromedriver's WebDriver protocol (plain JSON over loopback HTTP
//! with ureq: a dozen calls do not need a WebDriver crate and its TLS stack). Logs in,
//! opens a namespace, creates a typed key with a TTL of `1h` (a failed save first, which
//! keeps the input), edits it, views the history diff, meets a conflict with another
//! writer, checks that the pages fit 420 px, deletes it through the confirmation, checking
//! each page; screenshots (desktop and 420 px) go to target/serve-screenshots/.
//!
//! Skipped only outside CI when chromium/chromedriver are missing; with `CI` set it fails.

mod browser_support;
mod quickstart_copy;

use browser_support::*;

use serde_json::Value;

#[test]
fn log_in_create_edit_diff_delete_in_a_browser() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let token =
        kvform(d, &["token", "create", "browser", "--role", "writer", "--namespaces", "vars/job/*,secrets/job/*"])
            .trim()
            .to_string();
    kvform_stdin(d, &["kv", "set", "secrets/job/api", "db_password", "-"], "hunter2");
    let Some(mut session) = browser_support::start(d) else { return };
    let site = session.site.clone();
    let b = &mut session.b;

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
