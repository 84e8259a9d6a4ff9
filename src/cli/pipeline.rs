//! The one place the CLI goes workspace -> desired -> plan (used by `plan`, `apply`, `run`,
//! `health`):
//!
//! 1. [`load`]: the command's [`Session`] (bucket, `kvform.hcl`, `now`), then the workspace,
//!    loaded and validated with those settings; diagnostics (warnings too) go to stderr,
//!    errors fail the command (exit 1) before the state is touched.
//! 2. [`LoadedBucket::open_state`]: the state named by `kvform.hcl` `state { path }`, or
//!    `None` when the bucket has none yet.
//! 3. [`LoadedBucket::plan`] / [`LoadedBucket::plan_in`]: the state's rows without values
//!    (`read_for_plan_with`) -> `Prior::from_current` -> `model::desired` (model errors are
//!    rendered like workspace errors) -> the stored values compared with the desired ones
//!    -> `plan::diff` at the session's `now`; the plan's meta carries that `now` and the
//!    snapshot's lineage and serial, and [`Planned::digest`] the workspace digest a saved
//!    plan records. By default only the namespaces that may have changed since the last
//!    apply are read and compared, and only the jobs and workers whose inputs changed are
//!    projected (`crate::state::fingerprint`, `crate::kv::inputs`); `--refresh`
//!    ([`ReadMode::Full`]) projects and reads everything.
//! 4. [`load_for_hooks`]: the desired state against an existing state with its keyring, for
//!    the commands that run hooks by hand (`run`, `health`).
//!    Values are never all held in memory (see `crate::kv::current`).

use super::Context;
use super::session::Session;
use crate::diag::suggest::hint_or_list;
use crate::diag::{Diagnostics, SourceMap};
use crate::hooks::runner::HookOutcome;
use crate::kv::{Current, LeanSnapshot};
use crate::model::catalog;
use crate::model::types::{Desired, Prior};
use crate::plan::{Plan, PlanOptions};
use crate::secrets::Keyring;
use crate::state::{PlanBasis, PlanRead, ReadMode, Skip, StateStore, WriteTxn};
use crate::workspace::types::{Settings, Workspace};
use anyhow::{Context as _, bail};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// A bucket whose workspace loaded without errors.
pub struct LoadedBucket {
    pub session: Session,
    pub workspace: Workspace,
    /// Sources of the workspace files, to render model diagnostics that point into them.
    pub sources: SourceMap,
    /// `--target JOB`: plans are narrowed to these jobs (`plan::target`); empty = all.
    pub targets: Vec<String>,
    /// Diagnostics reported so far as JSON (the load's warnings, then a failed model or CA
    /// check's), for `plan --json`.
    pub reported: std::cell::RefCell<Vec<serde_json::Value>>,
    /// `plan::workspace_digest`, taken before the workspace was read (so a file changed
    /// meanwhile makes the digest older, never newer, than what was loaded); `None` when a
    /// file could not be read for it.
    digest: Option<String>,
}

/// The desired state and the plan computed from one snapshot.
pub struct Planned {
    /// `None` when the state shows nothing can have changed since the last apply: the plan
    /// is empty and was made without building the desired state (`crate::state::fingerprint`).
    pub desired: Option<Desired>,
    pub plan: Plan,
    /// `plan::workspace_digest` of the bucket (for saved plans).
    pub digest: String,
    /// What the plan read, for the apply to record (`crate::state::fingerprint`).
    pub basis: PlanBasis,
}

/// `--purge-secrets-kv` purges by a rule the fingerprints do not see: such plans read all.
fn effective(mode: ReadMode, opts: &PlanOptions) -> ReadMode {
    if opts.purge_secrets_kv { ReadMode::Full } else { mode }
}

/// The namespaces a plan must read even when their fingerprint matches: the ones it purges,
/// and the allocations that hold certificates (their PEM is not in the desired keys the
/// fingerprint covers, and whether one is due for renewal depends on `now`).
fn purged(desired: &Desired, snap: &LeanSnapshot, opts: &PlanOptions) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = crate::plan::diff::purge_reasons(desired, snap, opts).into_keys().collect();
    out.extend(desired.certs.certs.iter().map(|c| c.namespace.clone()));
    // Without the CA files, certificates are checked against the state's CA certificate.
    if desired.certs.ca_pem.is_none() && !desired.certs.certs.is_empty() {
        out.insert(crate::kv::NamespaceKind::Workers.path());
    }
    out
}

