//! `scrapeConfigs` and `ruleFiles`, the job templates' Prometheus functions (maand
//! `promconfig/scrape_deploy.go`, `scrape.go`, `rule_files_deploy.go`).
//!
//! `scrapeConfigs` reads the catalog's `maand/prometheus` `scrape_jobs` and `scrape/<job>`
//! (the unexpanded items), expands each job's `maand:job` and `maand:port/<port>[/<host>]`
//! placeholders against its active allocations and assigned ports, and returns the items as
//! an indented YAML fragment (each line after a newline and two spaces, as maand's
//! `ScrapeConfigsYAML`), ready to follow a `scrape_configs:` line. A job whose placeholders
//! expand to no target (no active allocation) is left out. When the catalog lists no job
//! (no Prometheus server job in the workspace), the jobs' scrape files are expanded instead
//! (maand `renderScrapeConfigsFromWorkspace`).
//!
//! The YAML is what maand's `gopkg.in/yaml.v3` `Marshal` writes: block style, mapping keys in
//! yaml.v3's natural order, sequences indented under their key (the first level inside a
//! `- ` item two columns in, others to the next multiple of four), strings quoted only where
//! a plain scalar would read as something else (double quotes for a string that would resolve
//! to a bool, number or null, single quotes where the plain form is not allowed).
//!
//! `ruleFiles` lists `rules/<job>/<file>` for every alert file under a job's
//! `_prometheus/alerts/`, after maand's own `rules/maand/certs.yaml` when the job named
//! `prometheus` is a Prometheus server; `""` when there is neither.

use super::Reader;
use crate::model::catalog::Prometheus;
use serde_json::{Map, Value};

const NAMESPACE: &str = "maand/prometheus";
const PORT_PREFIX: &str = "maand:port/";
const JOB_PLACEHOLDER: &str = "maand:job";
const IMPLICIT_PORT: &str = "_implicit";

/// Why a job's items did not expand.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ExpandError {
    /// Placeholders expanded to no target: the job is left out (maand
    /// `ErrNoActiveScrapeTargets`).
    NoTargets,
    Invalid(String),
}

/// maand `RenderScrapeConfigsYAML(tx, nil)`.
pub(super) fn scrape_configs(reader: &dyn Reader, catalog: &Prometheus) -> Result<String, String> {
    let from_kv = from_kv(reader, catalog)?;
    if !from_kv.trim().is_empty() {
        return Ok(from_kv);
    }
    let mut all = Vec::new();
    for (name, job) in &catalog.jobs {
        let Some(items) = &job.scrape else { continue };
        let configs = items
            .iter()
            .map(|i| parse_item(i).map_err(|e| format!("the scrape file of job {name}: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        match expand_job(name, &configs, catalog) {
            Ok(v) => all.extend(v),
            Err(ExpandError::NoTargets) => {}
            Err(ExpandError::Invalid(m)) => return Err(m),
        }
    }
    Ok(configs_yaml(&all))
}

fn parse_item(text: &str) -> Result<Map<String, Value>, String> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("a scrape config is not a mapping".into()),
        Err(e) => Err(e.to_string()),
    }
}

fn from_kv(reader: &dyn Reader, catalog: &Prometheus) -> Result<String, String> {
    let jobs = match reader.get(NAMESPACE, "scrape_jobs")? {
        Some(v) if !v.trim().is_empty() => v,
        _ => return Ok(String::new()),
    };
    let mut all = Vec::new();
    for name in jobs.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let key = format!("scrape/{name}");
        let raw = reader.get(NAMESPACE, &key)?.ok_or_else(|| {
            format!("{NAMESPACE} has no key {key:?} although `scrape_jobs` lists {name} (run `kvform apply`)")
        })?;
        let configs: Vec<Map<String, Value>> = serde_json::from_str(&raw)
            .map_err(|e| format!("{NAMESPACE} {key} is not a JSON list of scrape configs: {e}"))?;
        match expand_job(name, &configs, catalog) {
            Ok(v) => all.extend(v),
            Err(ExpandError::NoTargets) => {}
            Err(ExpandError::Invalid(m)) => return Err(m),
        }
    }
    Ok(configs_yaml(&all))
}

