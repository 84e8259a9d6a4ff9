//! maand's template functions (`templateFuncMap` in `deploy/templates.go`,
//! `scrapeTemplateFuncMap` in `promconfig/scrape_template.go`), beside Go's built-ins that
//! the engine provides (`eq`, `printf`, `index`, `len`, …).
//!
//! Where maand panics (a missing key, a denied namespace, `int` of a non-number), the
//! function fails with its own message; [`fail`] keeps the first one so the error the user
//! sees says what went wrong, not only that a call failed.

use super::ENV;
use gtmpl_value_ng::{Func, FuncError, Value};

/// Job templates: maand's deploy-time map.
pub(super) const JOB: &[(&str, Func)] = &[
    ("get", get),
    ("getOptional", get_optional),
    ("getSecret", get_secret),
    ("keys", keys),
    ("split", split),
    ("trim", trim),
    ("upper", upper),
    ("lower", lower),
    ("join", join),
    ("add", add),
    ("sub", sub),
    ("mul", mul),
    ("div", div),
    ("min", min),
    ("max", max),
    ("int", int),
    ("scrapeConfigs", scrape_configs),
    ("ruleFiles", rule_files),
];

/// `_prometheus/scrape.yaml.tpl`: maand's smaller build-time map (no `getOptional`, `trim`,
/// `min`, `max`, `scrapeConfigs`, `ruleFiles`).
pub(super) const SCRAPE: &[(&str, Func)] = &[
    ("get", get),
    ("getSecret", get_secret),
    ("keys", keys),
    ("split", split),
    ("upper", upper),
    ("lower", lower),
    ("join", join),
    ("add", add),
    ("sub", sub),
    ("mul", mul),
    ("div", div),
    ("int", int),
];

/// Record `msg` as the render's error (the first one wins) and fail the call.
fn fail(msg: String) -> FuncError {
    ENV.with(|e| {
        if let Some(env) = e.borrow_mut().as_mut() {
            env.error.get_or_insert_with(|| msg.clone());
        }
    });
    FuncError::Generic(msg)
}

fn arity(name: &str, args: &[Value], n: usize) -> Result<(), FuncError> {
    if args.len() == n {
        return Ok(());
    }
    Err(fail(format!("{name} takes {n} argument{}, got {}", if n == 1 { "" } else { "s" }, args.len())))
}

fn string(name: &str, v: &Value) -> Result<String, FuncError> {
    match v {
        Value::String(s) => Ok(s.clone()),
        other => Err(fail(format!("{name}: expected a string, got {other}"))),
    }
}

fn integer(name: &str, v: &Value) -> Result<i64, FuncError> {
    match v {
        Value::Number(n) => n.as_i64().ok_or_else(|| fail(format!("{name}: {n} is not an integer"))),
        other => Err(fail(format!("{name}: expected an integer, got {other}"))),
    }
}

/// Read through the render's reader, after the access check.
fn read(name: &str, ns: &str, key: &str, optional: bool) -> Result<Value, FuncError> {
    // The message is built while the context is borrowed and recorded after (by `fail`).
    let got = ENV.with(|e| {
        let mut env = e.borrow_mut();
        let Some(env) = env.as_mut() else { return Err(format!("{name}: no render in progress")) };
        env.scope.check_read(ns).map_err(|m| format!("{name}: {m}"))?;
        match env.reader.get(ns, key).map_err(|m| format!("{name} {ns} {key}: {m}"))? {
            Some(v) => {
                if crate::kv::is_secret_key(ns, key) {
                    env.secrets.push(v.clone());
                }
                Ok(Value::String(v))
            }
            None if optional => Ok(Value::String(String::new())),
            None => Err(format!("{name}: {ns} has no key {key:?} (use getOptional for a key that may be missing)")),
        }
    });
    got.map_err(fail)
}

fn get(args: &[Value]) -> Result<Value, FuncError> {
    arity("get", args, 2)?;
    read("get", &string("get", &args[0])?, &string("get", &args[1])?, false)
}

fn get_optional(args: &[Value]) -> Result<Value, FuncError> {
    arity("getOptional", args, 2)?;
    read("getOptional", &string("getOptional", &args[0])?, &string("getOptional", &args[1])?, true)
}

/// `getSecret KEY`: a key of the rendering job's own `secrets/job/<job>`.
fn get_secret(args: &[Value]) -> Result<Value, FuncError> {
    arity("getSecret", args, 1)?;
    let key = string("getSecret", &args[0])?;
    let job = ENV.with(|e| e.borrow().as_ref().map(|env| env.scope.job().to_string())).unwrap_or_default();
    read("getSecret", &format!("secrets/job/{job}"), &key, false)
}

fn keys(args: &[Value]) -> Result<Value, FuncError> {
    arity("keys", args, 1)?;
    let ns = string("keys", &args[0])?;
    let got = ENV.with(|e| {
        let env = e.borrow();
        let Some(env) = env.as_ref() else { return Err("keys: no render in progress".to_string()) };
        env.scope.check_read(&ns).map_err(|m| format!("keys: {m}"))?;
        let names = env.reader.keys(&ns).map_err(|m| format!("keys {ns}: {m}"))?;
        Ok(Value::Array(names.into_iter().map(Value::String).collect()))
    });
    got.map_err(fail)
}

