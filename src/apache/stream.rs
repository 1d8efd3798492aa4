//! Streamed responses in embedded mode: blocks an application yields close together go
//! out in one write, and none waits longer than [`FLUSH_DELAY`].
//!
//! A write per yielded block is what makes streaming slow (mod_wsgi's users see it); PEP
//! 3333 lets a server hold a block back only if it keeps transmitting while the
//! application produces the next one. So once the response head is out, a small block
//! that asks for a flush is held, and a flusher thread (one per Apache child) passes
//! whatever has waited [`FLUSH_DELAY`]. More than [`HOLD_MAX`] bytes, the end of the
//! response, or a read of the request body send what is held at once.
//!
//! The request's output and body are then used by two threads, so every use of them
//! (the brigade, the filters, the body) happens under the request's lock, and the
//! flusher only passes when the client's socket has room, so it holds the lock briefly.
//! The flusher never logs, and log lines about the request need no lock: Apache's
//! logging only reads the request.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, TryLockError};
use std::time::{Duration, Instant};

use super::brigade::{Body, Output};
use super::request::Request;
use crate::io::{BodyError, BodySource, ClientGone, ResponseSink};
use crate::response::Head;

/// Longest a held block waits for the blocks after it.
pub const FLUSH_DELAY: Duration = Duration::from_millis(2);

/// Most bytes held back; more are passed at once.
const HOLD_MAX: usize = 16 * 1024;

/// What the handler thread and the flusher share about one request.
struct State {
    output: Output,
    /// Bytes queued since the last pass, all copied (none borrowed from Python).
    held: usize,
    /// Everything queued since the last pass is a copy, so it may wait.
    all_copied: bool,
    /// When a flush was first owed and not done, if one is.
    owed_since: Option<Instant>,
    /// The end of the response is queued (it flushes everything before it).
    at_end: bool,
    /// The request is over: nothing may touch it any more.
    ended: bool,
}

struct Shared(Mutex<State>);

// SAFETY: `State` holds raw pointers to the request and its brigade. They are only used
// under the mutex, and `ended` (set by the handler thread before the request's pool is
// destroyed) stops every use after that.
unsafe impl Send for Shared {}
// SAFETY: as above.
unsafe impl Sync for Shared {}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl State {
    /// Passes what is queued, flushed; the client's socket may make it wait.
    fn pass_flushed(&mut self) -> Result<(), ClientGone> {
        if !self.at_end {
            self.output.flush();
        }
        self.pass()
    }

    /// Queues the end of the response (after anything held).
    fn end_with(&mut self, end: impl FnOnce(&mut Output)) {
        self.owed_since = None;
        self.at_end = true;
        end(&mut self.output);
    }

    fn pass(&mut self) -> Result<(), ClientGone> {
        self.held = 0;
        self.all_copied = true;
        self.owed_since = None;
        self.output.pass()
    }
}

/// The response of an embedded-mode request (a [`ResponseSink`]).
pub struct StreamOutput {
    shared: Arc<Shared>,
    head_passed: bool,
    flush_wanted: bool,
}

/// The request body of an embedded-mode request, read under the request's lock.
pub struct StreamBody {
    shared: Arc<Shared>,
    body: Body,
}

/// Marks the request over when dropped: the flusher lets go of it.
pub struct Ending(Arc<Shared>);

/// The response sink, the body source and the end marker of one request. The caller
/// keeps the [`Ending`] until the request is done with.
pub fn for_request(request: Request) -> (StreamOutput, StreamBody, Ending) {
    let shared = Arc::new(Shared(Mutex::new(State {
        output: Output::new(request),
        held: 0,
        all_copied: true,
        owed_since: None,
        at_end: false,
        ended: false,
    })));
    let output = StreamOutput { shared: shared.clone(), head_passed: false, flush_wanted: false };
    let body = StreamBody { shared: shared.clone(), body: Body(request) };
    (output, body, Ending(shared))
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.lock().ended = true;
    }
}

impl StreamOutput {
    /// Whether a pass now would only hold what is queued.
    fn will_hold(&self, state: &State) -> bool {
        self.flush_wanted
            && self.head_passed
            && state.all_copied
            && state.held <= HOLD_MAX
            && state.output.can_be_held()
    }
}

impl ResponseSink for StreamOutput {
    fn head(&mut self, head: &Head) {
        self.shared.lock().output.head(head);
    }

