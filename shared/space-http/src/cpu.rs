//! CPU-bound work of a request (expanding recurrences, rendering a large feed) runs here, off
//! the async workers, so that one slow request cannot stall the others on its thread.
//!
//! At most one such job per core runs at a time (the rest wait their turn without holding a
//! thread), and the job is told when the request that wanted it goes away: a client that
//! disconnects, or a timeout, sets the flag it receives, and long work checks it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use tokio::sync::Semaphore;

use crate::ApiError;

fn permits() -> &'static Semaphore {
    static PERMITS: OnceLock<Semaphore> = OnceLock::new();
    PERMITS.get_or_init(|| Semaphore::new(std::thread::available_parallelism().map_or(2, |cores| cores.get())))
}

/// Sets the flag when dropped: the request's future is dropped when the client goes away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` on the blocking pool, one job per core at a time; `work` receives a flag
/// that turns true once nobody waits for its answer any more.
pub async fn run<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
{
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(Arc::clone(&cancelled));
    let permit = permits()
        .acquire()
        .await
        .map_err(|_| ApiError::Internal("the CPU work queue is closed".into()))?;
    // The permit goes with the job: a job whose caller left still holds its core until it stops.
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        work(cancelled)
    })
    .await
    .map_err(|error| ApiError::Internal(format!("CPU work failed: {error}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn work_runs_and_learns_when_its_caller_leaves() {
        assert_eq!(run(|_| 42).await.unwrap(), 42);

        let (seen_tx, seen_rx) = std::sync::mpsc::channel();
        let (started_tx, started_rx) = tokio::sync::oneshot::channel();
        let caller = tokio::spawn(run(move |cancelled: Arc<AtomicBool>| {
            let _ = started_tx.send(());
            while !cancelled.load(Ordering::Relaxed) {
                std::thread::yield_now();
            }
            let _ = seen_tx.send(());
        }));
        started_rx.await.unwrap();
        caller.abort();
        tokio::task::spawn_blocking(move || seen_rx.recv_timeout(std::time::Duration::from_secs(10)))
            .await
            .unwrap()
            .expect("the work saw the cancellation");
    }
}
