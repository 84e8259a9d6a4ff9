//! `kvform.hcl`: bucket settings (SPEC §1). Every setting is optional; a missing file or a
//! rejected value leaves the default in place (the diagnostic makes the run fail anyway).
//!
//! The accepted names are one table, [`SCHEMA`], so "unknown attribute" checks, "did you
//! mean" hints and the help listing cannot drift from what is parsed.

use super::{HclFile, block_header_span, key_span, read_hcl, span_of, value};
use crate::diag::suggest::hint;
use crate::diag::{Diagnostic, Diagnostics, FileId, SourceMap, Span};
use crate::state::{PgLocation, StateConfig};
use crate::workspace::types::Settings;
use hcl::edit::expr::Expression;
use hcl::edit::structure::{Attribute, Body, Structure};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

const FILE: &str = "kvform.hcl";

/// Block name ("" = top level) -> the attributes it accepts.
const SCHEMA: &[(&str, &[&str])] = &[
    ("", &["job_config_selector", "max_versions", "certs_ttl", "certs_renewal_days"]),
    // `url` is listed so that it gets its own refusal (a connection string belongs in the
    // environment), not "unknown attribute".
    ("state", &["path", "backend", "url_env", "schema", "bucket_id", "url"]),
    ("hooks", &["timeout", "api_port"]),
    ("limits", &["max_file_size"]),
];

const ACCEPTED: &str = "job_config_selector, max_versions, certs_ttl, certs_renewal_days, state { path, backend, url_env, schema, bucket_id }, \
hooks { timeout, api_port }, limits { max_file_size }";

/// The `state` block's attributes as they are read (in any order), typed into a
/// [`StateConfig`] once the file is read.
struct StateDraft {
    path: PathBuf,
    postgres: bool,
    url_env: String,
    schema: String,
    bucket_id: Option<uuid::Uuid>,
}

impl Default for StateDraft {
    fn default() -> Self {
        StateDraft {
            path: StateConfig::default().sqlite_path().to_path_buf(),
            postgres: false,
            url_env: "KVFORM_PG_URL".into(),
            schema: "kvform".into(),
            bucket_id: None,
        }
    }
}

impl StateDraft {
    fn config(self) -> StateConfig {
        let path = self.path;
        if self.postgres {
            let target = PgLocation { url_env: self.url_env, schema: self.schema, bucket_id: self.bucket_id };
            StateConfig::Postgres { target, path }
        } else {
            StateConfig::Sqlite { path }
        }
    }
}

pub(super) fn load(root: &Path, sources: &mut SourceMap, diags: &mut Diagnostics) -> Settings {
    let mut settings = Settings::default();
    let mut state = StateDraft::default();
    let Some(HclFile { file, body }) = read_hcl(root, FILE, sources, diags) else {
        return settings;
    };
    let blocks: Vec<&str> = SCHEMA.iter().map(|(b, _)| *b).filter(|b| !b.is_empty()).collect();
    let mut seen_blocks: BTreeMap<String, Span> = BTreeMap::new();
    for structure in body.iter() {
        let Structure::Block(block) = structure else { continue };
        let name = block.ident.value().as_str();
        let header = block_header_span(block, file);
        if !blocks.contains(&name) {
            diags.push(unknown_block(name, header, &blocks));
            continue;
        }
        if let Some(first) = seen_blocks.get(name) {
            diags.push(
                Diagnostic::error(format!("duplicate `{name}` block"))
                    .at(header)
                    .label("written again here")
                    .also(*first, "first written here")
                    .help(format!("merge the attributes into one `{name}` block")),
            );
            continue;
        }
        seen_blocks.insert(name.to_string(), header);
        if !block.labels.is_empty() {
            diags.push(
                Diagnostic::error(format!("the `{name}` block takes no labels"))
                    .at(header)
                    .label("unexpected label")
                    .help(format!("write `{name} {{ … }}`")),
            );
            continue;
        }
        for attr in attributes(&block.body, name, file, diags) {
            apply(&mut settings, &mut state, name, attr, file, diags);
        }
    }
    for attr in attributes(&body, "", file, diags) {
        apply(&mut settings, &mut state, "", attr, file, diags);
    }
    settings.state = state.config();
    check_renewal(&settings, &body, file, diags);
    settings
}

