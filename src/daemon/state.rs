//! What the threads of one daemon process share: where idle workers wait, what each
//! worker is busy with, and whether (and why) the process is stopping.

use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::supervisor::{Generation, Group};
use super::waiting::WaitSet;
use crate::ffi;

/// The request a worker thread is serving.
pub struct Busy {
    pub since: Instant,
    /// Python's identifier of the worker thread (for its stack in the log).
    pub thread: u64,
    pub uri: String,
    /// The connection, shared with the worker, so the monitor can answer 504 for a stuck
    /// request.
    pub connection: Arc<UnixStream>,
}

/// Shared by the worker threads of this process.
pub struct State {
    pub group: Arc<Group>,
    pub generation: Arc<Generation>,
    pub server: *mut ffi::server_rec,
    /// Set when the process should stop accepting and exit.
    pub stopping: AtomicBool,
    /// Why, and whether the stop is forced (a stuck process): the first reason wins.
    reason: Mutex<Option<(String, bool)>>,
    /// What each worker thread is serving.
    pub busy: Vec<Mutex<Option<Busy>>>,
    pub started: Instant,
    /// When the last request started or ended (for `inactivity-timeout`).
    pub last_activity: Mutex<Instant>,
    /// Requests being served now.
    pub active: AtomicUsize,
    /// Requests served so far (for `maximum-requests`).
    pub served: AtomicU32,
    /// Where idle workers wait: the listener and the idle connections.
    pub waiting: WaitSet,
}

impl State {
    pub fn new(
        group: Arc<Group>,
        generation: Arc<Generation>,
        server: *mut ffi::server_rec,
    ) -> std::io::Result<State> {
        let threads = group.def.threads as usize;
        let waiting = WaitSet::new(group.listener)?;
        Ok(State {
            group,
            generation,
            server,
            stopping: AtomicBool::new(false),
            reason: Mutex::new(None),
            busy: (0..threads).map(|_| Mutex::new(None)).collect(),
            started: Instant::now(),
            last_activity: Mutex::new(Instant::now()),
            active: AtomicUsize::new(0),
            served: AtomicU32::new(0),
            waiting,
        })
    }

    /// Asks the process to stop accepting and exit.
    pub fn stop(&self, reason: String, forced: bool) {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((reason, forced));
        self.stopping.store(true, Ordering::Release);
    }

    pub fn stop_reason(&self) -> Option<(String, bool)> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records that a request started or ended.
    pub fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }
}

// SAFETY: `server` points to the main server_rec, which lives (unchanged) for the whole
// life of the process; the log functions only read it.
unsafe impl Send for State {}
// SAFETY: as above; everything else is atomics or immutable.
unsafe impl Sync for State {}
