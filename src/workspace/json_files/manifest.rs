//! `workspace/jobs/<job>/manifest.json`: one job's version, placement selectors, resource
//! bounds, ports, commands (with demands on other jobs) and rollout settings.
//!
//! Decisions where SPEC §2 is silent:
//! - `resources.<memory|cpu>` with `max` alone means `min = 0` (any reservation up to
//!   `max`); `{}` with neither is an error.
//! - `selectors: []` is an error (a job with no selectors would land on every worker; omit
//!   the field to get the default `[<job>]`).
//! - `executed_on` is required but may be empty (a command only run on demand).
//! - Command names are `command_` followed by lower-case letters, digits, `_` or `-`,
//!   because they are also script file names.
//! - `demands.config` may hold any keys (it is handed to hooks as written, canonicalised);
//!   only `min_version` / `max_version` are checked, as versions.

use super::doc::{self, Ctx};
use super::scripts;
use crate::diag::suggest::hint;
use crate::diag::{Diagnostic, FileId, Span, Spanned};
use crate::kv::value::decimal;
use crate::workspace::types::{Bounds, CertDecl, Command, Demand, Event, Job, KeyType, PortSpec};
use crate::workspace::units::Quantity;
use jsonc_parser::ast::{ObjectProp, Value};
use regex::Regex;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::LazyLock;

pub const FIELDS: &[&str] = &[
    "version",
    "selectors",
    "resources",
    "commands",
    "max_concurrent_upgrades",
    "max_concurrent_starts",
    "min_allocations_count",
    "certs",
];
pub const RESOURCE_FIELDS: &[&str] = &["memory", "cpu", "ports"];
pub const BOUND_FIELDS: &[&str] = &["min", "max"];
pub const COMMAND_FIELDS: &[&str] = &["executed_on", "demands"];
pub const DEMAND_FIELDS: &[&str] = &["job", "command", "config"];
pub const CERT_FIELDS: &[&str] = &["subject", "pkcs8", "one", "key_type"];
pub const SUBJECT_FIELDS: &[&str] = &["common_name"];
/// Certificate names become key names (`certs/<name>.crt`): no `/`, no `.`.
pub const CERT_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";

pub const JOB_NAME_PATTERN: &str = "^[a-z0-9][a-z0-9_-]*$";
pub const PORT_NAME_PATTERN: &str = "^[a-z][a-z0-9_]*$";
pub const COMMAND_NAME_PATTERN: &str = "^command_[a-z0-9_-]+$";
/// Semver-like: `1`, `1.2`, `v1.2.3`, `2.0.0-rc1`, `1.0.0+build.5`.
pub const VERSION_PATTERN: &str = r"^v?[0-9]+(\.[0-9]+){0,2}(-[0-9A-Za-z][0-9A-Za-z.-]*)?(\+[0-9A-Za-z.-]+)?$";

static JOB_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(JOB_NAME_PATTERN).unwrap());
static PORT_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(PORT_NAME_PATTERN).unwrap());
static COMMAND_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(COMMAND_NAME_PATTERN).unwrap());
static VERSION: LazyLock<Regex> = LazyLock::new(|| Regex::new(VERSION_PATTERN).unwrap());

pub fn is_job_name(s: &str) -> bool {
    JOB_NAME.is_match(s)
}

pub fn is_version(s: &str) -> bool {
    VERSION.is_match(s)
}

const VERSION_HELP: &str = r#"write a version like "1", "1.2", "v1.2.3" or "2.0.0-rc1""#;

