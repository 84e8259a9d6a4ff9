//! `kvform init [DIR]`: create the bucket layout of SPEC §1.
//!
//! Never overwrites: every file is created with `O_EXCL` and an existing one is kept as
//! is, so running `init` again (or on a checked-out bucket) is safe and only fills in
//! what is missing. The output lists what was created and what was kept.
//!
//! `secrets/kv.key` is 32 bytes from the OS random source, created 0600 inside a 0700
//! directory. An existing key that group or others can read is refused (as ssh refuses
//! private keys), because every secret in the state is only as safe as this file.
//!
//! `.gitignore` keeps what must never be committed out of git (the state, the key, hook
//! logs, saved plans): the README tells operators to keep the bucket in git, and `git add .`
//! must not pick up `secrets/kv.key`. An existing `.gitignore` is never rewritten: the lines
//! it lacks are appended under a comment, and the output says which.
//! The bucket CA (`secrets/ca.crt`, `secrets/ca.key`, 0600) comes after the state, whose
//! bucket id is its common name; `init` refuses up front when only one of the two exists.
//!
//! Last comes the state, at `kvform.hcl`'s `state { path }` (default `data/kvform.db`):
//! created with a fresh `bucket_id` and `lineage`, kept when it is current, or migrated
//! (after a backup copy) when its schema is older (SPEC §4 "The state"). An existing but
//! invalid kvform.hcl stops `init` before anything is created, since the state's place
//! would be a guess.

use super::Context;
use super::session::Session;
use crate::bucket::Bucket;
use crate::state::{InitOutcome, StateStore};
use anyhow::{Context as _, bail};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use zeroize::Zeroizing;

