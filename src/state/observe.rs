//! Reads behind `kvform serve`'s `/metrics` (what an operator alerts on): the last
//! successful apply, the stored certificates, the keys past their TTL. Reads only, one
//! statement each, on both backends.

use super::backend::vals;
use super::{StateError, StateStore, sql};

/// One live certificate of an allocation namespace (`certs/<name>.crt` in
/// `maand/job/<job>/worker/<host>`), its PEM as stored (certificates are not sealed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredCert {
    pub namespace: String,
    pub key: String,
    pub pem: String,
}

impl StateStore {
    /// When the newest successful `apply` finished (unix seconds); `None` before the first.
    pub fn last_successful_apply(&self) -> Result<Option<i64>, StateError> {
        self.conn()
            .query_one(
                "SELECT max(finished_at) FROM applies WHERE operation = 'apply' AND status = 'success'",
                &[],
                |r| r.opt_i64(0),
            )
            .map_err(sql(self.path(), "read the last apply"))
    }

    /// Every live `certs/*.crt` key of the allocation namespaces, sorted by namespace and key.
    pub fn stored_certificates(&self) -> Result<Vec<StoredCert>, StateError> {
        self.conn()
            .query_map(
                "SELECT namespace, key, value FROM latest
                  WHERE deleted = 0 AND namespace LIKE 'maand/job/%/worker/%'
                    AND key LIKE 'certs/%' AND substr(key, length(key) - 3) = '.crt'
                  ORDER BY namespace, key",
                &[],
                |r| Ok(StoredCert { namespace: r.text(0)?, key: r.text(1)?, pem: r.text(2)? }),
            )
            .map_err(sql(self.path(), "read certificates"))
    }

    /// Live keys whose TTL has run out at `now` (readers no longer see them; `gc` removes them).
    pub fn expired_key_count(&self, now: i64) -> Result<u64, StateError> {
        self.conn()
            .query_one(
                "SELECT count(*) FROM latest WHERE deleted = 0 AND ttl > 0 AND created_at + ttl <= ?1",
                vals![now],
                |r| r.u64(0),
            )
            .map_err(sql(self.path(), "count expired keys"))
    }
}
