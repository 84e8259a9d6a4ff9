//! The variable files: `bucket.conf` (+ the port pool), the bucket.jobs file chosen by
//! `job_config_selector` (+ reservations), and `jobs/<job>/vars.hcl`.

use super::{HclFile, block_header_span, flat_vars, key_span, read_hcl, span_of, value};
use crate::diag::suggest::hint;
use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span, Spanned};
use crate::workspace::types::{JobConfig, PortPool, Var};
use crate::workspace::units::{self, Quantity};
use hcl::edit::structure::{Attribute, Structure};
use std::collections::BTreeMap;
use std::path::Path;

const BUCKET_CONF: &str = "workspace/bucket.conf";

pub(super) fn bucket_conf(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> (Vec<Var>, PortPool) {
    let Some(HclFile { file, body }) = read_hcl(root, BUCKET_CONF, sources, diags) else {
        return (Vec::new(), PortPool::default());
    };
    let vars = flat_vars(&body, file, "bucket.conf", diags);
    near_misses(&vars, &["port_min", "port_max"], "vars/bucket", "the port pool ignores it", file, diags);
    let pool = port_pool(&vars, file, diags);
    (vars.into_iter().map(|(v, _)| v).collect(), pool)
}

/// Attributes are free-form variables, so a misspelt setting (`port_mn`, `memroy`) would be
/// stored as a variable and the setting silently left at its default: warn, with the
/// suggestion (a warning, since the name may be a variable on purpose).
fn near_misses(
    vars: &[(Var, &Attribute)],
    settings: &[&str],
    ns: &str,
    effect: &str,
    file: FileId,
    diags: &mut Diagnostics,
) {
    for (var, attr) in vars {
        if settings.contains(&var.name.as_str()) {
            continue;
        }
        if let Some(help) = hint(&var.name, settings) {
            diags.push(
                Diagnostic::warning(format!("`{}` is not a setting; it is stored in {ns} as a variable", var.name))
                    .at(key_span(attr, file))
                    .label(format!("a variable, {effect}"))
                    .help(help),
            );
        }
    }
}

/// `port_min`/`port_max` when written and valid, the defaults otherwise.
fn port_pool(vars: &[(Var, &Attribute)], file: FileId, diags: &mut Diagnostics) -> PortPool {
    let mut pool = PortPool::default();
    let mut written: [Option<(u16, Span)>; 2] = [None, None];
    for (slot, name) in ["port_min", "port_max"].into_iter().enumerate() {
        let Some((_, attr)) = vars.iter().find(|(v, _)| v.name == name) else { continue };
        let at = span_of(&attr.value, file);
        match value::integer(&attr.value) {
            Ok(n) if (1..=65535).contains(&n) => written[slot] = Some((n as u16, at)),
            Ok(_) => diags.push(
                Diagnostic::error(format!("`{name}` must be a port between 1 and 65535"))
                    .at(at)
                    .label("out of range")
                    .help("the pool defaults to 30000..39999"),
            ),
            Err(found) => diags.push(
                Diagnostic::error(format!("`{name}` must be an integer, not {found}"))
                    .at(at)
                    .label(format!("this is {found}"))
                    .help(format!("write `{name} = {}` (without quotes)", if slot == 0 { 30000 } else { 39999 })),
            ),
        }
    }
    if let Some((min, _)) = written[0] {
        pool.min = min;
    }
    if let Some((max, _)) = written[1] {
        pool.max = max;
    }
    if pool.min > pool.max {
        let message =
            format!("the port pool is empty: port_min ({}) is greater than port_max ({})", pool.min, pool.max);
        let d = match (written[0], written[1]) {
            (Some((_, min_at)), Some((_, max_at))) => Diagnostic::error(message)
                .at(min_at)
                .label("port_min")
                .also(max_at, "port_max")
                .help("port_min must be less than or equal to port_max"),
            (Some((_, min_at)), None) => Diagnostic::error(message)
                .at(min_at)
                .label("port_min")
                .help(format!("port_max defaults to {}; lower port_min or write a larger port_max", pool.max)),
            (None, Some((_, max_at))) => Diagnostic::error(message)
                .at(max_at)
                .label("port_max")
                .help(format!("port_min defaults to {}; raise port_max or write a smaller port_min", pool.min)),
            (None, None) => return pool,
        };
        diags.push(d);
        return PortPool::default();
    }
    pool
}

pub(super) fn bucket_jobs(
    root: &Path,
    selector: &str,
    sources: &mut SourceMap,
    diags: &mut Diagnostics,
) -> BTreeMap<String, JobConfig> {
    let name =
        if selector.is_empty() { "bucket.jobs.conf".to_string() } else { format!("bucket.jobs.{selector}.conf") };
    let rel = format!("workspace/{name}");
    // `exists` follows symlinks; a dangling one must reach the reader and be reported.
    if !crate::workspace::source::exists(&root.join(&rel)).unwrap_or(true) {
        let others = other_bucket_jobs_files(root, &name);
        if !others.is_empty() {
            let found = others.join(", ");
            let help = if selector.is_empty() {
                format!(
                    "found {found}; select one with `job_config_selector = \"<env>\"` in kvform.hcl (bucket.jobs.<env>.conf), or create {rel}"
                )
            } else {
                format!(
                    "kvform.hcl sets job_config_selector = \"{selector}\", which selects {rel}; found {found}: fix the selector or create the file"
                )
            };
            diags.push(Diagnostic::error(format!("{rel} does not exist")).in_file(rel).help(help));
        }
        return BTreeMap::new();
    }
    let Some(HclFile { file, body }) = read_hcl(root, &rel, sources, diags) else {
        return BTreeMap::new();
    };
    let mut configs: BTreeMap<String, JobConfig> = BTreeMap::new();
    for structure in body.iter() {
        let block = match structure {
            Structure::Attribute(attr) => {
                diags.push(
                    Diagnostic::error(format!("attribute `{}` outside a job block", attr.key.value().as_str()))
                        .at(key_span(attr, file))
                        .label("not inside `job \"<name>\" { … }`")
                        .help(format!(
                            "{name} holds only `job \"<name>\" {{ … }}` blocks; bucket-wide values belong in bucket.conf"
                        )),
                );
                continue;
            }
            Structure::Block(block) => block,
        };
        let header = block_header_span(block, file);
        let ident = block.ident.value().as_str();
        if ident != "job" {
            let help =
                hint(ident, ["job"]).unwrap_or_else(|| format!("{name} holds only `job \"<name>\" {{ … }}` blocks"));
            diags.push(
                Diagnostic::error(format!("unknown block `{ident}` in {name}"))
                    .at(header)
                    .label("expected `job`")
                    .help(help),
            );
            continue;
        }
        let [label] = block.labels.as_slice() else {
            diags.push(
                Diagnostic::error("a `job` block needs exactly one label: the job name")
                    .at(header)
                    .label(match block.labels.len() {
                        0 => "no job name".to_string(),
                        n => format!("{n} labels"),
                    })
                    .help("write `job \"api\" { … }`"),
            );
            continue;
        };
        let job = label.as_str().to_string();
        if !is_job_name(&job) {
            diags.push(
                Diagnostic::error(format!("`{job}` is not a valid job name"))
                    .at(header)
                    .label("invalid job name")
                    .help("job names are lowercase letters, digits, `_` and `-`, starting with a letter or digit"),
            );
            continue;
        }
        if let Some(first) = configs.get(&job) {
            diags.push(
                Diagnostic::error(format!("duplicate block for job `{job}`"))
                    .at(header)
                    .label("written again here")
                    .also(first.span, "first written here")
                    .help("merge the attributes into one block"),
            );
            continue;
        }
        let vars = flat_vars(&block.body, file, "a `job` block", diags);
        let ns = format!("vars/bucket/job/{job}");
        near_misses(&vars, &["memory", "cpu"], &ns, "it reserves nothing", file, diags);
        let memory_mb = quantity(&vars, "memory", Quantity::Memory, file, diags);
        let cpu_mhz = quantity(&vars, "cpu", Quantity::Cpu, file, diags);
        let vars = vars.into_iter().map(|(v, _)| v).collect();
        configs.insert(job.clone(), JobConfig { job, memory_mb, cpu_mhz, vars, span: header });
    }
    configs
}

/// `bucket.jobs*.conf` files in `workspace/` other than `selected`, sorted.
fn other_bucket_jobs_files(root: &Path, selected: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(root.join("workspace")) else { return Vec::new() };
    let mut out: Vec<String> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bucket.jobs") && n.ends_with(".conf") && n != selected)
        .collect();
    out.sort();
    out
}

fn is_job_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// The reservation written as `name` in a job block, in MB or MHz: a string with an
/// optional unit or a bare number (see [`units`]).
fn quantity(
    vars: &[(Var, &Attribute)],
    name: &str,
    q: Quantity,
    file: FileId,
    diags: &mut Diagnostics,
) -> Option<Spanned<f64>> {
    let (var, attr) = vars.iter().find(|(v, _)| v.name == name)?;
    let at = span_of(&attr.value, file);
    let text = match &attr.value {
        hcl::edit::expr::Expression::Number(_) => Some(var.value.clone()),
        e => value::string_text(e, file).and_then(Result::ok),
    };
    let parsed = match text {
        Some(t) => units::parse(q, &t),
        // A bool, list or object: its converted form is what the operator sees.
        None => Err(units::UnitError::BadNumber(var.value.clone())),
    };
    match parsed {
        Ok(v) => Some(Spanned::new(v, at)),
        Err(e) => {
            diags.push(units::diagnostic(q, name, &e, at));
            None
        }
    }
}

pub(super) fn job_vars(root: &Path, job: &str, sources: &mut SourceMap, diags: &mut Diagnostics) -> Vec<Var> {
    let rel = format!("workspace/jobs/{job}/vars.hcl");
    let Some(HclFile { file, body }) = read_hcl(root, &rel, sources, diags) else {
        return Vec::new();
    };
    flat_vars(&body, file, "vars.hcl", diags).into_iter().map(|(v, _)| v).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jobs(files: &[(&str, &str)], selector: &str) -> (BTreeMap<String, JobConfig>, Diagnostics) {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir(tmp.path().join("workspace")).unwrap();
        for (name, text) in files {
            std::fs::write(tmp.path().join("workspace").join(name), text).unwrap();
        }
        let (mut sources, mut diags) = (SourceMap::new(), Diagnostics::new());
        let configs = bucket_jobs(tmp.path(), selector, &mut sources, &mut diags);
        (configs, diags)
    }

    #[test]
    fn the_selector_picks_exactly_one_file() {
        let files = [
            ("bucket.jobs.conf", "job \"api\" {\n  memory = 512\n}\n"),
            ("bucket.jobs.prod.conf", "job \"api\" {\n  memory = \"2 gb\"\n  cpu = \"2.4 ghz\"\n}\n"),
        ];
        let (dev, d) = jobs(&files, "");
        assert!(d.is_empty());
        assert_eq!(dev["api"].memory_mb.as_ref().map(|m| m.value), Some(512.0));
        assert_eq!(dev["api"].cpu_mhz, None);
        let (prod, d) = jobs(&files, "prod");
        assert!(d.is_empty());
        assert_eq!(prod["api"].memory_mb.as_ref().map(|m| m.value), Some(2048.0));
        assert_eq!(prod["api"].cpu_mhz.as_ref().map(|m| m.value), Some(2400.0));
        assert_eq!(prod["api"].vars[0].value, "2 gb");
    }

    #[test]
    fn a_missing_file_is_empty_unless_another_one_exists() {
        let (none, d) = jobs(&[], "prod");
        assert!(none.is_empty() && d.is_empty());
        let (_, d) = jobs(&[("bucket.jobs.conf", "")], "prod");
        assert_eq!(d.error_count(), 1);
        let msg = &d.0[0];
        assert_eq!(msg.message, "workspace/bucket.jobs.prod.conf does not exist");
        assert!(msg.help.as_deref().unwrap().contains("found bucket.jobs.conf"));
        let (_, d) = jobs(&[("bucket.jobs.staging.conf", "")], "");
        assert!(d.0[0].help.as_deref().unwrap().contains("job_config_selector"));
    }
}
