//! End-to-end tests of [`super::desired`]: every KV key format on one small fleet, error
//! aggregation across steps, prior-dependent fields.

use super::desired;
use super::fixture::WsBuilder;
use super::placement::derived_id;
use super::render;
use super::types::{AllocState, Prior};
use uuid::Uuid;

fn bucket() -> Uuid {
    Uuid::from_u128(1)
}

fn prior() -> Prior {
    Prior { bucket_id: bucket(), ..Default::default() }
}

fn id(name: &str) -> String {
    derived_id(&bucket(), name).to_string()
}

/// The small fleet every key-format assertion uses (see the expectations below).
fn fleet_ws() -> crate::workspace::types::Workspace {
    WsBuilder::new()
        .worker_with("10.0.0.2", &["api"], |w| {
            w.position = Some(5);
            w.memory_mb = Some(1024.0);
        })
        .worker_with("10.0.0.1", &["API", "db"], |w| {
            w.memory_mb = Some(4096.0);
            w.cpu_mhz = Some(2400.5);
            w.hostname = Some("node1".into());
            w.tags.insert("zone".into(), "a".into());
        })
        .job("api")
        .version("api", "v1.2")
        .memory("api", 256.0, 512.0)
        .port("api", "api_http", None)
        .port("api", "api_admin", Some(8443))
        .job_var("api", "log_level", "info")
        .job("db")
        .version("db", "2.0.0")
        .cpu("db", 500.0, 1000.0)
        .job_config("db", Some(300.0), None)
        .job("idle")
        .job_var("idle", "owner", "me")
        .port("idle", "idle_http", None)
        .bucket_var("region", "eu")
        .demand_with("api", "db", |_| {})
        .disable_job("api", &["10.0.0.2"])
        .build()
}

