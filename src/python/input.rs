//! `wsgi.input`: the request body as a binary file-like object (PEP 3333, "Input and
//! Error Streams").
//!
//! Every read method shares one buffer, so mixing `readline()`, `read(n)` and iteration
//! never loses bytes. The body is pulled from Apache (dechunked) with the GIL released.
//! `read()` without a size reads to the end, as mod_wsgi allows, and every method
//! returns `b""` at the end, which is what makes chunked request bodies usable.

use std::mem::MaybeUninit;

use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList};

use crate::io::{as_uninit, BodyError, BodySource};

/// How much to ask Apache for at a time.
const READ_BLOCK: usize = 64 * 1024;
/// How much a read of a known size asks for at a time.
const READ_ALL_BLOCK: usize = 1024 * 1024;
/// Reads of a known size in this range go straight into the `bytes` returned (below it
/// the shared buffer serves better; above it, a huge `read(n)` would allocate it all
/// before anything arrives).
const DIRECT_MIN: usize = 8 * 1024;
const DIRECT_MAX: usize = READ_ALL_BLOCK;

/// The blocking part of [`Input::fill`], with the GIL released: reads into `buffer` from
/// `end`, a block at a time, until `got` reaches `want` (without `all`, after one read)
/// or the body ends. Gives the bytes read and whether the body ended.
fn read_blocks(
    source: &mut Box<dyn BodySource>,
    buffer: &mut Vec<u8>,
    end: &mut usize,
    mut got: usize,
    want: usize,
    all: bool,
) -> Result<(usize, bool), BodyError> {
    while got < want {
        let block = (want - got).min(if all { READ_ALL_BLOCK } else { READ_BLOCK });
        if buffer.len() < *end + block {
            buffer.resize(*end + block, 0);
        }
        let region = &mut buffer[*end..*end + block];
        // SAFETY: sources write received bytes only, so the buffer stays initialised.
        let region = unsafe { as_uninit(region) };
        let read = if all { source.read_all(region) } else { source.read(region) };
        match read? {
            0 => return Ok((got, true)),
            n => {
                *end += n;
                got += n;
                if !all {
                    break;
                }
            }
        }
    }
    Ok((got, false))
}

#[pyclass(unsendable, module = "mod_wsgi")]
pub struct Input {
    /// Where the body comes from; `None` once the request has ended.
    source: Option<Box<dyn BodySource>>,
    /// Bytes read from Apache and not yet returned: `buffer[pos..end]`. The vector only
    /// grows (zeroed once), so reading into it costs no clearing.
    buffer: Vec<u8>,
    pos: usize,
    end: usize,
    eof: bool,
    /// Set when the client broke off the body, so the handler answers 400, not 500.
    pub client_failed: bool,
}

impl Input {
    pub fn new(source: Box<dyn BodySource>) -> Input {
        Input {
            source: Some(source),
            buffer: Vec::new(),
            pos: 0,
            end: 0,
            eof: false,
            client_failed: false,
        }
    }

    /// Called when the request ends: the object may outlive it in Python.
    pub fn detach_request(&mut self) {
        self.source = None;
    }

    fn buffered(&self) -> &[u8] {
        &self.buffer[self.pos..self.end]
    }

    /// Reads more of the body into the buffer: with `all`, until `want` bytes arrived or
    /// the body ended; otherwise whatever the next read brings (readline must not wait
    /// for bytes past the line). False at the end of the body.
    fn fill(&mut self, py: Python<'_>, want: usize, all: bool) -> PyResult<bool> {
        if self.eof {
            return Ok(false);
        }
        // Bytes already returned go before reading more, so the buffer never holds more
        // than one read beyond what is still unread.
        if self.pos > 0 {
            self.buffer.copy_within(self.pos..self.end, 0);
            self.end -= self.pos;
            self.pos = 0;
        }
        let source = self.source.as_mut().ok_or_else(request_ended)?;
        let (buffer, end) = (&mut self.buffer, &mut self.end);
        let start = *end;
        let want = want.max(1);
        // What has already arrived is taken with the GIL held (letting it go and taking
        // it back costs more than the copy); if that is not enough, one GIL release for
        // the whole read, however many blocks it takes. The buffer grows a block at a
        // time, so a huge `read(n)` costs only what arrives.
        let first = want.min(if all { READ_ALL_BLOCK } else { READ_BLOCK });
        if buffer.len() < *end + first {
            buffer.resize(*end + first, 0);
        }
        // SAFETY: as in `read_blocks`.
        let at_hand = source.read_at_hand(unsafe { as_uninit(&mut buffer[*end..*end + first]) });
        let result = match at_hand {
            Ok(n) if n >= want || (n > 0 && !all) => {
                *end += n;
                Ok((n, false))
            }
            Ok(n) => {
                *end += n;
                super::detach(py, || read_blocks(source, buffer, end, n, want, all))
            }
            Err(e) => Err(e),
        };
        match result {
            Ok((got, eof)) => {
                self.eof = eof;
                Ok(got > 0)
            }
            Err(_) => {
                self.end = start;
                Err(self.client_failed())
            }
        }
    }

    /// Records that the client broke off the body, and the error `read` raises for it.
    fn client_failed(&mut self) -> PyErr {
        self.eof = true;
        self.client_failed = true;
        PyOSError::new_err(
            "request data read error: the client did not send the whole request body",
        )
    }

