//! `wsgi.errors`, `sys.stdout` and `sys.stderr`: text streams whose lines go to
//! Apache's error log.
//!
//! A stream made for a request logs against that request (Apache adds the client and
//! request id) until the request ends; after that, and for the process-wide streams,
//! lines go to the server's log.

use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::Mutex;

use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyIterator;

use crate::apache::log::{self, Level};
use crate::apache::stream::RequestLock;
use crate::ffi;

/// A line-buffered text stream into the error log.
#[pyclass(frozen, module = "mod_wsgi")]
pub struct LogStream {
    /// The request being served; null once it has ended (set by `detach_request`).
    request: AtomicPtr<ffi::request_rec>,
    /// The server whose log receives lines when there is no request.
    server: AtomicPtr<ffi::server_rec>,
    /// Text after the last newline, held until the line is complete or flushed.
    pending: Mutex<String>,
    /// The request's lock: lines may come from any thread while the request runs.
    lock: Option<RequestLock>,
}

impl LogStream {
    pub fn for_server(server: *mut ffi::server_rec) -> LogStream {
        LogStream {
            request: AtomicPtr::new(std::ptr::null_mut()),
            server: AtomicPtr::new(server),
            pending: Mutex::new(String::new()),
            lock: None,
        }
    }

    pub fn for_request(
        request: *mut ffi::request_rec,
        server: *mut ffi::server_rec,
        lock: Option<RequestLock>,
    ) -> LogStream {
        let stream = LogStream { lock, ..LogStream::for_server(server) };
        stream.request.store(request, Ordering::Release);
        stream
    }

    /// Called when the request ends: later writes (from threads the application
    /// started, say) must not touch the freed request.
    pub fn detach_request(&self) {
        self.flush_pending();
        self.request.store(std::ptr::null_mut(), Ordering::Release);
    }

    fn emit(&self, line: &str) {
        let request = self.request.load(Ordering::Acquire);
        let logged = match (&self.lock, request.is_null()) {
            (_, true) => false,
            (Some(lock), false) => {
                lock.with(|| log::request_unguarded(request, Level::Error, line)).is_some()
            }
            (None, false) => {
                log::request(request, Level::Error, line);
                true
            }
        };
        if !logged {
            log::server(self.server.load(Ordering::Acquire), Level::Error, line);
        }
    }

    fn flush_pending(&self) {
        let rest = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if !rest.is_empty() {
            self.emit(&rest);
        }
    }
}

#[pymethods]
impl LogStream {
    /// Writes text; every complete line becomes one log entry.
    fn write(&self, py: Python<'_>, text: &str) -> usize {
        let mut pending = self.pending.lock_py_attached(py).unwrap_or_else(|e| e.into_inner());
        pending.push_str(text);
        if let Some(end) = pending.rfind('\n') {
            let complete: String = pending.drain(..=end).collect();
            drop(pending);
            for line in complete.trim_end_matches('\n').split('\n') {
                self.emit(line);
            }
        }
        text.chars().count()
    }

    fn writelines(&self, py: Python<'_>, lines: &Bound<'_, PyAny>) -> PyResult<()> {
        for line in PyIterator::from_object(lines)? {
            self.write(py, line?.extract::<&str>()?);
        }
        Ok(())
    }

    fn flush(&self) {
        self.flush_pending();
    }

    fn isatty(&self) -> bool {
        false
    }

    fn writable(&self) -> bool {
        true
    }

    fn readable(&self) -> bool {
        false
    }

    fn seekable(&self) -> bool {
        false
    }

    fn close(&self) {
        self.flush_pending();
    }

    #[getter]
    fn closed(&self) -> bool {
        false
    }

    #[getter]
    fn encoding(&self) -> &'static str {
        "utf-8"
    }

    #[getter]
    fn errors(&self) -> &'static str {
        "backslashreplace"
    }

    #[getter]
    fn line_buffering(&self) -> bool {
        true
    }
}
