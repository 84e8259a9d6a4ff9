//! The write lock of a PostgreSQL state: a session-level `pg_try_advisory_lock` on a
//! connection of its own, held by the [`LockGuard`] (see `crate::state::lock` for the
//! rules both backends follow). The server releases it when that connection closes for any
//! reason, so a dead holder never leaves a stale lock. The holder record is the bucket's
//! `live_lock` row, written in autocommit right after the lock is taken; a row whose
//! advisory lock is free is stale and the next holder replaces it.

use super::PgTarget;
use crate::state::StateError;
use crate::state::lock::{ForceUnlock, Held, LockGuard, LockHolder, wait_for_lock};
use std::path::Path;
use std::time::Duration;

/// The connection holding the advisory lock `key`.
struct Advisory {
    client: postgres::Client,
    key: i64,
}

impl Held for Advisory {
    fn release(&mut self, lock_id: &str) {
        let _ = self.client.execute("DELETE FROM live_lock WHERE lock_id = $1", &[&lock_id]);
        let _ = self.client.execute("SELECT pg_advisory_unlock($1)", &[&self.key]);
    }

    /// Whether the lock connection is alive (the server dropped the advisory lock with a
    /// dead one).
    fn still_held(&mut self) -> bool {
        self.client.simple_query("SELECT 1").is_ok()
    }
}

/// The advisory lock key of a PostgreSQL state: the first 8 bytes of the SHA-256 of what
/// identifies one state, its registry schema and its bucket id. Advisory locks are
/// database-wide, so a key from the bucket id alone made two buckets with the same id in
/// two registries (a copied kvform.hcl, the goldens' fixed id) exclude each other.
pub fn pg_key(registry: &str, bucket_id: uuid::Uuid) -> i64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(b"kvform state lock\0");
    h.update(registry.as_bytes());
    h.update(b"\0");
    h.update(bucket_id.as_bytes());
    let d = h.finalize();
    i64::from_be_bytes([d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]])
}

fn pg_holder(client: &mut postgres::Client) -> Option<LockHolder> {
    let row = client
        .query_opt("SELECT lock_id, actor, pid, operation, since FROM live_lock WHERE id = 1", &[])
        .ok()
        .flatten()?;
    Some(LockHolder {
        lock_id: row.try_get(0).ok()?,
        actor: row.try_get(1).ok()?,
        pid: row.try_get::<_, i64>(2).ok()? as u32,
        operation: row.try_get(3).ok()?,
        since: row.try_get(4).ok()?,
    })
}

fn pg_try_lock(client: &mut postgres::Client, key: i64, shown: &Path) -> Result<bool, StateError> {
    client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&key])
        .and_then(|r| r.try_get(0))
        .map_err(crate::state::sql(shown, "take the write lock"))
}

/// Take the write lock of a PostgreSQL state (see the module docs).
pub(crate) fn acquire(
    target: &PgTarget,
    shown: &Path,
    operation: &str,
    timeout: Duration,
    now: i64,
) -> Result<LockGuard, StateError> {
    let client = target.connect("connect for the write lock")?;
    let key = pg_key(&target.registry, target.bucket_id);
    let client = std::cell::RefCell::new(client);
    wait_for_lock(
        timeout,
        Duration::from_millis(50),
        || pg_try_lock(&mut client.borrow_mut(), key, shown),
        || pg_holder(&mut client.borrow_mut()),
    )?;
    let mut client = client.into_inner();
    let holder = LockHolder::new(operation, now);
    // Replaces a stale record (its advisory lock was free, or we would not hold it).
    client
        .execute(
            "INSERT INTO live_lock (id, lock_id, actor, pid, operation, since) VALUES (1, $1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET lock_id = excluded.lock_id, actor = excluded.actor, pid = excluded.pid,
                                            operation = excluded.operation, since = excluded.since",
            &[&holder.lock_id, &holder.actor, &(holder.pid as i64), &holder.operation, &holder.since],
        )
        .map_err(crate::state::sql(shown, "write the lock record"))?;
    Ok(LockGuard::new(Box::new(Advisory { client, key }), holder))
}

