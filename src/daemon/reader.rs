//! Reading from the UNIX sockets between Apache children and daemons.
//!
//! A thread asleep in `recv` on a UNIX socket is woken whenever the peer reads what this
//! side wrote: freed write space wakes every sleeper on the socket. So a thread waiting
//! for an answer would be woken for nothing as soon as the other side took its question.
//! Waiting in `poll` for input only avoids that.

use std::io::{ErrorKind, Read};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

/// Reads with `MSG_DONTWAIT`, and waits for input in `poll`.
pub struct PollReader<'a> {
    pub stream: &'a UnixStream,
    /// How long one read may wait.
    pub timeout: Duration,
}

impl Read for PollReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        loop {
            // SAFETY: a non-blocking receive into `buf`, writable for its length, from a
            // socket the caller holds open.
            let n = unsafe {
                libc::recv(
                    self.stream.as_raw_fd(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                    libc::MSG_DONTWAIT,
                )
            };
            if let Ok(n) = usize::try_from(n) {
                return Ok(n);
            }
            let e = std::io::Error::last_os_error();
            if !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::Interrupted) {
                return Err(e);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            readable_within(self.stream, left);
        }
    }
}

/// Waits up to `wait` for input (or the peer closing); true if it came.
pub fn readable_within(stream: &UnixStream, wait: Duration) -> bool {
    let mut poll = libc::pollfd { fd: stream.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    let timeout = libc::timespec {
        tv_sec: wait.as_secs() as libc::time_t,
        tv_nsec: wait.subsec_nanos() as libc::c_long,
    };
    // SAFETY: polls one descriptor the caller holds open, for at most `timeout`, with no
    // signal mask.
    unsafe { libc::ppoll(&mut poll, 1, &timeout, std::ptr::null()) > 0 }
}
