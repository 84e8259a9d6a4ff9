//! The bodies of the REST API as Rust types: the handlers serialise these answers and check
//! requests against these fields, and the OpenAPI document ([`super::openapi`]) is generated
//! from the same types (schemars), so the document cannot drift from what is sent. The key
//! bodies (`KeyRow`, `Listing`, `VersionView`, `History`) are next to their handlers in
//! `super::keys`, the search page in `super::search`.

use crate::kv::KvType;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Every error: what went wrong and what to do.
#[derive(Serialize, JsonSchema)]
pub(crate) struct ErrorBody {
    pub(crate) error: String,
    pub(crate) hint: String,
    /// 403 only: the access rule that denied (`role`, `reveal`, `kv-set-namespaces`,
    /// `token-namespaces`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) rule: Option<String>,
}

/// The namespace tree (`GET /api/v1/namespaces`).
#[derive(Serialize, JsonSchema)]
pub(crate) struct NamespaceTree {
    /// Every namespace with keys, and every node above one, in order.
    pub(crate) namespaces: Vec<NamespaceNode>,
    /// Pass as `?cursor=` for the next page (with `?limit`); null on the last page.
    pub(crate) next_cursor: Option<String>,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct NamespaceNode {
    pub(crate) namespace: String,
    /// How many `/` the path has.
    pub(crate) depth: usize,
    /// Live keys of this namespace itself.
    pub(crate) keys: u64,
    /// Live keys of this namespace and every one under it.
    pub(crate) total_keys: u64,
}

/// A key write (`PUT`/`PATCH /api/v1/kv/{namespace}/{key}`): every field is optional, and
/// one the body omits is kept.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Checked field by field in `keys::put`, for messages that name the field.
pub(crate) struct PutBody {
    /// A string, number or boolean (a list or object with `"type": "json"`); omitted: the
    /// current value is kept.
    pub(crate) value: Option<serde_json::Value>,
    /// Omitted: kept (`string` for a new key).
    #[serde(rename = "type")]
    pub(crate) kv_type: Option<KvType>,
    /// Seconds, or a duration such as "1h", "30m", "P30D"; 0 = never expires; at most 100
    /// years. Omitted: the key keeps its expiry (the time that was left).
    pub(crate) ttl: Option<Ttl>,
    /// Omitted: kept.
    pub(crate) description: Option<String>,
    /// Compare-and-set: the live version expected (0 = create only); 412 otherwise (also
    /// `If-Match: "N"` or `?cas=N`).
    pub(crate) cas: Option<u64>,
    /// false: 409 when the key exists (default true).
    pub(crate) overwrite: Option<bool>,
}

/// A ttl: seconds, or a duration.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(dead_code)]
pub(crate) enum Ttl {
    Seconds(u64),
    Duration(String),
}

/// A key the workspace declares (a `vars.hcl` key): what a write, delete or restore through
/// the API answers beside its result, since the next apply writes the workspace's value back.
#[derive(Serialize, JsonSchema, Default)]
pub(crate) struct Declared {
    /// The warning (one line, with what to do).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) warnings: Option<Vec<String>>,
    /// `file:line` of the declaration, with `warnings`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) managed_by: Option<String>,
}

/// The answer to a key write.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Written {
    pub(crate) namespace: String,
    pub(crate) key: String,
    /// The live version now (also the `ETag`).
    pub(crate) version: u64,
    /// false: the write changed nothing (no new version).
    pub(crate) changed: bool,
    #[serde(rename = "type")]
    pub(crate) kv_type: KvType,
    /// The state serial of the write.
    pub(crate) serial: u64,
    /// Set when the workspace declares the key.
    #[serde(flatten)]
    pub(crate) declared: Declared,
}

/// The answer to a key delete.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Deleted {
    pub(crate) namespace: String,
    pub(crate) key: String,
    /// false only with `?error_on_missing=false` for a key that did not exist.
    pub(crate) deleted: bool,
    /// The state serial of the delete, when there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) serial: Option<u64>,
    /// Set when the workspace declares the key.
    #[serde(flatten)]
    pub(crate) declared: Declared,
}

/// A restore (`POST /api/v1/restore/{namespace}/{key}`).
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct RestoreBody {
    /// The kept version whose value, type and description are written again.
    pub(crate) version: u64,
    /// Compare-and-set: the live version expected (0: only while the key is deleted).
    pub(crate) cas: Option<u64>,
}

