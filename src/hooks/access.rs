//! Who may read and write which namespace from a hook — SPEC §6 as ONE table,
//! [`ACCESS_RULES`].
//!
//! A request is allowed when some row grants it: the namespace falls in the row's
//! [`Scope`] (relative to the calling allocation: its job J, its host H and the jobs J
//! demands), the operation is one of the row's [`Op`]s, the hook's event is one of the
//! row's events and, for a row limited to one key, the key is that key. Everything else is
//! denied, and the [`Denial`] names the rule that denied it so a hook author can see why.
//!
//! Namespaces are compared through [`NamespaceKind::parse`], i.e. by whole path segment:
//! `maand/job/api2` never matches the job `api`.
//!
//! `kvform cat kv --jobs` reuses [`readable`] to list exactly what a job's hooks can see.

use crate::kv::NamespaceKind;
use crate::workspace::types::Event;

/// What a request does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Op {
    /// `GET /kv`
    Get,
    /// `GET /kv/keys` (key names)
    Keys,
    /// `PUT /kv`
    Put,
    /// `DELETE /kv`
    Delete,
    /// `PUT /kv/secret`
    PutSecret,
    /// `DELETE /kv/secret`
    DeleteSecret,
}

impl Op {
    pub const ALL: [Op; 6] = [Op::Get, Op::Keys, Op::Put, Op::Delete, Op::PutSecret, Op::DeleteSecret];

    pub fn is_write(self) -> bool {
        !matches!(self, Op::Get | Op::Keys)
    }

    /// The route as a hook author writes it.
    pub fn route(self) -> &'static str {
        match self {
            Op::Get => "GET /kv",
            Op::Keys => "GET /kv/keys",
            Op::Put => "PUT /kv",
            Op::Delete => "DELETE /kv",
            Op::PutSecret => "PUT /kv/secret",
            Op::DeleteSecret => "DELETE /kv/secret",
        }
    }
}

/// A namespace class relative to the calling allocation (job J on host H).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// `maand/bucket`
    Bucket,
    /// `vars/bucket`
    BucketVars,
    /// `maand/worker`
    Workers,
    /// `maand/worker/H`
    OwnWorker,
    /// `maand/worker/H/tags`
    OwnWorkerTags,
    /// `maand/job/J`
    OwnJob,
    /// `vars/bucket/job/J`
    OwnBucketJobVars,
    /// `vars/job/J`
    OwnJobVars,
    /// `secrets/job/J`
    OwnJobSecrets,
    /// `maand/job/J/worker/H`
    OwnAllocation,
    /// `maand/job/U` for a job U that J demands
    DemandedJob,
    /// `vars/job/U` for a job U that J demands
    DemandedJobVars,
    /// `secrets/job/U` for a job U that J demands
    DemandedJobSecrets,
    /// `maand/prometheus` (every allocation, as in maand)
    Prometheus,
}

/// One row of the access table.
#[derive(Debug)]
pub struct AccessRule {
    /// Stable name, reported in denials (`{"error": ..., "rule": <name>}`).
    pub name: &'static str,
    pub scope: Scope,
    pub ops: &'static [Op],
    pub events: &'static [Event],
    /// `Some(k)`: the row grants only key `k`.
    pub key: Option<&'static str>,
}

const READ: &[Op] = &[Op::Get];
const READ_KEYS: &[Op] = &[Op::Get, Op::Keys];
const ALL_EVENTS: &[Event] = &Event::ALL;
/// `health_check` hooks are read-only (SPEC §6): every write row leaves it out.
const WRITE_EVENTS: &[Event] = &[Event::PostBuild, Event::PreDeploy, Event::PostDeploy, Event::Cli];
/// `rollout_order` only matters before the allocations roll out.
const ROLLOUT_EVENTS: &[Event] = &[Event::PreDeploy, Event::Cli];