/// The write lock's status (see [`crate::state::lock::status`]) on PostgreSQL.
pub fn status(target: &PgTarget) -> Result<(Option<LockHolder>, Option<LockHolder>), StateError> {
    let shown = target.display();
    let mut client = target.connect("read the write lock")?;
    let key = pg_key(&target.registry, target.bucket_id);
    let holder = pg_holder(&mut client);
    if pg_try_lock(&mut client, key, &shown)? {
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
        Ok((None, holder))
    } else {
        Ok((holder, None))
    }
}

/// `kvform state force-unlock ID` on PostgreSQL.
pub fn force_unlock(target: &PgTarget, id: &str) -> Result<ForceUnlock, StateError> {
    let shown = target.display();
    let mut client = target.connect("read the write lock")?;
    let key = pg_key(&target.registry, target.bucket_id);
    if pg_try_lock(&mut client, key, &shown)? {
        let out = match pg_holder(&mut client) {
            Some(h) if h.lock_id == id => {
                client
                    .execute("DELETE FROM live_lock WHERE lock_id = $1", &[&id])
                    .map_err(crate::state::sql(&shown, "clear the lock record"))?;
                Ok(ForceUnlock::ClearedStale(h))
            }
            other => Err(StateError::NoSuchLock { id: id.to_string(), current: other.map(Box::new) }),
        };
        let _ = client.execute("SELECT pg_advisory_unlock($1)", &[&key]);
        out
    } else {
        match pg_holder(&mut client) {
            Some(h) if h.lock_id == id => Err(StateError::LockHeldByLiveProcess { holder: Box::new(h) }),
            other => Err(StateError::NoSuchLock { id: id.to_string(), current: other.map(Box::new) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::postgres::{PgTarget, create_bucket};

    #[test]
    fn the_key_depends_on_the_registry_and_the_bucket_id() {
        let id = uuid::Uuid::from_u128(0x1234);
        assert_ne!(pg_key("kvform_a", id), pg_key("kvform_b", id));
        assert_ne!(pg_key("kvform_a", id), pg_key("kvform_a", uuid::Uuid::from_u128(0x1235)));
        assert_eq!(pg_key("kvform_a", id), pg_key("kvform_a", id), "the key is stable");
    }

    /// Two buckets with the same id in two registries are two states: each takes its own
    /// write lock while the other holds its own (they collided when the key was the id's).
    #[test]
    fn same_bucket_id_in_two_registries_lock_independently_on_postgres() {
        let Ok(url) = std::env::var("KVFORM_TEST_PG_URL") else { return };
        let id = uuid::Uuid::from_u128(0x5eed_0000_0000_0000_0000_0000_0000_0023);
        let tag = &uuid::Uuid::new_v4().simple().to_string()[..8];
        let targets: Vec<PgTarget> = ["a", "b"]
            .iter()
            .map(|s| PgTarget { url: url.clone(), registry: format!("kvlk_{tag}_{s}"), bucket_id: id })
            .collect();
        struct Drop_(String, Vec<String>);
        impl Drop for Drop_ {
            fn drop(&mut self) {
                if let Ok(mut c) = postgres::Client::connect(&self.0, postgres::NoTls) {
                    for r in &self.1 {
                        let _ = c.batch_execute(&format!("DROP SCHEMA IF EXISTS {r} CASCADE"));
                    }
                }
            }
        }
        let mut schemas = Vec::new();
        for t in &targets {
            schemas.push(t.registry.clone());
            schemas.push(crate::state::postgres::ident(&t.bucket_schema()));
        }
        let _drop = Drop_(url.clone(), schemas);
        for t in &targets {
            let mut c = postgres::Client::connect(&url, postgres::NoTls).unwrap();
            assert!(create_bucket(&mut c, t, uuid::Uuid::new_v4(), 0, None).unwrap());
        }
        let shown = targets[0].display();
        let a = acquire(&targets[0], &shown, "test a", Duration::from_millis(200), 0).unwrap();
        let b = acquire(&targets[1], &targets[1].display(), "test b", Duration::from_millis(200), 0)
            .expect("the other registry's bucket with the same id has a lock of its own");
        // Each lock still excludes a second writer of its own state.
        let again = acquire(&targets[0], &shown, "test a2", Duration::from_millis(200), 0);
        assert!(matches!(again, Err(StateError::Locked { .. })), "{:?}", again.err());
        drop((a, b));
    }
}