/// maand `expandScrapeConfigsForJob`: the job's ports and active allocations from the catalog.
fn expand_job(
    job: &str,
    configs: &[Map<String, Value>],
    catalog: &Prometheus,
) -> Result<Vec<Map<String, Value>>, ExpandError> {
    let facts = catalog.jobs.get(job).ok_or_else(|| {
        ExpandError::Invalid(format!("the scrape catalog lists job {job}, which is not in the workspace"))
    })?;
    let ports: Vec<&str> = facts.ports.keys().map(String::as_str).collect();
    let numbers: Vec<(&str, u16)> = facts.ports.iter().filter_map(|(k, v)| v.map(|n| (k.as_str(), n))).collect();
    let hosts: Vec<&str> = facts.active_hosts.iter().map(String::as_str).collect();
    expand(job, configs, &ports, &numbers, &hosts)
}

/// maand `ExpandScrapeConfigs`: `maand:job` in `job_name` and in `static_configs[].labels`
/// values becomes the job's name; every `maand:port/<port>[/<host>]` target becomes
/// `<host>:<number>` for each active host (or the one named).
pub(super) fn expand(
    job: &str,
    configs: &[Map<String, Value>],
    ports: &[&str],
    numbers: &[(&str, u16)],
    active: &[&str],
) -> Result<Vec<Map<String, Value>>, ExpandError> {
    let mut out = Vec::with_capacity(configs.len());
    for (idx, cfg) in configs.iter().enumerate() {
        let mut cfg = cfg.clone();
        resolve_job_references(job, &mut cfg);
        expand_static_configs(job, &mut cfg, ports, numbers, active).map_err(|e| match e {
            ExpandError::Invalid(m) => ExpandError::Invalid(format!("job {job} scrape config {idx}: {m}")),
            other => other,
        })?;
        out.push(cfg);
    }
    Ok(out)
}

/// maand `ResolveScrapeJobName`.
pub(super) fn resolve_job_name<'a>(job: &'a str, value: &'a str) -> &'a str {
    if value == JOB_PLACEHOLDER { job } else { value }
}

fn resolve_job_references(job: &str, cfg: &mut Map<String, Value>) {
    if let Some(Value::String(s)) = cfg.get_mut("job_name") {
        *s = resolve_job_name(job, s).to_string();
    }
    let Some(Value::Array(blocks)) = cfg.get_mut("static_configs") else { return };
    for block in blocks {
        let Some(Value::Object(labels)) = block.get_mut("labels") else { continue };
        for v in labels.values_mut() {
            if let Value::String(s) = v {
                *s = resolve_job_name(job, s).to_string();
            }
        }
    }
}

fn expand_static_configs(
    job: &str,
    cfg: &mut Map<String, Value>,
    ports: &[&str],
    numbers: &[(&str, u16)],
    active: &[&str],
) -> Result<(), ExpandError> {
    let invalid = |m: String| ExpandError::Invalid(m);
    let Some(raw) = cfg.get_mut("static_configs") else {
        return Err(invalid("`static_configs` is required".into()));
    };
    let Value::Array(blocks) = raw else {
        return Err(invalid("`static_configs` must be a non-empty list".into()));
    };
    if blocks.is_empty() {
        return Err(invalid("`static_configs` must be a non-empty list".into()));
    }
    for (b, block) in blocks.iter_mut().enumerate() {
        let Value::Object(block) = block else {
            return Err(invalid(format!("static_configs[{b}] must be a mapping")));
        };
        let Some(targets) = block.get_mut("targets") else {
            return Err(invalid(format!("static_configs[{b}].targets is required")));
        };
        let Value::Array(list) = targets else {
            return Err(invalid(format!("static_configs[{b}].targets must be a non-empty list")));
        };
        if list.is_empty() {
            return Err(invalid(format!("static_configs[{b}].targets must be a non-empty list")));
        }
        let mut expanded = Vec::new();
        for t in list.iter() {
            let Value::String(t) = t else {
                return Err(invalid(format!("static_configs[{b}].targets entries must be strings")));
            };
            expanded.extend(expand_target(job, t, ports, numbers, active).map_err(invalid)?);
        }
        if expanded.is_empty() {
            return Err(ExpandError::NoTargets);
        }
        *list = expanded.into_iter().map(Value::String).collect();
    }
    Ok(())
}