/// The access table (SPEC §6). Data, not code: change access here and nowhere else.
pub const ACCESS_RULES: &[AccessRule] = &[
    AccessRule { name: "read-bucket", scope: Scope::Bucket, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-bucket-vars", scope: Scope::BucketVars, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-workers", scope: Scope::Workers, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-own-worker", scope: Scope::OwnWorker, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-own-worker-tags", scope: Scope::OwnWorkerTags, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-own-job", scope: Scope::OwnJob, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule {
        name: "write-own-rollout-order",
        scope: Scope::OwnJob,
        ops: &[Op::Put],
        events: ROLLOUT_EVENTS,
        key: Some("rollout_order"),
    },
    AccessRule {
        name: "read-own-bucket-job-vars",
        scope: Scope::OwnBucketJobVars,
        ops: READ,
        events: ALL_EVENTS,
        key: None,
    },
    AccessRule { name: "read-own-job-vars", scope: Scope::OwnJobVars, ops: READ_KEYS, events: ALL_EVENTS, key: None },
    AccessRule {
        name: "write-own-job-vars",
        scope: Scope::OwnJobVars,
        ops: &[Op::Put, Op::Delete],
        events: WRITE_EVENTS,
        key: None,
    },
    AccessRule {
        name: "read-own-job-secrets",
        scope: Scope::OwnJobSecrets,
        ops: READ_KEYS,
        events: ALL_EVENTS,
        key: None,
    },
    AccessRule {
        name: "write-own-job-secrets",
        scope: Scope::OwnJobSecrets,
        ops: &[Op::PutSecret, Op::DeleteSecret],
        events: WRITE_EVENTS,
        key: None,
    },
    AccessRule { name: "read-own-allocation", scope: Scope::OwnAllocation, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule { name: "read-demanded-job", scope: Scope::DemandedJob, ops: READ, events: ALL_EVENTS, key: None },
    AccessRule {
        name: "read-demanded-job-vars",
        scope: Scope::DemandedJobVars,
        ops: READ,
        events: ALL_EVENTS,
        key: None,
    },
    AccessRule {
        name: "read-demanded-job-secrets",
        scope: Scope::DemandedJobSecrets,
        ops: READ,
        events: ALL_EVENTS,
        key: None,
    },
    AccessRule { name: "read-prometheus", scope: Scope::Prometheus, ops: READ, events: ALL_EVENTS, key: None },
];

/// The allocation a request comes from.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub job: &'a str,
    pub host: &'a str,
    /// Jobs that `job` demands (any command's `demands`).
    pub upstreams: &'a [String],
}

/// Why a request was refused. `rule` names the access rule (or the layout rule) that denied it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct Denial {
    pub rule: String,
    pub message: String,
}

/// Names of the denial rules that are not rows of [`ACCESS_RULES`].
pub mod denied_by {
    /// The namespace is not in the kvform layout at all.
    pub const LAYOUT: &str = "namespace-layout";
    /// Reads outside the allocation's readable set.
    pub const READ_SCOPE: &str = "readable-by-allocation";
    /// Writes outside the job's own writable namespaces.
    pub const WRITE_SCOPE: &str = "writable-by-own-job";
    /// A secret namespace through `/kv`, or a plain one through `/kv/secret`.
    pub const SECRET_ROUTE: &str = "secret-route";
    /// The whole event is read-only (`health_check`).
    pub const READ_ONLY_EVENT: &str = "read-only-event";
    /// `GET /kv/keys` lists only the job's own vars and secrets.
    pub const KEYS_SCOPE: &str = "keys-own-job-only";
}