/// `--refresh` (`plan`, `apply`) as a read mode: every key of the state, or only the
/// namespaces that may have changed since the last apply.
pub(super) fn read_mode(refresh: bool) -> crate::state::ReadMode {
    if refresh { crate::state::ReadMode::Full } else { crate::state::ReadMode::Incremental }
}

/// Find the bucket and load its workspace; render diagnostics to stderr; fail on errors.
pub fn load(ctx: &Context) -> anyhow::Result<LoadedBucket> {
    let session = Session::new(ctx)?;
    // Taken before the workspace is read, so a file changed meanwhile makes the digest
    // older, never newer, than what was loaded.
    let digest = super::plan_files::workspace_digest(&session.bucket.root, session.settings.max_file_size).ok();
    let loaded = crate::workspace::load_with_settings(&session.bucket.root, &session.settings);
    if let Err(e) = report(ctx, &loaded.diagnostics, &loaded.sources) {
        let json = crate::diag::json::diagnostics(&loaded.diagnostics, &loaded.sources);
        return Err(anyhow::Error::new(Reported { message: format!("{e:#}"), diagnostics: json }));
    }
    let warnings = crate::diag::json::diagnostics(&loaded.diagnostics, &loaded.sources);
    let workspace = loaded.workspace.expect("a workspace without errors loads");
    Ok(LoadedBucket {
        session,
        workspace,
        sources: loaded.sources,
        targets: Vec::new(),
        digest,
        reported: std::cell::RefCell::new(warnings),
    })
}

/// The diagnostics a failed load or plan reported, as JSON (`crate::diag::json`), carried in
/// the error's context so `plan --json` can print them on stdout.
/// The error shows as `message`, like the error it replaces.
#[derive(Debug)]
pub struct Reported {
    pub message: String,
    pub diagnostics: Vec<serde_json::Value>,
}

impl std::fmt::Display for Reported {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Reported {}

/// The diagnostics an error carries ([`Reported`]), or `reported` (what a plan had reported
/// when it failed) and the error itself as one more diagnostic.
pub fn diagnostics_of(e: &anyhow::Error, reported: Vec<serde_json::Value>) -> Vec<serde_json::Value> {
    match e.downcast_ref::<Reported>() {
        Some(r) => r.diagnostics.clone(),
        None => {
            let mut out = reported;
            out.push(crate::diag::json::message(crate::diag::Severity::Error, &format!("{e:#}")));
            out
        }
    }
}

/// Print diagnostics to stderr; an error when any of them is one.
fn report(ctx: &Context, diags: &Diagnostics, sources: &SourceMap) -> anyhow::Result<()> {
    ctx.printer.raw_stderr(&diags.render(sources, ctx.printer.color_stderr()));
    if diags.has_errors() {
        let (e, w) = (diags.error_count(), diags.warning_count());
        bail!(
            "the workspace has {e} error{} and {w} warning{}; the state was not touched\n  help: fix the errors above (`kvform validate` checks the workspace alone)",
            if e == 1 { "" } else { "s" },
            if w == 1 { "" } else { "s" },
        );
    }
    Ok(())
}

impl LoadedBucket {
    pub fn settings(&self) -> &Settings {
        &self.session.settings
    }

    /// The state file (`kvform.hcl` `state { path }`, relative to the bucket root).
    pub fn state_file(&self) -> PathBuf {
        self.session.state_file()
    }

    /// The bucket's state, or `None` when it has none yet (no keyring attached).
    pub fn open_state(&self) -> anyhow::Result<Option<StateStore>> {
        self.session.open_state_if_any()
    }

