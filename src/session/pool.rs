//! The inter-op worker pool: long-lived threads fed through a crossbeam channel.

use crossbeam_channel::{unbounded, Receiver, Sender};
use std::thread::JoinHandle;

/// A unit of work for the pool.
pub(crate) type Job = Box<dyn FnOnce() + Send + 'static>;

/// Worker threads that run jobs until the pool is dropped.
pub(crate) struct Pool {
    sender: Option<Sender<Job>>,
    receiver: Receiver<Job>,
    workers: Vec<JoinHandle<()>>,
}

impl Pool {
    /// Starts `threads` workers.
    pub(crate) fn new(threads: usize) -> Pool {
        let (sender, receiver) = unbounded::<Job>();
        let workers = (0..threads)
            .map(|i| {
                let rx = receiver.clone();
                std::thread::Builder::new()
                    .name(format!("rustflow-inter-op-{i}"))
                    .spawn(move || {
                        while let Ok(job) = rx.recv() {
                            job();
                        }
                    })
                    .expect("spawning an inter-op worker thread")
            })
            .collect();
        Pool {
            sender: Some(sender),
            receiver,
            workers,
        }
    }

    /// Queues a job.
    pub(crate) fn submit(&self, job: Job) {
        if let Some(s) = &self.sender {
            // The receiver lives as long as the pool, so sending cannot fail.
            let _ = s.send(job);
        }
    }

    /// The queue, so a waiting caller can help run jobs.
    pub(crate) fn queue(&self) -> &Receiver<Job> {
        &self.receiver
    }
}

impl Drop for Pool {
    /// Stops the workers once their queued jobs are done and waits for them, except for
    /// the worker running this drop: a job may hold the last handle to the pool (a run's
    /// last step finishing after the session that started it is gone), and a thread
    /// cannot wait for itself. That worker ends on its own after the job.
    fn drop(&mut self) {
        self.sender.take();
        let current = std::thread::current().id();
        for w in self.workers.drain(..) {
            if w.thread().id() != current {
                let _ = w.join();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{mpsc, Arc};
    use std::time::Duration;

    #[test]
    fn a_worker_may_drop_the_last_handle_to_its_pool() {
        let pool = Arc::new(Pool::new(2));
        let (go, wait_for_go) = mpsc::channel::<()>();
        let (done, finished) = mpsc::channel();
        let last = Arc::clone(&pool);
        pool.submit(Box::new(move || {
            wait_for_go.recv().unwrap();
            drop(last);
            done.send(()).unwrap();
        }));
        drop(pool);
        go.send(()).unwrap();
        assert!(finished.recv_timeout(Duration::from_secs(10)).is_ok());
    }
}
