//! Behaviour of the JSON parsers on valid input (normalisation, defaults, scripts,
//! canonical demand config) and of the cross-file checks that only warn or that need a
//! bucket.jobs reservation. Error wording and positions are covered by the golden error
//! corpus (`testdata/errors/`).

use crate::diag::{Diagnostics, Severity, SourceMap, Span, Spanned};
use crate::workspace::types::{Event, JobConfig};
use crate::workspace::{checks, json_files, load};
use std::path::Path;

fn bucket(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (rel, text) in files {
        let p = dir.path().join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
    }
    dir
}

#[cfg(unix)]
fn make_executable(p: &Path) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn rendered(d: &Diagnostics, s: &SourceMap) -> String {
    d.render(s, false)
}

#[test]
fn workers_are_normalised() {
    let dir = bucket(&[(
        "workspace/workers.json",
        r#"[
          {"host": " 10.0.0.1 ", "hostname": "api-1", "labels": [" API ", "Worker", "edge"],
           "memory": "4 GB", "cpu": "2.4 ghz", "tags": {" rack ": " R1 "}, "position": 7},
          {"host": "10.0.0.2", "memory": 512, "cpu": 1500.5}
        ]"#,
    )]);
    let (mut s, mut d) = (SourceMap::new(), Diagnostics::new());
    let w = json_files::workers(dir.path(), &mut s, &mut d);
    assert!(d.is_empty(), "{}", rendered(&d, &s));
    assert_eq!(s.name(0), "workspace/workers.json");
    assert_eq!(w.len(), 2);
    assert_eq!(w[0].host, "10.0.0.1");
    assert_eq!(w[0].hostname.as_deref(), Some("api-1"));
    assert_eq!(w[0].labels, ["api", "worker", "edge"]);
    assert_eq!(w[0].memory_mb, Some(4096.0));
    assert_eq!(w[0].cpu_mhz, Some(2400.0));
    assert_eq!(w[0].tags.get("rack").map(String::as_str), Some("R1"));
    assert_eq!(w[0].position, Some(7));
    assert_eq!((w[1].index, w[1].position), (1, None));
    assert_eq!(w[1].labels, ["worker"]);
    assert_eq!((w[1].memory_mb, w[1].cpu_mhz), (Some(512.0), Some(1500.5)));
}

#[test]
fn missing_files_mean_nothing_declared() {
    let dir = bucket(&[]);
    let loaded = load(dir.path());
    assert!(loaded.diagnostics.is_empty());
    let ws = loaded.workspace.unwrap();
    assert!(ws.workers.is_empty() && ws.jobs.is_empty() && ws.disabled.jobs.is_empty());
}

#[test]
fn manifest_defaults() {
    let dir = bucket(&[("workspace/jobs/api/manifest.json", "{}"), ("workspace/jobs/no-manifest/README", "x")]);
    let (mut s, mut d) = (SourceMap::new(), Diagnostics::new());
    let jobs = json_files::jobs(dir.path(), &mut s, &mut d);
    assert!(d.is_empty(), "{}", rendered(&d, &s));
    assert_eq!(jobs.keys().collect::<Vec<_>>(), ["api"]);
    let job = &jobs["api"];
    assert_eq!(job.selectors, ["api"]);
    assert_eq!((job.max_concurrent_upgrades, job.max_concurrent_starts, job.min_allocations_count), (1, 0, 0));
    assert!(job.version.is_none() && job.memory.is_none() && job.cpu.is_none());
    assert!(job.ports.is_empty() && job.commands.is_empty());
    assert_eq!(s.name(job.span.file), "workspace/jobs/api/manifest.json");
}

