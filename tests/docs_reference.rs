//! The user reference under `docs/` stays true: the generated pages are rebuilt from their
//! sources and compared (`UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites them),
//! and the hand-written pages and the README only name commands and flags the binary has.
//!
//! - `docs/cli.md`: every command's `--help`, from the same clap definitions as the binary;
//! - `docs/workspace-files.md`: every field of workers.json, disabled.json and manifest.json,
//!   from the JSON Schemas (`schemas/`, themselves generated from the parser's types);
//! - `docs/rest-api.md`: every route of the OpenAPI document `kvform serve` serves;
//! - hand-written pages checked against the code's tables: the hook environment and routes,
//!   the namespaces (`NAMESPACE_RULES`), token roles (`ROLE_RULES`), the unit vocabulary.

mod tf_support;

use clap::CommandFactory;
use kvform::cli::Cli;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn updating() -> bool {
    std::env::var_os("UPDATE_GOLDEN").is_some_and(|v| !v.is_empty() && v != "0")
}

/// Compare `generated` with `docs/<name>`, or write it under `UPDATE_GOLDEN=1`.
fn check_generated(name: &str, generated: &str) {
    let path = root().join("docs").join(name);
    if updating() {
        std::fs::write(&path, generated).unwrap();
        return;
    }
    let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
    if on_disk != generated {
        let diff = similar::TextDiff::from_lines(on_disk.as_str(), generated);
        panic!(
            "docs/{name} is out of date; run `UPDATE_GOLDEN=1 cargo test --test docs_reference`\n{}",
            diff.unified_diff().header("on disk", "generated")
        );
    }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

// ---------------------------------------------------------------------------------------
// docs/cli.md

fn cli() -> clap::Command {
    let mut cmd = Cli::command().term_width(100);
    cmd.build();
    cmd
}

fn visible_subcommands(cmd: &clap::Command) -> impl Iterator<Item = &clap::Command> {
    cmd.get_subcommands().filter(|c| !c.is_hide_set() && c.get_name() != "help")
}

fn cli_markdown() -> String {
    fn walk(out: &mut String, path: &str, cmd: &mut clap::Command) {
        let mut cmd = cmd.clone().term_width(100);
        out.push_str(&format!("\n## {path}\n\n```text\n"));
        let help = cmd.render_long_help().to_string();
        for line in help.lines() {
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out.push_str("```\n");
        let names: Vec<String> = visible_subcommands(&cmd).map(|c| c.get_name().to_string()).collect();
        for name in names {
            let sub = cmd.find_subcommand_mut(&name).unwrap();
            walk(out, &format!("{path} {name}"), sub);
        }
    }
    let mut out = String::from(
        "# Command reference\n\n\
         Generated from the clap definitions the binary uses (`kvform --help`, `kvform <command> --help`);\n\
         `UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites it. Long flags also take\n\
         Terraform's single-dash spelling (`-chdir=DIR`, `-out=FILE`, `-json`, `-auto-approve`).\n",
    );
    let mut cmd = cli();
    walk(&mut out, "kvform", &mut cmd);
    out
}

#[test]
fn cli_reference_is_generated_from_the_help() {
    check_generated("cli.md", &cli_markdown());
}

/// A command group's one-line summary lists its subcommands, all of them (`state --help`
/// used to leave out `list` and `migrate`).
#[test]
fn a_command_groups_summary_names_every_subcommand() {
    let cmd = cli();
    let mut missing = Vec::new();
    for group in visible_subcommands(&cmd) {
        let subs: Vec<&str> = visible_subcommands(group).map(|c| c.get_name()).collect();
        if subs.is_empty() {
            continue;
        }
        let about = group.get_about().map(|a| a.to_string()).unwrap_or_default();
        for sub in subs {
            if !about.split(|c: char| !(c.is_alphanumeric() || c == '-')).any(|w| w == sub) {
                missing.push(format!("`kvform {}` summary ({about:?}) lacks `{sub}`", group.get_name()));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}

// ---------------------------------------------------------------------------------------
// The README and the hand-written pages against the binary.

/// The command lines of ```sh blocks: `kvform …` and `cargo run --release -- …` (as the
/// arguments kvform gets) and `cargo install …`, with the file and line.
fn shell_lines(path: &str) -> Vec<(String, usize, String)> {
    let text = read(path);
    let mut out = Vec::new();
    let mut in_sh = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with("```") {
            in_sh = !in_sh && (t == "```sh" || t == "```bash");
            continue;
        }
        if in_sh {
            out.push((path.to_string(), i + 1, t.to_string()));
        }
    }
    out
}

/// Split a shell line into words: quotes, a `#` comment, and the end of the first command
/// (`|`, `&`, `>`, `;`, `&&`, `||`). Enough for the README's examples.
fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut has = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                has = true;
                for q in chars.by_ref() {
                    if q == c {
                        break;
                    }
                    cur.push(q);
                }
            }
            ' ' | '\t' => {
                if has {
                    words.push(std::mem::take(&mut cur));
                    has = false;
                }
            }
            '#' if !has => break,
            '|' | '&' | '>' | ';' | '<' => break,
            c => {
                cur.push(c);
                has = true;
            }
        }
    }
    if has {
        words.push(cur);
    }
    words
}