    /// Create the state (and the key, if missing) of a bucket that has none: what `apply`
    /// does on a fresh bucket. Reports what it created on stderr; the returned [`Created`]
    /// can take it back when the operator then declines the plan.
    pub fn create_state(&mut self, ctx: &Context) -> anyhow::Result<(StateStore, Created)> {
        let key = Keyring::create(&self.session.bucket)?;
        let bucket = &self.session.bucket;
        if key {
            ctx.printer.info(&format!("Created the secret key {}", bucket.key_file().display()));
        }
        let path = self.state_file();
        let (store, _, _) = self.session.state_location().init(self.session.now)?;
        ctx.printer.info(&format!("Created the state {} (the bucket had none)", path.display()));
        let key = key.then(|| bucket.key_file());
        let ca = self.create_ca(ctx, &store)?;
        Ok((store, Created { state: path, key, ca }))
    }

    /// The bucket CA, made with the state as `kvform init` would (CN = the new bucket id),
    /// and read into the workspace so the plan can issue certificates. The CA files when
    /// they were created here.
    fn create_ca(&mut self, ctx: &Context, store: &StateStore) -> anyhow::Result<Vec<PathBuf>> {
        let id = store.meta()?.bucket_id.to_string();
        let bucket = &self.session.bucket;
        let made = crate::certs::ca::ensure(bucket, &id, self.session.now)?;
        let crt = crate::certs::ca::cert_file(bucket);
        if made {
            ctx.printer.info(&format!("Created the bucket CA {}", crt.display()));
        }
        let pem = std::fs::read_to_string(&crt).with_context(|| format!("cannot read {}", crt.display()))?;
        let made_files = if made { vec![crt, crate::certs::ca::key_file(bucket)] } else { Vec::new() };
        self.workspace.ca = Some(crate::workspace::types::CaCert { pem: pem.trim().to_string() });
        Ok(made_files)
    }

    /// The bucket's keyring (`secrets/kv.key`); fails with "run `kvform init`" when missing.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        self.session.keyring()
    }

    /// Open the state with the keyring and take the write lock (`operation` names the
    /// holder in lock errors); `max_versions` from `kvform.hcl`.
    pub fn begin_write(&self, store: StateStore, operation: &str, lock_timeout: Duration) -> anyhow::Result<WriteTxn> {
        self.session.begin_write(store.with_keyring(self.keyring()?), operation, lock_timeout)
    }

    /// The desired state against `snap` (model errors rendered to stderr, then an error).
    /// `store`: the state the scrape templates read (`None`: an empty one).
    pub fn desired(&self, ctx: &Context, snap: &impl Current, store: Option<&StateStore>) -> anyhow::Result<Desired> {
        let values = self.scrape_state(store.map(StateSource::Store))?;
        self.desired_with(ctx, snap, &crate::model::project::project_all, &values)
    }

    /// [`Self::desired`] leaving out the units `skip` accepts (`crate::model::desired_with`).
    /// A job's `_prometheus/scrape.yaml.tpl` is rendered against the desired state built
    /// without it and the state's `values` (maand renders it after syncing the build's
    /// variables), then the model runs again with the rendered scrape files.
    fn desired_with(
        &self,
        ctx: &Context,
        snap: &impl Current,
        skip: Skip<'_>,
        values: &catalog::StateValues,
    ) -> anyhow::Result<Desired> {
        let prior = Prior::from_current(snap);
        let first = self.model(ctx, &self.workspace, &prior, skip)?;
        if !self.workspace.jobs.values().any(|j| j.scrape_template.is_some()) {
            return Ok(first);
        }
        let rendered = match catalog::render_scrape_templates(&self.workspace, &first, values) {
            Ok(r) => r,
            Err(errors) => {
                // Each at its place in the template, on stderr and in `plan -json`'s diagnostics.
                let (mut diags, mut sources) = (Diagnostics::new(), SourceMap::new());
                for e in &errors {
                    let t = self
                        .workspace
                        .jobs
                        .values()
                        .filter_map(|j| j.scrape_template.as_ref())
                        .find(|t| t.shown == e.file);
                    diags.push(match t {
                        Some(t) => {
                            crate::workspace::scrape::template_error(t, &e.message, SCRAPE_TEMPLATE_HELP, &mut sources)
                        }
                        None => crate::diag::Diagnostic::error(e.to_string()).help(SCRAPE_TEMPLATE_HELP),
                    });
                }
                diags.sort(&sources);
                self.reported.borrow_mut().extend(crate::diag::json::diagnostics(&diags, &sources));
                ctx.printer.raw_stderr(&diags.render(&sources, ctx.printer.color_stderr()));
                bail!(
                    "{} scrape template{} did not render; the state was not touched",
                    errors.len(),
                    if errors.len() == 1 { "" } else { "s" }
                );
            }
        };
        let mut ws = self.workspace.clone();
        let mut secrets = Vec::new();
        for (job, r) in &rendered {
            let Some(j) = ws.jobs.get_mut(job) else { continue };
            let Some(t) = j.scrape_template.clone() else { continue };
            let mut found = Diagnostics::new();
            let mut sources = SourceMap::new();
            j.scrape = crate::workspace::scrape::parse_rendered(&t, &r.text, &j.ports, &mut sources, &mut found);
            if found.has_errors() {
                // Shown with the secrets it read masked: the diagnostics quote the text.
                let (mut diags, mut sources) = (Diagnostics::new(), SourceMap::new());
                crate::workspace::scrape::parse_rendered(&t, &r.masked(), &j.ports, &mut sources, &mut diags);
                diags.sort(&sources);
                self.reported.borrow_mut().extend(crate::diag::json::diagnostics(&diags, &sources));
                // Not `report`: `kvform validate` does not render templates, so its help would mislead.
                ctx.printer.raw_stderr(&diags.render(&sources, ctx.printer.color_stderr()));
                bail!(
                    "the rendered {} is not a valid scrape file\n  help: `kvform render` shows job templates; \
                     fix the template so it renders a YAML list of scrape configs",
                    t.shown
                );
            }
            secrets.extend(r.secrets.iter().cloned());
        }
        let mut desired = self.model(ctx, &ws, &prior, skip)?;
        desired.sensitive = catalog::sensitive_keys(&desired.kv, &secrets);
        Ok(desired)
    }

