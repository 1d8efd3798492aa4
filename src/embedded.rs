//! Embedded mode: the content handler that runs a WSGI application inside Apache's own
//! child process, on the thread serving the request.
//!
//! Order of work: refuse what Apache should answer (missing script, forbidden
//! ExecCGI, refused chunked body), gather the request facts without the GIL, then
//! attach and run the application, streaming its body into Apache's filters.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList, PyString, PyTuple};

use crate::apache::brigade::{Body, Output};
use crate::apache::log::{self, Level, Target};
use crate::apache::request::Request;
use crate::config::{self, DirConfig, ServerConfig};
use crate::environ;
use crate::ffi;
use crate::python::errors::LogStream;
use crate::python::file_wrapper::FileWrapper;
use crate::python::input::Input;
use crate::python::module::{ProcessFacts, MOD_WSGI_VERSION};
use crate::python::start_response::StartResponse;
use crate::python::{interpreter, log_exception, script, thread_state};

/// Notes that carry a script alias's options from `translate_name` to the handler.
pub const NOTE_PROCESS_GROUP: &std::ffi::CStr = c"mod_wsgi.process_group";
pub const NOTE_APPLICATION_GROUP: &std::ffi::CStr = c"mod_wsgi.application_group";
pub const NOTE_CALLABLE_OBJECT: &std::ffi::CStr = c"mod_wsgi.callable_object";
pub const NOTE_PASS_AUTHORIZATION: &std::ffi::CStr = c"mod_wsgi.pass_authorization";
/// Set (as mod_alias does for ScriptAlias) when a script alias mapped the request, which
/// exempts it from `Options ExecCGI`.
pub const NOTE_ALIAS_FORCED: &std::ffi::CStr = c"alias-forced-type";

/// The settings that apply to one request: alias options over directory config, with
/// every `%{...}` template expanded.
struct Effective {
    process_group: String,
    application_group: String,
    callable_object: String,
    pass_authorization: bool,
}

fn note(request: Request, key: &std::ffi::CStr) -> Option<String> {
    request.notes().get(key).map(|v| String::from_utf8_lossy(v).into_owned())
}

fn effective(request: Request, dir: &DirConfig, case_sensitive: bool) -> Effective {
    // SAFETY: the server record outlives the request; its hostname and the request's
    // hostname are pool strings; ap_get_server_port only reads the live request.
    let (server_hostname, port, hostname) = unsafe {
        (
            crate::apache::c_str((*request.server()).server_hostname).into_owned(),
            ffi::ap_get_server_port(request.as_ptr()),
            crate::apache::c_str((*request.as_ptr()).hostname).into_owned(),
        )
    };
    let (script_name, _) = environ::script_name_and_path_info(request.uri(), request.path_info());
    let mut script_name = String::from_utf8_lossy(&script_name).into_owned();
    if !case_sensitive {
        script_name.make_ascii_lowercase();
    }
    let env = |name: &str| -> Option<String> {
        let key = std::ffi::CString::new(name).ok()?;
        let (notes, subprocess_env) = (request.notes(), request.subprocess_env());
        notes
            .get(&key)
            .or_else(|| subprocess_env.get(&key))
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .or_else(|| std::env::var(name).ok())
    };
    let facts = config::groups::RequestFacts {
        server_hostname: &server_hostname,
        port,
        script_name: &script_name,
        host_header: (!hostname.is_empty()).then_some(hostname.as_str()),
        env: &env,
    };
    let template = |key, default: &str| note(request, key).unwrap_or_else(|| default.to_owned());
    Effective {
        process_group: config::groups::process_group(
            &template(NOTE_PROCESS_GROUP, dir.process_group()),
            &facts,
        ),
        application_group: config::groups::application_group(
            &template(NOTE_APPLICATION_GROUP, dir.application_group()),
            &facts,
        ),
        callable_object: config::groups::callable_object(
            &template(NOTE_CALLABLE_OBJECT, dir.callable_object()),
            &facts,
        ),
        pass_authorization: note(request, NOTE_PASS_AUTHORIZATION)
            .map(|v| v == "1")
            .unwrap_or_else(|| dir.pass_authorization()),
    }
}

