//! CPU-bound work of a request (expanding recurrences, writing a large feed) runs here, off
//! the async workers, so that one slow request cannot stall the others on its thread.
//!
//! The work runs on a small pool of its own (one thread per core) under Linux's idle
//! scheduling class: it gets a core only when nothing else wants it, so when expensive
//! requests pile up they wait for each other, while the async workers keep their cores for
//! every other request. Jobs are told when the request that
//! wanted them goes away (a client that disconnects, a timeout): the flag they receive turns
//! true, and long work checks it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock, mpsc};

use crate::ApiError;

type Job = Box<dyn FnOnce() + Send>;

fn pool() -> &'static Mutex<mpsc::Sender<Job>> {
    static POOL: OnceLock<Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    POOL.get_or_init(|| {
        let (sender, receiver) = mpsc::channel::<Job>();
        let receiver = Arc::new(Mutex::new(receiver));
        let threads = std::thread::available_parallelism().map_or(2, |cores| cores.get());
        for n in 0..threads {
            let receiver = Arc::clone(&receiver);
            let started = std::thread::Builder::new()
                .name(format!("space-cpu-{n}"))
                .spawn(move || {
                    lower_priority();
                    loop {
                        let job = match receiver.lock() {
                            Ok(receiver) => receiver.recv(),
                            Err(_) => return,
                        };
                        match job {
                            Ok(job) => job(),
                            Err(_) => return,
                        }
                    }
                });
            if let Err(error) = started {
                tracing::warn!(%error, "could not start a CPU worker thread");
            }
        }
        Mutex::new(sender)
    })
}

/// Moves the calling thread to the idle scheduling class (per thread on Linux); where that
/// is refused, to the lowest nice value.
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: both calls only change the calling thread's scheduling (`pid = 0`); `param`
    // lives across the call.
    unsafe {
        let param = libc::sched_param { sched_priority: 0 };
        if libc::sched_setscheduler(0, libc::SCHED_IDLE, &param) != 0 {
            libc::setpriority(libc::PRIO_PROCESS, 0, 19);
        }
    }
}

/// Sets the flag when dropped: the request's future is dropped when the client goes away.
struct CancelOnDrop(Arc<AtomicBool>);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Runs `work` on the CPU pool; `work` receives a flag that turns true once nobody waits
/// for its answer any more.
pub async fn run<T, F>(work: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(Arc<AtomicBool>) -> T + Send + 'static,
{
    let cancelled = Arc::new(AtomicBool::new(false));
    let _cancel = CancelOnDrop(Arc::clone(&cancelled));
    let (answer, answered) = tokio::sync::oneshot::channel();
    let job: Job = Box::new(move || {
        // A job whose caller already left is skipped.
        if !cancelled.load(Ordering::Relaxed) {
            let _ = answer.send(work(cancelled));
        }
    });
    pool()
        .lock()
        .map_err(|_| ApiError::Internal("the CPU pool is poisoned".into()))?
        .send(job)
        .map_err(|_| ApiError::Internal("the CPU pool has stopped".into()))?;
    answered
        .await
        .map_err(|_| ApiError::Internal("CPU work ended without an answer".into()))
}

/// CPU time the calling thread has used. A work budget measured in it counts the work a job
/// did, not the time it waited for a core: the pool runs in the idle class and waits
/// whenever anything else runs.
pub fn thread_time() -> std::time::Duration {
    let mut spent = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: `spent` is a valid timespec for the call to fill; the clock id is a constant
    // Linux always offers.
    let status = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut spent) };
    if status != 0 {
        return std::time::Duration::ZERO;
    }
    std::time::Duration::new(
        u64::try_from(spent.tv_sec).unwrap_or(0),
        u32::try_from(spent.tv_nsec).unwrap_or(0),
    )
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