    /// `crate::model::desired_with`, its errors rendered to stderr.
    fn model(&self, ctx: &Context, ws: &Workspace, prior: &Prior, skip: Skip<'_>) -> anyhow::Result<Desired> {
        // Certificates need the bucket CA; the workspace alone is valid without one (it is
        // bucket state, like data/: `kvform init` or the first `apply` makes it). Whether a
        // plan without it can go on is decided with the state (`Self::check_ca`).
        match crate::model::desired_with(ws, prior, skip) {
            Ok(d) => Ok(d),
            Err(mut diags) => {
                diags.sort(&self.sources);
                self.reported.borrow_mut().extend(crate::diag::json::diagnostics(&diags, &self.sources));
                report(ctx, &diags, &self.sources)?;
                bail!("the model rejected the workspace")
            }
        }
    }

    /// The state's values the scrape templates may read (nothing read when no job has one).
    /// Read before the plan's own read: the model reads no state.
    fn scrape_state(&self, source: Option<StateSource<'_>>) -> anyhow::Result<catalog::StateValues> {
        let upstreams: BTreeMap<String, Vec<String>> = self
            .workspace
            .jobs
            .values()
            .map(|j| {
                let mut up: Vec<String> =
                    j.commands.values().filter_map(|c| c.demands.as_ref().map(|d| d.job.clone())).collect();
                up.sort();
                up.dedup();
                (j.name.clone(), up)
            })
            .collect();
        let namespaces = catalog::scrape_namespaces(&self.workspace, &upstreams);
        let mut out = catalog::StateValues::default();
        let Some(mut source) = source.filter(|_| !namespaces.is_empty()) else { return Ok(out) };
        let keyring = self.keyring().ok();
        let now = self.session.now;
        for ns in &namespaces {
            let secret = crate::kv::is_secret_namespace(ns);
            if secret && keyring.is_none() {
                out.secrets_unavailable =
                    Some(format!("{ns} cannot be read: the bucket key (secrets/kv.key) is missing on this machine"));
                continue;
            }
            let mut keys = BTreeMap::new();
            for (key, e) in source.entries(ns)? {
                if !e.is_live() || e.is_expired(now) {
                    continue;
                }
                let value = match &keyring {
                    Some(ring) if secret && !e.value.is_empty() => {
                        ring.open(ns, &key, e.version, &e.value).map_err(anyhow::Error::msg)?.to_string()
                    }
                    _ => e.value,
                };
                keys.insert(key, value);
            }
            out.values.insert(ns.clone(), keys);
        }
        Ok(out)
    }

