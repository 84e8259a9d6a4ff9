//! `kvform token create|list|revoke`: API tokens for `kvform serve`. A token is printed once;
//! the state keeps only its sha-256.

use super::Context;
use super::session::{Session, parse_duration};
use crate::serve::access::Role;
use crate::state::tokens::TokenRecord;
use anyhow::bail;
use std::process::ExitCode;

/// Manage the API tokens of `kvform serve`.
///
/// Examples:
///   kvform token create ci --role writer --namespaces 'vars/job/api,vars/job/*' --expires 30d
///   kvform token create oncall --role reader --reveal
///   kvform token list
///   kvform token revoke ci
#[derive(clap::Args, Debug)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
}

#[derive(clap::Subcommand, Debug)]
enum TokenCommand {
    /// Create a token and print it (the only time it is shown).
    Create(CreateArgs),
    /// List tokens (names, roles, expiry; never the tokens).
    List,
    /// Revoke a token by name; it stops working at once.
    Revoke {
        /// The token's name.
        name: String,
    },
}

#[derive(clap::Args, Debug)]
struct CreateArgs {
    /// A name to list and revoke it by.
    name: String,
    /// reader (read), writer (also write vars/job/*, secrets/job/*), admin.
    #[arg(long, default_value = "reader")]
    role: String,
    /// Comma-separated namespace patterns a writer may write (`*` = one segment).
    #[arg(long, default_value = "")]
    namespaces: String,
    /// May read secret plaintext.
    #[arg(long)]
    reveal: bool,
    /// Expire after this long (30d, 12h, P90D); default never.
    #[arg(long, value_name = "DURATION")]
    expires: Option<String>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<ExitCode> {
    let session = Session::new(ctx)?;
    let store = session.open_state()?;
    let now = session.now;
    match args.command {
        TokenCommand::Create(a) => {
            if Role::parse(&a.role).is_none() {
                bail!("unknown role {:?}\n  help: use reader, writer or admin", a.role);
            }
            let namespaces: Vec<String> =
                a.namespaces.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_string).collect();
            let expires_at = match &a.expires {
                Some(d) => Some(now + parse_duration("--expires", d)? as i64),
                None => None,
            };
            let rec = TokenRecord {
                name: a.name.clone(),
                role: a.role.clone(),
                namespaces,
                reveal: a.reveal,
                created_at: now,
                expires_at,
                revoked_at: None,
            };
            let token = store.create_token(&rec)?;
            ctx.printer.info(&format!("token `{}` ({}) created; it is shown once:", a.name, a.role));
            ctx.printer.out(&format!("{}\n", token.as_str()));
        }
        TokenCommand::List => {
            let mut out = String::new();
            for t in store.tokens()? {
                let state = t.state(now);
                out.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\t{}\n",
                    t.name,
                    t.role,
                    if t.namespaces.is_empty() { "*".to_string() } else { t.namespaces.join(",") },
                    if t.reveal { "reveal" } else { "-" },
                    t.expires_at.map_or("never".to_string(), crate::clock::format_time),
                    state
                ));
            }
            ctx.printer.out(&out);
        }
        TokenCommand::Revoke { name } => {
            if !store.revoke_token(&name, now)? {
                bail!("no active token named `{name}`\n  help: `kvform token list` shows the tokens");
            }
            ctx.printer.info(&format!("token `{name}` revoked"));
        }
    }
    Ok(ExitCode::SUCCESS)
}