/// kvform's arguments in a shell line, if it runs kvform (an environment assignment first
/// is skipped: `KVFORM_SECRET_KEY=… kvform apply`).
fn kvform_args(line: &str) -> Option<Vec<String>> {
    let w = words(line);
    let mut w: &[String] = &w;
    while w.first().is_some_and(|x| x.contains('=') && !x.starts_with('-')) {
        w = &w[1..];
    }
    match w {
        [k, rest @ ..] if k == "kvform" => Some(rest.to_vec()),
        [c, r, rel, dd, rest @ ..] if c == "cargo" && r == "run" && rel == "--release" && dd == "--" => {
            Some(rest.to_vec())
        }
        _ => None,
    }
}

fn parse(args: &[String]) -> Result<Cli, String> {
    use clap::Parser;
    let argv = std::iter::once("kvform".to_string()).chain(args.iter().cloned()).map(Into::into);
    let argv = kvform::cli::argv::rewrite(argv, &Cli::command())?;
    Cli::try_parse_from(argv).map_err(|e| e.to_string())
}

fn documented_pages() -> Vec<String> {
    let mut pages = vec!["README.md".to_string()];
    let mut docs: Vec<String> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".md"))
        .map(|n| format!("docs/{n}"))
        .collect();
    docs.sort();
    pages.extend(docs);
    pages
}

/// Every `kvform …` command line in the README's and docs' shell blocks parses with the
/// binary's own definitions: the subcommand exists, every flag is one it takes.
#[test]
fn every_documented_command_line_parses() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for page in documented_pages() {
        for (file, line, text) in shell_lines(&page) {
            let Some(args) = kvform_args(&text) else { continue };
            if args.iter().any(|a| a == "--help" || a == "-h") {
                continue;
            }
            seen += 1;
            if let Err(e) = parse(&args) {
                bad.push(format!("{file}:{line}: `{text}`\n{e}"));
            }
        }
    }
    assert!(seen > 30, "found only {seen} command lines: is the block detection broken?");
    assert!(bad.is_empty(), "command lines the binary does not accept:\n{}", bad.join("\n"));
}

/// The README's install and set-up commands are the ones that work: `cargo install` with
/// `--locked` (without it Cargo ignores Cargo.lock and builds newer, untested versions), and
/// the quickstart's `cargo run --release -- …` parses as a kvform command on a bucket that is
/// in the repository.
#[test]
fn readme_install_and_set_up_commands_match_the_binary() {
    let lines = shell_lines("README.md");
    let install: Vec<_> = lines.iter().filter(|(_, _, t)| t.starts_with("cargo install")).collect();
    assert!(!install.is_empty(), "README has no `cargo install` line");
    for (_, line, t) in &install {
        let w = words(t);
        assert!(w.contains(&"--locked".to_string()), "README.md:{line}: `{t}` lacks --locked");
        assert!(w.windows(2).any(|p| p[0] == "--path" && p[1] == "."), "README.md:{line}: `{t}`");
    }
    let set_up: Vec<_> = lines.iter().filter(|(_, _, t)| t.starts_with("cargo run --release --")).collect();
    assert!(!set_up.is_empty(), "README has no set-up command");
    for (_, line, t) in set_up {
        let args = kvform_args(t).unwrap();
        let cli = parse(&args).unwrap_or_else(|e| panic!("README.md:{line}: `{t}`: {e}"));
        let dir = cli.chdir.expect("the set-up commands name the bucket with -C");
        assert!(root().join(&dir).join("workspace").is_dir(), "README.md:{line}: {} is not a bucket", dir.display());
    }
    // The binary's name and its package agree with what `cargo install` installs.
    let manifest = read("Cargo.toml");
    assert!(manifest.contains("name = \"kvform\""));
}