    /// Desired state and plan against the bucket's state (`None`: it has none yet, so
    /// against an empty one) at the session's `now`. `mode`: read only what may have
    /// changed since the last apply, or everything (`--refresh`).
    pub fn plan(
        &self,
        ctx: &Context,
        store: Option<&StateStore>,
        opts: &PlanOptions,
        mode: ReadMode,
    ) -> anyhow::Result<Planned> {
        let now = self.session.now;
        let how = PlanRead { mode: effective(mode, opts), now, workspace_digest: self.unchanged_digest() };
        let values = self.scrape_state(store.map(StateSource::Store))?;
        let (snap, desired, basis) = match store {
            Some(store) => store.read_for_plan_with(
                how,
                |snap, skip| self.desired_with(ctx, snap, skip, &values),
                |d| (&d.kv, &d.kv_types, &d.units),
                |d, snap| purged(d, snap, opts),
            )?,
            None => {
                let snap = LeanSnapshot::default();
                let mut desired = self.desired(ctx, &snap, None)?;
                // `apply` makes the CA with the state: its certificate is known after apply.
                desired.certs.ca_pending = self.workspace.ca.is_none();
                (snap, Some(desired), PlanBasis::default())
            }
        };
        let mut desired = desired;
        if let (Some(d), Some(store)) = (desired.as_mut(), store) {
            self.check_cert_keys(d, &snap, |ns, key| store.get(ns, key))?;
        }
        self.finish_plan(ctx, snap, desired, basis, opts, now)
    }

    /// SPEC §8: a stored `certs/<name>.key` that does not unseal, parse or belong to its
    /// certificate (a tampered or damaged row) is re-issued. The plan holds no secrets, so
    /// the shell opens the keys the plan read (`snap`: every one on `--refresh`, else those
    /// written since the last apply) and hands the bad ones to it. Without `secrets/kv.key`
    /// (a CI runner) nothing can be opened and nothing is decided here.
    fn check_cert_keys(
        &self,
        desired: &mut Desired,
        snap: &LeanSnapshot,
        mut get: impl FnMut(&str, &str) -> Result<Option<crate::kv::Entry>, crate::state::StateError>,
    ) -> anyhow::Result<()> {
        use crate::kv::CurrentEntry;
        if desired.certs.certs.is_empty() {
            return Ok(());
        }
        let Ok(keyring) = self.keyring() else { return Ok(()) };
        let mut bad = BTreeSet::new();
        for c in &desired.certs.certs {
            let (key_key, crt_key) = (c.key_key(), c.crt_key());
            let live = |k: &str| snap.entries().get(&c.namespace).and_then(|m| m.get(k)).is_some_and(|e| e.is_live());
            if !live(&key_key) || !live(&crt_key) {
                continue;
            }
            let (Some(key), Some(crt)) = (get(&c.namespace, &key_key)?, get(&c.namespace, &crt_key)?) else { continue };
            let good = keyring
                .open(&c.namespace, &key_key, key.version, &key.value)
                .is_ok_and(|pem| crate::certs::inspect::key_matches_cert(&pem, &crt.value));
            if !good {
                bad.insert((c.namespace.clone(), key_key));
            }
        }
        desired.certs.unreadable_keys = bad;
        Ok(())
    }

    /// [`Self::plan`] inside the apply's write transaction.
    pub fn plan_in(
        &self,
        ctx: &Context,
        txn: &mut WriteTxn,
        opts: &PlanOptions,
        mode: ReadMode,
    ) -> anyhow::Result<Planned> {
        let now = self.session.now;
        let how = PlanRead { mode: effective(mode, opts), now, workspace_digest: self.unchanged_digest() };
        let values = self.scrape_state(Some(StateSource::Txn(txn)))?;
        let (snap, mut desired, basis) = txn.read_for_plan_with(
            how,
            |snap, skip| self.desired_with(ctx, snap, skip, &values),
            |d| (&d.kv, &d.kv_types, &d.units),
            |d, snap| purged(d, snap, opts),
        )?;
        if let Some(d) = desired.as_mut() {
            self.check_cert_keys(d, &snap, |ns, key| txn.get(ns, key))?;
        }
        self.finish_plan(ctx, snap, desired, basis, opts, now)
    }

