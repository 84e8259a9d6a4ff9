//! `kvform kv get|set|delete|keys|history`: single keys, by an operator.
//!
//! Writes go only to namespaces the ownership table opens to outside writers
//! (`vars/job/<job>`, `secrets/job/<job>`); each write is its own change set (serial + 1)
//! by `<user>@<host>` (the writer of its version and the actor of its audit record), waiting up to `--lock-timeout` (default 30s) for a running
//! kvform. Secret values are read from stdin (`-`) so they never appear in process
//! arguments.

use super::Context;
use super::keys::{GetArgs, check_key, get, namespace};
use super::output::{Format, shown_value, table};
use super::session::{DEFAULT_LOCK_TIMEOUT, Session, cli_actor, lock_timeout, parse_duration};
use crate::kv::{Entry, ExternalWrites, is_secret_key};
use anyhow::bail;
use std::io::Read;
use std::process::ExitCode;

/// Read and write single keys of the state.
///
/// Examples:
///   kvform kv get vars/job/api db_host
///   kvform kv set vars/job/api feature_flag on --ttl 1h
///   printf %s "$TOKEN" | kvform kv set secrets/job/api token -
///   kvform kv delete vars/job/api feature_flag
///   kvform kv keys vars/job/api --prefix db_
///   kvform kv history vars/job/api db_host
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: KvCommand,
}

#[derive(clap::Subcommand, Debug)]
enum KvCommand {
    /// Print a key's value. A missing or deleted key prints nothing (exit 0) unless
    /// --error-on-missing.
    #[command(after_help = "Examples:\n  kvform kv get vars/job/api db_host\n  \
kvform kv get secrets/job/api token --reveal --error-on-missing")]
    Get(GetArgs),
    /// Write a key (a new version) in vars/job/<job> or secrets/job/<job>.
    #[command(after_help = "Examples:\n  kvform kv set vars/job/api db_host 10.0.0.5\n  \
kvform kv set vars/job/api maintenance on --ttl 2h --no-overwrite\n  \
printf %s \"$TOKEN\" | kvform kv set secrets/job/api token -")]
    Set(SetArgs),
    /// Delete a key (writes a tombstone version; history is kept).
    #[command(after_help = "Example:\n  kvform kv delete vars/job/api maintenance")]
    Delete(DeleteArgs),
    /// Write an earlier version again as a new version (undeletes a deleted key).
    #[command(after_help = "Examples:\n  kvform kv history vars/job/api db_host\n  \
kvform kv restore vars/job/api db_host 2\n  kvform kv restore vars/job/api db_host 2 --cas 5")]
    Restore(RestoreArgs),
    /// List the live keys of a namespace, sorted.
    #[command(after_help = "Example:\n  kvform kv keys vars/job/api --prefix db_")]
    Keys(KeysArgs),
    /// List a key's kept versions with time, serial and writer.
    #[command(after_help = "Example:\n  kvform kv history vars/job/api db_host")]
    History(HistoryArgs),
}

#[derive(clap::Args, Debug)]
struct SetArgs {
    /// vars/job/<job> or secrets/job/<job>.
    ns: String,
    /// Letters, digits, `.`, `_`, `/`, `-`; starts with a letter or digit.
    key: String,
    /// The value, or `-` to read it from stdin (required for secrets). Surrounding
    /// whitespace is trimmed.
    value: String,
    /// Expire after this long from now: seconds (3600), 1h, 30m, 7d or ISO 8601 (P30D). The
    /// next plan tombstones an expired key. 0 = never. Omitted: the key keeps its expiry (a
    /// new key never expires).
    #[arg(long, value_name = "DURATION")]
    ttl: Option<String>,
    /// Fail if the key already exists (and is not deleted).
    #[arg(long)]
    no_overwrite: bool,
    /// Store encrypted; implied by secrets/job/<job>, refused elsewhere.
    #[arg(long)]
    secret: bool,
    /// The value's type, checked before anything is written: string, number, boolean,
    /// datetime (RFC 3339), date, duration (ISO 8601) or json.
    /// Omitted: the key keeps its type (`string` for a new key).
    #[arg(long = "type", value_name = "TYPE", value_parser = parse_type)]
    kv_type: Option<crate::kv::KvType>,
    /// What the key is for (shown by `kv history`, `kv get --format json` and the web UI).
    /// Omitted: the key keeps its description.
    #[arg(long)]
    description: Option<String>,
    /// Compare-and-set: write only if the key's live version is N (0 = only if it does not
    /// exist); otherwise fail, naming the current version.
    #[arg(long, value_name = "N")]
    cas: Option<u64>,
    /// Wait this long for a running kvform to finish (0 = fail at once).
    #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    lock_timeout: String,
}