/// Create a bucket: kvform.hcl, workspace/ (workers.json, bucket.conf, jobs/), data/,
/// secrets/kv.key and the state (data/kvform.db, or kvform.hcl's `state { path }`).
/// Existing files are never overwritten; running it again only adds what is missing and
/// migrates a state with an older schema (after copying it).
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Examples:\n  kvform init ./bucket      create a bucket in ./bucket\n  kvform -C ./bucket init   the same, using -C\n  kvform init               initialise the current directory"
)]
pub struct Args {
    /// Where to create the bucket (relative to -C DIR; default: -C DIR or the current directory).
    #[arg(value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

const KEY_LEN: usize = 32;

const SETTINGS: &str = r#"# kvform bucket settings. Every setting is optional; the values below are the defaults.

# "" reads workspace/bucket.jobs.conf; "prod" reads workspace/bucket.jobs.prod.conf.
job_config_selector = ""

# History rows kept per key (at least 1).
max_versions = 10

# Certificates issued to allocations by the bucket CA: valid this many days, re-issued this
# many days before they expire.
certs_ttl          = 60
certs_renewal_days = 15

state {
  # The state database, relative to the bucket root.
  path = "data/kvform.db"
}

hooks {
  # Time limit of one hook invocation: "90s", "10m", "1h".
  timeout = "10m"
  # Loopback port of the hook API: 0 = any free port, 8080 = maand-compatible clients.
  api_port = 0
}
"#;

const BUCKET_CONF: &str = r#"# Bucket-wide variables: every attribute is written to the vars/bucket namespace.
# port_min/port_max bound the pool that `{}` ports in job manifests are assigned from.
port_min = 30000
port_max = 39999
"#;

/// One thing `init` makes, in creation order.
enum Item {
    Dir { rel: &'static str, private: bool },
    File { rel: &'static str, contents: &'static str },
    Key { rel: &'static str },
}

const LAYOUT: &[Item] = &[
    Item::File { rel: "kvform.hcl", contents: SETTINGS },
    Item::Dir { rel: "workspace", private: false },
    Item::File { rel: "workspace/workers.json", contents: "[]\n" },
    Item::File { rel: "workspace/bucket.conf", contents: BUCKET_CONF },
    Item::Dir { rel: "workspace/jobs", private: false },
    Item::Dir { rel: "data", private: true },
    Item::Dir { rel: "secrets", private: true },
    Item::Key { rel: "secrets/kv.key" },
];

/// What `.gitignore` must hold (paths relative to the bucket root; `plan.json` and
/// `*.plan.json` are the names the README and `plan --help` use for saved plans, which carry
/// the lineage and are only valid for one serial).
const GITIGNORE: &[&str] = &["/data/", "/secrets/", "/logs/", "/plan.json", "*.plan.json"];

const GITIGNORE_HEADER: &str = "# kvform: the state, the secret key, hook logs and saved plans stay out of git.\n";

/// `-C DIR` joined with the DIR argument, without the `./.` noise `Path::join` leaves
/// (`init ./b` printed `in ././b`): `components()` drops every `.` but a leading one.
fn bucket_root(chdir: &Path, dir: Option<&Path>) -> PathBuf {
    let joined = match dir {
        Some(d) if chdir == Path::new(".") => d.to_path_buf(),
        Some(d) => chdir.join(d),
        None => chdir.to_path_buf(),
    };
    let clean: PathBuf = joined.components().collect();
    if clean.as_os_str().is_empty() { PathBuf::from(".") } else { clean }
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let root = bucket_root(&ctx.dir, args.dir.as_deref());
    if root.exists() && !root.is_dir() {
        bail!("{} exists and is not a directory", root.display());
    }
    let bucket = Bucket::at(&root);
    // Refuse before creating anything, so a refused run leaves no half-made bucket.
    check_existing_key(&bucket.key_file())?;
    crate::certs::ca::exists(&bucket)?;
    // A missing kvform.hcl means the defaults, which are also what the template below says.
    let session = Session::for_bucket(bucket)?;
    let (bucket, settings) = (&session.bucket, &session.settings);
    let location = session.state_location();
    // A PostgreSQL bucket that exists already was made on another machine (or here before):
    // its key and CA are there. New ones made here would seal secrets and sign certificates
    // that no other machine can open or trust, so init leaves them to be copied.
    // A database that cannot be asked is an error here, before anything is made: guessing
    // "new" would mint exactly the second key this guards against.
    let made_elsewhere = location.is_remote()
        && match location.open_if_any() {
            Ok(found) => found.is_some(),
            Err(crate::state::StateError::OldSchema { .. }) => true,
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot open the state {}; nothing was created", location.describe(&bucket.root))
                });
            }
        };
    let key_from_env = crate::secrets::key_from_env()?.is_some();
    std::fs::create_dir_all(&root).with_context(|| format!("cannot create {}", root.display()))?;

    // One line per item; `--quiet` keeps only the summary.
    let line = |text: String| {
        if !ctx.printer.quiet {
            ctx.printer.out(&text);
        }
    };
    let (mut created, mut kept) = (0, 0);
    let mut missing: Vec<&str> = Vec::new();
    for item in LAYOUT {
        if let Item::Key { rel } = item
            && !root.join(rel).exists()
        {
            if key_from_env {
                kept += 1;
                line(format!("  kept     {rel} (the key comes from ${})", crate::secrets::KEY_ENV));
                continue;
            }
            if made_elsewhere {
                missing.push(rel);
                line(format!("  missing  {rel} (the bucket was made on another machine; not created)"));
                continue;
            }
        }
        let (rel, made) = match item {
            Item::Dir { rel, private } => (*rel, make_dir(&root, rel, *private, ctx)?),
            Item::File { rel, contents } => (*rel, make_file(&root.join(rel), contents.as_bytes(), 0o644)?),
            Item::Key { rel } => (*rel, make_key(&root.join(rel))?),
        };
        let shown = if matches!(item, Item::Dir { .. }) { format!("{rel}/") } else { rel.to_string() };
        if made {
            created += 1;
            line(format!("  created  {shown}"));
        } else {
            kept += 1;
            line(format!("  kept     {shown} (already exists)"));
        }
    }

