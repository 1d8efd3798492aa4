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
//! The request is then used by two threads, and Apache's request and pools are not
//! thread-safe: every use of it while the application runs (the brigade and filters, the
//! body, log lines about the request, which may allocate from its pool) happens under
//! the request's lock. The flusher passes only what the client's socket can take at
//! once, so it holds the lock briefly, and a thread holding the GIL may wait for it.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
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

/// Room the flusher leaves on top of what it passes, for chunk and TLS framing.
const ROOM_MARGIN: usize = 4096;

/// Set when the flusher thread cannot start: nothing is held then.
static NO_FLUSHER: AtomicBool = AtomicBool::new(false);

thread_local! {
    // No destructor: safe in any process. The request this thread is streaming, while
    // its `Ending` lives (which keeps the pointee alive).
    static CURRENT: Cell<*const Shared> = const { Cell::new(std::ptr::null()) };
}

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
    /// A pass by the flusher failed: the client is gone.
    gone: bool,
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
    /// Whether blocks may be held: decided once the head went out, when the request's
    /// output filters are in place (`None` before).
    holdable: Option<bool>,
    flush_wanted: bool,
}

/// The request body of an embedded-mode request, read under the request's lock.
pub struct StreamBody {
    shared: Arc<Shared>,
    body: Body,
}

/// Marks the request over when dropped: the flusher lets go of it. (Also remembers the
/// request this thread was streaming before, for nested requests.)
pub struct Ending(Arc<Shared>, *const Shared);

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
        gone: false,
    })));
    let output = StreamOutput { shared: shared.clone(), holdable: None, flush_wanted: false };
    let body = StreamBody { shared: shared.clone(), body: Body::new(request) };
    let before = CURRENT.with(|c| c.replace(Arc::as_ptr(&shared)));
    (output, body, Ending(shared, before))
}

impl Drop for Ending {
    fn drop(&mut self) {
        self.0.lock().ended = true;
        CURRENT.with(|c| c.set(self.1));
    }
}

/// The request's lock, for code on other threads that touches the request (log lines
/// written by threads the application started).
#[derive(Clone)]
pub struct RequestLock(Arc<Shared>);

impl RequestLock {
    /// Runs `f` under the lock; `None` once the request is over.
    pub fn with<T>(&self, f: impl FnOnce() -> T) -> Option<T> {
        let state = self.0.lock();
        (!state.ended).then(f)
    }
}

impl Ending {
    pub fn lock(&self) -> RequestLock {
        RequestLock(self.0.clone())
    }
}

/// Runs `f` (which uses request `r`) under `r`'s lock if this thread is streaming `r`.
pub fn with_request_lock<T>(r: *const crate::ffi::request_rec, f: impl FnOnce() -> T) -> T {
    let current = CURRENT.with(|c| c.get());
    if current.is_null() {
        return f();
    }
    // SAFETY: CURRENT points to the `Shared` of an `Ending` alive on this thread (set in
    // `for_request`, reset when the `Ending` drops), which holds an `Arc` to it.
    let shared = unsafe { &*current };
    let state = shared.lock();
    let _held = std::ptr::eq(state.output.request().as_ptr(), r).then_some(state);
    f()
}

impl StreamOutput {
    /// Whether a pass now would only hold what is queued.
    fn will_hold(&self, state: &State) -> bool {
        self.flush_wanted
            && self.holdable == Some(true)
            && state.all_copied
            && !state.gone
            && state.held <= HOLD_MAX
            && !NO_FLUSHER.load(Ordering::Relaxed)
    }
}

impl ResponseSink for StreamOutput {
    fn head(&mut self, head: &Head) {
        self.shared.lock().output.head(head);
    }

    fn data(&mut self, data: &[u8]) {
        let mut state = self.shared.lock();
        if self.holdable == Some(true) && state.held + data.len() <= HOLD_MAX {
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
        if state.gone {
            return Err(ClientGone);
        }
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
        if self.holdable.is_none() {
            self.holdable = Some(state.output.can_be_held());
        }
        passed
    }

    fn pass_is_quick(&self) -> bool {
        self.will_hold(&self.shared.lock())
    }
}

impl BodySource for StreamBody {
    fn read(&mut self, buf: &mut [std::mem::MaybeUninit<u8>]) -> Result<usize, BodyError> {
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
        let started =
            std::thread::Builder::new().name("wsgi-flush".into()).spawn(move || flusher.run());
        // Without the thread nothing is held: every pass flushes at once, as before.
        NO_FLUSHER.store(started.is_err(), Ordering::Relaxed);
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
            // Entries are due in the order they were added (retries go last, due latest),
            // so the due ones come first.
            let now = Instant::now();
            let due = held.iter().take_while(|(at, _)| *at <= now).count();
            if due > 0 {
                let due: Vec<_> = held.drain(..due).collect();
                drop(held);
                let retry: Vec<_> = due.into_iter().filter(|(_, s)| !Self::flush(s)).collect();
                held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                let again = Instant::now() + FLUSH_DELAY;
                held.extend(retry.into_iter().map(|(_, s)| (again, s)));
                continue;
            }
            let wait = held
                .first()
                .map_or(Duration::from_secs(1), |(at, _)| at.saturating_duration_since(now));
            held = self.wake.wait_timeout(held, wait).unwrap_or_else(|e| e.into_inner()).0;
        }
    }

    /// Passes what `shared` holds if the client's connection takes it all at once (so the
    /// lock is held briefly). False to try again later (the handler thread is using the
    /// request, or the client is not reading).
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
        match state.output.client_room() {
            // A closed connection fails at once; the handler hears of it on its next pass.
            None => {
                let _ = state.pass_flushed();
                state.gone = true;
            }
            Some(room) if room >= state.held + ROOM_MARGIN => {
                state.gone = state.pass_flushed().is_err();
            }
            Some(_) => return false,
        }
        true
    }
}
