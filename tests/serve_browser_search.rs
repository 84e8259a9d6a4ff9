//! The web UI's search page in a real browser (issue 26): Chromium headless through
//! chromedriver, as tests/serve_browser.rs drives it. Logs in, opens Search from the header,
//! looks for a key name found in two namespaces (grouped, a secret's value never shown) and
//! for text nothing matches (a clear "no match" line). Screenshots go to
//! target/serve-screenshots/.
//!
//! Skipped only outside CI when chromium/chromedriver are missing; with `CI` set it fails.

mod browser_support;
mod quickstart_copy;

use browser_support::*;

#[test]
fn search_page_groups_hits_by_namespace_and_says_when_nothing_matches() {
    let dir = quickstart_copy::quickstart_copy();
    let d = dir.path();
    kvform(d, &["apply", "--auto-approve"]);
    let token = kvform(d, &["token", "create", "finder", "--role", "reader", "--reveal"]).trim().to_string();
    kvform(d, &["kv", "set", "vars/job/api", "database_url", "postgres://db.internal/app"]);
    kvform(d, &["kv", "set", "vars/job/frontend", "api_database_url_hint", "ask ops"]);
    kvform_stdin(d, &["kv", "set", "secrets/job/api", "database_url", "-"], "hunter2-secret");
    let Some(mut session) = browser_support::start(d) else { return };
    let site = session.site.clone();
    let b = &mut session.b;

    b.go(&format!("{site}/"));
    b.type_in("input[name=token]", &token);
    b.click("button.p");
    b.wait_for("finder · reader");

    // Search is in the header of every page.
    b.click("header a[href='/ui/search']");
    b.wait_for("Search key names");
    b.type_in("main input[name=q]", "database_url");
    b.click("main form button.p");
    let t = b.wait_for("vars/job/frontend");
    // Grouped by namespace, in order, each group with its count; the secret by name only.
    let (sec, api, front) =
        (t.find("secrets/job/api (1)"), t.find("vars/job/api (1)"), t.find("vars/job/frontend (1)"));
    assert!(sec.is_some() && api.is_some() && front.is_some(), "{t}");
    assert!(sec < api && api < front, "{t}");
    assert!(t.contains("postgres://db.internal/app") && t.contains("api_database_url_hint"), "{t}");
    assert!(t.contains("(sensitive)") && !t.contains("hunter2"), "{t}");
    b.shot("search-hits");
    // A hit opens its key.
    b.click("section.hits a[href^='/ui/key/vars/job/api/']");
    let t = b.wait_for("History");
    assert!(b.url().contains("/ui/key/vars/job/api/database"), "{}\n{t}", b.url());

    // Nothing matches: one clear line, not an empty table.
    b.go(&format!("{site}/ui/search?q=no-such-thing-anywhere"));
    let t = b.wait_for("No key name or value matches");
    assert!(t.contains("No key name or value matches no-such-thing-anywhere."), "{t}");
    b.find("p.nomatch");
    b.shot("search-no-match");
    b.call("DELETE", "", None);
}
