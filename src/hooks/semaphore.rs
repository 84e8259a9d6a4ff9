//! Named counting semaphores for hooks (`/semaphore/*`), scoped per job + event, in maand's
//! shapes (`jobcommand/runtime_semaphore.go`).
//!
//! Hooks of one job running in parallel (a rollout batch) use them to serialise a critical
//! section, e.g. "one node at a time leaves the cluster". A semaphore exists while someone
//! holds or waits on it; the first acquirer sets its capacity (`< 1` means 1, at most
//! [`MAX_CAPACITY`]) and a later acquirer asking for a different capacity gets 409 rather
//! than silently changing it. Holders are **allocations**: acquiring again while the
//! allocation holds a slot is a no-op success (maand's re-acquire), and `status` lists
//! holders by allocation id. A hold belongs to the hook command that took it: when that
//! hook exits, every hold it forgot is released ([`Semaphores::release_all`]), so a crashed
//! hook never blocks the rest of the rollout. Waiters are served first come, first served.

use super::token::TokenId;
use crate::workspace::types::Event;
use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};
use uuid::Uuid;

pub const MAX_CAPACITY: u32 = 64;
/// `timeout_seconds` above this wait this long (maand's `maxAcquireTimeout`).
pub const MAX_TIMEOUT_SECS: u64 = 3600;
/// `timeout_seconds` absent or `<= 0` (maand's `defaultAcquireTimeout`).
pub const DEFAULT_TIMEOUT_SECS: u64 = 600;

/// (job, event, name)
type SemKey = (String, Event, String);

#[derive(Debug)]
struct Sem {
    capacity: u32,
    /// Holding allocation -> the hook (token) that took the slot.
    holders: BTreeMap<Uuid, TokenId>,
    /// Waiting hooks in arrival order: (ticket, allocation).
    waiting: VecDeque<(u64, Uuid)>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SemaphoreError {
    #[error("semaphore {name:?}: timed out after {secs} s waiting for a free slot (capacity {capacity})")]
    Timeout { name: String, secs: u64, capacity: u32 },
    #[error(
        "semaphore {name:?} has capacity {existing}, not {requested}: every hook of the job must acquire it with the same capacity"
    )]
    CapacityChanged { name: String, existing: u32, requested: u32 },
    #[error("semaphore {name:?}: capacity {requested} exceeds the maximum {MAX_CAPACITY}")]
    CapacityTooLarge { name: String, requested: i64 },
    #[error("semaphore {name:?} is not held by this allocation; acquire it before releasing")]
    NotHeld { name: String },
    #[error("the hook's token was revoked while it waited for semaphore {name:?}")]
    Revoked { name: String },
    #[error("the hook API is shutting down")]
    ShuttingDown,
}

/// One semaphore as `GET /semaphore/status` shows it (maand's `semaphoreStatusPayload`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SemaphoreStatus {
    pub name: String,
    pub capacity: u32,
    /// Holding allocation ids, sorted.
    pub holders: Vec<String>,
    pub waiting: u32,
    pub available: u32,
}

#[derive(Debug, Default)]
struct Inner {
    sems: BTreeMap<SemKey, Sem>,
    revoked: BTreeSet<TokenId>,
    next_ticket: u64,
    closed: bool,
}

/// Every semaphore of one API server.
#[derive(Debug, Default)]
pub struct Semaphores {
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// maand's capacity rule: `< 1` means 1; above [`MAX_CAPACITY`] is refused.
pub fn normalize_capacity(name: &str, requested: i64) -> Result<u32, SemaphoreError> {
    match requested {
        n if n < 1 => Ok(1),
        n if n > MAX_CAPACITY as i64 => Err(SemaphoreError::CapacityTooLarge { name: name.into(), requested: n }),
        n => Ok(n as u32),
    }
}

/// maand's timeout rule: absent or `<= 0` waits [`DEFAULT_TIMEOUT_SECS`], at most
/// [`MAX_TIMEOUT_SECS`].
pub fn normalize_timeout(seconds: Option<i64>) -> Duration {
    match seconds {
        None => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        Some(s) if s <= 0 => Duration::from_secs(DEFAULT_TIMEOUT_SECS),
        Some(s) => Duration::from_secs((s as u64).min(MAX_TIMEOUT_SECS)),
    }
}

impl Semaphores {
    pub fn new() -> Semaphores {
        Semaphores::default()
    }

    /// Take a slot for allocation `alloc` (hook `token`), waiting up to `timeout`. Blocks
    /// the calling thread. Already holding it is a success. `capacity` is normalised.
    #[allow(clippy::too_many_arguments)]
    pub fn acquire(
        &self,
        token: TokenId,
        alloc: Uuid,
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
        let ticket = inner.next_ticket;
        inner.next_ticket += 1;
        let sem = inner.sems.entry(key.clone()).or_insert(Sem {
            capacity,
            holders: BTreeMap::new(),
            waiting: VecDeque::new(),
        });
        if sem.capacity != capacity {
            return Err(SemaphoreError::CapacityChanged {
                name: name.into(),
                existing: sem.capacity,
                requested: capacity,
            });
        }
        if sem.holders.contains_key(&alloc) {
            return Ok(());
        }
        sem.waiting.push_back((ticket, alloc));
        loop {
            let sem = inner.sems.get_mut(&key).expect("a semaphore with waiters is kept");
            let first = sem.waiting.front().map(|(t, _)| *t) == Some(ticket);
            if first && (sem.holders.len() as u32) < sem.capacity {
                sem.waiting.pop_front();
                sem.holders.insert(alloc, token);
                // The next waiter may fit too (capacity > 1).
                self.changed.notify_all();
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
                sem.waiting.retain(|(t, _)| *t != ticket);
                if sem.holders.is_empty() && sem.waiting.is_empty() {
                    inner.sems.remove(&key);
                }
                self.changed.notify_all();
                return Err(e);
            }
            inner = self.changed.wait_timeout(inner, deadline - now).unwrap_or_else(|p| p.into_inner()).0;
        }
    }