/// Parse one manifest document into a [`Job`]. Field errors are reported and the field
/// left at its default, so cross-file checks still see the job.
pub fn job(root: &Path, name: &str, file: FileId, value: &Value, diags: &mut crate::diag::Diagnostics) -> Option<Job> {
    let mut cx = Ctx::new(file, diags);
    let Value::Object(obj) = value else {
        let d = Diagnostic::error(format!("manifest.json must be an object, found {}", doc::kind(value)))
            .at(cx.open_span(value))
            .label("expected `{`")
            .help(r#"write e.g. {"version": "1.0.0", "selectors": ["api"]}"#);
        cx.push(d);
        return None;
    };
    let mut job = Job::with_defaults(name, cx.span(value));
    for p in cx.fields(obj, "manifest", FIELDS) {
        let v = &p.value;
        match p.name.as_str() {
            "version" => job.version = version(&mut cx, v, "version"),
            "selectors" => {
                if let Some(s) = selectors(&mut cx, v) {
                    job.selectors = s;
                }
            }
            "resources" => resources(&mut cx, v, &mut job),
            "commands" => job.commands = commands(&mut cx, root, name, v),
            "max_concurrent_upgrades" => {
                job.max_concurrent_upgrades = cx
                    .count(
                        v,
                        "max_concurrent_upgrades",
                        1,
                        "the number of changed allocations upgraded at once; 1 upgrades one at a time",
                    )
                    .unwrap_or(1)
            }
            "max_concurrent_starts" => {
                job.max_concurrent_starts =
                    cx.count(v, "max_concurrent_starts", 0, "0 starts all new allocations at once").unwrap_or(0)
            }
            "min_allocations_count" => {
                job.min_allocations_count = cx.count(v, "min_allocations_count", 0, "0 means no minimum").unwrap_or(0)
            }
            "certs" => job.certs = certs(&mut cx, name, v),
            _ => unreachable!("fields() only returns known names"),
        }
    }
    Some(job)
}

/// A semver-like version string, trimmed.
fn version(cx: &mut Ctx, v: &Value, path: &str) -> Option<Spanned<String>> {
    let s = cx.nonempty_string(v, path)?;
    if !is_version(&s.value) {
        let d = Diagnostic::error(format!("invalid `{path}` `{}`", s.value))
            .at(s.span)
            .label("not a semver-like version")
            .help(VERSION_HELP);
        cx.push(d);
        return None;
    }
    Some(s)
}

fn selectors(cx: &mut Ctx, v: &Value) -> Option<Vec<String>> {
    let items = cx.string_list(v, "selectors")?;
    if items.is_empty() && matches!(v, Value::Array(_)) {
        let d = Diagnostic::error("`selectors` must not be empty")
            .at(cx.span(v))
            .label("no labels")
            .help("list the worker labels this job runs on, or remove `selectors` to use the job name");
        cx.push(d);
        return None;
    }
    // The first span of each label, by name: a Vec scan here was quadratic (100,000 labels
    // took minutes).
    let mut seen: std::collections::HashMap<String, Span> = std::collections::HashMap::new();
    let mut out: Vec<String> = Vec::new();
    for item in items {
        // Selectors match worker labels, which cannot hold whitespace or `/` either.
        let Some(item) = super::workers::name_chars(cx, item, "selector") else { continue };
        let label = item.value.to_lowercase();
        if let Some(first) = seen.get(&label) {
            let d = Diagnostic::error(format!("duplicate selector `{label}`"))
                .at(item.span)
                .label("already listed")
                .also(*first, "first listed here")
                .help("selectors are compared after trimming and lower-casing; remove one of them");
            cx.push(d);
            continue;
        }
        seen.insert(label.clone(), item.span);
        out.push(label);
    }
    Some(out)
}

fn resources(cx: &mut Ctx, v: &Value, job: &mut Job) {
    let Some(obj) = cx.object(v, "resources") else { return };
    for p in cx.fields(obj, "`resources`", RESOURCE_FIELDS) {
        match p.name.as_str() {
            "memory" => job.memory = bounds(cx, &p.value, Quantity::Memory),
            "cpu" => job.cpu = bounds(cx, &p.value, Quantity::Cpu),
            "ports" => job.ports = ports(cx, &p.value),
            _ => unreachable!("fields() only returns known names"),
        }
    }
}

fn bounds(cx: &mut Ctx, v: &Value, q: Quantity) -> Option<Bounds> {
    let path = format!("resources.{}", q.field());
    let obj = cx.object(v, &path)?;
    let (mut min, mut max) = (None, None);
    for p in cx.fields(obj, &format!("`{path}`"), BOUND_FIELDS) {
        let field_path = format!("{path}.{}", p.name.as_str());
        let parsed = cx.quantity(&p.value, &field_path, q);
        if p.name.as_str() == "min" {
            min = parsed;
        } else {
            max = parsed;
        }
    }
    let span = cx.span(v);
    match (min, max) {
        (Some(lo), Some(hi)) if lo.value > hi.value => {
            let unit = q.base_unit();
            let d = Diagnostic::error(format!(
                "`{path}.min` ({} {unit}) is greater than `{path}.max` ({} {unit})",
                decimal(lo.value),
                decimal(hi.value)
            ))
            .at(lo.span)
            .label("minimum")
            .also(hi.span, "maximum")
            .help("swap the two values, or raise `max`");
            cx.push(d);
            None
        }
        (Some(lo), Some(hi)) => Some(Bounds { min: lo.value, max: hi.value, span }),
        (Some(lo), None) if obj.get("max").is_none() => Some(Bounds { min: lo.value, max: lo.value, span }),
        (None, Some(hi)) if obj.get("min").is_none() => Some(Bounds { min: 0.0, max: hi.value, span }),
        _ => {
            if obj.get("min").is_none() && obj.get("max").is_none() {
                let d = Diagnostic::error(format!("`{path}` has neither `min` nor `max`"))
                    .at(span)
                    .label("empty bounds")
                    .help(format!(r#"write e.g. {{"min": "256 mb", "max": "1 gb"}} or remove `{}`"#, q.field()));
                cx.push(d);
            }
            None
        }
    }
}

fn ports(cx: &mut Ctx, v: &Value) -> Vec<PortSpec> {
    let mut out = Vec::new();
    let Some(obj) = cx.object(v, "resources.ports") else { return out };
    for p in cx.unique_props(obj, "`resources.ports`") {
        let name = p.name.as_str();
        let span = cx.span(p);
        if !PORT_NAME.is_match(name) {
            let d = Diagnostic::error(format!("invalid port name `{name}`"))
                .at(cx.key_span(p))
                .label(format!("must match {PORT_NAME_PATTERN}"))
                .help("port names start with a lower-case letter, then lower-case letters, digits or `_`");
            cx.push(d);
            continue;
        }
        let path = format!("resources.ports.{name}");
        let fixed = match &p.value {
            Value::Object(o) if o.properties.is_empty() => None,
            Value::Object(o) => {
                let d = Diagnostic::error(format!("`{path}` must be `{{}}` or a port number"))
                    .at(cx.span(o))
                    .label("a pool port has no settings")
                    .help("write `{}` to take a port from the pool, or an integer 1..65535 for a fixed port");
                cx.push(d);
                continue;
            }
            Value::NumberLit(_) => match cx.integer(
                &p.value,
                &path,
                1,
                65535,
                "fixed ports are 1..65535; write `{}` to take a port from the pool",
            ) {
                Some(n) => Some(n as u16),
                None => continue,
            },
            other => {
                cx.type_error(other, &path, "`{}` or a port number");
                continue;
            }
        };
        out.push(PortSpec { name: name.to_string(), fixed, span });
    }
    out
}

fn commands(cx: &mut Ctx, root: &Path, job: &str, v: &Value) -> BTreeMap<String, Command> {
    let mut out = BTreeMap::new();
    let Some(obj) = cx.object(v, "commands") else { return out };
    for p in cx.unique_props(obj, "`commands`") {
        if let Some(c) = command(cx, root, job, p) {
            out.insert(c.name.clone(), c);
        }
    }
    out
}

fn command(cx: &mut Ctx, root: &Path, job: &str, p: &ObjectProp) -> Option<Command> {
    let name = p.name.as_str();
    let span = cx.key_span(p);
    if !COMMAND_NAME.is_match(name) {
        let help = if name.starts_with("command_") {
            "after `command_`, use lower-case letters, digits, `_` or `-` (the name is also the script's file name)"
                .to_string()
        } else {
            let base = name.to_lowercase().replace(|c: char| !c.is_ascii_alphanumeric() && c != '-', "_");
            format!("command names start with `command_`, e.g. `command_{base}`")
        };
        let d = Diagnostic::error(format!("invalid command name `{name}`"))
            .at(span)
            .label(format!("must match {COMMAND_NAME_PATTERN}"))
            .help(help);
        cx.push(d);
        return None;
    }
    let path = format!("commands.{name}");
    let obj = cx.object(&p.value, &path)?;
    let mut executed_on = Vec::new();
    let mut demands = None;
    for f in cx.fields(obj, &format!("`{path}`"), COMMAND_FIELDS) {
        match f.name.as_str() {
            "executed_on" => executed_on = events(cx, &f.value, &format!("{path}.executed_on")),
            "demands" => demands = demand(cx, job, &f.value, &format!("{path}.demands")),
            _ => unreachable!("fields() only returns known names"),
        }
    }
    if obj.get("executed_on").is_none() {
        let d = Diagnostic::error(format!("command `{name}` has no `executed_on`"))
            .at(cx.open_span(obj))
            .label("`executed_on` missing")
            .help(format!(
                r#"list the events that run it, e.g. "executed_on": ["post_deploy"]; events: {}"#,
                event_list()
            ));
        cx.push(d);
    }
    let script = scripts::find(cx, root, job, name, span)?;
    Some(Command { name: name.to_string(), executed_on, demands, script, span })
}

fn event_list() -> String {
    Event::ALL.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", ")
}

fn events(cx: &mut Ctx, v: &Value, path: &str) -> Vec<Event> {
    let mut out: Vec<(Event, Span)> = Vec::new();
    let Some(items) = cx.string_list(v, path) else { return Vec::new() };
    for item in items {
        let Some(e) = Event::parse(&item.value) else {
            let names = Event::ALL.map(|e| e.as_str());
            let help = hint(&item.value, names).unwrap_or_else(|| format!("events: {}", event_list()));
            let d = Diagnostic::error(format!("unknown event `{}`", item.value))
                .at(item.span)
                .label("not an event")
                .help(help);
            cx.push(d);
            continue;
        };
        if let Some((_, first)) = out.iter().find(|(x, _)| *x == e) {
            let d = Diagnostic::error(format!("duplicate event `{e}`"))
                .at(item.span)
                .label("already listed")
                .also(*first, "first listed here")
                .help("remove one of them");
            cx.push(d);
            continue;
        }
        out.push((e, item.span));
    }
    out.into_iter().map(|(e, _)| e).collect()
}

fn demand(cx: &mut Ctx, own_job: &str, v: &Value, path: &str) -> Option<Demand> {
    let obj = cx.object(v, path)?;
    let (mut job, mut command, mut config) = (None, None, None);
    let mut ok = true;
    for f in cx.fields(obj, &format!("`{path}`"), DEMAND_FIELDS) {
        match f.name.as_str() {
            "job" => job = cx.nonempty_string(&f.value, &format!("{path}.job")),
            "command" => command = cx.nonempty_string(&f.value, &format!("{path}.command")),
            "config" => match demand_config(cx, &f.value, &format!("{path}.config")) {
                Some(c) => config = Some(c),
                None => ok = false,
            },
            _ => unreachable!("fields() only returns known names"),
        }
    }
    let missing: Vec<&str> = ["job", "command"].into_iter().filter(|k| obj.get(k).is_none()).collect();
    if !missing.is_empty() {
        let d = Diagnostic::error(format!("`{path}` has no `{}`", missing.join("` or `")))
            .at(cx.open_span(obj))
            .label(format!("`{}` missing", missing.join("` and `")))
            .help(r#"a demand names both the upstream job and its command, e.g. {"job": "db", "command": "command_migrate"}"#);
        cx.push(d);
        return None;
    }
    let (job, command) = (job?, command?);
    if job.value == own_job {
        let d = Diagnostic::error(format!("job `{own_job}` demands itself"))
            .at(job.span)
            .label("the job this manifest belongs to")
            .help("a demand must point at another job");
        cx.push(d);
        return None;
    }
    let (config_json, min_version, max_version) = config.unwrap_or_else(|| ("{}".to_string(), None, None));
    ok.then(|| Demand {
        job: job.value,
        command: command.value,
        config_json,
        min_version,
        max_version,
        span: cx.span(obj),
        job_span: job.span,
        command_span: command.span,
    })
}

type DemandConfig = (String, Option<Spanned<String>>, Option<Spanned<String>>);

/// The `config` object, canonicalised, with its version bounds checked.
fn demand_config(cx: &mut Ctx, v: &Value, path: &str) -> Option<DemandConfig> {
    let obj = cx.object(v, path)?;
    let before = cx.diags.error_count();
    let props = cx.unique_props(obj, &format!("`{path}`"));
    let (mut min, mut max) = (None, None);
    for p in &props {
        let key = p.name.as_str();
        if key != "min_version" && key != "max_version" {
            continue;
        }
        let field = format!("{path}.{key}");
        let parsed = match &p.value {
            Value::NumberLit(n) => match n.value.parse::<u64>() {
                Ok(i) => Some(Spanned::new(i.to_string(), cx.span(&p.value))),
                Err(_) => {
                    let d = Diagnostic::error(format!("invalid `{field}` `{}`", n.value))
                        .at(cx.span(&p.value))
                        .label("not a version")
                        .help(format!("{VERSION_HELP}, or a whole number"));
                    cx.push(d);
                    None
                }
            },
            Value::StringLit(_) => version(cx, &p.value, &field),
            other => {
                cx.type_error(other, &field, "a version string or an integer");
                None
            }
        };
        if key == "min_version" {
            min = parsed;
        } else {
            max = parsed;
        }
    }
    if cx.diags.error_count() != before {
        return None;
    }
    let mut json = String::new();
    canonical(v, &mut json);
    Some((json, min, max))
}

/// Compact JSON with object keys sorted (first occurrence wins for repeated keys, which
/// are reported elsewhere); strings re-escaped, numbers as written.
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::StringLit(s) => out.push_str(&serde_json::to_string(s.value.as_ref()).unwrap_or_default()),
        Value::NumberLit(n) => out.push_str(n.value),
        Value::BooleanLit(b) => out.push_str(if b.value { "true" } else { "false" }),
        Value::NullKeyword(_) => out.push_str("null"),
        Value::Array(a) => {
            out.push('[');
            for (i, el) in a.elements.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(el, out);
            }
            out.push(']');
        }
        Value::Object(o) => {
            let mut props: BTreeMap<&str, &Value> = BTreeMap::new();
            for p in &o.properties {
                props.entry(p.name.as_str()).or_insert(&p.value);
            }
            out.push('{');
            for (i, (k, val)) in props.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                canonical(val, out);
            }
            out.push('}');
        }
    }
}

