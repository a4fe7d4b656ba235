//! Where `spacectl serve` writes its log lines: request threads append to a shared buffer,
//! and one thread writes it out a few times a second. A request never makes a system call
//! for its log line and never wakes another thread; a per-line queue (tracing-appender)
//! woke its writer for nearly every request under load.

use std::io::Write;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a line may wait in the buffer.
const FLUSH_INTERVAL: Duration = Duration::from_millis(50);
/// Past this, the writer is woken at once rather than at its next tick.
const WAKE_AT_BYTES: usize = 256 * 1024;
/// Past this, a request thread waits for the writer: lines are never dropped, and memory
/// stays bounded when the output is slower than the requests.
const BLOCK_AT_BYTES: usize = 8 * 1024 * 1024;

struct Shared {
    state: Mutex<State>,
    /// Wakes the writer (buffer large, or closing).
    wake_writer: Condvar,
    /// Wakes request threads waiting for room.
    room: Condvar,
}

#[derive(Default)]
struct State {
    buffer: Vec<u8>,
    closing: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The `MakeWriter` handed to the subscriber. Cloning it is cheap.
#[derive(Clone)]
pub struct BatchedWriter(Arc<Shared>);

/// Writes out what is buffered and stops the writer thread when dropped.
pub struct FlushOnDrop {
    shared: Arc<Shared>,
    writer: Option<JoinHandle<()>>,
}

/// A writer to `output` and the guard that flushes it; fails only if the writer thread
/// cannot be started.
pub fn batched(output: impl Write + Send + 'static) -> std::io::Result<(BatchedWriter, FlushOnDrop)> {
    let shared = Arc::new(Shared {
        state: Mutex::new(State::default()),
        wake_writer: Condvar::new(),
        room: Condvar::new(),
    });
    let writer = {
        let shared = Arc::clone(&shared);
        std::thread::Builder::new()
            .name("log-writer".into())
            .spawn(move || write_out(&shared, output))?
    };
    Ok((
        BatchedWriter(Arc::clone(&shared)),
        FlushOnDrop {
            shared,
            writer: Some(writer),
        },
    ))
}

fn write_out(shared: &Shared, mut output: impl Write) {
    let mut batch = Vec::new();
    let mut state = shared.lock();
    loop {
        if !state.closing && state.buffer.len() < WAKE_AT_BYTES {
            state = shared
                .wake_writer
                .wait_timeout(state, FLUSH_INTERVAL)
                .map_or_else(|poisoned| poisoned.into_inner().0, |(state, _)| state);
        }
        std::mem::swap(&mut batch, &mut state.buffer);
        let closing = state.closing;
        drop(state);
        shared.room.notify_all();
        if !batch.is_empty() {
            // Nowhere to report a failed log write; the next batch tries again.
            let _ = output.write_all(&batch).and_then(|()| output.flush());
            batch.clear();
        }
        state = shared.lock();
        if closing && state.buffer.is_empty() {
            return;
        }
    }
}

impl Write for BatchedWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let shared = &self.0;
        let mut state = shared.lock();
        while state.buffer.len() >= BLOCK_AT_BYTES && !state.closing {
            shared.wake_writer.notify_one();
            state = shared.room.wait(state).unwrap_or_else(|poisoned| poisoned.into_inner());
        }
        let before = state.buffer.len();
        state.buffer.extend_from_slice(bytes);
        // Only on crossing the mark: a notification is a system call.
        if before < WAKE_AT_BYTES && state.buffer.len() >= WAKE_AT_BYTES {
            shared.wake_writer.notify_one();
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for BatchedWriter {
    type Writer = BatchedWriter;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.shared.lock().closing = true;
        self.shared.wake_writer.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An output the test can read back, shared with the writer thread.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn every_line_from_every_thread_is_written_once_in_its_thread_order() {
        let output = Captured::default();
        let (writer, guard) = batched(output.clone()).unwrap();
        let threads: Vec<_> = (0..4)
            .map(|thread| {
                let mut writer = writer.clone();
                std::thread::spawn(move || {
                    for line in 0..20_000 {
                        writer.write_all(format!("{thread} {line}\n").as_bytes()).unwrap();
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        drop(guard);

        let text = String::from_utf8(output.0.lock().unwrap().clone()).unwrap();
        let mut next = [0u32; 4];
        for line in text.lines() {
            let (thread, number) = line.split_once(' ').unwrap();
            let thread: usize = thread.parse().unwrap();
            assert_eq!(number.parse::<u32>().unwrap(), next[thread], "out of order: {line}");
            next[thread] += 1;
        }
        assert_eq!(next, [20_000; 4], "lines lost");
    }

    #[test]
    fn a_line_reaches_the_output_without_a_flush() {
        let output = Captured::default();
        let (mut writer, _guard) = batched(output.clone()).unwrap();
        writer.write_all(b"served\n").unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while output.0.lock().unwrap().is_empty() {
            assert!(std::time::Instant::now() < deadline, "the line was never written");
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(output.0.lock().unwrap().as_slice(), b"served\n");
    }
}