/// A renewal window as long as the validity would re-issue every certificate on every plan.
fn check_renewal(settings: &Settings, body: &Body, file: FileId, diags: &mut Diagnostics) {
    if settings.certs_renewal_days < settings.certs_ttl_days {
        return;
    }
    let attr = |name: &str| body.get_attribute(name).map(|a| span_of(&a.value, file));
    let Some(at) = attr("certs_renewal_days").or_else(|| attr("certs_ttl")) else { return };
    diags.push(
        Diagnostic::error(format!(
            "`certs_renewal_days` ({}) must be less than `certs_ttl` ({})",
            settings.certs_renewal_days, settings.certs_ttl_days
        ))
        .at(at)
        .label("every certificate would be due for renewal as soon as it is issued")
        .help("renew some days before expiry, e.g. certs_ttl = 60 and certs_renewal_days = 15"),
    );
}

/// The attributes of `body` (top level when `block` is ""), with unknown names, duplicates
/// and nested blocks reported and dropped (the parser already rejects duplicates).
fn attributes<'b>(body: &'b Body, block: &str, file: FileId, diags: &mut Diagnostics) -> Vec<&'b Attribute> {
    let accepted: &[&str] = SCHEMA.iter().find(|(b, _)| *b == block).map_or(&[], |(_, a)| a);
    let mut out = Vec::new();
    for structure in body.iter() {
        match structure {
            Structure::Block(inner) if !block.is_empty() => diags.push(
                Diagnostic::error(format!(
                    "unexpected block `{}` in the `{block}` block",
                    inner.ident.value().as_str()
                ))
                .at(block_header_span(inner, file))
                .label("blocks do not nest here")
                .help(format!("the `{block}` block accepts the attributes {}", accepted.join(", "))),
            ),
            Structure::Block(_) => {}
            Structure::Attribute(attr) => {
                let name = attr.key.value().as_str();
                if accepted.contains(&name) {
                    out.push(attr);
                } else {
                    diags.push(unknown_attribute(name, block, key_span(attr, file), accepted));
                }
            }
        }
    }
    out
}

fn unknown_attribute(name: &str, block: &str, at: Span, accepted: &[&str]) -> Diagnostic {
    let is_block = block.is_empty() && SCHEMA.iter().any(|(b, _)| !b.is_empty() && *b == name);
    let (message, label) = if block.is_empty() {
        (format!("unknown attribute `{name}` in {FILE}"), "not a kvform.hcl setting".to_string())
    } else {
        (format!("unknown attribute `{name}` in the `{block}` block"), format!("not a `{block}` setting"))
    };
    let help = if is_block {
        format!("`{name}` is a block: write `{name} {{ … }}` without `=`")
    } else if let Some(h) = hint(name, accepted) {
        h
    } else if block.is_empty() {
        format!("{FILE} accepts {ACCEPTED}")
    } else {
        format!("the `{block}` block accepts {}", accepted.join(", "))
    };
    Diagnostic::error(message).at(at).label(label).help(help)
}

fn unknown_block(name: &str, at: Span, blocks: &[&str]) -> Diagnostic {
    let top: &[&str] = SCHEMA[0].1;
    let help = if top.contains(&name) {
        format!("`{name}` is an attribute: write `{name} = …`")
    } else if let Some(h) = hint(name, blocks) {
        h
    } else {
        format!("{FILE} accepts {ACCEPTED}")
    };
    Diagnostic::error(format!("unknown block `{name}` in {FILE}")).at(at).label("not a kvform.hcl block").help(help)
}

