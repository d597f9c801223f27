//! The session's core budget: how many threads may compute at once.
//!
//! Every expensive step holds one core while its kernel runs (waiting for one when all are
//! taken), and a kernel that splits its work (a matrix product, a convolution) claims the
//! free ones on top, up to `intra_op_threads`. So two independent matrix products either
//! run side by side on one core each, or one after the other on all cores — never four
//! threads fighting over two cores, which slows both far more than it helps.

use std::cell::Cell;
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

/// Cores shared by every run of one session.
pub(crate) struct CoreBudget {
    total: usize,
    free: Mutex<usize>,
    freed: Condvar,
}

impl CoreBudget {
    /// A budget of `cores` (at least one).
    pub(crate) fn new(cores: usize) -> CoreBudget {
        CoreBudget {
            total: cores.max(1),
            free: Mutex::new(cores.max(1)),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        self.free.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Waits until `n` cores are free and takes them.
    fn take(&self, mut free: MutexGuard<'_, usize>, n: usize) {
        while *free < n {
            free = self
                .freed
                .wait(free)
                .unwrap_or_else(PoisonError::into_inner);
        }
        *free -= n;
    }

    /// Takes one core, waiting until one is free.
    pub(crate) fn acquire(&self) -> Cores<'_> {
        self.take(self.lock(), 1);
        Cores {
            budget: self,
            held: Cell::new(1),
        }
    }
}

/// Cores held by one computing step; given back when dropped.
pub(crate) struct Cores<'a> {
    budget: &'a CoreBudget,
    held: Cell<usize>,
}

impl Cores<'_> {
    /// Holds `want` cores (at most the whole budget) and returns how many are held. When
    /// not enough are free, gives back the ones held and waits for `want` at once: two
    /// steps each holding one core while waiting for a second would wait forever.
    pub(crate) fn claim(&self, want: usize) -> usize {
        let want = want.min(self.budget.total);
        let held = self.held.get();
        if want > held {
            let mut free = self.budget.lock();
            if *free + held < want {
                *free += held;
                self.held.set(0);
                self.budget.freed.notify_all();
                self.budget.take(free, want);
            } else {
                *free -= want - held;
            }
            self.held.set(want);
        }
        self.held.get()
    }
}

impl Drop for Cores<'_> {
    fn drop(&mut self) {
        *self.budget.lock() += self.held.get();
        self.budget.freed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn a_claim_waits_for_all_the_cores_it_wants() {
        let budget = CoreBudget::new(2);
        let a = budget.acquire();
        assert_eq!(a.claim(2), 2);
        assert_eq!(a.claim(1), 2, "never shrinks while held");
        assert_eq!(a.claim(5), 2, "at most the whole budget");
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let b = budget.acquire();
                tx.send(b.claim(2)).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            drop(a);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok(2));
        });
    }

    #[test]
    fn steps_waiting_for_more_cores_do_not_deadlock() {
        let budget = CoreBudget::new(2);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..200 {
                        let c = budget.acquire();
                        assert_eq!(c.claim(2), 2);
                    }
                });
            }
        });
        assert_eq!(*budget.lock(), 2, "every core given back");
    }

    #[test]
    fn acquire_waits_for_a_released_core() {
        let budget = CoreBudget::new(1);
        let held = budget.acquire();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            s.spawn(|| {
                let _c = budget.acquire();
                tx.send(()).unwrap();
            });
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            drop(held);
            assert!(rx.recv_timeout(Duration::from_secs(10)).is_ok());
        });
    }
}
