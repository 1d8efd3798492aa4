//! What the WSGI objects read the request body from and write the response to.
//!
//! `wsgi.input` and `start_response` only know these traits: embedded mode implements
//! them over Apache's filters (`apache::brigade`), daemon mode over its socket. Pure: no
//! Apache, no Python.

use std::mem::MaybeUninit;

use crate::response::Head;

/// The client went away (or a filter failed): nothing more can be sent.
#[derive(Debug)]
pub struct ClientGone;

/// The client did not send the whole request body (closed early, bad chunk, timeout).
#[derive(Debug)]
pub struct BodyError;

/// Where a response goes. Calls queue; `pass` sends what is queued.
pub trait ResponseSink {
    /// Takes the status and headers; called once, before any body.
    fn head(&mut self, head: &Head);
    /// Queues body bytes. The caller keeps `data` alive until the next `pass` returns.
    fn data(&mut self, data: &[u8]);
    /// Queues a copy of body bytes: the caller may drop `data` at once.
    fn copy(&mut self, data: &[u8]);
    /// Queues `len` bytes of the open file `fd` from `offset`; the caller keeps `fd` open
    /// until the next `pass` returns.
    fn file(&mut self, fd: i32, offset: i64, len: u64) -> std::io::Result<()>;
    /// Asks for what is queued to reach the client now.
    fn flush(&mut self);
    /// Marks the end of a complete response.
    fn end(&mut self);
    /// Marks the response as cut short: the client must be able to tell it is incomplete.
    /// Anything still queued is sent first (so it may block).
    fn broken(&mut self);
    /// Sends what is queued. May block: called with the GIL released, unless
    /// [`pass_is_quick`](Self::pass_is_quick) said it will not.
    fn pass(&mut self) -> Result<(), ClientGone>;

    /// Whether the next `pass` returns at once (it only holds what is queued, to go out
    /// with what follows), so the caller may keep the GIL across it.
    fn pass_is_quick(&self) -> bool {
        false
    }
}

/// Where the request body comes from. Reads go into memory that may not be initialised
/// yet (a new Python `bytes`, which would otherwise be zeroed first only to be
/// overwritten): a source writes real bytes only, and returns how many, which are then
/// initialised.
pub trait BodySource {
    /// Reads the next part of the body into `buf`; `Ok(0)` at the end. May block: called
    /// with the GIL released.
    fn read(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError>;

    /// Fills `buf`, or reads to the end of the body; returns the bytes read.
    fn read_all(&mut self, buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError> {
        let mut got = 0;
        while got < buf.len() {
            match self.read(&mut buf[got..])? {
                0 => break,
                n => got += n,
            }
        }
        Ok(got)
    }

    /// Reads what has already arrived into `buf`, without waiting, so the caller may keep
    /// the GIL across it (0 when nothing has, or for sources that cannot tell).
    fn read_at_hand(&mut self, _buf: &mut [MaybeUninit<u8>]) -> Result<usize, BodyError> {
        Ok(0)
    }
}

/// Initialised bytes seen as memory to read into.
///
/// # Safety
/// Only what writes initialised bytes may write through the result (every
/// [`BodySource`] does): writing `MaybeUninit::uninit()` would leave `buf` holding
/// uninitialised bytes.
pub unsafe fn as_uninit(buf: &mut [u8]) -> &mut [MaybeUninit<u8>] {
    // SAFETY: `MaybeUninit<u8>` has the layout of `u8`; the caller's promise keeps `buf`
    // initialised.
    unsafe { &mut *(buf as *mut [u8] as *mut [MaybeUninit<u8>]) }
}
