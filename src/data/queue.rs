//! A bounded queue whose storage grows with what is queued: `prefetch(buffer_size)`
//! holds at most `buffer_size` elements, but a large bound costs nothing until elements
//! arrive (a channel such as `crossbeam_channel::bounded` allocates every slot up front,
//! so `prefetch(1 << 40)` would abort the process).

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

/// The state both ends share.
struct State<T> {
    items: VecDeque<T>,
    /// Whether the sending end still exists (the receiver ends when it is gone and the
    /// queue is empty).
    sender_alive: bool,
    /// Whether the receiving end still exists (sends fail once it is gone).
    receiver_alive: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    capacity: usize,
    /// Signalled when an item arrives or the sender goes.
    not_empty: Condvar,
    /// Signalled when an item leaves or the receiver goes.
    not_full: Condvar,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// The sending end of a [`bounded`] queue.
pub(crate) struct Sender<T>(Arc<Shared<T>>);

/// The receiving end of a [`bounded`] queue; iterating it yields items until the sender
/// is dropped and the queue is empty.
pub(crate) struct Receiver<T>(Arc<Shared<T>>);

/// A queue holding at most `capacity` items (at least 1).
pub(crate) fn bounded<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            items: VecDeque::new(),
            sender_alive: true,
            receiver_alive: true,
        }),
        capacity: capacity.max(1),
        not_empty: Condvar::new(),
        not_full: Condvar::new(),
    });
    (Sender(Arc::clone(&shared)), Receiver(shared))
}

impl<T> Sender<T> {
    /// Queues `item`, waiting while the queue is full; gives it back when the receiver is
    /// gone.
    pub(crate) fn send(&self, item: T) -> Result<(), T> {
        let shared = &self.0;
        let mut state = shared.lock();
        while state.receiver_alive && state.items.len() >= shared.capacity {
            state = shared
                .not_full
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
        if !state.receiver_alive {
            return Err(item);
        }
        state.items.push_back(item);
        drop(state);
        shared.not_empty.notify_one();
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.lock().sender_alive = false;
        self.0.not_empty.notify_all();
    }
}

impl<T> Iterator for Receiver<T> {
    type Item = T;

    /// The next item, waiting for one; `None` once the sender is gone and nothing is left.
    fn next(&mut self) -> Option<T> {
        let shared = &self.0;
        let mut state = shared.lock();
        loop {
            if let Some(item) = state.items.pop_front() {
                drop(state);
                shared.not_full.notify_one();
                return Some(item);
            }
            if !state.sender_alive {
                return None;
            }
            state = shared
                .not_empty
                .wait(state)
                .unwrap_or_else(|p| p.into_inner());
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.0.lock();
        state.receiver_alive = false;
        // Queued items drop here, not whenever the sender next wakes.
        state.items.clear();
        drop(state);
        self.0.not_full.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_its_capacity_and_keeps_order() {
        let (tx, rx) = bounded(2);
        let producer = std::thread::spawn(move || {
            for i in 0..100 {
                tx.send(i).unwrap();
            }
        });
        // The producer cannot run more than two items ahead of a consumer that is not
        // reading: after a pause, exactly two are queued.
        std::thread::sleep(std::time::Duration::from_millis(50));
        assert_eq!(rx.0.lock().items.len(), 2);
        assert_eq!(rx.collect::<Vec<_>>(), (0..100).collect::<Vec<_>>());
        producer.join().unwrap();
    }

    #[test]
    fn a_huge_bound_allocates_only_what_is_queued() {
        let (tx, rx) = bounded(usize::MAX);
        for i in 0..10 {
            tx.send(i).unwrap();
        }
        drop(tx);
        assert!(rx.0.lock().items.capacity() < 1024);
        assert_eq!(rx.sum::<i32>(), 45);
    }

    #[test]
    fn a_send_after_the_receiver_is_gone_fails_and_wakes_a_waiting_sender() {
        let (tx, rx) = bounded(1);
        tx.send(1).unwrap();
        let waiting = std::thread::spawn(move || tx.send(2));
        std::thread::sleep(std::time::Duration::from_millis(20));
        drop(rx);
        assert_eq!(waiting.join().unwrap(), Err(2));
    }
}