#[cfg(unix)]
#[test]
fn manifest_full() {
    let dir = bucket(&[
        (
            "workspace/jobs/api/manifest.json",
            r#"{
              "version": " v1.2.3 ",
              "selectors": ["API", "edge"],
              "resources": {
                "memory": {"min": "512 mb"},
                "cpu": {"max": "2 ghz"},
                "ports": {"http": {}, "admin": 9000}
              },
              "commands": {
                "command_a": {"executed_on": ["post_deploy", "cli"],
                              "demands": {"job": "db", "command": "command_m",
                                          "config": {"z": [1, true, null], "min_version": 2, "a": {"y": "é\"", "b": 1.50}}}},
                "command_b": {"executed_on": []},
                "command_c": {"executed_on": ["health_check"]}
              },
              "max_concurrent_upgrades": 3,
              "max_concurrent_starts": 2,
              "min_allocations_count": 1
            }"#,
        ),
        ("workspace/jobs/api/_modules/command_a.py", ""),
        ("workspace/jobs/api/_modules/command_b.sh", ""),
        ("workspace/jobs/api/_modules/command_c", "#!/bin/sh\n"),
        ("workspace/jobs/db/manifest.json", r#"{"version": "1"}"#),
    ]);
    make_executable(&dir.path().join("workspace/jobs/api/_modules/command_c"));
    let (mut s, mut d) = (SourceMap::new(), Diagnostics::new());
    let jobs = json_files::jobs(dir.path(), &mut s, &mut d);
    assert!(d.is_empty(), "{}", rendered(&d, &s));
    let job = &jobs["api"];
    assert_eq!(job.version.as_ref().unwrap().value, "v1.2.3");
    assert_eq!(job.selectors, ["api", "edge"]);
    let mem = job.memory.unwrap();
    assert_eq!((mem.min, mem.max), (512.0, 512.0));
    let cpu = job.cpu.unwrap();
    assert_eq!((cpu.min, cpu.max), (0.0, 2000.0));
    let ports: Vec<(&str, Option<u16>)> = job.ports.iter().map(|p| (p.name.as_str(), p.fixed)).collect();
    assert_eq!(ports, [("http", None), ("admin", Some(9000))]);
    let a = &job.commands["command_a"];
    assert_eq!(a.executed_on, [Event::PostDeploy, Event::Cli]);
    assert_eq!(a.script, Path::new("workspace/jobs/api/_modules/command_a.py"));
    let demand = a.demands.as_ref().unwrap();
    assert_eq!((demand.job.as_str(), demand.command.as_str()), ("db", "command_m"));
    assert_eq!(demand.config_json, r#"{"a":{"b":1.50,"y":"é\""},"min_version":2,"z":[1,true,null]}"#);
    assert_eq!(demand.min_version.as_ref().map(|v| v.value.as_str()), Some("2"));
    assert!(demand.max_version.is_none());
    let src = s.source(demand.job_span.file);
    assert_eq!(&src[demand.job_span.range()], "\"db\"");
    assert_eq!(&src[demand.command_span.range()], "\"command_m\"");
    assert_eq!(job.commands["command_b"].script, Path::new("workspace/jobs/api/_modules/command_b.sh"));
    assert!(job.commands["command_b"].demands.is_none());
    assert_eq!(job.commands["command_c"].script, Path::new("workspace/jobs/api/_modules/command_c"));
    assert_eq!((job.max_concurrent_upgrades, job.max_concurrent_starts, job.min_allocations_count), (3, 2, 1));
}

#[test]
fn disabled_parses_jobs_and_workers() {
    let dir = bucket(&[(
        "workspace/disabled.json",
        r#"{"jobs": {"api": {}, "db": {"allocations": [" 10.0.0.1 "]}}, "workers": ["10.0.0.2"]}"#,
    )]);
    let (mut s, mut d) = (SourceMap::new(), Diagnostics::new());
    let dis = json_files::disabled(dir.path(), &mut s, &mut d);
    assert!(d.is_empty(), "{}", rendered(&d, &s));
    assert!(dis.jobs["api"].allocations.is_empty());
    assert_eq!(dis.jobs["db"].allocations.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(), ["10.0.0.1"]);
    assert_eq!(dis.workers.iter().map(|a| a.value.as_str()).collect::<Vec<_>>(), ["10.0.0.2"]);
}

/// Warnings do not block loading; every unmatched name in disabled.json is reported.
#[test]
fn disabled_names_that_match_nothing_warn() {
    let dir = bucket(&[
        ("workspace/workers.json", r#"[{"host": "10.0.0.1", "labels": ["api"]}, {"host": "10.0.0.2"}]"#),
        ("workspace/jobs/api/manifest.json", "{}"),
        (
            "workspace/disabled.json",
            r#"{"jobs": {"apii": {}, "api": {"allocations": ["10.0.0.9", "10.0.0.2", "10.0.0.1"]}}, "workers": ["10.0.0.3"]}"#,
        ),
    ]);
    let loaded = load(dir.path());
    let out = rendered(&loaded.diagnostics, &loaded.sources);
    assert!(loaded.workspace.is_some(), "{out}");
    assert_eq!(loaded.diagnostics.warning_count(), 4, "{out}");
    assert!(loaded.diagnostics.iter().all(|d| d.severity == Severity::Warning));
    assert!(out.contains("disabled.json names unknown job `apii`"), "{out}");
    assert!(out.contains("did you mean `api`?"), "{out}");
    assert!(out.contains("disabled.json names unknown worker `10.0.0.9`"), "{out}");
    assert!(out.contains("job `api` has no allocation on `10.0.0.2`"), "{out}");
    assert!(out.contains("disabled.json names unknown worker `10.0.0.3`"), "{out}");
}

fn job_config(job: &str, memory: Option<f64>, span: Span) -> JobConfig {
    JobConfig {
        job: job.into(),
        memory_mb: memory.map(|m| Spanned::new(m, span)),
        cpu_mhz: None,
        vars: Vec::new(),
        span,
    }
}

/// bucket.jobs is parsed by the HCL side; the checks only need its typed blocks.
#[test]
fn reservations_and_unknown_blocks() {
    let dir =
        bucket(&[("workspace/jobs/api/manifest.json", r#"{"resources": {"memory": {"min": 256, "max": "1 gb"}}}"#)]);
    let mut loaded = load(dir.path());
    let mut ws = loaded.workspace.take().unwrap();
    let file =
        loaded.sources.add("workspace/bucket.jobs.conf", "job \"api\" {\n  memory = \"2 gb\"\n}\njob \"ap\" {}\n");
    ws.job_configs.insert("api".into(), job_config("api", Some(2048.0), Span::new(file, 23..29)));
    ws.job_configs.insert("ap".into(), job_config("ap", None, Span::new(file, 32..40)));
    let mut d = Diagnostics::new();
    checks::cross_file(&ws, &mut d);
    d.sort(&loaded.sources);
    let out = rendered(&d, &loaded.sources);
    assert_eq!((d.error_count(), d.warning_count()), (1, 1), "{out}");
    assert!(
        out.contains("memory reservation 2048 MB for job `api` is outside the manifest bounds 256..1024 MB"),
        "{out}"
    );
    assert!(out.contains("--> workspace/bucket.jobs.conf:2:12"), "{out}");
    assert!(out.contains("`resources.memory` of `api`"), "{out}");
    assert!(out.contains("bucket.jobs block for unknown job `ap`"), "{out}");

    // Within bounds: nothing to report.
    ws.job_configs.clear();
    ws.job_configs.insert("api".into(), job_config("api", Some(512.0), Span::new(file, 23..29)));
    let mut d = Diagnostics::new();
    checks::cross_file(&ws, &mut d);
    assert!(d.is_empty());
}

#[test]
fn a_valid_workspace_with_demands_loads_cleanly() {
    let dir = bucket(&[
        ("workspace/workers.json", r#"[{"host": "10.0.0.1", "labels": ["api", "db"]}]"#),
        (
            "workspace/jobs/api/manifest.json",
            r#"{"version": "1.0", "resources": {"ports": {"api_http": {}}},
                "commands": {"command_ready": {"executed_on": ["post_deploy"],
                  "demands": {"job": "db", "command": "command_migrate", "config": {"min_version": "2.0.0-rc1"}}}}}"#,
        ),
        ("workspace/jobs/api/_modules/command_ready.sh", ""),
        (
            "workspace/jobs/db/manifest.json",
            r#"{"version": "2.0.0", "resources": {"ports": {"db_port": 5432}}, "commands": {"command_migrate": {"executed_on": []}}}"#,
        ),
        ("workspace/jobs/db/_modules/command_migrate.py", ""),
    ]);
    let loaded = load(dir.path());
    assert!(loaded.diagnostics.is_empty(), "{}", rendered(&loaded.diagnostics, &loaded.sources));
    let ws = loaded.workspace.unwrap();
    assert_eq!(ws.jobs.len(), 2);
}

/// Every problem in a file is reported in one run, not just the first.
#[test]
fn reports_every_error_in_one_run() {
    let dir = bucket(&[(
        "workspace/workers.json",
        r#"[{"host": "a", "memory": "1 kb", "cpu": true, "lables": []}, {"host": "a"}, {}]"#,
    )]);
    let loaded = load(dir.path());
    assert!(loaded.workspace.is_none());
    assert_eq!(loaded.diagnostics.error_count(), 5, "{}", rendered(&loaded.diagnostics, &loaded.sources));
}