    /// Give back the slot allocation `alloc` holds.
    pub fn release(&self, alloc: Uuid, job: &str, event: Event, name: &str) -> Result<(), SemaphoreError> {
        let key: SemKey = (job.to_string(), event, name.to_string());
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(sem) = inner.sems.get_mut(&key).filter(|s| s.holders.contains_key(&alloc)) else {
            return Err(SemaphoreError::NotHeld { name: name.into() });
        };
        sem.holders.remove(&alloc);
        if sem.holders.is_empty() && sem.waiting.is_empty() {
            inner.sems.remove(&key);
        }
        self.changed.notify_all();
        Ok(())
    }

    /// Release every hold a hook (token) took and did not release, and stop its pending
    /// waits: the hook exited. Returns how many holds were released.
    pub fn release_all(&self, token: TokenId) -> usize {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut released = 0;
        inner.sems.retain(|_, sem| {
            let before = sem.holders.len();
            sem.holders.retain(|_, t| *t != token);
            released += before - sem.holders.len();
            !(sem.holders.is_empty() && sem.waiting.is_empty())
        });
        inner.revoked.insert(token);
        self.changed.notify_all();
        released
    }

    /// The semaphore `name` of one job+event; an unknown one is free with capacity 1.
    pub fn status(&self, job: &str, event: Event, name: &str) -> SemaphoreStatus {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match inner.sems.get(&(job.to_string(), event, name.to_string())) {
            Some(sem) => SemaphoreStatus {
                name: name.into(),
                capacity: sem.capacity,
                holders: sem.holders.keys().map(Uuid::to_string).collect(),
                waiting: sem.waiting.len() as u32,
                available: sem.capacity.saturating_sub(sem.holders.len() as u32),
            },
            None => SemaphoreStatus { name: name.into(), capacity: 1, holders: Vec::new(), waiting: 0, available: 1 },
        }
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

    /// Tokens of `n` hooks, allocation i = Uuid(i).
    fn ids(n: usize) -> Vec<(TokenId, Uuid)> {
        let mut reg = TokenRegistry::default();
        (0..n)
            .map(|i| {
                let alloc = Uuid::from_u128(i as u128 + 1);
                let ident = HookIdentity {
                    alloc_id: alloc,
                    job: "api".into(),
                    host: format!("h{i}"),
                    event: Event::PostDeploy,
                    command: "c".into(),
                };
                (reg.issue(ident).unwrap().1, alloc)
            })
            .collect()
    }

    #[test]
    fn capacity_is_enforced_and_slots_come_back() {
        let s = Semaphores::new();
        let t = ids(4);
        let ev = Event::PostDeploy;
        let short = Duration::from_millis(50);
        let acq = |i: usize, job: &str, ev: Event, cap: u32| s.acquire(t[i].0, t[i].1, job, ev, "x", cap, short);
        acq(0, "api", ev, 2).unwrap();
        acq(1, "api", ev, 2).unwrap();
        assert!(matches!(acq(2, "api", ev, 2), Err(SemaphoreError::Timeout { .. })));
        // Another event or job is another semaphore.
        acq(2, "api", Event::PreDeploy, 2).unwrap();
        acq(2, "web", ev, 1).unwrap();
        assert!(matches!(acq(2, "api", ev, 3), Err(SemaphoreError::CapacityChanged { .. })));
        assert_eq!(s.release_all(t[0].0), 1);
        acq(2, "api", ev, 2).unwrap();
        assert!(matches!(s.release(t[0].1, "api", ev, "x"), Err(SemaphoreError::NotHeld { .. })));
        // The holder acquiring again: a success, still one slot.
        acq(2, "api", ev, 2).unwrap();
        let st = s.status("api", ev, "x");
        assert_eq!((st.capacity, st.available, st.waiting), (2, 0, 0));
        assert_eq!(st.holders, [t[1].1.to_string(), t[2].1.to_string()]);
        // A token whose hook exited cannot take a slot, even a free one.
        s.release_all(t[1].0);
        assert!(matches!(s.acquire(t[1].0, t[1].1, "api", ev, "y", 1, short), Err(SemaphoreError::Revoked { .. })));
        acq(3, "api", ev, 2).unwrap();
        assert_eq!(
            s.status("api", ev, "unknown"),
            SemaphoreStatus { name: "unknown".into(), capacity: 1, holders: vec![], waiting: 0, available: 1 }
        );
    }

    #[test]
    fn maand_normalisation_of_capacity_and_timeout() {
        assert_eq!(normalize_capacity("x", 0), Ok(1));
        assert_eq!(normalize_capacity("x", -3), Ok(1));
        assert_eq!(normalize_capacity("x", 64), Ok(64));
        assert!(matches!(normalize_capacity("x", 65), Err(SemaphoreError::CapacityTooLarge { .. })));
        assert_eq!(normalize_timeout(None), Duration::from_secs(600));
        assert_eq!(normalize_timeout(Some(0)), Duration::from_secs(600));
        assert_eq!(normalize_timeout(Some(2)), Duration::from_secs(2));
        assert_eq!(normalize_timeout(Some(99_999)), Duration::from_secs(3600));
    }
}