/// Check one known attribute's value and store it in `settings`.
fn apply(
    settings: &mut Settings,
    state: &mut StateDraft,
    block: &str,
    attr: &Attribute,
    file: FileId,
    diags: &mut Diagnostics,
) {
    let name = attr.key.value().as_str();
    let expr = &attr.value;
    let result = match (block, name) {
        ("", "job_config_selector") => string(expr, name, "\"prod\"", file).and_then(|s| {
            if s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                settings.job_config_selector = s;
                Ok(())
            } else {
                Err(out_of_range(
                    expr,
                    name,
                    file,
                    "may contain only letters, digits, `_` and `-`",
                    "it names the file bucket.jobs.<selector>.conf; use \"\" for bucket.jobs.conf",
                ))
            }
        }),
        ("", "max_versions") => integer(expr, name, "10", file).and_then(|n| match u32::try_from(n) {
            Ok(n) if n >= 1 => {
                settings.max_versions = n;
                Ok(())
            }
            _ => Err(out_of_range(
                expr,
                name,
                file,
                "must be at least 1",
                "the store keeps this many versions of each key; 10 is the default",
            )),
        }),
        ("", "certs_ttl") => integer(expr, name, "60", file).and_then(|n| match u32::try_from(n) {
            Ok(n) if (1..=3650).contains(&n) => {
                settings.certs_ttl_days = n;
                Ok(())
            }
            _ => Err(out_of_range(
                expr,
                name,
                file,
                "must be between 1 and 3650 days",
                "issued certificates are valid this many days; 60 is the default",
            )),
        }),
        ("", "certs_renewal_days") => integer(expr, name, "15", file).and_then(|n| match u32::try_from(n) {
            Ok(n) => {
                settings.certs_renewal_days = n;
                Ok(())
            }
            Err(_) => Err(out_of_range(
                expr,
                name,
                file,
                "must be 0 or more days",
                "a certificate is re-issued this many days before it expires; 0 waits until it has expired",
            )),
        }),
        ("state", "path") => string(expr, name, "\"data/kvform.db\"", file).and_then(|s| {
            if s.trim().is_empty() {
                Err(out_of_range(expr, name, file, "must not be empty", "remove it to use the default data/kvform.db"))
            } else {
                state.path = PathBuf::from(s.trim());
                Ok(())
            }
        }),
        ("state", "backend") => string(expr, name, "\"postgres\"", file).and_then(|s| match s.trim() {
            b @ ("sqlite" | "postgres") => {
                state.postgres = b == "postgres";
                Ok(())
            }
            _ => Err(out_of_range(
                expr,
                name,
                file,
                "must be \"sqlite\" or \"postgres\"",
                "sqlite (the default) keeps the state in a file; postgres shares it through a PostgreSQL database",
            )),
        }),
        ("state", "url_env") => string(expr, name, "\"KVFORM_PG_URL\"", file).and_then(|s| {
            let s = s.trim();
            let ok = !s.is_empty()
                && !s.starts_with(|c: char| c.is_ascii_digit())
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if ok {
                state.url_env = s.to_string();
                Ok(())
            } else {
                Err(out_of_range(
                    expr,
                    name,
                    file,
                    "is not an environment variable name",
                    "name the variable that holds the connection string, e.g. url_env = \"KVFORM_PG_URL\"",
                ))
            }
        }),
        ("state", "schema") => string(expr, name, "\"kvform\"", file).and_then(|s| {
            let s = s.trim();
            let ok = (1..=crate::state::postgres::MAX_REGISTRY_LEN).contains(&s.len())
                && s.starts_with(|c: char| c.is_ascii_lowercase() || c == '_')
                && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
            if ok {
                state.schema = s.to_string();
                Ok(())
            } else {
                Err(out_of_range(
                    expr,
                    name,
                    file,
                    "is not a schema name kvform uses",
                    "use 1-28 lower-case letters, digits and _ (starting with a letter or _), e.g. \"kvform\"",
                ))
            }
        }),
        ("state", "bucket_id") => {
            string(expr, name, "\"<uuid>\"", file).and_then(|s| match uuid::Uuid::parse_str(s.trim()) {
                Ok(id) => {
                    state.bucket_id = Some(id);
                    Ok(())
                }
                Err(_) => Err(out_of_range(
                    expr,
                    name,
                    file,
                    "is not a UUID",
                    "`kvform init` writes it when it creates the bucket; copy it from `kvform state info`",
                )),
            })
        }
        ("state", "url") => Err(Diagnostic::error(
            "`url` is not allowed in kvform.hcl: a connection string carries credentials and kvform.hcl is committed",
        )
        .at(span_of(expr, file))
        .label("remove this")
        .help("put the connection string in an environment variable and name it: `url_env = \"KVFORM_PG_URL\"`")),
        ("hooks", "timeout") => string(expr, name, "\"10m\"", file).and_then(|s| match parse_timeout(&s) {
            Some(secs) => {
                settings.hook_timeout_secs = secs;
                Ok(())
            }
            None => Err(out_of_range(
                expr,
                name,
                file,
                "is not a duration of at least one second",
                "write a duration such as \"90s\", \"10m\", \"1h 30m\" or \"PT10M\"",
            )),
        }),
        ("hooks", "api_port") => integer(expr, name, "0", file).and_then(|n| match u16::try_from(n) {
            Ok(p) => {
                settings.api_port = p;
                Ok(())
            }
            Err(_) => Err(out_of_range(
                expr,
                name,
                file,
                "must be a port between 0 and 65535",
                "0 picks a free loopback port; 8080 serves maand-compatible clients",
            )),
        }),
        ("limits", "max_file_size") => {
            let text = match value::integer(expr) {
                Ok(n) => Ok(n.to_string()),
                Err(_) => string(expr, name, "\"64 MiB\"", file),
            };
            text.and_then(|t| match parse_size(&t) {
                Some(bytes) if bytes >= 1 => {
                    settings.max_file_size = bytes;
                    Ok(())
                }
                _ => Err(out_of_range(
                    expr,
                    name,
                    file,
                    "is not a size of at least one byte",
                    "write a size such as \"64 MiB\" (or \"64 mb\", the same), \"512 KiB\", \"1 GiB\" or a number of bytes",
                )),
            })
        }
        _ => Ok(()),
    };
    if let Err(d) = result {
        diags.push(d);
    }
}

