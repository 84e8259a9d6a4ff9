//! The three JSON file formats as serde-shaped types, for generating the JSON Schemas in
//! `schemas/` (editor completion and validation for operators). Parsing does not use these
//! types — it goes through [`super::doc`] for positions — so the patterns here come from
//! the same constants and unit table the parser uses, and `tests/schemas.rs` fails when
//! the checked-in schemas drift from what this module generates.

use super::manifest::{CERT_NAME_PATTERN, COMMAND_NAME_PATTERN, PORT_NAME_PATTERN, VERSION_PATTERN};
use crate::workspace::units::Quantity;
use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
use serde_json::Value;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// `workspace/workers.json`: the fleet, as an array of workers in fleet order.
#[derive(JsonSchema)]
#[serde(transparent)]
#[schemars(title = "kvform workers.json")]
pub struct WorkersFile(pub Vec<WorkerEntry>);

/// One worker.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkerEntry {
    /// Address of the worker; trimmed, non-empty, unique across the file. Used in
    /// namespace paths, so no whitespace or `/`.
    #[schemars(regex(pattern = r"^\s*[^\s/]+\s*$"))]
    pub host: String,
    /// Optional host name, written to the store as `hostname`.
    pub hostname: Option<String>,
    /// Labels (trimmed, lower-cased; `worker` is always added). Jobs are placed on
    /// workers that carry all of their selectors.
    pub labels: Option<Vec<String>>,
    /// Memory capacity: `"8192 mb"`, `"4 gb"`, `"1 tb"` (1 gb = 1024 mb; `mib`, `gib`, `tib` the same) or a bare number of MB.
    pub memory: Option<Memory>,
    /// CPU capacity: `"4000 mhz"`, `"2.4 ghz"`, `"1 thz"` or a bare number of MHz.
    pub cpu: Option<Cpu>,
    /// Free-form tags, written to `maand/worker/<host>/tags`; keys and values trimmed.
    pub tags: Option<BTreeMap<String, String>>,
    /// Overrides the array index for fleet ordering (ties broken by `host`).
    pub position: Option<i64>,
}

/// `workspace/disabled.json`: drain jobs, allocations or workers without deleting them.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kvform disabled.json")]
pub struct DisabledFile {
    /// Jobs to disable, by name.
    pub jobs: Option<BTreeMap<String, DisabledJobEntry>>,
    /// Hosts whose allocations are all disabled.
    pub workers: Option<Vec<String>>,
}

/// One disabled job.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DisabledJobEntry {
    /// Hosts of the allocations to disable; absent or empty disables the whole job.
    pub allocations: Option<Vec<String>>,
}

/// `workspace/jobs/<job>/manifest.json`: one job.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "kvform manifest.json")]
pub struct ManifestFile {
    /// Semver-like version (`1`, `1.2`, `v1.2.3`, `2.0.0-rc1`); required when the job
    /// demands another job or is demanded. `0.0.0` in the store when absent.
    #[schemars(regex(pattern = VERSION_PATTERN))]
    pub version: Option<String>,
    /// Worker labels this job runs on (all must match); default: the job name.
    #[schemars(length(min = 1))]
    pub selectors: Option<Vec<String>>,
    pub resources: Option<Resources>,
    /// Hook commands by name; each needs exactly one script in `_modules/`
    /// (`<command>.py`, `<command>.sh` or an executable `<command>`).
    #[schemars(extend("propertyNames" = {"pattern": COMMAND_NAME_PATTERN}))]
    pub commands: Option<BTreeMap<String, CommandEntry>>,
    /// Rollout batch size for changed allocations.
    #[schemars(range(min = 1), extend("default" = 1))]
    pub max_concurrent_upgrades: Option<u32>,
    /// Rollout batch size for new allocations; 0 = all at once.
    #[schemars(extend("default" = 0))]
    pub max_concurrent_starts: Option<u32>,
    /// The job must have at least this many non-removed allocations.
    #[schemars(extend("default" = 0))]
    pub min_allocations_count: Option<u32>,
    /// Certificates issued for every allocation by the bucket CA (SPEC §8).
    #[schemars(extend("propertyNames" = {"pattern": CERT_NAME_PATTERN}))]
    pub certs: Option<BTreeMap<String, CertEntry>>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertEntry {
    pub subject: Option<CertSubject>,
    /// PKCS#8 `PRIVATE KEY` PEM instead of PKCS#1 / SEC1 (required for ed25519).
    #[schemars(extend("default" = false))]
    pub pkcs8: Option<bool>,
    /// One certificate, with every allocation's host, shared by all allocations.
    #[schemars(extend("default" = false))]
    pub one: Option<bool>,
    #[schemars(extend("default" = "ecdsa-p256"))]
    pub key_type: Option<KeyTypeName>,
}

#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CertSubject {
    /// Default: the job name.
    #[schemars(length(min = 1))]
    pub common_name: Option<String>,
}