#[test]
fn every_key_of_the_projection() {
    let mut ws = fleet_ws();
    let min = WsBuilder::new().spanned("2");
    ws.jobs.get_mut("api").unwrap().commands.values_mut().next().unwrap().demands.as_mut().unwrap().min_version =
        Some(min);
    let d = desired(&ws, &prior()).unwrap_or_else(|e| panic!("{e:?}"));
    let mut actual = Vec::new();
    // As readers see it: with the derived peer keys (10.0.0.2's api allocation is disabled
    // and still counts as a peer).
    for (ns, keys) in &crate::kv::derived::complete(&d.kv) {
        for (k, v) in keys {
            actual.push(format!("{ns} {k}={v}"));
        }
    }
    let expected = [
        "maand/bucket activejobs=api,db".to_string(),
        "maand/bucket api_admin=8443".into(),
        "maand/bucket api_http=30000".into(),
        format!("maand/bucket bucket_id={}", bucket()),
        "maand/bucket jobs=api,db,idle".into(),
        "maand/job/api cpu=0".into(),
        "maand/job/api deployment_seq=1".into(),
        format!("maand/job/api job_id={}", id("job/api")),
        "maand/job/api job_name=api".into(),
        "maand/job/api max_cpu_mhz=0".into(),
        "maand/job/api max_memory_mb=512".into(),
        "maand/job/api memory=512".into(),
        "maand/job/api min_cpu_mhz=0".into(),
        "maand/job/api min_memory_mb=256".into(),
        "maand/job/api name=api".into(),
        "maand/job/api placed_workers=10.0.0.1,10.0.0.2".into(),
        "maand/job/api rollout_order=10.0.0.1".into(),
        "maand/job/api selectors=api".into(),
        "maand/job/api version=v1.2".into(),
        "maand/job/api worker_0=10.0.0.1".into(),
        "maand/job/api workers=10.0.0.1".into(),
        "maand/job/api workers_length=1".into(),
        "maand/job/api/worker/10.0.0.1 api_allocation_index=0".into(),
        "maand/job/api/worker/10.0.0.1 peer_workers=10.0.0.2".into(),
        "maand/job/api/worker/10.0.0.1 version=v1.2".into(),
        "maand/job/api/worker/10.0.0.2 api_allocation_index=1".into(),
        "maand/job/api/worker/10.0.0.2 peer_workers=10.0.0.1".into(),
        "maand/job/api/worker/10.0.0.2 version=v1.2".into(),
        "maand/job/db cpu=1000".into(),
        "maand/job/db deployment_seq=0".into(),
        format!("maand/job/db job_id={}", id("job/db")),
        "maand/job/db job_name=db".into(),
        "maand/job/db max_cpu_mhz=1000".into(),
        "maand/job/db max_memory_mb=300".into(),
        "maand/job/db memory=300".into(),
        "maand/job/db min_cpu_mhz=500".into(),
        "maand/job/db min_memory_mb=300".into(),
        "maand/job/db name=db".into(),
        "maand/job/db placed_workers=10.0.0.1".into(),
        "maand/job/db rollout_order=10.0.0.1".into(),
        "maand/job/db selectors=db".into(),
        "maand/job/db version=2.0.0".into(),
        "maand/job/db worker_0=10.0.0.1".into(),
        "maand/job/db workers=10.0.0.1".into(),
        "maand/job/db workers_length=1".into(),
        "maand/job/db/worker/10.0.0.1 db_allocation_index=0".into(),
        "maand/job/db/worker/10.0.0.1 peer_workers=".into(),
        "maand/job/db/worker/10.0.0.1 version=2.0.0".into(),
        // Never placed (no worker has the label): keeps its catalog, as maand's build does.
        "maand/job/idle cpu=0".into(),
        "maand/job/idle deployment_seq=0".into(),
        format!("maand/job/idle job_id={}", id("job/idle")),
        "maand/job/idle job_name=idle".into(),
        "maand/job/idle max_cpu_mhz=0".into(),
        "maand/job/idle max_memory_mb=0".into(),
        "maand/job/idle memory=0".into(),
        "maand/job/idle min_cpu_mhz=0".into(),
        "maand/job/idle min_memory_mb=0".into(),
        "maand/job/idle name=idle".into(),
        "maand/job/idle placed_workers=".into(),
        "maand/job/idle rollout_order=".into(),
        "maand/job/idle selectors=idle".into(),
        "maand/job/idle version=0.0.0".into(),
        "maand/job/idle workers=".into(),
        "maand/job/idle workers_length=0".into(),
        "maand/prometheus scrape_configs=[]".into(),
        "maand/prometheus scrape_jobs=".into(),
        "maand/prometheus scrape_jobs_length=0".into(),
        "maand/worker api_0=10.0.0.1".into(),
        "maand/worker api_1=10.0.0.2".into(),
        format!("maand/worker api_label_id={}", id("label/api")),
        "maand/worker api_workers=10.0.0.1,10.0.0.2".into(),
        "maand/worker api_workers_length=2".into(),
        "maand/worker db_0=10.0.0.1".into(),
        format!("maand/worker db_label_id={}", id("label/db")),
        "maand/worker db_workers=10.0.0.1".into(),
        "maand/worker db_workers_length=1".into(),
        "maand/worker worker_0=10.0.0.1".into(),
        "maand/worker worker_1=10.0.0.2".into(),
        format!("maand/worker worker_label_id={}", id("label/worker")),
        "maand/worker worker_workers=10.0.0.1,10.0.0.2".into(),
        "maand/worker worker_workers_length=2".into(),
        "maand/worker/10.0.0.1 api_allocation_index=0".into(),
        "maand/worker/10.0.0.1 api_peers=10.0.0.2".into(),
        "maand/worker/10.0.0.1 db_allocation_index=0".into(),
        "maand/worker/10.0.0.1 hostname=node1".into(),
        "maand/worker/10.0.0.1 jobs=api,db".into(),
        "maand/worker/10.0.0.1 labels=api,db,worker".into(),
        "maand/worker/10.0.0.1 position=1".into(),
        "maand/worker/10.0.0.1 worker_allocation_index=0".into(),
        "maand/worker/10.0.0.1 worker_cpu_mhz=2400.5".into(),
        format!("maand/worker/10.0.0.1 worker_id={}", id("worker/10.0.0.1")),
        "maand/worker/10.0.0.1 worker_ip=10.0.0.1".into(),
        "maand/worker/10.0.0.1 worker_memory_mb=4096".into(),
        "maand/worker/10.0.0.1 worker_peers=10.0.0.2".into(),
        "maand/worker/10.0.0.1/tags zone=a".into(),
        "maand/worker/10.0.0.2 api_allocation_index=1".into(),
        "maand/worker/10.0.0.2 api_peers=10.0.0.1".into(),
        "maand/worker/10.0.0.2 jobs=".into(),
        "maand/worker/10.0.0.2 labels=api,worker".into(),
        "maand/worker/10.0.0.2 position=5".into(),
        "maand/worker/10.0.0.2 worker_allocation_index=1".into(),
        "maand/worker/10.0.0.2 worker_cpu_mhz=0".into(),
        format!("maand/worker/10.0.0.2 worker_id={}", id("worker/10.0.0.2")),
        "maand/worker/10.0.0.2 worker_ip=10.0.0.2".into(),
        "maand/worker/10.0.0.2 worker_memory_mb=1024".into(),
        "maand/worker/10.0.0.2 worker_peers=10.0.0.1".into(),
        "vars/bucket region=eu".into(),
        "vars/bucket/job/db memory=300 mb".into(),
        "vars/job/api log_level=info".into(),
        "vars/job/idle owner=me".into(),
    ];
    let diff: Vec<String> = similar::TextDiff::from_slices(
        &expected.iter().map(String::as_str).collect::<Vec<_>>(),
        &actual.iter().map(String::as_str).collect::<Vec<_>>(),
    )
    .iter_all_changes()
    .filter(|c| c.tag() != similar::ChangeTag::Equal)
    .map(|c| format!("{}{}", c.tag(), c.value()))
    .collect();
    assert!(diff.is_empty(), "projection differs:\n{}", diff.join("\n"));

    assert_eq!(d.waves, [vec!["db", "idle"], vec!["api"]]);
    assert_eq!(d.jobs["api"].active_hosts, ["10.0.0.1"]);
    assert_eq!(d.jobs["api"].disabled_hosts, ["10.0.0.2"]);
    assert_eq!(d.jobs["api"].upstreams, ["db"]);
    assert_eq!(d.workers.iter().map(|w| w.host.as_str()).collect::<Vec<_>>(), ["10.0.0.1", "10.0.0.2"]);
}