    let mut updated = 0;
    match gitignore(&root, settings.state.sqlite_path())? {
        Gitignore::Created => {
            created += 1;
            line("  created  .gitignore".to_string());
        }
        Gitignore::Kept => {
            kept += 1;
            line("  kept     .gitignore (already exists)".to_string());
        }
        Gitignore::Appended(lines) => {
            updated += 1;
            line(format!("  updated  .gitignore (appended {})", lines.join(" ")));
        }
        Gitignore::NotAFile => {
            kept += 1;
            ctx.printer.warn(".gitignore exists but is not a regular file; left as it is (add data/, secrets/ and logs/ to your ignore rules)");
        }
    }

    let (store, outcome, pg_bucket) = location
        .init(session.now)
        .with_context(|| format!("cannot create the state {}", location.describe(&bucket.root)))?;
    let shown = store.path().strip_prefix(&root).unwrap_or(store.path()).display().to_string();
    // A new PostgreSQL bucket is found from kvform.hcl on every other machine (a fresh
    // clone on a CI runner): write its id there now.
    if let Some(id) = pg_bucket
        && settings.state.bucket_id() != Some(id)
    {
        crate::workspace::hcl_files::set_state_attributes(&root, &[("bucket_id", Some(id.to_string()))])
            .with_context(|| format!("created the PostgreSQL bucket {id}, but cannot record it in kvform.hcl"))?;
        updated += 1;
        line(format!("  updated  kvform.hcl (state {{ bucket_id = \"{id}\" }})"));
    }
    let mut migrated = 0;
    match outcome {
        InitOutcome::Created => {
            created += 1;
            line(format!("  created  {shown}"));
        }
        InitOutcome::UpToDate => {
            kept += 1;
            line(format!("  kept     {shown} (already exists)"));
        }
        InitOutcome::Migrated { from, to, backup } => {
            migrated += 1;
            line(format!("  migrated {shown} (schema v{from} -> v{to}; the old file is kept as {})", backup.display()));
        }
    }

    if made_elsewhere && !crate::certs::ca::exists(bucket)? {
        missing.push("secrets/ca.crt, secrets/ca.key");
        line("  missing  secrets/ca.crt, secrets/ca.key (the bucket was made on another machine; not created: plans here leave its CA certificate in the state as it is and stop before issuing a certificate)".into());
    } else if make_ca(bucket, &store, session.now)? {
        created += 1;
        line("  created  secrets/ca.crt, secrets/ca.key (the bucket CA)".to_string());
    } else {
        kept += 1;
        line("  kept     secrets/ca.crt, secrets/ca.key (already exist)".to_string());
    }

    let shown_root = root.display();
    let migrated = if migrated > 0 { format!(", {migrated} migrated") } else { String::new() };
    let migrated = if updated > 0 { format!(", {updated} updated{migrated}") } else { migrated };
    if created == 0 {
        ctx.printer.out(&format!(
            "The bucket in {shown_root} is already initialised: nothing created, {kept} kept{migrated}."
        ));
    } else {
        ctx.printer
            .out(&format!("Initialised the kvform bucket in {shown_root}: {created} created, {kept} kept{migrated}."));
        ctx.printer.info(&next_step(&root, &missing));
    }
    if !missing.is_empty() {
        ctx.printer.warn(&format!(
            "this bucket's state on PostgreSQL was made on another machine, which holds its {}; init made none here, because new ones would seal secrets and sign certificates no other machine can open or trust\n  help: copy them from that machine into secrets/ (mode 0600){}",
            missing.join(" and "),
            if missing.iter().any(|m| m.ends_with("kv.key")) {
                format!(", or set {} to the output of `base64 -w0 secrets/kv.key` there", crate::secrets::KEY_ENV)
            } else {
                String::new()
            }
        ));
    }
    Ok(ExitCode::SUCCESS)
}

