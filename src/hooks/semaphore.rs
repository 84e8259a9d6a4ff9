//! Named counting semaphores for hooks (`/semaphore/*`), scoped per job + event.
//!
//! Hooks of one job running in parallel (a rollout batch) use them to serialise a critical
//! section, e.g. "one node at a time leaves the cluster". A semaphore exists while someone
//! holds or waits on it; the first acquirer sets its capacity (1..=64) and a later acquirer
//! asking for a different capacity gets 409 rather than silently changing it. Holds belong
//! to a hook's token: when the hook exits every hold it forgot is released
//! ([`Semaphores::release_all`]).

use super::token::TokenId;
use crate::workspace::types::Event;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

pub const MAX_CAPACITY: u32 = 64;
pub const MAX_TIMEOUT_SECS: u64 = 3600;

/// (job, event, name)
type SemKey = (String, Event, String);

#[derive(Debug)]
struct Sem {
    capacity: u32,
    holders: BTreeSet<TokenId>,
    waiting: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemaphoreError {
    #[error("semaphore {name:?}: timed out after {secs} s waiting for a free slot (capacity {capacity})")]
    Timeout { name: String, secs: u64, capacity: u32 },
    #[error(
        "semaphore {name:?} has capacity {existing}, not {requested}: every hook of the job must acquire it with the same capacity"
    )]
    CapacityChanged { name: String, existing: u32, requested: u32 },
    #[error("semaphore {name:?} is already held by this hook; release it before acquiring again")]
    AlreadyHeld { name: String },
    #[error("semaphore {name:?} is not held by this hook; acquire it before releasing")]
    NotHeld { name: String },
    #[error("the hook's token was revoked while it waited for semaphore {name:?}")]
    Revoked { name: String },
    #[error("the hook API is shutting down")]
    ShuttingDown,
}

/// One semaphore as `GET /semaphore/status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SemaphoreStatus {
    pub name: String,
    pub capacity: u32,
    pub held: u32,
    pub waiting: u32,
    pub held_by_you: bool,
}

#[derive(Debug, Default)]
struct Inner {
    sems: BTreeMap<SemKey, Sem>,
    revoked: BTreeSet<TokenId>,
    closed: bool,
}

/// Every semaphore of one API server.
#[derive(Debug, Default)]
pub struct Semaphores {
    inner: Mutex<Inner>,
    changed: Condvar,
}

impl Semaphores {
    pub fn new() -> Semaphores {
        Semaphores::default()
    }

