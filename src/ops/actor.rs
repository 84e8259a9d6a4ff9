//! Who makes a write: one value per door, and one text for it. [`Actor`]'s `Display` is the
//! only place the text is made; it is recorded both as the row's `writer` (history,
//! listings, `cat kv`) and as the audit trail's `actor` of the change set, so the two always
//! name the same caller.
//!
//! | door | text |
//! |---|---|
//! | CLI (`kv set/delete/restore`) | `user@host` — the OS user and host name |
//! | `kvform serve` (REST, web UI) | `token:<name>` — the API token |
//! | hook API | `<job>:<allocation>/<event>/<command>` — the allocation as maand names it (its worker's address) |

use crate::state::ApplyRecord;
use crate::workspace::types::Event;
use std::fmt;

/// The caller of an operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Actor {
    /// An operator at the CLI: `user@host`.
    Cli { user_host: String },
    /// A `kvform serve` API token (REST and web UI): `token:<name>`.
    Token { name: String },
    /// A running hook: `<job>:<allocation>/<event>/<command>`.
    Hook { job: String, allocation: String, event: Event, command: String },
}

impl Actor {
    /// This process's operator: the OS user and host name ([`crate::state::actor`]).
    pub fn cli() -> Actor {
        Actor::Cli { user_host: crate::state::actor() }
    }

    /// The API token `name`.
    pub fn token(name: &str) -> Actor {
        Actor::Token { name: name.to_string() }
    }

    /// The hook `command` of `job` run for `event` on the allocation at `allocation`.
    pub fn hook(job: &str, allocation: &str, event: Event, command: &str) -> Actor {
        Actor::Hook { job: job.into(), allocation: allocation.into(), event, command: command.into() }
    }

    /// The audit record of a change set this actor made (`operation` at `now`).
    pub fn record(&self, operation: &str, now: i64) -> ApplyRecord {
        ApplyRecord::new(operation, now).by(self.to_string())
    }
}

impl fmt::Display for Actor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Actor::Cli { user_host } => f.write_str(user_host),
            Actor::Token { name } => write!(f, "token:{name}"),
            Actor::Hook { job, allocation, event, command } => {
                write!(f, "{job}:{allocation}/{}/{command}", event.as_str())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_door_has_its_text() {
        assert_eq!(Actor::Cli { user_host: "ada@ops1".into() }.to_string(), "ada@ops1");
        assert_eq!(Actor::token("deployer").to_string(), "token:deployer");
        let hook = Actor::hook("api", "10.0.0.1", Event::PostDeploy, "command_setup");
        assert_eq!(hook.to_string(), "api:10.0.0.1/post_deploy/command_setup");
    }

    #[test]
    fn the_audit_record_names_the_same_text_as_the_writer() {
        let a = Actor::token("deployer");
        assert_eq!(a.record("serve put", 5).actor, a.to_string());
        let cli = Actor::cli();
        assert_eq!(cli.record("kv set", 5).actor, cli.to_string());
        assert!(!cli.to_string().starts_with("cli:"), "{cli}");
    }
}
