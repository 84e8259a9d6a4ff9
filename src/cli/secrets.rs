//! `kvform secrets rotate-key`.

use super::Context;
use super::state::{DEFAULT_LOCK_TIMEOUT, lock_timeout, now, open};
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
    /// Generate a new key and re-encrypt every secret (all versions) in one transaction.
    /// The previous key is kept as secrets/kv.key.old until the next rotation.
    #[command(after_help = "Example:\n  kvform secrets rotate-key && kvform state backup /backups/after-rotation.db")]
    RotateKey {
        /// Wait this long for a running kvform to finish (0 = fail at once).
        #[arg(long, default_value = DEFAULT_LOCK_TIMEOUT, value_name = "DURATION")]
        lock_timeout: String,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let SecretsCommand::RotateKey { lock_timeout: t } = args.command;
    let (b, store) = open(ctx)?;
    let timeout = lock_timeout(&t)?;
    let now = now()?;
    let (rotation, keyring) = Rotation::prepare(&b)?;
    let result = store.with_keyring(keyring).begin_write("secrets rotate-key", timeout).and_then(|mut txn| {
        let n = txn.reseal_secrets()?;
        txn.commit(ApplyRecord::new("secrets rotate-key", now))?;
        Ok(n)
    });
    match result {
        Ok(n) => {
            let id = rotation.new_key_id().to_string();
            rotation.finish()?;
            ctx.printer.out(&format!(
                "re-encrypted {n} secret value(s) under key {id}; the previous key is kept as {}",
                b.old_key_file().display()
            ));
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            rotation.abandon();
            Err(e.into())
        }
    }
}
