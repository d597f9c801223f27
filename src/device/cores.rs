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
    state: Mutex<Queue>,
    freed: Condvar,
}

/// Free cores and the line of waiting requests, served first come, first served: a claim
/// for all the cores is not overtaken by later one-core requests, which would otherwise
/// keep it waiting as long as there is anything else to run.
struct Queue {
    free: usize,
    /// Ticket of the request served next.
    serving: u64,
    /// Ticket the next request gets.
    next: u64,
    /// Requests asleep waiting for their turn (waking nobody costs no system call).
    sleeping: usize,
}

impl Queue {
    fn wake_all(&self, freed: &Condvar) {
        if self.sleeping > 0 {
            freed.notify_all();
        }
    }
}

impl CoreBudget {
    /// A budget of `cores` (at least one).
    pub(crate) fn new(cores: usize) -> CoreBudget {
        CoreBudget {
            total: cores.max(1),
            state: Mutex::new(Queue {
                free: cores.max(1),
                serving: 0,
                next: 0,
                sleeping: 0,
            }),
            freed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues for `n` cores and takes them once every earlier request is served and `n`
    /// are free.
    fn take(&self, mut state: MutexGuard<'_, Queue>, n: usize) {
        let ticket = state.next;
        state.next += 1;
        while state.serving != ticket || state.free < n {
            state.sleeping += 1;
            state = self
                .freed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            state.sleeping -= 1;
        }
        state.free -= n;
        state.serving += 1;
        state.wake_all(&self.freed);
    }

    /// Gives back `n` cores.
    fn give_back(&self, mut state: MutexGuard<'_, Queue>, n: usize) {
        state.free += n;
        state.wake_all(&self.freed);
    }

    /// Takes one core, waiting for it in line.
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
    /// How many cores are held.
    pub(crate) fn held(&self) -> usize {
        self.held.get()
    }

    /// Holds `want` cores (at most the whole budget) and returns how many are held. When
    /// they are not free at once, gives back the ones held and waits in line for `want`:
    /// two steps each holding one core while waiting for a second would wait forever.
    pub(crate) fn claim(&self, want: usize) -> usize {
        let want = want.min(self.budget.total);
        let held = self.held.get();
        if want > held {
            let mut state = self.budget.lock();
            let nobody_waits = state.serving == state.next;
            if nobody_waits && state.free + held >= want {
                state.free -= want - held;
            } else {
                state.free += held;
                self.held.set(0);
                state.wake_all(&self.budget.freed);
                self.budget.take(state, want);
            }
            self.held.set(want);
        }
        self.held.get()
    }
}

impl Drop for Cores<'_> {
    fn drop(&mut self) {
        self.budget.give_back(self.budget.lock(), self.held.get());
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
        assert_eq!(budget.lock().free, 2, "every core given back");
    }

    #[test]
    fn a_waiting_claim_is_not_overtaken_by_later_requests() {
        let budget = CoreBudget::new(2);
        let a = budget.acquire();
        let (tx, rx) = mpsc::channel();
        std::thread::scope(|s| {
            let (budget, claimed) = (&budget, tx.clone());
            s.spawn(move || {
                let b = budget.acquire();
                assert_eq!(b.claim(2), 2);
                claimed.send("claim").unwrap();
                std::thread::sleep(Duration::from_millis(20));
            });
            // Tickets: a's, b's acquire, b's claim.
            while budget.lock().next < 3 {
                std::thread::yield_now();
            }
            s.spawn(move || {
                let _c = budget.acquire();
                tx.send("acquire").unwrap();
            });
            // One core is free, but the claim queued first.
            assert!(rx.recv_timeout(Duration::from_millis(50)).is_err());
            drop(a);
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("claim"));
            assert_eq!(rx.recv_timeout(Duration::from_secs(10)), Ok("acquire"));
        });
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
