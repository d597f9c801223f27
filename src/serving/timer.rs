//! A timer precise to tens of microseconds for the batcher's timeouts: tokio's timer wheel
//! ticks in milliseconds, so a 300 µs `tokio::time::sleep` waits about a millisecond. Here
//! one thread waits on a condition variable until the earliest deadline (a futex with a
//! timeout: the kernel's high-resolution timer, within its slack of ~50 µs) and runs what
//! is due. The thread starts with the first deadline and ends once nothing is due and the
//! [`Timer`] is dropped.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

/// What runs at a deadline.
type Due = Box<dyn FnOnce() + Send>;

/// One deadline; `seq` orders equal deadlines by arrival (and keeps `Due` out of the order).
struct Entry {
    at: Instant,
    seq: u64,
    due: Due,
}

impl PartialEq for Entry {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(other.at, other.seq))
    }
}

#[derive(Default)]
struct Queue {
    entries: BinaryHeap<Reverse<Entry>>,
    seq: u64,
    /// Whether the thread is running.
    running: bool,
}

#[derive(Default)]
struct Inner {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// Runs closures at deadlines on one thread of its own (see the module docs).
#[derive(Default)]
pub struct Timer {
    inner: Arc<Inner>,
}

/// How long the idle thread waits before it checks whether the timer was dropped.
const IDLE_CHECK: Duration = Duration::from_millis(200);

impl Timer {
    /// Runs `due` on the timer's thread at `at` (at once when it has passed). Closures
    /// should be short: they run one after another.
    pub fn at(&self, at: Instant, due: impl FnOnce() + Send + 'static) {
        let mut q = self.inner.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.seq += 1;
        let seq = q.seq;
        q.entries.push(Reverse(Entry {
            at,
            seq,
            due: Box::new(due),
        }));
        if !q.running {
            q.running = true;
            let inner = self.inner.clone();
            let started = std::thread::Builder::new()
                .name("rustflow-batch-timer".into())
                .spawn(move || run(&inner));
            if started.is_err() {
                // No thread: run what is due now rather than never.
                q.running = false;
                let due: Vec<Due> = q.entries.drain().map(|Reverse(e)| e.due).collect();
                drop(q);
                due.into_iter().for_each(|d| d());
                return;
            }
        }
        drop(q);
        self.inner.changed.notify_one();
    }
}

/// The timer thread: runs each closure at its deadline; returns when nothing is queued and
/// the [`Timer`] is gone.
fn run(inner: &Arc<Inner>) {
    let mut q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
    loop {
        let now = Instant::now();
        let next = q.entries.peek().map(|Reverse(e)| e.at);
        match next {
            Some(at) if at <= now => {
                let Some(Reverse(e)) = q.entries.pop() else {
                    continue;
                };
                drop(q);
                (e.due)();
                q = inner.queue.lock().unwrap_or_else(|p| p.into_inner());
            }
            Some(at) => {
                q = inner
                    .changed
                    .wait_timeout(q, at - now)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
            None if Arc::strong_count(inner) == 1 => {
                q.running = false;
                return;
            }
            None => {
                q = inner
                    .changed
                    .wait_timeout(q, IDLE_CHECK)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc;

    #[test]
    fn runs_each_at_its_deadline_in_order_well_under_a_millisecond_late() {
        let timer = Timer::default();
        let (tx, rx) = mpsc::channel();
        let start = Instant::now();
        // Out of order, and one already past.
        for (i, us) in [(2, 900u64), (0, 0), (1, 300)] {
            let tx = tx.clone();
            let at = start + Duration::from_micros(us);
            timer.at(at, move || {
                let _ = tx.send((i, at, Instant::now()));
            });
        }
        let got: Vec<_> = (0..3).map(|_| rx.recv().unwrap()).collect();
        assert_eq!(got.iter().map(|g| g.0).collect::<Vec<_>>(), [0, 1, 2]);
        for (_, at, ran) in &got {
            assert!(ran >= at);
        }
        // Lateness: on a loaded machine any one wake-up may be late, so the best of many
        // 300 µs waits is held to well under tokio's millisecond tick.
        let mut best = Duration::MAX;
        for _ in 0..20 {
            let (tx, rx) = mpsc::channel();
            let at = Instant::now() + Duration::from_micros(300);
            timer.at(at, move || {
                let _ = tx.send(Instant::now());
            });
            let ran = rx.recv().unwrap();
            assert!(ran >= at);
            best = best.min(ran - at);
        }
        assert!(best < Duration::from_micros(500), "{best:?} late at best");
    }

    #[test]
    fn the_thread_ends_once_the_timer_is_dropped() {
        let timer = Timer::default();
        let (tx, rx) = mpsc::channel();
        timer.at(Instant::now(), move || {
            let _ = tx.send(());
        });
        rx.recv().unwrap();
        let inner = Arc::downgrade(&timer.inner);
        drop(timer);
        let start = Instant::now();
        while inner.upgrade().is_some() {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "the thread lives on"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