/// maand `expandTarget`.
fn expand_target(
    job: &str,
    target: &str,
    ports: &[&str],
    numbers: &[(&str, u16)],
    active: &[&str],
) -> Result<Vec<String>, String> {
    let Some(rest) = target.strip_prefix(PORT_PREFIX) else { return Ok(vec![target.to_string()]) };
    let mut parts = rest.split('/');
    let mut port = parts.next().unwrap_or_default().to_string();
    if port.is_empty() {
        return Err(format!(
            "invalid port placeholder {target:?} (write `maand:port/<port>` or `maand:port/<port>/<host>`)"
        ));
    }
    let pinned = parts.next().unwrap_or_default();
    if port == IMPLICIT_PORT {
        port = metrics_port(job, ports)?;
    }
    if !ports.contains(&port.as_str()) {
        return Err(format!("port {port:?} is not declared in the manifest's resources.ports"));
    }
    let Some(number) = numbers.iter().find(|(n, _)| *n == port).map(|(_, n)| *n) else {
        return Err(format!(
            "port {port:?} has no assigned number (the job has no active allocation; run `kvform apply`)"
        ));
    };
    let hosts: Vec<&str> = if pinned.is_empty() {
        active.to_vec()
    } else if active.contains(&pinned) {
        vec![pinned]
    } else {
        return Err(format!("worker {pinned:?} is not an active allocation of job {job}"));
    };
    Ok(hosts.into_iter().map(|h| format!("{h}:{number}")).collect())
}

/// maand `ResolveMetricsPortKey`: `<job>_metrics_port`, `metrics_port`, or the one port
/// ending in `_metrics_port`.
pub(super) fn metrics_port(job: &str, ports: &[&str]) -> Result<String, String> {
    for name in [format!("{job}_metrics_port"), "metrics_port".to_string()] {
        if ports.contains(&name.as_str()) {
            return Ok(name);
        }
    }
    let mut matches: Vec<&str> = ports.iter().copied().filter(|p| p.ends_with("_metrics_port")).collect();
    matches.sort_unstable();
    match matches.as_slice() {
        [] => Err(format!(
            "job {job} uses maand:port/_implicit but its manifest declares no metrics port \
             (`{job}_metrics_port`, `metrics_port` or one `*_metrics_port`)"
        )),
        [one] => Ok(one.to_string()),
        many => Err(format!(
            "job {job} has several metrics ports ({}); name one in the target (`maand:port/<port>`)",
            many.join(", ")
        )),
    }
}

/// maand `RenderRuleFilesYAML`.
pub(super) fn rule_files(catalog: &Prometheus) -> String {
    if catalog.alert_files.is_empty() && !catalog.prometheus_job_is_server {
        return String::new();
    }
    let mut out = String::from("rule_files:\n");
    if catalog.prometheus_job_is_server {
        out.push_str("  - rules/maand/certs.yaml\n");
    }
    for (job, rel) in &catalog.alert_files {
        let base = rel.rsplit('/').next().unwrap_or(rel);
        out.push_str(&format!("  - rules/{job}/{base}\n"));
    }
    out
}

/// maand `ScrapeConfigsYAML`: `""` for no items, else every line of the YAML list after
/// `\n  `.
pub(super) fn configs_yaml(configs: &[Map<String, Value>]) -> String {
    if configs.is_empty() {
        return String::new();
    }
    let doc = Value::Array(configs.iter().cloned().map(Value::Object).collect());
    let mut out = String::new();
    for line in to_yaml(&doc).lines().filter(|l| !l.is_empty()) {
        out.push_str("\n  ");
        out.push_str(line);
    }
    out
}

// ---- yaml.v3's `Marshal`, for the values a scrape config holds (JSON values) ----

const BEST_INDENT: usize = 4;

/// A document as yaml.v3 writes it (block style, indent 4).
pub(super) fn to_yaml(v: &Value) -> String {
    let mut out = String::new();
    match v {
        Value::Array(a) if !a.is_empty() => seq(a, 0, &mut out),
        Value::Object(m) if !m.is_empty() => map(m, 0, &mut out),
        other => {
            out.push_str(&inline(other, 0));
            out.push('\n');
        }
    }
    out
}

/// Indent of a block collection that is the value of a mapping key at `indent`: the next
/// multiple of four (yaml.v3: "everything else aligns to the chosen indentation").
fn nested(indent: usize) -> usize {
    BEST_INDENT * ((indent + BEST_INDENT) / BEST_INDENT)
}

fn is_block(v: &Value) -> bool {
    matches!(v, Value::Array(a) if !a.is_empty()) || matches!(v, Value::Object(m) if !m.is_empty())
}

/// A block sequence whose `- ` items start at column `indent`; the caller has placed the
/// cursor at that column for the first item.
fn seq(items: &[Value], indent: usize, out: &mut String) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str("- ");
        // The first level inside a sequence item skips the `- ` indicator.
        match item {
            Value::Array(a) if !a.is_empty() => seq(a, indent + 2, out),
            Value::Object(m) if !m.is_empty() => map(m, indent + 2, out),
            other => {
                out.push_str(&inline(other, indent + 2));
                out.push('\n');
            }
        }
    }
}

