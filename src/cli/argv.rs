//! Terraform spells long flags with one dash (`-chdir=DIR`, `-out=plan.json`, `-json`,
//! `-auto-approve`); clap reads `-chdir` as the short flags `-c -h -d …` and fails with
//! "unexpected argument '-c'". Before clap sees the arguments, a single-dash word whose name
//! is one of kvform's long flags is rewritten to the two-dash spelling, so a Terraform user's
//! habits work. Real short flags (`-C DIR`, `-q`, `-v`, `-qv`) are left alone, and so is
//! everything after `--`.
//!
//! A single-dash word that is neither (`-input=false`, `-var-file=x`) is answered with the
//! flag's `--` spelling when kvform has a close one, else with a note that kvform spells
//! long flags with two dashes — instead of clap's puzzling complaint about `-i`.

use crate::diag::suggest::did_you_mean;
use clap::Command;
use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsString;

/// Every long flag (and visible alias) and every short flag of `cmd` and its subcommands;
/// a short flag maps to whether it takes a value (`-C DIR`).
fn flags(cmd: &Command, long: &mut BTreeSet<String>, short: &mut BTreeMap<char, bool>) {
    for a in cmd.get_arguments() {
        if let Some(l) = a.get_long() {
            long.insert(l.to_string());
        }
        for l in a.get_visible_aliases().unwrap_or_default() {
            long.insert(l.to_string());
        }
        if let Some(s) = a.get_short() {
            short.insert(s, a.get_action().takes_values());
        }
    }
    for sub in cmd.get_subcommands() {
        flags(sub, long, short);
    }
}

/// The arguments with Terraform-style single-dash long flags rewritten to `--name`, or the
/// message for an unknown single-dash word.
pub fn rewrite(args: impl IntoIterator<Item = OsString>, cmd: &Command) -> Result<Vec<OsString>, String> {
    let mut cmd = cmd.clone();
    cmd.build();
    let (mut long, mut short) = (BTreeSet::new(), BTreeMap::new());
    flags(&cmd, &mut long, &mut short);
    let mut out = Vec::new();
    let mut rest = false;
    for (i, arg) in args.into_iter().enumerate() {
        let Some(text) = arg.to_str().filter(|_| i > 0 && !rest) else {
            out.push(arg);
            continue;
        };
        if text == "--" {
            rest = true;
            out.push(arg);
            continue;
        }
        let Some(word) = text.strip_prefix('-').filter(|w| w.len() > 1 && !w.starts_with('-')) else {
            out.push(arg);
            continue;
        };
        let name = word.split_once('=').map_or(word, |(n, _)| n);
        if long.contains(name) {
            out.push(OsString::from(format!("-{text}")));
        } else if short_cluster(word, &short) || !name.chars().all(is_flag_char) {
            // `-qv`, `-Cdir`, `-5`: short flags, a short flag with its value, or a value.
            out.push(arg);
        } else {
            return Err(unknown(name, &long));
        }
    }
    Ok(out)
}

/// `-qv`, `-Cdir`, `-qC=dir`: short flags, the last of which may take the rest as its value.
fn short_cluster(word: &str, short: &BTreeMap<char, bool>) -> bool {
    for c in word.chars() {
        match short.get(&c) {
            Some(true) => return true,
            Some(false) => {}
            None => return false,
        }
    }
    true
}

fn is_flag_char(c: char) -> bool {
    c.is_ascii_lowercase() || c == '-'
}

fn unknown(name: &str, long: &BTreeSet<String>) -> String {
    let help = match did_you_mean(name, long) {
        Some(flag) => format!("did you mean `--{flag}`?"),
        None => format!("kvform has no `--{name}`; see `kvform help` for the flags (long flags take two dashes)"),
    };
    format!("unknown flag `-{name}`\n  help: {help}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run(args: &[&str]) -> Result<Vec<String>, String> {
        let args = std::iter::once("kvform").chain(args.iter().copied()).map(OsString::from);
        rewrite(args, &super::super::Cli::command())
            .map(|v| v.into_iter().skip(1).map(|a| a.into_string().unwrap()).collect())
    }

    #[test]
    fn terraform_spellings_become_long_flags() {
        assert_eq!(run(&["-chdir=b", "plan", "-out=p.json"]).unwrap(), ["--chdir=b", "plan", "--out=p.json"]);
        assert_eq!(run(&["apply", "-auto-approve"]).unwrap(), ["apply", "--auto-approve"]);
        assert_eq!(run(&["plan", "-json", "-no-color"]).unwrap(), ["plan", "--json", "--no-color"]);
        assert_eq!(run(&["plan", "-detailed-exitcode"]).unwrap(), ["plan", "--detailed-exitcode"]);
        assert_eq!(run(&["apply", "-lock-timeout=5m"]).unwrap(), ["apply", "--lock-timeout=5m"]);
    }

    #[test]
    fn short_flags_values_and_the_rest_are_left_alone() {
        assert_eq!(run(&["-C", "b", "-q", "plan"]).unwrap(), ["-C", "b", "-q", "plan"]);
        assert_eq!(run(&["-qC", "b", "plan"]).unwrap(), ["-qC", "b", "plan"]);
        assert_eq!(run(&["kv", "set", "vars/job/a", "k", "-"]).unwrap(), ["kv", "set", "vars/job/a", "k", "-"]);
        assert_eq!(run(&["kv", "set", "vars/job/a", "k", "--", "-json"]).unwrap()[5], "-json");
        assert_eq!(run(&["--out", "-5"]).unwrap(), ["--out", "-5"]);
    }

    #[test]
    fn an_unknown_single_dash_word_gets_the_two_dash_spelling() {
        let e = run(&["plan", "-detailed-exit-code"]).unwrap_err();
        assert!(e.contains("did you mean `--detailed-exitcode`?"), "{e}");
        let e = run(&["plan", "-var-file=prod.tfvars"]).unwrap_err();
        assert!(e.contains("no `--var-file`"), "{e}");
        let e = run(&["apply", "-input=false"]).unwrap_err();
        assert!(e.starts_with("unknown flag `-input`"), "{e}");
        assert!(e.contains("no `--input`"), "{e}");
    }
}