/// Seconds of a duration in the one syntax ([`crate::clock::parse_duration`]); `None` when
/// it does not parse or is shorter than one second.
fn parse_timeout(s: &str) -> Option<u64> {
    crate::clock::parse_duration(s).filter(|s| *s >= 1)
}

/// Bytes of `64 MiB`, `64 mb`, `512kib`, `1 GiB`, `100 b` or a bare number of bytes: the
/// one unit table ([`crate::workspace::units::parse_bytes`]).
fn parse_size(s: &str) -> Option<u64> {
    crate::workspace::units::parse_bytes(s)
}

fn string(expr: &Expression, name: &str, example: &str, file: FileId) -> Result<String, Diagnostic> {
    match value::string_text(expr, file) {
        Some(r) => r,
        None => Err(wrong_type(expr, name, "a string", example, file)),
    }
}

fn integer(expr: &Expression, name: &str, example: &str, file: FileId) -> Result<i128, Diagnostic> {
    value::integer(expr).map_err(|_| wrong_type(expr, name, "an integer", example, file))
}

fn wrong_type(expr: &Expression, name: &str, expected: &str, example: &str, file: FileId) -> Diagnostic {
    let found = match value::integer(expr) {
        Err("a fraction") => "a fraction",
        _ => value::kind(expr),
    };
    Diagnostic::error(format!("`{name}` must be {expected}, not {found}"))
        .at(span_of(expr, file))
        .label(format!("this is {found}"))
        .help(format!("write `{name} = {example}`"))
}