/// `certs`: name -> `{subject?: {common_name?}, pkcs8?, one?, key_type?}` (SPEC §8).
/// Decisions: `subject.common_name` defaults to the job name; `pkcs8` defaults to false
/// (maand's default, the traditional PKCS#1 / SEC1 form); ed25519 keys exist only as PKCS#8,
/// so `key_type: "ed25519"` needs `pkcs8: true`.
fn certs(cx: &mut Ctx, job: &str, v: &Value) -> Vec<CertDecl> {
    static CERT_NAME: LazyLock<Regex> = LazyLock::new(|| Regex::new(CERT_NAME_PATTERN).unwrap());
    let mut out = Vec::new();
    let Some(obj) = cx.object(v, "certs") else { return out };
    for p in cx.unique_props(obj, "`certs`") {
        let name = p.name.as_str();
        if !CERT_NAME.is_match(name) {
            let d = Diagnostic::error(format!("invalid certificate name `{name}`"))
                .at(cx.key_span(p))
                .label(format!("must match {CERT_NAME_PATTERN}"))
                .help("the name becomes the keys certs/<name>.crt and certs/<name>.key: lower-case letters, digits, `_` and `-`");
            cx.push(d);
            continue;
        }
        let path = format!("certs.{name}");
        let Some(cert) = cx.object(&p.value, &path) else { continue };
        let mut decl = CertDecl {
            name: name.to_string(),
            common_name: job.to_string(),
            pkcs8: false,
            one: false,
            key_type: KeyType::EcdsaP256,
            span: cx.span(p),
        };
        let before = cx.diags.error_count();
        let mut key_type_span = None;
        for f in cx.fields(cert, &format!("`{path}`"), CERT_FIELDS) {
            let field = format!("{path}.{}", f.name.as_str());
            match f.name.as_str() {
                "subject" => {
                    let Some(subject) = cx.object(&f.value, &field) else { continue };
                    for s in cx.fields(subject, &format!("`{field}`"), SUBJECT_FIELDS) {
                        if let Some(cn) = cx.nonempty_string(&s.value, &format!("{field}.common_name")) {
                            decl.common_name = cn.value;
                        }
                    }
                }
                "pkcs8" => decl.pkcs8 = boolean(cx, &f.value, &field).unwrap_or(false),
                "one" => decl.one = boolean(cx, &f.value, &field).unwrap_or(false),
                "key_type" => {
                    let Some(k) = cx.string(&f.value, &field) else { continue };
                    match KeyType::parse(&k.value) {
                        Some(t) => {
                            decl.key_type = t;
                            key_type_span = Some(k.span);
                        }
                        None => {
                            let names = KeyType::ALL.map(|t| t.as_str());
                            let help =
                                hint(&k.value, names).unwrap_or_else(|| format!("key types: {}", names.join(", ")));
                            let d = Diagnostic::error(format!("unknown key type `{}`", k.value))
                                .at(k.span)
                                .label("not a key type")
                                .help(help);
                            cx.push(d);
                        }
                    }
                }
                _ => unreachable!("fields() only returns known names"),
            }
        }
        if decl.key_type == KeyType::Ed25519 && !decl.pkcs8 {
            let d = Diagnostic::error(format!("`{path}` uses an ed25519 key without `pkcs8`"))
                .at(key_type_span.unwrap_or(decl.span))
                .label("ed25519 keys exist only as PKCS#8")
                .help(format!(r#"add "pkcs8": true to `{path}`, or choose "ecdsa-p256""#));
            cx.push(d);
        }
        if cx.diags.error_count() == before {
            out.push(decl);
        }
    }
    out
}

fn boolean(cx: &mut Ctx, v: &Value, path: &str) -> Option<bool> {
    match v {
        Value::BooleanLit(b) => Some(b.value),
        other => {
            cx.type_error(other, path, "true or false");
            None
        }
    }
}
