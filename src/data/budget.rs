//! A bound on the image memory that preparations running in parallel hold at once.
//!
//! The [`Matcher`](crate::matcher::Matcher) prepares its images on every core. Without a
//! bound, the peak would grow with the core count: each thread may hold a decoded image of
//! up to [`MAX_DECODED_BYTES`](super::MAX_DECODED_BYTES). A preparation takes a [`Lease`]
//! for the bytes it is about to hold and waits while the others hold too much; small
//! images, which hold little, still run side by side.
//!
//! Each preparation takes one lease and no other while holding it, so a waiting thread
//! holds nothing and no two threads can wait on each other.

use std::sync::{Condvar, Mutex, PoisonError};

/// Image bytes (file and decoded pixels) that all preparations together may hold.
pub const PREPARE_BUDGET: u64 = 512 << 20;

static HELD: Mutex<u64> = Mutex::new(0);
static FREED: Condvar = Condvar::new();

/// A share of [`PREPARE_BUDGET`], given back when dropped.
#[derive(Debug)]
pub(crate) struct Lease(u64);

/// Waits until `bytes` (at most the whole budget) fit beside what others hold, and
/// takes them.
pub(crate) fn lease(bytes: u64) -> Lease {
    let bytes = bytes.min(PREPARE_BUDGET);
    let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
    while *held + bytes > PREPARE_BUDGET {
        held = FREED.wait(held).unwrap_or_else(PoisonError::into_inner);
    }
    *held += bytes;
    Lease(bytes)
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut held = HELD.lock().unwrap_or_else(PoisonError::into_inner);
        *held -= self.0;
        FREED.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn leases_held_at_once_never_pass_the_budget() {
        let peak = AtomicU64::new(0);
        let now = AtomicU64::new(0);
        std::thread::scope(|scope| {
            for i in 0..8u64 {
                let (peak, now) = (&peak, &now);
                scope.spawn(move || {
                    for _ in 0..20 {
                        let bytes = PREPARE_BUDGET / 3 + i;
                        let _lease = lease(bytes);
                        let total = now.fetch_add(bytes, Ordering::SeqCst) + bytes;
                        peak.fetch_max(total, Ordering::SeqCst);
                        std::thread::yield_now();
                        now.fetch_sub(bytes, Ordering::SeqCst);
                    }
                });
            }
        });
        // Other tests may hold leases too, so this thread's view is a lower bound; what
        // matters is that three such leases never ran at once.
        assert!(peak.load(Ordering::SeqCst) <= PREPARE_BUDGET);
        assert!(peak.load(Ordering::SeqCst) >= PREPARE_BUDGET / 3);
    }

    #[test]
    fn a_lease_larger_than_the_budget_takes_the_whole_budget() {
        let lease = lease(u64::MAX);
        assert_eq!(lease.0, PREPARE_BUDGET);
    }
}