/// What to do after `init`, from what the workspace already holds: a new bucket needs
/// workers and jobs; a clone of a complete one (a runner's checkout) needs only what `init`
/// could not make here (`missing`: the key, the CA), then a plan.
fn next_step(root: &Path, missing: &[&str]) -> String {
    let ws = root.join("workspace");
    // An unreadable or invalid workers.json counts as unknown: `validate` will say why.
    let workers = std::fs::read_to_string(ws.join("workers.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.as_array().map(Vec::len));
    let jobs = std::fs::read_dir(ws.join("jobs"))
        .map(|d| d.filter_map(|e| e.ok()).filter(|e| e.path().join("manifest.json").is_file()).count())
        .unwrap_or(0);
    let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
    match (workers, jobs) {
        (Some(0) | None, 0) => {
            "Next: add workers to workspace/workers.json and jobs under workspace/jobs/<job>/, then run `kvform validate`."
                .to_string()
        }
        (Some(0), j) => format!(
            "The workspace has {} but no workers. Next: add workers to workspace/workers.json, then run `kvform validate`.",
            plural(j, "job", "jobs")
        ),
        (Some(w), 0) => format!(
            "The workspace has {} but no jobs. Next: add jobs under workspace/jobs/<job>/, then run `kvform validate`.",
            plural(w, "worker", "workers")
        ),
        (w, j) => {
            let found = match w {
                Some(w) => format!("Found a workspace with {} and {}.", plural(w, "worker", "workers"), plural(j, "job", "jobs")),
                None => format!("Found a workspace with {}.", plural(j, "job", "jobs")),
            };
            if missing.is_empty() {
                format!("{found} Next: run `kvform validate`, then `kvform plan`.")
            } else {
                format!("{found} Missing: {} (see below). Next: bring them over, then run `kvform plan`.", missing.join(", "))
            }
        }
    }
}

enum Gitignore {
    Created,
    Kept,
    /// The lines that were missing and are now appended.
    Appended(Vec<String>),
    NotAFile,
}

/// The ignore lines this bucket needs: [`GITIGNORE`], plus the state file (and its WAL, lock
/// and restore copies) when `kvform.hcl` moved it out of `data/` but kept it in the bucket.
fn gitignore_lines(state_path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = GITIGNORE.iter().map(|l| l.to_string()).collect();
    let inside =
        state_path.is_relative() && state_path.components().all(|c| matches!(c, std::path::Component::Normal(_)));
    if inside && !state_path.starts_with("data") {
        lines.push(format!("/{}*", state_path.display()));
    }
    lines
}

/// `data/`, `/data`, `data` … all name the same directory for our purpose.
fn same_rule(a: &str, b: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches('/').trim_end_matches('/').to_string();
    norm(a) == norm(b)
}

/// Create `root/.gitignore`, or append the lines an existing one lacks (never rewriting it).
fn gitignore(root: &Path, state_path: &Path) -> anyhow::Result<Gitignore> {
    let path = root.join(".gitignore");
    let wanted = gitignore_lines(state_path);
    let mut text = String::from(GITIGNORE_HEADER);
    wanted.iter().for_each(|l| text.push_str(&format!("{l}\n")));
    if make_file(&path, text.as_bytes(), 0o644)? {
        return Ok(Gitignore::Created);
    }
    if !path.is_file() {
        return Ok(Gitignore::NotAFile);
    }
    let existing = std::fs::read_to_string(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let missing: Vec<String> = wanted.into_iter().filter(|w| !existing.lines().any(|l| same_rule(l, w))).collect();
    if missing.is_empty() {
        return Ok(Gitignore::Kept);
    }
    let mut add = String::new();
    if !existing.is_empty() && !existing.ends_with('\n') {
        add.push('\n');
    }
    add.push_str(GITIGNORE_HEADER);
    missing.iter().for_each(|l| add.push_str(&format!("{l}\n")));
    let mut f =
        OpenOptions::new().append(true).open(&path).with_context(|| format!("cannot open {}", path.display()))?;
    f.write_all(add.as_bytes())
        .and_then(|()| f.sync_all())
        .with_context(|| format!("cannot append to {}", path.display()))?;
    Ok(Gitignore::Appended(missing))
}

/// An existing key must be a private 32-byte file.
fn check_existing_key(path: &Path) -> anyhow::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", path.display())),
    };
    if !meta.is_file() {
        bail!(
            "{} exists but is not a regular file\n  help: move it away; kvform init then creates a new key",
            path.display()
        );
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "{} is accessible by group or others (mode {mode:04o}); refusing to use it\n  help: run `chmod 600 {}` if the key has not leaked, otherwise rotate it",
            path.display(),
            path.display()
        );
    }
    if meta.len() != KEY_LEN as u64 {
        bail!(
            "{} is {} bytes, not a {KEY_LEN}-byte key\n  help: restore the right key file from your backup",
            path.display(),
            meta.len()
        );
    }
    Ok(())
}