#[derive(JsonSchema)]
pub enum KeyTypeName {
    #[serde(rename = "ecdsa-p256")]
    EcdsaP256,
    #[serde(rename = "ed25519")]
    Ed25519,
    #[serde(rename = "rsa-2048")]
    Rsa2048,
    #[serde(rename = "rsa-4096")]
    Rsa4096,
}

/// Resource bounds and ports.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Resources {
    pub memory: Option<MemoryBounds>,
    pub cpu: Option<CpuBounds>,
    /// Port names (unique across the bucket) -> `{}` (from the pool) or a fixed number.
    #[schemars(extend("propertyNames" = {"pattern": PORT_NAME_PATTERN}))]
    pub ports: Option<BTreeMap<String, PortEntry>>,
}

/// Memory bounds; `min` alone means `max = min`, `max` alone means `min = 0`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct MemoryBounds {
    pub min: Option<Memory>,
    pub max: Option<Memory>,
}

/// CPU bounds; `min` alone means `max = min`, `max` alone means `min = 0`.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(extend("minProperties" = 1))]
pub struct CpuBounds {
    pub min: Option<Cpu>,
    pub max: Option<Cpu>,
}

/// A port: `{}` takes the lowest free number of the pool, an integer is fixed.
#[derive(JsonSchema)]
#[serde(untagged)]
pub enum PortEntry {
    Pool(PoolPort),
    Fixed(#[schemars(range(min = 1, max = 65535))] u16),
}

/// `{}`: a port assigned from the bucket's pool.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolPort {}

/// One hook command.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CommandEntry {
    /// Events that run the command (may be empty for a command only run on demand).
    pub executed_on: Vec<EventName>,
    pub demands: Option<DemandEntry>,
}

#[derive(JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventName {
    PostBuild,
    PreDeploy,
    PostDeploy,
    HealthCheck,
    Cli,
    JobControl,
    AfterAllocationStarted,
    AfterAllocationStopped,
}

/// A dependency on another job's command; the job then deploys in a later wave.
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DemandEntry {
    /// The upstream job (not this job).
    pub job: String,
    /// A command of the upstream job.
    pub command: String,
    pub config: Option<DemandConfig>,
}

/// Free-form settings handed to the hooks; `min_version` / `max_version` bound the
/// upstream job's version.
#[derive(JsonSchema)]
pub struct DemandConfig {
    pub min_version: Option<VersionBound>,
    pub max_version: Option<VersionBound>,
    #[serde(flatten)]
    pub other: BTreeMap<String, Value>,
}

#[derive(JsonSchema)]
#[serde(untagged)]
pub enum VersionBound {
    Text(#[schemars(regex(pattern = VERSION_PATTERN))] String),
    Number(u64),
}

/// Memory in MB: a string with an optional unit, or a bare number.
pub struct Memory;
/// CPU in MHz: a string with an optional unit, or a bare number.
pub struct Cpu;

fn quantity_schema(q: Quantity) -> Schema {
    json_schema!({
        "description": q.accepted(),
        "oneOf": [
            {"type": "string", "pattern": q.schema_pattern()},
            {"type": "number", "minimum": 0}
        ]
    })
}

impl JsonSchema for Memory {
    fn schema_name() -> Cow<'static, str> {
        "Memory".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        quantity_schema(Quantity::Memory)
    }
}

impl JsonSchema for Cpu {
    fn schema_name() -> Cow<'static, str> {
        "Cpu".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        quantity_schema(Quantity::Cpu)
    }
}

/// Optional fields are written by leaving them out; `null` is not accepted by the
/// parser, so take it out of every `Option` schema schemars generates.
fn no_null(schema: &mut Schema) {
    let Some(obj) = schema.as_object_mut() else { return };
    if let Some(Value::Array(types)) = obj.get_mut("type") {
        types.retain(|t| t != "null");
        if types.len() == 1 {
            let only = types.remove(0);
            obj.insert("type".into(), only);
        }
    }
    let single = match obj.get_mut("anyOf") {
        Some(Value::Array(alts)) => {
            alts.retain(|a| a.get("type").is_none_or(|t| t != "null"));
            (alts.len() == 1).then(|| alts.remove(0))
        }
        _ => None,
    };
    if let Some(Value::Object(only)) = single {
        obj.remove("anyOf");
        for (k, v) in only {
            obj.entry(k).or_insert(v);
        }
    }
}

fn generator() -> SchemaGenerator {
    SchemaSettings::draft2020_12().with_transform(RecursiveTransform(no_null)).into_generator()
}

/// `(file name, pretty JSON)` of every schema, in a fixed order.
pub fn all() -> Vec<(&'static str, String)> {
    let render = |s: Schema| serde_json::to_string_pretty(&s).unwrap_or_default() + "\n";
    vec![
        ("workers.schema.json", render(generator().into_root_schema_for::<WorkersFile>())),
        ("disabled.schema.json", render(generator().into_root_schema_for::<DisabledFile>())),
        ("manifest.schema.json", render(generator().into_root_schema_for::<ManifestFile>())),
    ]
}
