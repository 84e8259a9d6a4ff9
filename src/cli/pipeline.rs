//! The one place the CLI goes workspace -> desired -> plan (used by `plan`, `apply`, `show`,
//! `run`, `health`):
//!
//! 1. [`load`]: find the bucket (`-C DIR` or the current directory), load and validate the
//!    workspace; diagnostics (warnings too) go to stderr, errors fail the command (exit 1)
//!    before the state is touched.
//! 2. [`LoadedBucket::open_state`]: the state named by `kvform.hcl` `state { path }`, or
//!    `None` when the bucket has none yet.
//! 3. [`LoadedBucket::plan`] / [`LoadedBucket::plan_in`]: the state's rows without values
//!    (`read_for_plan`) -> `Prior::from_current` -> `model::desired` (model errors are
//!    rendered like workspace errors) -> the stored values compared with the desired ones
//!    -> `plan::diff` at `crate::clock::now()`; the plan's meta carries the snapshot's
//!    lineage and serial, and [`Planned::digest`] the workspace digest a saved plan records.
//!    Values are never all held in memory (see `crate::kv::current`).

use super::Context;
use crate::bucket::Bucket;
use crate::diag::{Diagnostics, SourceMap};
use crate::kv::{Current, LeanSnapshot};
use crate::model::types::{Desired, Prior};
use crate::plan::{Plan, PlanOptions};
use crate::secrets::Keyring;
use crate::state::{StateStore, WriteTxn};
use crate::workspace::types::{Settings, Workspace};
use anyhow::{Context as _, bail};
use std::path::PathBuf;
use std::time::Duration;

/// A bucket whose workspace loaded without errors.
pub struct LoadedBucket {
    pub bucket: Bucket,
    pub workspace: Workspace,
    /// Sources of the workspace files, to render model diagnostics that point into them.
    pub sources: SourceMap,
}

/// The desired state and the plan computed from one snapshot.
pub struct Planned {
    pub desired: Desired,
    pub plan: Plan,
    /// `plan::workspace_digest` of the bucket (for saved plans).
    pub digest: String,
}