    fn finish_plan(
        &self,
        ctx: &Context,
        snap: LeanSnapshot,
        desired: Option<Desired>,
        basis: PlanBasis,
        opts: &PlanOptions,
        now: i64,
    ) -> anyhow::Result<Planned> {
        let mut plan = match &desired {
            Some(d) => {
                let plan = crate::plan::diff(d, &snap, opts, now);
                self.check_ca(ctx, d, &snap, &plan)?;
                plan
            }
            None => crate::plan::Plan::no_changes(snap.lineage, snap.serial, opts, now),
        };
        let mut basis = basis;
        if !self.targets.is_empty() {
            let jobs = self.workspace.jobs.keys().cloned().collect();
            let ports = self
                .workspace
                .jobs
                .iter()
                .flat_map(|(job, j)| j.ports.iter().map(move |p| (p.name.clone(), job.clone())))
                .collect();
            plan = crate::plan::target::restrict(plan, &self.targets, &jobs, &ports)?;
            // A targeted apply leaves the other jobs' changes pending: it must not record
            // their namespaces as verified, or the next plan would skip them.
            basis = PlanBasis::default();
        }
        Ok(Planned { desired, plan, basis, digest: self.digest()? })
    }

    /// A plan made without the CA files (a CI runner) may not issue a certificate: it stops
    /// and names the missing files. Without a CA in the state either, declared certificates
    /// are an error at their declaration.
    fn check_ca(&self, ctx: &Context, desired: &Desired, snap: &LeanSnapshot, plan: &Plan) -> anyhow::Result<()> {
        let certs = &desired.certs;
        if certs.ca_pem.is_some() || certs.ca_pending || certs.certs.is_empty() {
            return Ok(());
        }
        let workers = crate::kv::NamespaceKind::Workers.path();
        let stored = snap
            .entries()
            .get(&workers)
            .and_then(|m| m.get(crate::plan::diff::CA_KEY))
            .is_some_and(crate::kv::CurrentEntry::is_live);
        if !stored {
            let mut no_ca = Diagnostics::new();
            crate::workspace::ca::check_declared(&self.workspace.jobs, None, &mut no_ca);
            self.reported.borrow_mut().extend(crate::diag::json::diagnostics(&no_ca, &self.sources));
            return report(ctx, &no_ca, &self.sources);
        }
        let issued: Vec<String> = plan
            .changes
            .iter()
            .filter(|c| c.after_unknown && c.key.ends_with(".crt"))
            .map(|c| format!("`{}` `{}` ({})", c.namespace, c.key, c.reason.as_deref().unwrap_or("issue")))
            .collect();
        if issued.is_empty() {
            return Ok(());
        }
        let more = if issued.len() > 3 { format!(" and {} more", issued.len() - 3) } else { String::new() };
        bail!(
            "this plan must issue {} certificate{} ({}{more}), but secrets/ca.crt and secrets/ca.key are missing on this machine\n  help: copy both files (mode 0600) from the machine that made the bucket, or run this plan there; the CA certificate in the state was not touched",
            issued.len(),
            if issued.len() == 1 { "" } else { "s" },
            issued.iter().take(3).cloned().collect::<Vec<_>>().join(", "),
        )
    }

    /// Terraform's warning about partial plans, when `--target` is in effect.
    pub fn warn_if_targeted(&self, ctx: &Context) {
        if self.targets.is_empty() {
            return;
        }
        ctx.printer.warn(&format!(
            "resource targeting is in effect: this plan covers only the job(s) {} and the bucket-level changes \
they depend on, so it may not show every change the workspace asks for.\n  \
--target is not for routine use: it is for exceptional situations such as recovering from errors or \
mistakes. Run `kvform plan` without it afterwards to see what is still pending.",
            self.targets.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")
        ));
    }

    /// The digest that lets a plan skip projecting an unchanged workspace, or `None` when it
    /// must not: certificates fall due for renewal with time alone, so a workspace that
    /// declares any is projected (and its certificate namespaces read) on every plan.
    fn unchanged_digest(&self) -> Option<&str> {
        if self.workspace.jobs.values().any(|j| !j.certs.is_empty()) { None } else { self.digest.as_deref() }
    }