/// A block mapping whose keys start at column `indent`; the cursor is at that column for the
/// first key.
fn map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    let mut keys: Vec<&String> = m.keys().collect();
    keys.sort_by(|a, b| natural_cmp(a, b));
    for (i, k) in keys.into_iter().enumerate() {
        if i > 0 {
            out.push_str(&" ".repeat(indent));
        }
        out.push_str(&scalar(k, indent));
        out.push(':');
        let v = &m[k];
        if is_block(v) {
            out.push('\n');
            let at = nested(indent);
            out.push_str(&" ".repeat(at));
            match v {
                Value::Array(a) => seq(a, at, out),
                Value::Object(o) => map(o, at, out),
                _ => unreachable!("is_block"),
            }
        } else {
            out.push(' ');
            out.push_str(&inline(v, nested(indent)));
            out.push('\n');
        }
    }
}

/// A value written on the current line: a scalar, `[]` or `{}`.
fn inline(v: &Value, indent: usize) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number(n),
        Value::String(s) => scalar(s, indent),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// Go's `strconv.FormatFloat(f, 'g', -1, 64)` for the numbers JSON gives (integers as they
/// are; a whole float as an integer, as the YAML round trip of maand's `deepCopyMap` leaves
/// it): the shortest digits, an exponent (`e+21`, `e-05`) below 1e-4 and from 1e21.
fn number(n: &serde_json::Number) -> String {
    if n.is_i64() || n.is_u64() {
        return n.to_string();
    }
    let f = n.as_f64().unwrap_or_default();
    if f.fract() == 0.0 && f.abs() < 1e21 {
        return format!("{f:.0}");
    }
    if f == 0.0 || (f.abs() >= 1e-4 && f.abs() < 1e21) {
        return format!("{f}");
    }
    let e = format!("{f:e}");
    let (mantissa, exp) = e.split_once('e').unwrap_or((&e, "0"));
    let (sign, digits) = match exp.strip_prefix('-') {
        Some(d) => ('-', d),
        None => ('+', exp),
    };
    format!("{mantissa}e{sign}{digits:0>2}")
}

/// A string scalar: plain where yaml.v3 writes it plain, else quoted; several lines as a
/// literal block whose lines start at column `indent`.
fn scalar(s: &str, indent: usize) -> String {
    if s.contains('\n') && s.chars().all(|c| c == '\n' || !c.is_control() || c == '\t') {
        let chomp = if !s.ends_with('\n') {
            "-"
        } else if s.ends_with("\n\n") {
            "+"
        } else {
            ""
        };
        let pad = " ".repeat(indent);
        let lead = if s.starts_with(' ') { BEST_INDENT.to_string() } else { String::new() };
        let body = s.strip_suffix('\n').unwrap_or(s);
        let lines: Vec<String> =
            body.split('\n').map(|l| if l.is_empty() { String::new() } else { format!("{pad}{l}") }).collect();
        return format!("|{lead}{chomp}\n{}", lines.join("\n"));
    }
    if resolves_to_other_than_string(s) {
        return double_quoted(s);
    }
    if plain_allowed(s) {
        return s.to_string();
    }
    if s.chars().any(|c| c.is_control() && c != '\t') {
        return double_quoted(s);
    }
    format!("'{}'", s.replace('\'', "''"))
}