/// The scopes a namespace falls in for this caller (empty: outside its world).
fn scopes_of(caller: &Caller, kind: &NamespaceKind) -> Vec<Scope> {
    let own = |j: &str| j == caller.job;
    let demanded = |j: &str| caller.upstreams.iter().any(|u| u == j);
    let me = |h: &str| h == caller.host;
    let mut out = Vec::new();
    match kind {
        NamespaceKind::Bucket => out.push(Scope::Bucket),
        NamespaceKind::BucketVars => out.push(Scope::BucketVars),
        NamespaceKind::Workers => out.push(Scope::Workers),
        NamespaceKind::Prometheus => out.push(Scope::Prometheus),
        NamespaceKind::Worker(h) if me(h) => out.push(Scope::OwnWorker),
        NamespaceKind::WorkerTags(h) if me(h) => out.push(Scope::OwnWorkerTags),
        NamespaceKind::Job(j) if own(j) => out.push(Scope::OwnJob),
        NamespaceKind::Job(j) if demanded(j) => out.push(Scope::DemandedJob),
        NamespaceKind::BucketJobVars(j) if own(j) => out.push(Scope::OwnBucketJobVars),
        NamespaceKind::JobVars(j) if own(j) => out.push(Scope::OwnJobVars),
        NamespaceKind::JobVars(j) if demanded(j) => out.push(Scope::DemandedJobVars),
        NamespaceKind::JobSecrets(j) if own(j) => out.push(Scope::OwnJobSecrets),
        NamespaceKind::JobSecrets(j) if demanded(j) => out.push(Scope::DemandedJobSecrets),
        NamespaceKind::Allocation { job, host } if own(job) && me(host) => out.push(Scope::OwnAllocation),
        _ => {}
    }
    out
}

/// Decide one request. `key` is `None` for key-less operations (`GET /kv/keys`).
pub fn check(caller: &Caller, event: Event, op: Op, ns: &str, key: Option<&str>) -> Result<(), Denial> {
    let deny = |rule: &str, message: String| Err(Denial { rule: rule.to_string(), message });
    let Some(kind) = NamespaceKind::parse(ns) else {
        return deny(
            denied_by::LAYOUT,
            format!(
                "namespace {ns:?} is not in the kvform layout (maand/..., vars/..., secrets/job/<job>); check the spelling"
            ),
        );
    };
    let scopes = scopes_of(caller, &kind);
    let in_scope: Vec<&AccessRule> = ACCESS_RULES.iter().filter(|r| scopes.contains(&r.scope)).collect();
    let with_op: Vec<&AccessRule> = in_scope.iter().copied().filter(|r| r.ops.contains(&op)).collect();
    let with_event: Vec<&AccessRule> = with_op.iter().copied().filter(|r| r.events.contains(&event)).collect();
    if with_event.iter().any(|r| r.key.is_none_or(|k| Some(k) == key)) {
        return Ok(());
    }
    let (job, host) = (caller.job, caller.host);

    // Most specific explanation first.
    if op.is_write() && !ACCESS_RULES.iter().any(|r| r.ops.contains(&op) && r.events.contains(&event)) {
        return deny(
            denied_by::READ_ONLY_EVENT,
            format!("{event} hooks are read-only: {} is not allowed (on {ns})", op.route()),
        );
    }
    if let Some(r) = with_event.first() {
        let k = r.key.unwrap_or_default();
        return deny(r.name, format!("{}: only key {k:?} of {ns} is writable by hooks", op.route()));
    }
    if let Some(r) = with_op.first() {
        let events: Vec<&str> = r.events.iter().map(|e| e.as_str()).collect();
        return deny(
            r.name,
            format!("{} on {ns} is allowed only in {} hooks, not {event}", op.route(), events.join("/")),
        );
    }
    if op == Op::Keys {
        return deny(
            denied_by::KEYS_SCOPE,
            format!("GET /kv/keys lists only vars/job/{job} and secrets/job/{job}; use GET /kv to read {ns}"),
        );
    }
    if op.is_write() {
        let secret_op = matches!(op, Op::PutSecret | Op::DeleteSecret);
        let right_op = |o: Op| ACCESS_RULES.iter().any(|r| scopes.contains(&r.scope) && r.ops.contains(&o));
        if secret_op != kind.is_secret() && (right_op(Op::Put) || right_op(Op::PutSecret)) {
            let route = if kind.is_secret() { "/kv/secret" } else { "/kv" };
            return deny(denied_by::SECRET_ROUTE, format!("{ns} is written through {route}, not {}", op.route()));
        }
        return deny(
            denied_by::WRITE_SCOPE,
            format!(
                "allocation {job}@{host} may write only vars/job/{job} (/kv), secrets/job/{job} (/kv/secret) and \
                 maand/job/{job} rollout_order (pre_deploy/cli); {ns} is not writable by this hook"
            ),
        );
    }
    if !in_scope.is_empty() {
        // In scope but this read op is not granted (cannot happen with the current table).
        return deny(in_scope[0].name, format!("{} is not allowed on {ns}", op.route()));
    }
    deny(
        denied_by::READ_SCOPE,
        format!(
            "allocation {job}@{host} may not read {ns}: hooks read the bucket, their own worker, job and allocation, \
             and the maand/job, vars/job and secrets/job namespaces of jobs they demand"
        ),
    )
}

