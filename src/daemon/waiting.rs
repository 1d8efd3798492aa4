//! Where the idle worker threads of a daemon process wait for work: one epoll set that
//! holds the group's listener and every idle connection, each armed for one event, so an
//! event wakes one worker and goes to it alone. A request then goes from the socket to
//! the thread that serves it with no hand-off between threads.
//!
//! Connections are known by a token of their own, not by descriptor: a registration can
//! outlive its descriptor (a process forked by the application still holds the socket),
//! and its late event must not be taken for a new connection that got the same number.

use std::collections::HashMap;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

/// The token of the group's listener; connections count up from 0.
const LISTENER: u64 = u64::MAX;

/// What woke a waiting worker.
pub enum Event {
    /// A connection is waiting to be accepted (the listener is disarmed until
    /// [`WaitSet::rearm_listener`]).
    Listener,
    /// An idle connection has its next request: it is the worker's now.
    Request(u64, UnixStream),
    /// Nothing to do: a connection the Apache child closed (now closed here too), an
    /// event of a connection already gone, or an interrupted wait.
    Nothing,
}

pub struct WaitSet {
    epoll: OwnedFd,
    listener: RawFd,
    /// Idle connections by token; `None` once closed for good (the process is stopping).
    idle: Mutex<Option<HashMap<u64, UnixStream>>>,
    next_token: AtomicU64,
}

/// Arms `fd` in `epoll` for one event: `op` is `EPOLL_CTL_ADD` for a descriptor not yet
/// in the set, `EPOLL_CTL_MOD` to re-arm one whose event fired.
fn arm(epoll: RawFd, op: libc::c_int, fd: RawFd, token: u64) -> std::io::Result<()> {
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLRDHUP | libc::EPOLLONESHOT) as u32,
        u64: token,
    };
    // SAFETY: registers or re-arms a descriptor the caller holds open in an epoll
    // instance of this process; `event` is read during the call only.
    match unsafe { libc::epoll_ctl(epoll, op, fd, &mut event) } {
        0 => Ok(()),
        _ => Err(std::io::Error::last_os_error()),
    }
}

impl WaitSet {
    /// A set holding `listener`, armed.
    pub fn new(listener: RawFd) -> std::io::Result<WaitSet> {
        // SAFETY: creates an epoll instance; the descriptor is checked before it is owned.
        let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if fd < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
        arm(epoll.as_raw_fd(), libc::EPOLL_CTL_ADD, listener, LISTENER)?;
        Ok(WaitSet {
            epoll,
            listener,
            idle: Mutex::new(Some(HashMap::new())),
            next_token: AtomicU64::new(0),
        })
    }

    /// Blocks until something needs a worker.
    pub fn wait(&self) -> Event {
        let mut event = libc::epoll_event { events: 0, u64: 0 };
        // SAFETY: waits for one event on our epoll instance; `event` is written by it.
        if unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, -1) } != 1 {
            return Event::Nothing;
        }
        let token = event.u64;
        if token == LISTENER {
            return Event::Listener;
        }
        let taken = (self.idle.lock().unwrap_or_else(|e| e.into_inner()).as_mut())
            .and_then(|idle| idle.remove(&token));
        let hung_up = event.events & (libc::EPOLLHUP | libc::EPOLLRDHUP | libc::EPOLLERR) as u32;
        match taken {
            Some(stream) if hung_up == 0 => Event::Request(token, stream),
            _ => Event::Nothing,
        }
    }

    /// Re-arms the listener after a worker took its event.
    pub fn rearm_listener(&self) {
        let _ = arm(self.epoll.as_raw_fd(), libc::EPOLL_CTL_MOD, self.listener, LISTENER);
    }

    /// A token for a newly accepted connection.
    pub fn new_token(&self) -> u64 {
        self.next_token.fetch_add(1, Ordering::Relaxed)
    }

    /// Makes a connection wait in the set for its next request; closes it if the set is
    /// closed.
    pub fn park(&self, token: u64, stream: UnixStream) {
        let fd = stream.as_raw_fd();
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let Some(map) = idle.as_mut() else { return };
        map.insert(token, stream);
        // A connection that served a request is in the set already (disarmed by its
        // event); a new one is not. Armed under the lock, so `wait` finds it in the map.
        let epoll = self.epoll.as_raw_fd();
        if arm(epoll, libc::EPOLL_CTL_MOD, fd, token)
            .or_else(|_| arm(epoll, libc::EPOLL_CTL_ADD, fd, token))
            .is_err()
        {
            map.remove(&token);
        }
    }

    /// Closes the idle connections, and any parked later, so their Apache children send
    /// their next requests elsewhere.
    pub fn close(&self) {
        self.idle.lock().unwrap_or_else(|e| e.into_inner()).take();
    }
}