#[test]
fn empty_workspace_projects_only_the_bucket_keys_and_an_empty_catalog() {
    let d = desired(&WsBuilder::new().build(), &prior()).unwrap();
    assert_eq!(
        render::text(&d),
        format!(
            "# bucket_id {}\n# waves: none\nmaand/bucket  activejobs = \"\"\nmaand/bucket  bucket_id = \"{}\"\nmaand/bucket  jobs = \"\"\n\
             maand/prometheus  scrape_configs = \"[]\"\nmaand/prometheus  scrape_jobs = \"\"\nmaand/prometheus  scrape_jobs_length = \"0\"\n",
            bucket(),
            bucket()
        )
    );
}

#[test]
fn prior_decides_new_removed_and_stable_ports() {
    let ws =
        WsBuilder::new().worker("h1", &["api"]).worker("h2", &["api"]).job("api").port("api", "api_http", None).build();
    let mut p = prior();
    p.ports.insert("api_http".into(), 30007);
    p.allocations.insert(("api".into(), "h1".into()));
    p.allocations.insert(("api".into(), "old".into()));
    p.allocations.insert(("gone".into(), "h1".into()));
    p.workers.extend(["h1".to_string(), "old".to_string()]);
    p.jobs.extend(["api".to_string(), "gone".to_string()]);
    let d = desired(&ws, &p).unwrap();
    let allocs: Vec<(&str, &str, AllocState, bool)> =
        d.allocations.iter().map(|a| (a.job.as_str(), a.host.as_str(), a.state, a.is_new)).collect();
    assert_eq!(
        allocs,
        [
            ("api", "h1", AllocState::Active, false),
            ("api", "h2", AllocState::Active, true),
            ("api", "old", AllocState::Removed, false),
            ("gone", "h1", AllocState::Removed, false),
        ]
    );
    assert_eq!(d.allocations[0].alloc_id, derived_id(&bucket(), "alloc/api/h1"));
    assert_eq!(d.removed_jobs.iter().collect::<Vec<_>>(), ["gone"]);
    assert_eq!(d.removed_workers.iter().collect::<Vec<_>>(), ["old"]);
    assert_eq!(d.kv["maand/bucket"]["api_http"], "30007");
    assert!(!d.kv.contains_key("maand/job/api/worker/old"));
    assert!(!d.kv.contains_key("maand/job/gone"));
}

#[test]
fn jobs_placed_nowhere_or_fully_disabled() {
    let ws = WsBuilder::new()
        .worker("h1", &["drained"])
        .job("nowhere")
        .port("nowhere", "nowhere_http", None)
        .job("drained")
        .port("drained", "drained_http", None)
        .disable_job("drained", &[])
        .build();
    let d = desired(&ws, &prior()).unwrap();
    assert_eq!(d.kv["maand/bucket"]["jobs"], "drained,nowhere");
    assert_eq!(d.kv["maand/bucket"]["activejobs"], "");
    assert!(!d.kv["maand/bucket"].contains_key("drained_http"));
    assert!(!d.kv["maand/bucket"].contains_key("nowhere_http"));
    // Never placed: the catalog stays, with empty lists (maand's build writes it too).
    assert_eq!(d.kv["maand/job/nowhere"]["workers"], "");
    assert_eq!(d.kv["maand/job/nowhere"]["workers_length"], "0");
    assert_eq!(d.kv["maand/job/nowhere"]["rollout_order"], "");
    assert_eq!(d.kv["maand/job/nowhere"]["version"], "0.0.0");
    assert!(d.purged_jobs.is_empty());
    // A drained job keeps its namespaces, with no active workers.
    assert_eq!(d.kv["maand/job/drained"]["workers"], "");
    assert_eq!(d.kv["maand/job/drained"]["workers_length"], "0");
    assert_eq!(d.kv["maand/job/drained/worker/h1"]["drained_allocation_index"], "0");
    assert_eq!(d.kv["maand/worker/h1"]["jobs"], "");
}

