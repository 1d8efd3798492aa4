//! Reading from the UNIX sockets between Apache children and daemons.
//!
//! A thread asleep in `recv` on a UNIX socket is woken whenever the peer reads what this
//! side wrote: freed write space wakes every sleeper on the socket. So a thread waiting
//! for an answer would be woken for nothing as soon as the other side took its question.
//! Waiting in `poll` for input only avoids that.

use std::io::{ErrorKind, Read};
use std::mem::MaybeUninit;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use crate::io::as_uninit;

/// Reads with `MSG_DONTWAIT`, and waits for input in `poll`.
pub struct PollReader<'a> {
    pub stream: &'a UnixStream,
    /// How long one read may wait.
    pub timeout: Duration,
    /// Wait before the first receive: the reader is made just after asking the peer for
    /// an answer, which cannot have come yet (a receive would only fail with `EAGAIN`).
    pub answer_pending: bool,
}

impl PollReader<'_> {
    /// [`Read::read`] into memory that may not be initialised yet.
    pub fn read_into(&mut self, buf: &mut [MaybeUninit<u8>]) -> std::io::Result<usize> {
        let deadline = Instant::now() + self.timeout;
        if std::mem::take(&mut self.answer_pending) {
            // Whatever ends the wait (input, a signal, the time limit), the loop sorts out.
            readable_within(self.stream, self.timeout);
        }
        loop {
            if let Some(n) = recv_now(self.stream, buf, 0)? {
                return Ok(n);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            readable_within(self.stream, left);
        }
    }
}

impl Read for PollReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        // SAFETY: a receive writes only the bytes it received.
        self.read_into(unsafe { as_uninit(buf) })
    }
}

/// One receive that does not wait (`flags` may add `MSG_PEEK`): `None` if nothing has
/// arrived, `Some(0)` at end of file.
pub fn recv_now(
    stream: &UnixStream,
    buf: &mut [MaybeUninit<u8>],
    flags: libc::c_int,
) -> std::io::Result<Option<usize>> {
    loop {
        // SAFETY: a non-blocking receive into `buf`, writable for its length (the kernel
        // writes, never reads, it), from a socket the caller holds open.
        let n = unsafe {
            libc::recv(
                stream.as_raw_fd(),
                buf.as_mut_ptr().cast(),
                buf.len(),
                flags | libc::MSG_DONTWAIT,
            )
        };
        if let Ok(n) = usize::try_from(n) {
            return Ok(Some(n));
        }
        let e = std::io::Error::last_os_error();
        match e.kind() {
            ErrorKind::WouldBlock => return Ok(None),
            ErrorKind::Interrupted => {}
            _ => return Err(e),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pending_answer_is_waited_for_then_read() {
        let (ours, peer) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            std::io::Write::write_all(&mut &peer, b"late").unwrap();
            peer
        });
        let mut reader =
            PollReader { stream: &ours, timeout: Duration::from_secs(5), answer_pending: true };
        let mut buf = [0u8; 8];
        let n = reader.read(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"late");
        assert!(!reader.answer_pending);
        drop(writer.join());
    }

    #[test]
    fn a_pending_answer_that_never_comes_times_out_once() {
        let (ours, _peer) = UnixStream::pair().unwrap();
        let timeout = Duration::from_millis(200);
        let mut reader = PollReader { stream: &ours, timeout, answer_pending: true };
        let started = Instant::now();
        let err = reader.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::TimedOut);
        let waited = started.elapsed();
        // The wait before the first receive counts towards the one time limit.
        assert!(waited >= timeout && waited < timeout * 2, "waited {waited:?}");
    }
}