    /// Reads `n` bytes straight into a new `bytes` object, so the body is copied once on
    /// its way to Python, into memory nothing zeroed first.
    fn read_direct<'py>(&mut self, py: Python<'py>, n: usize) -> PyResult<Bound<'py, PyBytes>> {
        let have = self.end - self.pos;
        let source = self.source.as_mut().ok_or_else(request_ended)?;
        let size = pyo3::ffi::Py_ssize_t::try_from(n)
            .map_err(|_| PyValueError::new_err("read size too large"))?;
        // SAFETY: a null source asks CPython for a new `bytes` of `n` bytes, contents not
        // yet set; null (with the error set) becomes that error.
        let bytes = unsafe {
            let raw = pyo3::ffi::PyBytes_FromStringAndSize(std::ptr::null(), size);
            Bound::from_owned_ptr_or_err(py, raw)?.cast_into_unchecked::<PyBytes>()
        };
        // SAFETY: the object is new and no one else refers to it until it is returned, so
        // its `n` bytes are ours to write; `MaybeUninit` asks nothing of their contents.
        let buf: &mut [MaybeUninit<u8>] = unsafe {
            std::slice::from_raw_parts_mut(pyo3::ffi::PyBytes_AsString(bytes.as_ptr()).cast(), n)
        };
        for (slot, byte) in buf[..have].iter_mut().zip(&self.buffer[self.pos..self.end]) {
            slot.write(*byte);
        }
        let rest = &mut buf[have..];
        // As in `fill`: what has arrived without letting the GIL go.
        let result = match source.read_at_hand(rest) {
            Ok(got) if got == rest.len() => Ok(got),
            Ok(got) => super::detach(py, || source.read_all(&mut rest[got..])).map(|m| got + m),
            Err(e) => Err(e),
        };
        self.pos = self.end;
        match result {
            Ok(got) if have + got == n => Ok(bytes),
            Ok(got) => {
                self.eof = true;
                // SAFETY: the first `have + got` bytes were written above or by the source;
                // the rest, never written, are not read, and the object is dropped.
                let filled = unsafe { std::slice::from_raw_parts(buf.as_ptr().cast(), have + got) };
                Ok(PyBytes::new(py, filled))
            }
            Err(_) => Err(self.client_failed()),
        }
    }

    /// Takes up to `n` buffered bytes, as a Python `bytes` copied straight from the
    /// buffer.
    fn take<'py>(&mut self, py: Python<'py>, n: usize) -> Bound<'py, PyBytes> {
        let n = n.min(self.end - self.pos);
        let out = PyBytes::new(py, &self.buffer[self.pos..self.pos + n]);
        self.pos += n;
        out
    }

    fn read_bytes<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        match size {
            Some(n) => {
                let direct = (DIRECT_MIN..=DIRECT_MAX)
                    .contains(&(n - self.buffered().len().min(n)))
                    && !self.eof;
                if direct {
                    return self.read_direct(py, n);
                }
                while self.buffered().len() < n && self.fill(py, n - self.buffered().len(), true)? {
                }
                Ok(self.take(py, n))
            }
            None => {
                while self.fill(py, usize::MAX, true)? {}
                Ok(self.take(py, usize::MAX))
            }
        }
    }

    fn read_line<'py>(
        &mut self,
        py: Python<'py>,
        limit: Option<usize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        let mut scanned = 0;
        loop {
            let buffered = self.buffered();
            let window = limit.map_or(buffered.len(), |l| l.min(buffered.len()));
            if let Some(i) = buffered[scanned..window].iter().position(|&b| b == b'\n') {
                return Ok(self.take(py, scanned + i + 1));
            }
            if limit.is_some_and(|l| window >= l) {
                return Ok(self.take(py, window));
            }
            scanned = window;
            if !self.fill(py, READ_BLOCK, false)? {
                return Ok(self.take(py, usize::MAX));
            }
        }
    }
}

/// The error for a read after the request ended.
fn request_ended() -> PyErr {
    PyValueError::new_err("wsgi.input used after its request ended")
}

/// Python passes -1 or None for "no limit".
fn size_arg(size: Option<isize>) -> Option<usize> {
    size.and_then(|s| usize::try_from(s).ok())
}

#[pymethods]
impl Input {
    #[pyo3(signature = (size = None))]
    fn read<'py>(&mut self, py: Python<'py>, size: Option<isize>) -> PyResult<Bound<'py, PyBytes>> {
        self.read_bytes(py, size_arg(size))
    }

    #[pyo3(signature = (size = None))]
    fn readline<'py>(
        &mut self,
        py: Python<'py>,
        size: Option<isize>,
    ) -> PyResult<Bound<'py, PyBytes>> {
        self.read_line(py, size_arg(size))
    }

    #[pyo3(signature = (hint = None))]
    fn readlines<'py>(
        &mut self,
        py: Python<'py>,
        hint: Option<isize>,
    ) -> PyResult<Bound<'py, PyList>> {
        let hint = size_arg(hint).filter(|&h| h > 0);
        let lines = PyList::empty(py);
        let mut total = 0;
        loop {
            let line = self.read_line(py, None)?;
            if line.as_bytes().is_empty() {
                break;
            }
            total += line.as_bytes().len();
            lines.append(line)?;
            if hint.is_some_and(|h| total >= h) {
                break;
            }
        }
        Ok(lines)
    }

    fn __iter__(slf: PyRef<'_, Self>) -> PyRef<'_, Self> {
        slf
    }

    fn __next__<'py>(&mut self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyBytes>>> {
        let line = self.read_line(py, None)?;
        Ok((!line.as_bytes().is_empty()).then_some(line))
    }

    fn close(&mut self) {}
}
