//! The thread every write of one embedded store runs on.
//!
//! Writes are serialised anyway (one redb write transaction at a time), so one thread
//! loses nothing, and it keeps the allocator's memory in one place. Each apply copies the
//! held records it changes (a busy site's 16 KB day sketch, its minute's online set of up
//! to 32 KB) and frees the versions they replace, some tens of megabytes a second at
//! saturation. On Tokio's blocking pool the applies ran on whichever of its threads was
//! free, and each of those threads kept its own share of those blocks in its allocator's
//! heap: freed, but resident. On one thread the blocks freed by one apply are the ones
//! the next one takes.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc;

use crate::store::StoreError;

type Job = Box<dyn FnOnce() + Send>;

/// A thread running jobs in the order they are sent; it ends when the last handle is
/// dropped.
#[derive(Debug)]
pub(super) struct Worker {
    jobs: mpsc::Sender<Job>,
}

/// The name of the thread (seen in `top -H`, `ps -T` and panic messages).
pub(super) const THREAD_NAME: &str = "footfall-store-writer";

impl Worker {
    pub(super) fn start() -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name(THREAD_NAME.to_owned())
            .spawn(move || {
                for job in queue {
                    // A job that panics drops its reply channel, so its caller gets an
                    // error; the jobs after it still run.
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(job));
                }
            })
            .map_err(|error| StoreError::Backend {
                message: "cannot start the embedded store's writer thread".to_owned(),
                source: Some(Box::new(error)),
            })?;
        Ok(Worker { jobs })
    }

    /// Runs `job` on the thread and waits for its result. Whatever the job holds is
    /// dropped when it returns, before the result is sent.
    pub(super) async fn run<T: Send + 'static>(
        &self,
        job: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = reply.send(job());
            }))
            .map_err(|_| failed())?;
        answer.await.map_err(|_| failed())?
    }
}

fn failed() -> StoreError {
    StoreError::Backend {
        message: "an embedded store write failed on its thread".to_owned(),
        source: None,
    }
}
