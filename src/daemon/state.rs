//! What the threads of one daemon process share: the epoll set the workers wait on (the
//! group's listener and the idle connections), what each worker is busy with, and
//! whether (and why) the process is stopping.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

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
    /// The epoll instance idle workers wait on: the listener and the idle connections,
    /// each registered one-shot, so an event wakes one worker and goes to it alone.
    pub epoll: RawFd,
    /// Idle connections, by descriptor, while they are armed in the epoll set.
    pub idle: Mutex<HashMap<RawFd, UnixStream>>,
}

/// The epoll token of the group's listener (connections use their descriptor).
pub const LISTENER: u64 = u64::MAX;

/// Arms `fd` in `epoll` for one event: `op` is `EPOLL_CTL_ADD` for a descriptor not yet
/// in the set, `EPOLL_CTL_MOD` to re-arm one that fired.
fn arm(epoll: RawFd, op: libc::c_int, fd: RawFd, token: u64) -> bool {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
        u64: token,
    };
    // SAFETY: registers or re-arms a descriptor the caller holds open in an epoll
    // instance of this process; `event` is read during the call only.
    unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) == 0 }
}

impl State {
    pub fn new(
        group: Arc<Group>,
        generation: Arc<Generation>,
        server: *mut ffi::server_rec,
    ) -> State {
        let threads = group.def.threads as usize;
        // SAFETY: creates an epoll instance owned by this process.
        let epoll = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        arm(epoll, libc::EPOLL_CTL_ADD, group.listener, LISTENER);
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
            epoll,
            idle: Mutex::new(HashMap::new()),
        }
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

    /// Re-arms the listener after a worker took its event, for the next connection.
    pub fn rearm_listener(&self) {
        arm(self.epoll, libc::EPOLL_CTL_MOD, self.group.listener, LISTENER);
    }

    /// Takes the idle connection whose event a worker received: its event disarmed it,
    /// and it stays in the set, disarmed, until it is parked again or closed.
    pub fn take_idle(&self, fd: RawFd) -> Option<UnixStream> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd)
    }

    /// Makes a connection wait, in the epoll set, for its next request.
    pub fn park(&self, stream: UnixStream) {
        let fd = stream.as_raw_fd();
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).insert(fd, stream);
        // A connection that served a request is in the set already; a new one is not.
        if !arm(self.epoll, libc::EPOLL_CTL_MOD, fd, fd as u64)
            && !arm(self.epoll, libc::EPOLL_CTL_ADD, fd, fd as u64)
        {
            self.idle.lock().unwrap_or_else(|e| e.into_inner()).remove(&fd);
        }
    }

    /// Closes the idle connections (closing takes them out of the epoll set), so their
    /// Apache children send their next requests elsewhere.
    pub fn close_idle(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

// SAFETY: `server` points to the main server_rec, which lives (unchanged) for the whole
// life of the process; the log functions only read it.
unsafe impl Send for State {}
// SAFETY: as above; everything else is atomics or immutable.
unsafe impl Sync for State {}
