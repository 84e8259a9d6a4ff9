//! Reading one key (`kvform kv get` and `kvform cat kv get`), and the namespace and key
//! checks every single-key command shares.

use super::Context;
use super::output::shown_value;
use super::session::Session;
use crate::kv::{Entry, NamespaceKind, is_secret_key};
use anyhow::{anyhow, bail};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub(super) struct GetArgs {
    /// Namespace, e.g. vars/job/api.
    ns: String,
    /// Key within the namespace.
    key: String,
    /// Exit 1 when the key is missing or deleted.
    #[arg(long)]
    error_on_missing: bool,
    /// Print a secret's value in clear text instead of (sensitive).
    #[arg(long)]
    reveal: bool,
    /// `text`: the value alone; `json`: the value with its version, times (RFC 3339), TTL,
    /// serial and writer (`null` for a missing key).
    #[arg(long, value_enum, default_value_t = GetFormat::Text)]
    format: GetFormat,
    /// Print this version instead of the current one (`kv history` lists the versions kept).
    #[arg(long, value_name = "N")]
    version: Option<u64>,
}

#[derive(clap::ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum GetFormat {
    Text,
    Json,
}

/// `kv get --format json`: one key with what an operator asks about it. Times are RFC 3339
/// UTC. `created_at` is the time of the key's first version while history still holds it
/// (`null` once `max_versions` or gc trimmed it); `updated_at` is the current version's.
#[derive(serde::Serialize)]
struct JsonKey<'a> {
    namespace: &'a str,
    key: &'a str,
    value: String,
    sensitive: bool,
    version: u64,
    created_at: Option<String>,
    updated_at: String,
    /// Seconds; 0 = never expires.
    ttl: u64,
    expires_at: Option<String>,
    expired: bool,
    serial: u64,
    writer: &'a str,
    /// Kestra's value type (`string` unless a writer gave one) and the operator's note.
    #[serde(rename = "type")]
    kv_type: crate::kv::KvType,
    description: String,
}

/// The namespace, which must be in the layout.
pub(super) fn namespace(ns: &str) -> anyhow::Result<NamespaceKind> {
    NamespaceKind::parse(ns).ok_or_else(|| {
        anyhow!(
            "unknown namespace {ns:?}\n  help: namespaces follow the layout: maand/bucket, maand/worker/<host>, \
maand/job/<job>, vars/bucket, vars/job/<job>, secrets/job/<job>, …"
        )
    })
}

/// The key rules shared with hook writes (`crate::kv::keys`).
pub(super) fn check_key(key: &str) -> anyhow::Result<()> {
    crate::kv::keys::check_key(key).map_err(|e| anyhow!(e.message))
}

pub(super) fn expiry_notice(ctx: &Context, ns: &str, key: &str, e: &Entry, now: i64) {
    if e.is_live() && e.is_expired(now) {
        ctx.printer.warn(&format!(
            "{ns} {key} expired at {} (ttl {}s); the next plan tombstones it",
            crate::clock::format_time(e.expires_at().unwrap_or_default()),
            e.ttl
        ));
    }
}

pub(super) fn get(ctx: &Context, a: GetArgs) -> anyhow::Result<ExitCode> {
    namespace(&a.ns)?;
    check_key(&a.key)?;
    let secret = is_secret_key(&a.ns, &a.key);
    let session = Session::new(ctx)?;
    let store = if secret && a.reveal { session.open_state_with_keyring()? } else { session.open_state()? };
    if let Some(n) = a.version {
        return get_version(ctx, &a, &store, n);
    }
    let live = store.get(&a.ns, &a.key)?.filter(Entry::is_live);
    if a.format == GetFormat::Json {
        if live.is_none() && a.error_on_missing {
            bail!("{} {} does not exist (or was deleted)", a.ns, a.key);
        }
        let shown = match &live {
            None => serde_json::Value::Null,
            Some(e) => {
                let first = store.history(&a.ns, &a.key)?.into_iter().find(|r| r.version == 1);
                // Derived keys (peer lists) have no row of their own: `string`, no description.
                let meta = store.key_meta(&a.ns, &a.key)?;
                let now = session.now;
                serde_json::to_value(JsonKey {
                    namespace: &a.ns,
                    key: &a.key,
                    value: shown_value(&a.ns, &a.key, e, store.keyring())?,
                    sensitive: secret,
                    version: e.version,
                    created_at: first.map(|r| crate::clock::format_time(r.created_at)),
                    updated_at: crate::clock::format_time(e.created_at),
                    ttl: e.ttl,
                    expires_at: e.expires_at().map(crate::clock::format_time),
                    expired: e.is_expired(now),
                    serial: e.serial,
                    writer: &e.writer,
                    kv_type: meta.as_ref().map(|m| m.kv_type).unwrap_or_default(),
                    description: meta.map(|m| m.description).unwrap_or_default(),
                })?
            }
        };
        ctx.printer.out(&serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    match live {
        Some(e) => {
            expiry_notice(ctx, &a.ns, &a.key, &e, session.now);
            let shown = shown_value(&a.ns, &a.key, &e, store.keyring())?;
            if secret && !a.reveal {
                ctx.printer.info("(a secret: pass --reveal to print its value)");
            }
            ctx.printer.out(&format!("{shown}\n"));
        }
        None if a.error_on_missing => bail!("{} {} does not exist (or was deleted)", a.ns, a.key),
        None => {}
    }
    Ok(ExitCode::SUCCESS)
}

/// `kv get --version N`: one kept version, as `kv get` prints the current one.
fn get_version(ctx: &Context, a: &GetArgs, store: &crate::state::StateStore, n: u64) -> anyhow::Result<ExitCode> {
    let rows = store.history(&a.ns, &a.key)?;
    let Some(r) = crate::ops::version_of(rows, n) else {
        return Err(crate::ops::OpError::NoVersion { ns: a.ns.clone(), key: a.key.clone(), version: n }.into());
    };
    if r.deleted {
        bail!(
            "{} {} version {n} is a deletion (no value)\n  help: `kvform kv history {} {}` lists the versions",
            a.ns,
            a.key,
            a.ns,
            a.key
        );
    }
    let e = Entry {
        value: r.value.clone(),
        version: r.version,
        deleted: false,
        ttl: r.ttl,
        created_at: r.created_at,
        serial: r.serial,
        writer: r.writer.clone(),
    };
    let secret = is_secret_key(&a.ns, &a.key);
    let value = shown_value(&a.ns, &a.key, &e, store.keyring())?;
    if a.format == GetFormat::Json {
        let shown = JsonKey {
            namespace: &a.ns,
            key: &a.key,
            value,
            sensitive: secret,
            version: r.version,
            created_at: None,
            updated_at: crate::clock::format_time(r.created_at),
            ttl: r.ttl,
            expires_at: e.expires_at().map(crate::clock::format_time),
            expired: false,
            serial: r.serial,
            writer: &r.writer,
            kv_type: r.kv_type,
            description: r.description.clone(),
        };
        ctx.printer.out(&serde_json::to_string_pretty(&shown)?);
        return Ok(ExitCode::SUCCESS);
    }
    if secret && !a.reveal {
        ctx.printer.info("(a secret: pass --reveal to print its value)");
    }
    ctx.printer.out(&format!("{value}\n"));
    Ok(ExitCode::SUCCESS)
}