fn out_of_range(expr: &Expression, name: &str, file: FileId, what: &str, help: &str) -> Diagnostic {
    Diagnostic::error(format!("`{name}` {what}")).at(span_of(expr, file)).label("invalid value").help(help)
}

#[cfg(test)]
mod tests {
    use super::parse_timeout;

    #[test]
    fn timeouts() {
        assert_eq!(parse_timeout("10m"), Some(600));
        assert_eq!(parse_timeout("1h 30m"), Some(5400));
        assert_eq!(parse_timeout("PT90S"), Some(90));
        assert_eq!(parse_timeout("P1D"), Some(86400));
        assert_eq!(parse_timeout("600"), Some(600));
        assert_eq!(parse_timeout("1.5s"), None);
        assert_eq!(parse_timeout("0s"), None);
        assert_eq!(parse_timeout("-5m"), None);
        assert_eq!(parse_timeout("ten minutes"), None);
    }

    fn state_of(text: &str) -> crate::state::StateConfig {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("kvform.hcl"), text).unwrap();
        let (mut sources, mut diags) = (crate::diag::SourceMap::new(), crate::diag::Diagnostics::new());
        let settings = super::load(dir.path(), &mut sources, &mut diags);
        assert!(!diags.has_errors(), "{}", diags.render(&sources, false));
        settings.state
    }

    #[test]
    fn the_state_block_is_typed_whatever_the_order_of_its_attributes() {
        use crate::state::{PgLocation, StateConfig};
        assert_eq!(state_of(""), StateConfig::Sqlite { path: "data/kvform.db".into() });
        assert_eq!(state_of("state {\n  path = \"s/kv.db\"\n}\n"), StateConfig::Sqlite { path: "s/kv.db".into() });
        let id = uuid::Uuid::from_u128(7);
        // The PostgreSQL attributes before `backend` are kept, and so is `path`.
        let text = format!(
            "state {{\n  bucket_id = \"{id}\"\n  schema = \"team_a\"\n  url_env = \"PG\"\n  path = \"s/kv.db\"\n  backend = \"postgres\"\n}}\n"
        );
        let target = PgLocation { url_env: "PG".into(), schema: "team_a".into(), bucket_id: Some(id) };
        assert_eq!(state_of(&text), StateConfig::Postgres { target, path: "s/kv.db".into() });
        // Written for PostgreSQL but `backend = "sqlite"`: an SQLite state.
        let text = format!("state {{\n  backend = \"sqlite\"\n  bucket_id = \"{id}\"\n}}\n");
        assert_eq!(state_of(&text), StateConfig::Sqlite { path: "data/kvform.db".into() });
    }
}

