//! `start_response` and the `write` callable it returns (PEP 3333, "The
//! start_response() Callable"), bound to an Apache output brigade.
//!
//! The rules themselves (when a call is allowed, when headers go out, Content-Length
//! truncation) live in `crate::response`; this file converts Python values and moves
//! bytes into Apache.

use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyString, PyTuple};

use crate::io::ResponseSink;
use crate::response::{Response, StartError};

#[pyclass(unsendable, module = "mod_wsgi")]
pub struct StartResponse {
    /// Where the response goes; `None` once the request has ended.
    sink: Option<Box<dyn ResponseSink>>,
    pub response: Response,
    /// Set once the client has gone away; nothing more is sent.
    pub client_gone: bool,
    /// The end of the response is queued but not yet passed (see `take_unsent`).
    unsent: bool,
}

/// Converts a Python `str` that must be Latin-1 (PEP 3333 "native string").
fn latin1(value: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let s = value
        .cast::<PyString>()
        .map_err(|_| {
            PyTypeError::new_err(format!("{what} must be a str, not {}", type_name(value)))
        })?
        .to_str()?;
    if let Some(c) = s.chars().find(|&c| c > '\u{ff}') {
        return Err(PyValueError::new_err(format!(
            "{what} {s:?} contains {c:?}, which is not Latin-1"
        )));
    }
    Ok(s.to_owned())
}

fn type_name(value: &Bound<'_, PyAny>) -> String {
    value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into())
}

/// Converts the `response_headers` argument: a list of `(name, value)` str tuples.
fn header_list(headers: &Bound<'_, PyAny>) -> PyResult<Vec<(String, String)>> {
    let list = headers.cast::<PyList>().map_err(|_| {
        PyTypeError::new_err(format!("response headers must be a list, not {}", type_name(headers)))
    })?;
    let mut out = Vec::with_capacity(list.len());
    for item in list.iter() {
        let pair = item.cast::<PyTuple>().ok().filter(|t| t.len() == 2).ok_or_else(|| {
            PyTypeError::new_err("each response header must be a (name, value) tuple")
        })?;
        out.push((
            latin1(&pair.get_item(0)?, "header name")?,
            latin1(&pair.get_item(1)?, "header value")?,
        ));
    }
    Ok(out)
}

impl StartResponse {
    pub fn new(sink: Box<dyn ResponseSink>) -> StartResponse {
        StartResponse {
            sink: Some(sink),
            response: Response::default(),
            client_gone: false,
            unsent: false,
        }
    }

