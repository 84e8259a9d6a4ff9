//! Reading one key (`kvform kv get` and `kvform cat kv get`), and the namespace and key
//! checks every single-key command shares.

use super::Context;
use super::output::shown_value;
use super::session::Session;
use crate::kv::{Entry, NamespaceKind, is_secret_namespace};
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

/// `^[A-Za-z0-9][A-Za-z0-9._/-]*$`, plus `_` (workspace keys such as `worker_ip` use it).
pub(super) fn check_key(key: &str) -> anyhow::Result<()> {
    let mut chars = key.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-'));
    if !ok {
        bail!(
            "invalid key {key:?}\n  help: a key starts with a letter or digit and uses only letters, digits, `.`, `_`, `/`, `-`"
        );
    }
    Ok(())
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
    let secret = is_secret_namespace(&a.ns);
    let session = Session::new(ctx)?;
    let store = if secret && a.reveal { session.open_state_with_keyring()? } else { session.open_state()? };
    match store.get(&a.ns, &a.key)?.filter(Entry::is_live) {
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