/// Whether allocation (job, host), which demands `upstreams`, may read `ns` (`GET /kv`).
/// Events do not matter for reads.
pub fn readable(job: &str, host: &str, upstreams: &[String], ns: &str) -> Result<(), Denial> {
    check(&Caller { job, host, upstreams }, Event::Cli, Op::Get, ns, None)
}

/// Whether a hook of allocation (job, host) running for `event` may do write `op` on
/// `ns`/`key`.
pub fn writable(
    job: &str,
    host: &str,
    upstreams: &[String],
    event: Event,
    op: Op,
    ns: &str,
    key: &str,
) -> Result<(), Denial> {
    check(&Caller { job, host, upstreams }, event, op, ns, Some(key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_scope_has_a_read_row_and_names_are_unique() {
        let mut names: Vec<&str> = ACCESS_RULES.iter().map(|r| r.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), ACCESS_RULES.len());
        assert!(ACCESS_RULES.iter().all(|r| !r.ops.is_empty() && !r.events.is_empty()));
    }

    #[test]
    fn segments_are_matched_whole() {
        let up = vec!["db".to_string()];
        assert!(readable("api", "h1", &up, "maand/job/api").is_ok());
        assert_eq!(readable("api", "h1", &up, "maand/job/api2").unwrap_err().rule, denied_by::READ_SCOPE);
        assert_eq!(readable("api", "h1", &up, "vars/job/db2").unwrap_err().rule, denied_by::READ_SCOPE);
        assert_eq!(readable("api", "h1", &up, "maand/job/api/").unwrap_err().rule, denied_by::LAYOUT);
        assert!(readable("api", "h1", &up, "maand/job/api/worker/h1").is_ok());
        assert!(readable("api", "h1", &up, "maand/job/api/worker/h10").is_err());
    }

    #[test]
    fn denials_name_the_rule() {
        let up: Vec<String> = vec![];
        let w = |ev, op, ns, key| writable("api", "h1", &up, ev, op, ns, key).map_err(|d| d.rule);
        assert_eq!(w(Event::PreDeploy, Op::Put, "maand/job/api", "rollout_order"), Ok(()));
        assert_eq!(
            w(Event::PostDeploy, Op::Put, "maand/job/api", "rollout_order"),
            Err("write-own-rollout-order".into())
        );
        assert_eq!(w(Event::PreDeploy, Op::Put, "maand/job/api", "workers"), Err("write-own-rollout-order".into()));
        assert_eq!(w(Event::HealthCheck, Op::Put, "vars/job/api", "k"), Err(denied_by::READ_ONLY_EVENT.into()));
        assert_eq!(w(Event::Cli, Op::Put, "secrets/job/api", "k"), Err(denied_by::SECRET_ROUTE.into()));
        assert_eq!(w(Event::Cli, Op::PutSecret, "vars/job/api", "k"), Err(denied_by::SECRET_ROUTE.into()));
        assert_eq!(w(Event::Cli, Op::Put, "vars/job/web", "k"), Err(denied_by::WRITE_SCOPE.into()));
        assert_eq!(w(Event::Cli, Op::Put, "vars/bucket", "k"), Err(denied_by::WRITE_SCOPE.into()));
    }
}