fn double_quoted(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\0' => out.push_str("\\0"),
            c if c.is_control() => out.push_str(&format!("\\x{:02X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// yaml.v3's resolver: a plain scalar that would read as null, a bool (YAML 1.1's too), an
/// integer, a float or a base-60 float.
fn resolves_to_other_than_string(s: &str) -> bool {
    const WORDS: &[&str] = &[
        "", "~", "null", "Null", "NULL", "true", "True", "TRUE", "false", "False", "FALSE", "y", "Y", "yes", "Yes",
        "YES", "n", "N", "no", "No", "NO", "on", "On", "ON", "off", "Off", "OFF", ".inf", ".Inf", ".INF", "+.inf",
        "+.Inf", "+.INF", "-.inf", "-.Inf", "-.INF", ".nan", ".NaN", ".NAN",
    ];
    if WORDS.contains(&s) {
        return true;
    }
    let unsigned = s.strip_prefix(['+', '-']).unwrap_or(s);
    let digits = |t: &str, radix: u32| !t.is_empty() && t.chars().all(|c| c == '_' || c.is_digit(radix));
    if digits(unsigned, 10) && unsigned.starts_with(|c: char| c.is_ascii_digit()) {
        return true;
    }
    for (prefix, radix) in [("0x", 16), ("0X", 16), ("0o", 8), ("0O", 8), ("0b", 2), ("0B", 2)] {
        if let Some(t) = unsigned.strip_prefix(prefix)
            && digits(t, radix)
        {
            return true;
        }
    }
    is_float(unsigned) || is_base60(unsigned)
}

/// `[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?` or `\.[0-9]+([eE][-+]?[0-9]+)?`.
fn is_float(s: &str) -> bool {
    let (mantissa, exp) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let all_digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok = match mantissa.split_once('.') {
        Some(("", frac)) => all_digits(frac),
        Some((int, frac)) => all_digits(int) && (frac.is_empty() || all_digits(frac)),
        None => all_digits(mantissa),
    };
    let exp_ok = exp.is_none_or(|e| all_digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    mantissa_ok && exp_ok
}

/// `[0-9][0-9_]*(:[0-5]?[0-9])+(\.[0-9_]*)?` (YAML 1.1 sexagesimal, quoted by yaml.v3).
fn is_base60(s: &str) -> bool {
    let (body, frac) = match s.split_once('.') {
        Some((b, f)) => (b, Some(f)),
        None => (s, None),
    };
    if frac.is_some_and(|f| !f.bytes().all(|b| b.is_ascii_digit() || b == b'_')) {
        return false;
    }
    let mut parts = body.split(':');
    let head = parts.next().unwrap_or_default();
    if !head.starts_with(|c: char| c.is_ascii_digit()) || !head.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
        return false;
    }
    let rest: Vec<&str> = parts.collect();
    !rest.is_empty()
        && rest.iter().all(|p| match p.as_bytes() {
            [d] => d.is_ascii_digit(),
            [a, b] => (b'0'..=b'5').contains(a) && b.is_ascii_digit(),
            _ => false,
        })
}

/// libyaml's analysis: whether a string may be written as a plain scalar in block context.
fn plain_allowed(s: &str) -> bool {
    if s.is_empty() || s.starts_with("---") || s.starts_with("...") {
        return false;
    }
    let chars: Vec<char> = s.chars().collect();
    if chars[0] == ' ' || chars[chars.len() - 1] == ' ' {
        return false;
    }
    let space_or_end = |i: usize| chars.get(i).is_none_or(|c| *c == ' ' || *c == '\t');
    for (i, &c) in chars.iter().enumerate() {
        if c.is_control() || c == '\u{feff}' {
            return false;
        }
        if i == 0 {
            match c {
                '#' | ',' | '[' | ']' | '{' | '}' | '&' | '*' | '!' | '|' | '>' | '\'' | '"' | '%' | '@' | '`' => {
                    return false;
                }
                '?' | ':' | '-' if space_or_end(1) => return false,
                _ => {}
            }
        } else {
            match c {
                ':' if space_or_end(i + 1) => return false,
                '#' if chars[i - 1] == ' ' || chars[i - 1] == '\t' => return false,
                _ => {}
            }
        }
        if c == '\t' {
            return false;
        }
    }
    true
}

/// yaml.v3's `keyList.Less` for string keys: letters in order, a run of digits by its value.
pub(super) fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (ar, br): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let less = |x: bool| if x { Ordering::Less } else { Ordering::Greater };
    let mut digits = false;
    let mut i = 0;
    while i < ar.len() && i < br.len() {
        if ar[i] == br[i] {
            digits = ar[i].is_ascii_digit();
            i += 1;
            continue;
        }
        let (al, bl) = (ar[i].is_alphabetic(), br[i].is_alphabetic());
        if al && bl {
            return ar[i].cmp(&br[i]);
        }
        if al || bl {
            return less(if digits { al } else { bl });
        }
        let (mut an, mut bn): (i64, i64) = (0, 0);
        if ar[i] == '0' || br[i] == '0' {
            let mut j = i;
            while j > 0 && ar[j - 1].is_ascii_digit() {
                j -= 1;
                if ar[j] != '0' {
                    an = 1;
                    bn = 1;
                    break;
                }
            }
        }
        let mut ai = i;
        while ai < ar.len() && ar[ai].is_ascii_digit() {
            an = an.saturating_mul(10).saturating_add(ar[ai] as i64 - '0' as i64);
            ai += 1;
        }
        let mut bi = i;
        while bi < br.len() && br[bi].is_ascii_digit() {
            bn = bn.saturating_mul(10).saturating_add(br[bi] as i64 - '0' as i64);
            bi += 1;
        }
        if an != bn {
            return an.cmp(&bn);
        }
        if ai != bi {
            return ai.cmp(&bi);
        }
        return ar[i].cmp(&br[i]);
    }
    ar.len().cmp(&br.len())
}

#[cfg(test)]
#[path = "prom_tests.rs"]
mod tests;
