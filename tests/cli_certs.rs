//! Certificates end to end through the binary (SPEC §8): `init` makes the CA, `apply` issues
//! per-allocation certificates that `openssl verify` accepts, private keys stay sealed and
//! out of every plan, `certs list`, renewal under `KVFORM_NOW`, `one`, `rotate-ca`, and the
//! allocation's own hook reading its key.

mod quickstart_copy;
mod tf_support;

use quickstart_copy::quickstart_copy;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output, Stdio};

const NOW: &str = "2026-03-01T00:00:00Z";
/// 50 days after [`NOW`]: inside the 15-day renewal window of a 60-day certificate.
const LATER: &str = "2026-04-20T00:00:00Z";
/// [`NOW`] and [`LATER`] in unix seconds, for `openssl verify -attime` (the real clock is not
/// the one the certificates were issued at).
const NOW_UNIX: i64 = 1772323200;
const LATER_UNIX: i64 = 1776643200;

fn kvform_at(dir: &Path, now: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kvform"))
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("KVFORM_NOW", now)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

fn ok_at(dir: &Path, now: &str, args: &[&str]) -> String {
    let o = kvform_at(dir, now, args);
    assert!(
        o.status.success(),
        "{args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let out = String::from_utf8(o.stdout).unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !out.contains("PRIVATE KEY") && !err.contains("PRIVATE KEY") || args.contains(&"--reveal"),
        "{args:?} printed a private key"
    );
    out
}

fn ok(dir: &Path, args: &[&str]) -> String {
    ok_at(dir, NOW, args)
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

fn openssl(args: &[&str]) -> Output {
    Command::new("openssl").args(args).output().expect("openssl is installed (see .ci/run)")
}

/// Write `pem` to a file and `openssl verify` it against the bucket CA at unix time `at`.
fn verify(dir: &Path, pem: &str, at: i64) -> String {
    let f = dir.join("leaf.pem");
    std::fs::write(&f, pem).unwrap();
    let ca = dir.join("secrets/ca.crt");
    let at = (at + 3600).to_string();
    let o = openssl(&["verify", "-attime", &at, "-CAfile", ca.to_str().unwrap(), f.to_str().unwrap()]);
    String::from_utf8_lossy(&o.stdout).into_owned() + &String::from_utf8_lossy(&o.stderr)
}

fn sans(dir: &Path, pem: &str) -> String {
    let f = dir.join("leaf.pem");
    std::fs::write(&f, pem).unwrap();
    let o = openssl(&["x509", "-in", f.to_str().unwrap(), "-noout", "-ext", "subjectAltName"]);
    String::from_utf8_lossy(&o.stdout).into_owned()
}

#[test]
fn init_makes_a_private_ca_named_after_the_bucket_and_refuses_half_of_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("b");
    let out = ok(tmp.path(), &["init", dir.to_str().unwrap()]);
    assert!(out.contains("created  secrets/ca.crt, secrets/ca.key"), "{out}");
    let (crt, key) = (dir.join("secrets/ca.crt"), dir.join("secrets/ca.key"));
    assert_eq!((mode(&crt), mode(&key), mode(&dir.join("secrets"))), (0o600, 0o600, 0o700));
    let info = ok(&dir, &["state", "info"]);
    let subject =
        String::from_utf8(openssl(&["x509", "-in", crt.to_str().unwrap(), "-noout", "-subject", "-enddate"]).stdout)
            .unwrap();
    let id = info
        .lines()
        .find_map(|l| l.split_whitespace().skip_while(|w| !w.starts_with("bucket_id")).nth(1))
        .unwrap_or_default();
    assert!(!id.is_empty() && subject.contains(&format!("CN = {id}")), "{subject}\n{info}");
    assert!(subject.contains("2036"), "10 years from 2026: {subject}");

    // Again: kept as is.
    let before = std::fs::read(&crt).unwrap();
    assert!(ok(tmp.path(), &["init", dir.to_str().unwrap()]).contains("kept     secrets/ca.crt"));
    assert_eq!(std::fs::read(&crt).unwrap(), before);

    // Only the key left: refused before anything else is touched.
    std::fs::remove_file(&crt).unwrap();
    let o = kvform_at(tmp.path(), NOW, &["init", dir.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains("the bucket CA is incomplete"), "{err}");
    assert!(!crt.exists());
}

#[test]
fn an_existing_bucket_without_a_ca_gets_one_from_init() {
    let dir = quickstart_copy();
    let d = dir.path();
    // What an older kvform's init left: a key and a state, no CA.
    let b = kvform::bucket::Bucket::at(d);
    kvform::secrets::Keyring::create(&b).unwrap();
    kvform::state::StateStore::init(&b.default_state_file(), 1_767_225_600).unwrap();
    let o = kvform_at(d, NOW, &["plan"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("declares certificates but the bucket has no CA"));
    assert!(ok(d, &["init"]).contains("created  secrets/ca.crt"));
    assert!(ok(d, &["plan"]).contains("certs/server.crt = (known after apply)"));
}

#[test]
fn apply_issues_verified_certificates_and_keeps_keys_sealed() {
    let dir = quickstart_copy();
    let d = dir.path();
    ok(d, &["init"]);
    let plan = ok(d, &["plan"]);
    assert!(plan.contains("certs/server.crt = (known after apply)             # issue: new certificate"), "{plan}");
    assert!(plan.contains("certs/server.key = (sensitive, known after apply)"), "{plan}");
    ok(d, &["plan", "--out", "p.json"]);
    let saved = std::fs::read_to_string(d.join("p.json")).unwrap();
    assert!(!saved.contains("PRIVATE"), "no private key in a saved plan");
    assert_eq!(saved.matches("BEGIN CERTIFICATE").count(), 1, "only the CA's certificate (maand/worker certs/ca.crt)");
    assert!(ok(d, &["apply", "p.json"]).contains("Apply complete!"));

    let ns1 = "maand/job/api/worker/10.0.0.1";
    let crt = ok(d, &["cat", "kv", "get", ns1, "certs/server.crt"]);
    assert!(verify(d, &crt, NOW_UNIX).contains(": OK"), "{}", verify(d, &crt, NOW_UNIX));
    assert!(sans(d, &crt).contains("IP Address:127.0.0.1, IP Address:10.0.0.1"), "{}", sans(d, &crt));
    let crt2 = ok(d, &["kv", "get", "maand/job/api/worker/10.0.0.2", "certs/server.crt"]);
    assert!(sans(d, &crt2).contains("IP Address:127.0.0.1, IP Address:10.0.0.2"));
    assert_ne!(crt, crt2, "one = false: a certificate per allocation");

    // The key: sealed at rest, `(sensitive)` unless revealed, then the PKCS#8 key of the cert.
    assert_eq!(ok(d, &["kv", "get", ns1, "certs/server.key"]).trim(), "(sensitive)");
    assert!(ok(d, &["cat", "kv"]).contains("certs/server.key           (sensitive)"));
    let key = ok(d, &["kv", "get", ns1, "certs/server.key", "--reveal"]);
    assert!(key.starts_with("-----BEGIN PRIVATE KEY-----"), "{key}");
    let kf = d.join("leaf.key");
    std::fs::write(&kf, &key).unwrap();
    std::fs::write(d.join("leaf.pem"), &crt).unwrap();
    let pub_of = |args: &[&str]| String::from_utf8(openssl(args).stdout).unwrap();
    assert_eq!(
        pub_of(&["pkey", "-in", kf.to_str().unwrap(), "-pubout"]),
        pub_of(&["x509", "-in", d.join("leaf.pem").to_str().unwrap(), "-noout", "-pubkey"]),
        "the key belongs to the certificate"
    );
    let raw = rusqlite::Connection::open(d.join("data/kvform.db")).unwrap();
    let stored: String = raw
        .query_row("SELECT value FROM latest WHERE namespace = ?1 AND key = 'certs/server.key'", [ns1], |r| r.get(0))
        .unwrap();
    assert!(stored.starts_with("kvs1:") && !stored.contains("PRIVATE"), "sealed at rest");
    assert!(ok(d, &["state", "check"]).starts_with("ok"));

    // certs list: table and JSON.
    let table = ok(d, &["certs", "list"]);
    assert!(table.contains("api  10.0.0.1  server  api      127.0.0.1,10.0.0.1  2026-04-30         60"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&ok(d, &["certs", "list", "--format", "json"])).unwrap();
    assert_eq!(json[1]["host"], "10.0.0.2");
    assert_eq!(json[1]["sans"], serde_json::json!(["127.0.0.1", "10.0.0.2"]));
    assert_eq!(json[1]["not_after"], "2026-04-30T00:00:00Z");
    assert_eq!(ok_at(d, LATER, &["certs", "list", "--format", "json"]).matches("\"days_left\": 10").count(), 2);

    // Nothing to do, then renewal 50 days later; apply renews; then nothing again.
    assert!(ok(d, &["plan"]).contains("No changes."));
    let renew = ok_at(d, LATER, &["plan"]);
    assert!(
        renew.contains("certs/server.crt = (known after apply)             # renew: expires 2026-04-30"),
        "{renew}"
    );
    assert!(renew.contains("Plan: 0 to add, 4 to change, 0 to destroy."), "{renew}");
    ok_at(d, LATER, &["apply", "--auto-approve"]);
    let renewed = ok(d, &["kv", "get", ns1, "certs/server.crt"]);
    assert_ne!(renewed, crt);
    assert!(ok_at(d, LATER, &["certs", "list"]).contains("2026-06-19         60"));
    assert!(ok_at(d, LATER, &["plan"]).contains("No changes."));

    // A new CA: everything is re-issued, and the new certificates verify against it.
    assert!(ok(d, &["certs", "rotate-ca"]).contains("made a new bucket CA"));
    assert!(d.join("secrets/ca.crt.old").exists());
    let rotated = ok_at(d, LATER, &["plan"]);
    assert!(rotated.contains("# reissue: signed by another CA"), "{rotated}");
    assert!(!verify(d, &renewed, LATER_UNIX).contains(": OK"), "the old certificate is not signed by the new CA");
    ok_at(d, LATER, &["apply", "--auto-approve"]);
    let after = ok(d, &["kv", "get", ns1, "certs/server.crt"]);
    assert!(verify(d, &after, LATER_UNIX).contains(": OK"), "{}", verify(d, &after, LATER_UNIX));
    assert_eq!(
        ok(d, &["kv", "get", "maand/worker", "certs/ca.crt"]).trim(),
        std::fs::read_to_string(d.join("secrets/ca.crt")).unwrap().trim()
    );

    // A new secret key re-seals the certificates' keys too (else they would be lost with
    // kv.key.old at the next rotation).
    let key = ok(d, &["kv", "get", ns1, "certs/server.key", "--reveal"]);
    assert!(ok(d, &["secrets", "rotate-key"]).contains("re-encrypted"));
    std::fs::remove_file(d.join("secrets/kv.key.old")).unwrap();
    assert_eq!(ok(d, &["kv", "get", ns1, "certs/server.key", "--reveal"]), key);
    assert!(ok(d, &["state", "check"]).starts_with("ok"));
}

/// A bucket with one job `svc` on three workers declaring `certs` (and a post_deploy hook).
fn svc_bucket(certs: &str, hook: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init", "-q"]);
    std::fs::write(
        d.join("workspace/workers.json"),
        r#"[{"host": "10.0.0.1", "labels": ["svc"]}, {"host": "10.0.0.2", "labels": ["svc"]}, {"host": "10.0.0.3", "labels": ["svc"]}]"#,
    )
    .unwrap();
    let job = d.join("workspace/jobs/svc");
    std::fs::create_dir_all(job.join("_modules")).unwrap();
    let commands = if hook.is_empty() {
        String::new()
    } else {
        r#", "commands": {"command_check": {"executed_on": ["post_deploy"]}}"#.to_string()
    };
    std::fs::write(job.join("manifest.json"), format!(r#"{{"certs": {certs}{commands}}}"#)).unwrap();
    if !hook.is_empty() {
        std::fs::write(job.join("_modules/command_check.py"), hook).unwrap();
    }
    tmp
}

#[test]
fn one_certificate_is_shared_by_every_allocation() {
    let tmp = svc_bucket(r#"{"cluster": {"one": true, "key_type": "ed25519", "pkcs8": true}}"#, "");
    let d = tmp.path();
    ok(d, &["apply", "--auto-approve"]);
    let pems: Vec<String> = (1..=3)
        .map(|i| ok(d, &["kv", "get", &format!("maand/job/svc/worker/10.0.0.{i}"), "certs/cluster.crt"]))
        .collect();
    assert!(pems[0] == pems[1] && pems[1] == pems[2], "the same PEM on every allocation");
    let keys: Vec<String> = (1..=3)
        .map(|i| ok(d, &["kv", "get", &format!("maand/job/svc/worker/10.0.0.{i}"), "certs/cluster.key", "--reveal"]))
        .collect();
    assert!(keys[0] == keys[1] && keys[1] == keys[2] && keys[0].contains("BEGIN PRIVATE KEY"));
    assert!(verify(d, &pems[0], NOW_UNIX).contains(": OK"), "{}", verify(d, &pems[0], NOW_UNIX));
    assert!(
        sans(d, &pems[0])
            .contains("IP Address:127.0.0.1, IP Address:10.0.0.1, IP Address:10.0.0.2, IP Address:10.0.0.3")
    );
    assert!(ok(d, &["plan"]).contains("No changes."));
}

#[test]
fn an_allocation_hook_reads_its_own_key_and_no_one_elses() {
    let hook = r#"
import os, kvform_hook as kv
me = os.environ["ALLOCATION_IP"]
key = kv.get("maand/job/svc/worker/" + me, "certs/tls.key")
crt = kv.get("maand/job/svc/worker/" + me, "certs/tls.crt")
ca = kv.get("maand/worker", "certs/ca.crt")
other = "10.0.0.2" if me != "10.0.0.2" else "10.0.0.1"
try:
    kv.get("maand/job/svc/worker/" + other, "certs/tls.key")
    denied = "no"
except kv.KvformHookError as e:
    denied = str(e.status)
kv.put("check_" + me.replace(".", "_"), "%s %s %s %s" % ("EC PRIVATE KEY" in key, "CERTIFICATE" in crt, "CERTIFICATE" in ca, denied))
print("key in hand: " + key)
"#;
    let tmp = svc_bucket(r#"{"tls": {}}"#, hook);
    let d = tmp.path();
    let out = ok(d, &["apply", "--auto-approve", "-v"]);
    assert!(
        out.contains("key in hand: (sensitive)") || !out.contains("key in hand"),
        "the key is redacted from hook output:\n{out}"
    );
    for i in 1..=3 {
        assert_eq!(ok(d, &["kv", "get", "vars/job/svc", &format!("check_10_0_0_{i}")]).trim(), "True True True 403");
    }
    let logs = std::process::Command::new("grep")
        .args(["-r", "PRIVATE KEY", d.join("logs").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(logs.stdout.is_empty(), "no private key in the hook logs: {}", String::from_utf8_lossy(&logs.stdout));
}

/// Every `key_type`, `pkcs8` true and false (ed25519 has only PKCS#8): the key loads with
/// `openssl pkey` and its public key is the certificate's; the traditional ECDSA key (the
/// default declaration, maand's usual one) is SEC1 with the named-curve parameters (RFC 5915);
/// every leaf says `CA:FALSE` (maand's template, `build/build_certs.go` 472-481).
#[test]
fn every_key_type_loads_with_openssl_and_matches_its_certificate() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    ok(d, &["init", "-q"]);
    std::fs::write(d.join("workspace/workers.json"), r#"[{"host": "10.0.0.1", "labels": ["svc"]}]"#).unwrap();
    let decls = [
        ("default", r#"{"subject": {"common_name": "svc"}}"#, "EC PRIVATE KEY"),
        ("ec-pkcs8", r#"{"key_type": "ecdsa-p256", "pkcs8": true}"#, "PRIVATE KEY"),
        ("ec-sec1", r#"{"key_type": "ecdsa-p256", "pkcs8": false}"#, "EC PRIVATE KEY"),
        ("rsa2048", r#"{"key_type": "rsa-2048"}"#, "RSA PRIVATE KEY"),
        ("rsa2048-pkcs8", r#"{"key_type": "rsa-2048", "pkcs8": true}"#, "PRIVATE KEY"),
        ("rsa4096", r#"{"key_type": "rsa-4096"}"#, "RSA PRIVATE KEY"),
        ("rsa4096-pkcs8", r#"{"key_type": "rsa-4096", "pkcs8": true}"#, "PRIVATE KEY"),
        ("ed", r#"{"key_type": "ed25519", "pkcs8": true}"#, "PRIVATE KEY"),
    ];
    let certs: Vec<String> = decls.iter().map(|(n, j, _)| format!("\"{n}\": {j}")).collect();
    let job = d.join("workspace/jobs/svc");
    std::fs::create_dir_all(&job).unwrap();
    std::fs::write(job.join("manifest.json"), format!(r#"{{"certs": {{{}}}}}"#, certs.join(", "))).unwrap();
    ok(d, &["apply", "--auto-approve"]);

    let ns = "maand/job/svc/worker/10.0.0.1";
    for (name, _, label) in decls {
        let crt = d.join(format!("{name}.crt"));
        let key = d.join(format!("{name}.key"));
        std::fs::write(&crt, ok(d, &["kv", "get", ns, &format!("certs/{name}.crt")])).unwrap();
        let pem = ok(d, &["kv", "get", ns, &format!("certs/{name}.key"), "--reveal"]);
        assert!(pem.starts_with(&format!("-----BEGIN {label}-----\n")), "{name}: {}", pem.lines().next().unwrap());
        std::fs::write(&key, pem).unwrap();
        let (crt, key) = (crt.to_str().unwrap(), key.to_str().unwrap());
        let loaded = openssl(&["pkey", "-in", key, "-noout"]);
        assert!(loaded.status.success(), "{name}: openssl pkey: {}", String::from_utf8_lossy(&loaded.stderr));
        let from_key = openssl(&["pkey", "-in", key, "-pubout"]);
        let from_crt = openssl(&["x509", "-in", crt, "-noout", "-pubkey"]);
        assert!(from_key.status.success() && from_crt.status.success(), "{name}");
        assert_eq!(String::from_utf8_lossy(&from_key.stdout), String::from_utf8_lossy(&from_crt.stdout), "{name}");
        let text = String::from_utf8_lossy(&openssl(&["x509", "-in", crt, "-noout", "-text"]).stdout).into_owned();
        assert!(text.contains("X509v3 Basic Constraints: critical\n                CA:FALSE"), "{name}: {text}");
        assert!(text.contains("Digital Signature, Key Encipherment"), "{name}: {text}");
        if label == "EC PRIVATE KEY" {
            let ec = openssl(&["ec", "-in", key, "-noout", "-text"]);
            let ec = String::from_utf8_lossy(&ec.stdout);
            assert!(ec.contains("ASN1 OID: prime256v1"), "{name}: the named curve is in the key: {ec}");
        }
    }
}

/// `sql` on the bucket's own tables, straight from the database (SQLite file or the bucket's
/// PostgreSQL schema), not through kvform: what a tampering hand does.
fn raw_sql(dir: &Path, sql: &str, params: [&str; 2]) -> Option<String> {
    match tf_support::state_location(dir) {
        kvform::state::Location::Sqlite(path) => {
            let c = rusqlite::Connection::open(path).unwrap();
            if sql.starts_with("SELECT") {
                Some(c.query_row(sql, [params[0]], |r| r.get(0)).unwrap())
            } else {
                c.execute(sql, params).unwrap();
                None
            }
        }
        kvform::state::Location::Postgres(pg) => {
            let schema =
                kvform::state::postgres::bucket_schema(&pg.schema, pg.bucket_id.expect("an initialised bucket"));
            let url = std::env::var(&pg.url_env).unwrap();
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            c.batch_execute(&format!("SET search_path TO \"{schema}\"")).unwrap();
            let sql = sql.replace("?1", "$1").replace("?2", "$2");
            if sql.starts_with("SELECT") {
                Some(c.query_one(&sql, &[&params[0]]).unwrap().get(0))
            } else {
                c.execute(&sql, &[&params[0], &params[1]]).unwrap();
                None
            }
        }
    }
}

/// SPEC §8: a stored key that does not unseal or parse (a tampered row, or another key's
/// sealed value copied over it) is re-issued by `plan --refresh` / `apply --refresh`, not
/// left as "No changes" while `state check` flags it.
#[test]
fn an_undecodable_key_is_reissued() {
    let dir = quickstart_copy();
    undecodable_key_reissued(dir.path());
}

#[test]
fn an_undecodable_key_is_reissued_on_postgres() {
    if tf_support::pg_url("an_undecodable_key_is_reissued_on_postgres").is_none() {
        return;
    }
    let dir = quickstart_copy();
    let block = tf_support::pg_state_block();
    let _drop = tf_support::DropRegistry(tf_support::registry_of(&block));
    let hcl = std::fs::read_to_string(dir.path().join("kvform.hcl")).unwrap();
    let hcl = hcl.replace("state {\n  path = \"data/kvform.db\"\n}\n", &block);
    assert!(hcl.contains("postgres"), "the quickstart's state block moved: {hcl}");
    std::fs::write(dir.path().join("kvform.hcl"), hcl).unwrap();
    ok(dir.path(), &["init", "-q"]);
    undecodable_key_reissued(dir.path());
    assert!(!dir.path().join("data/kvform.db").exists(), "the PostgreSQL bucket wrote no SQLite file");
}

fn undecodable_key_reissued(d: &Path) {
    ok(d, &["apply", "--auto-approve"]);
    let (ns1, ns2) = ("maand/job/api/worker/10.0.0.1", "maand/job/api/worker/10.0.0.2");
    let select = "SELECT value FROM latest WHERE namespace = ?1 AND key = 'certs/server.key'";
    let update = "UPDATE latest SET value = ?2 WHERE namespace = ?1 AND key = 'certs/server.key'";
    let reissue = "certs/server.key = (sensitive, known after apply)  # reissue: the private key cannot be read";
    let other = raw_sql(d, select, [ns2, ""]).unwrap();
    for (what, value) in [("garbage", "kvs1:not-a-sealed-value"), ("another key's sealed value", other.as_str())] {
        raw_sql(d, update, [ns1, value]);
        if what == "garbage" {
            let check = kvform_at(d, NOW, &["state", "check"]);
            assert!(String::from_utf8_lossy(&check.stderr).contains("certs/server.key"), "state check flags it");
        }
        let plan = ok(d, &["plan", "--refresh"]);
        assert!(plan.contains(reissue), "{what}:\n{plan}");
        assert!(plan.contains("certs/server.crt = (known after apply)"), "{what}:\n{plan}");
        assert!(!plan.contains(ns2), "{what}: only the damaged one:\n{plan}");
        ok(d, &["apply", "--auto-approve", "--refresh"]);
        let kf = d.join("server.key");
        std::fs::write(&kf, ok(d, &["kv", "get", ns1, "certs/server.key", "--reveal"])).unwrap();
        std::fs::write(d.join("leaf.pem"), ok(d, &["kv", "get", ns1, "certs/server.crt"])).unwrap();
        let pub_of = |args: &[&str]| String::from_utf8(openssl(args).stdout).unwrap();
        let from_key = pub_of(&["pkey", "-in", kf.to_str().unwrap(), "-pubout"]);
        assert!(from_key.contains("BEGIN PUBLIC KEY"), "{what}: the new key loads");
        assert_eq!(from_key, pub_of(&["x509", "-in", d.join("leaf.pem").to_str().unwrap(), "-noout", "-pubkey"]));
        assert!(ok(d, &["plan", "--refresh"]).contains("No changes."), "{what}: converged");
    }
}
