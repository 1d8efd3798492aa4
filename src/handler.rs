//! The content handler for `wsgi-script` requests.
//!
//! Order of work: refuse what Apache should answer (missing script, forbidden
//! ExecCGI, refused chunked body), work out the process and application groups, then
//! either hand the request to its daemon group (`daemon::client`) or, in embedded
//! mode, attach and run the application on this thread, streaming its body into
//! Apache's filters.

use crate::apache::log::{self, Level, Target};
use crate::apache::request::Request;
use crate::apache::stream;
use crate::config::{self, DirConfig, ServerConfig};
use crate::daemon::protocol::{CgiVars, RequestFrame};
use crate::daemon::supervisor;
use crate::environ::{self, RequestKeys};
use crate::ffi;
use crate::python::app::{Call, Outcome};
use crate::python::errors::LogStream;
use crate::python::module::ProcessFacts;
use crate::python::{interpreter, thread_state};

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
    if !settings.process_group.is_empty() {
        return to_daemon(request, dir, &filename, &settings, process);
    }
    if server.restrict_embedded {
        log::request(request.as_ptr(), Level::Error, &format!("Embedded mode is disabled by WSGIRestrictEmbedded; no daemon process group selected for {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    if !interpreter::is_ready() {
        log::request(request.as_ptr(), Level::Error, &format!("Python is not available in this process (see the start-up error in the log); cannot run {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    let keys = request_keys(request, dir, &settings, process);
    let mut cgi = |emit: &mut dyn FnMut(&str, &[u8])| {
        cgi_variables(request, dir, &filename, settings.pass_authorization, emit)
    };
    let mut call = Call {
        script: &filename,
        mtime: request.file_mtime(),
        reload: dir.script_reloading(),
        keys: &keys,
        cgi: &mut cgi,
        header_only: request.header_only(),
        log: Target::Request(request.as_ptr()),
    };
    // `ending` outlives everything that uses the request's output from another thread.
    let (output, body, ending) = stream::for_request(request);
    let finished = thread_state::attach(|py| {
        let errors =
            LogStream::for_request(request.as_ptr(), request.server(), Some(ending.lock()));
        call.run(py, Box::new(body), Box::new(output), errors)
    });
    match finished.send_rest() {
        Outcome::Sent => ffi::OK as i32,
        Outcome::Failed(status) => i32::from(status),
    }
}

/// Hands the request to its daemon process group.
fn to_daemon(
    request: Request,
    dir: &DirConfig,
    filename: &str,
    settings: &Effective,
    process: &ProcessFacts,
) -> i32 {
    let name = &settings.process_group;
    let r = request.as_ptr();
    let Some(generation) = supervisor::generation() else {
        log::request(
            r,
            Level::Error,
            &format!("No WSGI daemon process called '{name}' has been configured: {filename}"),
        );
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    };
    let Some(group) = generation.groups.iter().find(|g| &g.def.name == name) else {
        log::request(
            r,
            Level::Error,
            &format!("No WSGI daemon process called '{name}' has been configured: {filename}"),
        );
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    };
    // SAFETY: the request's server record and its hostname live for the generation.
    let server_name =
        unsafe { crate::apache::c_str((*request.server()).server_hostname).into_owned() };
    if !group.def.visible_from(Some(&server_name)) {
        log::request(r, Level::Error, &format!("WSGI daemon process group '{name}' was defined in another virtual host and cannot be used by '{server_name}': {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    if dir.restrict_process().is_some_and(|allowed| !allowed.iter().any(|a| a == name)) {
        log::request(r, Level::Error, &format!("WSGI daemon process group '{name}' is not allowed here by WSGIRestrictProcess: {filename}"));
        return ffi::HTTP_INTERNAL_SERVER_ERROR as i32;
    }
    let mut keys = request_keys(request, dir, settings, process);
    keys.process_group = name.clone();
    keys.multithread = group.def.threads != 1;
    keys.multiprocess = group.def.multiprocess;
    keys.run_once = group.def.run_once();
    let mut cgi = CgiVars::with_capacity(2048);
    cgi_variables(request, dir, filename, settings.pass_authorization, &mut |k, v| cgi.push(k, v));
    // The daemon measures queue-timeout from here.
    keys.queue_start = environ::now();
    let frame = RequestFrame {
        secret: generation.secret.clone(),
        script: filename.to_owned(),
        mtime: request.file_mtime(),
        reload: dir.script_reloading(),
        header_only: request.header_only(),
        keys,
        cgi,
    };
    crate::daemon::client::handle(request, group, &frame)
}

/// Whether the request is HTTPS (mod_ssl, or `HTTPS=on` set by a trusted front end).
fn is_https(request: Request) -> bool {
    request.is_https()
        || request
            .subprocess_env()
            .get(c"HTTPS")
            .is_some_and(|v| v.eq_ignore_ascii_case(b"on") || v == b"1")
}

/// The `wsgi.*`/`mod_wsgi.*` facts of an embedded-mode request.
fn request_keys(
    request: Request,
    dir: &DirConfig,
    settings: &Effective,
    process: &ProcessFacts,
) -> RequestKeys {
    let (local_ip, local_port) = request.local_addr();
    RequestKeys {
        url_scheme: if is_https(request) { "https" } else { "http" }.into(),
        multithread: process.multithread(),
        multiprocess: process.multiprocess(),
        run_once: false,
        process_group: String::new(),
        application_group: settings.application_group.clone(),
        callable_object: settings.callable_object.clone(),
        request_handler: String::from_utf8_lossy(request.handler()).into_owned(),
        script_reloading: dir.script_reloading(),
        enable_sendfile: dir.enable_sendfile(),
        listener_host: String::from_utf8_lossy(local_ip).into_owned(),
        listener_port: local_port,
        server_pid: process.pid,
        request_id: String::from_utf8_lossy(request.log_id()).into_owned(),
        request_start: request.request_time(),
        queue_start: 0.0,
        daemon_start: 0.0,
        apache_version: process.apache_version,
    }
}

/// Emits the request's CGI variables (see `environ::cgi_variables`).
fn cgi_variables(
    r: Request,
    dir: &DirConfig,
    filename: &str,
    pass_authorization: bool,
    emit: &mut dyn FnMut(&str, &[u8]),
) {
    // SAFETY: every pointer below comes from the live request and its server and
    // connection; the returned strings are NUL-terminated and live in their pools.
    let (software, server_name, server_port, admin, document_root, context_prefix, context_root) = unsafe {
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
    let map_head = match dir.map_head_to_get() {
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
        script_filename: filename.as_bytes(),
        document_root,
        context_prefix,
        context_document_root: context_root,
        server_software: software,
        server_name,
        server_addr: r.local_addr().0,
        server_port,
        server_admin: admin,
        remote_addr: r.useragent_ip(),
        remote_port: r.remote_port(),
        request_scheme: if is_https(r) { "https" } else { "http" },
        remote_user: r.user(),
        auth_type: r.auth_type(),
        pass_authorization,
    };
    environ::cgi_variables(&facts, r.headers_in().iter(), r.subprocess_env().iter(), emit);
}