#[derive(clap::Args, Debug)]
struct DeleteArgs {
    /// vars/job/<job> or secrets/job/<job>.
    ns: String,
    /// Key to tombstone (its history is kept).
    key: String,
    /// Exit 1 when the key is missing or already deleted.
    #[arg(long)]
    error_on_missing: bool,
    /// Compare-and-set: delete only if the key's live version is N.
    #[arg(long, value_name = "N")]
    cas: Option<u64>,
    /// Wait this long for a running kvform to finish (0 = fail at once).
    #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    lock_timeout: String,
}

#[derive(clap::Args, Debug)]
struct RestoreArgs {
    /// vars/job/<job> or secrets/job/<job>.
    ns: String,
    key: String,
    /// The version to write again (its value, type and description) as a new version; also
    /// undeletes a deleted key.
    version: u64,
    /// Compare-and-set: restore only if the key's live version is N (0 = only if deleted).
    #[arg(long, value_name = "N")]
    cas: Option<u64>,
    /// Wait this long for a running kvform to finish (0 = fail at once).
    #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
    lock_timeout: String,
}

#[derive(clap::Args, Debug)]
struct KeysArgs {
    /// Namespace, e.g. vars/job/api.
    ns: String,
    /// Only keys starting with this.
    #[arg(long, default_value = "")]
    prefix: String,
}

#[derive(clap::Args, Debug)]
struct HistoryArgs {
    /// Namespace, e.g. vars/job/api.
    ns: String,
    /// Key within the namespace.
    key: String,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Print secret values in clear text instead of (sensitive).
    #[arg(long)]
    reveal: bool,
}

/// One version in `kv history --format json`; times RFC 3339 UTC, as `cat kv` prints them.
#[derive(serde::Serialize)]
struct JsonVersion<'a> {
    namespace: &'a str,
    key: &'a str,
    version: u64,
    value: &'a str,
    deleted: bool,
    ttl: u64,
    created_at: String,
    expires_at: Option<String>,
    serial: u64,
    writer: &'a str,
    #[serde(rename = "type")]
    kv_type: crate::kv::KvType,
    description: &'a str,
}

impl<'a> From<&'a crate::state::VersionRow> for JsonVersion<'a> {
    fn from(r: &'a crate::state::VersionRow) -> Self {
        JsonVersion {
            namespace: &r.namespace,
            key: &r.key,
            version: r.version,
            value: &r.value,
            deleted: r.deleted,
            ttl: r.ttl,
            created_at: crate::clock::format_time(r.created_at),
            expires_at: (r.ttl > 0).then(|| crate::clock::format_time(r.created_at.saturating_add(r.ttl as i64))),
            serial: r.serial,
            writer: &r.writer,
            kv_type: r.kv_type,
            description: &r.description,
        }
    }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    match args.command {
        KvCommand::Get(a) => get(ctx, a),
        KvCommand::Set(a) => set(ctx, a),
        KvCommand::Delete(a) => delete(ctx, a),
        KvCommand::Restore(a) => restore(ctx, a),
        KvCommand::Keys(a) => keys(ctx, a),
        KvCommand::History(a) => history(ctx, a),
    }
}

/// The namespace, which must accept operator writes.
fn writable(ns: &str) -> anyhow::Result<ExternalWrites> {
    Ok(crate::kv::rules::writable(ns)?)
}

fn job_in_workspace(b: &crate::bucket::Bucket, ns: &str) -> anyhow::Result<()> {
    Ok(crate::kv::rules::job_in_workspace(b, ns)?)
}