/// Create `root/rel`; `Ok(false)` when it already exists. Private directories are 0700; an
/// existing one that is more open gets a warning (we never change what we did not make).
fn make_dir(root: &Path, rel: &str, private: bool, ctx: &Context) -> anyhow::Result<bool> {
    let path = root.join(rel);
    if path.is_dir() {
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        if private && mode & 0o077 != 0 {
            ctx.printer.warn(&format!(
                "{rel}/ is accessible by group or others (mode {mode:04o}); run `chmod 700 {}`",
                path.display()
            ));
        }
        return Ok(false);
    }
    let mut builder = DirBuilder::new();
    if private {
        builder.mode(0o700);
    }
    builder.create(&path).with_context(|| format!("cannot create {}", path.display()))?;
    Ok(true)
}

/// Write a new file with `O_EXCL`; `Ok(false)` when it already exists.
fn make_file(path: &Path, contents: &[u8], mode: u32) -> anyhow::Result<bool> {
    let mut f = match OpenOptions::new().write(true).create_new(true).mode(mode).open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot create {}", path.display())),
    };
    if let Err(e) = f.write_all(contents).and_then(|()| f.sync_all()) {
        // A half-written file (a truncated key above all) must not pass for a good one.
        let _ = std::fs::remove_file(path);
        return Err(e).with_context(|| format!("cannot write {}", path.display()));
    }
    Ok(true)
}

/// The bucket CA (SPEC §8), for new buckets and buckets made before kvform had one: CN = the
/// state's bucket id, so it needs the state first. `Ok(false)` when it exists.
fn make_ca(bucket: &Bucket, store: &StateStore, now: i64) -> anyhow::Result<bool> {
    let bucket_id = store.meta()?.bucket_id.to_string();
    Ok(crate::certs::ca::ensure(bucket, &bucket_id, now)?)
}

fn make_key(path: &Path) -> anyhow::Result<bool> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::fill(key.as_mut()).map_err(|e| anyhow::anyhow!("cannot get random bytes for the key: {e}"))?;
    let made = make_file(path, key.as_ref(), 0o600)?;
    if made && let Some(dir) = path.parent() {
        // Make the new directory entry durable too, not only the key's bytes.
        std::fs::File::open(dir).and_then(|d| d.sync_all()).ok();
    }
    Ok(made)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_root_is_printed_as_the_user_spelled_it() {
        let r = |c: &str, d: Option<&str>| bucket_root(Path::new(c), d.map(Path::new)).display().to_string();
        assert_eq!(r(".", Some("./mybucket")), "./mybucket");
        assert_eq!(r(".", Some(".")), ".");
        assert_eq!(r(".", None), ".");
        assert_eq!(r(".", Some("b")), "b");
        assert_eq!(r("/tmp/x", Some("./b/")), "/tmp/x/b");
    }

    #[test]
    fn a_state_outside_data_is_ignored_too() {
        assert!(gitignore_lines(Path::new("data/kvform.db")).iter().all(|l| !l.contains("kvform.db")));
        assert!(gitignore_lines(Path::new("var/main.db")).contains(&"/var/main.db*".to_string()));
        assert_eq!(gitignore_lines(Path::new("/abs/main.db")).len(), GITIGNORE.len());
    }
}