/// The answer to a restore.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Restored {
    pub(crate) namespace: String,
    pub(crate) key: String,
    /// The version restored.
    pub(crate) restored: u64,
    /// The new live version (also the `ETag`).
    pub(crate) version: u64,
    pub(crate) changed: bool,
    pub(crate) serial: u64,
    /// Set when the workspace declares the key.
    #[serde(flatten)]
    pub(crate) declared: Declared,
}

/// The audit trail (`GET /api/v1/applies`), newest first.
#[derive(Serialize, JsonSchema)]
pub(crate) struct Applies {
    pub(crate) applies: Vec<ApplyView>,
}

/// One committed change set (or a failed apply).
#[derive(Serialize, JsonSchema)]
pub(crate) struct ApplyView {
    pub(crate) serial: u64,
    pub(crate) operation: String,
    /// `user@host`, or `token:<name>` for an API or UI write.
    pub(crate) actor: String,
    pub(crate) tool_version: String,
    /// RFC 3339.
    pub(crate) started_at: String,
    /// RFC 3339.
    pub(crate) finished_at: String,
    pub(crate) duration_ms: u64,
    pub(crate) counts: ApplyCounts,
    pub(crate) status: String,
    /// The key versions the change set wrote.
    pub(crate) changes: Vec<ChangeView>,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct ApplyCounts {
    pub(crate) added: u64,
    pub(crate) changed: u64,
    pub(crate) destroyed: u64,
    pub(crate) removed: u64,
    pub(crate) resealed: u64,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct ChangeView {
    pub(crate) namespace: String,
    pub(crate) key: String,
    pub(crate) version: u64,
    pub(crate) deleted: bool,
    pub(crate) writer: String,
}

/// An API token as `GET /api/v1/tokens` lists it: never the token or its hash.
#[derive(Serialize, JsonSchema)]
pub(crate) struct TokenView {
    pub(crate) name: String,
    /// `reader`, `writer` or `admin`.
    pub(crate) role: String,
    /// Write patterns such as `vars/job/*` (empty: every writable namespace).
    pub(crate) namespaces: Vec<String>,
    pub(crate) reveal: bool,
    /// RFC 3339.
    pub(crate) created_at: String,
    /// RFC 3339.
    pub(crate) expires_at: Option<String>,
    /// RFC 3339.
    pub(crate) revoked_at: Option<String>,
    /// `active`, `expired` or `revoked`.
    pub(crate) state: String,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct TokenList {
    pub(crate) tokens: Vec<TokenView>,
}

/// A token to create (`POST /api/v1/tokens`), like `kvform token create`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub(crate) struct TokenCreateBody {
    pub(crate) name: String,
    /// `reader`, `writer` or `admin`.
    pub(crate) role: String,
    /// Write patterns such as `vars/job/*` (a list, or one comma-separated string).
    pub(crate) namespaces: Option<Vec<String>>,
    /// May see secret values (only an admin with --reveal may create one); default false.
    pub(crate) reveal: Option<bool>,
    /// A duration such as 30d, 12h or 3600.
    pub(crate) expires: Option<String>,
}

/// A created token: its record and the token itself, shown this once.
#[derive(Serialize, JsonSchema)]
pub(crate) struct TokenCreated {
    #[serde(flatten)]
    pub(crate) record: TokenView,
    /// The bearer token (`kvf_…`): store it now, it is never shown again.
    pub(crate) token: String,
}

#[derive(Serialize, JsonSchema)]
pub(crate) struct Revoked {
    pub(crate) name: String,
    pub(crate) revoked: bool,
}

/// A 400 naming the first field of `body` that `T` does not have, and the ones it has.
pub(crate) fn refuse_unknown_fields<T: JsonSchema>(
    body: Option<&serde_json::Map<String, serde_json::Value>>,
) -> Result<(), super::rest::Reply> {
    let accepted = fields::<T>();
    match body.and_then(|b| b.keys().find(|k| !accepted.contains(k))) {
        None => Ok(()),
        Some(unknown) => Err(super::rest::Reply::error(
            400,
            format!("unknown field {unknown:?}"),
            format!("fields: {}", accepted.join(", ")),
        )),
    }
}

/// The top-level property names of a body type's schema: the fields a handler accepts.
pub(crate) fn fields<T: JsonSchema>() -> Vec<String> {
    let schema = schemars::SchemaGenerator::default().into_root_schema_for::<T>();
    schema.get("properties").and_then(|p| p.as_object()).map(|p| p.keys().cloned().collect()).unwrap_or_default()
}
