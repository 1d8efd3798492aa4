//! One call of a WSGI application, the same in embedded and daemon mode: load the
//! script, build the environ, call the application, send what it returns, and close it.
//!
//! The caller supplies where the body comes from and where the response goes
//! ([`crate::io`]), the CGI variables, and the facts behind the `wsgi.*` and
//! `mod_wsgi.*` keys. What went wrong is logged here, once, with the script's name.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use super::errors::LogStream;
use super::file_wrapper::FileWrapper;
use super::input::Input;
use super::module::MOD_WSGI_VERSION;
use super::start_response::StartResponse;
use super::{environ_strings, log_exception, script};
use crate::apache::log::{Level, Target};
use crate::environ::RequestKeys;
use crate::io::{BodySource, ResponseSink};

/// How a call ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// A response went out (complete, or visibly cut short).
    Sent,
    /// Nothing was sent; the server should answer with this status.
    Failed(u16),
}

/// Emits every CGI variable of a request, one `(key, value)` at a time.
pub type CgiSource<'a> = dyn FnMut(&mut dyn FnMut(&str, &[u8])) + 'a;

/// Everything one application call needs.
pub struct Call<'a> {
    /// Path of the WSGI script file.
    pub script: &'a str,
    /// Its modification time in microseconds (Apache's unit).
    pub mtime: i64,
    /// `WSGIScriptReloading`: load the script again when `mtime` changed.
    pub reload: bool,
    /// The values of the `wsgi.*` and `mod_wsgi.*` keys.
    pub keys: &'a RequestKeys,
    /// Emits every CGI variable of the request.
    pub cgi: &'a mut CgiSource<'a>,
    /// A HEAD request: Apache drops the body, so a short body is no error.
    pub header_only: bool,
    /// Where messages about this request go.
    pub log: Target,
}

/// How a call ended, and the end of the response still to pass.
#[must_use = "the rest of the response must be sent with `send_rest`"]
pub struct Finished {
    pub outcome: Outcome,
    /// The sink, when the end of the response is queued but not passed yet.
    unsent: Option<Box<dyn ResponseSink>>,
}

impl From<Outcome> for Finished {
    fn from(outcome: Outcome) -> Self {
        Finished { outcome, unsent: None }
    }
}

impl Finished {
    /// Passes what the call left queued. Call it with the GIL released: a response that
    /// fits in memory then costs one GIL acquisition, not two.
    pub fn send_rest(self) -> Outcome {
        if let Some(mut sink) = self.unsent {
            // A client gone now has its whole response queued; nothing is left to do.
            let _ = sink.pass();
        }
        self.outcome
    }
}

