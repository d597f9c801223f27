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
    fn drop(&mut self) {
        self.sender.take();
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}