fn parse_type(s: &str) -> Result<crate::kv::KvType, String> {
    crate::kv::KvType::parse(s).ok_or_else(|| format!("unknown type {s:?}; use one of {}", crate::kv::KvType::names()))
}
fn set(ctx: &Context, a: SetArgs) -> anyhow::Result<ExitCode> {
    let kind = writable(&a.ns)?;
    check_key(&a.key)?;
    let ttl = a.ttl.as_deref().map(|t| parse_duration("--ttl", t)).transpose()?;
    if let Some(ttl) = ttl {
        crate::kv::validate::check_ttl(ttl).map_err(|e| anyhow::anyhow!(e.message))?;
    }
    let timeout = lock_timeout(&a.lock_timeout)?;
    match kind {
        ExternalWrites::Plain if a.secret => bail!(
            "--secret writes go to secrets/job/<job>, not {}\n  help: kvform kv set secrets/job/<job> {} - --secret",
            a.ns,
            a.key
        ),
        ExternalWrites::Encrypted if a.value != "-" => bail!(
            "refusing a secret value on the command line (it would show in the process list and shell history)\n  \
help: pass it on stdin: printf %s \"$VALUE\" | kvform kv set {} {} -",
            a.ns,
            a.key
        ),
        _ => {}
    }
    let value = if a.value == "-" {
        let mut s = zeroize::Zeroizing::new(String::new());
        std::io::stdin().read_to_string(&mut s)?;
        s
    } else {
        zeroize::Zeroizing::new(a.value.clone())
    };
    // The one write validation (SPEC §4), the same as the hook API's and `kvform serve`'s,
    // before the lock (the operation checks again with what the key keeps).
    let description = a.description.clone().unwrap_or_default();
    crate::kv::validate::check_write(
        &a.ns,
        &a.key,
        &value,
        a.kv_type.unwrap_or_default(),
        ttl.unwrap_or(0),
        &description,
    )
    .map_err(|e| anyhow::anyhow!(e.message))?;
    let session = Session::new(ctx)?;
    let store =
        if kind == ExternalWrites::Encrypted { session.open_state_with_keyring()? } else { session.open_state()? };
    job_in_workspace(&session.bucket, &a.ns)?;
    let now = session.now;
    let mut txn = session.begin_write(store, "kv set", timeout)?;
    if a.no_overwrite
        && let Some(e) = txn.get(&a.ns, &a.key)?.filter(Entry::is_live)
    {
        bail!("{} {} already exists (version {}); drop --no-overwrite to replace it", a.ns, a.key, e.version);
    }
    let change = crate::ops::Change {
        value: Some(value),
        kv_type: a.kv_type,
        description: a.description.clone(),
        ttl,
        cas: a.cas,
    };
    let actor = cli_actor();
    let outcome = crate::ops::put(&mut txn, &a.ns, &a.key, &change, &actor, now)?;
    let serial = txn.commit(actor.record("kv set", now))?;
    if let Some(at) = crate::workspace::declared_var(&session.bucket.root, &a.ns, &a.key) {
        ctx.printer.warn(&crate::workspace::declared_warning(&a.ns, &a.key, &at));
    }
    if outcome.changed() {
        ctx.printer.info(&format!("{} {}: version {} (serial {serial})", a.ns, a.key, outcome.version()));
    } else {
        ctx.printer.info(&format!("{} {}: unchanged (version {})", a.ns, a.key, outcome.version()));
    }
    Ok(ExitCode::SUCCESS)
}

fn delete(ctx: &Context, a: DeleteArgs) -> anyhow::Result<ExitCode> {
    writable(&a.ns)?;
    crate::kv::validate::check_delete(&a.ns, &a.key).map_err(|e| anyhow::anyhow!(e.message))?;
    let timeout = lock_timeout(&a.lock_timeout)?;
    let session = Session::new(ctx)?;
    let store = session.open_state()?;
    let now = session.now;
    let mut txn = session.begin_write(store, "kv delete", timeout)?;
    let actor = cli_actor();
    let deleted = crate::ops::delete(&mut txn, &a.ns, &a.key, a.cas, &actor, now)?;
    if !deleted {
        txn.rollback()?;
        if a.error_on_missing {
            bail!("{} {} does not exist (or was already deleted)", a.ns, a.key);
        }
        ctx.printer.info(&format!("{} {}: not present, nothing to delete", a.ns, a.key));
        return Ok(ExitCode::SUCCESS);
    }
    let serial = txn.commit(actor.record("kv delete", now))?;
    if let Some(at) = crate::workspace::declared_var(&session.bucket.root, &a.ns, &a.key) {
        ctx.printer.warn(&crate::workspace::declared_delete_warning(&a.ns, &a.key, &at));
    }
    ctx.printer.info(&format!("{} {}: deleted (serial {serial})", a.ns, a.key));
    Ok(ExitCode::SUCCESS)
}