    fn data(&mut self, data: &[u8]) {
        let mut state = self.shared.lock();
        if self.head_passed && state.held + data.len() <= HOLD_MAX {
            // May be held past the caller's `pass`: a copy, not a borrow.
            state.output.copy(data);
        } else {
            state.output.data(data);
            state.all_copied = false;
        }
        state.held += data.len();
    }

    fn copy(&mut self, data: &[u8]) {
        let mut state = self.shared.lock();
        state.output.copy(data);
        state.held += data.len();
    }

    fn file(&mut self, fd: i32, offset: i64, len: u64) -> std::io::Result<()> {
        let mut state = self.shared.lock();
        state.all_copied = false;
        state.output.file(fd, offset, len)
    }

    fn flush(&mut self) {
        self.flush_wanted = true;
    }

    fn end(&mut self) {
        self.flush_wanted = false;
        self.shared.lock().end_with(Output::end);
    }

    fn broken(&mut self) {
        self.flush_wanted = false;
        self.shared.lock().end_with(Output::broken);
    }

    fn pass(&mut self) -> Result<(), ClientGone> {
        let mut state = self.shared.lock();
        if self.will_hold(&state) {
            self.flush_wanted = false;
            if state.owed_since.is_none() {
                state.owed_since = Some(Instant::now());
                flusher().hold(self.shared.clone());
            }
            return Ok(());
        }
        // What is owed goes out flushed, whatever this pass is for.
        let flush = std::mem::take(&mut self.flush_wanted) || state.owed_since.is_some();
        let passed = if flush { state.pass_flushed() } else { state.pass() };
        self.head_passed = true;
        passed
    }

    fn pass_is_quick(&self) -> bool {
        self.will_hold(&self.shared.lock())
    }
}

impl BodySource for StreamBody {
    fn read(&mut self, buf: &mut [u8]) -> Result<usize, BodyError> {
        let mut state = self.shared.lock();
        // The client may be waiting for what is held before it sends more.
        if state.owed_since.is_some() && state.pass_flushed().is_err() {
            return Err(BodyError);
        }
        self.body.read(buf)
    }
}

/// The thread that passes held blocks once they have waited [`FLUSH_DELAY`].
struct Flusher {
    /// Requests holding blocks, with when they are due.
    held: Mutex<Vec<(Instant, Arc<Shared>)>>,
    wake: Condvar,
}

/// The flusher of this process, started on first use (only Apache children stream).
fn flusher() -> &'static Flusher {
    static FLUSHER: OnceLock<&'static Flusher> = OnceLock::new();
    FLUSHER.get_or_init(|| {
        let flusher: &'static Flusher =
            Box::leak(Box::new(Flusher { held: Mutex::new(Vec::new()), wake: Condvar::new() }));
        // Without the thread, held blocks would wait for the next block or the end of
        // the response: nothing is lost, and each pass then flushes at once instead.
        let _ = std::thread::Builder::new().name("wsgi-flush".into()).spawn(move || flusher.run());
        flusher
    })
}

impl Flusher {
    fn hold(&self, shared: Arc<Shared>) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        // Entries are due in the order they come: with any already waiting, the flusher
        // wakes in time for this one without being told.
        let idle = held.is_empty();
        held.push((Instant::now() + FLUSH_DELAY, shared));
        if idle {
            self.wake.notify_one();
        }
    }

    fn run(&self) {
        let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            let now = Instant::now();
            let (due, later): (Vec<_>, Vec<_>) = held.drain(..).partition(|(at, _)| *at <= now);
            *held = later;
            if !due.is_empty() {
                drop(held);
                let retry: Vec<_> = due.into_iter().filter(|(_, s)| !Self::flush(s)).collect();
                held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                let again = Instant::now() + FLUSH_DELAY;
                held.extend(retry.into_iter().map(|(_, s)| (again, s)));
                continue;
            }
            let wait = held
                .iter()
                .map(|(at, _)| at.saturating_duration_since(now))
                .min()
                .unwrap_or(Duration::from_secs(1));
            held = self.wake.wait_timeout(held, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Passes what `shared` holds if the client's socket has room. False to try again
    /// later (the handler thread is using the request, or the client is not reading).
    fn flush(shared: &Shared) -> bool {
        let mut state = match shared.0.try_lock() {
            Ok(state) => state,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        // The handler's own final pass sends what an ended response holds.
        if state.ended || state.at_end || state.owed_since.is_none() {
            return true;
        }
        if !state.output.client_has_room() {
            return false;
        }
        let _ = state.pass_flushed(); // A failure shows again on the handler's next pass.
        true
    }
}