/// Serves one request. Returns an Apache status (`OK` once a response was sent).
pub fn handle(
    request: Request,
    server: &ServerConfig,
    dir: &DirConfig,
    process: &ProcessFacts,
) -> i32 {
    let filename = request.filename().into_owned();
    if request.notes().get(NOTE_ALIAS_FORCED).is_none() && !request.allows_exec_cgi() {
        log::request(
            request.as_ptr(),
            Level::Error,
            &format!("Options ExecCGI is off in this directory: {filename}"),
        );
        return ffi::HTTP_FORBIDDEN as i32;
    }
    match request.file_type() {
        ffi::apr_filetype_e_APR_NOFILE => {
            log::request(
                request.as_ptr(),
                Level::Error,
                &format!("Target WSGI script not found or unable to stat: {filename}"),
            );
            return ffi::HTTP_NOT_FOUND as i32;
        }
        ffi::apr_filetype_e_APR_DIR => {
            log::request(
                request.as_ptr(),
                Level::Error,
                &format!("Attempt to invoke directory as WSGI application: {filename}"),
            );
            return ffi::HTTP_FORBIDDEN as i32;
        }
        _ => {}
    }
    if request.rejects_path_info() && !request.path_info().is_empty() {
        log::request(
            request.as_ptr(),
            Level::Info,
            &format!("AcceptPathInfo is off, refusing path info for {filename}"),
        );
        return ffi::HTTP_NOT_FOUND as i32;
    }

    // SAFETY: the request is live; Apache reads the request headers to set up the body.
    let rv = unsafe {
        ffi::ap_setup_client_block(request.as_ptr(), ffi::REQUEST_CHUNKED_DECHUNK as i32)
    };
    if rv != 0 {
        return rv;
    }
    // SAFETY: read_chunked was just set by ap_setup_client_block on this live request.
    if unsafe { (*request.as_ptr()).read_chunked } != 0 && !dir.chunked_request() {
        log::request(request.as_ptr(), Level::Error, &format!("Request body with chunked transfer encoding refused for {filename}: enable it with WSGIChunkedRequest On"));
        return ffi::HTTP_LENGTH_REQUIRED as i32;
    }

    let settings = effective(request, dir, server.case_sensitivity);
    let process_group = &settings.process_group;
    if !process_group.is_empty() {
        log::request(request.as_ptr(), Level::Error, &format!("Daemon process group '{process_group}' selected for {filename}, but daemon mode is not available in this version of mod_wsgi_rs"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    if server.restrict_embedded {
        log::request(request.as_ptr(), Level::Error, &format!("Embedded mode is disabled by WSGIRestrictEmbedded; no daemon process group selected for {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    if !interpreter::is_ready() {
        log::request(request.as_ptr(), Level::Error, &format!("Python is not available in this process (see the start-up error in the log); cannot run {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    let job = Job { request, dir, process, filename: &filename, settings: &settings };
    thread_state::attach(|py| job.run(py))
}

/// One application call, with everything it needs.
struct Job<'a> {
    request: Request,
    dir: &'a DirConfig,
    process: &'a ProcessFacts,
    filename: &'a str,
    settings: &'a Effective,
}

/// Decodes bytes as Latin-1 into a Python `str` (PEP 3333 native strings).
fn latin1<'py>(py: Python<'py>, bytes: &[u8]) -> Bound<'py, PyString> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8.
        return PyString::new(py, unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    PyString::new(py, &text)
}

impl Job<'_> {
    fn run(&self, py: Python<'_>) -> i32 {
        let request = self.request;
        let reload = self.dir.script_reloading();
        let module = match script::load(py, self.filename, request.file_mtime(), reload) {
            Ok(m) => m,
            Err(e) => {
                log_exception(
                    py,
                    Target::Request(request.as_ptr()),
                    &format!("Failed to exec Python script file '{}'", self.filename),
                    &e,
                );
                return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
            }
        };
        let Ok(application) = module.getattr(self.settings.callable_object.as_str()) else {
            log::request(
                request.as_ptr(),
                Level::Error,
                &format!(
                    "Target WSGI script '{}' does not contain WSGI application '{}'",
                    self.filename, self.settings.callable_object
                ),
            );
            return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
        };
        let input = match Py::new(py, Input::new(Box::new(Body(request)))) {
            Ok(i) => i,
            Err(e) => return self.internal_error(py, "creating wsgi.input", &e),
        };
        let errors = match Py::new(py, LogStream::for_request(request.as_ptr(), request.server())) {
            Ok(e) => e,
            Err(e) => return self.internal_error(py, "creating wsgi.errors", &e),
        };
        let start = match Py::new(py, StartResponse::new(Box::new(Output::new(request)))) {
            Ok(s) => s,
            Err(e) => return self.internal_error(py, "creating start_response", &e),
        };
        let status = match self.environ(py, &input, &errors) {
            Ok(environ) => self.call(py, &application, environ, &start, &input),
            Err(e) => self.internal_error(py, "building the WSGI environ", &e),
        };
        // The Python objects may outlive the request (an application can keep them);
        // cut them loose from it.
        input.borrow_mut(py).detach_request();
        errors.get().detach_request();
        start.borrow_mut(py).detach_request();
        status
    }

    fn internal_error(&self, py: Python<'_>, what: &str, err: &PyErr) -> i32 {
        log_exception(
            py,
            Target::Request(self.request.as_ptr()),
            &format!("Internal error {what} for WSGI script '{}'", self.filename),
            err,
        );
        ffi::HTTP_INTERNAL_SERVER_ERROR as i32
    }

    fn environ<'py>(
        &self,
        py: Python<'py>,
        input: &Py<Input>,
        errors: &Py<LogStream>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let r = self.request;
        let env = PyDict::new(py);
        // SAFETY: every pointer below comes from the live request and its server and
        // connection; the returned strings are NUL-terminated and live in their pools.
        let (
            software,
            server_name,
            server_port,
            admin,
            document_root,
            context_prefix,
            context_root,
        ) = unsafe {
            let rec = r.as_ptr();
            (
                crate::apache::c_bytes(ffi::ap_get_server_banner()),
                crate::apache::c_bytes(ffi::ap_get_server_name(rec)),
                ffi::ap_get_server_port(rec),
                crate::apache::c_bytes((*r.server()).server_admin),
                crate::apache::c_bytes(ffi::ap_document_root(rec)),
                crate::apache::c_bytes(ffi::ap_context_prefix(rec)),
                crate::apache::c_bytes(ffi::ap_context_document_root(rec)),
            )
        };
        let https = r.is_https()
            || r.subprocess_env()
                .get(c"HTTPS")
                .is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1");
        let scheme = if https { "https" } else { "http" };
        let (local_ip, local_port) = r.local_addr();
        let filename = self.filename.as_bytes();
        let map_head = match self.dir.map_head_to_get() {
            config::MapHeadToGet::On => true,
            config::MapHeadToGet::Off => false,
            config::MapHeadToGet::Auto => r.has_content_output_filter(),
        };
        let method: &[u8] = if map_head && r.method() == b"HEAD" { b"GET" } else { r.method() };
        let facts = environ::Facts {
            method,
            protocol: r.protocol(),
            uri: r.uri(),
            request_uri: r.unparsed_uri(),
            query_string: r.args(),
            path_info: r.path_info(),
            script_filename: filename,
            document_root,
            context_prefix,
            context_document_root: context_root,
            server_software: software,
            server_name,
            server_addr: local_ip,
            server_port,
            server_admin: admin,
            remote_addr: r.useragent_ip(),
            remote_port: r.remote_port(),
            request_scheme: scheme,
            remote_user: r.user(),
            auth_type: r.auth_type(),
            pass_authorization: self.settings.pass_authorization,
        };
        let headers = r.headers_in();
        let subprocess_env = r.subprocess_env();
        let mut failure = None;
        environ::cgi_variables(&facts, headers.iter(), subprocess_env.iter(), &mut |key, value| {
            if let Err(e) = env.set_item(key, latin1(py, value)) {
                failure.get_or_insert(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        let (script_name, path_info) = environ::script_name_and_path_info(r.uri(), r.path_info());
        env.set_item("wsgi.version", (1, 0))?;
        env.set_item("wsgi.multithread", self.process.multithread())?;
        env.set_item("wsgi.multiprocess", self.process.multiprocess())?;
        env.set_item("wsgi.run_once", false)?;
        env.set_item("wsgi.url_scheme", scheme)?;
        env.set_item("wsgi.input", input)?;
        env.set_item("wsgi.errors", errors)?;
        env.set_item("wsgi.input_terminated", true)?;
        env.set_item("wsgi.file_wrapper", py.get_type::<FileWrapper>())?;
        env.set_item("apache.version", self.process.apache_version)?;
        env.set_item("mod_wsgi.version", MOD_WSGI_VERSION)?;
        env.set_item("mod_wsgi.process_group", "")?;
        env.set_item("mod_wsgi.application_group", &self.settings.application_group)?;
        env.set_item("mod_wsgi.callable_object", &self.settings.callable_object)?;
        env.set_item("mod_wsgi.request_handler", latin1(py, r.handler()))?;
        env.set_item("mod_wsgi.handler_script", "")?;
        env.set_item(
            "mod_wsgi.script_reloading",
            if self.dir.script_reloading() { "1" } else { "0" },
        )?;
        env.set_item("mod_wsgi.listener_host", latin1(py, local_ip))?;
        env.set_item("mod_wsgi.listener_port", local_port.to_string())?;
        env.set_item(
            "mod_wsgi.enable_sendfile",
            if self.dir.enable_sendfile() { "1" } else { "0" },
        )?;
        env.set_item("mod_wsgi.server_pid", std::process::id().to_string())?;
        env.set_item("mod_wsgi.request_id", latin1(py, r.log_id()))?;
        env.set_item("mod_wsgi.script_name", latin1(py, &script_name))?;
        env.set_item("mod_wsgi.path_info", latin1(py, &path_info))?;
        env.set_item("mod_wsgi.thread_id", crate::python::thread_ident())?;
        env.set_item("mod_wsgi.request_start", r.request_time())?;
        env.set_item("mod_wsgi.queue_start", 0.0)?;
        env.set_item("mod_wsgi.daemon_start", 0.0)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        env.set_item("mod_wsgi.application_start", now)?;
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
    ) -> i32 {
        let result = application.call1((environ, start.clone_ref(py)));
        let outcome = match &result {
            Ok(iterable) => self.send_iterable(py, iterable, start),
            Err(e) => Err(e.clone_ref(py)),
        };
        // PEP 3333: close() is called on every path, including errors and a client gone.
        let closed = match &result {
            Ok(iterable) if iterable.hasattr("close").unwrap_or(false) => {
                iterable.call_method0("close").map(drop)
            }
            _ => Ok(()),
        };
        let outcome = outcome.and(closed);
        let mut start = start.borrow_mut(py);
        match outcome {
            Ok(()) => {
                if let (Some((sent, declared)), false) =
                    (start.response.shortfall(), self.request.header_only())
                {
                    log::request(self.request.as_ptr(), Level::Error, &format!("Response of WSGI script '{}' ended after {sent} of the {declared} bytes its Content-Length announced; closing the connection", self.filename));
                    if !start.response.head_sent() {
                        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
                    }
                    start.abort(py);
                    return ffi::OK as i32;
                }
                if let Err(e) = start.finish(py) {
                    return self.app_failed(py, &mut start, input, &e);
                }
                if start.client_gone {
                    log::request(
                        self.request.as_ptr(),
                        Level::Info,
                        &format!(
                            "Client closed the connection before the response of '{}' was complete",
                            self.filename
                        ),
                    );
                }
                ffi::OK as i32
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
    ) -> i32 {
        if input.borrow(py).client_failed {
            log::request(
                self.request.as_ptr(),
                Level::Info,
                &format!(
                    "Request body of '{}' was cut short by the client: {}",
                    self.filename,
                    err.value(py)
                ),
            );
            if start.response.head_sent() {
                start.abort(py);
                return ffi::OK as i32;
            }
            return ffi::HTTP_BAD_REQUEST as i32;
        }
        if start.client_gone {
            log::request(
                self.request.as_ptr(),
                Level::Info,
                &format!("Client closed the connection while '{}' was responding", self.filename),
            );
            return ffi::OK as i32;
        }
        log_exception(
            py,
            Target::Request(self.request.as_ptr()),
            &format!("Exception occurred processing WSGI script '{}'", self.filename),
            err,
        );
        if start.response.head_sent() {
            start.abort(py);
            ffi::OK as i32
        } else {
            ffi::HTTP_INTERNAL_SERVER_ERROR as i32
        }
    }

    /// Sends the body. A list or tuple is sent in one pass (its items stay alive until
    /// then); any other iterable is flushed block by block, as PEP 3333 asks.
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
                start.buffer(bytes.as_bytes())?;
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