/// Find the bucket and load its workspace; render diagnostics to stderr; fail on errors.
pub fn load(ctx: &Context) -> anyhow::Result<LoadedBucket> {
    let bucket = Bucket::find(&ctx.dir)?;
    let loaded = crate::workspace::load(&bucket.root);
    report(ctx, &loaded.diagnostics, &loaded.sources)?;
    let workspace = loaded.workspace.expect("a workspace without errors loads");
    Ok(LoadedBucket { bucket, workspace, sources: loaded.sources })
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
        &self.workspace.settings
    }

    /// The state file (`kvform.hcl` `state { path }`, relative to the bucket root).
    pub fn state_file(&self) -> PathBuf {
        self.bucket.state_file_for(&self.settings().state_path)
    }

    /// The bucket's state, or `None` when it has none yet (no keyring attached).
    pub fn open_state(&self) -> anyhow::Result<Option<StateStore>> {
        let path = self.state_file();
        if !path.exists() {
            return Ok(None);
        }
        Ok(Some(StateStore::open(&path)?))
    }

    /// Create the state (and the key, if missing) of a bucket that has none: what `apply`
    /// does on a fresh bucket. Reports what it created on stderr; the returned [`Created`]
    /// can take it back when the operator then declines the plan.
    pub fn create_state(&mut self, ctx: &Context) -> anyhow::Result<(StateStore, Created)> {
        let key = Keyring::create(&self.bucket)?;
        if key {
            ctx.printer.info(&format!("Created the secret key {}", self.bucket.key_file().display()));
        }
        let path = self.state_file();
        let (store, _) = StateStore::init(&path)?;
        ctx.printer.info(&format!("Created the state {} (the bucket had none)", path.display()));
        let key = key.then(|| self.bucket.key_file());
        let ca = self.create_ca(ctx, &store)?;
        Ok((store, Created { state: path, key, ca }))
    }

    /// The bucket CA, made with the state as `kvform init` would (CN = the new bucket id),
    /// and read into the workspace so the plan can issue certificates. The CA files when
    /// they were created here.
    fn create_ca(&mut self, ctx: &Context, store: &StateStore) -> anyhow::Result<Vec<PathBuf>> {
        let id = store.meta()?.bucket_id.to_string();
        let made = crate::certs::ca::ensure(&self.bucket, &id, crate::clock::now()?)?;
        let crt = crate::certs::ca::cert_file(&self.bucket);
        if made {
            ctx.printer.info(&format!("Created the bucket CA {}", crt.display()));
        }
        let pem = std::fs::read_to_string(&crt).with_context(|| format!("cannot read {}", crt.display()))?;
        self.workspace.ca = Some(crate::workspace::types::CaCert { pem: pem.trim().to_string() });
        Ok(if made { vec![crt, crate::certs::ca::key_file(&self.bucket)] } else { Vec::new() })
    }

    /// The bucket's keyring (`secrets/kv.key`); fails with "run `kvform init`" when missing.
    pub fn keyring(&self) -> anyhow::Result<Keyring> {
        Ok(Keyring::load(&self.bucket)?)
    }

    /// Open the state with the keyring and take the write lock (`operation` names the
    /// holder in lock errors); `max_versions` from `kvform.hcl`.
    pub fn begin_write(&self, store: StateStore, operation: &str, lock_timeout: Duration) -> anyhow::Result<WriteTxn> {
        let store = store.with_keyring(self.keyring()?);
        let mut txn = store.begin_write(operation, lock_timeout)?;
        txn.set_max_versions(self.settings().max_versions);
        Ok(txn)
    }

    /// The desired state against `snap` (model errors rendered to stderr, then an error).
    pub fn desired(&self, ctx: &Context, snap: &impl Current) -> anyhow::Result<Desired> {
        let prior = Prior::from_current(snap);
        // Certificates need the bucket CA; the workspace alone is valid without one (it is
        // bucket state, like data/: `kvform init` or the first `apply` makes it).
        let mut no_ca = Diagnostics::new();
        crate::workspace::ca::check_declared(&self.workspace.jobs, self.workspace.ca.as_ref(), &mut no_ca);
        if no_ca.has_errors() {
            report(ctx, &no_ca, &self.sources)?;
        }
        match crate::model::desired(&self.workspace, &prior) {
            Ok(d) => Ok(d),
            Err(mut diags) => {
                diags.sort(&self.sources);
                report(ctx, &diags, &self.sources)?;
                bail!("the model rejected the workspace")
            }
        }
    }

    /// Desired state and plan against the bucket's state (`None`: it has none yet, so
    /// against an empty one) at the current time (`KVFORM_NOW` honoured).
    pub fn plan(&self, ctx: &Context, store: Option<&StateStore>, opts: &PlanOptions) -> anyhow::Result<Planned> {
        let (snap, desired) = match store {
            Some(store) => store.read_for_plan(|snap| self.desired(ctx, snap), |d| &d.kv)?,
            None => {
                let snap = LeanSnapshot::default();
                let desired = self.desired(ctx, &snap)?;
                (snap, desired)
            }
        };
        self.finish_plan(snap, desired, opts)
    }

    /// [`Self::plan`] inside the apply's write transaction.
    pub fn plan_in(&self, ctx: &Context, txn: &WriteTxn, opts: &PlanOptions) -> anyhow::Result<Planned> {
        let (snap, desired) = txn.read_for_plan(|snap| self.desired(ctx, snap), |d| &d.kv)?;
        self.finish_plan(snap, desired, opts)
    }

    fn finish_plan(&self, snap: LeanSnapshot, desired: Desired, opts: &PlanOptions) -> anyhow::Result<Planned> {
        let now = crate::clock::now()?;
        let plan = crate::plan::diff(&desired, &snap, opts, now);
        Ok(Planned { desired, plan, digest: self.digest()? })
    }

    /// The workspace digest saved plans carry.
    pub fn digest(&self) -> anyhow::Result<String> {
        crate::plan::workspace_digest(&self.bucket.root)
            .with_context(|| format!("cannot read the workspace of {}", self.bucket.root.display()))
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