impl Call<'_> {
    /// Runs the application. `errors` becomes `wsgi.errors`.
    pub fn run(
        &mut self,
        py: Python<'_>,
        source: Box<dyn BodySource>,
        sink: Box<dyn ResponseSink>,
        errors: LogStream,
    ) -> Finished {
        let module = match script::load(py, self.script, self.mtime, self.reload) {
            Ok(m) => m,
            Err(e) => {
                let context = format!("Failed to exec Python script file '{}'", self.script);
                log_exception(py, self.log, &context, &e);
                return Outcome::Failed(500).into();
            }
        };
        let callable = self.keys.callable_object.as_str();
        let Ok(application) = module.getattr(callable) else {
            self.log.log(
                Level::Error,
                &format!(
                    "Target WSGI script '{}' does not contain WSGI application '{callable}'",
                    self.script
                ),
            );
            return Outcome::Failed(500).into();
        };
        let objects = Py::new(py, Input::new(source)).and_then(|input| {
            Ok((input, Py::new(py, errors)?, Py::new(py, StartResponse::new(sink))?))
        });
        let (input, errors, start) = match objects {
            Ok(o) => o,
            Err(e) => return self.internal_error(py, "creating the WSGI objects", &e).into(),
        };
        let outcome = match self.environ(py, &input, &errors) {
            Ok(environ) => self.call(py, &application, environ, &start, &input),
            Err(e) => self.internal_error(py, "building the WSGI environ", &e),
        };
        // The Python objects may outlive the request (an application can keep them);
        // cut them loose from it.
        input.borrow_mut(py).detach_request();
        errors.get().detach_request();
        let unsent = start.borrow_mut(py).detach_request();
        Finished { outcome, unsent }
    }

    fn internal_error(&self, py: Python<'_>, what: &str, err: &PyErr) -> Outcome {
        let context = format!("Internal error {what} for WSGI script '{}'", self.script);
        log_exception(py, self.log, &context, err);
        Outcome::Failed(500)
    }

    fn environ<'py>(
        &mut self,
        py: Python<'py>,
        input: &Py<Input>,
        errors: &Py<LogStream>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let env = PyDict::new(py);
        let mut failure = None;
        let mut script_name = None;
        let mut path_info = None;
        (self.cgi)(&mut |key, value| {
            let (key_string, value) = environ_strings::key_and_value(py, key, value);
            match key {
                "SCRIPT_NAME" => script_name = Some(value.clone()),
                "PATH_INFO" => path_info = Some(value.clone()),
                _ => {}
            }
            if let Err(e) = env.set_item(key_string, value) {
                failure.get_or_insert(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        // Interned keys: made once per process, not per request. (Per-process pyo3
        // statics are fine while every application runs in the main interpreter.)
        let k = self.keys;
        let put = |key: &str, value: &[u8]| {
            let (key, value) = environ_strings::key_and_value(py, key, value);
            env.set_item(key, value)
        };
        // Tuples that never change, made once (the Apache version is fixed per process).
        static WSGI_VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
        static MODULE_VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
        static APACHE_VERSION: PyOnceLock<Py<PyTuple>> = PyOnceLock::new();
        let tuple = |cell: &'static PyOnceLock<Py<PyTuple>>, items: &[u32]| {
            cell.get_or_init(py, || PyTuple::new(py, items).expect("ints").unbind()).bind(py)
        };
        env.set_item(intern!(py, "wsgi.version"), tuple(&WSGI_VERSION, &[1, 0]))?;
        env.set_item(intern!(py, "wsgi.multithread"), k.multithread)?;
        env.set_item(intern!(py, "wsgi.multiprocess"), k.multiprocess)?;
        env.set_item(intern!(py, "wsgi.run_once"), k.run_once)?;
        put("wsgi.url_scheme", k.url_scheme.as_bytes())?;
        env.set_item(intern!(py, "wsgi.input"), input)?;
        env.set_item(intern!(py, "wsgi.errors"), errors)?;
        env.set_item(intern!(py, "wsgi.input_terminated"), true)?;
        env.set_item(intern!(py, "wsgi.file_wrapper"), py.get_type::<FileWrapper>())?;
        let (major, minor, patch) = k.apache_version;
        env.set_item(
            intern!(py, "apache.version"),
            tuple(&APACHE_VERSION, &[major, minor, patch]),
        )?;
        let (major, minor, patch) = MOD_WSGI_VERSION;
        env.set_item(
            intern!(py, "mod_wsgi.version"),
            tuple(&MODULE_VERSION, &[major, minor, patch]),
        )?;
        put("mod_wsgi.process_group", k.process_group.as_bytes())?;
        put("mod_wsgi.application_group", k.application_group.as_bytes())?;
        put("mod_wsgi.callable_object", k.callable_object.as_bytes())?;
        put("mod_wsgi.request_handler", k.request_handler.as_bytes())?;
        env.set_item(intern!(py, "mod_wsgi.handler_script"), "")?;
        env.set_item(
            intern!(py, "mod_wsgi.script_reloading"),
            if k.script_reloading { "1" } else { "0" },
        )?;
        put("mod_wsgi.listener_host", k.listener_host.as_bytes())?;
        put("mod_wsgi.listener_port", k.listener_port.to_string().as_bytes())?;
        env.set_item(
            intern!(py, "mod_wsgi.enable_sendfile"),
            if k.enable_sendfile { "1" } else { "0" },
        )?;
        put("mod_wsgi.server_pid", k.server_pid.to_string().as_bytes())?;
        env.set_item(intern!(py, "mod_wsgi.request_id"), &k.request_id)?;
        env.set_item(
            intern!(py, "mod_wsgi.script_name"),
            script_name.unwrap_or_else(|| PyString::new(py, "")),
        )?;
        env.set_item(
            intern!(py, "mod_wsgi.path_info"),
            path_info.unwrap_or_else(|| PyString::new(py, "")),
        )?;
        env.set_item(intern!(py, "mod_wsgi.thread_id"), super::thread_ident())?;
        env.set_item(intern!(py, "mod_wsgi.request_start"), k.request_start)?;
        env.set_item(intern!(py, "mod_wsgi.queue_start"), k.queue_start)?;
        env.set_item(intern!(py, "mod_wsgi.daemon_start"), k.daemon_start)?;
        env.set_item(intern!(py, "mod_wsgi.application_start"), crate::environ::now())?;
        Ok(env)
    }

    /// Calls the application and sends what it returns.
    fn call(
        &self,
        py: Python<'_>,
        application: &Bound<'_, PyAny>,
        environ: Bound<'_, PyDict>,
        start: &Py<StartResponse>,
        input: &Py<Input>,
    ) -> Outcome {
        let result = application.call1((environ, start.clone_ref(py)));
        let outcome = match &result {
            Ok(iterable) => self.send_iterable(py, iterable, start),
            Err(e) => Err(e.clone_ref(py)),
        };
        // PEP 3333: close() is called on every path, including errors and a client gone.
        // (A plain list or tuple has no close(); asking costs an AttributeError.)
        let closed = match &result {
            Ok(iterable)
                if !iterable.is_exact_instance_of::<PyList>()
                    && !iterable.is_exact_instance_of::<PyTuple>()
                    && iterable.hasattr(intern!(py, "close")).unwrap_or(false) =>
            {
                iterable.call_method0(intern!(py, "close")).map(drop)
            }
            _ => Ok(()),
        };
        let outcome = outcome.and(closed);
        let mut start = start.borrow_mut(py);
        match outcome {
            Ok(()) => {
                if let (Some((sent, declared)), false) =
                    (start.response.shortfall(), self.header_only)
                {
                    self.log.log(Level::Error, &format!("Response of WSGI script '{}' ended after {sent} of the {declared} bytes its Content-Length announced; closing the connection", self.script));
                    if !start.response.head_sent() {
                        return Outcome::Failed(500);
                    }
                    start.abort(py);
                    return Outcome::Sent;
                }
                if let Err(e) = start.finish() {
                    return self.app_failed(py, &mut start, input, &e);
                }
                if start.client_gone {
                    self.log.log(
                        Level::Info,
                        &format!(
                            "Client closed the connection before the response of '{}' was complete",
                            self.script
                        ),
                    );
                }
                Outcome::Sent
            }
            Err(e) => self.app_failed(py, &mut start, input, &e),
        }
    }

    fn app_failed(
        &self,
        py: Python<'_>,
        start: &mut StartResponse,
        input: &Py<Input>,
        err: &PyErr,
    ) -> Outcome {
        if input.borrow(py).client_failed {
            self.log.log(
                Level::Info,
                &format!(
                    "Request body of '{}' was cut short by the client: {}",
                    self.script,
                    err.value(py)
                ),
            );
            if start.response.head_sent() {
                start.abort(py);
                return Outcome::Sent;
            }
            return Outcome::Failed(400);
        }
        if start.client_gone {
            self.log.log(
                Level::Info,
                &format!("Client closed the connection while '{}' was responding", self.script),
            );
            return Outcome::Sent;
        }
        log_exception(
            py,
            self.log,
            &format!("Exception occurred processing WSGI script '{}'", self.script),
            err,
        );
        if start.response.head_sent() {
            start.abort(py);
            Outcome::Sent
        } else {
            Outcome::Failed(500)
        }
    }

    /// Sends the body. A list or tuple is queued whole and sent in one pass after the
    /// GIL is released; any other iterable is flushed block by block, as PEP 3333 asks.
    fn send_iterable(
        &self,
        py: Python<'_>,
        iterable: &Bound<'_, PyAny>,
        start: &Py<StartResponse>,
    ) -> PyResult<()> {
        if let Ok(wrapper) = iterable.cast::<FileWrapper>() {
            if self.send_file(py, wrapper.get(), start)? {
                return Ok(());
            }
        }
        let in_memory = iterable.is_instance_of::<PyList>() || iterable.is_instance_of::<PyTuple>();
        for item in iterable.try_iter()? {
            let item = item?;
            let bytes = item.cast::<PyBytes>().map_err(|_| {
                pyo3::exceptions::PyTypeError::new_err(format!(
                    "sequence of byte string values expected, value of type {} found",
                    item.get_type().name().map(|n| n.to_string()).unwrap_or_default()
                ))
            })?;
            let mut start = start.borrow_mut(py);
            if in_memory {
                // Copied, so the whole response can go out after the GIL is released.
                start.buffer(bytes.as_bytes(), true)?;
            } else {
                start.send(py, bytes.as_bytes(), true)?;
            }
            if start.client_gone || start.response.complete() {
                break;
            }
        }
        Ok(())
    }

    /// Sends a `wsgi.file_wrapper` over a real file with file buckets. Returns false when
    /// the wrapped object is not a plain file, so the caller falls back to iteration.
    fn send_file(
        &self,
        py: Python<'_>,
        wrapper: &FileWrapper,
        start: &Py<StartResponse>,
    ) -> PyResult<bool> {
        let filelike = wrapper.filelike.bind(py);
        let fd = match filelike.call_method0("fileno").and_then(|f| f.extract::<i32>()) {
            Ok(fd) => fd,
            Err(_) => return Ok(false),
        };
        let Ok(offset) = filelike.call_method0("tell").and_then(|t| t.extract::<i64>()) else {
            return Ok(false);
        };
        // SAFETY: fstat writes into a zeroed stat buffer for a descriptor the file object holds open.
        let size = unsafe {
            let mut st: libc::stat = std::mem::zeroed();
            if libc::fstat(fd, &mut st) != 0 || (st.st_mode & libc::S_IFMT) != libc::S_IFREG {
                return Ok(false);
            }
            st.st_size
        };
        let mut start = start.borrow_mut(py);
        let available = u64::try_from(size - offset).unwrap_or(0);
        start.add_content_length_if_missing(available);
        start.send_file(py, fd, offset, available)?;
        Ok(true)
    }
}