/// Go's `strings.Split`: an empty separator splits after each character.
fn split(args: &[Value]) -> Result<Value, FuncError> {
    arity("split", args, 2)?;
    let (s, sep) = (string("split", &args[0])?, string("split", &args[1])?);
    let parts: Vec<Value> = if sep.is_empty() {
        s.chars().map(|c| Value::String(c.to_string())).collect()
    } else {
        s.split(sep.as_str()).map(|p| Value::String(p.to_string())).collect()
    };
    Ok(Value::Array(parts))
}

/// Go's `strings.TrimSpace`.
fn trim(args: &[Value]) -> Result<Value, FuncError> {
    arity("trim", args, 1)?;
    Ok(Value::String(string("trim", &args[0])?.trim().to_string()))
}

fn upper(args: &[Value]) -> Result<Value, FuncError> {
    arity("upper", args, 1)?;
    Ok(Value::String(string("upper", &args[0])?.to_uppercase()))
}

fn lower(args: &[Value]) -> Result<Value, FuncError> {
    arity("lower", args, 1)?;
    Ok(Value::String(string("lower", &args[0])?.to_lowercase()))
}

/// Go's `strings.Join(elems []string, sep string)`.
fn join(args: &[Value]) -> Result<Value, FuncError> {
    arity("join", args, 2)?;
    let Value::Array(items) = &args[0] else {
        return Err(fail(format!("join: expected a list of strings, got {}", args[0])));
    };
    let items = items.iter().map(|v| string("join", v)).collect::<Result<Vec<_>, _>>()?;
    Ok(Value::String(items.join(&string("join", &args[1])?)))
}

/// The integer helpers: two `int`s in, one out (Go's `int`, 64-bit here).
fn int_op(name: &str, args: &[Value], op: fn(i64, i64) -> Option<i64>) -> Result<Value, FuncError> {
    arity(name, args, 2)?;
    let (a, b) = (integer(name, &args[0])?, integer(name, &args[1])?);
    op(a, b).map(Value::from).ok_or_else(|| fail(format!("{name} {a} {b}: out of range (or division by zero)")))
}

fn add(args: &[Value]) -> Result<Value, FuncError> {
    int_op("add", args, i64::checked_add)
}
fn sub(args: &[Value]) -> Result<Value, FuncError> {
    int_op("sub", args, i64::checked_sub)
}
fn mul(args: &[Value]) -> Result<Value, FuncError> {
    int_op("mul", args, i64::checked_mul)
}
/// Go's integer division truncates toward zero, as Rust's does.
fn div(args: &[Value]) -> Result<Value, FuncError> {
    int_op("div", args, i64::checked_div)
}
fn min(args: &[Value]) -> Result<Value, FuncError> {
    int_op("min", args, |a, b| Some(a.min(b)))
}
fn max(args: &[Value]) -> Result<Value, FuncError> {
    int_op("max", args, |a, b| Some(a.max(b)))
}

/// maand's `templateInt`: an integer as it is, a string parsed after trimming spaces.
fn int(args: &[Value]) -> Result<Value, FuncError> {
    arity("int", args, 1)?;
    match &args[0] {
        Value::Number(_) => Ok(Value::from(integer("int", &args[0])?)),
        Value::String(s) => {
            s.trim().parse::<i64>().map(Value::from).map_err(|_| fail(format!("int: {s:?} is not an integer")))
        }
        other => Err(fail(format!("int: expected a string or an integer, got {other}"))),
    }
}

/// `scrapeConfigs`: the catalog's scrape configs with their targets expanded, as an indented
/// YAML fragment (`super::prom`). Needs `maand/prometheus` readable, as maand checks.
fn scrape_configs(args: &[Value]) -> Result<Value, FuncError> {
    arity("scrapeConfigs", args, 0)?;
    let got = ENV.with(|e| {
        let env = e.borrow();
        let Some(env) = env.as_ref() else { return Err("scrapeConfigs: no render in progress".to_string()) };
        env.scope.check_read("maand/prometheus").map_err(|m| format!("scrapeConfigs: {m}"))?;
        super::prom::scrape_configs(env.reader.as_ref(), &env.catalog).map_err(|m| format!("scrapeConfigs: {m}"))
    });
    got.map(Value::String).map_err(fail)
}

/// `ruleFiles`: a `rule_files:` block listing every job's alert files (`super::prom`).
fn rule_files(args: &[Value]) -> Result<Value, FuncError> {
    arity("ruleFiles", args, 0)?;
    let got = ENV.with(|e| e.borrow().as_ref().map(|env| super::prom::rule_files(&env.catalog)));
    got.map(Value::String).ok_or_else(|| fail("ruleFiles: no render in progress".to_string()))
}
