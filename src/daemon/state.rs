//! What the threads of one daemon process share: the queue of connections with a
//! request waiting, the idle connections, what each worker is busy with, and whether
//! (and why) the process is stopping.

use std::collections::{HashMap, VecDeque};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::supervisor::{Generation, Group};
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
    /// The dispatcher's epoll instance (listener and idle connections).
    pub epoll: RawFd,
    /// Idle connections, by descriptor, while they sit in the epoll set.
    pub idle: Mutex<HashMap<RawFd, UnixStream>>,
    /// Connections with a request waiting for a worker.
    pub ready: Mutex<VecDeque<(UnixStream, Instant)>>,
    pub ready_signal: Condvar,
}

impl State {
    pub fn new(
        group: Arc<Group>,
        generation: Arc<Generation>,
        server: *mut ffi::server_rec,
    ) -> State {
        let threads = group.def.threads as usize;
        State {
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
            // SAFETY: creates an epoll instance owned by this process.
            epoll: unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) },
            idle: Mutex::new(HashMap::new()),
            ready: Mutex::new(VecDeque::new()),
            ready_signal: Condvar::new(),
        }
    }

    /// Asks the process to stop accepting and exit.
    pub fn stop(&self, reason: String, forced: bool) {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).get_or_insert((reason, forced));
        self.stopping.store(true, Ordering::Release);
        self.ready_signal.notify_all();
    }

    pub fn stop_reason(&self) -> Option<(String, bool)> {
        self.reason.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Records that a request started or ended.
    pub fn touch(&self) {
        *self.last_activity.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
    }

    /// Hands a connection with a waiting request to the workers.
    pub fn queue(&self, stream: UnixStream) {
        self.ready.lock().unwrap_or_else(|e| e.into_inner()).push_back((stream, Instant::now()));
        self.ready_signal.notify_one();
    }

    /// The next connection to serve, with when it was queued; `None` once the process is stopping and nothing is
    /// left.
    pub fn next_ready(&self) -> Option<(UnixStream, Instant)> {
        let mut ready = self.ready.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            // Connections already accepted are served even while stopping: dropping one
            // would fail a request the Apache child cannot tell apart from a crash.
            if let Some(next) = ready.pop_front() {
                return Some(next);
            }
            if self.stopping.load(Ordering::Acquire) {
                return None;
            }
            ready = self
                .ready_signal
                .wait_timeout(ready, Duration::from_millis(200))
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Returns a connection to the dispatcher to wait for its next request.
    pub fn park(&self, stream: UnixStream) {
        let fd = stream.as_raw_fd();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(fd, stream);
        let mut event = libc::epoll_event {
            events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
            u64: fd as u64,
        };
        // SAFETY: adds a connection we own (kept in `idle`) to our epoll instance.
        if unsafe { libc::epoll_ctl(self.epoll, libc::EPOLL_CTL_ADD, fd, &mut event) } != 0 {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd);
        }
    }
}

// SAFETY: `server` points to the main server_rec, which lives (unchanged) for the whole
// life of the process; the log functions only read it.
unsafe impl Send for State {}
// SAFETY: as above; everything else is atomics or immutable.
unsafe impl Sync for State {}