    /// The workspace digest saved plans carry.
    pub fn digest(&self) -> anyhow::Result<String> {
        if let Some(d) = &self.digest {
            return Ok(d.clone());
        }
        super::plan_files::workspace_digest(&self.session.bucket.root, self.settings().max_file_size)
    }
}

/// What `run` and `health` need: the validated workspace's desired state against the
/// current state.
pub(super) struct Loaded {
    pub session: Session,
    pub desired: Desired,
    /// The state, with the bucket's keyring (hooks read their secrets).
    pub store: StateStore,
}

/// The shared pipeline (workspace -> desired) against an existing state.
pub(super) fn load_for_hooks(ctx: &Context) -> anyhow::Result<Loaded> {
    let loaded = load(ctx)?;
    let Some(store) = loaded.open_state()? else {
        bail!("no state at {}\n  help: run `kvform init` (or `kvform apply`) first", loaded.state_file().display());
    };
    let store = store.with_keyring(loaded.keyring()?);
    let desired = loaded.desired(ctx, &store.lean_snapshot()?, Some(&store))?;
    Ok(Loaded { session: loaded.session, desired, store })
}

/// The job, or an error naming the jobs that exist.
pub(super) fn check_job(desired: &Desired, job: &str) -> anyhow::Result<()> {
    if desired.jobs.contains_key(job) {
        return Ok(());
    }
    let hint = hint_or_list(job, desired.jobs.keys(), "jobs in the workspace");
    bail!("no job `{job}` in the workspace (workspace/jobs/{job}/manifest.json)\n  help: {hint}")
}

/// `0.12s`
pub(super) fn seconds(d: Duration) -> String {
    format!("{:.2}s", d.as_secs_f64())
}

/// Print every failed hook's output to stderr.
pub(super) fn print_failures(ctx: &Context, outcomes: &[HookOutcome]) {
    for o in outcomes.iter().filter(|o| !o.success()) {
        let mut text = format!("{}\n", o.summary());
        for line in &o.output {
            text.push_str(&format!("  {line}\n"));
        }
        if let Some(log) = &o.log_file {
            text.push_str(&format!("  (full output: {})\n", log.display()));
        }
        ctx.printer.raw_stderr(&text);
    }
}

/// Files an `apply` created on a fresh bucket, so a declined plan leaves nothing behind.
pub struct Created {
    state: PathBuf,
    key: Option<PathBuf>,
    ca: Vec<PathBuf>,
}

impl Created {
    /// Remove the state (with its WAL, shared-memory and lock files) and a key created with
    /// it. Call only after the state's connection and lock are gone.
    pub fn discard(self) {
        let mut files = vec![self.state.clone(), crate::state::lock::lock_path(&self.state)];
        for suffix in ["-wal", "-shm"] {
            let mut p = self.state.clone().into_os_string();
            p.push(suffix);
            files.push(PathBuf::from(p));
        }
        files.extend(self.key);
        files.extend(self.ca);
        for f in files {
            let _ = std::fs::remove_file(f);
        }
    }
}

/// What to do about a scrape template that did not render.
const SCRAPE_TEMPLATE_HELP: &str = "a scrape template is rendered when the catalog is built and reads the bucket's \
     namespaces, its job's and those of the jobs it demands; fix the template, or write the key it names";

/// Where [`LoadedBucket::scrape_state`] reads: the state, or the apply's write transaction.
enum StateSource<'a> {
    Store(&'a StateStore),
    Txn(&'a mut WriteTxn),
}

impl StateSource<'_> {
    /// The latest row of every key of `ns` (values sealed as stored).
    fn entries(&mut self, ns: &str) -> anyhow::Result<Vec<(String, crate::kv::Entry)>> {
        Ok(match self {
            StateSource::Store(s) => s.list_keys(ns, "")?.into_iter().map(|l| (l.key, l.entry)).collect(),
            StateSource::Txn(t) => {
                let mut out = Vec::new();
                for key in t.live_keys(ns)? {
                    if let Some(e) = t.get(ns, &key)? {
                        out.push((key, e));
                    }
                }
                out
            }
        })
    }
}