#[test]
fn jobs_whose_allocations_all_went_stay_purged_until_placed() {
    let ws = WsBuilder::new().worker("h1", &["api"]).job("api").job("lost").job("recorded").build();
    let mut p = prior();
    p.allocations.insert(("lost".into(), "h1".into()));
    p.allocations.insert(("gone".into(), "h1".into()));
    p.purged_jobs.insert("recorded".into());
    p.purged_jobs.insert("api".into());
    let d = desired(&ws, &p).unwrap();
    // `api` is placed again, so it leaves the record; `gone` left the workspace with
    // allocations, so it is recorded too (it stays purged if it comes back unplaced).
    assert_eq!(d.purged_jobs.iter().collect::<Vec<_>>(), ["gone", "lost", "recorded"]);
    for job in ["lost", "recorded", "gone"] {
        assert!(!d.kv.contains_key(&format!("maand/job/{job}")), "{job}");
    }
    assert_eq!(d.kv["maand/job/api"]["workers"], "h1");
}

#[test]
fn errors_of_every_step_are_reported_together() {
    let ws = WsBuilder::new()
        .worker_with("h1", &["a", "b"], |w| w.memory_mb = Some(100.0))
        .job("a")
        .memory("a", 200.0, 200.0)
        .port("a", "a_p", Some(9000))
        .job("b")
        .port("b", "b_p", Some(9000))
        .demand("a", "b")
        .demand("b", "a")
        .job_with("c", |j| j.min_allocations_count = 1)
        .build();
    let e = desired(&ws, &prior()).unwrap_err();
    let mut msgs: Vec<&str> = e.iter().map(|d| d.message.as_str()).collect();
    msgs.sort();
    assert_eq!(
        msgs,
        [
            "dependency cycle: a -> b -> a",
            "job `c` needs at least 1 allocation but is placed on 0 workers",
            "port 9000 is claimed by both `a.a_p` and `b.b_p`",
            "worker `h1` has 100 MB of memory but its active allocations reserve 200 MB",
        ]
    );
}

#[test]
fn version_constraints_are_checked_inclusively() {
    let build = |min: &str, max: &str| {
        let mut b = WsBuilder::new();
        let (min, max) = (b.spanned(min), b.spanned(max));
        b.job("api")
            .job("db")
            .version("db", "2.0.0-rc1")
            .demand_with("api", "db", |d| {
                d.min_version = Some(min);
                d.max_version = Some(max);
            })
            .build()
    };
    assert!(desired(&build("2.0.0-rc1", "2.0.0-rc1"), &prior()).is_ok());
    assert!(desired(&build("1", "2"), &prior()).is_ok());
    let e = desired(&build("2", "3"), &prior()).unwrap_err();
    assert_eq!(e.0.len(), 1);
    assert_eq!(e.0[0].message, "job `api` demands `db` >= 2 but `db` is version 2.0.0-rc1");
    assert_eq!(e.0[0].secondary[0].1, "`db` is version 2.0.0-rc1");
    let e = desired(&build("1", "1.9"), &prior()).unwrap_err();
    assert_eq!(e.0[0].message, "job `api` demands `db` <= 1.9 but `db` is version 2.0.0-rc1");
}

#[test]
fn json_rendering_is_sorted_and_parses() {
    let d = desired(&fleet_ws(), &prior()).unwrap();
    let s = render::json(&d);
    let v: serde_json::Value = serde_json::from_str(&s).unwrap();
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted);
    assert_eq!(v["kv"]["maand/job/api"]["workers"], "10.0.0.1");
    assert_eq!(v["allocations"][1]["state"], "disabled");
    assert_eq!(s, render::json(&desired(&fleet_ws(), &prior()).unwrap()));
}

#[test]
fn model_diagnostics_render_with_their_spans() {
    let ws = WsBuilder::new()
        .job("api")
        .job("db")
        .job("cache")
        .demand("api", "db")
        .demand("db", "cache")
        .demand("cache", "api")
        .build();
    let mut sources = crate::diag::SourceMap::new();
    let text: String = (0..100).map(|i| format!("line {i:03}\n")).collect();
    sources.add("workspace/jobs/api/manifest.json", text);
    let e = desired(&ws, &prior()).unwrap_err();
    let out = e.render(&sources, false);
    assert!(out.starts_with("error: dependency cycle: api -> db -> cache -> api\n"), "{out}");
    assert!(out.contains("--> workspace/jobs/api/manifest.json:"), "{out}");
    for label in ["`api` demands `db`", "`db` demands `cache`", "`cache` demands `api`"] {
        assert!(out.contains(label), "missing {label}:\n{out}");
    }
    assert!(out.contains("= help: a job cannot depend on itself"), "{out}");
}