/// Both ways: every command `kvform --help` lists (and every subcommand of a group) is named
/// in the README or a hand-written docs page as `kvform <cmd>` (or `kvform … <group> <sub>`),
/// and every `kvform <word>` those pages name is a command.
#[test]
fn help_and_the_docs_name_the_same_commands() {
    let cmd = cli();
    let mut prose = String::new();
    for page in documented_pages() {
        if page == "docs/cli.md" {
            continue; // generated from the help itself: it proves nothing here
        }
        prose.push_str(&read(&page));
        prose.push('\n');
    }
    // `kvform [-C DIR] word [word]` as written in prose and examples.
    let re =
        regex::Regex::new(r"\bkvform(?: +(?:-C|-chdir=|--chdir) *\S+)? +([a-z][a-z-]*)(?: +([a-z][a-z-]*))?").unwrap();
    let mut named: BTreeSet<(String, Option<String>)> = BTreeSet::new();
    for c in re.captures_iter(&prose) {
        named.insert((c[1].to_string(), c.get(2).map(|m| m.as_str().to_string())));
    }
    let commands: BTreeSet<String> = visible_subcommands(&cmd).map(|c| c.get_name().to_string()).collect();
    let mut problems = Vec::new();
    for group in visible_subcommands(&cmd) {
        let g = group.get_name().to_string();
        if !named.iter().any(|(c, _)| *c == g) {
            problems.push(format!("`kvform {g}` is in --help but in neither README.md nor docs/"));
        }
        for sub in visible_subcommands(group) {
            let s = sub.get_name().to_string();
            if !named.iter().any(|(c, n)| *c == g && n.as_deref() == Some(s.as_str())) {
                problems.push(format!("`kvform {g} {s}` is in --help but in neither README.md nor docs/"));
            }
        }
    }
    // Words after `kvform` that are prose, not commands ("kvform is a …").
    const PROSE: &[&str] = &[
        "is",
        "and",
        "or",
        "the",
        "a",
        "to",
        "in",
        "has",
        "keeps",
        "reads",
        "writes",
        "does",
        "makes",
        "never",
        "runs",
        "with",
        "itself",
        "version",
        "was",
        "can",
        "cannot",
        "takes",
        "tests",
        "then",
        "sh",
        "hook",
        "serves",
        "gives",
        "asks",
        "prints",
        "says",
        "uses",
        "will",
        "binary",
        "only",
        "stores",
        "of",
        "on",
        "kv-form",
        "session",
        "state-",
        "treats",
        "also",
        "lists",
        "knows",
        "expects",
        "at",
        "for",
        "as",
        "from",
        "needs",
        "command",
        "commands",
        "stops",
        "applies",
        "projects",
        "compares",
        "sends",
        "refuses",
        "writer",
        "holds",
        "checks",
        "authorization",
        "builds",
        "gets",
        "user",
    ];
    for (c, _) in &named {
        if !commands.contains(c) && !PROSE.contains(&c.as_str()) {
            problems.push(format!("the docs name `kvform {c}`, which is not a command"));
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");
}

// ---------------------------------------------------------------------------------------
// docs/workspace-files.md from the JSON Schemas

fn schema(name: &str) -> Value {
    serde_json::from_str(&read(&format!("schemas/{name}"))).unwrap()
}

/// A schema node's type in words.
fn type_of(root: &Value, node: &Value) -> String {
    if let Some(r) = node.get("$ref").and_then(Value::as_str) {
        let name = r.rsplit('/').next().unwrap();
        let def = &root["$defs"][name];
        if def.get("properties").is_some() {
            return format!("object ({name})");
        }
        return type_of(root, def);
    }
    if let Some(all) = node.get("allOf").and_then(Value::as_array)
        && let [one] = all.as_slice()
    {
        return type_of(root, one);
    }
    for key in ["oneOf", "anyOf"] {
        if let Some(alts) = node.get(key).and_then(Value::as_array) {
            let parts: Vec<String> = alts.iter().map(|a| type_of(root, a)).filter(|t| t != "null").collect();
            return parts.join(" or ");
        }
    }
    if let Some(e) = node.get("enum").and_then(Value::as_array) {
        return e
            .iter()
            .map(|v| format!("`{}`", v.as_str().map(str::to_string).unwrap_or(v.to_string())))
            .collect::<Vec<_>>()
            .join(", ");
    }
    if let Some(c) = node.get("const") {
        return format!("`{c}`");
    }
    let t = match node.get("type") {
        Some(Value::String(t)) => t.clone(),
        Some(Value::Array(ts)) => {
            ts.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect::<Vec<_>>().join(" or ")
        }
        _ => String::new(),
    };
    match t.as_str() {
        "array" => match node.get("items") {
            Some(items) => format!("array of {}", type_of(root, items)),
            None => "array".into(),
        },
        "object" => match node.get("additionalProperties") {
            Some(v @ Value::Object(_)) => format!("map of {}", type_of(root, v)),
            _ => "object".into(),
        },
        "string" => match node.get("pattern").and_then(Value::as_str) {
            Some(p) => format!("string matching `{p}`"),
            None => "string".into(),
        },
        "" => "any".into(),
        t => t.to_string(),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// One table per object: field, type, required, description; then the objects it refers to.
fn object_tables(out: &mut String, root: &Value, title: &str, node: &Value, done: &mut BTreeSet<String>) {
    let is_root = std::ptr::eq(root, node);
    let Some(props) = node.get("properties").and_then(Value::as_object) else { return };
    let required: BTreeSet<&str> =
        node.get("required").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
    out.push_str(&format!("\n### {title}\n\n"));
    if let Some(d) = node.get("description").and_then(Value::as_str).filter(|_| !is_root) {
        out.push_str(&format!("{}\n\n", d.trim()));
    }
    out.push_str("| field | type | required | description |\n|---|---|---|---|\n");
    let mut refs = Vec::new();
    for (name, p) in props {
        let desc = p.get("description").and_then(Value::as_str).unwrap_or("");
        let default = p.get("default").map(|d| format!(" (default `{d}`)")).unwrap_or_default();
        out.push_str(&format!(
            "| `{name}` | {} | {} | {}{} |\n",
            cell(&type_of(root, p)),
            if required.contains(name.as_str()) { "yes" } else { "" },
            cell(desc.trim()),
            cell(&default)
        ));
        collect_refs(p, &mut refs);
    }
    for r in refs {
        let def = &root["$defs"][&r];
        if def.get("properties").is_some() && done.insert(r.clone()) {
            object_tables(out, root, &r, def, done);
        }
    }
}

fn collect_refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(m) => {
            if let Some(r) = m.get("$ref").and_then(Value::as_str) {
                out.push(r.rsplit('/').next().unwrap().to_string());
            }
            for v in m.values() {
                collect_refs(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| collect_refs(v, out)),
        _ => {}
    }
}

fn workspace_files_markdown() -> String {
    let mut out = String::from(
        "# Workspace JSON files, field by field\n\n\
         Generated from the JSON Schemas in `schemas/` (themselves generated from the parser's types);\n\
         `UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites it. Unknown fields are errors.\n\
         The HCL files (`kvform.hcl`, `bucket.conf`, `bucket.jobs.conf`, `vars.hcl`) are described in\n\
         [workspace.md](workspace.md).\n",
    );
    for (file, name) in [
        ("workspace/workers.json", "workers.schema.json"),
        ("workspace/disabled.json", "disabled.schema.json"),
        ("workspace/jobs/<job>/manifest.json", "manifest.schema.json"),
    ] {
        let s = schema(name);
        out.push_str(&format!("\n## `{file}`\n\n`schemas/{name}`"));
        if let Some(d) = s.get("description").and_then(Value::as_str) {
            out.push_str(&format!(": {}", d.trim()));
        }
        let what = type_of(&s, &s);
        let article = if what.starts_with(['a', 'e', 'i', 'o', 'u']) { "an" } else { "a" };
        out.push_str(&format!("\n\nThe file is {article} {what}.\n"));
        let mut done = BTreeSet::new();
        if s.get("properties").is_some() {
            object_tables(&mut out, &s, "Fields", &s, &mut done);
        } else {
            let mut refs = Vec::new();
            collect_refs(&s, &mut refs);
            for r in refs {
                let def = &s["$defs"][&r];
                if def.get("properties").is_some() && done.insert(r.clone()) {
                    object_tables(&mut out, &s, &r, def, &mut done);
                }
            }
        }
    }
    out
}

#[test]
fn workspace_files_reference_is_generated_from_the_schemas() {
    check_generated("workspace-files.md", &workspace_files_markdown());
}

// ---------------------------------------------------------------------------------------
// docs/rest-api.md from the OpenAPI document

fn rest_api_markdown() -> String {
    let doc = kvform::serve::openapi::document();
    let mut out = String::from(
        "# REST API routes\n\n\
         Generated from the OpenAPI document `kvform serve` serves at `/api/v1/openapi.json`;\n\
         `UPDATE_GOLDEN=1 cargo test --test docs_reference` rewrites it. Every route needs\n\
         `Authorization: Bearer <token>` (see [tokens.md](tokens.md) for what each role may do).\n\n\
         | method | path | what |\n|---|---|---|\n",
    );
    let paths = doc["paths"].as_object().expect("paths");
    for (path, item) in paths {
        for (method, op) in item.as_object().unwrap() {
            let summary = op.get("summary").and_then(Value::as_str).unwrap_or("");
            out.push_str(&format!("| {} | `{path}` | {} |\n", method.to_uppercase(), cell(summary)));
        }
    }
    out
}

#[test]
fn rest_api_reference_lists_every_openapi_route() {
    let md = rest_api_markdown();
    let doc = kvform::serve::openapi::document();
    for path in doc["paths"].as_object().unwrap().keys() {
        assert!(md.contains(&format!("`{path}`")), "{path} missing");
    }
    check_generated("rest-api.md", &md);
}

/// Every page the docs index links to exists, and every page exists in the index.
#[test]
fn docs_index_links_every_page() {
    let index = read("docs/README.md");
    let link = regex::Regex::new(r"\]\(([a-z0-9-]+\.md)\)").unwrap();
    let linked: BTreeSet<String> = link.captures_iter(&index).map(|c| c[1].to_string()).collect();
    let pages: BTreeSet<String> = documented_pages()
        .into_iter()
        .filter_map(|p| p.strip_prefix("docs/").map(str::to_string))
        .filter(|p| p != "README.md")
        .collect();
    for p in &linked {
        assert!(Path::new(&root().join("docs").join(p)).is_file(), "docs/README.md links {p}, which does not exist");
    }
    let unlinked: Vec<_> = pages.difference(&linked).collect();
    assert!(unlinked.is_empty(), "pages not in docs/README.md: {unlinked:?}");
}

/// docs/hooks.md names every variable a hook's environment gets (`.env("NAME", …)` in the
/// runner, `("NAME", …)` pairs in the executor) and every route of the hook API.
#[test]
fn hooks_reference_names_every_variable_and_route() {
    let doc = read("docs/hooks.md");
    let runner = read("src/hooks/runner.rs");
    let job = read("src/apply/job.rs");
    let routes = read("src/hooks/routes.rs");
    let env = regex::Regex::new(r#"\.env\("([A-Z_]+)""#).unwrap();
    let pair = regex::Regex::new(r#"\("([A-Z][A-Z_]+)"(?:\.into\(\))?,"#).unwrap();
    let route = regex::Regex::new(r#"\("(GET|PUT|POST|DELETE)", "(/[a-z/]+)"\)"#).unwrap();
    let mut names: BTreeSet<String> = env.captures_iter(&runner).map(|c| c[1].to_string()).collect();
    names.extend(pair.captures_iter(&job).map(|c| c[1].to_string()));
    assert!(names.len() > 15, "found only {names:?}");
    let mut missing: Vec<String> = names.into_iter().filter(|n| !doc.contains(&format!("`{n}`"))).collect();
    let found: Vec<(String, String)> =
        route.captures_iter(&routes).map(|c| (c[1].to_string(), c[2].to_string())).collect();
    assert!(found.len() >= 10, "found only {found:?}");
    for (method, path) in found {
        if !doc.contains(&format!("`{method} {path}`")) {
            missing.push(format!("{method} {path}"));
        }
    }
    assert!(missing.is_empty(), "docs/hooks.md does not name {missing:?}");
}

/// docs/workspace.md's unit table: `mib`/`gib` and `mb`/`gb` mean the same in workers.json,
/// bucket.jobs.conf reservations, a manifest's bounds and kvform.hcl's `max_file_size` (a
/// manifest used to refuse `"512 mib"` while kvform.hcl took `"64 MiB"`).
#[test]
fn iec_and_short_units_give_the_same_desired_state() {
    let doc = read("docs/workspace.md");
    assert!(
        doc.contains("`mib`, `gib`, `tib`") && doc.contains("`1 gb` = `1 gib` = 1024 MB"),
        "docs/workspace.md lost the unit table"
    );
    let desired = |short: bool| {
        let b = tf_support::bucket();
        let u = |s: &'static str, i: &'static str| if short { s } else { i };
        let ws = b.path().join("workspace");
        std::fs::write(
            ws.join("workers.json"),
            tf_support::WORKERS.replace("\"4 gb\"", &format!("\"4 {}\"", u("gb", "GiB"))),
        )
        .unwrap();
        std::fs::write(
            ws.join("bucket.jobs.conf"),
            tf_support::JOBS_CONF.replace(" mb\"", &format!(" {}\"", u("mb", "MiB"))),
        )
        .unwrap();
        std::fs::write(
            ws.join("jobs/db/manifest.json"),
            format!("{{\"version\": \"2.0.0\", \"resources\": {{\"memory\": {{\"min\": \"256 {}\", \"max\": \"1 {}\"}}}}}}\n", u("mb", "mib"), u("gb", "gib")),
        )
        .unwrap();
        std::fs::write(
            b.path().join("kvform.hcl"),
            format!("limits {{\n  max_file_size = \"64 {}\"\n}}\n", u("mb", "MiB")),
        )
        .unwrap();
        let o = tf_support::kvform(b.path(), &["validate", "--print-desired"]);
        assert!(o.status.success(), "{}", tf_support::stderr(&o));
        // The computed capacities and reservations (ids and the CA differ per bucket; the
        // `vars/` keys hold the text as written).
        tf_support::stdout(&o)
            .lines()
            .filter(|l| l.starts_with("maand/") && (l.contains("memory") || l.contains("_mb")))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (short, iec) = (desired(true), desired(false));
    assert!(short.contains("max_memory_mb = \"1024\"") && short.contains("worker_memory_mb = \"4096\""), "{short}");
    assert_eq!(short, iec);
}

/// docs/namespaces.md has a row for every namespace of the layout (`NAMESPACE_RULES`), with
/// how the plan treats it; docs/tokens.md one for every role (`ROLE_RULES`).
#[test]
fn namespaces_and_roles_pages_match_the_tables() {
    use kvform::kv::{NAMESPACE_RULES, Ownership};
    let doc = read("docs/namespaces.md");
    for rule in NAMESPACE_RULES {
        let row = doc
            .lines()
            .find(|l| l.starts_with(&format!("| `{}` |", rule.pattern)))
            .unwrap_or_else(|| panic!("docs/namespaces.md has no row for `{}`", rule.pattern));
        let word = match rule.ownership {
            Ownership::Synced => "synced",
            Ownership::Merged => "merged",
            Ownership::HookOnly => "never written by a plan",
        };
        assert!(row.contains(word), "`{}` is {word}: {row}", rule.pattern);
    }
    let doc = read("docs/tokens.md");
    for (_, name, _) in kvform::serve::access::ROLE_RULES {
        assert!(doc.contains(&format!("| `{name}` |")), "docs/tokens.md has no row for role `{name}`");
    }
}
