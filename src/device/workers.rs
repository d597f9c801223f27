//! Helper threads for intra-op parallelism that stay awake briefly between jobs.
//!
//! A kernel split into parts runs them on the calling thread and on helpers (one fewer
//! than the machine's cores), each taking the next part not yet taken, so a helper that
//! starts late leaves its part to the caller instead of making it wait. A helper spins for
//! [`SPIN`] after its last part before it sleeps, so back-to-back products (a training
//! loop, a benchmark) find it awake: 256×256 products on two threads went from ~390 to
//! ~465 GFLOP/s against rayon's sleeping workers. The MLP 784-1024-1024-10 training step
//! measured a little faster with 300 µs than with 50 µs or 1 ms (longer spins take the
//! core from the single-threaded ops that run between a network's products).
//!
//! One job runs at a time; a kernel that finds the helpers busy (a part of another
//! split kernel, or another session's product) runs its parts on its own thread.

use crate::tensor::alloc::{self, MemoryBudget};
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// How long a helper keeps looking for work after its last part before it sleeps.
const SPIN: Duration = Duration::from_micros(300);

/// One split kernel: `parts` calls of `f`, taken in turn by whoever is free.
struct Job {
    /// The next part nobody has taken yet (may count past `parts`).
    next: AtomicUsize,
    parts: usize,
    /// Parts not finished yet; the caller returns only at zero.
    unfinished: AtomicUsize,
    panicked: AtomicBool,
    /// The caller's closure. Only dereferenced for a part taken below `parts`, and the
    /// caller waits for every part to finish, so it outlives each use; a helper arriving
    /// late finds no part left and never touches it.
    f: *const (dyn Fn(usize) + Sync),
    /// The caller's memory budget, which the parts' tensors are charged to on any thread.
    budget: Option<Arc<MemoryBudget>>,
}

// SAFETY: `f` is `Sync` and only called while the caller keeps it alive (see `Job::f`).
unsafe impl Send for Job {}
unsafe impl Sync for Job {}

impl Job {
    /// Runs parts until none is left.
    fn work(&self) {
        loop {
            let part = self.next.fetch_add(1, Ordering::AcqRel);
            if part >= self.parts {
                return;
            }
            // SAFETY: part < parts, so the caller is still waiting (see `Job::f`).
            let f = unsafe { &*self.f };
            let run = || match &self.budget {
                Some(budget) => alloc::with_budget(budget, || f(part)),
                None => f(part),
            };
            if catch_unwind(AssertUnwindSafe(run)).is_err() {
                self.panicked.store(true, Ordering::Release);
            }
            self.unfinished.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// A helper's mailbox.
struct Mailbox {
    job: Mutex<Option<Arc<Job>>>,
    /// Jobs posted so far: the helper spins on this.
    posted: AtomicU64,
    sleeping: AtomicBool,
    thread: OnceLock<Thread>,
}

impl Mailbox {
    fn post(&self, job: &Arc<Job>) {
        *self.job.lock().unwrap_or_else(PoisonError::into_inner) = Some(Arc::clone(job));
        self.posted.fetch_add(1, Ordering::SeqCst);
        if self.sleeping.load(Ordering::SeqCst) {
            if let Some(t) = self.thread.get() {
                t.unpark();
            }
        }
    }

    /// The helper's loop: wait for a job (spinning, then asleep), work on it, repeat.
    fn serve(&self) {
        let mut seen = 0;
        loop {
            let idle_since = Instant::now();
            let mut rounds = 0u32;
            while self.posted.load(Ordering::Acquire) == seen {
                rounds = rounds.wrapping_add(1);
                if !rounds.is_multiple_of(64) || idle_since.elapsed() < SPIN {
                    std::hint::spin_loop();
                } else {
                    self.sleeping.store(true, Ordering::SeqCst);
                    if self.posted.load(Ordering::SeqCst) == seen {
                        thread::park();
                    }
                    self.sleeping.store(false, Ordering::SeqCst);
                }
            }
            seen = self.posted.load(Ordering::Acquire);
            let job = self
                .job
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take();
            if let Some(job) = job {
                job.work();
            }
        }
    }
}

/// The process's helpers: one fewer than the machine's cores (the caller is the other).
struct Helpers {
    mailboxes: Vec<Arc<Mailbox>>,
    /// Held while a job runs: one job at a time.
    busy: Mutex<()>,
}

fn helpers() -> &'static Helpers {
    static HELPERS: OnceLock<Helpers> = OnceLock::new();
    HELPERS.get_or_init(|| {
        let cores = thread::available_parallelism().map_or(1, |n| n.get());
        let mailboxes = (1..cores)
            .filter_map(|i| {
                let mailbox = Arc::new(Mailbox {
                    job: Mutex::new(None),
                    posted: AtomicU64::new(0),
                    sleeping: AtomicBool::new(false),
                    thread: OnceLock::new(),
                });
                let serving = Arc::clone(&mailbox);
                let handle = thread::Builder::new()
                    .name(format!("rustflow-intra-op-{i}"))
                    .spawn(move || serving.serve())
                    .ok()?;
                let _ = mailbox.thread.set(handle.thread().clone());
                Some(mailbox)
            })
            .collect();
        Helpers {
            mailboxes,
            busy: Mutex::new(()),
        }
    })
}

/// Calls `f(part)` for every part in `0..parts`, on the calling thread and up to
/// `parts - 1` helpers, and returns when all are done. A panic in any part is raised
/// here once every part has finished.
pub fn run_parts(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let pool = helpers();
    if parts <= 1 || pool.mailboxes.is_empty() {
        run_inline(parts, f);
        return;
    }
    let _busy = match pool.busy.try_lock() {
        Ok(guard) => guard,
        Err(TryLockError::Poisoned(p)) => p.into_inner(),
        Err(TryLockError::WouldBlock) => {
            run_inline(parts, f);
            return;
        }
    };
    // SAFETY (lifetime erasure): `Job::f` documents why the pointer is never used after
    // this function returns.
    let f: *const (dyn Fn(usize) + Sync + '_) = f;
    let f: *const (dyn Fn(usize) + Sync + 'static) = unsafe { std::mem::transmute(f) };
    let job = Arc::new(Job {
        next: AtomicUsize::new(0),
        parts,
        unfinished: AtomicUsize::new(parts),
        panicked: AtomicBool::new(false),
        f,
        budget: alloc::current(),
    });
    for mailbox in pool.mailboxes.iter().take(parts - 1) {
        mailbox.post(&job);
    }
    job.work();
    let mut rounds = 0u32;
    while job.unfinished.load(Ordering::Acquire) > 0 {
        rounds = rounds.wrapping_add(1);
        if !rounds.is_multiple_of(64) {
            std::hint::spin_loop();
        } else {
            thread::yield_now();
        }
    }
    if job.panicked.load(Ordering::Acquire) {
        resume_unwind(Box::new("a part of a split kernel panicked"));
    }
}

/// Runs every part on the calling thread; a panic is raised after the last part.
fn run_inline(parts: usize, f: &(dyn Fn(usize) + Sync)) {
    let mut first_panic = None;
    for part in 0..parts {
        if let Err(payload) = catch_unwind(AssertUnwindSafe(|| f(part))) {
            first_panic.get_or_insert(payload);
        }
    }
    if let Some(payload) = first_panic {
        resume_unwind(payload);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_part_runs_once() {
        for parts in [0, 1, 2, 3, 7] {
            let counts: Vec<AtomicUsize> = (0..parts).map(|_| AtomicUsize::new(0)).collect();
            run_parts(parts, &|p| {
                counts[p].fetch_add(1, Ordering::Relaxed);
            });
            assert!(counts.iter().all(|c| c.load(Ordering::Relaxed) == 1));
        }
    }

    #[test]
    fn jobs_from_several_threads_at_once_all_complete() {
        let total = AtomicUsize::new(0);
        thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    for _ in 0..100 {
                        run_parts(2, &|_| {
                            total.fetch_add(1, Ordering::Relaxed);
                        });
                    }
                });
            }
        });
        assert_eq!(total.load(Ordering::Relaxed), 4 * 100 * 2);
    }