fn restore(ctx: &Context, a: RestoreArgs) -> anyhow::Result<ExitCode> {
    let kind = writable(&a.ns)?;
    check_key(&a.key)?;
    let timeout = lock_timeout(&a.lock_timeout)?;
    let session = Session::new(ctx)?;
    let store =
        if kind == ExternalWrites::Encrypted { session.open_state_with_keyring()? } else { session.open_state()? };
    job_in_workspace(&session.bucket, &a.ns)?;
    let now = session.now;
    let mut txn = session.begin_write(store, "kv restore", timeout)?;
    let actor = cli_actor();
    let outcome = crate::ops::restore(&mut txn, &a.ns, &a.key, a.version, a.cas, &actor, now)?;
    let serial = txn.commit(actor.record("kv restore", now))?;
    if let Some(at) = crate::workspace::declared_var(&session.bucket.root, &a.ns, &a.key) {
        ctx.printer.warn(&crate::workspace::declared_warning(&a.ns, &a.key, &at));
    }
    if outcome.changed() {
        ctx.printer.info(&format!(
            "{} {}: version {} restored as version {} (serial {serial})",
            a.ns,
            a.key,
            a.version,
            outcome.version()
        ));
    } else {
        ctx.printer.info(&format!(
            "{} {}: already holds version {}'s value (version {})",
            a.ns,
            a.key,
            a.version,
            outcome.version()
        ));
    }
    Ok(ExitCode::SUCCESS)
}

fn keys(ctx: &Context, a: KeysArgs) -> anyhow::Result<ExitCode> {
    namespace(&a.ns)?;
    let store = Session::new(ctx)?.open_state()?;
    let snap = store.snapshot_with_derived()?;
    let mut out = String::new();
    for (k, _) in snap.live(&a.ns).filter(|(k, _)| k.starts_with(&a.prefix)) {
        out.push_str(k);
        out.push('\n');
    }
    ctx.printer.out(&out);
    Ok(ExitCode::SUCCESS)
}

fn history(ctx: &Context, a: HistoryArgs) -> anyhow::Result<ExitCode> {
    namespace(&a.ns)?;
    check_key(&a.key)?;
    let secret = is_secret_key(&a.ns, &a.key);
    let session = Session::new(ctx)?;
    let store = if secret && a.reveal { session.open_state_with_keyring()? } else { session.open_state()? };
    if let Some(d) = crate::kv::derived::derivation(&a.ns, &a.key) {
        // No rows to show: say where the value comes from, whose history is the key's.
        match a.format {
            Format::Json => ctx.printer.out("[]\n"),
            Format::Table => ctx.printer.out(&format!(
                "{} {} is derived from {} when read: it has no versions of its own\n  see `kvform kv history {} {}`\n",
                a.ns,
                a.key,
                d.source(),
                d.source_namespace,
                d.source_key
            )),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let rows = store.history(&a.ns, &a.key)?;
    if rows.is_empty() {
        bail!("{} {} has no versions", a.ns, a.key);
    }
    let ring = if a.reveal { store.keyring() } else { None };
    let mut shown = Vec::with_capacity(rows.len());
    for r in rows {
        let e = Entry {
            value: r.value.clone(),
            version: r.version,
            deleted: r.deleted,
            ttl: r.ttl,
            created_at: r.created_at,
            serial: r.serial,
            writer: r.writer.clone(),
        };
        let value = shown_value(&a.ns, &a.key, &e, ring)?;
        shown.push(crate::state::VersionRow { value, ..r });
    }
    match a.format {
        Format::Json => {
            let rows: Vec<JsonVersion> = shown.iter().map(JsonVersion::from).collect();
            ctx.printer.out(&serde_json::to_string_pretty(&rows)?)
        }
        Format::Table => {
            let mut t =
                vec![["VERSION", "TIME", "SERIAL", "WRITER", "TTL", "TYPE", "VALUE", "DESCRIPTION"].map(String::from)];
            for r in &shown {
                t.push([
                    r.version.to_string(),
                    crate::clock::format_time(r.created_at),
                    r.serial.to_string(),
                    r.writer.clone(),
                    if r.ttl == 0 { String::new() } else { format!("{}s", r.ttl) },
                    r.kv_type.to_string(),
                    if r.deleted { "(deleted)".into() } else { r.value.clone() },
                    r.description.clone(),
                ]);
            }
            ctx.printer.out(&table(&t, &[true, false, true, false, true, false, false, false]));
        }
    }
    Ok(ExitCode::SUCCESS)
}
