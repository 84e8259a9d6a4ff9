//! `kvform secrets rotate-key`.

use super::Context;
use super::session::{DEFAULT_LOCK_TIMEOUT, Session, lock_timeout};
use crate::secrets::Rotation;
use crate::state::ApplyRecord;
use std::process::ExitCode;

/// Manage the bucket's secret key (secrets/kv.key).
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: SecretsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum SecretsCommand {
    /// Generate a new key and re-encrypt every secret (all versions) in one transaction,
    /// then check that every secret version opens with the new key alone. The previous key
    /// is kept as secrets/kv.key.old (backups taken before the rotation need it) unless
    /// --remove-old-key is given.
    #[command(
        after_help = "Examples:\n  kvform secrets rotate-key && kvform state backup /backups/after-rotation.db\n  \
kvform secrets rotate-key --remove-old-key   # the old key leaked: keep no copy"
    )]
    RotateKey {
        /// Wait this long for a running kvform to finish (0 = fail at once).
        #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
        lock_timeout: String,
        /// Delete secrets/kv.key.old once the state is verified without it (backups taken
        /// before the rotation can then no longer be decrypted).
        #[arg(long)]
        remove_old_key: bool,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let SecretsCommand::RotateKey { lock_timeout: t, remove_old_key } = args.command;
    let session = Session::new(ctx)?;
    let (b, store) = (&session.bucket, session.open_state()?);
    let timeout = lock_timeout(&t)?;
    let now = session.now;
    let (rotation, keyring) = Rotation::prepare(b)?;
    let result = session.begin_write(store.with_keyring(keyring), "secrets rotate-key", timeout).and_then(|mut txn| {
        let n = txn.reseal_secrets()?;
        txn.commit(ApplyRecord::new("secrets rotate-key", now))?;
        Ok(n)
    });
    match result {
        Ok(n) => {
            let id = rotation.new_key_id().to_string();
            rotation.finish()?;
            let checked = verify_with_new_key_alone(b, session.open_state()?)?;
            let old = b.old_key_file();
            let old_note = if remove_old_key {
                crate::secrets::remove_old_key(b)?;
                format!("removed the previous key {}", old.display())
            } else {
                format!(
                    "the state no longer needs the previous key {}: it is kept only for backups taken before now; delete it when you no longer need those (or rotate with --remove-old-key)",
                    old.display()
                )
            };
            ctx.printer.out(&format!(
                "re-encrypted {n} secret value(s) under key {id}; verified all {checked} secret version(s) open with it alone; {old_note}"
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            rotation.abandon();
            Err(e)
        }
    }
}

/// Every secret version in the state (live, tombstoned and history rows) opens with
/// `kv.key` alone: only then is `kv.key.old` unneeded by the state. Returns how many.
fn verify_with_new_key_alone(b: &crate::bucket::Bucket, store: crate::state::StateStore) -> anyhow::Result<usize> {
    let ring = crate::secrets::Keyring::load_current(b)?;
    let mut checked = 0;
    for (ns, keys) in store.snapshot()?.entries.iter().filter(|(ns, _)| crate::kv::is_secret_namespace(ns)) {
        for key in keys.keys() {
            for row in store.history(ns, key)?.iter().filter(|r| !r.deleted) {
                ring.open(ns, key, row.version, &row.value).map_err(|e| {
                    anyhow::anyhow!(
                        "{e}\n  after the rotation this version does not open with the new key alone; {} was kept",
                        b.old_key_file().display()
                    )
                })?;
                checked += 1;
            }
        }
    }
    Ok(checked)
}