    /// Take a slot, waiting up to `timeout`. Capacity and timeout are validated by the caller.
    pub fn acquire(
        &self,
        token: TokenId,
        job: &str,
        event: Event,
        name: &str,
        capacity: u32,
        timeout: Duration,
    ) -> Result<(), SemaphoreError> {
        let key: SemKey = (job.to_string(), event, name.to_string());
        let deadline = Instant::now() + timeout;
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        // The hook may have exited between authentication and here: a slot taken now
        // would never be released.
        if inner.revoked.contains(&token) {
            return Err(SemaphoreError::Revoked { name: name.into() });
        }
        if inner.closed {
            return Err(SemaphoreError::ShuttingDown);
        }
        let sem = inner.sems.entry(key.clone()).or_insert(Sem { capacity, holders: BTreeSet::new(), waiting: 0 });
        if sem.capacity != capacity {
            return Err(SemaphoreError::CapacityChanged {
                name: name.into(),
                existing: sem.capacity,
                requested: capacity,
            });
        }
        if sem.holders.contains(&token) {
            return Err(SemaphoreError::AlreadyHeld { name: name.into() });
        }
        sem.waiting += 1;
        loop {
            let sem = inner.sems.get_mut(&key).expect("a semaphore with waiters is kept");
            if (sem.holders.len() as u32) < sem.capacity {
                sem.waiting -= 1;
                sem.holders.insert(token);
                return Ok(());
            }
            let now = Instant::now();
            let stop = if inner.closed {
                Some(SemaphoreError::ShuttingDown)
            } else if inner.revoked.contains(&token) {
                Some(SemaphoreError::Revoked { name: name.into() })
            } else if now >= deadline {
                Some(SemaphoreError::Timeout { name: name.into(), secs: timeout.as_secs(), capacity })
            } else {
                None
            };
            if let Some(e) = stop {
                let sem = inner.sems.get_mut(&key).expect("a semaphore with waiters is kept");
                sem.waiting -= 1;
                if sem.holders.is_empty() && sem.waiting == 0 {
                    inner.sems.remove(&key);
                }
                return Err(e);
            }
            inner = self.changed.wait_timeout(inner, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Give back a slot this token holds.
    pub fn release(&self, token: TokenId, job: &str, event: Event, name: &str) -> Result<(), SemaphoreError> {
        let key: SemKey = (job.to_string(), event, name.to_string());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sem) = inner.sems.get_mut(&key).filter(|s| s.holders.contains(&token)) else {
            return Err(SemaphoreError::NotHeld { name: name.into() });
        };
        sem.holders.remove(&token);
        if sem.holders.is_empty() && sem.waiting == 0 {
            inner.sems.remove(&key);
        }
        self.changed.notify_all();
        Ok(())
    }

    /// Release every hold of a token whose hook exited, and stop its pending waits.
    /// Returns how many holds were released.
    pub fn release_all(&self, token: TokenId) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut released = 0;
        inner.sems.retain(|_, sem| {
            if sem.holders.remove(&token) {
                released += 1;
            }
            !(sem.holders.is_empty() && sem.waiting == 0)
        });
        inner.revoked.insert(token);
        self.changed.notify_all();
        released
    }

    /// Semaphores of one job+event (all, or the one named), sorted by name.
    pub fn status(&self, token: TokenId, job: &str, event: Event, name: Option<&str>) -> Vec<SemaphoreStatus> {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        inner
            .sems
            .iter()
            .filter(|((j, e, n), _)| j == job && *e == event && name.is_none_or(|want| want == n))
            .map(|((_, _, n), sem)| SemaphoreStatus {
                name: n.clone(),
                capacity: sem.capacity,
                held: sem.holders.len() as u32,
                waiting: sem.waiting,
                held_by_you: sem.holders.contains(&token),
            })
            .collect()
    }

    /// Wake every waiter with [`SemaphoreError::ShuttingDown`].
    pub fn close(&self) {
        self.inner.lock().unwrap_or_else(|p| p.into_inner()).closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hooks::token::{HookIdentity, TokenRegistry};

    fn ids(n: usize) -> Vec<TokenId> {
        let mut reg = TokenRegistry::default();
        (0..n)
            .map(|i| {
                let ident = HookIdentity {
                    alloc_id: uuid::Uuid::nil(),
                    job: "api".into(),
                    host: format!("h{i}"),
                    event: Event::PostDeploy,
                    command: "c".into(),
                };
                reg.issue(ident).unwrap().1
            })
            .collect()
    }

    #[test]
    fn capacity_is_enforced_and_slots_come_back() {
        let s = Semaphores::new();
        let t = ids(4);
        let ev = Event::PostDeploy;
        let short = Duration::from_millis(50);
        s.acquire(t[0], "api", ev, "x", 2, short).unwrap();
        s.acquire(t[1], "api", ev, "x", 2, short).unwrap();
        assert!(matches!(s.acquire(t[2], "api", ev, "x", 2, short), Err(SemaphoreError::Timeout { .. })));
        // Another event or job is another semaphore.
        s.acquire(t[2], "api", Event::PreDeploy, "x", 2, short).unwrap();
        s.acquire(t[2], "web", ev, "x", 1, short).unwrap();
        assert!(matches!(s.acquire(t[2], "api", ev, "x", 3, short), Err(SemaphoreError::CapacityChanged { .. })));
        assert_eq!(s.release_all(t[0]), 1);
        s.acquire(t[2], "api", ev, "x", 2, short).unwrap();
        assert!(matches!(s.release(t[0], "api", ev, "x"), Err(SemaphoreError::NotHeld { .. })));
        assert!(matches!(s.acquire(t[2], "api", ev, "x", 2, short), Err(SemaphoreError::AlreadyHeld { .. })));
        // A token whose hook exited cannot take a slot, even a free one.
        s.release_all(t[1]);
        assert!(matches!(s.acquire(t[1], "api", ev, "y", 1, short), Err(SemaphoreError::Revoked { .. })));
        s.acquire(t[3], "api", ev, "x", 2, short).unwrap();
        let st = s.status(t[2], "api", ev, None);
        assert_eq!(st.len(), 1);
        assert_eq!((st[0].held, st[0].held_by_you), (2, true));
    }
}
