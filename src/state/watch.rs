//! Watch indexes (issue 26): the highest serial that touched a key, a namespace (by key
//! prefix), or a subtree of namespaces — what `kvform serve`'s `?index=N&wait=` blocks on,
//! so a watch on `vars/job/api` does not wake for a write to `vars/job/database`.
//!
//! A key's latest row (a tombstone too) carries the serial of its last write, so the index
//! of a scope is the largest of those serials: one indexed read. Rows that are purged
//! (a job's namespaces, `state gc`) take their serial with them, so a purge does not raise an
//! index; the bucket's serial ([`WatchScope::Bucket`]) moves with every change set.

use super::backend::vals;
use super::{StateError, StateStore, sql};

/// What a watch looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchScope {
    /// Every change set.
    Bucket,
    /// One key.
    Key { ns: String, key: String },
    /// The keys of one namespace starting with `prefix`.
    Namespace { ns: String, prefix: String },
    /// The keys starting with `prefix` of `root` and every namespace under it.
    Subtree { root: String, prefix: String },
}

impl StateStore {
    /// The highest serial that touched `scope` (0 when nothing did).
    pub fn watch_index(&self, scope: &WatchScope) -> Result<u64, StateError> {
        let conn = self.conn();
        let r = match scope {
            WatchScope::Bucket => return self.serial(),
            WatchScope::Key { ns, key } => conn.query_one(
                "SELECT coalesce(max(serial), 0) FROM latest WHERE namespace = ?1 AND key = ?2",
                vals![ns.as_str(), key.as_str()],
                |r| r.u64(0),
            ),
            WatchScope::Namespace { ns, prefix } => conn.query_one(
                "SELECT coalesce(max(serial), 0) FROM latest
                  WHERE namespace = ?1 AND substr(key, 1, length(CAST(?2 AS TEXT))) = ?2",
                vals![ns.as_str(), prefix.as_str()],
                |r| r.u64(0),
            ),
            WatchScope::Subtree { root, prefix } if root.is_empty() => conn.query_one(
                "SELECT coalesce(max(serial), 0) FROM latest WHERE substr(key, 1, length(CAST(?1 AS TEXT))) = ?1",
                vals![prefix.as_str()],
                |r| r.u64(0),
            ),
            WatchScope::Subtree { root, prefix } => conn.query_one(
                "SELECT coalesce(max(serial), 0) FROM latest
                  WHERE (namespace = ?1 OR substr(namespace, 1, length(CAST(?1 AS TEXT)) + 1) = CAST(?1 AS TEXT) || '/')
                    AND substr(key, 1, length(CAST(?2 AS TEXT))) = ?2",
                vals![root.as_str(), prefix.as_str()],
                |r| r.u64(0),
            ),
        };
        r.map_err(sql(self.path(), "read a watch index"))
    }
}