/// Set (or, with `None`, remove) attributes of the `state` block of `<root>/kvform.hcl`,
/// creating the block (and the file) when missing: `kvform init` writes the PostgreSQL
/// bucket id it created, `state migrate` switches the backend. Every other line of the
/// file, comments included, is kept as it was; the result is parsed again before it
/// replaces the file, so a rewrite never leaves an invalid kvform.hcl behind.
pub fn set_state_attributes(root: &Path, attrs: &[(&str, Option<String>)]) -> std::io::Result<()> {
    let path = root.join(FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    let new = rewrite_state_block(&text, attrs);
    if new.parse::<hcl::edit::structure::Body>().is_err() {
        return Err(std::io::Error::other(format!(
            "cannot rewrite the `state` block of {} (write it by hand: {})",
            path.display(),
            attrs.iter().filter_map(|(k, v)| v.as_ref().map(|v| format!("{k} = {v:?}"))).collect::<Vec<_>>().join(", ")
        )));
    }
    let tmp = root.join(".kvform.hcl.tmp");
    std::fs::write(&tmp, new)?;
    std::fs::rename(&tmp, &path)
}

fn rewrite_state_block(text: &str, attrs: &[(&str, Option<String>)]) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let is_header = |l: &str| {
        let t = l.trim_start();
        t.strip_prefix("state").is_some_and(|r| r.trim_start().starts_with('{')) && l.len() - t.len() == 0
    };
    let attr_line = |k: &str, v: &str| format!("  {k} = {v:?}");
    let Some(start) = lines.iter().position(|l| is_header(l)) else {
        let mut out = text.to_string();
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
        out.push_str("\nstate {\n");
        for (k, v) in attrs {
            if let Some(v) = v {
                out.push_str(&attr_line(k, v));
                out.push('\n');
            }
        }
        out.push_str("}\n");
        return out;
    };
    // The block's lines: a one-line block (`state { path = "x" }`) is opened up first.
    let mut body: Vec<String> = Vec::new();
    let end;
    let header = lines[start];
    let after = &header[header.find('{').map_or(header.len(), |i| i + 1)..];
    if let Some(close) = after.rfind('}') {
        let inner = after[..close].trim();
        if !inner.is_empty() {
            body.push(format!("  {inner}"));
        }
        end = start;
    } else {
        let mut i = start + 1;
        while i < lines.len() && lines[i].trim() != "}" {
            body.push(lines[i].to_string());
            i += 1;
        }
        end = i.min(lines.len().saturating_sub(1));
    }
    for (k, v) in attrs {
        let pos = body.iter().position(|l| {
            let t = l.trim_start();
            t.strip_prefix(k).is_some_and(|r| r.trim_start().starts_with('='))
        });
        match (pos, v) {
            (Some(i), Some(v)) => body[i] = attr_line(k, v),
            (Some(i), None) => {
                body.remove(i);
            }
            (None, Some(v)) => body.push(attr_line(k, v)),
            (None, None) => {}
        }
    }
    let mut out: Vec<String> = lines[..start].iter().map(|l| l.to_string()).collect();
    // The block laid out as `kvform fmt` would (indent, `=` aligned across the run of
    // attributes), so an added `bucket_id` lines up with `backend`, `url_env`, `schema`.
    // Whitespace only; a block the formatter refuses is kept as built.
    let block = format!("state {{\n{}\n}}\n", body.join("\n"));
    let block = crate::workspace::format::hcl(&block).unwrap_or(block);
    out.extend(block.lines().map(str::to_string));
    out.extend(lines[end + 1..].iter().map(|l| l.to_string()));
    let mut s = out.join("\n");
    s.push('\n');
    s
}

#[cfg(test)]
mod state_block_tests {
    use super::rewrite_state_block;

    #[test]
    fn the_state_block_is_rewritten_in_place() {
        let t = "# top\nmax_versions = 3\nstate {\n  backend = \"postgres\" # shared\n}\n# end\n";
        let out = rewrite_state_block(t, &[("bucket_id", Some("abc".into()))]);
        assert_eq!(
            out,
            "# top\nmax_versions = 3\nstate {\n  backend   = \"postgres\" # shared\n  bucket_id = \"abc\"\n}\n# end\n"
        );
        // Aligned with the attributes already there, as `kvform fmt` lays them out.
        let t = "state {\n  backend = \"postgres\"\n  url_env = \"PG\"\n  schema  = \"kvform\"\n}\n";
        let out = rewrite_state_block(t, &[("bucket_id", Some("abc".into()))]);
        assert_eq!(
            out,
            "state {\n  backend   = \"postgres\"\n  url_env   = \"PG\"\n  schema    = \"kvform\"\n  bucket_id = \"abc\"\n}\n"
        );
        assert_eq!(crate::workspace::format::hcl(&out).unwrap(), out, "not what `kvform fmt` writes");
        let out =
            rewrite_state_block("state { path = \"x.db\" }\n", &[("path", None), ("backend", Some("postgres".into()))]);
        assert_eq!(out, "state {\n  backend = \"postgres\"\n}\n");
        let out = rewrite_state_block("max_versions = 3", &[("backend", Some("postgres".into()))]);
        assert_eq!(out, "max_versions = 3\n\nstate {\n  backend = \"postgres\"\n}\n");
    }
}