    fn sink(&mut self) -> PyResult<&mut Box<dyn ResponseSink>> {
        self.sink
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("start_response used after its request ended"))
    }

    /// Called when the request ends: the object may outlive it in Python. Returns the
    /// sink when the end of the response is queued but not passed yet: the caller
    /// passes it after releasing the GIL.
    pub fn detach_request(&mut self) -> Option<Box<dyn ResponseSink>> {
        let sink = self.sink.take();
        if std::mem::take(&mut self.unsent) {
            sink
        } else {
            None
        }
    }

    /// Hands the recorded status and headers to the sink.
    fn send_head(&mut self) -> PyResult<()> {
        let head = self.response.head().expect("write() planned a head").clone();
        self.sink()?.head(&head);
        Ok(())
    }

    /// Queues a block of the body without sending it: headers first if they are still
    /// pending, then as much of `data` as a declared Content-Length allows. With `copy`
    /// the bytes are copied; otherwise the caller keeps `data` alive until the next pass.
    pub fn buffer(&mut self, data: &[u8], copy: bool) -> PyResult<()> {
        if self.client_gone {
            return Ok(());
        }
        let plan = self.response.write(data.len()).map_err(|_| {
            PyRuntimeError::new_err("response body sent before start_response() was called")
        })?;
        if plan.send_head {
            self.send_head()?;
        }
        let sink = self.sink()?;
        if copy {
            sink.copy(&data[..plan.take]);
        } else {
            sink.data(&data[..plan.take]);
        }
        Ok(())
    }

    /// Sends a block of the body and pushes it to the client before returning (PEP 3333:
    /// a server must not delay a block).
    pub fn send(&mut self, py: Python<'_>, data: &[u8], flush: bool) -> PyResult<()> {
        self.buffer(data, false)?;
        if flush {
            self.sink()?.flush();
        }
        self.pass(py)
    }

    /// Declares the body length when the application did not (file_wrapper does this).
    pub fn add_content_length_if_missing(&mut self, len: u64) {
        self.response.default_content_length(len);
    }

    fn pass(&mut self, py: Python<'_>) -> PyResult<()> {
        let sink = self.sink()?;
        let passed =
            if sink.pass_is_quick() { sink.pass() } else { super::detach(py, || sink.pass()) };
        if passed.is_err() {
            self.client_gone = true;
        }
        Ok(())
    }

    /// Ends a successful response: queues pending headers and end-of-stream, to be
    /// passed once the GIL is released (see `detach_request`). Everything queued
    /// before was copied or already passed, so nothing here refers to Python memory.
    pub fn finish(&mut self) -> PyResult<()> {
        if self.response.head().is_none() {
            return Err(PyRuntimeError::new_err(
                "the application returned without calling start_response()",
            ));
        }
        if !self.response.head_sent() {
            self.buffer(b"", true)?;
        }
        if self.client_gone {
            return Ok(());
        }
        self.sink()?.end();
        self.unsent = true;
        Ok(())
    }

    /// Ends a response whose body broke off after the headers went out.
    pub fn abort(&mut self, py: Python<'_>) {
        // Send what is queued with the GIL released, so the sink's own flush before the
        // break (see `ResponseSink::broken`) finds nothing to do.
        let _ = self.pass(py);
        if let (false, Some(sink)) = (self.client_gone, self.sink.as_mut()) {
            sink.broken();
            let _ = self.pass(py);
        }
    }

    /// Appends the bytes of an open file (see `file_wrapper`), counting them against a
    /// declared Content-Length.
    pub fn send_file(&mut self, py: Python<'_>, fd: i32, offset: i64, len: u64) -> PyResult<()> {
        let plan = self
            .response
            .write(usize::try_from(len).unwrap_or(usize::MAX))
            .map_err(|_| PyRuntimeError::new_err("file sent before start_response() was called"))?;
        if plan.send_head {
            self.send_head()?;
        }
        if plan.take > 0 {
            self.sink()?.file(fd, offset, plan.take as u64)?;
        }
        self.pass(py)
    }
}

#[pymethods]
impl StartResponse {
    #[pyo3(signature = (status, response_headers, exc_info = None))]
    fn __call__<'py>(
        slf: Bound<'py, Self>,
        status: &Bound<'py, PyAny>,
        response_headers: &Bound<'py, PyAny>,
        exc_info: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let exc_info = exc_info.filter(|e| !e.is_none());
        let status = latin1(status, "status")?;
        let headers = header_list(response_headers)?;
        let result = slf.borrow_mut().response.start(&status, headers, exc_info.is_some());
        match result {
            Ok(()) => slf.getattr("write"),
            Err(StartError::ReRaise) => {
                let value = exc_info.expect("ReRaise only with exc_info").get_item(1)?;
                Err(PyErr::from_value(value))
            }
            Err(StartError::AlreadyStarted) => Err(PyRuntimeError::new_err(
                "start_response() called again without exc_info (PEP 3333 forbids this)",
            )),
            Err(StartError::Invalid(msg)) => Err(PyValueError::new_err(msg)),
        }
    }

    /// The legacy `write(data)` callable.
    fn write(&mut self, py: Python<'_>, data: &Bound<'_, PyAny>) -> PyResult<()> {
        let bytes = data.cast::<PyBytes>().map_err(|_| {
            PyTypeError::new_err(format!("write() argument must be bytes, not {}", type_name(data)))
        })?;
        self.send(py, bytes.as_bytes(), true)
    }
}