    #[test]
    fn tensors_made_by_helpers_are_charged_to_the_callers_budget() {
        use crate::Tensor;
        let budget = alloc::MemoryBudget::new(1 << 20);
        // 8 KiB per part; part 0 waits for part 1, so when the caller takes part 0 a
        // helper must run part 1 (the helpers may be busy with another test's job: retry).
        let mut on_a_helper = false;
        for _ in 0..50 {
            let caller = thread::current().id();
            let made = Mutex::new(Vec::new());
            let ran_elsewhere = AtomicBool::new(false);
            let second_done = AtomicBool::new(false);
            alloc::with_budget(&budget, || {
                run_parts(2, &|p| {
                    if p == 0 {
                        let start = Instant::now();
                        while !second_done.load(Ordering::Acquire)
                            && start.elapsed() < Duration::from_millis(200)
                        {
                            thread::yield_now();
                        }
                    }
                    if thread::current().id() != caller {
                        ran_elsewhere.store(true, Ordering::Relaxed);
                    }
                    let t = Tensor::full(&[2048], p as f32);
                    made.lock().unwrap().push(t);
                    if p == 1 {
                        second_done.store(true, Ordering::Release);
                    }
                })
            });
            assert_eq!(budget.in_use(), 2 * 8192);
            drop(made);
            assert_eq!(budget.in_use(), 0);
            if ran_elsewhere.load(Ordering::Relaxed) {
                on_a_helper = true;
                break;
            }
        }
        assert!(
            on_a_helper || helpers().mailboxes.is_empty(),
            "no part ran on a helper"
        );
    }

    #[test]
    fn a_panicking_part_is_raised_after_the_others_finish() {
        let done = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_parts(4, &|p| {
                if p == 1 {
                    panic!("part 1 fails");
                }
                thread::sleep(Duration::from_millis(5));
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 3);
        // The helpers still work afterwards.
        let again = AtomicUsize::new(0);
        run_parts(2, &|_| {
            again.fetch_add(1, Ordering::Relaxed);
        });
        assert_eq!(again.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_panicking_part_run_inline_is_raised_after_the_others_finish() {
        let done = AtomicUsize::new(0);
        let result = catch_unwind(AssertUnwindSafe(|| {
            run_inline(3, &|p| {
                if p == 0 {
                    panic!("part 0 fails");
                }
                done.fetch_add(1, Ordering::Relaxed);
            })
        }));
        assert!(result.is_err());
        assert_eq!(done.load(Ordering::Relaxed), 2);
    }
}
